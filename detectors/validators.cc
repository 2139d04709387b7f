#include "detectors/validators.h"

#include <algorithm>
#include <array>
#include <atomic>
#include <bit>
#include <cctype>
#include <cstdint>
#include <cstring>
#include <utility>

#if defined(__SSE2__) && defined(__x86_64__)
#include <emmintrin.h>
#endif
#if defined(__SSSE3__) && defined(__x86_64__)
#include <immintrin.h>
#include <tmmintrin.h>
#endif

#include "detectors/char_class.h"

namespace exfiltap::detectors {

void Candidate::assign_tail(std::string_view text) noexcept {
    if (text.size() > value.size()) {
        text.remove_prefix(text.size() - value.size());
    }
    std::copy(text.begin(), text.end(), value.begin());
    len = static_cast<uint8_t>(text.size());
}

namespace {

constexpr size_t kMinCardDigits = 12;
constexpr size_t kMaxCardDigits = 19;

// The word-at-a-time readers take byte i of a word as lane i (bits 8i..8i+7).
static_assert(std::endian::native == std::endian::little);
constexpr uint64_t kLanes = 0x0101010101010101ULL;

constexpr uint64_t kEvenLanes = 0x00ff00ff00ff00ffULL;

// Eight bytes at `q` as lanes: digits become 0..9; `non_digit` gets the high bit of every
// lane that is not a digit (its low seven bits 10 or more, or its high bit set; the masked
// add cannot carry into the next lane).
uint64_t digit_lanes(const char* q, uint64_t& non_digit) noexcept {
    uint64_t w = 0;
    std::memcpy(&w, q, sizeof(w));
    const uint64_t t = w ^ (kLanes * '0');
    non_digit = ((((t & (kLanes * 0x7f)) + kLanes * 0x76) | t) & (kLanes * 0x80));
    return t;
}

// Each digit lane doubled for Luhn: 2d, less 9 from 5 up (no lane carries or borrows).
uint64_t doubled_digits(uint64_t d) noexcept {
    const uint64_t five_up = ((d + kLanes * 0x7b) & (kLanes * 0x80)) >> 7;
    return (d << 1) - five_up * 9;
}

// The sum of all lanes; their total must stay below 256 (eight digit lanes, some doubled,
// are at most 72).
uint64_t lane_sum(uint64_t lanes) noexcept {
    return (lanes * kLanes) >> 56;
}

// The longest layout with separators (4-4-4-4-3) has five groups.
constexpr size_t kMaxLayoutGroups = kCardLayoutGroups;
constexpr size_t kSsnChars = 11;  // ddd-dd-dddd
constexpr std::array<size_t, 9> kSsnDigitPositions = {0, 1, 2, 4, 5, 7, 8, 9, 10};

// Published test numbers of card networks and payment processors: they fill documentation,
// sample configs and test suites, so a match on them says nothing about real card data.
constexpr std::array<std::string_view, 34> kTestCards = {
        "4111111111111111",
        "4242424242424242",
        "4012888888881881",
        "4222222222222",
        "4000056655665556",
        "4000000000000002",
        "4000000000000077",
        "4000002500003155",
        "4000000000003220",
        "4917610000000000",
        "4444333322221111",
        "5555555555554444",
        "5105105105105100",
        "5200828282828210",
        "5454545454545454",
        "5500000000000004",
        "2223003122003222",
        "378282246310005",
        "371449635398431",
        "378734493671000",
        "340000000000009",
        "6011111111111117",
        "6011000990139424",
        "6011000000000004",
        "3530111333300000",
        "3566002020360505",
        "30569309025904",
        "3056930009020004",
        "38520000023237",
        "36227206271667",
        "5019717010103742",
        "6331101999990016",
        "6200000000000005",
        "6205500000000000004",
};

// Up to the first eight characters of `text` as a word, the first in the low byte: a
// comparison of it settles most lookups in kTestCards (every finding makes one).
constexpr uint64_t head_word(std::string_view text) noexcept {
    uint64_t word = 0;
    for (size_t i = 0; i < 8 && i < text.size(); ++i) {
        word |= uint64_t{static_cast<uint8_t>(text[i])} << (8 * i);
    }
    return word;
}

constexpr auto kTestCardHeads = [] {
    std::array<uint64_t, kTestCards.size()> heads{};
    for (size_t i = 0; i < kTestCards.size(); ++i) {
        heads[i] = head_word(kTestCards[i]);
    }
    return heads;
}();

// A head's bit in kTestCardFilter (the 34 heads set 28 of 256 bits): nine in ten other heads
// find their bit clear, and the lookup ends there without a pass over the heads.
constexpr unsigned head_bit(uint64_t head) noexcept {
    return static_cast<unsigned>((head * 0x9e3779b97f4a7c15ULL) >> 56);
}

constexpr auto kTestCardFilter = [] {
    std::array<uint64_t, 4> bits{};
    for (const uint64_t head : kTestCardHeads) {
        bits[head_bit(head) / 64] |= uint64_t{1} << (head_bit(head) % 64);
    }
    return bits;
}();

// Longest IBAN of the registry is 34 characters; in groups of four that is 9 groups.
constexpr size_t kMaxIbanChars = 34;
constexpr size_t kMaxIbanGroups = 9;

struct IbanCountry {
    std::string_view code;
    unsigned length;
};

// ISO 13616 registry lengths, sorted by country code for binary search.
constexpr std::array<IbanCountry, 88> kIbanLengths = {{
        {"AD", 24},
        {"AE", 23},
        {"AL", 28},
        {"AT", 20},
        {"AZ", 28},
        {"BA", 20},
        {"BE", 16},
        {"BG", 22},
        {"BH", 22},
        {"BI", 27},
        {"BR", 29},
        {"BY", 28},
        {"CH", 21},
        {"CR", 22},
        {"CY", 28},
        {"CZ", 24},
        {"DE", 22},
        {"DJ", 27},
        {"DK", 18},
        {"DO", 28},
        {"EE", 20},
        {"EG", 29},
        {"ES", 24},
        {"FI", 18},
        {"FK", 18},
        {"FO", 18},
        {"FR", 27},
        {"GB", 22},
        {"GE", 22},
        {"GI", 23},
        {"GL", 18},
        {"GR", 27},
        {"GT", 28},
        {"HR", 21},
        {"HU", 28},
        {"IE", 22},
        {"IL", 23},
        {"IQ", 23},
        {"IS", 26},
        {"IT", 27},
        {"JO", 30},
        {"KW", 30},
        {"KZ", 20},
        {"LB", 28},
        {"LC", 32},
        {"LI", 21},
        {"LT", 20},
        {"LU", 20},
        {"LV", 21},
        {"LY", 25},
        {"MC", 27},
        {"MD", 24},
        {"ME", 22},
        {"MK", 19},
        {"MN", 20},
        {"MR", 27},
        {"MT", 31},
        {"MU", 30},
        {"NI", 28},
        {"NL", 18},
        {"NO", 15},
        {"OM", 23},
        {"PK", 24},
        {"PL", 28},
        {"PS", 29},
        {"PT", 25},
        {"QA", 29},
        {"RO", 24},
        {"RS", 22},
        {"RU", 33},
        {"SA", 24},
        {"SC", 31},
        {"SD", 18},
        {"SE", 24},
        {"SI", 19},
        {"SK", 24},
        {"SM", 27},
        {"SO", 23},
        {"ST", 25},
        {"SV", 28},
        {"TL", 23},
        {"TN", 24},
        {"TR", 26},
        {"UA", 29},
        {"VA", 22},
        {"VG", 24},
        {"XK", 20},
        {"YE", 30},
}};

// Example IBANs of ISO 13616, the European Committee for Banking Standards and banks'
// format guides: copied into forms, tests and documentation everywhere.
constexpr std::array<std::string_view, 22> kTestIbans = {
        "DE89370400440532013000",
        "DE44500105175407324931",
        "GB29NWBK60161331926819",
        "GB82WEST12345698765432",
        "GB33BUKB20201555555555",
        "FR1420041010050500013M02606",
        "NL91ABNA0417164300",
        "BE68539007547034",
        "CH9300762011623852957",
        "CH5604835012345678009",
        "ES9121000418450200051332",
        "IT60X0542811101000000123456",
        "AT611904300234573201",
        "PL61109010140000071219812874",
        "SE4550000000058398257466",
        "DK5000400440116243",
        "FI2112345600000785",
        "NO9386011117947",
        "LU280019400644750000",
        "IE29AIBK93115212345678",
        "PT50000201231234567890154",
        "SA0380000000608010167519",
};

bool is_iban_char(char c) {
    return is_digit(c) || is_upper(c);
}

// Groups of an IBAN candidate's run, last first: upper-case letters and digits joined by
// single spaces.
struct IbanRun {
    std::array<size_t, kMaxIbanGroups> starts{};
    std::array<size_t, kMaxIbanGroups> lens{};
    size_t groups = 0;
};

IbanRun walk_iban_run(std::string_view text, size_t end) {
    IbanRun run;
    size_t group_end = end;
    while (run.groups < kMaxIbanGroups) {
        size_t i = group_end;
        while (i > 0 && is_iban_char(text[i - 1]) && group_end - i <= kMaxIbanChars) {
            --i;
        }
        if (group_end - i > kMaxIbanChars) {
            break;  // longer than any IBAN: the groups found so far may still start one
        }
        run.starts[run.groups] = i;
        run.lens[run.groups] = group_end - i;
        ++run.groups;
        if (i < 2 || text[i - 1] != ' ' || !is_iban_char(text[i - 2])) {
            break;
        }
        group_end = i - 1;
    }
    return run;
}

// The IBAN made of groups first..0 of `run`: printed form (every group but the last of
// four characters) or compact (one group), a clean start, and a valid check.
Candidate read_iban(std::string_view text, const IbanRun& run, size_t first) {
    for (size_t g = first; g > 0; --g) {
        if (run.lens[g] != 4) {
            return {};
        }
    }
    if (first > 0 && run.lens[0] > 4) {
        return {};
    }
    const size_t start = run.starts[first];
    if (start > 0 && is_word(text[start - 1])) {
        return {};
    }
    Candidate candidate;
    candidate.start = start;
    for (size_t g = first + 1; g-- > 0;) {
        for (size_t i = run.starts[g]; i < run.starts[g] + run.lens[g]; ++i) {
            candidate.push(text[i]);
        }
    }
    candidate.ok = iban_valid(candidate.view());
    return candidate;
}

// Eight bytes a step, then one at a time.
bool all_digits(std::string_view text) {
    size_t i = 0;
    for (; i + 8 <= text.size(); i += 8) {
        uint64_t non_digit = 0;
        digit_lanes(text.data() + i, non_digit);
        if (non_digit != 0) {
            return false;
        }
    }
    for (; i < text.size(); ++i) {
        if (!is_digit(text[i])) {
            return false;
        }
    }
    return !text.empty();
}

// The first `count` digits as a number; the caller has checked that they exist.
unsigned prefix(std::string_view digits, size_t count) {
    unsigned value = 0;
    for (size_t i = 0; i < count; ++i) {
        value = value * 10 + static_cast<unsigned>(digits[i] - '0');
    }
    return value;
}

// PAN lengths as a bit set: bit n allows n digits.
constexpr uint32_t length_bit(unsigned n) {
    return uint32_t{1} << n;
}

constexpr uint32_t length_range(unsigned low, unsigned high) {
    uint32_t bits = 0;
    for (unsigned n = low; n <= high; ++n) {
        bits |= length_bit(n);
    }
    return bits;
}

struct IinRange {
    unsigned prefix_digits;
    unsigned low;
    unsigned high;
    CardBrand brand;
    uint32_t lengths;
};

constexpr uint32_t kLong = length_range(16, 19);

// The first range holding the number's prefix decides the brand, even when the length is
// wrong for it: a 15-digit number starting with 4 is no card, not some other brand.
// Discover's co-branded 622126-622925 sits inside UnionPay's 62, so it comes first.
constexpr std::array<IinRange, 22> kIinRanges = {{
        {1, 4, 4, CardBrand::Visa, length_bit(13) | length_bit(16) | length_bit(19)},
        {2, 51, 55, CardBrand::Mastercard, length_bit(16)},
        {4, 2221, 2720, CardBrand::Mastercard, length_bit(16)},
        {2, 34, 34, CardBrand::Amex, length_bit(15)},
        {2, 37, 37, CardBrand::Amex, length_bit(15)},
        {4, 6011, 6011, CardBrand::Discover, kLong},
        {3, 644, 649, CardBrand::Discover, kLong},
        {2, 65, 65, CardBrand::Discover, kLong},
        {6, 622126, 622925, CardBrand::Discover, kLong},
        {4, 3528, 3589, CardBrand::Jcb, kLong},
        {3, 300, 305, CardBrand::Diners, length_range(14, 19)},
        {2, 36, 36, CardBrand::Diners, length_range(14, 19)},
        {2, 38, 39, CardBrand::Diners, length_range(14, 19)},
        {2, 62, 62, CardBrand::UnionPay, kLong},
        {4, 5018, 5018, CardBrand::Maestro, length_range(12, 19)},
        {4, 5020, 5020, CardBrand::Maestro, length_range(12, 19)},
        {4, 5038, 5038, CardBrand::Maestro, length_range(12, 19)},
        {4, 5893, 5893, CardBrand::Maestro, length_range(12, 19)},
        {4, 6304, 6304, CardBrand::Maestro, length_range(12, 19)},
        {4, 6759, 6759, CardBrand::Maestro, length_range(12, 19)},
        {4, 6761, 6763, CardBrand::Maestro, length_range(12, 19)},
        {4, 2200, 2204, CardBrand::Mir, kLong},
}};

// kIinRanges' bounds widened to six digits: 4 covers 400000-499999.
constexpr unsigned kIinPrefixDigits = 6;
static_assert(kMinCardDigits >= kIinPrefixDigits);
constexpr auto kIinSixDigitBounds = [] {
    std::array<std::pair<unsigned, unsigned>, kIinRanges.size()> bounds{};
    for (size_t i = 0; i < kIinRanges.size(); ++i) {
        unsigned low = kIinRanges[i].low;
        unsigned high = kIinRanges[i].high;
        for (unsigned p = kIinRanges[i].prefix_digits; p < kIinPrefixDigits; ++p) {
            low = low * 10;
            high = high * 10 + 9;
        }
        bounds[i] = {low, high};
    }
    return bounds;
}();

// For each card length, the four-digit prefixes card_brand() may accept: bit x of
// kIinPrefixes[n - kMinCardDigits]. A superset: a six-digit range admits every four-digit
// prefix it spans, and a range that takes the prefix does not hide the later ones.
using PrefixBits = std::array<uint64_t, (10000 + 63) / 64>;
constexpr auto kIinPrefixes = [] {
    std::array<PrefixBits, kMaxCardDigits - kMinCardDigits + 1> table{};
    for (const IinRange& range : kIinRanges) {
        unsigned low = range.low;
        unsigned high = range.high;
        for (unsigned p = range.prefix_digits; p < 4; ++p) {
            low = low * 10;
            high = high * 10 + 9;
        }
        for (unsigned p = range.prefix_digits; p > 4; --p) {
            low /= 10;
            high /= 10;
        }
        for (unsigned n = kMinCardDigits; n <= kMaxCardDigits; ++n) {
            if ((range.lengths & length_bit(n)) == 0) {
                continue;
            }
            for (unsigned x = low; x <= high; ++x) {
                table[n - kMinCardDigits][x / 64] |= uint64_t{1} << (x % 64);
            }
        }
    }
    return table;
}();

// Whether a card number of `length` digits starting with the four digits `head` may have
// a brand.
bool iin_possible(unsigned head, uint64_t length) noexcept {
    return ((kIinPrefixes[length - kMinCardDigits][head / 64] >> (head % 64)) & 1) != 0;
}

// The digit-and-separator run that ends at a value's end, as groups found walking back:
// index 0 is the last group.
struct Run {
    std::array<size_t, kMaxLayoutGroups> starts{};
    std::array<size_t, kMaxLayoutGroups> lens{};
    size_t groups = 0;
};

// Groups are given last group first, as the backward walk finds them.
bool is_card_layout(const std::array<size_t, kMaxLayoutGroups>& lens_reversed, size_t groups) {
    auto len = [&](size_t forward_index) {
        return lens_reversed[groups - 1 - forward_index];
    };
    switch (groups) {
    case 1:
        return len(0) >= kMinCardDigits && len(0) <= kMaxCardDigits;
    case 3:
        return len(0) == 4 && len(1) == 6 && (len(2) == 5 || len(2) == 4);
    case 4:
        return len(0) == 4 && len(1) == 4 && len(2) == 4 && len(3) == 4;
    case 5:
        return len(0) == 4 && len(1) == 4 && len(2) == 4 && len(3) == 4 && len(4) == 3;
    default:
        return false;
    }
}

// "%3D", "%20", "%3A" and the like: a URL-encoded separator, not part of a word
// ("q=card%3D4857..." in a query string or a form body).
bool percent_escape_before(std::string_view text, size_t start) {
    return start >= 3 && text[start - 3] == '%'
            && std::isxdigit(static_cast<unsigned char>(text[start - 2])) != 0
            && std::isxdigit(static_cast<unsigned char>(text[start - 1])) != 0;
}

// The character before a value starting at `start` must end a token, not continue one.
// A '.' after a digit means the value is the fraction of a decimal number.
bool clean_before(std::string_view text, size_t start) {
    if (start == 0 || percent_escape_before(text, start)) {
        return true;
    }
    const char c = text[start - 1];
    if (is_word(c)) {
        return false;
    }
    return !(c == '.' && start >= 2 && is_digit(text[start - 2]));
}

bool clean_after(std::string_view text, size_t end) {
    return end >= text.size() || !is_word(text[end]);
}

// A number may be followed by letters ("card=4857...DDDD" padding must not hide it), not by
// another digit.
bool number_ends(std::string_view text, size_t end) {
    return end >= text.size() || !is_digit(text[end]);
}

// At most two distinct characters: 0000..., 1212..., 4000...0.
bool is_filler(std::string_view digits) {
    if (digits.empty()) {
        return true;
    }
    char first = digits[0];
    char second = 0;
    for (const char c : digits) {
        if (c == first || c == second) {
            continue;
        }
        if (second != 0) {
            return false;
        }
        second = c;
    }
    return true;
}

// Walks back from `end` over groups of digits joined by single separators of one kind.
// False when the last group alone is longer than any card number.
bool walk_run(std::string_view text, size_t end, Run& run) {
    char separator = 0;
    size_t group_end = end;
    while (run.groups < kMaxLayoutGroups) {
        // One digit past the longest card number is enough to tell an over-long group.
        const size_t lowest = group_end > kMaxCardDigits + 1 ? group_end - kMaxCardDigits - 1 : 0;
        size_t i = group_end;
        while (i > lowest && is_digit(text[i - 1])) {
            --i;
        }
        if (group_end - i > kMaxCardDigits) {
            // An over-long earlier group ends the run; the groups after it may hold a value.
            return run.groups > 0;
        }
        run.starts[run.groups] = i;
        run.lens[run.groups] = group_end - i;
        ++run.groups;
        if (i < 2 || !is_number_separator(text[i - 1]) || !is_digit(text[i - 2])) {
            break;
        }
        if (separator != 0 && text[i - 1] != separator) {
            break;
        }
        separator = text[i - 1];
        group_end = i - 1;
    }
    return true;
}

// `candidate` (its digits and start set) when Luhn, the brand ranges and, if asked, the test
// number list accept its digits.
Candidate accept_card(Candidate& candidate, bool reject_test_numbers) noexcept {
    const std::string_view digits = candidate.view();
    if (!luhn_valid(digits) || card_brand(digits) == CardBrand::None) {
        return {};
    }
    if (reject_test_numbers && is_test_or_filler_card(digits)) {
        return {};
    }
    candidate.ok = true;
    return candidate;
}

// The boundary rules of extract_card() for a value written from `start` to `end`.
bool card_bounds_ok(std::string_view text, size_t start, size_t end) {
    if (!clean_before(text, start)) {
        return false;
    }
    // A MIME boundary token such as "=====...1234==" is not a value.
    return !(start > 0 && text[start - 1] == '=' && end < text.size() && text[end] == '=');
}

// The value made of the last `groups` groups of `run`, if every rule accepts it.
Candidate read_suffix(std::string_view text, size_t end, const Run& run, size_t groups,
        bool reject_test_numbers) {
    if (!is_card_layout(run.lens, groups)) {
        return {};
    }
    const size_t start = run.starts[groups - 1];
    if (!card_bounds_ok(text, start, end)) {
        return {};
    }
    Candidate candidate;
    candidate.start = start;
    // A layout holds at most kMaxCardDigits digits: the value has room for all of them.
    static_assert(kMaxCardDigits <= kMaxValueLen);
    for (size_t g = groups; g-- > 0;) {
        std::memcpy(
                candidate.value.data() + candidate.len, text.data() + run.starts[g], run.lens[g]);
        candidate.len = static_cast<uint8_t>(candidate.len + run.lens[g]);
    }
    return accept_card(candidate, reject_test_numbers);
}

// Bytes of four groups of four digits and their three separators.
constexpr size_t kFourFoursBytes = 19;

// True when the kFourFoursBytes bytes at `q` are four groups of four digits joined by one
// separator kind: three eight-byte reads, each with its one non-digit in lane 4.
bool four_fours_at(const char* q) noexcept {
    constexpr uint64_t kLaneFour = uint64_t{0x80} << 32;
    uint64_t a = 0;
    uint64_t b = 0;
    uint64_t c = 0;
    digit_lanes(q, a);
    digit_lanes(q + 5, b);
    digit_lanes(q + 10, c);
    const char separator = q[4];
    return a == kLaneFour && b == kLaneFour && c == kLaneFour && is_digit(q[18])
            && is_number_separator(separator) && q[9] == separator && q[14] == separator;
}

}  // namespace

// Eight digits a step from the end (every finding's value is checked, and each of a card
// number's suffixes that extract_card() tries): with an even count of digits after them, the
// last of each eight is single and lanes 0, 2, 4 and 6 are doubled.
bool luhn_valid(std::string_view digits) noexcept {
    if (digits.empty()) {
        return false;
    }
    uint64_t sum = 0;
    size_t i = digits.size();
    for (; i >= 8; i -= 8) {
        uint64_t non_digit = 0;
        const uint64_t d = digit_lanes(digits.data() + i - 8, non_digit);
        if (non_digit != 0) {
            return false;
        }
        sum += lane_sum((d & ~kEvenLanes) | (doubled_digits(d) & kEvenLanes));
    }
    bool twice = false;
    while (i-- > 0) {
        if (!is_digit(digits[i])) {
            return false;
        }
        auto d = static_cast<unsigned>(digits[i] - '0');
        if (twice) {
            d *= 2;
            if (d > 9) {
                d -= 9;
            }
        }
        sum += d;
        twice = !twice;
    }
    return sum % 10 == 0;
}

CardBrand card_brand(std::string_view digits) noexcept {
    const size_t n = digits.size();
    if (n < kMinCardDigits || n > kMaxCardDigits || !all_digits(digits)) {
        return CardBrand::None;
    }
    // Every range compared on the first six digits (the longest prefix of the table).
    const unsigned first_six = prefix(digits, kIinPrefixDigits);
    for (size_t i = 0; i < kIinRanges.size(); ++i) {
        if (first_six >= kIinSixDigitBounds[i].first && first_six <= kIinSixDigitBounds[i].second) {
            const IinRange& range = kIinRanges[i];
            return (range.lengths & length_bit(static_cast<unsigned>(n))) != 0 ? range.brand
                                                                               : CardBrand::None;
        }
    }
    return CardBrand::None;
}

bool is_test_or_filler_card(std::string_view digits) noexcept {
    if (digits.empty() || is_filler(digits)) {
        return true;
    }
    uint64_t head = 0;
    if (digits.size() >= sizeof(head)) {
        std::memcpy(&head, digits.data(), sizeof(head));
    } else {
        head = head_word(digits);
    }
    const unsigned bit = head_bit(head);
    if (((kTestCardFilter[bit / 64] >> (bit % 64)) & 1) == 0) {
        return false;
    }
    for (size_t i = 0; i < kTestCards.size(); ++i) {
        if (kTestCardHeads[i] == head && kTestCards[i] == digits) {
            return true;
        }
    }
    return false;
}

bool ssn_valid(std::string_view digits) noexcept {
    if (digits.size() != 9 || !all_digits(digits)) {
        return false;
    }
    const unsigned area = prefix(digits, 3);
    const unsigned group = prefix(digits.substr(3), 2);
    const unsigned serial = prefix(digits.substr(5), 4);
    if (area == 0 || area == 666 || area >= 900 || group == 0 || serial == 0) {
        return false;
    }
    // Printed on a wallet insert sample (1938) and in an advertisement: used by many people.
    return digits != "078051120" && digits != "219099999";
}

Candidate extract_card(std::string_view text, size_t end, bool reject_test_numbers) noexcept {
    if (end == 0 || end > text.size() || !is_digit(text[end - 1]) || !number_ends(text, end)) {
        return {};
    }
    // Four groups of four digits before `end` (digit-dense data, and most cards as written),
    // the first not preceded by a digit: the walk below would find them first, and the only
    // layout that ends with them is theirs (the five-group one ends with three digits), so
    // it would try them alone. (A digit before them makes the walk's first group longer,
    // and clean_before() may still pass it: "%11" is a URL escape.)
    if (end >= kFourFoursBytes && four_fours_at(text.data() + end - kFourFoursBytes)
            && (end == kFourFoursBytes || !is_digit(text[end - kFourFoursBytes - 1]))) {
        const size_t start = end - kFourFoursBytes;
        if (!card_bounds_ok(text, start, end)) {
            return {};
        }
        Candidate candidate;
        candidate.start = start;
        candidate.len = 16;
        for (size_t g = 0; g < 4; ++g) {
            std::memcpy(candidate.value.data() + 4 * g, text.data() + start + 5 * g, 4);
        }
        return accept_card(candidate, reject_test_numbers);
    }
    return extract_card_by_walk(text, end, reject_test_numbers);
}

Candidate extract_card_by_walk(
        std::string_view text, size_t end, bool reject_test_numbers) noexcept {
    if (end == 0 || end > text.size() || !is_digit(text[end - 1]) || !number_ends(text, end)) {
        return {};
    }
    Run run;
    if (!walk_run(text, end, run)) {
        return {};
    }
    // The whole run first, then the shorter suffixes that start at a group start, so that a
    // number written before the value ("Amount 100 5335 7053 ...") does not hide it.
    for (size_t k = run.groups; k > 0; --k) {
        const Candidate candidate = read_suffix(text, end, run, k, reject_test_numbers);
        if (candidate.ok) {
            return candidate;
        }
    }
    return {};
}

void CardRunTracker::reset(uint64_t offset) noexcept {
    known_from_ = offset;
    next_ = offset;
    low_ = offset;
    long_joint_low_ = UINT64_MAX;
    groups_ = 0;
    lens_ = 0;
    sums_plain_ = 0;
    sums_twice_ = 0;
    len0_ = 0;
    separator_ = 0;
    last_ = 0;
    before_last_ = 0;
    long_group_ = false;
}

namespace {

constexpr uint64_t kLowByte = 0xff;

// `packed` with its low byte replaced by `value`.
uint64_t with_newest(uint64_t packed, uint64_t value) noexcept {
    return (packed & ~kLowByte) | value;
}

// The sum of the low `bytes` bytes of `packed` (each at most 36: at most 180 in all).
unsigned sum_bytes(uint64_t packed, unsigned bytes) noexcept {
    const uint64_t kept = packed & ((uint64_t{1} << (8 * bytes)) - 1);
    return static_cast<unsigned>((kept * 0x0101010101010101ULL) >> 56);
}

}  // namespace

// Luhn value of a doubled digit.
constexpr std::array<uint8_t, 10> kDoubled = {0, 2, 4, 6, 8, 1, 3, 5, 7, 9};

namespace {

// The first four digit lanes as a number: pairs first (lanes 0 and 2), then the two pairs.
unsigned first_four(uint64_t d) noexcept {
    const uint64_t low = d & 0xffffffff;
    const uint64_t pairs = (low * 10 + (low >> 8)) & 0x00ff00ff;
    return static_cast<unsigned>((pairs & 0xff) * 100 + ((pairs >> 16) & 0xff));
}

// The digits at the start of `q` when fewer than eight of them are followed by a non-digit
// within the eight bytes read (false otherwise): their count and both Luhn sums, eight bytes
// at a time (the card groups of a digit-dense stream are 3 to 6 digits).
bool read_short_group(
        const char* q, size_t& len, unsigned& head, unsigned& plain, unsigned& twice) noexcept {
    uint64_t non_digit = 0;
    const uint64_t t = digit_lanes(q, non_digit);
    if (non_digit == 0) {
        return false;
    }
    len = static_cast<size_t>(__builtin_ctzll(non_digit)) / 8;
    const uint64_t d = t & ((uint64_t{1} << (8 * len)) - 1);  // len <= 7
    const uint64_t doubled = doubled_digits(d);
    // With the last digit single, the lanes of len's parity are doubled.
    const uint64_t doubled_lanes = (len % 2 == 0) ? kEvenLanes : ~kEvenLanes;
    head = first_four(d);
    plain = static_cast<unsigned>(lane_sum((d & ~doubled_lanes) | (doubled & doubled_lanes)));
    twice = static_cast<unsigned>(lane_sum((d & doubled_lanes) | (doubled & ~doubled_lanes)));
    return true;
}

// Blocks of three groups of four digits, each group after one byte that is not a digit and
// followed by one: q[1..4], q[6..9] and q[11..14] are digits, q[0], q[5], q[10] and q[15]
// are not (16 bytes are read). A digit-dense run is made of them, one every 15 bytes. One
// 16-byte load each; SSE2, which every x86-64 has (elsewhere the tracker reads the groups
// one at a time).
#if defined(__SSE2__) && defined(__x86_64__)
// The bytes of a block holding each group's first digit, and with it its sums below.
constexpr int kGroupBytes = 0x0842;

// The bytes of a block that are digits: 1-4, 6-9 and 11-14.
constexpr int kDigitBytes = 0x7bde;

// The block's bytes less '0' (`t`), when they hold the pattern above.
bool block_digits(const char* q, __m128i& t) noexcept {
    t = _mm_sub_epi8(_mm_loadu_si128(reinterpret_cast<const __m128i*>(q)), _mm_set1_epi8('0'));
    const __m128i digit = _mm_cmpeq_epi8(_mm_min_epu8(t, _mm_set1_epi8(9)), t);
    return _mm_movemask_epi8(digit) == kDigitBytes;
}

// Byte tables of the block readers, one 16-byte vector each (the AVX2 reader takes each
// into both of its lanes).
using ByteTable = std::array<int8_t, 16>;
// The first and third digit of each group are doubled, the second and fourth single.
constexpr ByteTable kDoubledAt = {0, -1, 0, -1, 0, 0, -1, 0, -1, 0, 0, -1, 0, -1, 0, 0};
constexpr ByteTable kSingleAt = {0, 0, -1, 0, -1, 0, 0, -1, 0, -1, 0, 0, -1, 0, -1, 0};
// kDoubled as a pshufb table.
constexpr ByteTable kDoubledTable = {0, 2, 4, 6, 8, 1, 3, 5, 7, 9, 0, 0, 0, 0, 0, 0};

template <typename Byte>
__m128i load_table(const std::array<Byte, 16>& table) noexcept {
    return _mm_loadu_si128(reinterpret_cast<const __m128i*>(table.data()));
}

// The Luhn sum of each group with its last digit single, at bytes 1, 6 and 11 (each at most
// 36; the other bytes hold partial sums).
__m128i block_sums(__m128i t) noexcept {
    const __m128i doubled_at = load_table(kDoubledAt);
    const __m128i single_at = load_table(kSingleAt);
#if defined(__SSSE3__)
    // Doubled values by lookup.
    const __m128i doubled = _mm_shuffle_epi8(load_table(kDoubledTable), t);
#else
    // d + d, less 9 from 5 up.
    const __m128i five_up = _mm_and_si128(_mm_cmpgt_epi8(t, _mm_set1_epi8(4)), _mm_set1_epi8(9));
    const __m128i doubled = _mm_sub_epi8(_mm_add_epi8(t, t), five_up);
#endif
    const __m128i lanes =
            _mm_or_si128(_mm_and_si128(t, single_at), _mm_and_si128(doubled, doubled_at));
    // Byte i becomes the sum of bytes i to i + 3.
    const __m128i halves = _mm_add_epi8(lanes, _mm_srli_si128(lanes, 1));
    return _mm_add_epi8(halves, _mm_srli_si128(halves, 2));
}

// Three groups at once: their Luhn sums as the tracker keeps them (the last group in the low
// byte); false when `q` does not hold a block.
bool read_three_fours(const char* q, uint32_t& plains) noexcept {
    __m128i t;
    if (!block_digits(q, t)) {
        return false;
    }
    const __m128i sums = block_sums(t);
    const auto low = static_cast<uint64_t>(_mm_cvtsi128_si64(sums));
    const auto high = static_cast<uint64_t>(_mm_cvtsi128_si64(_mm_srli_si128(sums, 8)));
    plains = static_cast<uint32_t>(((high >> 24) & kLowByte) | ((low >> 40) & (kLowByte << 8))
            | ((low << 8) & (kLowByte << 16)));
    return true;
}
#else
bool read_three_fours(const char* /*q*/, uint32_t& /*plains*/) noexcept {
    return false;
}
#endif

#if defined(__SSSE3__) && defined(__x86_64__)
#define EXFILTAP_SETTLED_BLOCKS 1

// For the first digit of a group (index), the second digits with which the group may start
// a 16-digit number of some brand (a superset of iin_possible(head, 16) for its four
// digits): bit d of the low table for d < 8, bit d - 8 of the high one.
struct PairTables {
    std::array<uint8_t, 16> low{};
    std::array<uint8_t, 16> high{};
};
constexpr PairTables kSixteenPairs = [] {
    PairTables tables;
    constexpr size_t kSixteen = 16 - kMinCardDigits;
    for (unsigned head = 0; head < 10000; ++head) {
        if (((kIinPrefixes[kSixteen][head / 64] >> (head % 64)) & 1) == 0) {
            continue;
        }
        const unsigned first = head / 1000;
        const unsigned second = (head / 100) % 10;
        if (second < 8) {
            tables.low[first] |= static_cast<uint8_t>(1U << second);
        } else {
            tables.high[first] |= static_cast<uint8_t>(1U << (second - 8));
        }
    }
    return tables;
}();

// pshufb tables of block_no_brand(): bit d of a byte for d < 8, and bit d - 8.
constexpr ByteTable kBitLow = {1, 2, 4, 8, 16, 32, 64, -128, 0, 0, 0, 0, 0, 0, 0, 0};
constexpr ByteTable kBitHigh = {0, 0, 0, 0, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 0, 0};
// pshufb tables of multiples_of_ten(): 6h mod 10 for a high nibble h, -l mod 10 for a low one.
constexpr ByteTable kSixHigh = {0, 6, 2, 8, 4, 0, 6, 2, 8, 4, 0, 0, 0, 0, 0, 0};
constexpr ByteTable kMinusLow = {0, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0, 9, 8, 7, 6, 5};

// 0xff at bytes 1, 6 and 11 for each group of a block (`t` from block_digits()) whose first
// two digits start no 16-digit brand prefix (other bytes: any value).
__m128i block_no_brand(__m128i t) noexcept {
    const __m128i second = _mm_srli_si128(t, 1);
    const __m128i bit_low = _mm_shuffle_epi8(load_table(kBitLow), second);
    const __m128i bit_high = _mm_shuffle_epi8(load_table(kBitHigh), second);
    const __m128i allowed =
            _mm_or_si128(_mm_and_si128(_mm_shuffle_epi8(load_table(kSixteenPairs.low), t), bit_low),
                    _mm_and_si128(_mm_shuffle_epi8(load_table(kSixteenPairs.high), t), bit_high));
    return _mm_cmpeq_epi8(allowed, _mm_setzero_si128());
}

// 0xff in each byte that is a multiple of ten (bytes at most 159): 16h + l is 6h + l
// modulo 10, so it is one when 6h mod 10 equals -l mod 10.
__m128i multiples_of_ten(__m128i sums) noexcept {
    const __m128i nibble = _mm_set1_epi8(0x0f);
    const __m128i high = _mm_and_si128(_mm_srli_epi16(sums, 4), nibble);
    const __m128i low = _mm_and_si128(sums, nibble);
    return _mm_cmpeq_epi8(_mm_shuffle_epi8(load_table(kSixHigh), high),
            _mm_shuffle_epi8(load_table(kMinusLow), low));
}

// What skip_settled_blocks() carries from one block to the next. The sums of the previous
// block one byte up: a group's sum then sits 5 bytes before the next one's across the two
// vectors (a block is 15 bytes long). A window's sum is that of two pairs of neighbouring
// groups: the pair ending at its last group and the one 10 bytes before, each kept one byte
// up the same way.
struct SkipState {
    __m128i before;        // the previous block's sums, one byte up
    __m128i pairs_before;  // its pair sums, one byte up
    __m128i older;         // `before` of the block before that
    __m128i no_brand;      // block_no_brand() of the previous block
};

SkipState skip_state(uint64_t plains, __m128i no_brand) noexcept {
    const __m128i packed = _mm_cvtsi64_si128(static_cast<long long>(plains));
    const __m128i from_plains = _mm_setr_epi8(-1, -1, 2, -1, -1, -1, -1, 1, -1, -1, -1, -1, 0, -1,
            -1, -1);  // plains' bytes 2, 1 and 0 to bytes 2, 7 and 12
    const __m128i next_older = _mm_setr_epi8(-1, -1, -1, -1, -1, -1, -1, 2, -1, -1, -1, -1, 1, -1,
            -1, -1);  // plains' bytes 2 and 1 to bytes 7 and 12
    SkipState state;
    state.before = _mm_shuffle_epi8(packed, from_plains);
    state.pairs_before = _mm_add_epi8(state.before, _mm_shuffle_epi8(packed, next_older));
    state.older = state.before;
    state.no_brand = no_brand;
    return state;
}

// The block at q: true, and the state moved past it, when it ends no card value.
// A window that passes Luhn with a two-digit brand prefix is checked here as advance_fours()
// would, when the previous block was read in this call (its bytes, from p[heads_from - 15]
// on, are then the groups the tracker keeps): one separator joining its groups and a
// four-digit brand prefix. Most fail, and the block is settled without leaving the vector
// loop for the scalar one.
[[gnu::always_inline]] inline bool skip_block(
        const char* p, size_t k, size_t heads_from, SkipState& state) noexcept {
    __m128i t;
    if (!block_digits(p + k, t)) {
        return false;
    }
    const __m128i sums = block_sums(t);
    const __m128i pairs = _mm_add_epi8(sums, _mm_alignr_epi8(sums, state.before, 11));
    const __m128i windows = _mm_add_epi8(pairs, _mm_alignr_epi8(pairs, state.pairs_before, 6));
    // A window's first group is the previous block's group at the same byte.
    const __m128i candidates = _mm_andnot_si128(state.no_brand, multiples_of_ten(windows));
    for (auto found = static_cast<unsigned>(_mm_movemask_epi8(candidates) & kGroupBytes);
            found != 0; found &= found - 1) {
        if (k < heads_from) {
            return false;
        }
        // A card ends here only when the window's three joints are one separator, and its
        // first group (15 bytes before the last) starts with a brand's prefix.
        const char* last = p + k + std::countr_zero(found);
        const char joint = last[-1];
        if (!is_number_separator(joint) || last[-6] != joint || last[-11] != joint) {
            continue;
        }
        uint32_t w = 0;
        std::memcpy(&w, last - 15, sizeof(w));
        if (iin_possible(first_four(w ^ (kLanes * '0' & 0xffffffff)), 16)) {
            return false;
        }
    }
    state.no_brand = block_no_brand(t);
    state.older = state.before;
    state.before = _mm_slli_si128(sums, 1);
    state.pairs_before = _mm_slli_si128(pairs, 1);
    return true;
}

// The sums of the last two blocks skipped as advance_fours() keeps them: bytes 12, 7 and 2
// of each, the newest first.
uint64_t skipped_plains(const SkipState& state) noexcept {
    const __m128i to_plains =
            _mm_setr_epi8(12, 7, 2, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1);
    const auto newest =
            static_cast<uint32_t>(_mm_cvtsi128_si32(_mm_shuffle_epi8(state.before, to_plains)));
    const auto prior =
            static_cast<uint32_t>(_mm_cvtsi128_si32(_mm_shuffle_epi8(state.older, to_plains)));
    return uint64_t{prior} << 24 | newest;
}

// Skips the blocks from p[k] on that end no card value: every window of four groups ending in
// one fails Luhn or starts with a group whose first two digits start no 16-digit brand prefix,
// or, for a block at or after p[heads_from], whose first four digits do not (a superset of
// what advance_fours() checks, so that it settles every block skipped here). `no_brand` holds
// the two-digit test for the three groups before p[k], as block_no_brand() gives it, and
// `plains` their sums, the newest in the low byte; the sums of the groups skipped are
// shifted in. Returns the offset of the first block not skipped.
size_t skip_settled_blocks(const char* p, size_t n, size_t k, size_t heads_from, uint64_t& plains,
        __m128i no_brand) noexcept {
    SkipState state = skip_state(plains, no_brand);
    const size_t from = k;
    while (k + 16 <= n && skip_block(p, k, heads_from, state)) {
        k += 15;
    }
    if (k != from) {
        plains = skipped_plains(state);
    }
    return k;
}

// The same with AVX2, two blocks a step: the second block's 16 bytes (from q + 15) in the
// high lane, so that each lane holds a block laid out as above and the block readers' steps
// work lane by lane; only the previous block's sums and brand test cross lanes (from the
// high lane of the step before to the low lane). A step with a candidate in either block
// goes through skip_block() a block at a time, which settles the candidate or stops at its
// block; past it, two blocks a step again. The AVX2 code is only reached on a processor
// that has it (best_card_vector_level()).
#define EXFILTAP_AVX2_BLOCKS 1

template <typename Byte>
[[gnu::target("avx2")]] __m256i load_table_twice(const std::array<Byte, 16>& table) noexcept {
    return _mm256_broadcastsi128_si256(load_table(table));
}

[[gnu::target("avx2")]] size_t skip_settled_blocks_avx2(const char* p, size_t n, size_t k,
        size_t heads_from, uint64_t& plains, __m128i no_brand) noexcept {
    SkipState state = skip_state(plains, no_brand);
    const size_t from = k;
    while (k + 31 <= n) {
        const __m256i zero_char = _mm256_set1_epi8('0');
        const __m256i nine = _mm256_set1_epi8(9);
        const __m256i nibble = _mm256_set1_epi8(0x0f);
        const __m256i doubled_at = load_table_twice(kDoubledAt);
        const __m256i single_at = load_table_twice(kSingleAt);
        const __m256i doubled_table = load_table_twice(kDoubledTable);
        const __m256i bit_low_table = load_table_twice(kBitLow);
        const __m256i bit_high_table = load_table_twice(kBitHigh);
        const __m256i pairs_low_table = load_table_twice(kSixteenPairs.low);
        const __m256i pairs_high_table = load_table_twice(kSixteenPairs.high);
        const __m256i six_high_table = load_table_twice(kSixHigh);
        const __m256i minus_low_table = load_table_twice(kMinusLow);
        constexpr auto kDigitBytesTwice =
                static_cast<int>((unsigned{kDigitBytes} << 16) | kDigitBytes);
        constexpr auto kGroupBytesTwice =
                static_cast<int>((unsigned{kGroupBytes} << 16) | kGroupBytes);
        // The state of the step before, its second block in the high lane.
        __m256i before = _mm256_broadcastsi128_si256(state.before);
        __m256i pairs_before = _mm256_broadcastsi128_si256(state.pairs_before);
        __m256i brand_before = _mm256_broadcastsi128_si256(state.no_brand);
        bool stepped = false;
        while (k + 31 <= n) {
            const __m256i raw = _mm256_inserti128_si256(
                    _mm256_castsi128_si256(
                            _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + k))),
                    _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + k + 15)), 1);
            const __m256i t = _mm256_sub_epi8(raw, zero_char);
            const __m256i digit = _mm256_cmpeq_epi8(_mm256_min_epu8(t, nine), t);
            if (_mm256_movemask_epi8(digit) != kDigitBytesTwice) {
                break;
            }
            // block_sums() in each lane.
            const __m256i lanes = _mm256_or_si256(_mm256_and_si256(t, single_at),
                    _mm256_and_si256(_mm256_shuffle_epi8(doubled_table, t), doubled_at));
            const __m256i halves = _mm256_add_epi8(lanes, _mm256_srli_si256(lanes, 1));
            const __m256i sums = _mm256_add_epi8(halves, _mm256_srli_si256(halves, 2));
            const __m256i sums_up = _mm256_slli_si256(sums, 1);
            // Each lane's previous block: the high lane of the step before, then the low lane.
            const __m256i sums_back = _mm256_permute2x128_si256(before, sums_up, 0x21);
            const __m256i pairs = _mm256_add_epi8(sums, _mm256_alignr_epi8(sums, sums_back, 11));
            const __m256i pairs_up = _mm256_slli_si256(pairs, 1);
            const __m256i pairs_back = _mm256_permute2x128_si256(pairs_before, pairs_up, 0x21);
            const __m256i windows =
                    _mm256_add_epi8(pairs, _mm256_alignr_epi8(pairs, pairs_back, 6));
            // block_no_brand() in each lane.
            const __m256i second = _mm256_srli_si256(t, 1);
            const __m256i allowed =
                    _mm256_or_si256(_mm256_and_si256(_mm256_shuffle_epi8(pairs_low_table, t),
                                            _mm256_shuffle_epi8(bit_low_table, second)),
                            _mm256_and_si256(_mm256_shuffle_epi8(pairs_high_table, t),
                                    _mm256_shuffle_epi8(bit_high_table, second)));
            const __m256i no_brand_now = _mm256_cmpeq_epi8(allowed, _mm256_setzero_si256());
            const __m256i brand_back = _mm256_permute2x128_si256(brand_before, no_brand_now, 0x21);
            // multiples_of_ten() of the windows.
            const __m256i high = _mm256_and_si256(_mm256_srli_epi16(windows, 4), nibble);
            const __m256i low = _mm256_and_si256(windows, nibble);
            const __m256i tens = _mm256_cmpeq_epi8(_mm256_shuffle_epi8(six_high_table, high),
                    _mm256_shuffle_epi8(minus_low_table, low));
            if ((_mm256_movemask_epi8(_mm256_andnot_si256(brand_back, tens)) & kGroupBytesTwice)
                    != 0) {
                break;
            }
            before = sums_up;
            pairs_before = pairs_up;
            brand_before = no_brand_now;
            stepped = true;
            k += 30;
        }
        if (stepped) {
            state.before = _mm256_extracti128_si256(before, 1);
            state.older = _mm256_castsi256_si128(before);
            state.pairs_before = _mm256_extracti128_si256(pairs_before, 1);
            state.no_brand = _mm256_extracti128_si256(brand_before, 1);
        }
        // The step's two blocks one at a time; past them, two a step again. The inner loop
        // also ends when fewer than two blocks are left: then one may not be.
        bool settled = k + 16 <= n && skip_block(p, k, heads_from, state);
        k += settled ? 15 : 0;
        settled = settled && k + 16 <= n && skip_block(p, k, heads_from, state);
        if (!settled) {
            if (k != from) {
                plains = skipped_plains(state);
            }
            return k;  // at the block that stopped it (or the end): not read again below
        }
        k += 15;
    }
    while (k + 16 <= n && skip_block(p, k, heads_from, state)) {
        k += 15;
    }
    if (k != from) {
        plains = skipped_plains(state);
    }
    return k;
}

