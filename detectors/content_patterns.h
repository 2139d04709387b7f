// The pattern tables of the content classes and how a configuration becomes the expression
// lists of the two Hyperscan databases. Internal to detectors/ (content_scanner.cc and its
// tests); runs on the control thread, allocates.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "detectors/content_types.h"

namespace exfiltap::detectors {

/// What a Hyperscan match id means.
enum class PatternKind : uint8_t {
    Keyword,      // a class keyword: raises the confidence of values near it
    Value,        // a built-in value pattern, read by the class's validator
    JwtHeader,    // a JWT header followed by ".eyJ": validated and remembered
    Literal,      // a configured classification marker or custom keyword
    CustomRegex,  // a custom regex (the start-of-match database)
    CodeToken,    // source_code: one code token, counted per direction
    DocFormat,    // document: a format marker; variant is the DocFormat
    DocLabel,     // document: a sensitivity label (raises the confidence like a keyword)
};

/// Document formats the document class recognises (PatternInfo::variant of DocFormat).
enum class DocFormat : uint8_t {
    Pdf = 0,
    Ole2 = 1,  // legacy .doc/.xls/.ppt/.msg (compound file)
    Docx = 2,
    Xlsx = 3,
    Pptx = 4,
    Odf = 5,  // OpenDocument text, spreadsheet or presentation
    Rtf = 6,
};
inline constexpr size_t kDocFormatCount = 7;
/// "pdf", "ole2", "docx", "xlsx", "pptx", "odf", "rtf".
std::string_view doc_format_name(DocFormat format) noexcept;

struct PatternInfo {
    ContentClass cls = ContentClass::PaymentCard;
    PatternKind kind = PatternKind::Value;
    /// The match ends one byte after the value (a terminator character), not at its end.
    bool terminated = false;
    /// Value patterns of cloud_token / vcs_token: the TokenKind.
    uint8_t variant = 0;
    /// Custom rule index + 1; 0 for built-in classes.
    uint16_t rule = 0;
    /// Literal: index into PatternSet::literals.
    uint16_t literal = 0;
};

struct PatternSource {
    std::string expression;
    unsigned flags = 0;
    PatternInfo info;
};

/// Both databases' expressions; the index in each vector is the Hyperscan match id.
struct PatternSet {
    std::vector<PatternSource> main;  // streaming, no start of match
    std::vector<PatternSource> som;   // custom regexes, leftmost start of match
    /// Texts of Literal patterns (markers as configured, custom keywords as configured).
    std::vector<std::string> literals;
    /// For each class, whether findings wait for a keyword after them (the class has
    /// keywords).
    std::array<bool, kContentClassCount> has_keywords{};
};

/// Collects the patterns of every enabled class and rule of `config`. Errors name the class
/// or rule and say what to change.
Result<PatternSet> collect_patterns(const ContentConfig& config);

}  // namespace exfiltap::detectors
