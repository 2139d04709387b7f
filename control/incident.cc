#include "control/incident.h"

#include <algorithm>
#include <cmath>
#include <utility>

#include "detectors/asset_inventory.h"

#include <nlohmann/json.hpp>

namespace exfiltap::control {
namespace {

/// Content classes that stand for packing (compressed or archived data) rather than for
/// sensitive data: their names, as other modules add them, carry one of these words.
bool packing_class(std::string_view cls) {
    return cls.find("archive") != std::string_view::npos
            || cls.find("compress") != std::string_view::npos;
}

bool has_ports(uint8_t proto) {
    return proto == 6 || proto == 17 || proto == 132;
}

int classification_level(const std::string& name) {
    detectors::Classification c{};
    if (name.empty() || !detectors::classification_from_name(name, c)) {
        return -1;
    }
    return static_cast<int>(c);
}

IncidentFinding make_finding(const AlertRecord& record, IncidentStage stage, bool peer_external) {
    IncidentFinding f;
    f.timestamp_s = record.timestamp_s;
    f.stage = stage;
    f.detector = record.detector;
    f.cls = record.cls;
    f.flow_id = record.flow_id;
    f.ip_version = record.ip_version;
    f.src = record.src;
    f.dst = record.dst;
    f.src_port = record.src_port;
    f.dst_port = record.dst_port;
    f.proto = record.proto;
    f.signature = record.signature;
    f.severity = record.severity;
    f.peer_external = peer_external;
    return f;
}

nlohmann::ordered_json finding_json(const IncidentFinding& f) {
    nlohmann::ordered_json json;
    json["timestamp"] = format_timestamp(f.timestamp_s);
    json["stage"] = incident_stage_name(f.stage);
    json["detector"] = f.detector;
    json["class"] = f.cls;
    json["flow_id"] = f.flow_id;
    json["src_ip"] = format_ip(f.ip_version, f.src);
    if (has_ports(f.proto)) {
        json["src_port"] = f.src_port;
    }
    json["dest_ip"] = format_ip(f.ip_version, f.dst);
    if (has_ports(f.proto)) {
        json["dest_port"] = f.dst_port;
    }
    json["proto"] = proto_name(f.proto);
    json["signature"] = f.signature;
    json["severity"] = detectors::severity_name(f.severity);
    return json;
}

nlohmann::ordered_json summary(const Incident& incident) {
    nlohmann::ordered_json json;
    json["id"] = incident.id;
    json["state"] = incident.closed ? "closed" : "open";
    if (incident.closed) {
        json["close_reason"] = incident.close_reason;
    }
    nlohmann::ordered_json host;
    host["ip"] = format_ip(incident.ip_version, incident.host);
    if (!incident.host_asset.empty()) {
        host["asset"] = incident.host_asset;
        host["classification"] = incident.host_classification;
    }
    json["host"] = std::move(host);
    json["score"] = incident.score;
    auto& stages = json["stages"] = nlohmann::ordered_json::array();
    for (const IncidentStage stage : incident.stages) {
        stages.push_back(incident_stage_name(stage));
    }
    json["first_seen"] = format_timestamp(incident.first_seen_s);
    json["last_seen"] = format_timestamp(incident.last_seen_s);
    json["finding_count"] = incident.findings_total;
    return json;
}

std::string dump(const nlohmann::ordered_json& json) {
    return json.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
}

nlohmann::ordered_json incident_body(const Incident& incident) {
    nlohmann::ordered_json body = summary(incident);
    body["findings_omitted"] = incident.findings_total - incident.findings.size();
    if (!incident.response.empty()) {
        body["response"] = incident.response;
    }
    auto& findings = body["findings"] = nlohmann::ordered_json::array();
    for (const IncidentFinding& f : incident.findings) {
        findings.push_back(finding_json(f));
    }
    return body;
}

}  // namespace

std::string_view incident_event_name(IncidentEvent event) noexcept {
    switch (event) {
    case IncidentEvent::Opened:
        return "opened";
    case IncidentEvent::Escalated:
        return "escalated";
    case IncidentEvent::Closed:
        return "closed";
    }
    return "opened";
}

std::optional<IncidentStage> incident_stage_of(const AlertRecord& record, bool dst_internal) {
    const std::string_view d = record.detector;
    if (d == "external_login") {
        return IncidentStage::Access;
    }
    if (d == "lateral_fanout" || d == "share_enumeration" || d == "first_access") {
        return IncidentStage::Lateral;
    }
    if (d == "staging" || d == "internal_transfer") {
        return IncidentStage::Staging;
    }
    if (d == "archive_out") {
        return IncidentStage::Packing;
    }
    if (d == "external_upload" || d == "baseline_deviation" || d == "encrypted_asymmetry"
            || d == "mail_attachment_out" || d == "dns_tunnel") {
        return IncidentStage::Exfiltration;
    }
    if (d == "unexpected_file_write") {
        return dst_internal ? IncidentStage::Staging : IncidentStage::Exfiltration;
    }
    if (d == "content") {
        if (packing_class(record.cls)) {
            return IncidentStage::Packing;
        }
        // Sensitive data sent to another internal host is being collected, not sent out.
        return dst_internal ? IncidentStage::Staging : IncidentStage::Exfiltration;
    }
    return std::nullopt;  // evasion signs (tcp_overlap, ip_fragment) and unknown detectors
}

uint32_t incident_score(const IncidentConfig& config, const Incident& incident) {
    uint64_t points = 0;
    for (size_t s = 0; s < kIncidentStageCount; ++s) {
        const uint64_t severity = incident.stage_severity[s];
        if (severity != 0) {
            points += uint64_t{config.stage_weights[s]} * (severity + 1) / 4;
        }
    }
    points += uint64_t{config.order_bonus} * incident.ordered_steps;
    const uint64_t sensitivity = incident.sensitivity < 0 ? 0 : incident.sensitivity;
    points = points * (100 + 25 * sensitivity) / 100;
    return static_cast<uint32_t>(std::min<uint64_t>(points, UINT32_MAX));
}

std::string incident_to_json(const Incident& incident, IncidentEvent event) {
    nlohmann::ordered_json json;
    json["timestamp"] = format_timestamp(incident.last_seen_s);
    json["event_type"] = "incident";
    nlohmann::ordered_json body = incident_body(incident);
    body["event"] = incident_event_name(event);
    json["incident"] = std::move(body);
    return dump(json);
}

nlohmann::json incident_row(const Incident& incident) {
    std::string stages;
    for (const IncidentStage stage : incident.stages) {
        stages += (stages.empty() ? "" : ",") + std::string(incident_stage_name(stage));
    }
    return {{"id", incident.id}, {"state", incident.closed ? "closed" : "open"},
            {"host", format_ip(incident.ip_version, incident.host)}, {"asset", incident.host_asset},
            {"score", incident.score}, {"stages", stages},
            {"first_seen", format_timestamp(incident.first_seen_s)},
            {"last_seen", format_timestamp(incident.last_seen_s)},
            {"findings", incident.findings_total}};
}

nlohmann::json incident_detail(const Incident& incident) {
    return nlohmann::json::parse(dump(incident_body(incident)));
}

std::vector<Prefix> incident_block_targets(const Incident& incident, PolicyAction action) {
    const auto host_prefix = [&](const std::array<uint8_t, 16>& addr) {
        Prefix prefix;
        prefix.ip_version = incident.ip_version;
        prefix.length = incident.ip_version == 6 ? 128 : 32;
        prefix.addr = addr;
        return prefix;
    };
    std::vector<Prefix> targets;
    if (action == PolicyAction::BlockSource) {
        targets.push_back(host_prefix(incident.host));
    } else if (action == PolicyAction::BlockRemote) {
        for (const IncidentFinding& f : incident.findings) {
            if (f.stage != IncidentStage::Exfiltration || !f.peer_external) {
                continue;
            }
            const Prefix peer = host_prefix(f.src == incident.host ? f.dst : f.src);
            const bool seen = std::any_of(targets.begin(), targets.end(),
                    [&](const Prefix& other) { return other.addr == peer.addr; });
            if (!seen) {
                targets.push_back(peer);
            }
        }
    }
    return targets;
}

IncidentCorrelator::IncidentCorrelator(IncidentConfig config, IsInternal is_internal)
    : config_(std::move(config)), is_internal_(std::move(is_internal)) {}

void IncidentCorrelator::add(const AlertRecord& record) {
    if (!config_.enabled) {
        return;
    }
    expire(record.timestamp_s);
    const bool src_internal = is_internal_(record.ip_version, record.src);
    const bool dst_internal = is_internal_(record.ip_version, record.dst);
    const std::optional<IncidentStage> stage = incident_stage_of(record, dst_internal);
    if (!stage) {
        return;
    }
    // The actor: the server logged into for an outside login, otherwise the internal sender
    // or client.
    const bool actor_is_src = record.detector == "external_login" ? !dst_internal : src_internal;
    if (actor_is_src ? !src_internal : !dst_internal) {
        return;  // no internal end to follow
    }
    const HostKey key{record.ip_version, actor_is_src ? record.src : record.dst};

    auto found = hosts_.find(key);
    if (found == hosts_.end()) {
        while (!hosts_.empty() && hosts_.size() >= config_.max_hosts) {
            drop_lru();
        }
        lru_.push_front(Host{key, Incident{}});
        found = hosts_.emplace(key, lru_.begin()).first;
        Incident& fresh = lru_.front().incident;
        fresh.ip_version = record.ip_version;
        fresh.host = key.second;
        fresh.first_seen_s = record.timestamp_s;
        fresh.last_seen_s = record.timestamp_s;
    } else {
        lru_.splice(lru_.begin(), lru_, found->second);
    }
    Incident& incident = found->second->incident;
    const std::string& asset = actor_is_src ? record.src_asset : record.dst_asset;
    if (incident.host_asset.empty() && !asset.empty()) {
        incident.host_asset = asset;
        incident.host_classification =
                actor_is_src ? record.src_asset_classification : record.dst_asset_classification;
    }

    // The timeline: kept in packet-time order (records of different flows may arrive a
    // little out of order), the first max_findings only.
    ++incident.findings_total;
    if (incident.findings.size() < config_.max_findings) {
        IncidentFinding f =
                make_finding(record, *stage, !(actor_is_src ? dst_internal : src_internal));
        const auto at = std::upper_bound(incident.findings.begin(), incident.findings.end(),
                f.timestamp_s,
                [](double t, const IncidentFinding& other) { return t < other.timestamp_s; });
        incident.findings.insert(at, std::move(f));
    }
    incident.first_seen_s = std::min(incident.first_seen_s, record.timestamp_s);
    incident.last_seen_s = std::max(incident.last_seen_s, record.timestamp_s);

    // Stages, order, severity and sensitivity: each can only rise, so the score never falls.
    const auto s = static_cast<size_t>(*stage);
    const bool new_stage = incident.stage_severity[s] == 0;
    if (new_stage) {
        const bool in_order = !incident.stages.empty()
                && std::all_of(incident.stages.begin(), incident.stages.end(),
                        [&](IncidentStage seen) { return seen < *stage; });
        incident.ordered_steps += in_order ? 1 : 0;
        incident.stages.push_back(*stage);
    }
    incident.stage_severity[s] =
            std::max(incident.stage_severity[s], static_cast<uint8_t>(record.severity));
    incident.sensitivity =
            std::max({incident.sensitivity, classification_level(record.src_asset_classification),
                    classification_level(record.dst_asset_classification)});
    const uint32_t before = incident.score;
    incident.score = incident_score(config_, incident);

    if (!incident.open) {
        if (incident.score >= config_.open_score && incident.stages.size() >= 2) {
            incident.open = true;
            incident.id = next_id_++;
            ++opened_total_;
            if (emit_) {
                emit_(incident, IncidentEvent::Opened);
            }
        }
    } else if (new_stage && incident.score > before && emit_) {
        emit_(incident, IncidentEvent::Escalated);
    }
}

void IncidentCorrelator::expire(double now_s) {
    // The list runs from the most to the least recently active host: the idle ones are at
    // its end.
    while (!lru_.empty() && lru_.back().incident.last_seen_s + config_.idle_s < now_s) {
        Host& host = lru_.back();
        close(host, "idle");
        hosts_.erase(host.key);
        lru_.pop_back();
    }
}

void IncidentCorrelator::close_all() {
    for (Host& host : lru_) {
        close(host, "end of run");
    }
    lru_.clear();
    hosts_.clear();
}

void IncidentCorrelator::drop_lru() {
    Host& host = lru_.back();
    close(host, "evicted");
    hosts_.erase(host.key);
    lru_.pop_back();
}

void IncidentCorrelator::close(Host& host, std::string_view reason) {
    Incident& incident = host.incident;
    if (!incident.open) {
        return;  // a timeline that never became an incident leaves no record
    }
    incident.closed = true;
    incident.close_reason = std::string(reason);
    if (emit_) {
        emit_(incident, IncidentEvent::Closed);
    }
    recent_.push_front(std::move(incident));
    if (recent_.size() > kRecentClosed) {
        recent_.pop_back();
    }
}

std::vector<const Incident*> IncidentCorrelator::list() const {
    std::vector<const Incident*> out;
    for (const Host& host : lru_) {
        if (host.incident.open) {
            out.push_back(&host.incident);
        }
    }
    std::sort(out.begin(), out.end(),
            [](const Incident* a, const Incident* b) { return a->id < b->id; });
    for (const Incident& incident : recent_) {
        out.push_back(&incident);
    }
    return out;
}

const Incident* IncidentCorrelator::find(uint64_t id) const {
    for (const Incident* incident : list()) {
        if (incident->id == id) {
            return incident;
        }
    }
    return nullptr;
}

uint64_t IncidentCorrelator::open_count() const {
    return static_cast<uint64_t>(std::count_if(
            lru_.begin(), lru_.end(), [](const Host& host) { return host.incident.open; }));
}

}  // namespace exfiltap::control