// block_no_brand() for the three groups before a block, from their first four digits.
__m128i no_brand_of(unsigned oldest, unsigned middle, unsigned newest) noexcept {
    auto flag = [](unsigned head) {
        return static_cast<char>(iin_possible(head, 16) ? 0 : -1);
    };
    return _mm_setr_epi8(
            0, flag(oldest), 0, 0, 0, 0, flag(middle), 0, 0, 0, 0, flag(newest), 0, 0, 0, 0);
}
#endif

// The best level of this build on this processor.
CardVectorLevel detect_card_vector_level() noexcept {
#if defined(EXFILTAP_AVX2_BLOCKS)
    // Runs during static initialisation, maybe before libgcc's own constructor has read the
    // processor's features.
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx2")) {
        return CardVectorLevel::Avx2;
    }
#endif
#ifdef EXFILTAP_SETTLED_BLOCKS
    return CardVectorLevel::Ssse3;
#else
    return CardVectorLevel::Scalar;
#endif
}

const CardVectorLevel kBestCardVectorLevel = detect_card_vector_level();
// The level advance_fours() uses (set_card_vector_level()).
std::atomic<CardVectorLevel> g_card_vector_level{kBestCardVectorLevel};

// The run state of advance_fours() between groups of four digits as one small number:
// groups kept (0-5) x 4 + the class of the separator joining them (0: none, 1-3: ' ', '+',
// '-', the bytes is_number_separator() takes). A joint byte's class is kJointClass[byte]
// (0: it is not a separator and starts a new run).
constexpr unsigned kJointClasses = 4;
constexpr std::array<char, kJointClasses> kJointChars = {0, ' ', '+', '-'};
constexpr unsigned kRunStates = (kCardLayoutGroups + 1) * kJointClasses;

