#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

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
// digits pass a plain Luhn check.
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
                const bool expected = length >= 12 && length <= 19 && luhn_valid(run);
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
