// Exact data match core: SipHash-2-4 against the reference vectors, the tokeniser's
// normalisation, value hashes, and the index builder, file and loader (round trip, no raw
// value in the file, every refusal).
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "detectors/edm_index.h"
#include "detectors/edm_tokens.h"
#include "detectors/siphash.h"
#include "tests/temp_dir.h"

namespace exfiltap::detectors {
namespace {

using test_support::TempDir;

// SipHash-2-4 with key 00..0f of the messages 00..(n-1), n = 0..63 (the reference vectors).
constexpr std::array<uint64_t, 64> kSipVectors = {
        0x726fdb47dd0e0e31ULL,
        0x74f839c593dc67fdULL,
        0x0d6c8009d9a94f5aULL,
        0x85676696d7fb7e2dULL,
        0xcf2794e0277187b7ULL,
        0x18765564cd99a68dULL,
        0xcbc9466e58fee3ceULL,
        0xab0200f58b01d137ULL,
        0x93f5f5799a932462ULL,
        0x9e0082df0ba9e4b0ULL,
        0x7a5dbbc594ddb9f3ULL,
        0xf4b32f46226bada7ULL,
        0x751e8fbc860ee5fbULL,
        0x14ea5627c0843d90ULL,
        0xf723ca908e7af2eeULL,
        0xa129ca6149be45e5ULL,
        0x3f2acc7f57c29bdbULL,
        0x699ae9f52cbe4794ULL,
        0x4bc1b3f0968dd39cULL,
        0xbb6dc91da77961bdULL,
        0xbed65cf21aa2ee98ULL,
        0xd0f2cbb02e3b67c7ULL,
        0x93536795e3a33e88ULL,
        0xa80c038ccd5ccec8ULL,
        0xb8ad50c6f649af94ULL,
        0xbce192de8a85b8eaULL,
        0x17d835b85bbb15f3ULL,
        0x2f2e6163076bcfadULL,
        0xde4daaaca71dc9a5ULL,
        0xa6a2506687956571ULL,
        0xad87a3535c49ef28ULL,
        0x32d892fad841c342ULL,
        0x7127512f72f27cceULL,
        0xa7f32346f95978e3ULL,
        0x12e0b01abb051238ULL,
        0x15e034d40fa197aeULL,
        0x314dffbe0815a3b4ULL,
        0x027990f029623981ULL,
        0xcadcd4e59ef40c4dULL,
        0x9abfd8766a33735cULL,
        0x0e3ea96b5304a7d0ULL,
        0xad0c42d6fc585992ULL,
        0x187306c89bc215a9ULL,
        0xd4a60abcf3792b95ULL,
        0xf935451de4f21df2ULL,
        0xa9538f0419755787ULL,
        0xdb9acddff56ca510ULL,
        0xd06c98cd5c0975ebULL,
        0xe612a3cb9ecba951ULL,
        0xc766e62cfcadaf96ULL,
        0xee64435a9752fe72ULL,
        0xa192d576b245165aULL,
        0x0a8787bf8ecb74b2ULL,
        0x81b3e73d20b49b6fULL,
        0x7fa8220ba3b2eceaULL,
        0x245731c13ca42499ULL,
        0xb78dbfaf3a8d83bdULL,
        0xea1ad565322a1a0bULL,
        0x60e61c23a3795013ULL,
        0x6606d7e446282b93ULL,
        0x6ca4ecb15c5f91e1ULL,
        0x9f626da15c9625f3ULL,
        0xe51b38608ef25f57ULL,
        0x958a324ceb064572ULL,
};

SipKey reference_key() {
    std::array<uint8_t, 16> bytes{};
    for (size_t i = 0; i < bytes.size(); ++i) {
        bytes[i] = static_cast<uint8_t>(i);
    }
    return SipKey::from_bytes(bytes);
}

std::vector<uint8_t> counting_message(size_t n) {
    std::vector<uint8_t> message(n);
    for (size_t i = 0; i < n; ++i) {
        message[i] = static_cast<uint8_t>(i);
    }
    return message;
}

std::span<const uint8_t> bytes_of(std::string_view text) {
    return {reinterpret_cast<const uint8_t*>(text.data()), text.size()};
}

const SipKey kKey{0x0123456789abcdefULL, 0xfedcba9876543210ULL};

// ---------------------------------------------------------------------------------------
// SipHash

TEST(SipHashTest, KeyFromBytesIsLittleEndian) {
    const SipKey key = reference_key();
    EXPECT_EQ(key.k0, 0x0706050403020100ULL);
    EXPECT_EQ(key.k1, 0x0f0e0d0c0b0a0908ULL);
}

TEST(SipHashTest, MatchesReferenceVectors) {
    const SipKey key = reference_key();
    for (size_t n = 0; n < kSipVectors.size(); ++n) {
        EXPECT_EQ(siphash24(key, counting_message(n)), kSipVectors[n]) << "length " << n;
    }
}

TEST(SipHashTest, TaggedEqualsHashOfConcatenation) {
    for (size_t n = 0; n < 40; ++n) {
        std::vector<uint8_t> message = counting_message(n + 1);
        message[0] = 'T';
        const std::span<const uint8_t> rest(message.data() + 1, n);
        EXPECT_EQ(siphash24_tagged(kKey, 'T', rest), siphash24(kKey, message)) << "length " << n;
    }
}

TEST(SipHashTest, TaggedMatchesReferenceVectors) {
    const SipKey key = reference_key();
    for (size_t n = 1; n < kSipVectors.size(); ++n) {
        const std::vector<uint8_t> message = counting_message(n);
        EXPECT_EQ(siphash24_tagged(key, 0, std::span(message).subspan(1)), kSipVectors[n]);
    }
}

TEST(SipHashTest, HasherInPiecesMatchesReferenceVectors) {
    const SipKey key = reference_key();
    for (size_t n = 0; n < kSipVectors.size(); ++n) {
        const std::vector<uint8_t> message = counting_message(n);
        for (size_t cut = 0; cut <= n; cut += 3) {
            SipHasher hasher(key);
            hasher.update(std::span(message).first(cut));
            hasher.update(std::span(message).subspan(cut));
            EXPECT_EQ(hasher.finish(), kSipVectors[n]) << "length " << n << " cut " << cut;
        }
    }
}

TEST(SipHashTest, HasherByteByByteMatchesOneShot) {
    const std::vector<uint8_t> message = counting_message(300);
    SipHasher hasher(kKey);
    for (const uint8_t b : message) {
        hasher.update(std::span(&b, 1));
    }
    EXPECT_EQ(hasher.finish(), siphash24(kKey, message));
}

TEST(SipHashTest, KeyChangesHash) {
    const SipKey other{kKey.k0 ^ 1, kKey.k1};
    EXPECT_NE(siphash24(kKey, bytes_of("mary")), siphash24(other, bytes_of("mary")));
}

// ---------------------------------------------------------------------------------------
// Tokens and normalisation

std::string normalised(EdmColumnType type, std::string_view value) {
    const auto result = edm_normalise(type, value);
    return result ? result->text : std::string("<none>");
}

TEST(EdmTokensTest, TypeNamesRoundTrip) {
    for (const auto type : {EdmColumnType::Number, EdmColumnType::Email, EdmColumnType::Name,
                 EdmColumnType::Address, EdmColumnType::Text}) {
        EdmColumnType back = EdmColumnType::Text;
        ASSERT_TRUE(edm_column_type_from_name(edm_column_type_name(type), back));
        EXPECT_EQ(back, type);
    }
    EdmColumnType out = EdmColumnType::Text;
    EXPECT_FALSE(edm_column_type_from_name("phone", out));
    EXPECT_FALSE(edm_column_type_from_name("Number", out));
}

TEST(EdmTokensTest, ByteClasses) {
    EXPECT_TRUE(edm_is_word_byte('a'));
    EXPECT_TRUE(edm_is_word_byte('Z'));
    EXPECT_TRUE(edm_is_word_byte('7'));
    EXPECT_TRUE(edm_is_word_byte(0xc3));
    EXPECT_FALSE(edm_is_word_byte(' '));
    EXPECT_FALSE(edm_is_word_byte('.'));
    for (const char c : std::string(".-_@'/")) {
        EXPECT_TRUE(edm_is_joiner(static_cast<uint8_t>(c))) << c;
    }
    EXPECT_FALSE(edm_is_joiner('+'));  // a space in form data
    EXPECT_FALSE(edm_is_joiner(','));
    EXPECT_FALSE(edm_is_joiner(' '));
    EXPECT_FALSE(edm_is_joiner('a'));
}

TEST(EdmTokensTest, NormalisesNameFromHeaderComment) {
    EXPECT_EQ(normalised(EdmColumnType::Name, "  Mary  O'Brien, "), "mary o'brien");
    EXPECT_EQ(edm_normalise(EdmColumnType::Name, "  Mary  O'Brien, ")->words, 2U);
}

TEST(EdmTokensTest, NoBreakSpaceSeparatesAndOtherUtf8Stays) {
    EXPECT_EQ(normalised(EdmColumnType::Name, "Mary\xc2\xa0O'Brien"), "mary o'brien");
    EXPECT_EQ(normalised(EdmColumnType::Name, "Mary.\xc2\xa0J\xc3\xb6rg"), "mary j\xc3\xb6rg");
    EXPECT_EQ(normalised(EdmColumnType::Name, "\xa0x\xc2"), "\xa0x\xc2");  // no pair: bytes kept
}

TEST(EdmTokensTest, NormalisesNumberFromHeaderComment) {
    EXPECT_EQ(normalised(EdmColumnType::Number, "4001-2345 67"), "4001234567");
    EXPECT_EQ(edm_normalise(EdmColumnType::Number, "4001-2345 67")->words, 1U);
}

TEST(EdmTokensTest, KeepsEmailAsOneWord) {
    const auto email = edm_normalise(EdmColumnType::Email, "John.Doe@Example.COM");
    ASSERT_TRUE(email);
    EXPECT_EQ(email->text, "john.doe@example.com");
    EXPECT_EQ(email->words, 1U);
}

TEST(EdmTokensTest, DropsJoinersAtWordEnds) {
    EXPECT_EQ(normalised(EdmColumnType::Address, "12 Main Street."), "12 main street");
    EXPECT_EQ(normalised(EdmColumnType::Name, "-Smith-"), "smith");
    EXPECT_EQ(normalised(EdmColumnType::Name, "'twas"), "twas");
}

TEST(EdmTokensTest, DoubleJoinerSeparatesWords) {
    EXPECT_EQ(normalised(EdmColumnType::Text, "a--b"), "a b");
    EXPECT_EQ(normalised(EdmColumnType::Text, "a-.b"), "a b");
    EXPECT_EQ(normalised(EdmColumnType::Text, "a-b.c"), "a-b.c");
}

TEST(EdmTokensTest, OtherBytesSeparateWords) {
    EXPECT_EQ(
            normalised(EdmColumnType::Text, "alpha,beta;gamma\t(delta)"), "alpha beta gamma delta");
}

TEST(EdmTokensTest, KeepsUtf8Bytes) {
    EXPECT_EQ(normalised(EdmColumnType::Name, "J\xc3\x9cRGEN M\xc3\xbcller"),
            "j\xc3\x9crgen m\xc3\xbcller");
}

TEST(EdmTokensTest, EmptyAndPunctuationOnlyGiveNothing) {
    EXPECT_FALSE(edm_normalise(EdmColumnType::Name, ""));
    EXPECT_FALSE(edm_normalise(EdmColumnType::Name, "   "));
    EXPECT_FALSE(edm_normalise(EdmColumnType::Text, ".,;-'/ !"));
    EXPECT_FALSE(edm_normalise(EdmColumnType::Number, "--"));
}

TEST(EdmTokensTest, LongWordIsNotAValue) {
    const std::string word64(64, 'a');
    const std::string word65(65, 'a');
    EXPECT_EQ(normalised(EdmColumnType::Text, word64), word64);
    EXPECT_FALSE(edm_normalise(EdmColumnType::Text, "x " + word65));
}

TEST(EdmTokensTest, MoreThanEightWordsIsNotAValue) {
    EXPECT_EQ(edm_normalise(EdmColumnType::Address, "a b c d e f g h")->words, 8U);
    EXPECT_FALSE(edm_normalise(EdmColumnType::Address, "a b c d e f g h i"));
}

TEST(EdmTokensTest, NumberKeepsDigitsAcrossSeparators) {
    EXPECT_EQ(normalised(EdmColumnType::Number, "+1 (555) 123-4567"), "15551234567");
    EXPECT_EQ(normalised(EdmColumnType::Number, "12.345.678/0001-90"), "12345678000190");
}

TEST(EdmTokensTest, NumberWithLettersIsNotANumber) {
    EXPECT_FALSE(edm_normalise(EdmColumnType::Number, "ACC-123456"));
    EXPECT_FALSE(edm_normalise(EdmColumnType::Number, "123456 x"));
}

TEST(EdmTokensTest, NumberOfMoreThan32DigitsIsNotANumber) {
    EXPECT_EQ(normalised(EdmColumnType::Number, std::string(32, '7')), std::string(32, '7'));
    EXPECT_FALSE(edm_normalise(
            EdmColumnType::Number, std::string(16, '1') + " " + std::string(17, '2')));
}

TEST(EdmTokensTest, LongEnoughLimits) {
    EXPECT_FALSE(edm_long_enough(
            EdmColumnType::Number, *edm_normalise(EdmColumnType::Number, "12-345")));
    EXPECT_FALSE(
            edm_long_enough(EdmColumnType::Number, *edm_normalise(EdmColumnType::Number, "12345")));
    EXPECT_TRUE(edm_long_enough(
            EdmColumnType::Number, *edm_normalise(EdmColumnType::Number, "123-456")));
    EXPECT_FALSE(edm_long_enough(EdmColumnType::Name, *edm_normalise(EdmColumnType::Name, "Bob")));
    EXPECT_TRUE(edm_long_enough(EdmColumnType::Name, *edm_normalise(EdmColumnType::Name, "Al Li")));
    // Three characters of two bytes each are still three characters.
    EXPECT_FALSE(edm_long_enough(
            EdmColumnType::Name, *edm_normalise(EdmColumnType::Name, "\xc3\xa9\xc3\xa9\xc3\xa9")));
}

TEST(EdmTokensTest, NormaliseIntoReusesBuffer) {
    EdmNormalised out;
    ASSERT_TRUE(edm_normalise_into(EdmColumnType::Name, "Some Rather Long Name Here", out));
    EXPECT_EQ(out.text, "some rather long name here");
    EXPECT_TRUE(edm_normalise_into(EdmColumnType::Name, "Ann", out));
    EXPECT_EQ(out.text, "ann");
    EXPECT_EQ(out.words, 1U);
}

TEST(EdmTokensTest, ValueHashCombinesWordHashes) {
    const auto value = edm_normalise(EdmColumnType::Name, "Mary O'Brien");
    ASSERT_TRUE(value);
    EXPECT_EQ(edm_value_hash(kKey, EdmColumnType::Name, *value),
            edm_combine(edm_word_hash(kKey, "mary"), edm_word_hash(kKey, "o'brien")));
}

TEST(EdmTokensTest, ValueHashOfOneWordIsWordHash) {
    const auto value = edm_normalise(EdmColumnType::Email, "a.b@example.org");
    EXPECT_EQ(edm_value_hash(kKey, EdmColumnType::Email, *value),
            edm_word_hash(kKey, "a.b@example.org"));
}

TEST(EdmTokensTest, NumberHashIsTaggedSipHash) {
    const auto value = edm_normalise(EdmColumnType::Number, "4001-2345 67");
    EXPECT_EQ(edm_value_hash(kKey, EdmColumnType::Number, *value),
            siphash24(kKey, bytes_of("N4001234567")));
    EXPECT_EQ(edm_word_hash(kKey, "mary"), siphash24(kKey, bytes_of("Tmary")));
}

TEST(EdmTokensTest, CombineIsOrderDependent) {
    const uint64_t a = edm_word_hash(kKey, "mary");
    const uint64_t b = edm_word_hash(kKey, "smith");
    EXPECT_NE(edm_combine(a, b), edm_combine(b, a));
}

// ---------------------------------------------------------------------------------------
// Index

EdmSchema customer_schema() {
    EdmSchema schema;
    schema.table = "customers";
    schema.columns = {{"account_number", EdmColumnType::Number}, {"full_name", EdmColumnType::Name},
            {"email", EdmColumnType::Email}, {"street_address", EdmColumnType::Address}};
    schema.primary = 0;
    return schema;
}

using Row = std::array<std::string, 4>;

/// Deterministic fake customers: distinct accounts, names, e-mails and addresses.
std::vector<Row> customers(size_t n) {
    static constexpr std::array<const char*, 8> kFirst = {
            "Mary", "John", "Aisha", "Bjorn", "Chen", "Dolores", "Emeka", "Farida"};
    static constexpr std::array<const char*, 8> kLast = {
            "O'Brien", "Smith", "Nakamura", "Kowalski", "Haddad", "Okafor", "Larsen", "Quispe"};
    static constexpr std::array<const char*, 4> kStreet = {
            "Harbour Road", "Elm Street", "Mill Lane", "Kingsway Avenue"};
    std::vector<Row> rows;
    for (size_t i = 0; i < n; ++i) {
        const std::string first = kFirst[i % 8];
        const std::string last =
                std::string(kLast[(i / 8) % 8]) + (i >= 64 ? std::to_string(i) : "");
        std::string email = first + "." + last + "@example.net";
        std::replace(email.begin(), email.end(), '\'', 'x');
        rows.push_back({std::to_string(900000000 + i * 7919), first + " " + last, email,
                std::to_string(10 + i) + " " + kStreet[i % 4] + " Apt "
                        + std::to_string(i % 50 + 3)});
    }
    return rows;
}

std::vector<std::string_view> views(const Row& row) {
    return {row.begin(), row.end()};
}

uint64_t hash_of(EdmColumnType type, std::string_view value) {
    return edm_value_hash(kKey, type, *edm_normalise(type, value));
}

std::vector<uint8_t> read_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void write_file(const std::string& path, const std::vector<uint8_t>& bytes) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(bytes.data()),
            static_cast<std::streamsize>(bytes.size()));
}

