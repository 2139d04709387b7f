#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <gtest/gtest.h>

#include "detectors/validators.h"

namespace exfiltap::detectors {
namespace {

using Verdict = CardRunTracker::Verdict;

// A fixed linear congruential generator: the same texts on every run.
class Lcg {
public:
    explicit Lcg(uint64_t seed) : state_(seed) {}
    unsigned next(unsigned bound) {
        state_ = state_ * 6364136223846793005ULL + 1442695040888963407ULL;
        return static_cast<unsigned>((state_ >> 33) % bound);
    }

private:
    uint64_t state_;
};

// Mostly digits and separators, with the characters the card rules look at before a value.
std::string random_text(Lcg& rng, size_t length) {
    static constexpr std::string_view kOthers = " -+\n.=%aZ_3D";
    std::string text;
    for (size_t i = 0; i < length; ++i) {
        const unsigned pick = rng.next(100);
        if (pick < 70) {
            text += static_cast<char>('0' + rng.next(10));
        } else if (pick < 90) {
            text += " -"[rng.next(2)];
        } else {
            text += kOthers[rng.next(static_cast<unsigned>(kOthers.size()))];
        }
    }
    return text;
}

// Card-shaped groups joined as the benchmark's digit segments are: 4-4-4-4 with one kind
// of separator, numbers separated by a space or a line break.
std::string card_runs(Lcg& rng, size_t numbers) {
    std::string text;
    for (size_t n = 0; n < numbers; ++n) {
        const char separator = rng.next(3) == 0 ? '-' : ' ';
        for (size_t i = 0; i < 16; ++i) {
            if (i > 0 && i % 4 == 0) {
                text += separator;
            }
            text += static_cast<char>('0' + (i == 0 ? 4 : rng.next(10)));
        }
        text += rng.next(4) == 0 ? '\n' : ' ';
    }
    return text;
}

// What extract_card() decides on the value ending at `end`, reading from `window_begin`.
bool reference_accepts(std::string_view text, size_t window_begin, size_t end) {
    const size_t stop = std::min(end + 1, text.size());
    const std::string_view window = text.substr(window_begin, stop - window_begin);
    return extract_card(window, end - window_begin, false).ok
            || extract_card(window, end - window_begin, true).ok;
}

// Feeds `text` from `from` and checks, at every end and for several windows, that NoCard
// is said only where extract_card() rejects. Returns how many group ends were NoCard.
size_t check_against_reference(std::string_view text, size_t from, size_t& ends) {
    CardRunTracker tracker;
    tracker.reset(from);
    size_t no_card = 0;
    for (size_t end = from + 1; end <= text.size(); ++end) {
        tracker.feed(text.substr(end - 1, 1));
        const size_t windows[] = {from, end - std::min<size_t>(end - from, 128),
                end - std::min<size_t>(end - from, 40), end - std::min<size_t>(end - from, 20)};
        for (const size_t window_begin : windows) {
            const Verdict verdict = tracker.judge(end, window_begin);
            if (verdict == Verdict::NoCard) {
                EXPECT_FALSE(reference_accepts(text, window_begin, end))
                        << "end " << end << " window " << window_begin << " from " << from;
            }
        }
        if (end < text.size() && (text[end] == ' ' || text[end] == '-' || text[end] == '\n')
                && text[end - 1] >= '0' && text[end - 1] <= '9') {
            ++ends;
            no_card +=
                    tracker.judge(end, end - std::min<size_t>(end - from, 128)) == Verdict::NoCard;
        }
    }
    return no_card;
}

TEST(CardRunTrackerTest, SaysNoCardOnlyWhereExtractCardRejects) {
    Lcg rng(7);
    for (int round = 0; round < 200; ++round) {
        const std::string text = random_text(rng, 300);
        size_t ends = 0;
        check_against_reference(text, 0, ends);
        check_against_reference(text, rng.next(150), ends);
    }
}

TEST(CardRunTrackerTest, SaysNoCardOnlyWhereExtractCardRejectsOnCardRuns) {
    Lcg rng(11);
    size_t ends = 0;
    size_t no_card = 0;
    for (int round = 0; round < 50; ++round) {
        const std::string text = card_runs(rng, 20);
        no_card += check_against_reference(text, 0, ends);
        size_t later_ends = 0;
        check_against_reference(text, rng.next(100), later_ends);
    }
    // Most group ends are settled without extract_card(): a random Luhn sum passes one in ten.
    EXPECT_GT(no_card * 10, ends * 7) << no_card << " of " << ends;
}

// A lone run of every length at every offset: Maybe exactly when it is a card length whose
// digits pass a plain Luhn check and have a brand.
TEST(CardRunTrackerTest, LuhnChecksEveryLengthAndOffsetOfARun) {
    Lcg rng(3);
    for (int round = 0; round < 40; ++round) {
        std::string digits;
        for (int i = 0; i < 24; ++i) {
            digits += static_cast<char>('0' + rng.next(10));
        }
        for (size_t offset = 0; offset < 4; ++offset) {
            for (size_t length = 1; length <= 22; ++length) {
                const std::string text =
                        std::string(offset, 'x') + " " + digits.substr(0, length) + " ";
                CardRunTracker tracker;
                tracker.reset(0);
                tracker.feed(std::string_view(text).substr(0, text.size() - 1));
                const std::string_view run = std::string_view(digits).substr(0, length);
                const bool expected = length >= 12 && length <= 19 && luhn_valid(run)
                        && card_brand(run) != CardBrand::None;
                EXPECT_EQ(tracker.judge(text.size() - 1, 0) == Verdict::Maybe, expected) << run;
            }
        }
    }
}

TEST(CardRunTrackerTest, ChecksEveryGroupedSuffix) {
    // 4-4-4-4 after an earlier group: the last four groups pass Luhn only when the card does.
    CardRunTracker tracker;
    tracker.reset(0);
    const std::string_view valid = "100 4857 0839 3473 5715";
    tracker.feed(valid);
    EXPECT_EQ(tracker.judge(valid.size(), 0), Verdict::Maybe);

    tracker.reset(0);
    const std::string_view invalid = "100 4857 0839 3473 5716";
    tracker.feed(invalid);
    EXPECT_EQ(tracker.judge(invalid.size(), 0), Verdict::NoCard);
}

TEST(CardRunTrackerTest, CannotTellWhenTheRunReachesBackPastItsStart) {
    // Fed from the middle of a number: the walk back from the end reads bytes it never saw.
    const std::string_view text = "4857 0839 3473 5716";
    CardRunTracker tracker;
    tracker.reset(5);
    tracker.feed(text.substr(5));
    EXPECT_EQ(tracker.judge(text.size(), 0), Verdict::Maybe);
    EXPECT_EQ(tracker.judge(text.size(), 5), Verdict::NoCard);
}

// The scanner's use of advance(): at each group end not settled yet, feed up to it, judge it,
// then advance through the rest of the text. Every end advance() settles must be one that
// extract_card() rejects, with the window the scanner would give it. Returns the ends settled.
size_t check_advance(std::string_view text, size_t window_bytes) {
    CardRunTracker tracker;
    tracker.reset(0);
    // The same text fed a byte at a time: advance() must answer as it would.
    CardRunTracker slow;
    slow.reset(0);
    size_t settled = 0;
    uint64_t skip_from = 0;
    uint64_t skip_end = 0;
    for (size_t end = 1; end < text.size(); ++end) {
        slow.feed(text.substr(end - 1, 1));
        const bool group_end = text[end - 1] >= '0' && text[end - 1] <= '9'
                && !(text[end] >= '0' && text[end] <= '9');
        if (!group_end) {
            continue;
        }
        const size_t window_begin = end - std::min(end, window_bytes);
        const Verdict expected = slow.judge(end, window_begin);
        if (end >= skip_from && end < skip_end) {
            EXPECT_FALSE(reference_accepts(text, window_begin, end))
                    << "settled end " << end << " window " << window_begin;
            EXPECT_EQ(expected, Verdict::NoCard) << "settled end " << end;
            ++settled;
            continue;
        }
        EXPECT_LE(tracker.next(), end);
        tracker.feed(text.substr(tracker.next(), end - tracker.next()));
        EXPECT_EQ(tracker.judge(end, window_begin), expected) << "end " << end;
        const uint64_t bound = tracker.advance(text.substr(end), 0, window_bytes);
        EXPECT_GT(bound, end);
        skip_from = end + 1;
        skip_end = bound;
    }
    return settled;
}

// Groups of 1 to 21 digits (the group reader takes up to 7 at once), joined by one or two
// kinds of separator, with an occasional other byte.
std::string mixed_groups(Lcg& rng, size_t groups) {
    std::string text;
    for (size_t g = 0; g < groups; ++g) {
        const unsigned len = rng.next(4) == 0 ? 1 + rng.next(21) : 3 + rng.next(4);
        for (unsigned i = 0; i < len; ++i) {
            text += static_cast<char>('0' + rng.next(10));
        }
        const unsigned pick = rng.next(20);
        text += pick < 12 ? ' ' : pick < 17 ? '-' : pick < 18 ? '+' : pick < 19 ? '\n' : 'x';
    }
    return text;
}

// The advance() tests run at every vector level the tracker has (a level this build lacks
// runs at the best it has, which the other instantiation covers too).
class CardRunTrackerLevels : public ::testing::TestWithParam<CardVectorLevel> {
protected:
    void SetUp() override { used_ = set_card_vector_level(GetParam()); }
    void TearDown() override { set_card_vector_level(best_card_vector_level()); }
    CardVectorLevel used_ = CardVectorLevel::Scalar;
};

INSTANTIATE_TEST_SUITE_P(Levels, CardRunTrackerLevels,
        ::testing::Values(CardVectorLevel::Scalar, CardVectorLevel::Ssse3, CardVectorLevel::Avx2),
        [](const ::testing::TestParamInfo<CardVectorLevel>& info) {
            switch (info.param) {
            case CardVectorLevel::Scalar:
                return std::string("Scalar");
            case CardVectorLevel::Ssse3:
                return std::string("Ssse3");
            case CardVectorLevel::Avx2:
                return std::string("Avx2");
            }
            return std::string("Unknown");
        });

TEST_P(CardRunTrackerLevels, AdvanceSettlesOnlyEndsExtractCardRejects) {
    Lcg rng(19);
    size_t settled_runs = 0;
    for (int round = 0; round < 100; ++round) {
        const std::string runs = card_runs(rng, 30);
        settled_runs += check_advance(runs, 128);
        check_advance(runs, 20);
        const std::string text = random_text(rng, 400);
        check_advance(text, 128);
        check_advance(text, 40);
        const std::string mixed = mixed_groups(rng, 80);
        check_advance(mixed, 128);
        check_advance(mixed, 30);
    }
    // Card-shaped runs: most group ends are settled ahead (30 numbers of 4 groups a round).
    EXPECT_GT(settled_runs, 100U * 30 * 4 / 2);
}

// A tracker fed `text` up to `end`, where it judged NoCard (as the scanner leaves it
// before advance()).
CardRunTracker judged_no_card(std::string_view text, size_t end) {
    CardRunTracker tracker;
    tracker.reset(0);
    tracker.feed(text.substr(0, end));
    EXPECT_EQ(tracker.judge(end, 0), Verdict::NoCard);
    return tracker;
}

TEST_P(CardRunTrackerLevels, AdvanceStopsAtAPossibleCardAndAtTheRunsEnd) {
    // "1000 " then a valid card: the card's end is not settled, the tracker waits there.
    const std::string_view text = "1000 4857 0839 3473 5715 x";
    CardRunTracker tracker = judged_no_card(text, 4);
    EXPECT_EQ(tracker.advance(text.substr(4), 0, 128), 24U);
    EXPECT_EQ(tracker.next(), 24U);
    EXPECT_EQ(tracker.judge(24, 0), Verdict::Maybe);
    // After it the run ends at " x", and the bytes end: every end up to there is settled.
    EXPECT_EQ(tracker.advance(text.substr(24), 0, 128), 26U);
    // Text and a new run after it: judged too, up to a possible card.
    const std::string_view later = "1000 x, then 4857 0839 3473 5715 and 1234 5678.";
    CardRunTracker again = judged_no_card(later, 4);
    EXPECT_EQ(again.advance(later.substr(4), 0, 128), 32U);
    EXPECT_EQ(again.judge(32, 0), Verdict::Maybe);
    EXPECT_EQ(again.advance(later.substr(32), 0, 128), later.size());
    // Longer text after a run: the tracker stops there (the next run is the next match's).
    const std::string_view prose = "1000 and then some words 4857 0839 3473 5715 ";
    CardRunTracker third = judged_no_card(prose, 4);
    EXPECT_EQ(third.advance(prose.substr(4), 0, 128), 5U);
    EXPECT_EQ(third.next(), 4U);
    // A group running to the end of the bytes is not an end yet.
    CardRunTracker open = judged_no_card("1000", 4);
    EXPECT_EQ(open.advance(" 4857 08", 0, 128), 12U);
    EXPECT_EQ(open.next(), 12U);
}

// The digit that makes `digits` followed by it pass the Luhn check.
char luhn_check_digit(std::string_view digits) {
    unsigned sum = 0;
    for (size_t i = 0; i < digits.size(); ++i) {
        auto d = static_cast<unsigned>(digits[digits.size() - 1 - i] - '0');
        if (i % 2 == 0) {
            d = d * 2 > 9 ? d * 2 - 9 : d * 2;
        }
        sum += d;
    }
    return static_cast<char>('0' + (10 - sum % 10) % 10);
}

// Every four-digit prefix in every layout: where extract_card() accepts the Luhn-valid
// number, the tracker (which also checks the brands' prefixes) must say Maybe.
TEST(CardRunTrackerTest, BrandPrefixesNeverHideACard) {
    struct Layout {
        std::vector<size_t> groups;
    };
    const Layout layouts[] = {{{4, 4, 4, 4}}, {{4, 4, 4, 4, 3}}, {{4, 6, 5}}, {{4, 6, 4}}, {{12}},
            {{13}}, {{14}}, {{15}}, {{16}}, {{17}}, {{18}}, {{19}}};
    Lcg rng(23);
    size_t accepted = 0;
    for (const Layout& layout : layouts) {
        for (unsigned head = 0; head < 10000; ++head) {
            std::string digits = std::to_string(10000 + head).substr(1);
            size_t total = 0;
            for (const size_t g : layout.groups) {
                total += g;
            }
            while (digits.size() + 1 < total) {
                digits += static_cast<char>('0' + rng.next(10));
            }
            digits += luhn_check_digit(digits);
            std::string text = "x ";
            size_t at = 0;
            for (size_t g = 0; g < layout.groups.size(); ++g) {
                text += (g > 0 ? " " : "") + digits.substr(at, layout.groups[g]);
                at += layout.groups[g];
            }
            text += " ";
            const size_t end = text.size() - 1;
            CardRunTracker tracker;
            tracker.reset(0);
            tracker.feed(std::string_view(text).substr(0, end));
            if (extract_card(text, end, false).ok) {
                ++accepted;
                EXPECT_EQ(tracker.judge(end, 0), Verdict::Maybe) << text;
            }
        }
    }
    // Roughly a quarter of the prefixes belong to a brand at the layouts' lengths.
    EXPECT_GT(accepted, 12U * 1000);
}

// Four-digit groups joined by each kind of byte the tracker tells apart (the three
// separators, line breaks, other text), now and then a group of another length (an
// over-long one too) or a Luhn-valid 4-4-4-4 card: what advance() reads three groups at a
// time and across the end of a run.
std::string four_digit_groups(Lcg& rng, size_t groups) {
    static constexpr std::string_view kJoints = "   ---+\n\n.x=";
    std::string text;
    for (size_t g = 0; g < groups; ++g) {
        const unsigned pick = rng.next(40);
        if (pick == 0) {
            std::string digits = "4";
            while (digits.size() < 15) {
                digits += static_cast<char>('0' + rng.next(10));
            }
            digits += luhn_check_digit(digits);
            const char separator = " -"[rng.next(2)];
            for (size_t i = 0; i < 16; i += 4) {
                text += (i > 0 ? std::string(1, separator) : "") + digits.substr(i, 4);
            }
        } else {
            const unsigned len = pick == 1 ? 3 : pick == 2 ? 5 : pick == 3 ? 21 : 4;
            for (unsigned i = 0; i < len; ++i) {
                text += static_cast<char>('0' + rng.next(10));
            }
        }
        text += kJoints[rng.next(static_cast<unsigned>(kJoints.size()))];
    }
    return text;
}

TEST_P(CardRunTrackerLevels, AdvanceOverFourDigitGroupsAnswersAsTheByteFedTracker) {
    Lcg rng(29);
    size_t settled = 0;
    size_t accepted = 0;
    for (int round = 0; round < 100; ++round) {
        const std::string text = four_digit_groups(rng, 120);
        settled += check_advance(text, 128);
        check_advance(text, 26);
        check_advance(text, 20);
        for (size_t end = 1; end < text.size(); ++end) {
            accepted += reference_accepts(text, end - std::min<size_t>(end, 128), end);
        }
    }
    // Most group ends are settled ahead; the texts hold cards (planted and by chance).
    EXPECT_GT(settled, 100U * 120 / 2);
    EXPECT_GT(accepted, 100U * 2);
}

// advance() settles long stretches of four-digit groups without following their joints one
// by one and works out the run's state from the last joints when it needs it: a run of
// dozens of groups of one separator still counts five groups kept, so a 19-digit card
// written 4-4-4-4-3 at its end is not settled (with three kept, it was).
TEST_P(CardRunTrackerLevels, AdvanceKeepsFiveGroupsAfterALongRun) {
    Lcg rng(31);
    size_t accepted = 0;
    for (int round = 0; round < 60; ++round) {
        const char separator = " -+"[round % 3];
        std::string text = "x ";
        const size_t groups = 6 + rng.next(40);
        for (size_t g = 0; g < groups; ++g) {
            for (int i = 0; i < 4; ++i) {
                text += static_cast<char>('0' + rng.next(10));
            }
            text += separator;
        }
        std::string digits = "4";
        while (digits.size() < 18) {
            digits += static_cast<char>('0' + rng.next(10));
        }
        digits += luhn_check_digit(digits);
        for (size_t i = 0; i < 19; i += 4) {
            text += (i > 0 ? std::string(1, separator) : "") + digits.substr(i, 4);
        }
        text += " x";
        const size_t end = text.size() - 2;
        accepted += extract_card(text, end, false).ok;
        check_advance(text, 128);
    }
    EXPECT_GT(accepted, 50U);
}

// The scanner's walk over `text` (as check_advance() does it) as a trace: each end judged,
// its verdict, and the bound advance() returned from it.
std::vector<uint64_t> advance_trace(std::string_view text, size_t window_bytes) {
    std::vector<uint64_t> trace;
    CardRunTracker tracker;
    tracker.reset(0);
    uint64_t skip_end = 0;
    for (size_t end = 1; end < text.size(); ++end) {
        const bool group_end = text[end - 1] >= '0' && text[end - 1] <= '9'
                && !(text[end] >= '0' && text[end] <= '9');
        if (!group_end || end < skip_end) {
            continue;
        }
        tracker.feed(text.substr(tracker.next(), end - tracker.next()));
        const size_t window_begin = end - std::min(end, window_bytes);
        trace.push_back(end);
        trace.push_back(static_cast<uint64_t>(tracker.judge(end, window_begin)));
        skip_end = tracker.advance(text.substr(end), 0, window_bytes);
        trace.push_back(skip_end);
    }
    return trace;
}

// The default level is the best the processor has, read when the library is loaded.
TEST(CardRunTrackerTest, BestLevelIsWhatTheProcessorHas) {
#if defined(__x86_64__)
    __builtin_cpu_init();
    const CardVectorLevel expected =
            __builtin_cpu_supports("avx2") ? CardVectorLevel::Avx2 : CardVectorLevel::Ssse3;
    EXPECT_EQ(best_card_vector_level(), expected);
#else
    EXPECT_EQ(best_card_vector_level(), CardVectorLevel::Scalar);
#endif
}

// The vector reader stops at the same ends with the same bounds as the scalar one, on runs
// long enough for many blocks in a row, and across joints of every kind.
TEST(CardRunTrackerTest, EveryVectorLevelSettlesTheSameEnds) {
    const CardVectorLevel best = best_card_vector_level();
    Lcg rng(37);
    size_t stops = 0;
    for (int round = 0; round < 60; ++round) {
        const std::string texts[] = {card_runs(rng, 60), four_digit_groups(rng, 200)};
        for (const std::string& text : texts) {
            for (const size_t window_bytes : {size_t{128}, size_t{26}}) {
                set_card_vector_level(CardVectorLevel::Scalar);
                const std::vector<uint64_t> scalar = advance_trace(text, window_bytes);
                for (const CardVectorLevel level :
                        {CardVectorLevel::Ssse3, CardVectorLevel::Avx2}) {
                    set_card_vector_level(level);
                    EXPECT_EQ(advance_trace(text, window_bytes), scalar)
                            << "round " << round << ", level " << static_cast<int>(level);
                }
                stops += scalar.size() / 3;
            }
        }
    }
    set_card_vector_level(best);
    EXPECT_GT(stops, 60U * 2 * 10);
}

// Found by validators_fuzz: when the AVX2 reader's two-block loop stopped short of the end
// of its bytes, it read the next block without checking that all 16 of its bytes were
// there. Here what follows the bytes given is more of the run, so a reader that looks past
// them settles ends that are not in them and moves next() beyond them.
TEST_P(CardRunTrackerLevels, AdvanceReadsNothingPastItsBytes) {
    std::string buffer = "card ";
    while (buffer.size() < 400) {
        buffer += "0000 ";  // Luhn passes, no brand: every end settled
    }
    for (size_t n = 30; n < 300; ++n) {
        const std::string_view text = std::string_view(buffer).substr(0, n);
        CardRunTracker tracker;
        tracker.reset(0);
        tracker.feed(text.substr(0, 9));
        EXPECT_EQ(tracker.judge(9, 0), Verdict::NoCard);
        const uint64_t bound = tracker.advance(text.substr(9), 0, 128);
        EXPECT_LE(tracker.next(), n) << "bytes " << n;
        EXPECT_LE(bound, n + 1) << "bytes " << n;
    }
}

// Found in review: advance() called inside a group (its bytes start with a digit) took that
// digit for text and settled the card ending one byte later.
TEST_P(CardRunTrackerLevels, AdvanceInsideAGroupSettlesNothing) {
    const std::string_view text = "x 4539 1488 0343 6467 ";
    ASSERT_TRUE(extract_card(text, 21, false).ok);
    CardRunTracker tracker;
    tracker.reset(0);
    tracker.feed(text.substr(0, 20));
    EXPECT_EQ(tracker.advance(text.substr(20), 0, 128), 20U);
    EXPECT_EQ(tracker.next(), 20U);
    tracker.feed(text.substr(20, 1));
    EXPECT_EQ(tracker.judge(21, 0), Verdict::Maybe);
}

// Found in review: an over-long group (25 digits) joined to a 6-5 run, the window starting
// inside it. extract_card() then sees the over-long group's tail as a first group and accepts a
// 15-digit Amex-length value; the tracker must not say NoCard there (it used to: its lowest
// byte read was the 4-group's start, not the over-long group's).
TEST(CardRunTrackerTest, WindowInsideAnOverLongJoinedGroupIsNotSettled) {
    const std::string_view text = "9999999999999999999993712 001234 00126 ";
    ASSERT_TRUE(extract_card(text.substr(21), 17, false).ok);  // the reference accepts it
    CardRunTracker tracker;
    tracker.reset(0);
    tracker.feed(text.substr(0, 38));
    EXPECT_EQ(tracker.judge(38, 21), Verdict::Maybe);
    size_t ends = 0;
    check_against_reference(text, 0, ends);
}

}  // namespace
}  // namespace exfiltap::detectors
