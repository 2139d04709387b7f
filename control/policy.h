// The `response` config section and the policy decisions made from it (DESIGN.md "Response").
// Runs on the control thread: apply_response() at config load and reload, decide() for each
// alert. The flow verdict table built here is the only piece a worker reads: plain data of
// fixed size, published to the workers by the daemon.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "control/config_reader.h"
#include "control/prefix.h"
#include "dataplane/flow_verdict.h"
#include "detectors/content_types.h"

namespace exfiltap::control {

enum class PolicyAction : uint8_t {
    Alert,
    DropFlow,
    BlockRemote,
    BlockSource,
};
/// "alert", "drop-flow", "block-remote", "block-source".
std::string_view policy_action_name(PolicyAction action) noexcept;

/// Detector names the data path reports itself; policies may also name detectors that other
/// modules add (volume, behaviour): any identifier of [a-z0-9_] is accepted.
inline constexpr std::string_view kDetectorContent = "content";
inline constexpr std::string_view kDetectorTcpOverlap = "tcp_overlap";
inline constexpr std::string_view kDetectorIpFragment = "ip_fragment";
inline constexpr std::string_view kDetectorAny = "any";
/// What an incident is, as a policy input.
inline constexpr std::string_view kDetectorIncident = "incident";

/// One `response.policies` item. Matches when the detector is its detector (or it says
/// "any"), the class is its class (or it has none) and the severity is at least its
/// min_severity (or it has none).
struct PolicyRule {
    std::string name;
    std::string detector = std::string(kDetectorAny);
    /// A content class name ("payment_card", "custom") or a custom rule's name; "" for any.
    std::string class_name;
    std::optional<detectors::Severity> min_severity;
    PolicyAction action = PolicyAction::Alert;
    /// TCP reset both ways; only with drop-flow or a block.
    bool reset = false;
    /// Blocks also drop the rest of the flow. Ignored for alert (never) and drop-flow
    /// (always).
    bool drop_flow = true;
    /// Unset: ResponseConfig::default_ttl_s. 0 = no expiry.
    std::optional<uint32_t> ttl_s;
    bool shadow = false;
    /// "FILE:LINE" of the rule, for messages; may be empty.
    std::string source;
    /// Set: the rule acts on incidents (control/incident.h) whose score reaches it, and on
    /// nothing else; unset: it never matches an incident.
    std::optional<uint32_t> incident_score;
};

/// A peer blocked again within window_s of its previous block's end gets the previous
/// TTL times multiplier, at most max_ttl_s.
struct CatchAndRelease {
    uint32_t window_s = 86400;
    uint32_t multiplier = 4;
    uint32_t max_ttl_s = 604800;
};

/// A sanctioned destination (DESIGN.md "Response"): software update and backup services,
/// left out of the volume detectors only; content detection still applies. Only an address
/// prefix makes a destination sanctioned: a TLS server name is chosen by the client and never
/// exempts anything, so there is no key for one.
struct SanctionedPrefix {
    std::string name;
    Prefix prefix;
};

/// The shipped list (control/sanctioned_defaults.cc), compiled in so an installed binary has
/// it; each entry names the operator's publication in a comment there.
std::vector<SanctionedPrefix> default_sanctioned();

struct ResponseConfig {
    /// Every policy shadowed: would_drop is counted, nothing is dropped or blocked.
    bool shadow = false;
    /// 0 = no expiry.
    uint32_t default_ttl_s = 3600;
    /// Automatic blocks are never wider than these prefix lengths.
    uint8_t min_prefix_v4 = 32;
    uint8_t min_prefix_v6 = 128;
    CatchAndRelease catch_and_release;
    /// Config allow entries (source "config"): not persisted, not removable by operators.
    std::vector<Prefix> allowlist;
    uint32_t exact_capacity = 1048576;
    uint32_t prefix_capacity = 16384;
    uint32_t snapshot_every_changes = 1000;
    uint32_t snapshot_every_s = 300;
    std::vector<PolicyRule> policies;
    /// `sanctioned.defaults`: the shipped list is part of the effective one.
    bool sanctioned_defaults = true;
    /// `sanctioned.prefixes`: the operator's own entries.
    std::vector<SanctionedPrefix> sanctioned_added;
    /// The effective list: the shipped one (when sanctioned_defaults) followed by
    /// sanctioned_added. What the volume detectors consult.
    std::vector<SanctionedPrefix> sanctioned = default_sanctioned();
};

/// The entry of `config.sanctioned` holding the address (the first listed), or null.
const SanctionedPrefix* find_sanctioned(
        const ResponseConfig& config, uint8_t ip_version, const std::array<uint8_t, 16>& addr);

/// Applies the `response` section (an Entry from entries_of() of the top level) onto `out`.
/// Keys present replace the defaults; lists (allowlist, policies) replace the list whole.
/// Every bad value is added to `problems` as FILE:LINE: response.key: what.
void apply_response(config_reader::Problems& problems, const config_reader::Entry& section,
        ResponseConfig& out);

/// Policy classes that name neither a built-in content class nor a custom rule of `content`
/// (checked once both sections are loaded); one message per rule, naming its source.
std::vector<std::string> unknown_policy_classes(
        const ResponseConfig& response, const detectors::ContentConfig& content);

/// One end of a flow as the policy sees it.
struct PolicyEndpoint {
    uint8_t ip_version = 4;
    std::array<uint8_t, 16> addr{};
    bool internal = false;
};

struct PolicyInput {
    std::string_view detector;
    /// Content class name ("payment_card", "custom", ...); "" when the detector has none.
    std::string_view class_name;
    /// The custom rule's name for custom findings; "".
    std::string_view rule_name;
    detectors::Severity severity = detectors::Severity::Medium;
    PolicyEndpoint source;
    PolicyEndpoint destination;
    /// Set for an incident (detector "incident"): its score. Only rules with incident_score
    /// match it.
    std::optional<uint32_t> incident_score;
};

struct Decision {
    /// The first matching rule's name; empty when none matched (alert only).
    std::string rule;
    PolicyAction action = PolicyAction::Alert;
    bool drop_flow = false;
    bool reset = false;
    /// For block-remote / block-source: the address to block (/32 or /128).
    std::optional<Prefix> block_target;
    /// TTL for the block (0 = none); the block list may lengthen it (catch and release).
    uint32_t ttl_s = 0;
    bool shadow = false;
};

/// The first rule in order that matches `input`; no match gives an alert-only decision.
/// block-remote targets the end that is not internal; when both or neither are internal
/// it targets the destination.
Decision decide(const ResponseConfig& config, const PolicyInput& input);

/// Severity the data path gives anomalies (alert_sink: conflicting overlaps, fragments).
inline constexpr detectors::Severity kAnomalySeverity = detectors::Severity::Medium;

/// What a worker does with a flow the moment a detector fires, without asking the control
/// thread: for each content class, custom rule and anomaly, the first matching rule's flow
/// verdict (each class at its configured severity, anomalies at kAnomalySeverity), applied
/// once the finding reaches the class threshold, so the verdict and the alert agree.
dataplane::FlowVerdictPolicy build_flow_verdicts(
        const ResponseConfig& config, const detectors::ContentConfig& content);

}  // namespace exfiltap::control