/// Builds `rows` into dir/name and returns the path.
std::string build_index(const TempDir& dir, const std::vector<Row>& rows,
        const std::string& name = "t.edm", bool force = false) {
    EdmIndexBuilder builder(customer_schema(), kKey, force);
    for (const auto& row : rows) {
        const auto values = views(row);
        EXPECT_TRUE(builder.add_row(values).ok());
    }
    const std::string path = dir.file(name);
    const auto written = builder.write(path);
    EXPECT_TRUE(written.ok()) << (written.ok() ? "" : written.error());
    return path;
}

TEST(EdmIndexTest, RoundTripFindsEveryPrimary) {
    TempDir dir{"exfiltap_edm"};
    const auto rows = customers(300);
    auto loaded = EdmIndex::load(build_index(dir, rows), kKey);
    ASSERT_TRUE(loaded.ok()) << loaded.error();
    const auto& index = **loaded;
    EXPECT_EQ(index.rows(), 300U);
    for (uint32_t r = 0; r < rows.size(); ++r) {
        EXPECT_EQ(index.find_primary(hash_of(EdmColumnType::Number, rows[r][0])), r);
    }
}

TEST(EdmIndexTest, RoundTripKeepsFingerprintsOfOtherColumns) {
    TempDir dir{"exfiltap_edm"};
    const auto rows = customers(300);
    auto loaded = EdmIndex::load(build_index(dir, rows), kKey);
    ASSERT_TRUE(loaded.ok()) << loaded.error();
    const auto& index = **loaded;
    ASSERT_EQ(index.other_columns(), 3U);
    const std::array<EdmColumnType, 4> types = {EdmColumnType::Number, EdmColumnType::Name,
            EdmColumnType::Email, EdmColumnType::Address};
    for (uint32_t r = 0; r < rows.size(); ++r) {
        const uint32_t row = index.find_primary(hash_of(EdmColumnType::Number, rows[r][0]));
        for (uint32_t slot = 0; slot < 3; ++slot) {
            const uint32_t column = index.column_of_slot(slot);
            const uint32_t fp = EdmIndex::fingerprint_of(hash_of(types[column], rows[r][column]));
            EXPECT_EQ(index.fingerprint(row, slot), fp);
            EXPECT_TRUE(index.maybe_value(fp));
        }
    }
}

