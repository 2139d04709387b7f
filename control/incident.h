// Incident correlation (DESIGN.md "Detection": incidents). Control thread only: the alert
// sink feeds every record it writes, content and behaviour alike, in packet time; findings of
// one internal host are joined in time into an incident whose score rises with each stage of
// the attack reached, more when the stages come in the attack's order, weighted by severity
// and by the classification of the assets touched. Incident records (`event_type:
// incident`) go back through the alert sink to the file and the SIEM outputs.
#pragma once

#include <array>
#include <cstdint>
#include <deque>
#include <functional>
#include <list>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "control/alert_writer.h"
#include "control/incident_config.h"
#include "control/policy.h"
#include "control/prefix.h"

#include <nlohmann/json.hpp>

namespace exfiltap::control {

/// The stage an alert record stands for, or none (evasion, unknown detectors).
/// `dst_internal`: the record's destination is inside the internal networks.
std::optional<IncidentStage> incident_stage_of(const AlertRecord& record, bool dst_internal);

struct IncidentFinding {
    double timestamp_s = 0;
    IncidentStage stage = IncidentStage::Access;
    std::string detector;
    std::string cls;
    uint64_t flow_id = 0;
    uint8_t ip_version = 4;
    std::array<uint8_t, 16> src{};
    std::array<uint8_t, 16> dst{};
    uint16_t src_port = 0;
    uint16_t dst_port = 0;
    uint8_t proto = 6;
    std::string signature;
    detectors::Severity severity = detectors::Severity::Medium;
    /// The peer is outside the internal networks (block-remote acts on these).
    bool peer_external = false;
};

struct Incident {
    uint64_t id = 0;  // 0 until it opens
    uint8_t ip_version = 4;
    std::array<uint8_t, 16> host{};
    std::string host_asset;           // "" when the inventory does not name it
    std::string host_classification;  // with the asset only
    double first_seen_s = 0;
    double last_seen_s = 0;
    uint32_t score = 0;
    /// Stages in the order they were first reached.
    std::vector<IncidentStage> stages;
    /// Highest severity seen per stage (0: stage not reached).
    std::array<uint8_t, kIncidentStageCount> stage_severity{};
    /// Stages reached after every stage seen before them (earlier ones in the attack order).
    uint32_t ordered_steps = 0;
    /// Highest classification of an asset touched (detectors::Classification), -1: none.
    int sensitivity = -1;
    std::vector<IncidentFinding> findings;  // the first max_findings, in packet-time order
    uint64_t findings_total = 0;
    bool open = false;
    bool closed = false;
    std::string close_reason;  // "idle", "evicted", "end of run"
    /// What the response policy did about it (empty when nothing).
    std::string response;
    /// The policy that acted, so it acts once per incident.
    std::string acted_policy;
};

/// Why an incident record is written.
enum class IncidentEvent : uint8_t {
    Opened,
    Escalated,  // a new stage raised the score
    Closed,
};
std::string_view incident_event_name(IncidentEvent event) noexcept;

/// The score of an incident's state (documented in control/NOTES.md "Incidents"):
///   sum over stages reached of weight[stage] * (severity + 1) / 4
///   + order_bonus * ordered_steps, then times (100 + 25 * sensitivity) / 100,
/// severity 1 (low) .. 4 (critical), sensitivity 0 (public) .. 3 (restricted), none = 0.
/// Never falls as findings are added.
uint32_t incident_score(const IncidentConfig& config, const Incident& incident);

/// The incident record: one JSON line (no newline), EVE-like.
std::string incident_to_json(const Incident& incident, IncidentEvent event);
/// One row of the control socket's `incidents` list: id, state, host, asset, score, stages
/// (comma separated), first/last seen, findings (the total).
nlohmann::json incident_row(const Incident& incident);
/// The control socket's `incidents {id}` reply: the record's `incident` object with its
/// timeline.
nlohmann::json incident_detail(const Incident& incident);

/// What a block policy acting on an incident blocks: for block-remote the distinct outside
/// peers of its exfiltration findings (among those kept), for block-source the host (/32 or
/// /128); nothing for other actions.
std::vector<Prefix> incident_block_targets(const Incident& incident, PolicyAction action);

/// Per-host timelines. Not thread safe: the control thread owns it.
class IncidentCorrelator {
public:
    using IsInternal = std::function<bool(uint8_t, const std::array<uint8_t, 16>&)>;
    /// Called with each incident record to write (opened, escalated, closed).
    using Emit = std::function<void(Incident&, IncidentEvent)>;

    IncidentCorrelator(IncidentConfig config, IsInternal is_internal);

    void set_emit(Emit emit) { emit_ = std::move(emit); }
    /// A reload: new limits and weights apply from the next record (hosts beyond a smaller
    /// max_hosts are dropped then).
    void set_config(const IncidentConfig& config) { config_ = config; }
    const IncidentConfig& config() const { return config_; }

    /// One alert record as written (assets named). Closes idle incidents first.
    void add(const AlertRecord& record);
    /// Closes incidents idle at packet time `now_s`.
    void expire(double now_s);
    /// Closes every open incident (end of run) and forgets every host.
    void close_all();

    /// Open incidents, then recently closed ones (newest first).
    std::vector<const Incident*> list() const;
    const Incident* find(uint64_t id) const;

    uint64_t opened_total() const { return opened_total_; }
    uint64_t open_count() const;
    size_t hosts() const { return hosts_.size(); }

    /// Recently closed incidents kept for the control socket.
    static constexpr size_t kRecentClosed = 64;

private:
    using HostKey = std::pair<uint8_t, std::array<uint8_t, 16>>;
    struct Host {
        HostKey key;
        Incident incident;
    };

    void close(Host& host, std::string_view reason);
    void drop_lru();

    IncidentConfig config_;
    IsInternal is_internal_;
    Emit emit_;
    std::list<Host> lru_;  // most recently active first
    std::map<HostKey, std::list<Host>::iterator> hosts_;
    std::deque<Incident> recent_;  // closed, newest first
    uint64_t next_id_ = 1;
    uint64_t opened_total_ = 0;
};

}  // namespace exfiltap::control
