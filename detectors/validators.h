// Validators of candidate values. Pure functions on byte spans, safe on any thread, no
// allocation. A candidate becomes a finding only after its validator accepts it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace exfiltap::detectors {

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

/// Result of reading a card candidate out of raw bytes.
struct CardCandidate {
    bool ok = false;
    uint8_t len = 0;
    char digits[24] = {};
};

/// Reads the card candidate that ends just before `end` (text[end-1] is its last digit),
/// walking back over digits and single separators (space or dash). Applies the separator
/// rules (one separator kind, groups of a card layout: 4-4-4-4, 4-4-4-4-3, 4-6-5, 4-6-4,
/// or no separators), the boundary rules (no letter, digit or '.'-decimal before it, no
/// letter or digit after it, not wrapped in '=' like a MIME boundary), then Luhn and IIN.
/// `text` may begin mid-value only if the caller has no earlier bytes.
CardCandidate extract_card(std::string_view text, size_t end, bool reject_test_numbers) noexcept;

/// The same for an SSN written ddd-dd-dddd or ddd dd dddd ending just before `end`.
CardCandidate extract_ssn(std::string_view text, size_t end) noexcept;

}  // namespace exfiltap::detectors
