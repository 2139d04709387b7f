#pragma once

#include <set>
#include <string>
#include <string_view>

#include "tests/gen/rng.h"

namespace exfiltap::gen {

// Synthetic sensitive values for the detectors to find. Every value is valid by the rules a
// validator applies, drawn from the generator's PRNG, never a published test number and
// never repeated-digit filler, and unique within one capture.

enum class CardBrand {
    kVisa,        // 4, 16 digits
    kMastercard,  // 51-55, 16 digits
    kAmex,        // 34 or 37, 15 digits
    kDiscover,    // 6011, 16 digits
};

enum class Separator {
    kNone,
    kSpace,
    kDash,
};

bool luhn_valid(std::string_view digits);

// Card numbers grouped as printed: 4-4-4-4, Amex 4-6-5.
std::string format_card(const std::string& digits, Separator sep);
// ddd-dd-dddd
std::string format_ssn(const std::string& digits);

class ValueSource {
public:
    explicit ValueSource(Rng& rng) : rng_(rng) {}

    // Digits only.
    std::string card(CardBrand brand);
    // Digits only: area 001-899 except 666, group 01-99, serial 0001-9999.
    std::string ssn();

private:
    bool usable(const std::string& digits);

    Rng& rng_;
    std::set<std::string> used_;
};

}  // namespace exfiltap::gen