TEST(EdmIndexTest, RoundTripKeepsSchemaAndWords) {
    TempDir dir{"exfiltap_edm"};
    auto loaded = EdmIndex::load(build_index(dir, customers(100)), kKey);
    ASSERT_TRUE(loaded.ok()) << loaded.error();
    const auto& index = **loaded;
    EXPECT_EQ(index.schema().table, "customers");
    ASSERT_EQ(index.schema().columns.size(), 4U);
    EXPECT_EQ(index.schema().columns[3].name, "street_address");
    EXPECT_EQ(index.schema().columns[2].type, EdmColumnType::Email);
    EXPECT_EQ(index.schema().primary, 0U);
    EXPECT_EQ(index.max_words(), 5U);  // "10 harbour road apt 3"
    EXPECT_TRUE(index.has_numbers());
    EXPECT_EQ(index.column_of_slot(0), 1U);
    EXPECT_EQ(index.filter_values(), 300U);
    EXPECT_GT(index.memory_bytes(), 0U);
}

TEST(EdmIndexTest, PrimaryInMiddleColumnMapsSlots) {
    EdmIndex* none = nullptr;
    (void)none;
    TempDir dir{"exfiltap_edm"};
    EdmSchema schema = customer_schema();
    schema.primary = 2;
    EdmIndexBuilder builder(schema, kKey, false);
    const auto rows = customers(20);
    for (const auto& row : rows) {
        ASSERT_TRUE(builder.add_row(views(row)).value());
    }
    ASSERT_TRUE(builder.write(dir.file("m.edm")).ok());
    auto loaded = EdmIndex::load(dir.file("m.edm"), kKey);
    ASSERT_TRUE(loaded.ok()) << loaded.error();
    const uint32_t row = (*loaded)->find_primary(hash_of(EdmColumnType::Email, rows[5][2]));
    ASSERT_EQ(row, 5U);
    EXPECT_EQ((*loaded)->column_of_slot(2), 3U);
    EXPECT_EQ((*loaded)->fingerprint(row, 2),
            EdmIndex::fingerprint_of(hash_of(EdmColumnType::Address, rows[5][3])));
}

