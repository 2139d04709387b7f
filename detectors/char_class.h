// Character tests shared by the validators and the scanner (ASCII only, locale-free).
#pragma once

namespace exfiltap::detectors {

constexpr bool is_digit(char c) noexcept {
    return c >= '0' && c <= '9';
}

/// Joins the digit groups of a number ("4857 0839", "4857-0839"); '+' is a space in
/// form-encoded bodies (application/x-www-form-urlencoded).
constexpr bool is_number_separator(char c) noexcept {
    return c == ' ' || c == '-' || c == '+';
}

constexpr bool is_upper(char c) noexcept {
    return c >= 'A' && c <= 'Z';
}

constexpr bool is_lower(char c) noexcept {
    return c >= 'a' && c <= 'z';
}

constexpr bool is_alpha(char c) noexcept {
    return is_upper(c) || is_lower(c);
}

constexpr bool is_alnum(char c) noexcept {
    return is_digit(c) || is_alpha(c);
}

/// Characters that make a value part of a longer token (identifier, hex, number).
constexpr bool is_word(char c) noexcept {
    return is_alnum(c) || c == '_';
}

constexpr char to_lower(char c) noexcept {
    return is_upper(c) ? static_cast<char>(c - 'A' + 'a') : c;
}

}  // namespace exfiltap::detectors
