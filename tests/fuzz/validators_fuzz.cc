// libFuzzer target for the value validators and the card run tracker. The input's first byte
// chooses the look-behind window; the rest is the text. Checks, besides ASan and UBSan on
// every extractor at every end:
// - extract_card() answers as extract_card_by_walk() (its four-group shortcut is exact);
// - at every vector level, the tracker used as the scanner uses it (started at some offset,
//   with the bytes before a floor unknown; fed up to a group end, judging it, advance()
//   through the rest) says what a tracker fed a byte at a time says, and every end
//   advance() settles, or either tracker calls NoCard, is one extract_card() rejects with
//   the scanner's window.
// The second and third bytes choose where the trackers start and the floor below it.
#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "detectors/char_class.h"
#include "detectors/validators.h"
#include "tests/fuzz/fuzz_check.h"

namespace {

using exfiltap::detectors::Candidate;
using exfiltap::detectors::CardRunTracker;
using exfiltap::detectors::CardVectorLevel;
using exfiltap::detectors::is_digit;

void check(bool condition, int line = __builtin_LINE()) {
    exfiltap::fuzz::check(condition, "validators_fuzz", line);
}

bool same(const Candidate& a, const Candidate& b) {
    return a.ok == b.ok && (!a.ok || (a.start == b.start && a.view() == b.view()));
}

// What extract_card() decides on the value ending at `end` when the scanner hands it the
// text from `window_begin` to the byte after the value.
bool card_accepted(std::string_view text, size_t window_begin, size_t end) {
    const size_t stop = std::min(end + 1, text.size());
    const std::string_view window = text.substr(window_begin, stop - window_begin);
    return exfiltap::detectors::extract_card(window, end - window_begin, false).ok
            || exfiltap::detectors::extract_card(window, end - window_begin, true).ok;
}

// The trackers start at `from` (the scanner starts 32 bytes before its first card value
// end); the scanner's window never reaches below `floor` (the bytes it still has).
void check_tracker(std::string_view text, size_t from, size_t floor, size_t window_bytes) {
    CardRunTracker tracker;
    tracker.reset(from);
    CardRunTracker slow;  // fed a byte at a time
    slow.reset(from);
    uint64_t skip_from = 0;
    uint64_t skip_end = 0;
    for (size_t end = from + 1; end <= text.size(); ++end) {
        slow.feed(text.substr(end - 1, 1));
        if (!is_digit(text[end - 1]) || (end < text.size() && is_digit(text[end]))) {
            continue;  // not a group end
        }
        const size_t window_begin = end - std::min(end - floor, window_bytes);
        const CardRunTracker::Verdict expected = slow.judge(end, window_begin);
        if (expected == CardRunTracker::Verdict::NoCard) {
            check(!card_accepted(text, window_begin, end));
        }
        if (end >= skip_from && end < skip_end) {
            check(expected == CardRunTracker::Verdict::NoCard);
            continue;
        }
        check(tracker.next() <= end);
        tracker.feed(text.substr(tracker.next(), end - tracker.next()));
        check(tracker.judge(end, window_begin) == expected);
        if (end == text.size()) {
            break;  // nothing to advance through
        }
        const uint64_t bound = tracker.advance(text.substr(end), floor, window_bytes);
        check(bound > end && bound <= text.size() + 1);
        skip_from = end + 1;
        skip_end = bound;
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    if (size == 0) {
        return 0;
    }
    if (size < 3) {
        return 0;
    }
    static constexpr std::array<size_t, 4> kWindows = {20, 40, 128, SIZE_MAX / 2};
    const size_t window_bytes = kWindows[data[0] % kWindows.size()];
    const std::string_view text(reinterpret_cast<const char*>(data) + 3, size - 3);
    const size_t from = std::min<size_t>(data[1] % 64, text.size());
    const size_t floor = from - std::min<size_t>(from, data[2] % 48);

    for (size_t end = 0; end <= text.size(); ++end) {
        for (const bool reject : {false, true}) {
            const Candidate card = exfiltap::detectors::extract_card(text, end, reject);
            check(same(card, exfiltap::detectors::extract_card_by_walk(text, end, reject)));
            check(!card.ok || (card.start < end && card.len >= 12 && card.len <= 19));
            const Candidate ssn = exfiltap::detectors::extract_ssn(text, end, reject);
            check(!ssn.ok || (ssn.start < end && ssn.len == 9));
            const Candidate iban = exfiltap::detectors::extract_iban(text, end, reject);
            check(!iban.ok || iban.start < end);
        }
    }
    for (const CardVectorLevel level :
            {CardVectorLevel::Scalar, CardVectorLevel::Ssse3, CardVectorLevel::Avx2}) {
        exfiltap::detectors::set_card_vector_level(level);
        check_tracker(text, from, floor, window_bytes);
    }
    exfiltap::detectors::set_card_vector_level(exfiltap::detectors::best_card_vector_level());
    return 0;
}