TEST(EdmIndexTest, AbsentValuesAreRarelyInFilter) {
    TempDir dir{"exfiltap_edm"};
    auto loaded = EdmIndex::load(build_index(dir, customers(1000)), kKey);
    ASSERT_TRUE(loaded.ok()) << loaded.error();
    std::mt19937_64 rng(7);
    int hits = 0;
    int primary_hits = 0;
    for (int i = 0; i < 10000; ++i) {
        const uint64_t h = rng();
        hits += (*loaded)->maybe_value(EdmIndex::fingerprint_of(h)) ? 1 : 0;
        primary_hits += (*loaded)->find_primary(h) != EdmIndex::kNoRow ? 1 : 0;
    }
    // 3,000 fingerprints of 2^32: the expected false positives are 0.007 in 10,000.
    EXPECT_LE(hits, 2);
    EXPECT_EQ(primary_hits, 0);
    EXPECT_EQ((*loaded)->find_primary(hash_of(EdmColumnType::Number, "123456789012")),
            EdmIndex::kNoRow);
    EXPECT_FALSE((*loaded)->maybe_value(
            EdmIndex::fingerprint_of(hash_of(EdmColumnType::Name, "Nobody Atall"))));
    EXPECT_FALSE((*loaded)->maybe_value(0));
}

/// The words of a text value as edm_normalise cuts them.
std::vector<std::string> words_of(EdmColumnType type, std::string_view value) {
    std::vector<std::string> words;
    const auto n = edm_normalise(type, value);
    if (!n) {
        return words;
    }
    size_t begin = 0;
    while (begin <= n->text.size()) {
        const size_t end = std::min(n->text.find(' ', begin), n->text.size());
        words.push_back(n->text.substr(begin, end - begin));
        begin = end + 1;
    }
    return words;
}

TEST(EdmIndexTest, WordFilterPassesEveryWordOfStoredTextValues) {
    TempDir dir{"exfiltap_edm"};
    const auto rows = customers(2000);
    auto loaded = EdmIndex::load(build_index(dir, rows), kKey);
    ASSERT_TRUE(loaded.ok()) << loaded.error();
    ASSERT_TRUE((*loaded)->has_word_filter());
    const std::array<EdmColumnType, 4> types = {EdmColumnType::Number, EdmColumnType::Name,
            EdmColumnType::Email, EdmColumnType::Address};
    size_t checked = 0;
    for (const auto& row : rows) {
        for (size_t c = 1; c < row.size(); ++c) {
            for (const auto& word : words_of(types[c], row[c])) {
                ++checked;
                EXPECT_TRUE((*loaded)->maybe_word(edm_word_hash(kKey, word))) << word;
            }
        }
    }
    EXPECT_GT(checked, 14000U);
}

TEST(EdmIndexTest, WordFilterHoldsTextPrimaryWords) {
    TempDir dir{"exfiltap_edm"};
    EdmSchema schema = customer_schema();
    schema.primary = 2;  // email
    EdmIndexBuilder builder(schema, kKey, false);
    const auto rows = customers(50);
    for (const auto& row : rows) {
        ASSERT_TRUE(builder.add_row(views(row)).value());
    }
    ASSERT_TRUE(builder.write(dir.file("p.edm")).ok());
    auto loaded = EdmIndex::load(dir.file("p.edm"), kKey);
    ASSERT_TRUE(loaded.ok()) << loaded.error();
    for (const auto& row : rows) {
        const auto email = edm_normalise(EdmColumnType::Email, row[2]);
        EXPECT_TRUE((*loaded)->maybe_word(edm_word_hash(kKey, email->text))) << email->text;
    }
}

TEST(EdmIndexTest, WordFilterRejectsMostRandomHashes) {
    // 4,096 distinct words: exactly 16 bits each in the smallest filter (2^16 bits), the
    // filter's design load (about 1.4% false positives).
    TempDir dir{"exfiltap_edm"};
    EdmSchema schema;
    schema.table = "words";
    schema.columns = {{"id", EdmColumnType::Number}, {"note", EdmColumnType::Text}};
    EdmIndexBuilder builder(schema, kKey, false);
    for (int i = 0; i < 1024; ++i) {
        const std::string id = std::to_string(100000 + i);
        const std::string note = "wa" + std::to_string(i) + " wb" + std::to_string(i) + " wc"
                + std::to_string(i) + " wd" + std::to_string(i);
        const std::vector<std::string_view> row = {id, note};
        ASSERT_TRUE(builder.add_row(row).value());
    }
    EXPECT_EQ(builder.report().distinct_words, 4096U);
    ASSERT_TRUE(builder.write(dir.file("w.edm")).ok());
    EXPECT_EQ(builder.word_filter_bytes(), 8192U);
    auto loaded = EdmIndex::load(dir.file("w.edm"), kKey);
    ASSERT_TRUE(loaded.ok()) << loaded.error();
    EXPECT_EQ((*loaded)->word_filter_log2(), 16U);
    std::mt19937_64 rng(11);
    int passed = 0;
    for (int i = 0; i < 100000; ++i) {
        passed += (*loaded)->maybe_word(rng()) ? 1 : 0;
    }
    EXPECT_LE(passed, 3000) << passed << " of 100,000 random hashes passed";
    EXPECT_FALSE((*loaded)->maybe_word(edm_word_hash(kKey, "nowhere")));
}

