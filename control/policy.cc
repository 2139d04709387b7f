#include "control/policy.h"

#include <algorithm>
#include <map>
#include <set>
#include <tuple>
#include <utility>

#include "detectors/behaviour.h"

namespace exfiltap::control {
namespace {

using namespace config_reader;  // NOLINT(google-build-using-namespace): the toolkit is this file's
                                // vocabulary

constexpr size_t kMaxNameLen = 64;
constexpr uint32_t kMaxTtlS = 10U * 366 * 24 * 3600;
constexpr uint32_t kMaxMultiplier = 1000;
constexpr uint32_t kMaxExactCapacity = 64U * 1024 * 1024;
constexpr uint32_t kMaxPrefixCapacity = 1024U * 1024;
constexpr uint32_t kMaxSnapshotChanges = 10U * 1000 * 1000;
constexpr uint32_t kMaxSnapshotIntervalS = 24U * 3600;
constexpr size_t kMaxSanctioned = 4096;
constexpr uint32_t kMaxIncidentScore = 1000000;
// The widest sanctioned prefixes accepted (the shipped list's widest is Apple's /8).
constexpr uint8_t kWidestSanctionedV4 = 8;
constexpr uint8_t kWidestSanctionedV6 = 16;

bool is_rule_name(std::string_view text) {
    return !text.empty() && text.size() <= kMaxNameLen
            && std::all_of(text.begin(), text.end(), [](char c) {
                   return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
                           || c == '_' || c == '-' || c == '.' || c == ' ';
               });
}

void read_prefix_len(Problems& problems, const Entry& entry, uint32_t max, uint8_t& out) {
    uint32_t value = out;
    if (read_u32(problems, entry, 1, max, value)) {
        out = static_cast<uint8_t>(value);
    }
}

void apply_catch_and_release(Problems& problems, const Entry& section, CatchAndRelease& out) {
    for (const auto& entry : entries_of(
                 problems, section.value, section.where, {"window_s", "multiplier", "max_ttl_s"})) {
        if (entry.name == "window_s") {
            read_u32(problems, entry, 0, kMaxTtlS, out.window_s);
        } else if (entry.name == "multiplier") {
            read_u32(problems, entry, 1, kMaxMultiplier, out.multiplier);
        } else {
            read_u32(problems, entry, 1, kMaxTtlS, out.max_ttl_s);
        }
    }
}

void apply_allowlist(Problems& problems, const Entry& entry, std::vector<Prefix>& out) {
    std::vector<Prefix> prefixes;
    std::set<std::tuple<uint8_t, uint8_t, std::array<uint8_t, 16>>> seen;
    bool ok = true;
    for (const auto& item : items_of(problems, entry)) {
        Prefix parsed;
        if (!read_prefix(problems, item, parsed)) {
            ok = false;
            continue;
        }
        // A set, not a scan of the list: an allowlist may hold tens of thousands of entries.
        if (!seen.emplace(parsed.ip_version, parsed.length, parsed.addr).second) {
            problems.add(item.where, parsed.to_string() + " is listed twice");
            ok = false;
            continue;
        }
        prefixes.push_back(parsed);
    }
    if (ok) {
        out = std::move(prefixes);
    }
}

void apply_block_table(Problems& problems, const Entry& section, ResponseConfig& out) {
    for (const auto& entry : entries_of(
                 problems, section.value, section.where, {"exact_capacity", "prefix_capacity"})) {
        if (entry.name == "exact_capacity") {
            read_u32(problems, entry, 1, kMaxExactCapacity, out.exact_capacity);
        } else {
            read_u32(problems, entry, 1, kMaxPrefixCapacity, out.prefix_capacity);
        }
    }
}

void apply_journal(Problems& problems, const Entry& section, ResponseConfig& out) {
    for (const auto& entry : entries_of(problems, section.value, section.where,
                 {"snapshot_every_changes", "snapshot_every_s"})) {
        if (entry.name == "snapshot_every_changes") {
            read_u32(problems, entry, 1, kMaxSnapshotChanges, out.snapshot_every_changes);
        } else {
            read_u32(problems, entry, 1, kMaxSnapshotIntervalS, out.snapshot_every_s);
        }
    }
}

bool is_behaviour_detector(std::string_view name) {
    for (size_t d = 0; d < detectors::kBehaviourDetectorCount; ++d) {
        if (detectors::behaviour_detector_name(static_cast<detectors::BehaviourDetector>(d))
                == name) {
            return true;
        }
    }
    return false;
}

bool known_detector(std::string_view name) {
    return name == kDetectorContent || name == kDetectorTcpOverlap || name == kDetectorIpFragment
            || name == kDetectorAny || name == kDetectorIncident || is_behaviour_detector(name);
}

std::string detector_list() {
    std::string list = std::string(kDetectorAny) + ", " + std::string(kDetectorContent) + ", "
            + std::string(kDetectorTcpOverlap) + ", " + std::string(kDetectorIpFragment) + ", "
            + std::string(kDetectorIncident);
    for (size_t d = 0; d < detectors::kBehaviourDetectorCount; ++d) {
        list += ", ";
        list += detectors::behaviour_detector_name(static_cast<detectors::BehaviourDetector>(d));
    }
    return list;
}

/// `detector` (an identifier) or `class` (a class or custom rule name) of a policy item.
bool read_rule_match(Problems& problems, const Entry& entry, PolicyRule& rule) {
    const bool detector = entry.name == "detector";
    std::string& out = detector ? rule.detector : rule.class_name;
    if (!read_string(problems, entry, out)) {
        return false;
    }
    if (detector && !known_detector(out)) {
        // A misspelt detector would make a policy that never matches, silently.
        problems.add(entry.where, "unknown detector '" + out + "'; known: " + detector_list());
        return false;
    }
    if (!detector && !is_rule_name(out)) {
        problems.add(entry.where, "'" + out + "': a content class or custom rule name");
        return false;
    }
    return true;
}

/// One key of a policy item; false when it was reported.
bool read_rule_key(Problems& problems, const Entry& entry, PolicyRule& rule) {
    if (entry.name == "name") {
        if (!read_string(problems, entry, rule.name)) {
            return false;
        }
        if (!is_rule_name(rule.name)) {
            problems.add(entry.where,
                    "'" + rule.name + "': use 1.." + std::to_string(kMaxNameLen)
                            + " letters, digits, spaces and _ - .");
            return false;
        }
        return true;
    }
    if (entry.name == "detector" || entry.name == "class") {
        return read_rule_match(problems, entry, rule);
    }
    if (entry.name == "min_severity") {
        const int index = read_choice(problems, entry, {"low", "medium", "high", "critical"});
        if (index < 0) {
            return false;
        }
        rule.min_severity = static_cast<detectors::Severity>(index + 1);
        return true;
    }
    if (entry.name == "action") {
        const int index = read_choice(
                problems, entry, {"alert", "drop-flow", "block-remote", "block-source"});
        if (index < 0) {
            return false;
        }
        rule.action = static_cast<PolicyAction>(index);
        return true;
    }
    if (entry.name == "incident_score") {
        uint32_t score = 0;
        if (!read_u32(problems, entry, 1, kMaxIncidentScore, score)) {
            return false;
        }
        rule.incident_score = score;
        return true;
    }
    if (entry.name == "ttl_s") {
        uint32_t ttl = 0;
        if (!read_u32(problems, entry, 0, kMaxTtlS, ttl)) {
            return false;
        }
        rule.ttl_s = ttl;
        return true;
    }
    bool& flag = entry.name == "reset"  ? rule.reset
            : entry.name == "drop_flow" ? rule.drop_flow
                                        : rule.shadow;
    return read_bool(problems, entry, flag);
}

/// An incident is no flow and has no class: its rule blocks addresses or only alerts.
bool check_incident_rule(Problems& problems, const Entry& item, const PolicyRule& rule) {
    const bool incident_detector = rule.detector == kDetectorIncident;
    if (!rule.incident_score) {
        if (incident_detector) {
            problems.add(item.where, "detector 'incident' needs incident_score: N");
            return false;
        }
        return true;
    }
    if (!incident_detector && rule.detector != kDetectorAny) {
        problems.add(item.where,
                "incident_score acts on incidents: leave detector out or say 'incident' (not '"
                        + rule.detector + "')");
        return false;
    }
    if (!rule.class_name.empty() || rule.min_severity) {
        problems.add(item.where, "incident_score cannot be combined with class or min_severity");
        return false;
    }
    if (rule.action == PolicyAction::DropFlow) {
        problems.add(item.where,
                "an incident is no flow: drop-flow cannot act on it; use block-remote (the "
                "outside peers its findings sent to) or block-source (the host)");
        return false;
    }
    return true;
}

bool read_rule(Problems& problems, const Entry& item, PolicyRule& rule) {
    if (!item.value.IsMap()) {
        problems.add(item.where,
                "expected a map with name, detector and action, got " + describe(item.value));
        return false;
    }
    const auto entries = entries_of(problems, item.value, item.where,
            {"name", "detector", "class", "min_severity", "action", "reset", "drop_flow", "ttl_s",
                    "shadow", "incident_score"});
    bool ok = entries.size() == item.value.size();  // unknown keys were reported
    bool has_action = false;
    const Entry* reset_entry = nullptr;
    for (const auto& entry : entries) {
        ok = read_rule_key(problems, entry, rule) && ok;
        has_action = has_action || entry.name == "action";
        if (entry.name == "reset") {
            reset_entry = &entry;
        }
    }
    if (rule.name.empty()) {
        problems.add(item.where, "a policy needs a name");
        ok = false;
    }
    if (!has_action) {
        problems.add(item.where,
                "a policy needs an action (alert, drop-flow, block-remote, "
                "block-source)");
        ok = false;
    }
    if (is_behaviour_detector(rule.detector)) {
        // The behaviour detectors decide on the control thread, after the packets went:
        // there is no flow left to drop, only addresses to block.
        if (rule.action == PolicyAction::DropFlow) {
            problems.add(item.where,
                    "detector '" + rule.detector
                            + "' is decided on the control thread: drop-flow cannot act on it; "
                              "use block-remote or block-source");
            ok = false;
        }
        if (!rule.class_name.empty() && rule.class_name != rule.detector) {
            problems.add(item.where,
                    "detector '" + rule.detector + "' has no content classes (class '"
                            + rule.class_name + "' never matches)");
            ok = false;
        }
    }
    ok = check_incident_rule(problems, item, rule) && ok;
    if (reset_entry != nullptr && rule.reset && rule.action == PolicyAction::Alert) {
        problems.add(reset_entry->where,
                "reset needs action drop-flow, block-remote or "
                "block-source");
        ok = false;
    }
    return ok;
}

void apply_policies(Problems& problems, const Entry& entry, std::vector<PolicyRule>& out) {
    std::vector<PolicyRule> rules;
    // Names of every item, valid or not, so a duplicate is reported even next to other errors.
    std::map<std::string, std::string> seen;  // name -> source
    bool ok = entry.value.IsNull() || entry.value.IsSequence();
    for (const auto& item : items_of(problems, entry)) {
        PolicyRule rule;
        rule.source = problems.location(item.where.line);
        ok = read_rule(problems, item, rule) && ok;
        if (rule.name.empty()) {
            continue;
        }
        const auto [same, inserted] = seen.emplace(rule.name, rule.source);
        if (!inserted) {
            problems.add({item.where.path + ".name", item.where.line},
                    "duplicate policy name '" + rule.name + "' (first at " + same->second + ")");
            ok = false;
            continue;
        }
        rules.push_back(std::move(rule));
    }
    if (ok) {
        out = std::move(rules);
    }
}

bool same_prefix(const Prefix& a, const Prefix& b) {
    return a.ip_version == b.ip_version && a.length == b.length && a.addr == b.addr;
}

/// One `sanctioned.prefixes` item; false when it was reported.
bool read_sanctioned_item(Problems& problems, const Entry& item, SanctionedPrefix& out) {
    if (!item.value.IsMap()) {
        problems.add(item.where,
                "expected a map with name and prefix, e.g. {name: offsite-backup, prefix: "
                "203.0.113.0/24}, got "
                        + describe(item.value));
        return false;
    }
    const auto entries = entries_of(problems, item.value, item.where, {"name", "prefix"});
    bool ok = entries.size() == item.value.size();  // unknown keys were reported
    bool has_name = false;
    bool has_prefix = false;
    for (const auto& entry : entries) {
        if (entry.name == "name") {
            has_name = true;
            if (!read_string(problems, entry, out.name)) {
                ok = false;
            } else if (!is_rule_name(out.name)) {
                problems.add(entry.where,
                        describe(entry.value) + ": use 1.." + std::to_string(kMaxNameLen)
                                + " letters, digits, spaces and _ - .");
                ok = false;
            }
            continue;
        }
        has_prefix = true;
        Prefix parsed;
        if (!read_prefix(problems, entry, parsed)) {
            ok = false;
            continue;
        }
        // A service is a few networks; 0.0.0.0/0 would quietly switch the volume detectors
        // off for everything.
        const uint8_t widest = parsed.ip_version == 4 ? kWidestSanctionedV4 : kWidestSanctionedV6;
        if (parsed.length < widest) {
            problems.add(entry.where,
                    parsed.to_string() + " is wider than /" + std::to_string(widest)
                            + ": a sanctioned service is a few networks, not a share of the "
                              "address space");
            ok = false;
            continue;
        }
        out.prefix = parsed;
    }
    if (!has_name || !has_prefix) {
        std::string missing = has_name ? "a prefix" : "a name";
        if (!has_name && !has_prefix) {
            missing = "a name and a prefix";
        }
        problems.add(item.where, "a sanctioned destination needs " + missing);
        ok = false;
    }
    return ok;
}

void apply_sanctioned_prefixes(
        Problems& problems, const Entry& entry, bool defaults, std::vector<SanctionedPrefix>& out) {
    if (entry.value.IsSequence() && entry.value.size() > kMaxSanctioned) {
        problems.add(entry.where,
                std::to_string(entry.value.size()) + " destinations, at most "
                        + std::to_string(kMaxSanctioned) + "; give covering prefixes");
        return;
    }
    const std::vector<SanctionedPrefix> shipped =
            defaults ? default_sanctioned() : std::vector<SanctionedPrefix>();
    std::vector<SanctionedPrefix> added;
    bool ok = entry.value.IsNull() || entry.value.IsSequence();
    for (const auto& item : items_of(problems, entry)) {
        SanctionedPrefix sanctioned;
        if (!read_sanctioned_item(problems, item, sanctioned)) {
            ok = false;
            continue;
        }
        const auto named = [&](const SanctionedPrefix& other) {
            return other.name == sanctioned.name;
        };
        const auto covered = [&](const SanctionedPrefix& other) {
            return same_prefix(other.prefix, sanctioned.prefix);
        };
        if (std::any_of(added.begin(), added.end(), named)
                || std::any_of(shipped.begin(), shipped.end(), named)) {
            problems.add({item.where.path + ".name", item.where.line},
                    "'" + sanctioned.name + "' is listed twice (the shipped list counts with "
                    "defaults: true)");
            ok = false;
            continue;
        }
        if (std::any_of(added.begin(), added.end(), covered)
                || std::any_of(shipped.begin(), shipped.end(), covered)) {
            problems.add({item.where.path + ".prefix", item.where.line},
                    sanctioned.prefix.to_string() + " is listed twice (the shipped list counts "
                    "with defaults: true)");
            ok = false;
            continue;
        }
        added.push_back(std::move(sanctioned));
    }
    if (ok) {
        out = std::move(added);
    }
}

/// `response.sanctioned`; the keys present replace their part, the effective list is rebuilt
/// from both parts (so --set of one key keeps the other).
void apply_sanctioned(Problems& problems, const Entry& section, ResponseConfig& out) {
    // Only prefixes: a TLS server name or domain is chosen by the client, so there is no key
    // for one (an unknown key like any other).
    const auto entries =
            entries_of(problems, section.value, section.where, {"defaults", "prefixes"});
    bool defaults = out.sanctioned_defaults;
    const auto defaults_entry = std::find_if(entries.begin(), entries.end(),
            [](const Entry& entry) { return entry.name == "defaults"; });
    if (defaults_entry != entries.end()) {
        read_bool(problems, *defaults_entry, defaults);  // a bad value is reported, kept as was
    }
    std::vector<SanctionedPrefix> added = out.sanctioned_added;
    for (const auto& entry : entries) {
        if (entry.name == "prefixes") {
            apply_sanctioned_prefixes(problems, entry, defaults, added);
        }
    }
    out.sanctioned_defaults = defaults;
    out.sanctioned_added = std::move(added);
    out.sanctioned = defaults ? default_sanctioned() : std::vector<SanctionedPrefix>();
    out.sanctioned.insert(
            out.sanctioned.end(), out.sanctioned_added.begin(), out.sanctioned_added.end());
}

bool rule_matches(const PolicyRule& rule, const PolicyInput& input) {
    if (rule.incident_score.has_value() || input.incident_score.has_value()) {
        // Incident rules match incidents only, and alert rules never match an incident.
        return rule.incident_score.has_value() && input.incident_score.has_value()
                && *input.incident_score >= *rule.incident_score;
    }
    if (rule.detector != kDetectorAny && rule.detector != input.detector) {
        return false;
    }
    if (!rule.class_name.empty() && rule.class_name != input.class_name
            && (input.rule_name.empty() || rule.class_name != input.rule_name)) {
        return false;
    }
    return !rule.min_severity || input.severity >= *rule.min_severity;
}

Prefix host_prefix(const PolicyEndpoint& end) {
    Prefix prefix;
    prefix.ip_version = end.ip_version;
    prefix.length = end.ip_version == 6 ? 128 : 32;
    prefix.addr = end.addr;
    return prefix;
}

dataplane::FlowVerdictPolicy::Entry verdict_of(
        const ResponseConfig& config, const PolicyInput& input, uint32_t threshold) {
    const Decision decision = decide(config, input);
    dataplane::FlowVerdictPolicy::Entry entry;
    if (decision.drop_flow) {
        entry.action =
                decision.shadow ? dataplane::FlowAction::ShadowDrop : dataplane::FlowAction::Drop;
        entry.reset = decision.reset && !decision.shadow;
    }
    entry.min_distinct = std::max<uint32_t>(threshold, 1);
    return entry;
}

}  // namespace

std::string_view policy_action_name(PolicyAction action) noexcept {
    switch (action) {
    case PolicyAction::Alert:
        return "alert";
    case PolicyAction::DropFlow:
        return "drop-flow";
    case PolicyAction::BlockRemote:
        return "block-remote";
    case PolicyAction::BlockSource:
        return "block-source";
    }
    return "alert";
}

void apply_response(Problems& problems, const Entry& section, ResponseConfig& out) {
    static constexpr std::array<std::string_view, 10> kKnown = {"shadow", "default_ttl_s",
            "min_prefix_v4", "min_prefix_v6", "catch_and_release", "allowlist", "block_table",
            "journal", "policies", "sanctioned"};
    for (const auto& entry : entries_of(problems, section.value, section.where, kKnown)) {
        if (entry.name == "shadow") {
            read_bool(problems, entry, out.shadow);
        } else if (entry.name == "default_ttl_s") {
            read_u32(problems, entry, 0, kMaxTtlS, out.default_ttl_s);
        } else if (entry.name == "min_prefix_v4") {
            read_prefix_len(problems, entry, 32, out.min_prefix_v4);
        } else if (entry.name == "min_prefix_v6") {
            read_prefix_len(problems, entry, 128, out.min_prefix_v6);
        } else if (entry.name == "catch_and_release") {
            apply_catch_and_release(problems, entry, out.catch_and_release);
        } else if (entry.name == "allowlist") {
            apply_allowlist(problems, entry, out.allowlist);
        } else if (entry.name == "block_table") {
            apply_block_table(problems, entry, out);
        } else if (entry.name == "journal") {
            apply_journal(problems, entry, out);
        } else if (entry.name == "sanctioned") {
            apply_sanctioned(problems, entry, out);
        } else {
            apply_policies(problems, entry, out.policies);
        }
    }
}

const SanctionedPrefix* find_sanctioned(
        const ResponseConfig& config, uint8_t ip_version, const std::array<uint8_t, 16>& addr) {
    const auto it = std::find_if(config.sanctioned.begin(), config.sanctioned.end(),
            [&](const SanctionedPrefix& s) { return s.prefix.contains(ip_version, addr); });
    return it == config.sanctioned.end() ? nullptr : &*it;
}

std::vector<std::string> unknown_policy_classes(
        const ResponseConfig& response, const detectors::ContentConfig& content) {
    std::vector<std::string> messages;
    for (const auto& rule : response.policies) {
        if (rule.class_name.empty()) {
            continue;
        }
        detectors::ContentClass cls{};
        const bool known = detectors::content_class_from_name(rule.class_name, cls)
                || std::any_of(content.custom.begin(), content.custom.end(),
                        [&](const detectors::CustomRule& custom) {
                            return custom.name == rule.class_name;
                        });
        if (!known) {
            messages.push_back(rule.source + ": response.policies '" + rule.name + "': class '"
                    + rule.class_name
                    + "' is neither a content class nor a custom rule name; the policy never "
                      "matches content findings");
        }
    }
    return messages;
}

Decision decide(const ResponseConfig& config, const PolicyInput& input) {
    Decision decision;
    decision.shadow = config.shadow;
    const auto rule = std::find_if(config.policies.begin(), config.policies.end(),
            [&](const PolicyRule& candidate) { return rule_matches(candidate, input); });
    if (rule == config.policies.end()) {
        return decision;
    }
    decision.rule = rule->name;
    decision.action = rule->action;
    decision.shadow = config.shadow || rule->shadow;
    decision.ttl_s = rule->ttl_s.value_or(config.default_ttl_s);
    switch (rule->action) {
    case PolicyAction::Alert:
        decision.ttl_s = 0;
        return decision;
    case PolicyAction::DropFlow:
        decision.drop_flow = true;
        decision.reset = rule->reset;
        decision.ttl_s = 0;
        return decision;
    case PolicyAction::BlockRemote: {
        // The external peer; when both ends or neither are internal there is no telling
        // which one is the outsider, and the destination is the one data went to.
        const bool source_outside = !input.source.internal && input.destination.internal;
        decision.block_target = host_prefix(source_outside ? input.source : input.destination);
        break;
    }
    case PolicyAction::BlockSource:
        decision.block_target = host_prefix(input.source);
        break;
    }
    decision.drop_flow = rule->drop_flow;
    decision.reset = rule->reset;
    return decision;
}

dataplane::FlowVerdictPolicy build_flow_verdicts(
        const ResponseConfig& config, const detectors::ContentConfig& content) {
    dataplane::FlowVerdictPolicy table;
    for (size_t i = 0; i < detectors::kContentClassCount; ++i) {
        const auto cls = static_cast<detectors::ContentClass>(i);
        PolicyInput input;
        input.detector = kDetectorContent;
        input.class_name = detectors::content_class_name(cls);
        input.severity = content.severity_of(cls, 0);
        table.content[i] = verdict_of(config, input, content.threshold_of(cls, 0));
    }
    const size_t rules = std::min(content.custom.size(), table.custom.size());
    for (size_t i = 0; i < rules; ++i) {
        PolicyInput input;
        input.detector = kDetectorContent;
        input.class_name = detectors::content_class_name(detectors::ContentClass::Custom);
        input.rule_name = content.custom[i].name;
        const auto rule = static_cast<uint16_t>(i + 1);
        input.severity = content.severity_of(detectors::ContentClass::Custom, rule);
        table.custom[i] = verdict_of(
                config, input, content.threshold_of(detectors::ContentClass::Custom, rule));
    }
    PolicyInput anomaly;
    anomaly.severity = kAnomalySeverity;
    anomaly.detector = kDetectorTcpOverlap;
    table.tcp_overlap = verdict_of(config, anomaly, 1);
    anomaly.detector = kDetectorIpFragment;
    table.ip_fragment = verdict_of(config, anomaly, 1);
    return table;
}

}  // namespace exfiltap::control
