// Validators of number-like candidate values (cards, SSNs, IBANs). Pure functions on byte
// spans, safe on any thread, no allocation. A candidate becomes a finding only after its
// validator accepts it. The secret classes are in secret_validators.h.
//
// Every extract_*() function reads the value that ends just before `end` (text[end - 1] is
// its last character; text[end], when present, is the byte after it), walking back from
// there: the scanner knows only where a match ends. `text` may begin mid-value only if the
// caller has no earlier bytes; a Candidate whose `start` is 0 touches the start of `text`.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "detectors/content_types.h"

namespace exfiltap::detectors {

/// A value read out of raw bytes by a validator.
struct Candidate {
    bool ok = false;
    uint8_t len = 0;
    /// Leading characters of `value` that identify it for per-direction dedup; 0: all of it.
    /// (A private key is deduplicated by its type, while its value also carries body text.)
    uint8_t key_len = 0;
    /// Index in `text` of the value's first character as written (separators included).
    size_t start = 0;
    /// The normalised value; a longer one keeps its last kMaxValueLen characters.
    std::array<char, kMaxValueLen> value{};

    std::string_view view() const { return {value.data(), len}; }
    std::string_view key() const { return {value.data(), key_len != 0 ? key_len : len}; }
    /// Appends while there is room; false when `c` did not fit.
    bool push(char c) noexcept {
        if (len >= value.size()) {
            return false;
        }
        value[len++] = c;
        return true;
    }
    /// Sets the value to the last kMaxValueLen characters of `text`.
    void assign_tail(std::string_view text) noexcept;
};

/// Luhn check over a string of decimal digits only. False for empty or non-digit input.
bool luhn_valid(std::string_view digits) noexcept;

enum class CardBrand : uint8_t {
    None,
    Visa,
    Mastercard,
    Amex,
    Discover,
    Diners,
    Jcb,
    UnionPay,
    Maestro,
    Mir,
};

/// Brand whose IIN range and PAN lengths admit `digits` (digits only); None otherwise.
CardBrand card_brand(std::string_view digits) noexcept;

/// True when digits is one of the published test card numbers, or repeated-digit filler
/// (one digit repeated, or a value made of at most two distinct digits).
bool is_test_or_filler_card(std::string_view digits) noexcept;

/// US SSN rules on 9 digits: area not 000, 666 or 900-999; group not 00; serial not 0000;
/// and not one of the well-known invalid/advertising numbers (078-05-1120, 219-09-9999).
bool ssn_valid(std::string_view digits) noexcept;

/// True for SSN filler and published examples: one digit repeated, at most two distinct
/// digits (121-21-2121), or the textbook 123-45-6789.
bool is_test_or_filler_ssn(std::string_view digits) noexcept;

/// Reads the card candidate that ends just before `end`, walking back over digits and
/// single separators (space or dash). Applies the separator rules (one separator kind,
/// groups of a card layout: 4-4-4-4, 4-4-4-4-3, 4-6-5, 4-6-4, or no separators), the
/// boundary rules (no letter, digit, '_' or '.'-decimal before it, no digit after it, not
/// wrapped in '=' like a MIME boundary), then Luhn and IIN. Letters may follow the value:
/// padding such as "4857...5715DDDD" must not hide it. Value: the digits.
Candidate extract_card(std::string_view text, size_t end, bool reject_test_numbers) noexcept;

/// extract_card() without its shortcut for four groups of four digits: the walk back over
/// the run that the shortcut must agree with (tests compare the two).
Candidate extract_card_by_walk(
        std::string_view text, size_t end, bool reject_test_numbers) noexcept;

/// Groups of the longest card layout with separators (4-4-4-4-3).
inline constexpr size_t kCardLayoutGroups = 5;

/// Follows the digit-and-separator runs of a byte stream forward and tells, in constant
/// time per value end, whether extract_card() could accept a value ending there: it keeps
/// the groups extract_card() would walk back over (the last kCardLayoutGroups of the run)
/// with both Luhn sums and the first four digits of each, so every layout-valid suffix is
/// Luhn-checked, and its prefix checked against the card brands, without reading its digits
/// again. A digit run of a segment matches the card pattern at every group end
/// (exfiltap-bench digits: ~255 ends per 1460 bytes), and walking each back cost most of the
/// content stage. Used by one thread; no allocation.
class CardRunTracker {
public:
    enum class Verdict : uint8_t {
        NoCard,  // extract_card() rejects every value ending here
        Maybe,   // a layout passes Luhn with a brand's prefix, or the tracker cannot tell
    };

    /// Starts over at stream offset `offset`; bytes before it are unknown.
    void reset(uint64_t offset) noexcept;
    /// Stream offset of the next byte to feed.
    uint64_t next() const noexcept { return next_; }
    /// The bytes from next() on.
    void feed(std::string_view bytes) noexcept;
    /// After feeding every byte before `end`: the verdict on the card value ending at `end`
    /// that extract_card() would read from a text starting at stream offset `window_begin`.
    Verdict judge(uint64_t end, uint64_t window_begin) const noexcept;