constexpr auto kJointClass = [] {
    std::array<uint8_t, 256> classes{};
    for (unsigned c = 1; c < kJointClasses; ++c) {
        classes[static_cast<unsigned char>(kJointChars[c])] = static_cast<uint8_t>(c);
    }
    return classes;
}();

// start_group() for a group after a joint of class `joint`, the previous group not
// over-long: joined by a separator (one more group kept when it is the run's kind, else the
// walk stops after the previous group), or the first group of a new run.
constexpr unsigned join_state(unsigned state, unsigned joint) noexcept {
    if (joint == 0) {
        return 1 * kJointClasses;
    }
    const unsigned groups = state / kJointClasses;
    const unsigned separator = state % kJointClasses;
    const unsigned kept = separator == 0 || separator == joint
            ? std::min<unsigned>(groups + 1, kCardLayoutGroups)
            : 2;
    return kept * kJointClasses + joint;
}

// The state after three joints at once (a block of three groups): index state x 64 +
// the three classes, the first joint's in the high bits.
constexpr auto kJoinThree = [] {
    std::array<uint8_t, kRunStates * 64> next{};
    for (unsigned state = 0; state < kRunStates; ++state) {
        for (unsigned joints = 0; joints < 64; ++joints) {
            const unsigned after = join_state(
                    join_state(join_state(state, joints >> 4), (joints >> 2) & 3), joints & 3);
            next[state * 64 + joints] = static_cast<uint8_t>(after);
        }
    }
    return next;
}();

