#include "control/incident_config.h"

#include <algorithm>

namespace exfiltap::control {
namespace {

using namespace config_reader;  // NOLINT(google-build-using-namespace): the toolkit is this file's
                                // vocabulary

constexpr uint32_t kMaxIdleS = 30U * 24 * 3600;
constexpr uint32_t kMaxScore = 1000000;
constexpr uint32_t kMaxHosts = 1000000;
constexpr uint32_t kMaxFindings = 10000;
constexpr uint32_t kMaxWeight = 10000;

constexpr std::array<std::string_view, kIncidentStageCount> kStageNames = {
        "access", "lateral", "staging", "packing", "exfiltration"};

void apply_weights(Problems& problems, const Entry& section, IncidentConfig& out) {
    const auto names = std::span<const std::string_view>(kStageNames);
    for (const auto& entry : entries_of(problems, section.value, section.where, names)) {
        const auto it = std::find(kStageNames.begin(), kStageNames.end(), entry.name);
        read_u32(problems, entry, 0, kMaxWeight,
                out.stage_weights[static_cast<size_t>(it - kStageNames.begin())]);
    }
}

}  // namespace

std::string_view incident_stage_name(IncidentStage stage) noexcept {
    const auto index = static_cast<size_t>(stage);
    return index < kStageNames.size() ? kStageNames[index] : std::string_view("unknown");
}

void apply_incidents(Problems& problems, const Entry& section, IncidentConfig& out) {
    for (const auto& entry : entries_of(problems, section.value, section.where,
                 {"enabled", "idle_s", "open_score", "max_hosts", "max_findings", "stage_weights",
                         "order_bonus"})) {
        if (entry.name == "enabled") {
            read_bool(problems, entry, out.enabled);
        } else if (entry.name == "idle_s") {
            read_u32(problems, entry, 1, kMaxIdleS, out.idle_s);
        } else if (entry.name == "open_score") {
            read_u32(problems, entry, 1, kMaxScore, out.open_score);
        } else if (entry.name == "max_hosts") {
            read_u32(problems, entry, 1, kMaxHosts, out.max_hosts);
        } else if (entry.name == "max_findings") {
            read_u32(problems, entry, 1, kMaxFindings, out.max_findings);
        } else if (entry.name == "stage_weights") {
            apply_weights(problems, entry, out);
        } else {
            read_u32(problems, entry, 0, kMaxWeight, out.order_bonus);
        }
    }
}

}  // namespace exfiltap::control
