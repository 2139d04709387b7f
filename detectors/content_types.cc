#include "detectors/content_types.h"

#include <algorithm>
#include <utility>

#include "detectors/edm_index.h"

namespace exfiltap::detectors {

namespace {

// Index order follows the enum values so that name lookups are a plain array read.
constexpr std::array<std::string_view, kContentClassCount> kClassNames = {
        "payment_card",
        "us_ssn",
        "iban",
        "private_key",
        "cloud_token",
        "vcs_token",
        "jwt",
        "password_assignment",
        "classification_marker",
        "custom",
        "edm",
        "source_code",
        "document",
};

constexpr std::array<Severity, kContentClassCount> kDefaultSeverities = {
        Severity::High,      // payment_card
        Severity::High,      // us_ssn
        Severity::High,      // iban
        Severity::Critical,  // private_key
        Severity::High,      // cloud_token
        Severity::High,      // vcs_token
        Severity::Medium,    // jwt
        Severity::Medium,    // password_assignment
        Severity::Medium,    // classification_marker
        Severity::Medium,    // custom
        Severity::High,      // edm
        Severity::Medium,    // source_code
        Severity::Low,       // document
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

Severity default_severity(ContentClass cls) noexcept {
    const auto index = static_cast<size_t>(cls);
    return index < kDefaultSeverities.size() ? kDefaultSeverities[index] : Severity::High;
}

std::array<ClassConfig, kContentClassCount> default_class_configs() {
    std::array<ClassConfig, kContentClassCount> classes{};
    for (size_t i = 0; i < classes.size(); ++i) {
        classes[i].severity = kDefaultSeverities[i];
    }
    return classes;
}

Severity ContentConfig::severity_of(ContentClass cls, uint16_t rule) const noexcept {
    if (cls == ContentClass::Custom && rule >= 1 && rule <= custom.size()
            && custom[rule - 1].severity.has_value()) {
        return *custom[rule - 1].severity;
    }
    if (cls == ContentClass::Edm && rule >= 1 && rule <= edm_tables.size()
            && edm_tables[rule - 1].severity.has_value()) {
        return *edm_tables[rule - 1].severity;
    }
    const auto index = static_cast<size_t>(cls);
    return index < classes.size() ? classes[index].severity : Severity::High;
}

uint32_t ContentConfig::threshold_of(ContentClass cls, uint16_t rule) const noexcept {
    if (cls == ContentClass::Custom && rule >= 1 && rule <= custom.size()
            && custom[rule - 1].threshold.has_value()) {
        return *custom[rule - 1].threshold;
    }
    if (cls == ContentClass::Edm && rule >= 1 && rule <= edm_tables.size()
            && edm_tables[rule - 1].threshold.has_value()) {
        return *edm_tables[rule - 1].threshold;
    }
    const auto index = static_cast<size_t>(cls);
    return index < classes.size() ? classes[index].threshold : 1;
}

std::string_view ContentConfig::rule_name(uint16_t rule) const noexcept {
    if (rule == 0 || rule > custom.size()) {
        return {};
    }
    return custom[rule - 1].name;
}

std::string_view ContentConfig::edm_table_name(uint16_t rule) const noexcept {
    if (rule == 0 || rule > edm_tables.size() || edm_tables[rule - 1].index == nullptr) {
        return {};
    }
    return edm_tables[rule - 1].index->schema().table;
}

bool ContentConfig::edm_enabled() const noexcept {
    return !edm_tables.empty() && classes[static_cast<size_t>(ContentClass::Edm)].enabled
            && std::all_of(edm_tables.begin(), edm_tables.end(),
                    [](const EdmTableRules& t) { return t.index != nullptr; });
}

}  // namespace exfiltap::detectors