TEST(EdmIndexTest, NumberValuesAddNoWords) {
    TempDir dir{"exfiltap_edm"};
    EdmSchema schema;
    schema.table = "accounts";
    schema.columns = {{"account", EdmColumnType::Number}, {"iban", EdmColumnType::Number}};
    EdmIndexBuilder builder(schema, kKey, false);
    const std::vector<std::string_view> row = {"7654321", "0012 3456 7890"};
    ASSERT_TRUE(builder.add_row(row).value());
    EXPECT_EQ(builder.report().values, 2U);
    EXPECT_EQ(builder.report().distinct_words, 0U);
    ASSERT_TRUE(builder.write(dir.file("n.edm")).ok());
    auto loaded = EdmIndex::load(dir.file("n.edm"), kKey);
    ASSERT_TRUE(loaded.ok()) << loaded.error();
    EXPECT_EQ((*loaded)->word_count(), 0U);
    EXPECT_FALSE((*loaded)->maybe_word(edm_word_hash(kKey, "7654321")));
    EXPECT_FALSE((*loaded)->maybe_word(edm_word_hash(kKey, "0012")));
}

TEST(EdmIndexTest, CountsDistinctWordsExactly) {
    EdmIndexBuilder builder(customer_schema(), kKey, false);
    // Words: mary smith m1@example.org 1 elm street | (mary smith) m2@example.org 2 (elm
    // street): 8 distinct. The number column adds none.
    ASSERT_TRUE(builder.add_row(views({"1000001", "Mary Smith", "m1@example.org", "1 Elm Street"}))
                        .value());
    ASSERT_TRUE(builder.add_row(views({"1000002", "MARY  smith", "m2@example.org", "2 Elm Street"}))
                        .value());
    // A skipped row (no primary) adds nothing.
    ASSERT_FALSE(
            builder.add_row(views({"", "Other Person", "o@example.org", "3 Oak Road"})).value());
    EXPECT_EQ(builder.report().distinct_words, 8U);
}

TEST(EdmIndexTest, WordFilterRoundTripsCountAndSize) {
    TempDir dir{"exfiltap_edm"};
    EdmIndexBuilder builder(customer_schema(), kKey, false);
    for (const auto& row : customers(300)) {
        ASSERT_TRUE(builder.add_row(views(row)).value());
    }
    ASSERT_TRUE(builder.write(dir.file("r.edm")).ok());
    auto loaded = EdmIndex::load(dir.file("r.edm"), kKey);
    ASSERT_TRUE(loaded.ok()) << loaded.error();
    EXPECT_EQ((*loaded)->word_count(), builder.report().distinct_words);
    EXPECT_EQ((*loaded)->word_filter_bytes(), builder.word_filter_bytes());
    EXPECT_EQ((*loaded)->word_filter_bytes(), 8192U);  // fewer than 4,096 words: 2^16 bits
    EXPECT_GE((*loaded)->memory_bytes(), 8192U + (*loaded)->primary_capacity() * 12);
}

TEST(EdmIndexTest, WordFilterSizeGrowsWithWords) {
    EXPECT_EQ(EdmIndexBuilder::word_filter_log2(0), 16U);
    EXPECT_EQ(EdmIndexBuilder::word_filter_log2(4096), 16U);
    EXPECT_EQ(EdmIndexBuilder::word_filter_log2(4097), 17U);
    EXPECT_EQ(EdmIndexBuilder::word_filter_log2(3000000), 26U);  // 48M bits: 2^26
    EXPECT_EQ(EdmIndexBuilder::word_filter_log2(uint64_t{1} << 40), 34U);
}

TEST(EdmIndexTest, CountsDuplicatePrimariesAndSkipsThem) {
    EdmIndexBuilder builder(customer_schema(), kKey, false);
    const auto rows = customers(10);
    for (const auto& row : rows) {
        ASSERT_TRUE(builder.add_row(views(row)).value());
    }
    Row again = rows[3];
    again[0] = "9000-23757";  // the same digits as row 3's account, written differently
    ASSERT_EQ(rows[3][0], "900023757");
    EXPECT_FALSE(builder.add_row(views(again)).value());
    EXPECT_EQ(builder.report().duplicate_primaries, 1U);
    EXPECT_EQ(builder.report().rows, 10U);
    EXPECT_EQ(builder.report().values, 40U);
}

TEST(EdmIndexTest, CountsDuplicateValues) {
    EdmIndexBuilder builder(customer_schema(), kKey, false);
    ASSERT_TRUE(builder.add_row(views({"1000001", "Mary Smith", "m1@example.org", "1 Elm Street"}))
                        .value());
    ASSERT_TRUE(builder.add_row(views({"1000002", "MARY  smith", "m2@example.org", "1 Elm Street"}))
                        .value());
    EXPECT_EQ(builder.report().duplicate_values, 2U);
    EXPECT_EQ(builder.report().rows, 2U);
    EXPECT_EQ(builder.report().values, 8U);
}

TEST(EdmIndexTest, SkipsShortValuesUnlessForced) {
    const Row row = {"1000001", "Al", "m1@example.org", "1 Elm Street"};
    const Row short_primary = {"12345", "Anna Berg", "ab@example.org", "2 Elm Street"};
    EdmIndexBuilder normal(customer_schema(), kKey, false);
    EXPECT_TRUE(normal.add_row(views(row)).value());
    EXPECT_FALSE(normal.add_row(views(short_primary)).value());
    EXPECT_EQ(normal.report().short_values, 2U);
    EXPECT_EQ(normal.report().short_per_column, (std::vector<uint64_t>{1, 1, 0, 0}));
    EXPECT_EQ(normal.report().rows_without_primary, 1U);
    EXPECT_EQ(normal.report().values, 3U);

    EdmIndexBuilder forced(customer_schema(), kKey, true);
    EXPECT_TRUE(forced.add_row(views(row)).value());
    EXPECT_TRUE(forced.add_row(views(short_primary)).value());
    EXPECT_EQ(forced.report().short_values, 0U);
    EXPECT_EQ(forced.report().values, 8U);
}