unsigned joint_class(char c) noexcept {
    return kJointClass[static_cast<unsigned char>(c)];
}

// is_number_separator() as one load (the same table).
bool is_separator_byte(char c) noexcept {
    return joint_class(c) != 0;
}

}  // namespace

CardVectorLevel best_card_vector_level() noexcept {
    return kBestCardVectorLevel;
}

CardVectorLevel set_card_vector_level(CardVectorLevel level) noexcept {
    const CardVectorLevel used = std::min(level, kBestCardVectorLevel);
    g_card_vector_level.store(used, std::memory_order_relaxed);
    return used;
}

// Bytes without a digit: only the last two matter to the runs that follow.
void CardRunTracker::skip_text(std::string_view text) noexcept {
    if (text.size() < 2) {
        feed(text);
        return;
    }
    before_last_ = text[text.size() - 2];
    last_ = text.back();
    next_ += text.size();
}

// The group start_group() just opened, read whole: at most 7 digits.
void CardRunTracker::set_newest(
        size_t len, unsigned head, unsigned plain, unsigned twice) noexcept {
    heads_[0] = static_cast<uint16_t>(head);
    len0_ = len;
    lens_ |= len;
    sums_plain_ |= plain % 10;
    sums_twice_ |= twice % 10;
    long_group_ = false;
}

