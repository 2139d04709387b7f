// Exact data match (EDM), the shared vocabulary of the index builder and the runtime
// matcher: column types, how a value is normalised and cut into words, and how a value is
// hashed. Both sides use these functions, so a value in the table and the same value on the
// wire give the same hash by construction.
//
// Words. A word is a run of ASCII letters and digits and of bytes >= 0x80 (UTF-8 text is
// kept, not folded beyond ASCII case). The joiners '.', '-', '_', '@', '\'' and '/' stay
// inside a word when a word byte follows them ("john.doe@example.com", "4001-2345",
// "o'brien" are one word each); a joiner at a word's end is dropped ("Street." is
// "street"). Only a single joiner between two word bytes joins: "a--b" and "a-.b" are the
// words "a" and "b" (one byte of look-ahead is all a streaming tokeniser needs), and a word
// never starts with a joiner ("'twas" is "twas"). Every other byte separates words. A word
// longer than kMaxWordBytes is not a word: it breaks the sequence and is never hashed.
// A no-break space (U+00A0 in UTF-8, C2 A0) separates like a space. At runtime only, a URL
// escape %XX (two hex digits) stands for its byte and a JSON escape \uXXXX for its character
// in UTF-8, so form and query data ("name=Mary+O%27Brien&email=mary%40example.com") and
// ASCII-only JSON ("J\u00f6rg") read as the words they encode.
//
// Text normalisation (types email, name, address, text): the value's words, ASCII letters
// in lower case, joined by one space. "  Mary  O'Brien, " -> "mary o'brien".
// Number normalisation (type number): the digits of the value only. "4001-2345 67" ->
// "4001234567". A value whose words hold anything but digits and joiners is not a number.
//
// Hashes (all under the table's SipKey):
// - word hash: w = siphash24(key, 'T' + word_normalised)
// - text value of words w1..wn: h = w1, then h = edm_combine(h, wi) for i = 2..n
// - number value: siphash24(key, 'N' + digits)
// A value of k words can therefore be looked up at runtime from the hashes of its words,
// without hashing the joined text again.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "detectors/siphash.h"

namespace exfiltap::detectors {

enum class EdmColumnType : uint8_t {
    Number = 0,
    Email = 1,
    Name = 2,
    Address = 3,
    Text = 4,
};
/// "number", "email", "name", "address", "text".
std::string_view edm_column_type_name(EdmColumnType type) noexcept;
bool edm_column_type_from_name(std::string_view name, EdmColumnType& out) noexcept;

/// Longest word (bytes) the tokeniser keeps.
inline constexpr size_t kEdmMaxWordBytes = 64;
/// Most words of one stored value (longer values are skipped when indexing, counted).
inline constexpr size_t kEdmMaxValueWords = 8;
/// Most digits of one number value.
inline constexpr size_t kEdmMaxNumberDigits = 32;

/// Shortest value that is protected: values shorter than this (normalised) are skipped by
/// the index builder unless forced; they would match everywhere. Numbers: 6 digits;
/// text types: 4 characters.
inline constexpr size_t kEdmMinNumberDigits = 6;
inline constexpr size_t kEdmMinTextChars = 4;

/// Byte classes of the tokeniser.
constexpr bool edm_is_word_byte(uint8_t c) noexcept {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c >= 0x80;
}
/// Not '+': an HTML form encodes a space as '+', so "Mary+O%27Brien" must read as two words
/// ("user+tag@example.com" is two words on both sides too).
constexpr bool edm_is_joiner(uint8_t c) noexcept {
    return c == '.' || c == '-' || c == '_' || c == '@' || c == '\'' || c == '/';
}

/// Order-dependent combination of word hashes into the hash of a word sequence.
inline uint64_t edm_combine(uint64_t seq, uint64_t word) noexcept {
    uint64_t x = (seq ^ (word + 0x9e3779b97f4a7c15ULL + (seq << 6) + (seq >> 2)));
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ULL;
    x ^= x >> 33;
    return x;
}

/// Hash of one normalised word (lower-case ASCII already applied).
uint64_t edm_word_hash(const SipKey& key, std::string_view word) noexcept;
/// Hash of a digits-only string.
uint64_t edm_number_hash(const SipKey& key, std::string_view digits) noexcept;

/// A value normalised for its column type, as the index builder stores it.
struct EdmNormalised {
    std::string text;  // text: words joined by one space; number: the digits
    size_t words = 0;  // words of the value (tokeniser's count), 1 for numbers
};
/// Normalises `value` for `type`; nullopt when nothing is left (no word, no digit, a word
/// longer than kEdmMaxWordBytes, more than kEdmMaxValueWords words, more than
/// kEdmMaxNumberDigits digits, or a number with non-digit word bytes).
std::optional<EdmNormalised> edm_normalise(EdmColumnType type, std::string_view value);
/// The same into `out`, reusing its buffer (no allocation once it has grown): the index
/// builder's per-value path. False (out unspecified) where edm_normalise gives nullopt.
bool edm_normalise_into(EdmColumnType type, std::string_view value, EdmNormalised& out);

/// Whether a normalised value is long enough to protect (kEdmMin*): numbers by digits, text
/// by characters of the normalised text (spaces included; a UTF-8 sequence is one).
bool edm_long_enough(EdmColumnType type, const EdmNormalised& value) noexcept;

/// The hash of a normalised text value (words joined by single spaces; a space is never a
/// word byte): its word hashes folded with edm_combine. Calls on_word(hash) for each word.
template <typename OnWord>
uint64_t edm_text_hash(const SipKey& key, std::string_view text, OnWord&& on_word) {
    uint64_t h = 0;
    bool first = true;
    size_t begin = 0;
    while (begin <= text.size()) {
        size_t end = text.find(' ', begin);
        if (end == std::string_view::npos) {
            end = text.size();
        }
        const uint64_t w = edm_word_hash(key, text.substr(begin, end - begin));
        on_word(w);
        h = first ? w : edm_combine(h, w);
        first = false;
        begin = end + 1;
    }
    return h;
}

/// The lookup hash of a normalised value: number hash for Number, combined word hashes for
/// the text types.
uint64_t edm_value_hash(const SipKey& key, EdmColumnType type, const EdmNormalised& value);

}  // namespace exfiltap::detectors