TEST(EdmIndexTest, ForcedShortValueIsFound) {
    TempDir dir{"exfiltap_edm"};
    EdmIndexBuilder forced(customer_schema(), kKey, true);
    ASSERT_TRUE(forced.add_row(views({"1000001", "Al", "m1@example.org", "1 Elm Street"})).value());
    ASSERT_TRUE(forced.write(dir.file("f.edm")).ok());
    auto loaded = EdmIndex::load(dir.file("f.edm"), kKey);
    ASSERT_TRUE(loaded.ok()) << loaded.error();
    EXPECT_EQ((*loaded)->fingerprint(0, 0),
            EdmIndex::fingerprint_of(hash_of(EdmColumnType::Name, "al")));
}

TEST(EdmIndexTest, CountsUnusableAndEmptyValues) {
    EdmIndexBuilder builder(customer_schema(), kKey, false);
    EXPECT_TRUE(builder.add_row(views({"1000001", "a b c d e f g h i", "", "  "})).value());
    EXPECT_FALSE(
            builder.add_row(views({"ACC-1000002", "Anna Berg", "ab@example.org", "x"})).value());
    EXPECT_FALSE(builder.add_row(views({"", "Anna Berg", "ab@example.org", "x"})).value());
    EXPECT_EQ(builder.report().unusable_values, 2U);  // nine words; letters in a number
    EXPECT_EQ(builder.report().rows_without_primary, 2U);
    EXPECT_EQ(builder.report().rows, 1U);
    EXPECT_EQ(builder.report().values, 1U);
}

TEST(EdmIndexTest, RowWithWrongValueCountIsAnError) {
    EdmIndexBuilder builder(customer_schema(), kKey, false);
    const std::vector<std::string_view> three = {"1000001", "Anna Berg", "x@example.org"};
    const auto result = builder.add_row(three);
    ASSERT_FALSE(result.ok());
    EXPECT_NE(result.error().find("3 values"), std::string::npos);
}

TEST(EdmIndexTest, EmptyTableLoads) {
    TempDir dir{"exfiltap_edm"};
    auto loaded = EdmIndex::load(build_index(dir, {}), kKey);
    ASSERT_TRUE(loaded.ok()) << loaded.error();
    EXPECT_EQ((*loaded)->rows(), 0U);
    EXPECT_EQ((*loaded)->find_primary(12345), EdmIndex::kNoRow);
}

TEST(EdmIndexTest, WritesFileWithMode0644) {
    TempDir dir{"exfiltap_edm"};
    EdmIndexBuilder builder(customer_schema(), kKey, false);
    ASSERT_TRUE(builder.write(dir.file("m.edm")).ok());
    struct stat info {};
    ASSERT_EQ(stat(dir.file("m.edm").c_str(), &info), 0);
    EXPECT_EQ(info.st_mode & 0777, 0644U);
    EXPECT_EQ(builder.file_bytes(), static_cast<uint64_t>(info.st_size));
    EXPECT_EQ(std::distance(std::filesystem::directory_iterator(dir.file("")),
                      std::filesystem::directory_iterator()),
            1);  // no temporary file left
}

std::vector<std::string> forms_of(const std::string& value, EdmColumnType type) {
    std::vector<std::string> forms = {value};
    std::string lower = value;
    std::transform(lower.begin(), lower.end(), lower.begin(),
            [](char c) { return static_cast<char>(std::tolower(static_cast<unsigned char>(c))); });
    forms.push_back(lower);
    for (const auto t : {type, EdmColumnType::Text, EdmColumnType::Number}) {
        if (const auto n = edm_normalise(t, value)) {
            forms.push_back(n->text);
        }
    }
    std::string digits;
    std::copy_if(value.begin(), value.end(), std::back_inserter(digits),
            [](char c) { return c >= '0' && c <= '9'; });
    forms.push_back(digits);
    return forms;
}

TEST(EdmIndexTest, FileHoldsNoRawValue) {
    TempDir dir{"exfiltap_edm"};
    const auto rows = customers(200);
    const std::vector<uint8_t> file = read_file(build_index(dir, rows));
    const std::array<EdmColumnType, 4> types = {EdmColumnType::Number, EdmColumnType::Name,
            EdmColumnType::Email, EdmColumnType::Address};
    size_t checked = 0;
    for (const auto& row : rows) {
        for (size_t c = 0; c < row.size(); ++c) {
            for (const auto& form : forms_of(row[c], types[c])) {
                if (form.size() < 4) {
                    continue;  // three bytes occur by chance in 20 KB of hashes
                }
                ++checked;
                EXPECT_EQ(
                        std::search(file.begin(), file.end(), form.begin(), form.end()), file.end())
                        << "row value form found in the index file: column " << c;
            }
        }
    }
    EXPECT_GT(checked, 3000U);
}

