// Exact data match at runtime (EdmStream): records found from bytes as a flow carries them,
// the same whatever the segment boundaries, nothing from values that do not corroborate
// each other, and every bound counted.
#include "detectors/edm_matcher.h"

#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <memory>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include <gtest/gtest.h>

#include "detectors/content_scanner.h"
#include "detectors/edm_index.h"
#include "detectors/edm_tokens.h"

namespace exfiltap::detectors {
namespace {

struct Row {
    std::string account;
    std::string name;
    std::string email;
    std::string street;
    std::string city;
};

Row make_row(int i) {
    static constexpr std::array<std::string_view, 8> kFirst = {
            "Mary", "John", "Aisha", "Pedro", "Chen", "Olga", "Kwame", "Ingrid"};
    static constexpr std::array<std::string_view, 8> kLast = {
            "O'Brien", "Smith", "Okafor", "Alvarez", "Wang", "Petrova", "Mensah", "Berg-Olsen"};
    static constexpr std::array<std::string_view, 5> kStreet = {
            "Maple Avenue", "Harbour Road", "Elm Street", "Quarry Lane", "Birch Court"};
    static constexpr std::array<std::string_view, 4> kCity = {
            "Springfield", "Riverton", "Lakewood", "Fairview"};
    Row row;
    row.account = std::to_string(4100000000ULL + static_cast<uint64_t>(i) * 7919);
    const std::string first(kFirst[i % kFirst.size()]);
    const std::string last(kLast[(i / 8) % kLast.size()]);
    row.name = first + " " + last;
    row.email = "user" + std::to_string(i) + "@example.com";
    row.street = std::to_string(10 + i) + " " + std::string(kStreet[i % kStreet.size()]);
    row.city = std::string(kCity[i % kCity.size()]);
    return row;
}

class EdmMatcherTest : public ::testing::Test {
protected:
    static constexpr int kRows = 500;

    static void SetUpTestSuite() {
        std::array<uint8_t, 16> bytes{};
        for (size_t i = 0; i < bytes.size(); ++i) {
            bytes[i] = static_cast<uint8_t>(0xa0 + i);
        }
        key_ = SipKey::from_bytes(bytes);
        EdmSchema schema;
        schema.table = "customers";
        schema.primary = 0;
        schema.columns = {{"account_number", EdmColumnType::Number},
                {"full_name", EdmColumnType::Name}, {"email", EdmColumnType::Email},
                {"street_address", EdmColumnType::Address}, {"city", EdmColumnType::Text}};
        EdmIndexBuilder builder(schema, key_, false);
        for (int i = 0; i < kRows; ++i) {
            const Row r = make_row(i);
            const std::array<std::string_view, 5> values = {
                    r.account, r.name, r.email, r.street, r.city};
            ASSERT_TRUE(builder.add_row(values).ok());
        }
        const std::string path =
                ::testing::TempDir() + "/edm_matcher_test_" + std::to_string(getpid()) + ".edm";
        ASSERT_TRUE(builder.write(path).ok());
        auto loaded = EdmIndex::load(path, key_);
        std::filesystem::remove(path);
        ASSERT_TRUE(loaded.ok()) << loaded.error();
        index_ = new std::shared_ptr<const EdmIndex>(*loaded);
    }

    static void TearDownTestSuite() {
        delete index_;
        index_ = nullptr;
    }

    void SetUp() override {
        EdmTableRules rules;
        rules.index = *index_;
        rules.min_matches = 2;
        rules.window_bytes = 256;
        tables_.push_back(rules);
    }

    /// Feeds `text` in pieces of `piece` bytes (0: at once) and ends the stream.
    std::vector<Finding> run(std::string_view text, size_t piece = 0) {
        stream_ = std::make_unique<EdmStream>();
        stream_->reset(tables_, counters_);
        FindingSink sink;
        std::vector<Finding> out;
        const auto drain = [&] {
            for (size_t i = 0; i < sink.count; ++i) {
                out.push_back(sink.items[i]);
            }
            sink.clear();
        };
        const auto* bytes = reinterpret_cast<const uint8_t*>(text.data());
        const size_t step = piece == 0 ? text.size() : piece;
        uint64_t offset = 0;
        for (size_t at = 0; at < text.size(); at += step) {
            const size_t n = std::min(step, text.size() - at);
            stream_->scan({bytes + at, n}, offset, false, sink);
            offset += n;
            drain();
        }
        stream_->finish(offset, sink);
        drain();
        return out;
    }

    static std::string csv_line(const Row& r) {
        return r.account + "," + r.name + "," + r.email + "," + r.street + "," + r.city + "\n";
    }

    static uint32_t last_records(const std::vector<Finding>& findings) {
        return findings.empty() ? 0 : findings.back().distinct_count;
    }

