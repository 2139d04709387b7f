// Content classes, findings and the content configuration shared by the detector, the
// dataplane (which carries findings to the control thread) and control (config, alerts).
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

namespace exfiltap::detectors {

/// The content classes. The numeric values index per-class arrays (config, counters) and
/// give the signature ids (2100001 + value), so new classes are appended, never inserted.
enum class ContentClass : uint8_t {
    PaymentCard = 0,
    UsSsn = 1,
    Iban = 2,
    PrivateKey = 3,
    CloudToken = 4,
    VcsToken = 5,
    Jwt = 6,
    PasswordAssignment = 7,
    ClassificationMarker = 8,
    Custom = 9,  // the operator's rules of ContentConfig::custom; Finding::rule names the rule
    Edm = 10,    // exact data match: records of ContentConfig::edm_tables; rule names the table
    /// Source code leaving: a density of code tokens in a flow direction, made High by the
    /// organisation's licence header or a project code name (ContentConfig::source_code).
    SourceCode = 11,
    /// An office or PDF document leaving (its format markers), made High by a classification
    /// label in the same direction (a marker of classification_marker, a sensitivity label).
    Document = 12,
};
inline constexpr size_t kContentClassCount = 13;

/// Stable names used in config keys, alerts and metrics: "payment_card", "us_ssn", "iban",
/// "private_key", "cloud_token", "vcs_token", "jwt", "password_assignment",
/// "classification_marker", "custom", "edm", "source_code", "document".
std::string_view content_class_name(ContentClass cls) noexcept;
/// Inverse of content_class_name(); false when the name is unknown.
bool content_class_from_name(std::string_view name, ContentClass& out) noexcept;

enum class Severity : uint8_t {
    Low = 1,
    Medium = 2,
    High = 3,
    Critical = 4,
};
std::string_view severity_name(Severity severity) noexcept;
bool severity_from_name(std::string_view name, Severity& out) noexcept;

/// Built-in severity of a class: private_key critical; payment_card, us_ssn, iban,
/// cloud_token, vcs_token, edm high; jwt, password_assignment, classification_marker and
/// custom and source_code medium; document low.
Severity default_severity(ContentClass cls) noexcept;

enum class Confidence : uint8_t {
    Low = 0,   // validated value, no class keyword nearby
    High = 1,  // validated value with a class keyword within the keyword window (or custom)
};
std::string_view confidence_name(Confidence confidence) noexcept;

struct ClassConfig {
    bool enabled = true;
    /// Distinct values per flow direction before the class raises an alert.
    uint32_t threshold = 1;
    Severity severity = Severity::High;
    /// Case-insensitive literal words; a match within keyword_window_bytes before or after a
    /// value makes its confidence High. Empty: the built-in list of the class. Not used by
    /// the custom class (its rules have no proximity keywords).
    std::vector<std::string> keywords;
};

/// Every class enabled, threshold 1, its default_severity(), built-in keywords.
std::array<ClassConfig, kContentClassCount> default_class_configs();

/// One operator rule (config `content.custom`): either literal keywords or one regex.
struct CustomRule {
    /// Shown in the signature text; unique among the rules.
    std::string name;
    /// Case-insensitive literals; a word-character end must not touch another word
    /// character. The value of a finding is the keyword as configured.
    std::vector<std::string> keywords;
    /// A Hyperscan regex (used when `keywords` is empty). The value of a finding is the
    /// matched text (leftmost start), its last kMaxValueLen characters when longer.
    std::string regex;
    /// Unset: the custom class's severity / threshold (classes.custom).
    std::optional<Severity> severity;
    std::optional<uint32_t> threshold;
    bool enabled = true;
    /// Where the rule was configured ("FILE:LINE"), for error messages; may be empty.
    std::string source;
};

/// Most custom rules per configuration (each stream counts distinct values per rule).
inline constexpr size_t kMaxCustomRules = 64;

class EdmIndex;

/// One exact-data-match table (config `edm.tables`): a loaded index and its matching rules.
struct EdmTableRules {
    /// The loaded index (shared, immutable); its schema names the table and columns.
    std::shared_ptr<const EdmIndex> index;
    /// The .edm file it was loaded from (messages, reload comparison).
    std::string path;
    /// Other values of a record (besides its primary value) that must occur near the
    /// primary value for the record to count.
    uint32_t min_matches = 2;
    /// Bytes of one flow direction within which the primary and the other values must lie
    /// (before or after the primary).
    uint32_t window_bytes = 1024;
    /// Unset: the edm class's severity / threshold (content.classes.edm). The threshold
    /// counts records per flow direction.
    std::optional<Severity> severity;
    std::optional<uint32_t> threshold;
    /// Where the table was configured ("FILE:LINE"), for error messages; may be empty.
    std::string source;
};

/// Most exact-data-match tables per configuration.
inline constexpr size_t kMaxEdmTables = 8;

/// The source_code class (config `content.source_code`).
struct SourceCodeConfig {
    /// Names of the organisation as its licence headers write them ("Example Corp"): a
    /// line with "Copyright" or "(c)" that names one makes the direction's finding High.
    std::vector<std::string> organisations;
    /// Internal project code names, matched as written (case included) as whole words;
    /// one makes the direction's finding High.
    std::vector<std::string> project_names;
    /// Code tokens (statement ends, braces after a parenthesis, include/import lines,
    /// function and class heads, comments) a direction must show before it counts as code...
    uint32_t min_tokens = 40;
    /// ...at this density at least, over the bytes from its first token on.
    uint32_t min_tokens_per_kib = 6;
};

struct ContentConfig {
    /// Indexed by ContentClass; each starts with its class's default_severity().
    std::array<ClassConfig, kContentClassCount> classes = default_class_configs();
    /// Reject published test numbers, repeated-digit values and placeholder secrets.
    bool reject_test_numbers = true;
    uint32_t keyword_window_bytes = 300;
    /// The organisation's own classification markers, matched exactly as written (case
    /// included) as whole words, next to the built-in ones.
    std::vector<std::string> classification_markers;
    std::vector<CustomRule> custom;
    /// Exact data match tables (at most kMaxEdmTables, all built with the state
    /// directory's key); matched only while the edm class is enabled.
    std::vector<EdmTableRules> edm_tables;
    SourceCodeConfig source_code;

