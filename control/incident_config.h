// The `incidents` config section (control/incident.h correlates; this is only its settings,
// so the config loader does not depend on the correlator). Control thread.
#pragma once

#include <array>
#include <cstdint>
#include <string_view>

#include "control/config_reader.h"

namespace exfiltap::control {

/// The attack's stages, in the order an exfiltration goes through them.
enum class IncidentStage : uint8_t {
    Access = 0,        // external_login
    Lateral = 1,       // lateral_fanout, share_enumeration, first_access
    Staging = 2,       // staging, internal_transfer, unexpected_file_write to an internal host
    Packing = 3,       // archive_out, compression/archive content classes
    Exfiltration = 4,  // uploads, deviations, tunnels, sensitive content leaving
};
inline constexpr size_t kIncidentStageCount = 5;
/// "access", "lateral", "staging", "packing", "exfiltration".
std::string_view incident_stage_name(IncidentStage stage) noexcept;

/// The `incidents` config section.
struct IncidentConfig {
    bool enabled = true;
    /// A host quiet for longer than this (packet time) closes its incident.
    uint32_t idle_s = 4 * 3600;
    /// An incident opens when its score reaches this with at least two stages.
    uint32_t open_score = 50;
    /// Hosts tracked at once; the least recently active one is dropped (its incident closed).
    uint32_t max_hosts = 10000;
    /// Findings kept per incident (the first ones); the rest are only counted.
    uint32_t max_findings = 64;
    /// Points of each stage at severity high, indexed by IncidentStage.
    std::array<uint32_t, kIncidentStageCount> stage_weights = {10, 15, 15, 20, 30};
    /// Points for each stage reached after all the stages seen before it in the attack order.
    uint32_t order_bonus = 10;
};

/// Applies the `incidents` section onto `out`; problems as FILE:LINE: incidents.key: what.
void apply_incidents(config_reader::Problems& problems, const config_reader::Entry& section,
        IncidentConfig& out);

}  // namespace exfiltap::control