    static SipKey key_;
    static std::shared_ptr<const EdmIndex>* index_;
    std::vector<EdmTableRules> tables_;
    EdmCounters counters_;
    std::unique_ptr<EdmStream> stream_;
};

SipKey EdmMatcherTest::key_;
std::shared_ptr<const EdmIndex>* EdmMatcherTest::index_ = nullptr;

TEST_F(EdmMatcherTest, CsvRowsAreEachOneRecord) {
    std::string text = "account_number,full_name,email,street_address,city\n";
    for (int i = 0; i < 10; ++i) {
        text += csv_line(make_row(i * 37 % kRows));
    }

    const auto findings = run(text);

    ASSERT_EQ(findings.size(), 10U);
    for (size_t i = 0; i < findings.size(); ++i) {
        EXPECT_EQ(findings[i].cls, ContentClass::Edm);
        EXPECT_EQ(findings[i].rule, 1);
        EXPECT_EQ(findings[i].value_len, 0);
        EXPECT_EQ(findings[i].distinct_count, i + 1);
        EXPECT_EQ(findings[i].columns, 0x1fU);  // every column of the schema
        EXPECT_EQ(findings[i].confidence, Confidence::High);
    }
    EXPECT_EQ(counters_.records.get(), 10U);
}

TEST_F(EdmMatcherTest, EverySegmentSizeGivesTheSameRecords) {
    std::string text;
    for (int i = 0; i < 12; ++i) {
        text += csv_line(make_row(400 + i));
    }
    for (const size_t piece : {1, 2, 3, 7, 13, 64, 1460}) {
        const auto findings = run(text, piece);
        EXPECT_EQ(last_records(findings), 12U) << "piece " << piece;
        EXPECT_EQ(findings.size(), 12U) << "piece " << piece;
    }
}

TEST_F(EdmMatcherTest, JsonWithOtherFieldOrderMatches) {
    const Row r = make_row(123);
    const std::string text = "[\n  {\n    \"email\": \"" + r.email + "\",\n    \"city\": \""
            + r.city + "\",\n    \"full_name\": \"" + r.name
            + "\",\n    \"account_number\": " + r.account + "\n  }\n]\n";

    const auto findings = run(text);

    ASSERT_EQ(findings.size(), 1U);
    EXPECT_EQ(findings[0].columns, 0x1U | 0x2U | 0x4U | 0x10U);  // no street given
    EXPECT_EQ(findings[0].confidence, Confidence::Low);
}

TEST_F(EdmMatcherTest, PrimaryAloneIsNoRecord) {
    const auto findings = run("account " + make_row(5).account + " was closed\n");

    EXPECT_TRUE(findings.empty());
    EXPECT_EQ(counters_.primary_hits.get(), 1U);
}

TEST_F(EdmMatcherTest, PrimaryWithOneOtherValueIsBelowMinMatches) {
    const Row r = make_row(6);

    EXPECT_TRUE(run(r.account + " " + r.email + "\n").empty());
}

TEST_F(EdmMatcherTest, ValuesOfOtherRowsDoNotCorroborate) {
    std::string text;
    for (int i = 0; i < 20; ++i) {
        const Row a = make_row(i);
        const Row b = make_row(i + 100);
        const Row c = make_row(i + 200);
        text += a.account + "," + b.name + "," + c.email + "," + b.street + "\n";
    }

    EXPECT_TRUE(run(text).empty());
    EXPECT_EQ(counters_.primary_hits.get(), 20U);
}

TEST_F(EdmMatcherTest, ValuesOutsideTheWindowDoNotCorroborate) {
    const Row r = make_row(42);
    const std::string filler(300, ' ');

    EXPECT_TRUE(run(r.email + filler + r.account + filler + r.name + "\n").empty());
    EXPECT_EQ(last_records(run(r.email + " " + r.account + " " + r.name + "\n")), 1U);
}

TEST_F(EdmMatcherTest, ValuesAfterThePrimaryCorroborateToo) {
    const Row r = make_row(77);

    const auto findings = run(r.account + ";" + r.street + ";" + r.name + "\n");

    ASSERT_EQ(findings.size(), 1U);
    EXPECT_EQ(findings[0].columns, 0x1U | 0x2U | 0x8U);
}

TEST_F(EdmMatcherTest, RepeatedRowCountsOnce) {
    const std::string line = csv_line(make_row(9));

    EXPECT_EQ(last_records(run(line + line + line)), 1U);
}

TEST_F(EdmMatcherTest, CaseAndSpacingAreFolded) {
    const Row r = make_row(31);
    std::string name = r.name;
    for (char& c : name) {
        c = static_cast<char>(toupper(static_cast<unsigned char>(c)));
    }
    const std::string spaced =
            name.substr(0, name.find(' ')) + "   \t " + name.substr(name.find(' ') + 1);

    EXPECT_EQ(last_records(run(r.account + "|" + spaced + "|" + r.city + "\n")), 1U);
}

TEST_F(EdmMatcherTest, NumberWithSeparatorsMatchesItsDigits) {
    const Row r = make_row(50);
    const std::string grouped =
            r.account.substr(0, 4) + "-" + r.account.substr(4, 3) + " " + r.account.substr(7);

    EXPECT_EQ(last_records(run(grouped + " " + r.name + " " + r.email + "\n")), 1U);
}

TEST_F(EdmMatcherTest, FormEncodedValuesMatch) {
    const Row r = make_row(8);  // "Mary O'Brien" is row 0's name; row 8's: "Mary Smith"
    std::string name = r.name;
    for (char& c : name) {
        c = c == ' ' ? '+' : c;
    }
    std::string email = r.email;
    email.replace(email.find('@'), 1, "%40");

    const auto findings =
            run("acct=" + r.account + "&name=" + name + "&email=" + email + "&city=" + r.city, 5);

    ASSERT_EQ(findings.size(), 1U);
    EXPECT_EQ(findings[0].columns, 0x1U | 0x2U | 0x4U | 0x10U);
}

TEST_F(EdmMatcherTest, EscapedApostropheAndSplitEscapeDecode) {
    const Row r = make_row(0);  // Mary O'Brien
    ASSERT_EQ(r.name, "Mary O'Brien");
    const std::string text = r.account + " Mary+O%27Brien " + r.email + "\n";

    for (const size_t piece : {1, 2, 3, 64}) {
        EXPECT_EQ(last_records(run(text, piece)), 1U) << "piece " << piece;
    }
    // A '%' that starts no escape is a separator as before.
    EXPECT_EQ(last_records(run(r.account + "%" + r.name + "%zz " + r.email + "%4")), 1U);
}

TEST_F(EdmMatcherTest, JsonEscapesDecode) {
    const Row r = make_row(0);  // Mary O'Brien
    std::string email = r.email;
    email.replace(email.find('@'), 1, "\\u0040");
    const std::string text =
            "{\"a\":" + r.account + ",\"n\":\"Mary O\\u0027Brien\",\"e\":\"" + email + "\"}";

    for (const size_t piece : {1, 4, 64}) {
        const auto findings = run(text, piece);
        ASSERT_EQ(findings.size(), 1U) << "piece " << piece;
        EXPECT_EQ(findings[0].columns, 0x1U | 0x2U | 0x4U);
    }
    // Not an escape: a backslash and what follows are taken as they are.
    EXPECT_EQ(last_records(run(r.account + " \\x " + r.name + " \\u00 " + r.email)), 1U);
}

TEST_F(EdmMatcherTest, NoBreakSpaceSeparatesWords) {
    const Row r = make_row(0);
    const std::string text = r.account + "\xc2\xa0Mary\xc2\xa0O'Brien.\xc2\xa0" + r.email;

    for (const size_t piece : {1, 64}) {
        EXPECT_EQ(last_records(run(text, piece)), 1U) << "piece " << piece;
    }
}

TEST_F(EdmMatcherTest, GapBreaksAWordAcrossIt) {
    const Row r = make_row(60);
    const std::string text = r.account + " " + r.name + " " + r.email + "\n";
    const auto* bytes = reinterpret_cast<const uint8_t*>(text.data());
    EdmStream stream;
    stream.reset(tables_, counters_);
    FindingSink sink;
    // The account number is cut by a gap: its first half is lost to the matcher.
    stream.scan({bytes, 5}, 0, false, sink);
    stream.scan({bytes + 5, text.size() - 5}, 5, true, sink);
    stream.finish(text.size(), sink);

    EXPECT_EQ(sink.count, 0U);
}

TEST_F(EdmMatcherTest, BulkExportReportsTheRunningTotal) {
    std::string text;
    for (int i = 0; i < 200; ++i) {
        text += csv_line(make_row(i));
    }

    const auto findings = run(text, 1460);  // a worker takes findings out per segment

    // 64 one by one, then every 64th (128, 192), then the total at the end (200).
    ASSERT_EQ(findings.size(), 64U + 2U + 1U);
    EXPECT_EQ(findings[63].distinct_count, 64U);
    EXPECT_EQ(findings[64].distinct_count, 128U);
    EXPECT_EQ(findings[65].distinct_count, 192U);
    EXPECT_EQ(findings.back().distinct_count, 200U);
}

TEST_F(EdmMatcherTest, FullHitListIsCounted) {
    tables_[0].window_bytes = 1U << 20;
    std::string text;
    for (int i = 0; i < 200; ++i) {
        text += make_row(i).email + " ";  // values without their primaries
    }

    run(text);

    EXPECT_GT(counters_.hits_overwritten.get(), 0U);
}

TEST_F(EdmMatcherTest, FullWaitingListIsCounted) {
    std::string text;
    for (int i = 0; i < static_cast<int>(EdmStream::kMaxCandidates) + 5; ++i) {
        text += make_row(i).account + " ";  // primaries that never corroborate
    }

    EXPECT_TRUE(run(text).empty());
    EXPECT_EQ(counters_.candidates_dropped.get(), 5U);
}

TEST_F(EdmMatcherTest, StreamTokeniserAgreesWithIndexNormalisation) {
    // Random text from word bytes, joiners and separators: every value the index builder
    // would store for a text (its normalised hash) is found by the streaming tokeniser.
    std::mt19937 rng(7);
    const std::string alphabet = "abAB19..--'@_+/ ,;\t\n\"\xc2\xa0\xc3";
    for (int round = 0; round < 300; ++round) {
        std::string text;
        const size_t len = 1 + rng() % 40;
        for (size_t i = 0; i < len; ++i) {
            text += alphabet[rng() % alphabet.size()];
        }
        const auto normalised = edm_normalise(EdmColumnType::Text, text);
        if (!normalised || normalised->words > 3) {
            continue;
        }
        const uint64_t expected = edm_value_hash(key_, EdmColumnType::Text, *normalised);
        // Collect every sequence hash the stream computes, via a one-row index of that value.
        EdmSchema schema;
        schema.table = "t";
        schema.primary = 0;
        schema.columns = {{"v", EdmColumnType::Text}};
        EdmIndexBuilder builder(schema, key_, true);
        const std::array<std::string_view, 1> values = {text};
        ASSERT_TRUE(builder.add_row(values).ok());
        const std::string path =
                ::testing::TempDir() + "/edm_tok_" + std::to_string(getpid()) + ".edm";
        ASSERT_TRUE(builder.write(path).ok());
        auto index = EdmIndex::load(path, key_);
        std::filesystem::remove(path);
        ASSERT_TRUE(index.ok()) << index.error();
        ASSERT_EQ((*index)->find_primary(expected), 0U) << text;
        std::vector<EdmTableRules> tables(1);
        tables[0].index = *index;
        tables[0].min_matches = 0;
        for (const size_t piece : {size_t{1}, text.size()}) {
            EdmStream stream;
            EdmCounters counters;
            stream.reset(tables, counters);
            FindingSink sink;
            const auto* bytes = reinterpret_cast<const uint8_t*>(text.data());
            for (size_t at = 0; at < text.size(); at += piece) {
                stream.scan({bytes + at, std::min(piece, text.size() - at)}, at, false, sink);
            }
            stream.finish(text.size(), sink);
            EXPECT_EQ(stream.records(0), 1U) << "'" << text << "' piece " << piece;
        }
    }
}

TEST_F(EdmMatcherTest, TableOfItsPrimaryColumnOnlyCountsThePrimary) {
    EdmSchema schema;
    schema.table = "accounts";
    schema.primary = 0;
    schema.columns = {{"account_number", EdmColumnType::Number}};
    EdmIndexBuilder builder(schema, key_, false);
    for (int i = 0; i < 10; ++i) {
        const std::string account = make_row(i).account;
        const std::array<std::string_view, 1> values = {account};
        ASSERT_TRUE(builder.add_row(values).ok());
    }
    const std::string path =
            ::testing::TempDir() + "/edm_accounts_" + std::to_string(getpid()) + ".edm";
    ASSERT_TRUE(builder.write(path).ok());
    auto index = EdmIndex::load(path, key_);
    std::filesystem::remove(path);
    ASSERT_TRUE(index.ok()) << index.error();
    tables_[0].index = *index;  // min_matches stays 2: there is nothing else to match

    EXPECT_EQ(last_records(run(make_row(3).account + " " + make_row(4).account)), 2U);
}

TEST(EdmStatePoolTest, ExhaustionIsCountedAndBlocksComeBack) {
    std::vector<EdmTableRules> tables;
    EdmStatePool pool(2);
    EdmStream* a = pool.acquire(tables);
    EdmStream* b = pool.acquire(tables);
    ASSERT_NE(a, nullptr);
    ASSERT_NE(b, nullptr);

    EXPECT_EQ(pool.acquire(tables), nullptr);
    EXPECT_EQ(pool.counters().state_exhausted.get(), 1U);
    pool.release(a);
    EXPECT_EQ(pool.acquire(tables), a);
    EXPECT_EQ(pool.in_use(), 2U);
}

}  // namespace
}  // namespace exfiltap::detectors