    /// Severity and threshold that apply to a finding: the custom rule's or EDM table's own
    /// when it sets them (rule is 1-based, 0 for built-ins), else the class's.
    Severity severity_of(ContentClass cls, uint16_t rule) const noexcept;
    uint32_t threshold_of(ContentClass cls, uint16_t rule) const noexcept;
    /// Name of custom rule `rule` (1-based); "" for 0 or an unknown index.
    std::string_view rule_name(uint16_t rule) const noexcept;
    /// Name of EDM table `rule` (1-based); "" for 0 or an unknown index.
    std::string_view edm_table_name(uint16_t rule) const noexcept;
    /// Whether EDM matching runs: tables configured and the edm class enabled.
    bool edm_enabled() const noexcept;
};

/// Longest value a finding carries. A value longer than this (a JWT, a long custom match)
/// carries its last kMaxValueLen characters; the sample and its HMAC cover those.
inline constexpr size_t kMaxValueLen = 64;

/// One validated value found in one flow direction. `value` holds the normalised value
/// (digits of a card, compact IBAN, token, password, marker, ...) only for the trip to the
/// control thread, which masks and HMACs it and never writes it. Trivially copyable: it
/// crosses an rte_ring inside a WorkerEvent.
struct Finding {
    ContentClass cls = ContentClass::PaymentCard;
    Confidence confidence = Confidence::Low;
    /// Custom rule index + 1 for ContentClass::Custom, EDM table index + 1 for
    /// ContentClass::Edm; 0 for built-in classes.
    uint16_t rule = 0;
    /// 0 for Edm: an EDM finding carries no value at all.
    uint8_t value_len = 0;
    /// Distinct values of this class (custom: of this rule; edm: records of this table)
    /// seen so far in this flow direction (1 for the first).
    uint32_t distinct_count = 0;
    /// Edm: bit i set when schema column i of the table matched in the records counted so
    /// far (the primary column always). 0 for other classes.
    uint32_t columns = 0;
    /// Edm: the scanned stream the records were counted in: 0 the flow direction's own
    /// bytes, else the number the worker gave a decoded object (HTTP body, MIME part), so
    /// the control side can total a direction's records over its streams.
    uint32_t origin = 0;
    /// Offset of the byte after the value in the direction's stream. Findings may be
    /// reported after later bytes were scanned (keyword proximity after the value).
    uint64_t end_offset = 0;
    std::array<char, kMaxValueLen> value{};

    std::string_view value_view() const { return {value.data(), value_len}; }
};
static_assert(std::is_trivially_copyable_v<Finding>);
static_assert(sizeof(Finding) <= 96);

}  // namespace exfiltap::detectors
