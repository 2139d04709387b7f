// Content classes, findings and the content configuration shared by the detector, the
// dataplane (which carries findings to the control thread) and control (config, alerts).
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace exfiltap::detectors {

enum class ContentClass : uint8_t {
    PaymentCard = 0,
    UsSsn = 1,
};
inline constexpr size_t kContentClassCount = 2;

/// Stable names used in config keys, alerts and metrics: "payment_card", "us_ssn".
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

enum class Confidence : uint8_t {
    Low = 0,   // validated value, no class keyword nearby
    High = 1,  // validated value with a class keyword within the keyword window
};
std::string_view confidence_name(Confidence confidence) noexcept;

struct ClassConfig {
    bool enabled = true;
    /// Distinct values per flow direction before the class raises an alert.
    uint32_t threshold = 1;
    Severity severity = Severity::High;
    /// Case-insensitive literal words; a match within keyword_window_bytes before a value
    /// makes its confidence High. Empty: the built-in list of the class.
    std::vector<std::string> keywords;
};

struct ContentConfig {
    std::array<ClassConfig, kContentClassCount> classes{};
    /// Reject published test numbers and repeated-digit values.
    bool reject_test_numbers = true;
    uint32_t keyword_window_bytes = 300;
};

/// Longest normalised value a finding carries (19 card digits; SSN 9 digits).
inline constexpr size_t kMaxValueLen = 24;

/// One validated value found in one flow direction. `value` holds the normalised digits
/// only for the trip to the control thread, which masks and HMACs it and never writes it.
struct Finding {
    ContentClass cls = ContentClass::PaymentCard;
    Confidence confidence = Confidence::Low;
    uint8_t value_len = 0;
    /// Distinct values of this class seen so far in this flow direction (1 for the first).
    uint32_t distinct_count = 0;
    /// Offset of the byte after the value in the direction's stream.
    uint64_t end_offset = 0;
    std::array<char, kMaxValueLen> value{};

    std::string_view value_view() const { return {value.data(), value_len}; }
};

}  // namespace exfiltap::detectors