    /// After a judge() at next(), a group end (if bytes[0] is a digit, nothing is settled
    /// and next() is returned): feeds on through `bytes` (which start at next()), judging
    /// every group end on the way as a value read from a text starting at
    /// E - min(E - window_floor, window_bytes) for the end E. Stops at the first end judged
    /// Maybe (next() is then that end), where more than a few bytes of text follow a run,
    /// or at the end of `bytes`. Returns the bound B: every value end after the one judged
    /// before the call and below B is NoCard. The card pattern matches at every group end of
    /// a run, so the runs of a scan call cost one pass and each of their matches one
    /// comparison.
    uint64_t advance(std::string_view bytes, uint64_t window_floor, uint64_t window_bytes) noexcept;

private:
    void start_group(uint64_t at, char separator) noexcept;
    void set_newest(size_t len, unsigned head, unsigned plain, unsigned twice) noexcept;
    void skip_text(std::string_view text) noexcept;
    bool advance_fours(const char* p, size_t n, size_t& i, uint64_t window_floor,
            uint64_t window_bytes) noexcept;

    uint64_t known_from_ = 0;  // first byte fed since reset()
    uint64_t next_ = 0;
    uint64_t low_ = 0;  // lowest offset extract_card() reads walking back over the run
    // Lowest offset a walk reaching back to an over-long group joined into this run reads
    // (UINT64_MAX: none since the run began). A window starting inside that group makes
    // extract_card() see a short group there, so low_ never rises above it.
    uint64_t long_joint_low_ = UINT64_MAX;
    // The last kCardLayoutGroups groups, one byte each, the newest in the low byte and 0 past
    // groups_ (so a layout is one masked comparison): lengths (at most 255) and both Luhn
    // sums (last digit single; last digit doubled), only their value mod 10 mattering and
    // each at most 36, so that five add up within a byte.
    uint64_t lens_ = 0;
    uint64_t sums_plain_ = 0;
    uint64_t sums_twice_ = 0;
    size_t len0_ = 0;                                   // the newest group's length, uncapped
    std::array<uint64_t, kCardLayoutGroups> starts_{};  // stream offset of each, newest first
    std::array<uint16_t, kCardLayoutGroups> heads_{};   // first four digits of each, as a number
    size_t groups_ = 0;
    char separator_ = 0;  // joins the run's groups; 0 for a single group
    char last_ = 0;       // the byte at next() - 1 (0 when unknown)
    char before_last_ = 0;
    bool long_group_ = false;  // the newest group is longer than any card number
};

/// Instruction sets the card tracker may use on digit-dense runs. Scalar reads the groups of
/// a run a block at a time and tests every block; Ssse3 first skips, in vectors, the blocks
/// that end no card (x86-64 builds); Avx2 skips them two at a time (x86-64 processors that
/// have AVX2). All give the same verdicts (the tests run each against the others).
enum class CardVectorLevel : uint8_t {
    Scalar,
    Ssse3,
    Avx2
};

/// The best level this build allows on this processor: the default.
CardVectorLevel best_card_vector_level() noexcept;

/// Sets the level for every tracker of the process, capped at the best one (tests, and
/// exfiltap-bench's comparisons); returns the level now in use.
CardVectorLevel set_card_vector_level(CardVectorLevel level) noexcept;

/// The same for an SSN written ddd-dd-dddd or ddd dd dddd (same boundary rules, and no
/// number joined before it by a separator or '.'). Value: the 9 digits. The rule
/// checks of ssn_valid() always apply; is_test_or_filler_ssn() when `reject_test_numbers`.
Candidate extract_ssn(std::string_view text, size_t end, bool reject_test_numbers) noexcept;

/// IBAN length of a two-letter country code (ISO 13616 registry), 0 when the country has no
/// IBAN.
unsigned iban_length(std::string_view country) noexcept;

/// Full IBAN check on the compact form (no spaces): country with a known length, two check
/// digits, upper-case letters and digits only, ISO 7064 mod 97 == 1.
bool iban_valid(std::string_view compact) noexcept;

/// True for IBANs printed in standards and bank documentation, and for filler: a BBAN made
/// of one or two distinct characters.
bool is_test_or_filler_iban(std::string_view compact) noexcept;

/// Reads an IBAN ending just before `end`: upper-case only, compact or printed in groups of
/// four separated by single spaces (the last group 1-4 characters). Not preceded or
/// followed by a letter, digit or '_'. Value: the compact IBAN.
Candidate extract_iban(std::string_view text, size_t end, bool reject_test_numbers) noexcept;

}  // namespace exfiltap::detectors