// The state lives in locals through a group's digits (the bytes could alias the members).
void CardRunTracker::feed(std::string_view bytes) noexcept {
    const size_t n = bytes.size();
    char last = last_;
    char before = before_last_;
    size_t i = 0;
    while (i < n) {
        if (!is_digit(bytes[i])) {
            before = last;
            last = bytes[i++];
            continue;
        }
        size_t len = 0;
        unsigned head = 0;
        unsigned plain = 0;
        unsigned twice = 0;
        if (!is_digit(last) && i + 8 <= n
                && read_short_group(bytes.data() + i, len, head, plain, twice)) {
            // A short group ending in these bytes: read at once.
            const bool joined = is_number_separator(last) && is_digit(before) && groups_ > 0;
            start_group(next_ + i, joined ? last : 0);
            set_newest(len, head, plain, twice);
            i += len;
            before = len >= 2 ? bytes[i - 2] : last;
            last = bytes[i - 1];
            continue;
        }
        if (is_digit(last)) {
            len = len0_;
            plain = static_cast<unsigned>(sums_plain_ & kLowByte);
            twice = static_cast<unsigned>(sums_twice_ & kLowByte);
        } else {
            const bool joined = is_number_separator(last) && is_digit(before) && groups_ > 0;
            start_group(next_ + i, joined ? last : 0);
        }
        head = heads_[0];
        do {
            // The new digit is single in the sum whose previous last digit was doubled.
            const auto d = static_cast<unsigned>(bytes[i] - '0');
            if (len < 4) {
                head = head * 10 + d;
            }
            const unsigned single = twice + d;
            twice = plain + kDoubled[d];
            plain = single;
            ++len;
            ++i;
        } while (i < n && is_digit(bytes[i]));
        heads_[0] = static_cast<uint16_t>(head);
        len0_ = len;
        lens_ = with_newest(lens_, std::min<size_t>(len, kLowByte));
        sums_plain_ = with_newest(sums_plain_, plain % 10);
        sums_twice_ = with_newest(sums_twice_, twice % 10);
        long_group_ = len > kMaxCardDigits;
        before = i >= 2 ? bytes[i - 2] : last;
        last = bytes[i - 1];
    }
    last_ = last;
    before_last_ = before;
    next_ += n;
}

