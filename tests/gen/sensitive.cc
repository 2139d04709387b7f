#include "tests/gen/sensitive.h"

#include <algorithm>
#include <array>

namespace exfiltap::gen {
namespace {

// Numbers printed in payment processors' documentation and well-known example SSNs.
// Random draws almost never hit them; the check makes "never" certain.
constexpr std::array<std::string_view, 30> kPublished = {"4111111111111111", "4242424242424242",
        "4012888888881881", "4222222222222", "4000056655665556", "4000000000000002",
        "4917610000000000", "4462030000000000", "4484070000000000", "4988438843884305",
        "5555555555554444", "5105105105105100", "5200828282828210", "5454545454545454",
        "5431111111111111", "2223003122003222", "378282246310005", "371449635398431",
        "378734493671000", "341111111111111", "6011111111111117", "6011000990139424",
        "6011000000000004", "6011981111111113", "3566002020360505", "30569309025904",
        "38520000023237", "078051120", "219099999", "123456789"};

// Repeated-digit filler: a run of five equal digits, an ascending or descending run of
// six, or fewer than four distinct digits.
bool looks_like_filler(const std::string& d) {
    size_t run = 1;
    size_t up = 1;
    size_t down = 1;
    for (size_t i = 1; i < d.size(); ++i) {
        run = d[i] == d[i - 1] ? run + 1 : 1;
        up = d[i] == d[i - 1] + 1 ? up + 1 : 1;
        down = d[i] + 1 == d[i - 1] ? down + 1 : 1;
        if (run >= 5 || up >= 6 || down >= 6) {
            return true;
        }
    }
    std::array<bool, 10> seen{};
    for (const char c : d) {
        seen[static_cast<size_t>(c - '0')] = true;
    }
    return std::count(seen.begin(), seen.end(), true) < 4;
}

char luhn_check_digit(std::string_view body) {
    // Digits are doubled from the rightmost of body, since the check digit follows it.
    unsigned sum = 0;
    bool twice = true;
    for (auto it = body.rbegin(); it != body.rend(); ++it) {
        unsigned v = static_cast<unsigned>(*it - '0');
        if (twice) {
            v = v * 2 > 9 ? v * 2 - 9 : v * 2;
        }
        sum += v;
        twice = !twice;
    }
    return static_cast<char>('0' + (10 - sum % 10) % 10);
}

}  // namespace

bool luhn_valid(std::string_view digits) {
    if (digits.size() < 2) {
        return false;
    }
    return luhn_check_digit(digits.substr(0, digits.size() - 1)) == digits.back();
}

std::string format_card(const std::string& digits, Separator sep) {
    if (sep == Separator::kNone) {
        return digits;
    }
    const char c = sep == Separator::kSpace ? ' ' : '-';
    std::string out;
    const bool amex = digits.size() == 15;
    for (size_t i = 0; i < digits.size(); ++i) {
        const bool boundary = amex ? (i == 4 || i == 10) : (i > 0 && i % 4 == 0);
        if (boundary) {
            out += c;
        }
        out += digits[i];
    }
    return out;
}

std::string format_ssn(const std::string& digits) {
    return digits.substr(0, 3) + "-" + digits.substr(3, 2) + "-" + digits.substr(5, 4);
}

bool ValueSource::usable(const std::string& digits) {
    if (looks_like_filler(digits) || used_.count(digits) != 0) {
        return false;
    }
    if (std::find(kPublished.begin(), kPublished.end(), digits) != kPublished.end()) {
        return false;
    }
    used_.insert(digits);
    return true;
}

std::string ValueSource::card(CardBrand brand) {
    for (;;) {
        std::string d;
        size_t len = 16;
        switch (brand) {
        case CardBrand::kVisa:
            d = "4";
            break;
        case CardBrand::kMastercard:
            d = std::string(1, '5') + static_cast<char>('1' + rng_.below(5));
            break;
        case CardBrand::kAmex:
            d = rng_.chance(0.5) ? "34" : "37";
            len = 15;
            break;
        case CardBrand::kDiscover:
            d = "6011";
            break;
        }
        while (d.size() + 1 < len) {
            d += static_cast<char>('0' + rng_.below(10));
        }
        d += luhn_check_digit(d);
        if (usable(d)) {
            return d;
        }
    }
}

std::string ValueSource::ssn() {
    for (;;) {
        uint64_t area = rng_.range(1, 899);
        if (area == 666) {
            continue;
        }
        const uint64_t group = rng_.range(1, 99);
        const uint64_t serial = rng_.range(1, 9999);
        std::string d = std::to_string(1000 + area).substr(1)
                + std::to_string(100 + group).substr(1) + std::to_string(10000 + serial).substr(1);
        if (usable(d)) {
            return d;
        }
    }
}

}  // namespace exfiltap::gen
