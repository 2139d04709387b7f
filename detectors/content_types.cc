#include "detectors/content_types.h"

#include <utility>

namespace exfiltap::detectors {

namespace {

// Index order follows the enum values so that name lookups are a plain array read.
constexpr std::array<std::string_view, kContentClassCount> kClassNames = {
        "payment_card",
        "us_ssn",
};

constexpr std::array<std::pair<Severity, std::string_view>, 4> kSeverityNames = {{
        {Severity::Low, "low"},
        {Severity::Medium, "medium"},
        {Severity::High, "high"},
        {Severity::Critical, "critical"},
}};

}  // namespace

std::string_view content_class_name(ContentClass cls) noexcept {
    const auto index = static_cast<size_t>(cls);
    return index < kClassNames.size() ? kClassNames[index] : std::string_view("unknown");
}

bool content_class_from_name(std::string_view name, ContentClass& out) noexcept {
    for (size_t i = 0; i < kClassNames.size(); ++i) {
        if (kClassNames[i] == name) {
            out = static_cast<ContentClass>(i);
            return true;
        }
    }
    return false;
}

std::string_view severity_name(Severity severity) noexcept {
    for (const auto& [value, name] : kSeverityNames) {
        if (value == severity) {
            return name;
        }
    }
    return "unknown";
}

bool severity_from_name(std::string_view name, Severity& out) noexcept {
    for (const auto& [value, text] : kSeverityNames) {
        if (text == name) {
            out = value;
            return true;
        }
    }
    return false;
}

std::string_view confidence_name(Confidence confidence) noexcept {
    return confidence == Confidence::High ? "high" : "low";
}

}  // namespace exfiltap::detectors