// Mirrors walk_run() seen from the end of a group starting at `at`, joined to the previous
// one by `separator` (0: not joined): which earlier groups the walk would take, and the
// lowest byte it would read doing so (`low_`).
void CardRunTracker::start_group(uint64_t at, char separator) noexcept {
    auto below = [](uint64_t offset, uint64_t by) {
        return offset >= by ? offset - by : 0;
    };
    if (separator != 0 && !long_group_ && (separator_ == 0 || separator_ == separator)) {
        groups_ = std::min(groups_ + 1, kMaxLayoutGroups);
    } else if (separator != 0 && !long_group_) {
        groups_ = 2;  // an earlier joint of another kind ends the walk after this group
    } else {
        // Over-long previous group: walk_run() reads 20 of its digits and the byte before.
        low_ = separator != 0 ? below(at - 1, kMaxCardDigits + 2) : below(at, 2);
        long_joint_low_ = separator != 0 ? low_ : UINT64_MAX;
        groups_ = 1;
    }
    separator_ = groups_ > 1 ? separator : 0;
    // Every group moves one place older; bytes past groups_ become 0.
    const uint64_t kept = (uint64_t{1} << (8 * groups_)) - 1;
    lens_ = (lens_ << 8) & kept;
    sums_plain_ = (sums_plain_ << 8) & kept;
    sums_twice_ = (sums_twice_ << 8) & kept;
    len0_ = 0;
    static_assert(kCardLayoutGroups == 5);
    starts_[4] = starts_[3];
    starts_[3] = starts_[2];
    starts_[2] = starts_[1];
    starts_[1] = starts_[0];
    starts_[0] = at;
    heads_[4] = heads_[3];
    heads_[3] = heads_[2];
    heads_[2] = heads_[1];
    heads_[1] = heads_[0];
    heads_[0] = 0;
    if (groups_ > 1) {
        // The oldest group kept may follow an over-long one: a window starting inside that
        // one turns its tail into a group the tracker does not count (conservative: lower).
        low_ = std::min(below(starts_[groups_ - 1], 2), long_joint_low_);
    }
    long_group_ = false;
}

