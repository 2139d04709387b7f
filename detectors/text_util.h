// Text helpers shared by the line-based protocol parsers (HTTP, SMTP/MIME, FTP, POP3, IMAP):
// ASCII-only, locale-free, no allocation. Any thread.
#pragma once

#include <algorithm>
#include <string_view>

#include "detectors/char_class.h"

namespace exfiltap::detectors {

/// Case-insensitive (ASCII) equality.
constexpr bool iequals(std::string_view a, std::string_view b) noexcept {
    if (a.size() != b.size()) {
        return false;
    }
    for (size_t i = 0; i < a.size(); ++i) {
        if (to_lower(a[i]) != to_lower(b[i])) {
            return false;
        }
    }
    return true;
}

constexpr bool istarts_with(std::string_view text, std::string_view prefix) noexcept {
    return text.size() >= prefix.size() && iequals(text.substr(0, prefix.size()), prefix);
}

/// Spaces and tabs off both ends, and a trailing CR (a line read up to its LF).
constexpr std::string_view trim(std::string_view s) noexcept {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) {
        s.remove_prefix(1);
    }
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) {
        s.remove_suffix(1);
    }
    return s;
}

/// Splits off the first space-separated word of `s`; `s` keeps the rest, trimmed.
constexpr std::string_view next_word(std::string_view& s) noexcept {
    s = trim(s);
    const size_t end = std::min(s.find(' '), s.size());
    const std::string_view word = s.substr(0, end);
    s = trim(s.substr(end));
    return word;
}

/// Value of a hexadecimal digit (either case), -1 for anything else.
constexpr int hex_value(char c) noexcept {
    if (is_digit(c)) {
        return c - '0';
    }
    const char l = to_lower(c);
    return l >= 'a' && l <= 'f' ? l - 'a' + 10 : -1;
}

}  // namespace exfiltap::detectors
