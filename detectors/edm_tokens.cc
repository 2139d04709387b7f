#include "detectors/edm_tokens.h"

#include <span>

namespace exfiltap::detectors {
namespace {

constexpr uint8_t kWordTag = 'T';
constexpr uint8_t kNumberTag = 'N';

inline bool is_digit(uint8_t c) noexcept {
    return c >= '0' && c <= '9';
}

inline char lower_ascii(uint8_t c) noexcept {
    return static_cast<char>((c >= 'A' && c <= 'Z') ? c + ('a' - 'A') : c);
}

inline std::span<const uint8_t> bytes_of(std::string_view text) noexcept {
    return {reinterpret_cast<const uint8_t*>(text.data()), text.size()};
}

/// Calls `on_word(begin, end)` for each word of `value` (positions into it), in order;
/// stops early when it returns false. Returns false when it stopped early.
template <typename OnWord>
bool for_each_word(std::string_view value, OnWord&& on_word) {
    const auto* p = reinterpret_cast<const uint8_t*>(value.data());
    const size_t n = value.size();
    // A word byte, but not either byte of a no-break space (U+00A0, C2 A0): that separates.
    const auto word_byte = [p, n](size_t i) {
        const bool nbsp = (p[i] == 0xc2 && i + 1 < n && p[i + 1] == 0xa0)
                || (p[i] == 0xa0 && i > 0 && p[i - 1] == 0xc2);
        return edm_is_word_byte(p[i]) && !nbsp;
    };
    size_t i = 0;
    while (i < n) {
        if (!word_byte(i)) {
            ++i;
            continue;
        }
        const size_t begin = i;
        ++i;
        while (i < n) {
            if (word_byte(i)) {
                ++i;
            } else if (edm_is_joiner(p[i]) && i + 1 < n && word_byte(i + 1)) {
                i += 2;
            } else {
                break;
            }
        }
        if (!on_word(begin, i)) {
            return false;
        }
    }
    return true;
}

}  // namespace

std::string_view edm_column_type_name(EdmColumnType type) noexcept {
    switch (type) {
    case EdmColumnType::Number:
        return "number";
    case EdmColumnType::Email:
        return "email";
    case EdmColumnType::Name:
        return "name";
    case EdmColumnType::Address:
        return "address";
    case EdmColumnType::Text:
        return "text";
    }
    return "unknown";
}

bool edm_column_type_from_name(std::string_view name, EdmColumnType& out) noexcept {
    for (const auto type : {EdmColumnType::Number, EdmColumnType::Email, EdmColumnType::Name,
                 EdmColumnType::Address, EdmColumnType::Text}) {
        if (edm_column_type_name(type) == name) {
            out = type;
            return true;
        }
    }
    return false;
}

uint64_t edm_word_hash(const SipKey& key, std::string_view word) noexcept {
    return siphash24_tagged(key, kWordTag, bytes_of(word));
}

uint64_t edm_number_hash(const SipKey& key, std::string_view digits) noexcept {
    return siphash24_tagged(key, kNumberTag, bytes_of(digits));
}

bool edm_normalise_into(EdmColumnType type, std::string_view value, EdmNormalised& out) {
    out.text.clear();
    out.words = 0;
    size_t words = 0;
    bool ok = true;
    if (type == EdmColumnType::Number) {
        for_each_word(value, [&](size_t begin, size_t end) {
            if (end - begin > kEdmMaxWordBytes || ++words > kEdmMaxValueWords) {
                ok = false;
                return false;
            }
            for (size_t i = begin; i < end; ++i) {
                const auto c = static_cast<uint8_t>(value[i]);
                if (is_digit(c)) {
                    if (out.text.size() >= kEdmMaxNumberDigits) {
                        ok = false;
                        return false;
                    }
                    out.text.push_back(static_cast<char>(c));
                } else if (!edm_is_joiner(c)) {
                    ok = false;
                    return false;
                }
            }
            return true;
        });
        if (!ok || out.text.empty()) {
            return false;
        }
        out.words = 1;
        return true;
    }
    for_each_word(value, [&](size_t begin, size_t end) {
        if (end - begin > kEdmMaxWordBytes || ++words > kEdmMaxValueWords) {
            ok = false;
            return false;
        }
        if (!out.text.empty()) {
            out.text.push_back(' ');
        }
        for (size_t i = begin; i < end; ++i) {
            out.text.push_back(lower_ascii(static_cast<uint8_t>(value[i])));
        }
        return true;
    });
    if (!ok || words == 0) {
        return false;
    }
    out.words = words;
    return true;
}

std::optional<EdmNormalised> edm_normalise(EdmColumnType type, std::string_view value) {
    EdmNormalised out;
    if (!edm_normalise_into(type, value, out)) {
        return std::nullopt;
    }
    return out;
}

bool edm_long_enough(EdmColumnType type, const EdmNormalised& value) noexcept {
    if (type == EdmColumnType::Number) {
        return value.text.size() >= kEdmMinNumberDigits;
    }
    size_t chars = 0;
    for (const char c : value.text) {
        // UTF-8 continuation bytes (10xxxxxx) belong to the character before them.
        if ((static_cast<uint8_t>(c) & 0xC0) != 0x80) {
            ++chars;
        }
    }
    return chars >= kEdmMinTextChars;
}

uint64_t edm_value_hash(const SipKey& key, EdmColumnType type, const EdmNormalised& value) {
    if (type == EdmColumnType::Number) {
        return edm_number_hash(key, value.text);
    }
    return edm_text_hash(key, value.text, [](uint64_t) {});
}

}  // namespace exfiltap::detectors