CardRunTracker::Verdict CardRunTracker::judge(uint64_t end, uint64_t window_begin) const noexcept {
    if (end != next_ || !is_digit(last_) || groups_ == 0) {
        return Verdict::Maybe;
    }
    // Both walks stop where their bytes start when those are the same byte; otherwise the
    // walk must stay above both starts to see what the tracker saw.
    if (known_from_ != window_begin && low_ < std::max(known_from_, window_begin)) {
        return Verdict::Maybe;
    }
    if (long_group_) {
        return Verdict::NoCard;  // walk_run() refuses a last group longer than any card
    }
    // The layouts of is_card_layout(), newest group first, each Luhn-checked (a group's sum
    // is the plain one when an even number of digits follows it, else the doubled one), and
    // the first four digits checked against the brands' prefixes for the length.
    const uint64_t l0 = lens_ & kLowByte;
    const unsigned p0 = static_cast<unsigned>(sums_plain_ & kLowByte);
    if (l0 >= kMinCardDigits && l0 <= kMaxCardDigits && p0 % 10 == 0
            && iin_possible(heads_[0], l0)) {
        return Verdict::Maybe;  // one group
    }
    const uint64_t l3 = lens_ & 0xffffff;
    if (l3 == 0x040604 && sum_bytes(sums_plain_, 3) % 10 == 0 && iin_possible(heads_[2], 14)) {
        return Verdict::Maybe;  // 4-6-4
    }
    if (l3 == 0x040605 && (p0 + sum_bytes(sums_twice_ >> 8, 2)) % 10 == 0
            && iin_possible(heads_[2], 15)) {
        return Verdict::Maybe;  // 4-6-5
    }
    if ((lens_ & 0xffffffff) == 0x04040404 && sum_bytes(sums_plain_, 4) % 10 == 0
            && iin_possible(heads_[3], 16)) {
        return Verdict::Maybe;  // 4-4-4-4
    }
    if ((lens_ & 0xffffffffff) == 0x0404040403 && (p0 + sum_bytes(sums_twice_ >> 8, 4)) % 10 == 0
            && iin_possible(heads_[4], 19)) {
        return Verdict::Maybe;  // 4-4-4-4-3
    }
    return Verdict::NoCard;
}

// Runs of four-digit groups (how card numbers are written, and what a digit-dense stream is
// made of): while every group kept is four digits long, a new one changes the state the
// same way, so it stays in registers until the run changes, and judge() comes down to the
// window test, the 4-4-4-4 Luhn sum and its prefix. A group after one byte that is neither
// a digit nor a separator starts a run of its own (a line break between numbers), which
// keeps the groups four digits long too. Leaves the state as start_group(), set_newest()
// and judge() would; true when it stopped at a Maybe end. p[i - 1] is a digit.
bool CardRunTracker::advance_fours(
        const char* p, size_t n, size_t& i, uint64_t window_floor, uint64_t window_bytes) noexcept {
    constexpr uint64_t kFours = 0x0404040404;
    // Sums of four groups' bytes (at most 4 x 36) that are multiples of ten.
    static constexpr auto kTens = [] {
        std::array<bool, 256> tens{};
        for (size_t v = 0; v < tens.size(); v += 10) {
            tens[v] = true;
        }
        return tens;
    }();
    // The four digits of the group `back` groups before the newest (at p[k - 4]), read
    // again: the doubled sums and first digits are only needed at a Luhn pass and at the end.
    auto group_digits = [p](size_t k, size_t back) {
        uint32_t w = 0;
        std::memcpy(&w, p + k - 4 - 5 * back, sizeof(w));
        return uint64_t{w} ^ (kLanes * '0' & 0xffffffff);
    };
    // From here on (no over-long joint) the oldest group kept starts at most 26 bytes before
    // the newest end, inside every window and after every start the tracker knew: the
    // window test of judge() cannot fire.
    const uint64_t quiet_from = long_joint_low_ == UINT64_MAX && window_bytes >= 26
            ? std::max(known_from_, window_floor) + 26
            : UINT64_MAX;
    unsigned state = static_cast<unsigned>(groups_) * kJointClasses + joint_class(separator_);
    uint64_t long_joint_low = long_joint_low_;
    uint64_t plains = sums_plain_;
    // Groups read in this call and the stream offset of p[k]: both move in step with k.
    const size_t first = i;
    auto fresh_groups = [&](size_t at) {
        return (at - first) / 5;
    };
    auto offset_of = [&](size_t at) {
        return next_ + (at - first);
    };
    // next >= quiet_from as a test on k (k never passes n).
    const size_t quiet_k = quiet_from <= next_ ? first
            : quiet_from - next_ > n           ? SIZE_MAX
                                               : first + static_cast<size_t>(quiet_from - next_);
    size_t k = i;
    bool maybe = false;
    // start_group() for a group after `joint`, the previous group not over-long: a table
    // lookup, no branch (the kinds of joint mix at random in digit-dense data).
    auto join = [&](char joint) {
        const unsigned cls = joint_class(joint);
        state = join_state(state, cls);
        long_joint_low = cls != 0 ? long_joint_low : UINT64_MAX;
    };
    // Blocks settled at once leave their joints for later: `state` has taken in the joints
    // before p[synced]. The state after five joints or more depends only on
    // the last five (a joint that is no separator starts a run of one group; a separator
    // adds a group while it is the run's kind and the run has fewer than five, else the run
    // is two groups), so a long stretch is settled from its last six joints.
    size_t synced = k;
    auto sync = [&] {
        if (k - synced >= 30) {
            const unsigned older = joint_class(p[k - 30]) << 4 | joint_class(p[k - 25]) << 2
                    | joint_class(p[k - 20]);
            const unsigned newer = joint_class(p[k - 15]) << 4 | joint_class(p[k - 10]) << 2
                    | joint_class(p[k - 5]);
            state = kJoinThree[kJoinThree[older] * 64 + newer];
        } else {
            for (size_t j = synced; j < k; j += 5) {
                state = join_state(state, joint_class(p[j]));
            }
        }
        synced = k;
    };
#ifdef EXFILTAP_SETTLED_BLOCKS
    const CardVectorLevel level = g_card_vector_level.load(std::memory_order_relaxed);
    // block_no_brand() for the three groups before p[at]: from the bytes when this call read
    // them, else from heads_ as below.
    auto no_brand_before = [&](size_t at) {
        const size_t fresh = fresh_groups(at);
        if (fresh >= 3) {
            return block_no_brand(
                    _mm_sub_epi8(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p + at - 15)),
                            _mm_set1_epi8('0')));
        }
        auto head = [&](size_t back) -> unsigned {
            return back <= fresh ? first_four(group_digits(at, back - 1))
                                 : heads_[back - 1 - fresh];
        };
        return no_brand_of(head(3), head(2), head(1));
    };