TEST(EdmIndexTest, FileHoldsNoWordOfAnyValue) {
    TempDir dir{"exfiltap_edm"};
    const auto rows = customers(200);
    const std::vector<uint8_t> file = read_file(build_index(dir, rows));
    for (const auto& row : rows) {
        for (size_t c = 1; c < row.size(); ++c) {
            const auto n = edm_normalise(EdmColumnType::Text, row[c]);
            size_t begin = 0;
            while (begin < n->text.size()) {
                size_t end = std::min(n->text.find(' ', begin), n->text.size());
                const std::string word = n->text.substr(begin, end - begin);
                // The header names the columns ("street_address"); those are no values.
                if (word.size() >= 5 && word != "street") {
                    EXPECT_EQ(std::search(file.begin(), file.end(), word.begin(), word.end()),
                            file.end())
                            << word;
                }
                begin = end + 1;
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// Load refusals

TEST(EdmIndexLoadTest, WrongKeyIsRefused) {
    TempDir dir{"exfiltap_edm"};
    const std::string path = build_index(dir, customers(20));
    auto loaded = EdmIndex::load(path, SipKey{1, 2});
    ASSERT_FALSE(loaded.ok());
    EXPECT_NE(loaded.error().find("the key does not match"), std::string::npos) << loaded.error();
    EXPECT_EQ(loaded.error().rfind(path + ": ", 0), 0U);
}

TEST(EdmIndexLoadTest, WithoutKeyLoadsForInfo) {
    TempDir dir{"exfiltap_edm"};
    auto loaded = EdmIndex::load_without_key(build_index(dir, customers(20)));
    ASSERT_TRUE(loaded.ok()) << loaded.error();
    EXPECT_EQ((*loaded)->rows(), 20U);
}

TEST(EdmIndexLoadTest, EveryTruncationIsRefused) {
    TempDir dir{"exfiltap_edm"};
    const std::vector<uint8_t> whole = read_file(build_index(dir, customers(5)));
    ASSERT_GT(whole.size(), 100U);
    for (size_t n = 0; n < whole.size(); ++n) {
        const std::vector<uint8_t> cut(whole.begin(), whole.begin() + static_cast<long>(n));
        auto loaded = EdmIndex::load_from_bytes(cut, kKey, "cut");
        EXPECT_FALSE(loaded.ok()) << "length " << n;
    }
    EXPECT_TRUE(EdmIndex::load_from_bytes(whole, kKey, "whole").ok());
}

TEST(EdmIndexLoadTest, TruncatedFileIsRefusedWithName) {
    TempDir dir{"exfiltap_edm"};
    const std::string path = build_index(dir, customers(5));
    std::vector<uint8_t> bytes = read_file(path);
    ASSERT_GT(bytes.size(), 9U);
    bytes.erase(bytes.end() - 9, bytes.end());
    write_file(path, bytes);
    auto loaded = EdmIndex::load(path, kKey);
    ASSERT_FALSE(loaded.ok());
    EXPECT_NE(loaded.error().find("truncated"), std::string::npos) << loaded.error();
}

TEST(EdmIndexLoadTest, ExtraBytesAreRefused) {
    TempDir dir{"exfiltap_edm"};
    std::vector<uint8_t> bytes = read_file(build_index(dir, customers(5)));
    bytes.push_back(0);
    EXPECT_FALSE(EdmIndex::load_from_bytes(bytes, kKey, "x").ok());
}

TEST(EdmIndexLoadTest, EveryFlippedByteIsRefused) {
    TempDir dir{"exfiltap_edm"};
    const std::vector<uint8_t> whole = read_file(build_index(dir, customers(5)));
    for (size_t i = 0; i < whole.size(); ++i) {
        std::vector<uint8_t> bytes = whole;
        bytes[i] ^= 0x10;
        EXPECT_FALSE(EdmIndex::load_from_bytes(bytes, kKey, "x").ok()) << "offset " << i;
    }
}

TEST(EdmIndexLoadTest, FlippedTableByteFailsChecksum) {
    TempDir dir{"exfiltap_edm"};
    std::vector<uint8_t> bytes = read_file(build_index(dir, customers(5)));
    bytes[bytes.size() - 20] ^= 1;
    auto loaded = EdmIndex::load_from_bytes(bytes, kKey, "x");
    ASSERT_FALSE(loaded.ok());
    EXPECT_NE(loaded.error().find("checksum mismatch"), std::string::npos) << loaded.error();
}

TEST(EdmIndexLoadTest, BadMagicIsRefused) {
    TempDir dir{"exfiltap_edm"};
    std::vector<uint8_t> bytes = read_file(build_index(dir, customers(5)));
    bytes[0] = 'Z';
    auto loaded = EdmIndex::load_from_bytes(bytes, kKey, "x");
    ASSERT_FALSE(loaded.ok());
    EXPECT_NE(loaded.error().find("bad magic"), std::string::npos) << loaded.error();
}

/// Rewrites a header field and the checksum, so only the field's check can refuse it.
std::vector<uint8_t> with_field(
        std::vector<uint8_t> bytes, size_t offset, uint64_t value, size_t width) {
    for (size_t i = 0; i < width; ++i) {
        bytes[offset + i] = static_cast<uint8_t>(value >> (8 * i));
    }
    const size_t body = bytes.size() - 8;
    const uint64_t sum = siphash24(kEdmChecksumKey, std::span(bytes).first(body));
    for (size_t i = 0; i < 8; ++i) {
        bytes[body + i] = static_cast<uint8_t>(sum >> (8 * i));
    }
    return bytes;
}

// Header offsets: magic 0, version 8, key check 12, rows 20, columns 24, primary 28,
// max words 32, primary capacity 36, filter capacity 44, word filter log2 52, words 56.
TEST(EdmIndexLoadTest, AbsurdSizesAreRefused) {
    TempDir dir{"exfiltap_edm"};
    const std::vector<uint8_t> whole = read_file(build_index(dir, customers(5)));
    ASSERT_TRUE(EdmIndex::load_from_bytes(with_field(whole, 20, 5, 4), kKey, "x").ok());
    const std::vector<std::tuple<size_t, uint64_t, size_t>> cases = {
            {8, 3, 4},                   // version
            {20, 6, 4},                  // rows
            {20, 0xffffffffULL, 4},      // rows beyond the maximum
            {24, 0, 4},                  // no columns
            {24, 33, 4},                 // too many columns
            {28, 4, 4},                  // primary out of range
            {32, 0, 4},                  // max words
            {32, 9, 4},                  // max words
            {36, 24, 8},                 // capacity not a power of two
            {36, uint64_t{1} << 62, 8},  // capacity beyond the file
            {44, uint64_t{1} << 40, 8},  // capacity beyond the file
            {44, 8, 8},                  // capacity below the minimum
            {52, 15, 4},                 // word filter below the minimum
            {52, 17, 4},                 // word filter larger than its word count needs
            {52, 35, 4},                 // word filter beyond the maximum
            {52, 0xffffffffULL, 4},      // word filter beyond the maximum
            {56, 161, 8},                // more words than 5 x 4 values of 8 words
            {56, uint64_t{1} << 62, 8},  // more words than the values can hold
    };
    for (const auto& [offset, value, width] : cases) {
        auto loaded = EdmIndex::load_from_bytes(with_field(whole, offset, value, width), kKey, "x");
        EXPECT_FALSE(loaded.ok()) << "offset " << offset << " value " << value;
    }
}

TEST(EdmIndexLoadTest, RowNumberOutOfRangeIsRefused) {
    TempDir dir{"exfiltap_edm"};
    std::vector<uint8_t> whole = read_file(build_index(dir, customers(5)));
    // Find the primary rows section: after the header (aligned) and 16 hashes of 8 bytes.
    auto index = EdmIndex::load_from_bytes(whole, kKey, "x");
    ASSERT_TRUE(index.ok());
    ASSERT_EQ((*index)->primary_capacity(), 16U);
    // The sections from the end: checksum, word filter, value filter, fingerprints (5 x 3 x
    // 4 = 60, padded to 64), primary rows (16 x 4), primary hashes (16 x 8).
    const size_t checksum_at = whole.size() - 8;
    const size_t filter_at =
            checksum_at - (*index)->word_filter_bytes() - (*index)->filter_capacity() * 4;
    const size_t fps_at = filter_at - 64;
    const size_t rows_at = fps_at - 64;
    bool changed = false;
    for (size_t slot = 0; slot < 16 && !changed; ++slot) {
        const size_t hash_at = rows_at - 128 + slot * 8;
        if (std::any_of(whole.begin() + static_cast<long>(hash_at),
                    whole.begin() + static_cast<long>(hash_at + 8),
                    [](uint8_t b) { return b != 0; })) {
            whole = with_field(whole, rows_at + slot * 4, 7, 4);
            changed = true;
        }
    }
    ASSERT_TRUE(changed);
    auto loaded = EdmIndex::load_from_bytes(whole, kKey, "x");
    ASSERT_FALSE(loaded.ok());
    EXPECT_NE(loaded.error().find("row number out of range"), std::string::npos) << loaded.error();
}

TEST(EdmIndexLoadTest, FullFilterIsRefused) {
    TempDir dir{"exfiltap_edm"};
    std::vector<uint8_t> whole = read_file(build_index(dir, customers(1)));
    // 3 values: 16 slots, before the smallest word filter (2^16 bits).
    const size_t filter_at = whole.size() - 8 - 8192 - 16 * 4;
    for (size_t i = 0; i < 16; ++i) {
        whole = with_field(whole, filter_at + i * 4, 100 + i, 4);
    }
    auto loaded = EdmIndex::load_from_bytes(whole, kKey, "x");
    ASSERT_FALSE(loaded.ok());
    EXPECT_NE(loaded.error().find("over-full"), std::string::npos) << loaded.error();
}

TEST(EdmIndexLoadTest, VersionOneIsRefusedWithRebuildAdvice) {
    TempDir dir{"exfiltap_edm"};
    const std::vector<uint8_t> whole = read_file(build_index(dir, customers(5)));
    auto loaded = EdmIndex::load_from_bytes(with_field(whole, 8, 1, 4), kKey, "old.edm");
    ASSERT_FALSE(loaded.ok());
    EXPECT_NE(loaded.error().find("old.edm: index format version 1, this build reads 2"),
            std::string::npos)
            << loaded.error();
    EXPECT_NE(loaded.error().find("rebuild the index with this exfiltap-edm"), std::string::npos)
            << loaded.error();
}

TEST(EdmIndexLoadTest, WordFilterCutShortIsRefused) {
    TempDir dir{"exfiltap_edm"};
    std::vector<uint8_t> bytes = read_file(build_index(dir, customers(5)));
    bytes.erase(bytes.end() - 8 - 4096, bytes.end() - 8);  // half the word filter
    auto loaded = EdmIndex::load_from_bytes(bytes, kKey, "x");
    ASSERT_FALSE(loaded.ok());
    EXPECT_NE(loaded.error().find("truncated"), std::string::npos) << loaded.error();
}

TEST(EdmIndexLoadTest, FlippedWordFilterBitFailsChecksum) {
    TempDir dir{"exfiltap_edm"};
    std::vector<uint8_t> bytes = read_file(build_index(dir, customers(5)));
    bytes[bytes.size() - 8 - 1000] ^= 0x04;
    auto loaded = EdmIndex::load_from_bytes(bytes, kKey, "x");
    ASSERT_FALSE(loaded.ok());
    EXPECT_NE(loaded.error().find("checksum mismatch"), std::string::npos) << loaded.error();
}

TEST(EdmIndexLoadTest, WordFilterOfWrongSizeIsRefused) {
    // A header asking for 2^17 bits, and the file holding them (the checksum repaired), is
    // still refused: 2^17 is not the size for its word count.
    TempDir dir{"exfiltap_edm"};
    std::vector<uint8_t> bytes = read_file(build_index(dir, customers(5)));
    bytes.insert(bytes.end() - 8, 8192, 0);
    auto loaded = EdmIndex::load_from_bytes(with_field(bytes, 52, 17, 4), kKey, "x");
    ASSERT_FALSE(loaded.ok());
    EXPECT_NE(loaded.error().find("word filter of 2^17 bits"), std::string::npos) << loaded.error();
}

TEST(EdmIndexLoadTest, OverFullWordFilterIsRefused) {
    TempDir dir{"exfiltap_edm"};
    std::vector<uint8_t> bytes = read_file(build_index(dir, customers(5)));
    const size_t word_filter_at = bytes.size() - 8 - 8192;
    for (size_t i = 0; i < 64; ++i) {
        bytes[word_filter_at + i * 97] = 0xff;
    }
    auto loaded = EdmIndex::load_from_bytes(with_field(bytes, 56, 20, 8), kKey, "x");
    ASSERT_FALSE(loaded.ok());
    EXPECT_NE(loaded.error().find("bad word filter"), std::string::npos) << loaded.error();
}

TEST(EdmIndexLoadTest, MissingFileNamesIt) {
    auto loaded = EdmIndex::load("/nonexistent/x.edm", kKey);
    ASSERT_FALSE(loaded.ok());
    EXPECT_NE(loaded.error().find("/nonexistent/x.edm: cannot open"), std::string::npos);
}

// ---------------------------------------------------------------------------------------
// Key file

TEST(EdmKeyTest, CreatesKeyWithMode0600) {
    TempDir dir{"exfiltap_edm"};
    bool created = false;
    auto key = edm_load_or_create_key(dir.file("edm.key"), &created);
    ASSERT_TRUE(key.ok()) << key.error();
    EXPECT_TRUE(created);
    struct stat info {};
    ASSERT_EQ(stat(dir.file("edm.key").c_str(), &info), 0);
    EXPECT_EQ(info.st_mode & 0777, 0600U);
    EXPECT_EQ(info.st_size, 33);
    auto again = edm_read_key(dir.file("edm.key"));
    ASSERT_TRUE(again.ok());
    EXPECT_EQ(again->k0, key->k0);
    EXPECT_EQ(again->k1, key->k1);
}

TEST(EdmKeyTest, ExistingKeyIsKept) {
    TempDir dir{"exfiltap_edm"};
    auto first = edm_load_or_create_key(dir.file("edm.key"));
    bool created = true;
    auto second = edm_load_or_create_key(dir.file("edm.key"), &created);
    ASSERT_TRUE(first.ok() && second.ok());
    EXPECT_FALSE(created);
    EXPECT_EQ(first->k0, second->k0);
    EXPECT_EQ(first->k1, second->k1);
}

TEST(EdmKeyTest, ReadsHexLittleEndian) {
    TempDir dir{"exfiltap_edm"};
    std::ofstream(dir.file("k")) << "000102030405060708090a0b0c0d0e0F\n";
    auto key = edm_read_key(dir.file("k"));
    ASSERT_TRUE(key.ok()) << key.error();
    EXPECT_EQ(key->k0, 0x0706050403020100ULL);
    EXPECT_EQ(key->k1, 0x0f0e0d0c0b0a0908ULL);
}

TEST(EdmKeyTest, BadKeyFileIsRefused) {
    TempDir dir{"exfiltap_edm"};
    std::ofstream(dir.file("short")) << "0001020304\n";
    std::ofstream(dir.file("nothex")) << "zz0102030405060708090a0b0c0d0e0f\n";
    for (const auto* name : {"short", "nothex", "missing"}) {
        auto key = edm_read_key(dir.file(name));
        ASSERT_FALSE(key.ok()) << name;
        EXPECT_NE(key.error().find(dir.file(name)), std::string::npos);
    }
}

}  // namespace
}  // namespace exfiltap::detectors
