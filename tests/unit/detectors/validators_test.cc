#include "detectors/validators.h"

#include <ostream>
#include <random>
#include <string>
#include <string_view>

#include <gtest/gtest.h>

#include "detectors/content_types.h"

namespace exfiltap::detectors {
namespace {

// All card numbers below are synthetic: random digits with a Luhn check digit.

TEST(LuhnTest, AcceptsValidNumber) {
    EXPECT_TRUE(luhn_valid("4857083934735715"));
}

TEST(LuhnTest, RejectsChangedDigit) {
    EXPECT_FALSE(luhn_valid("4857083934735716"));
}

TEST(LuhnTest, RejectsNonDigits) {
    EXPECT_FALSE(luhn_valid("4857 0839 3473 5715"));
}

TEST(LuhnTest, RejectsEmpty) {
    EXPECT_FALSE(luhn_valid(""));
}

// The sum digit by digit from the end, every second digit doubled.
bool reference_luhn(std::string_view digits) {
    if (digits.empty()) {
        return false;
    }
    unsigned sum = 0;
    for (size_t i = 0; i < digits.size(); ++i) {
        const char c = digits[digits.size() - 1 - i];
        if (c < '0' || c > '9') {
            return false;
        }
        unsigned d = static_cast<unsigned>(c - '0') * (i % 2 == 1 ? 2 : 1);
        sum += d > 9 ? d - 9 : d;
    }
    return sum % 10 == 0;
}

// luhn_valid() reads eight digits a step from the end: every length up to 40 (both the
// steps and the digits before them), all nines (the largest lane sums), and one byte that
// is not a digit anywhere, including bytes next to '0'..'9' and with the high bit set.
TEST(LuhnTest, AgreesWithDigitByDigitSumAtEveryLength) {
    std::mt19937 rng(11);
    const std::string not_digits = std::string("/:a \0", 6) + "\x80\xb0\xb9\xff";
    for (size_t n = 1; n <= 40; ++n) {
        SCOPED_TRACE(testing::Message() << n << " digits");
        for (int round = 0; round < 200; ++round) {
            std::string digits(n, '9');
            if (round > 0) {
                for (char& c : digits) {
                    c = static_cast<char>('0' + rng() % 10);
                }
            }
            if (round % 2 == 1) {
                // The last digit that makes it pass, then keep or spoil it.
                for (char c = '0'; c <= '9'; ++c) {
                    digits.back() = c;
                    if (reference_luhn(digits)) {
                        break;
                    }
                }
            }
            ASSERT_EQ(luhn_valid(digits), reference_luhn(digits)) << digits;
            digits[rng() % n] = not_digits[rng() % not_digits.size()];
            ASSERT_FALSE(luhn_valid(digits)) << digits;
        }
    }
}

struct BrandCase {
    const char* digits;
    CardBrand brand;
};

class CardBrandTest : public ::testing::TestWithParam<BrandCase> {};

TEST_P(CardBrandTest, MapsIinAndLengthToBrand) {
    EXPECT_EQ(card_brand(GetParam().digits), GetParam().brand) << GetParam().digits;
}

INSTANTIATE_TEST_SUITE_P(KnownRanges, CardBrandTest,
        ::testing::Values(BrandCase{"4526018159087", CardBrand::Visa},
                BrandCase{"4857083934735715", CardBrand::Visa},
                BrandCase{"4301661318609139096", CardBrand::Visa},
                BrandCase{"5181909378657979", CardBrand::Mastercard},
                BrandCase{"5554323194875741", CardBrand::Mastercard},
                BrandCase{"2221194821993516", CardBrand::Mastercard},
                BrandCase{"2720960308246289", CardBrand::Mastercard},
                BrandCase{"349118625276019", CardBrand::Amex},
                BrandCase{"379411294528379", CardBrand::Amex},
                BrandCase{"6011821450361459", CardBrand::Discover},
                BrandCase{"6011895559797114711", CardBrand::Discover},
                BrandCase{"6440497465075292", CardBrand::Discover},
                BrandCase{"65170342366712761", CardBrand::Discover},
                BrandCase{"6221268426846567", CardBrand::Discover},
                BrandCase{"6229253212233073", CardBrand::Discover},
                BrandCase{"30092440268598", CardBrand::Diners},
                BrandCase{"3059528907866661764", CardBrand::Diners},
                BrandCase{"36337129765511", CardBrand::Diners},
                BrandCase{"38031372159013", CardBrand::Diners},
                BrandCase{"3909281590139624", CardBrand::Diners},
                BrandCase{"3528459571177778", CardBrand::Jcb},
                BrandCase{"3589412154728038528", CardBrand::Jcb},
                BrandCase{"6280841485253889", CardBrand::UnionPay},
                BrandCase{"6208539336338750046", CardBrand::UnionPay},
                BrandCase{"501874395756", CardBrand::Maestro},
                BrandCase{"5893511637265161", CardBrand::Maestro},
                BrandCase{"6763513137353799072", CardBrand::Maestro},
                BrandCase{"2200761222029721", CardBrand::Mir},
                BrandCase{"2204997528820018266", CardBrand::Mir}));

INSTANTIATE_TEST_SUITE_P(WrongLengthOrPrefix, CardBrandTest,
        ::testing::Values(BrandCase{"433043483954860", CardBrand::None},  // Visa 15
                BrandCase{"422172383783344", CardBrand::None},            // Visa 15
                BrandCase{"487706589487", CardBrand::None},               // Visa 12
                BrandCase{"3420579868282889", CardBrand::None},           // Amex 16
                BrandCase{"2721072902227910", CardBrand::None},           // past 2720
                BrandCase{"5080588871803348", CardBrand::None},           // 50, not Maestro
                BrandCase{"3600635515053", CardBrand::None},              // Diners 13
                BrandCase{"651131144024267", CardBrand::None},            // Discover 15
                BrandCase{"624628897514026", CardBrand::None},            // UnionPay 15
                BrandCase{"220061401419318", CardBrand::None},            // Mir 15
                BrandCase{"1018780175989834", CardBrand::None},
                BrandCase{"7478878384837263", CardBrand::None},
                BrandCase{"8167513613412521", CardBrand::None},
                BrandCase{"9134619013487043", CardBrand::None},
                BrandCase{"48570839347", CardBrand::None},             // 11 digits
                BrandCase{"48570839347357150000", CardBrand::None}));  // 20 digits

// Prefixes on either side of the ranges' bounds (card_brand() compares the first six digits
// with bounds widened to six digits).
INSTANTIATE_TEST_SUITE_P(RangeBounds, CardBrandTest,
        ::testing::Values(BrandCase{"6221250000000000", CardBrand::UnionPay},
                BrandCase{"6221260000000000", CardBrand::Discover},
                BrandCase{"6229259999999999", CardBrand::Discover},
                BrandCase{"6229260000000000", CardBrand::UnionPay},
                BrandCase{"6439999999999999", CardBrand::None},
                BrandCase{"6440000000000000", CardBrand::Discover},
                BrandCase{"6599999999999999", CardBrand::Discover},
                BrandCase{"6010999999999999", CardBrand::None},
                BrandCase{"6012000000000000", CardBrand::None},
                BrandCase{"2199999999999999", CardBrand::None},
                BrandCase{"2200000000000000", CardBrand::Mir},
                BrandCase{"2204999999999999", CardBrand::Mir},
                BrandCase{"2205000000000000", CardBrand::None},
                BrandCase{"2220999999999999", CardBrand::None},
                BrandCase{"2221000000000000", CardBrand::Mastercard},
                BrandCase{"2720999999999999", CardBrand::Mastercard},
                BrandCase{"3527999999999999", CardBrand::None},
                BrandCase{"3528000000000000", CardBrand::Jcb},
                BrandCase{"3589999999999999", CardBrand::Jcb},
                BrandCase{"3590000000000000", CardBrand::None},
                BrandCase{"3000000000000000", CardBrand::Diners},
                BrandCase{"3059999999999999", CardBrand::Diners},
                BrandCase{"3060000000000000", CardBrand::None},
                BrandCase{"6760999999999999", CardBrand::None},
                BrandCase{"6761000000000000", CardBrand::Maestro},
                BrandCase{"6763999999999999", CardBrand::Maestro},
                BrandCase{"6764000000000000", CardBrand::None},
                BrandCase{"5099999999999999", CardBrand::None},
                BrandCase{"5100000000000000", CardBrand::Mastercard},
                BrandCase{"5599999999999999", CardBrand::Mastercard},
                BrandCase{"5600000000000000", CardBrand::None}));

class TestCardTest : public ::testing::TestWithParam<const char*> {};

TEST_P(TestCardTest, RecognisesPublishedOrFillerNumber) {
    EXPECT_TRUE(is_test_or_filler_card(GetParam())) << GetParam();
}

INSTANTIATE_TEST_SUITE_P(Published, TestCardTest,
        ::testing::Values("4111111111111111", "4242424242424242", "4012888888881881",
                "4222222222222", "5555555555554444", "5105105105105100", "378282246310005",
                "371449635398431", "6011111111111117", "6011000990139424", "3530111333300000",
                "3566002020360505", "30569309025904", "38520000023237", "2223003122003222",
                "6200000000000005", "4000056655665556", "5200828282828210", "4000000000000002",
                "4000000000000077", "4000002500003155", "4000000000003220", "4917610000000000",
                "4444333322221111", "5454545454545454", "5500000000000004", "378734493671000",
                "340000000000009", "6011000000000004", "3056930009020004", "36227206271667",
                "5019717010103742", "6331101999990016", "6205500000000000004"));

INSTANTIATE_TEST_SUITE_P(Filler, TestCardTest,
        ::testing::Values(
                "0000000000000000", "4444444444444", "1212121212121212", "4000000000000000000"));

TEST(TestCardFilterTest, AcceptsOrdinaryNumber) {
    EXPECT_FALSE(is_test_or_filler_card("4857083934735715"));
}

// The lookup compares the first eight digits first: numbers sharing them with a published
// one, or differing from it only there, are ordinary.
TEST(TestCardFilterTest, AcceptsNumbersDifferingFromATestCardInAnyPart) {
    EXPECT_TRUE(is_test_or_filler_card("6205500000000000004"));
    EXPECT_FALSE(is_test_or_filler_card("6205500000000000005"));
    EXPECT_FALSE(is_test_or_filler_card("4012888888881882"));
    EXPECT_FALSE(is_test_or_filler_card("4012888788881881"));
    EXPECT_FALSE(is_test_or_filler_card("4222222222223"));
    EXPECT_FALSE(is_test_or_filler_card("401288888888188"));
}

struct SsnCase {
    const char* digits;
    bool valid;
};

class SsnValidTest : public ::testing::TestWithParam<SsnCase> {};

TEST_P(SsnValidTest, AppliesAreaGroupSerialRules) {
    EXPECT_EQ(ssn_valid(GetParam().digits), GetParam().valid) << GetParam().digits;
}

INSTANTIATE_TEST_SUITE_P(Rules, SsnValidTest,
        ::testing::Values(SsnCase{"152875870", true}, SsnCase{"728620275", true},
                SsnCase{"293248826", true}, SsnCase{"323988460", true}, SsnCase{"899991234", true},
                SsnCase{"000875870", false}, SsnCase{"666875870", false},
                SsnCase{"900875870", false}, SsnCase{"999875870", false},
                SsnCase{"152005870", false}, SsnCase{"152870000", false},
                SsnCase{"078051120", false}, SsnCase{"219099999", false},
                SsnCase{"15287587", false}, SsnCase{"15287587a", false}));

struct ExtractCase {
    std::string_view text;
    const char* expected;  // digits, or "" when no card must be found
    size_t end = 0;        // where the value ends; 0: after the text's last digit
};

// gtest finds its printer hook by this name.
void PrintTo(  // NOLINT(readability-identifier-naming)
        const ExtractCase& c, std::ostream* os) {
    *os << '"' << c.text << '"';
}

class ExtractCardTest : public ::testing::TestWithParam<ExtractCase> {};

// The match end sits right after the last digit of the text's last digit run.
size_t last_digit_end(std::string_view text) {
    const size_t last = text.find_last_of("0123456789");
    return last == std::string_view::npos ? 0 : last + 1;
}

TEST_P(ExtractCardTest, ReadsCardEndingAtLastDigit) {
    const ExtractCase& c = GetParam();
    const size_t end = c.end != 0 ? c.end : last_digit_end(c.text);
    const Candidate candidate = extract_card(c.text, end, true);
    const std::string_view expected(c.expected);
    EXPECT_EQ(candidate.ok, !expected.empty());
    if (candidate.ok) {
        EXPECT_EQ(candidate.view(), expected);
    }
}

INSTANTIATE_TEST_SUITE_P(Accepted, ExtractCardTest,
        ::testing::Values(ExtractCase{"4857083934735715", "4857083934735715"},
                ExtractCase{"visa 4539 0288 8491 8551.", "4539028884918551"},
                ExtractCase{"mc=5176-1984-5869-7371\n", "5176198458697371"},
                ExtractCase{"amex 3794 112945 28379 ", "379411294528379"},
                ExtractCase{"discover:6011821450361459,", "6011821450361459"},
                ExtractCase{"diners 3633 712976 5511", "36337129765511"},
                ExtractCase{"jcb 3589 4121 5472 8038 528", "3589412154728038528"},
                ExtractCase{"Amount 100 5335 7053 9761 6813", "5335705397616813"},
                ExtractCase{"\"pan\":\"4736692368327661\"", "4736692368327661"},
                ExtractCase{"-4857083934735715", "4857083934735715"},
                // URL- and form-encoded bodies: "%3D" is '=', '+' is a space.
                ExtractCase{"q=card%3D4857083934735715&x=1", "4857083934735715", 25},
                ExtractCase{"card=4921+8172+0391+6643&go=1", "4921817203916643", 24}));

INSTANTIATE_TEST_SUITE_P(NearMisses, ExtractCardTest,
        ::testing::Values(ExtractCase{"4912048809700551", ""},                   // Luhn
                ExtractCase{"id 49476253-8706-4936-ae97-868077e7b607", "", 21},  // UUID
                ExtractCase{"ts=1767742334637 ", ""},                            // epoch ms
                ExtractCase{"trace 9134619013487043", ""},                       // no IIN
                ExtractCase{"x=-0.5333927856964011", ""},                        // decimal
                ExtractCase{"===============4526788003826120489==", ""},         // MIME
                ExtractCase{"TRANSACTION 422172383783344", ""},                  // length
                ExtractCase{"4111111111111111", ""},                             // test PAN
                ExtractCase{"4444444444444", ""},                                // filler
                ExtractCase{"id_4857083934735715", ""},                          // word
                ExtractCase{"a4857083934735715", ""},                            // word
                ExtractCase{"948570839347357150", ""},                           // no IIN
                ExtractCase{"12345678904857083934735715", ""},                   // 26 digits
                ExtractCase{"4539 0288-8491 8551", ""},                          // mixed
                ExtractCase{"4539  0288  8491  8551", ""},                       // doubled
                ExtractCase{"45390 2888 4918 551", ""},                          // layout
                ExtractCase{"4539 0288 8491 855 1", ""}));                       // layout

TEST(ExtractCardBoundsTest, AcceptsLetterPaddingAfterValue) {
    EXPECT_TRUE(extract_card("card=4857083934735715DDDD", 21, true).ok);
}

TEST(ExtractCardBoundsTest, RejectsDigitAfterValue) {
    EXPECT_FALSE(extract_card("48570839347357150", 16, true).ok);
}

TEST(ExtractCardBoundsTest, RejectsEndOutsideText) {
    EXPECT_FALSE(extract_card("4857083934735715", 17, true).ok);
}

// Found by validators_fuzz: after "%11" (a URL escape, which clean_before() accepts) the
// walk reads the first group as "114123", six digits, which no layout takes; the four-group
// shortcut had read "4123" alone. The shortcut must answer as the walk does. (That the walk
// takes an escape's hex digits into the group is a gap of its own, in the tracker too:
// "card%204123 5678 2855 4123" is not found; see detectors/NOTES.md.)
TEST(ExtractCardBoundsTest, ShortcutAgreesWithTheWalkAfterAUrlEscape) {
    const std::string_view text = "n11%114123 5678 2855 4123 ;";
    const size_t end = text.size() - 2;
    EXPECT_EQ(extract_card(text, end, true).ok, extract_card_by_walk(text, end, true).ok);
    EXPECT_FALSE(extract_card(text, end, true).ok);
    EXPECT_TRUE(extract_card(text.substr(6), end - 6, true).ok);  // "4123 5678 2855 4123"
}

TEST(ExtractCardBoundsTest, KeepsTestNumberWhenNotRejecting) {
    const Candidate candidate = extract_card("4111111111111111", 16, false);
    EXPECT_TRUE(candidate.ok);
}

// The four-groups shortcut of extract_card() against the walk it stands for, at every end
// of texts made of card numbers (most pass Luhn, a few are test numbers) cut into groups of
// 3 to 6 digits with every kind of joint and boundary byte, both with and without the test
// number rule.
TEST(ExtractCardShortcutTest, AgreesWithTheWalkAtEveryEnd) {
    std::mt19937 rng(23);
    const std::string joints = "   ---++=._a%3D\n";
    size_t accepted = 0;
    size_t four_fours = 0;
    for (int round = 0; round < 400; ++round) {
        std::string text;
        while (text.size() < 400) {
            std::string digits = rng() % 8 == 0 ? "4111111111111111" : "4";
            while (digits.size() < 15) {
                digits += static_cast<char>('0' + rng() % 10);
            }
            if (digits.size() == 15) {
                for (char check = '0'; check <= '9'; ++check) {
                    if (luhn_valid(digits + check) != (rng() % 6 == 0)) {
                        digits += check;
                        break;
                    }
                }
                if (digits.size() == 15) {
                    digits += '0';
                }
            }
            // Mostly four-digit groups joined by one separator, sometimes another layout or
            // a stray joint.
            const char separator = joints[rng() % 6];
            for (size_t i = 0; i < digits.size(); ++i) {
                const bool other = rng() % 40 == 0;
                if (i > 0 && (i % 4 == 0 || (other && rng() % 3 == 0))) {
                    text += other ? joints[rng() % joints.size()] : separator;
                }
                text += digits[i];
            }
            text += joints[rng() % joints.size()];
        }
        for (size_t end = 0; end <= text.size(); ++end) {
            if (end >= 19) {
                const std::string_view q(text.data() + end - 19, 19);
                bool shape = true;
                for (size_t i = 0; i < 19; ++i) {
                    shape = shape && (i % 5 == 4 ? q[i] == q[4] : (q[i] >= '0' && q[i] <= '9'));
                }
                four_fours += shape && (q[4] == ' ' || q[4] == '-' || q[4] == '+') ? 1 : 0;
            }
            for (const bool reject : {true, false}) {
                const Candidate fast = extract_card(text, end, reject);
                const Candidate walk = extract_card_by_walk(text, end, reject);
                ASSERT_EQ(fast.ok, walk.ok) << text << " end " << end;
                if (fast.ok) {
                    ASSERT_EQ(fast.start, walk.start) << text << " end " << end;
                    ASSERT_EQ(fast.view(), walk.view()) << text << " end " << end;
                    ++accepted;
                }
            }
        }
    }
    EXPECT_GT(four_fours, 8000U);
    EXPECT_GT(accepted, 3000U);
}

struct SsnExtractCase {
    std::string_view text;
    const char* expected;
};

// gtest finds its printer hook by this name.
void PrintTo(  // NOLINT(readability-identifier-naming)
        const SsnExtractCase& c, std::ostream* os) {
    *os << '"' << c.text << '"';
}

class ExtractSsnTest : public ::testing::TestWithParam<SsnExtractCase> {};

TEST_P(ExtractSsnTest, ReadsSsnEndingAtLastDigit) {
    const SsnExtractCase& c = GetParam();
    const Candidate candidate = extract_ssn(c.text, last_digit_end(c.text), true);
    const std::string_view expected(c.expected);
    EXPECT_EQ(candidate.ok, !expected.empty());
    if (candidate.ok) {
        EXPECT_EQ(candidate.view(), expected);
    }
}

INSTANTIATE_TEST_SUITE_P(Accepted, ExtractSsnTest,
        ::testing::Values(SsnExtractCase{"152-87-5870", "152875870"},
                SsnExtractCase{"ssn: 728-62-0275\n", "728620275"},
                SsnExtractCase{"SSN 293 24 8826.", "293248826"},
                SsnExtractCase{"(323-98-8460)", "323988460"},
                SsnExtractCase{"ssn=323-98-8460DDDD", "323988460"}));

INSTANTIATE_TEST_SUITE_P(Rejected, ExtractSsnTest,
        ::testing::Values(SsnExtractCase{"000-87-5870", ""}, SsnExtractCase{"666-87-5870", ""},
                SsnExtractCase{"912-87-5870", ""}, SsnExtractCase{"152-00-5870", ""},
                SsnExtractCase{"152-87-0000", ""}, SsnExtractCase{"078-05-1120", ""},
                SsnExtractCase{"111-11-1111", ""}, SsnExtractCase{"152-87 5870", ""},
                SsnExtractCase{"152875870", ""}, SsnExtractCase{"1-152-87-5870", ""},
                SsnExtractCase{"9152-87-5870", ""}, SsnExtractCase{"x152-87-5870", ""},
                SsnExtractCase{"12 152 87 5870", ""}, SsnExtractCase{"152-87-58701", ""},
                SsnExtractCase{"123-45-6789", ""}, SsnExtractCase{"121-21-2121", ""},
                SsnExtractCase{"155-51-5155", ""}));

TEST(ExtractSsnTest, KeepsTextbookNumberWhenNotRejecting) {
    EXPECT_TRUE(extract_ssn("123-45-6789", 11, false).ok);
}

TEST(ExtractSsnTest, RejectsOneRepeatedDigitAlways) {
    EXPECT_FALSE(extract_ssn("111-11-1111", 11, false).ok);
}

TEST(ExtractSsnTest, ReportsWhereTheValueStarts) {
    EXPECT_EQ(extract_ssn("ssn 152-87-5870", 15, true).start, 4U);
}

// Synthetic IBANs: random BBANs with computed check digits, not accounts.
TEST(IbanTest, KnowsCountryLengths) {
    EXPECT_EQ(iban_length("DE"), 22U);
    EXPECT_EQ(iban_length("NO"), 15U);
    EXPECT_EQ(iban_length("RU"), 33U);
    EXPECT_EQ(iban_length("US"), 0U);
    EXPECT_EQ(iban_length("D"), 0U);
}

struct IbanCase {
    const char* compact;
    bool valid;
};

class IbanValidTest : public ::testing::TestWithParam<IbanCase> {};

TEST_P(IbanValidTest, AppliesLengthAndMod97) {
    EXPECT_EQ(iban_valid(GetParam().compact), GetParam().valid) << GetParam().compact;
}

INSTANTIATE_TEST_SUITE_P(Checks, IbanValidTest,
        ::testing::Values(IbanCase{"DE50526018159083016613", true},
                IbanCase{"GB82MIDL18609139099603", true},
                IbanCase{"FR61082462819482199351819X11", false},  // 28: France has 27
                IbanCase{"NL27RABO0937865797", true}, IbanCase{"NO0354323194875", true},
                IbanCase{"MT25MALT7491160KVJ50CE9UVW53EFR", true},
                IbanCase{"DE51526018159083016613", false},  // check digits
                IbanCase{"DE50526018159083016631", false},  // swapped digits
                IbanCase{"DE5052601815908301661", false},   // length
                IbanCase{"XX50526018159083016613", false},  // country
                IbanCase{"DE5O526018159083016613", false},  // letter in check digits
                IbanCase{"de50526018159083016613", false},  // lower case
                IbanCase{"NL27rabo0937865797", false}));

struct IbanExtractCase {
    std::string_view text;
    const char* expected;  // compact IBAN, or "" when none must be found
};

// gtest finds its printer hook by this name.
void PrintTo(  // NOLINT(readability-identifier-naming)
        const IbanExtractCase& c, std::ostream* os) {
    *os << '"' << c.text << '"';
}

class ExtractIbanTest : public ::testing::TestWithParam<IbanExtractCase> {};

// The value ends at the text's last letter or digit.
TEST_P(ExtractIbanTest, ReadsIbanEndingAtLastCharacter) {
    const IbanExtractCase& c = GetParam();
    const size_t last =
            c.text.find_last_of("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz");
    const Candidate candidate = extract_iban(c.text, last + 1, true);
    const std::string_view expected(c.expected);
    EXPECT_EQ(candidate.ok, !expected.empty());
    if (candidate.ok) {
        EXPECT_EQ(candidate.view(), expected);
    }
}

INSTANTIATE_TEST_SUITE_P(Accepted, ExtractIbanTest,
        ::testing::Values(IbanExtractCase{"DE50526018159083016613", "DE50526018159083016613"},
                IbanExtractCase{"IBAN: DE50 5260 1815 9083 0166 13.", "DE50526018159083016613"},
                IbanExtractCase{"to GB82 MIDL 1860 9139 0996 03", "GB82MIDL18609139099603"},
                IbanExtractCase{"PAY TO NL27RABO0937865797", "NL27RABO0937865797"},
                IbanExtractCase{"\"iban\":\"NO0354323194875\"", "NO0354323194875"},
                IbanExtractCase{"MT25 MALT 7491 160K VJ50 CE9U VW53 EFR",
                        "MT25MALT7491160KVJ50CE9UVW53EFR"}));

INSTANTIATE_TEST_SUITE_P(NearMisses, ExtractIbanTest,
        ::testing::Values(IbanExtractCase{"DE51526018159083016613", ""},  // mod 97
                IbanExtractCase{"DE50 5260 1815 9083 0166 1", ""},        // short
                IbanExtractCase{"DE505 2601 8159 0830 1661 3", ""},       // grouping
                IbanExtractCase{"DE50  5260 1815 9083 0166 13", ""},      // double space
                IbanExtractCase{"XDE50526018159083016613", ""},           // glued
                IbanExtractCase{"DE50526018159083016613x", ""},           // glued after
                IbanExtractCase{"ref_DE50526018159083016613", ""},        // identifier
                IbanExtractCase{"DE89 3704 0044 0532 0130 00", ""},       // published
                IbanExtractCase{"GB29NWBK60161331926819", ""},            // published
                IbanExtractCase{"DE36 0000 0000 0000 0000 00", ""}));     // filler

TEST(ExtractIbanTest, KeepsPublishedIbanWhenNotRejecting) {
    EXPECT_TRUE(extract_iban("GB29NWBK60161331926819", 22, false).ok);
}

TEST(ContentTypesTest, NamesRoundTrip) {
    ContentClass cls = ContentClass::PaymentCard;
    EXPECT_TRUE(content_class_from_name("us_ssn", cls));
    EXPECT_EQ(cls, ContentClass::UsSsn);
    EXPECT_EQ(content_class_name(ContentClass::PaymentCard), "payment_card");
    Severity severity = Severity::Low;
    EXPECT_TRUE(severity_from_name("critical", severity));
    EXPECT_EQ(severity, Severity::Critical);
    EXPECT_EQ(severity_name(Severity::Medium), "medium");
    EXPECT_EQ(confidence_name(Confidence::High), "high");
}

TEST(ContentTypesTest, EveryClassNameRoundTrips) {
    for (size_t i = 0; i < kContentClassCount; ++i) {
        const auto cls = static_cast<ContentClass>(i);
        ContentClass back = ContentClass::PaymentCard;
        ASSERT_TRUE(content_class_from_name(content_class_name(cls), back)) << i;
        EXPECT_EQ(back, cls);
    }
    EXPECT_EQ(content_class_name(ContentClass::ClassificationMarker), "classification_marker");
    EXPECT_EQ(content_class_name(ContentClass::Custom), "custom");
}

TEST(ContentTypesTest, DefaultSeveritiesFollowTheClass) {
    const ContentConfig config;
    EXPECT_EQ(config.classes[static_cast<size_t>(ContentClass::PrivateKey)].severity,
            Severity::Critical);
    EXPECT_EQ(config.classes[static_cast<size_t>(ContentClass::Iban)].severity, Severity::High);
    EXPECT_EQ(config.classes[static_cast<size_t>(ContentClass::Jwt)].severity, Severity::Medium);
    EXPECT_EQ(config.classes[static_cast<size_t>(ContentClass::VcsToken)].threshold, 1U);
}

TEST(ContentTypesTest, CustomRuleOverridesClassSeverityAndThreshold) {
    ContentConfig config;
    config.classes[static_cast<size_t>(ContentClass::Custom)].threshold = 3;
    config.custom.push_back({"falcon", {"falcon"}, "", Severity::Critical, std::nullopt, true, ""});
    config.custom.push_back({"orders", {}, "ORD-[0-9]+", std::nullopt, 5, true, ""});

    EXPECT_EQ(config.severity_of(ContentClass::Custom, 1), Severity::Critical);
    EXPECT_EQ(config.threshold_of(ContentClass::Custom, 1), 3U);
    EXPECT_EQ(config.severity_of(ContentClass::Custom, 2), Severity::Medium);
    EXPECT_EQ(config.threshold_of(ContentClass::Custom, 2), 5U);
    EXPECT_EQ(config.rule_name(2), "orders");
    EXPECT_EQ(config.rule_name(0), "");
    EXPECT_EQ(config.rule_name(3), "");
    EXPECT_EQ(config.severity_of(ContentClass::UsSsn, 0), Severity::High);
}

TEST(ContentTypesTest, RejectsUnknownNames) {
    ContentClass cls = ContentClass::PaymentCard;
    Severity severity = Severity::Low;
    EXPECT_FALSE(content_class_from_name("ibans", cls));
    EXPECT_FALSE(severity_from_name("urgent", severity));
}

}  // namespace
}  // namespace exfiltap::detectors