#endif
    while (!maybe) {
#ifdef EXFILTAP_SETTLED_BLOCKS
        // Past the window test, the blocks that end no card go by with a few vector
        // instructions each and no branch on their digits.
        if (level != CardVectorLevel::Scalar && k >= quiet_k && k + 16 <= n) {
#ifdef EXFILTAP_AVX2_BLOCKS
            k = level == CardVectorLevel::Avx2
                    ? skip_settled_blocks_avx2(p, n, k, first + 15, plains, no_brand_before(k))
                    : skip_settled_blocks(p, n, k, first + 15, plains, no_brand_before(k));
#else
            k = skip_settled_blocks(p, n, k, first + 15, plains, no_brand_before(k));
#endif
        }
#endif
        // Three groups at once where 16 bytes hold them (p[k] is then a non-digit), else one
        // after a non-digit.
        uint32_t new_plains = 0;
        size_t count = 3;
        if (k + 16 <= n && read_three_fours(p + k, new_plains)) {
            // The common case settled at once: past the window test, no Luhn pass with a
            // brand's prefix at the three ends. Each window sum of four groups' bytes (at most 144)
            // is a byte of the product, no carry crossing bytes; a window reaching past the groups
            // kept (a run start or a change of separator among the joints) only sends the block
            // down the exact path below.
            const uint64_t shifted = (plains << 24) | new_plains;
            const uint64_t windows = (shifted * 0x01010101) >> 24;
            // Bit g: the window ending at the block's group g passes Luhn (one test per block
            // instead of one per window: three in ten blocks have a pass).
            unsigned passing = static_cast<unsigned>(kTens[(windows >> 16) & kLowByte])
                    | static_cast<unsigned>(kTens[(windows >> 8) & kLowByte]) << 1
                    | static_cast<unsigned>(kTens[windows & kLowByte]) << 2;
            // A window passing Luhn ends a card only with a brand's prefix in its first group,
            // always one from before the block: read again from the bytes when this call read
            // it, else kept in heads_ (stale past the groups kept, where no layout ends: then
            // it only decides whether the block goes down the exact path).
            bool possible = false;
            while (passing != 0 && !possible) {
                const auto g = static_cast<size_t>(std::countr_zero(passing));
                passing &= passing - 1;
                const size_t fresh_at = fresh_groups(k) + g + 1;
                const uint64_t head = fresh_at >= 4 ? first_four(group_digits(k + 5 * (g + 1), 3))
                                                    : heads_[3 - fresh_at];
                possible = iin_possible(static_cast<unsigned>(head), 16);
            }
            if (k >= quiet_k && !possible) {
                // Its joints are folded in by sync(); long_joint_low is already UINT64_MAX
                // here (quiet_from is finite) and stays so.
                plains = shifted;
                k += 15;
                continue;
            }
        } else {
            if (k + 9 > n || is_digit(p[k])) {
                break;
            }
            uint64_t non_digit = 0;
            const uint64_t t = digit_lanes(p + k + 1, non_digit);
            if ((non_digit & 0xffffffffff) != 0x8000000000) {
                break;  // not four digits and a non-digit
            }
            const uint64_t d = t & 0xffffffff;
            new_plains = static_cast<uint32_t>(
                    lane_sum((d & ~kEvenLanes) | (doubled_digits(d) & kEvenLanes)));
            count = 1;
        }
        sync();
        for (size_t g = count; g-- > 0;) {
            join(p[k]);
            synced = k + 5;
            plains = (plains << 8) | ((new_plains >> (8 * g)) & kLowByte);
            const uint64_t at = offset_of(k) + 1;
            const uint64_t next = at + 4;
            k += 5;
            if (next < quiet_from) {
                // The oldest group kept starts 5 bytes before each newer one; the walk reads
                // 2 more.
                const uint64_t oldest = at - 5 * (state / kJointClasses - 1);
                const uint64_t low = std::min(oldest >= 2 ? oldest - 2 : 0, long_joint_low);
                const uint64_t window_begin = next - std::min(next - window_floor, window_bytes);
                if (known_from_ != window_begin && low < std::max(known_from_, window_begin)) {
                    maybe = true;
                    break;
                }
            }
            if (state >= 4 * kJointClasses && kTens[sum_bytes(plains, 4)]) {
                const size_t fresh = fresh_groups(k);
                const uint64_t head =
                        fresh >= 4 ? first_four(group_digits(k, 3)) : heads_[3 - fresh];
                if (iin_possible(static_cast<unsigned>(head), 16)) {
                    maybe = true;
                    break;
                }
            }
        }
    }
    const size_t fresh = fresh_groups(k);
    const uint64_t next = offset_of(k);
    if (fresh == 0) {
        return false;
    }
    sync();
    // The state as start_group() and set_newest() leave it, doubled sums and first digits
    // of the new groups read again.
    const size_t kept = std::min<size_t>(fresh, kCardLayoutGroups);
    uint64_t twices = fresh >= kCardLayoutGroups ? 0 : sums_twice_ << (8 * fresh);
    std::array<uint16_t, kCardLayoutGroups> heads{};
    for (size_t g = kept; g < kCardLayoutGroups; ++g) {
        heads[g] = heads_[g - fresh];
    }
    for (size_t g = 0; g < kept; ++g) {
        const uint64_t d = group_digits(k, g);
        const uint64_t twice = lane_sum((d & kEvenLanes) | (doubled_digits(d) & ~kEvenLanes));
        twices = (twices & ~(kLowByte << (8 * g))) | (twice << (8 * g));
        heads[g] = static_cast<uint16_t>(first_four(d));
    }
    const size_t groups = state / kJointClasses;
    const uint64_t mask = (uint64_t{1} << (8 * groups)) - 1;
    groups_ = groups;
    separator_ = kJointChars[state % kJointClasses];
    lens_ = kFours & mask;
    sums_plain_ = plains & mask;
    sums_twice_ = twices & mask;
    heads_ = heads;
    for (size_t g = 0; g < kCardLayoutGroups; ++g) {
        starts_[g] = next - 4 - 5 * g;  // past groups_: never read
    }
    const uint64_t oldest = next - 4 - 5 * (groups - 1);
    long_joint_low_ = long_joint_low;
    low_ = std::min(oldest >= 2 ? oldest - 2 : 0, long_joint_low);
    len0_ = 4;
    next_ = next;
    last_ = p[k - 1];
    before_last_ = p[k - 2];
    i = k;
    return maybe;
}

// advance() goes on to the next run only within this many bytes of text: digit-dense data
// separates its numbers by a byte or two, while in text a card match must not make the
// tracker read the rest of the segment (exfiltap-bench 1kxun).
constexpr size_t kRunGapBytes = 8;

// Flattened: start_group() and judge() run for every group of a digit-dense run.
[[gnu::flatten]] uint64_t CardRunTracker::advance(
        std::string_view bytes, uint64_t window_floor, uint64_t window_bytes) noexcept {
    const char* p = bytes.data();
    const size_t n = bytes.size();
    if (n > 0 && is_digit(p[0])) {
        return next_;  // next() is inside a group, not at an end: nothing to settle
    }
    size_t i = 0;
    for (;;) {
        // next(), the offset of p[i], is a group end already judged.
        if (i >= n) {
            return next_;
        }
        const bool joined = i + 1 < n && is_separator_byte(p[i]) && is_digit(p[i + 1]);
        if (i + 1 < n && is_digit(p[i + 1]) && is_digit(last_) && groups_ > 0 && !long_group_
                && lens_ == (0x0404040404 & ((uint64_t{1} << (8 * groups_)) - 1))) {
            const size_t from = i;
            if (advance_fours(p, n, i, window_floor, window_bytes)) {
                return next_;
            }
            if (i != from) {
                continue;
            }
        }
        size_t len = 0;
        unsigned head = 0;
        unsigned plain = 0;
        unsigned twice = 0;
        if (joined && i + 9 <= n && is_digit(last_)
                && read_short_group(p + i + 1, len, head, plain, twice)) {
            // What feed() does with the separator and the group, ending before a non-digit.
            start_group(next_ + 1, groups_ > 0 ? p[i] : 0);
            set_newest(len, head, plain, twice);
            last_ = p[i + len];
            before_last_ = p[i + len - 1];
            next_ += 1 + len;
            i += 1 + len;
        } else {
            // The run goes on with a long group, or it ended: then on to the next digit,
            // which starts another.
            size_t j = i + 1;
            while (j < n && !is_digit(p[j]) && j - i <= kRunGapBytes) {
                ++j;
            }
            if (!joined) {
                if (j < n && !is_digit(p[j])) {
                    return next_ + 1;  // text follows the run, not another run soon
                }
                skip_text(bytes.substr(i, j - i));
                i = j;
            }
            while (j < n && is_digit(p[j])) {
                ++j;
            }
            feed(bytes.substr(i, j - i));
            if (j == n) {
                return next_;  // a group may go on in the next bytes: not an end yet
            }
            i = j;
        }
        const uint64_t end = next_;
        if (judge(end, end - std::min(end - window_floor, window_bytes)) == Verdict::Maybe) {
            return end;
        }
    }
}

Candidate extract_ssn(std::string_view text, size_t end, bool reject_test_numbers) noexcept {
    if (end < kSsnChars || end > text.size() || !number_ends(text, end)) {
        return {};
    }
    const size_t start = end - kSsnChars;
    const std::string_view value = text.substr(start, kSsnChars);
    const char separator = value[3];
    if (!is_number_separator(separator) || value[6] != separator) {
        return {};
    }
    Candidate candidate;
    candidate.start = start;
    for (const size_t i : kSsnDigitPositions) {
        if (!is_digit(value[i])) {
            return {};
        }
        candidate.push(value[i]);
    }

    // The value must not continue a longer number: "1-123-45-6789", "12 345 67 8901", "0.123".
    if (start > 0 && !percent_escape_before(text, start)) {
        const char before = text[start - 1];
        if (is_word(before)) {
            return {};
        }
        const bool joins = before == separator || before == '-' || before == '.';
        if (joins && start >= 2 && is_digit(text[start - 2])) {
            return {};
        }
    }

    const std::string_view digits = candidate.view();
    // One digit repeated is never an SSN (group and serial rules aside, nobody holds one).
    if (!ssn_valid(digits) || digits.find_first_not_of(digits[0]) == std::string_view::npos) {
        return {};
    }
    if (reject_test_numbers && is_test_or_filler_ssn(digits)) {
        return {};
    }
    candidate.ok = true;
    return candidate;
}

bool is_test_or_filler_ssn(std::string_view digits) noexcept {
    return is_filler(digits) || digits == "123456789";
}

unsigned iban_length(std::string_view country) noexcept {
    if (country.size() != 2) {
        return 0;
    }
    const auto* const found = std::lower_bound(kIbanLengths.begin(), kIbanLengths.end(), country,
            [](const IbanCountry& entry, std::string_view code) { return entry.code < code; });
    return found != kIbanLengths.end() && found->code == country ? found->length : 0;
}

bool iban_valid(std::string_view compact) noexcept {
    if (compact.size() < 4 || iban_length(compact.substr(0, 2)) != compact.size()
            || !is_digit(compact[2]) || !is_digit(compact[3])) {
        return false;
    }
    // ISO 7064 mod 97-10: the first four characters move to the end, letters count 10..35.
    unsigned remainder = 0;
    for (size_t k = 0; k < compact.size(); ++k) {
        const char c = compact[(k + 4) % compact.size()];
        if (is_digit(c)) {
            remainder = (remainder * 10 + static_cast<unsigned>(c - '0')) % 97;
        } else if (is_upper(c)) {
            remainder = (remainder * 100 + static_cast<unsigned>(c - 'A' + 10)) % 97;
        } else {
            return false;
        }
    }
    return remainder == 1;
}

bool is_test_or_filler_iban(std::string_view compact) noexcept {
    if (compact.size() <= 4 || is_filler(compact.substr(4))) {
        return true;
    }
    return std::find(kTestIbans.begin(), kTestIbans.end(), compact) != kTestIbans.end();
}

Candidate extract_iban(std::string_view text, size_t end, bool reject_test_numbers) noexcept {
    if (end == 0 || end > text.size() || !is_iban_char(text[end - 1]) || !clean_after(text, end)) {
        return {};
    }
    const IbanRun run = walk_iban_run(text, end);
    // Each group start is a possible IBAN start ("to DE89 3704 ..." after other capitals).
    for (size_t k = run.groups; k > 0; --k) {
        Candidate candidate = read_iban(text, run, k - 1);
        if (!candidate.ok) {
            continue;
        }
        if (reject_test_numbers && is_test_or_filler_iban(candidate.view())) {
            return {};
        }
        return candidate;
    }
    return {};
}

}  // namespace exfiltap::detectors
