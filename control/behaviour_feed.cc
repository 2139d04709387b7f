#include "control/behaviour_feed.h"

#include <algorithm>
#include <tuple>
#include <utility>

#include "common/log.h"
#include "control/state_file.h"

namespace exfiltap::control {

namespace {

constexpr const char* kBaselineFile = "baselines.txt";
constexpr uint32_t kBehaviourSignatureBase = 2200001;

std::vector<detectors::AddressPrefix> to_prefixes(const std::vector<Prefix>& prefixes) {
    std::vector<detectors::AddressPrefix> out;
    out.reserve(prefixes.size());
    for (const Prefix& p : prefixes) {
        out.push_back(detectors::AddressPrefix{p.ip_version, p.length, p.addr});
    }
    return out;
}

std::vector<detectors::SanctionedRange> sanctioned_of(const Config& config) {
    std::vector<detectors::SanctionedRange> out;
    for (const auto& s : config.response.sanctioned) {
        out.push_back(detectors::SanctionedRange{s.name,
                detectors::AddressPrefix{s.prefix.ip_version, s.prefix.length, s.prefix.addr}});
    }
    return out;
}

detectors::FlowTuple tuple_of(const dataplane::WorkerEvent& event) {
    detectors::FlowTuple t;
    t.ip_version = event.ip_version;
    t.proto = event.proto;
    t.client = event.src;
    t.server = event.dst;
    t.client_port = event.src_port;
    t.server_port = event.dst_port;
    t.flow_id = event.flow_id;
    return t;
}

const char* signature_text(detectors::BehaviourDetector detector) {
    using D = detectors::BehaviourDetector;
    switch (detector) {
    case D::ExternalUpload:
        return "EXFIL behaviour: large upload to external hosts";
    case D::InternalTransfer:
        return "EXFIL behaviour: large internal transfer";
    case D::BaselineDeviation:
        return "EXFIL behaviour: upload volume far above the host's baseline";
    case D::EncryptedAsymmetry:
        return "EXFIL behaviour: encrypted flow sends far more than it receives";
    case D::ArchiveOut:
        return "EXFIL behaviour: archive or compressed data sent to an external host";
    case D::UnexpectedFileWrite:
        return "EXFIL behaviour: file written to a host that is not a file server";
    case D::ExternalLogin:
        return "EXFIL behaviour: logins to an internal service from external addresses";
    case D::MailAttachmentOut:
        return "EXFIL behaviour: mail with attachments to outside recipients";
    case D::DnsTunnel:
        return "EXFIL behaviour: DNS tunnelling";
    case D::LateralFanout:
        return "EXFIL behaviour: host connects to unusually many internal hosts or services";
    case D::ShareEnumeration:
        return "EXFIL behaviour: host connects to many SMB shares";
    case D::FirstAccess:
        return "EXFIL behaviour: first access of a host to a sensitive asset";
    case D::Staging:
        return "EXFIL behaviour: host pulls unusually much from file servers, repositories or "
               "databases";
    }
    return "EXFIL behaviour";
}

const char* category_of(detectors::BehaviourDetector detector) {
    using D = detectors::BehaviourDetector;
    switch (detector) {
    case D::ExternalLogin:
        return "Suspicious Login";
    case D::LateralFanout:
    case D::ShareEnumeration:
    case D::FirstAccess:
        return "Lateral Movement";
    case D::Staging:
        return "Data Staging";
    default:
        return "Data Exfiltration";
    }
}

}  // namespace

uint32_t behaviour_signature_id(detectors::BehaviourDetector detector) noexcept {
    return kBehaviourSignatureBase + static_cast<uint32_t>(detector);
}

BehaviourFeed::BehaviourFeed(const Config& config, AlertSink& sink)
    : sink_(sink), assets_(std::make_unique<detectors::AssetInventory>(config.assets)) {
    engine_ = std::make_unique<detectors::BehaviourEngine>(config.behaviour, assets_.get(),
            to_prefixes(config.internal_networks), sanctioned_of(config));
    warn_suffixes();
}

void BehaviourFeed::warn_suffixes() const {
    const std::string warning = engine_->stats().public_suffix_warning;
    if (!warning.empty()) {
        log_warning("behaviour", warning
                        + "; DNS tunnels are grouped by the last two labels of each name instead "
                          "(install Debian's publicsuffix package)");
    }
}

void BehaviourFeed::reconfigure(const Config& config) {
    // Findings point into the old inventory: write them out before it goes.
    emit_findings();
    auto assets = std::make_unique<detectors::AssetInventory>(config.assets);
    engine_->reconfigure(config.behaviour, assets.get(), to_prefixes(config.internal_networks),
            sanctioned_of(config));
    assets_ = std::move(assets);
    warn_suffixes();
}

BehaviourFeed::FlowState& BehaviourFeed::flow_state(uint64_t flow_id) {
    auto it = flows_.find(flow_id);
    if (it != flows_.end()) {
        lru_.splice(lru_.end(), lru_, it->second.lru);
        return it->second;
    }
    if (flows_.size() >= kMaxFlows) {
        // The least recently reported flow is forgotten; its next report counts in full.
        flows_.erase(lru_.front());
        lru_.pop_front();
        ++forgotten_;
    }
    FlowState& state = flows_[flow_id];
    state.lru = lru_.insert(lru_.end(), flow_id);
    return state;
}

void BehaviourFeed::on_event(const dataplane::WorkerEvent& event) {
    if (event.type != dataplane::WorkerEvent::Type::App
            && event.type != dataplane::WorkerEvent::Type::Progress) {
        return;
    }
    pending_.push_back(event);
    if (pending_.size() >= kMaxPending) {
        // Time stands still (a stalled worker): do not hold events without bound.
        process_until(UINT64_MAX);
    }
}

void BehaviourFeed::process_until(uint64_t time_ns) {
    // Workers' rings are drained in whatever order they come; the detectors that join flows
    // (logins per service, DNS per domain, host windows) must see them in packet-time order,
    // or the same capture would give other findings on two workers than on one. Ties go by
    // the flow's addresses and ports (flow ids differ with the worker count), then arrival.
    const auto later = [](const dataplane::WorkerEvent& a, const dataplane::WorkerEvent& b) {
        return std::tie(a.time_ns, a.ip_version, a.src, a.dst, a.src_port, a.dst_port)
                < std::tie(b.time_ns, b.ip_version, b.src, b.dst, b.src_port, b.dst_port);
    };
    std::stable_sort(pending_.begin(), pending_.end(), later);
    size_t done = 0;
    for (; done < pending_.size() && pending_[done].time_ns <= time_ns; ++done) {
        process(pending_[done]);
    }
    pending_.erase(pending_.begin(), pending_.begin() + static_cast<std::ptrdiff_t>(done));
}

void BehaviourFeed::process(const dataplane::WorkerEvent& event) {
    if (event.type == dataplane::WorkerEvent::Type::App) {
        const detectors::AppEvent& app = event.app;
        if (app.kind == detectors::AppEventKind::ProtocolSeen
                && app.proto == detectors::AppProto::Tls && !app.name_view().empty()) {
            flow_state(event.flow_id).sni = std::string(app.name_view());
        }
        engine_->on_app_event(tuple_of(event), event.time_ns, app);
        emit_findings();
        return;
    }
    if (event.type != dataplane::WorkerEvent::Type::Progress) {
        return;
    }
    FlowState& state = flow_state(event.flow_id);
    // Totals only grow within a flow; a smaller one is a new flow under a reused id.
    const uint64_t up = event.direction_bytes >= state.to_server
            ? event.direction_bytes - state.to_server
            : event.direction_bytes;
    const uint64_t down = event.reverse_bytes >= state.to_client
            ? event.reverse_bytes - state.to_client
            : event.reverse_bytes;
    state.to_server = event.direction_bytes;
    state.to_client = event.reverse_bytes;
    engine_->on_flow_bytes(tuple_of(event), static_cast<detectors::AppProto>(event.app_proto),
            state.sni, event.time_ns, up, down, event.flow_ended);
    emit_findings();
    if (event.flow_ended) {
        lru_.erase(state.lru);
        flows_.erase(event.flow_id);
        sink_.flow_ended(event.flow_id);
    }
}

void BehaviourFeed::advance(uint64_t time_ns) {
    if (time_ns == 0) {
        // No worker has seen a packet yet: time has not started. Advancing from 0 would fold
        // decades of empty windows into every loaded baseline.
        return;
    }
    process_until(time_ns);
    engine_->advance(time_ns);
    emit_findings();
}

void BehaviourFeed::flush() {
    process_until(UINT64_MAX);
    emit_findings();
}

void BehaviourFeed::emit_findings() {
    for (detectors::BehaviourFinding& f : engine_->take_findings()) {
        AlertRecord record;
        record.timestamp_s = static_cast<double>(f.time_ns) / 1e9;
        record.flow_id = f.flow.flow_id;
        record.ip_version = f.flow.ip_version;
        record.src = f.flow.client;
        record.dst = f.flow.server;
        record.src_port = f.flow.client_port;
        record.dst_port = f.flow.server_port;
        record.proto = f.flow.proto;
        record.signature_id = behaviour_signature_id(f.id);
        record.signature = signature_text(f.id);
        record.category = category_of(f.id);
        record.severity = f.severity;
        record.detector = f.detector;
        record.cls = f.detector;
        record.confidence = detectors::Confidence::High;
        record.bytes = f.bytes;
        record.count = f.count > 0 ? f.count : 1;
        record.app_proto = f.app_proto;
        record.file_name = std::move(f.file_name);
        record.server_name = std::move(f.sni);
        record.user = std::move(f.user);
        record.domain = std::move(f.domain);
        record.reason = std::move(f.reason);
        record.window_s = f.window_s;
        record.threshold = f.threshold;
        if (f.src_asset != nullptr) {
            record.src_asset = f.src_asset->name;
            record.src_asset_classification =
                    std::string(detectors::classification_name(f.src_asset->classification));
        }
        if (f.dst_asset != nullptr) {
            record.dst_asset = f.dst_asset->name;
            record.dst_asset_classification =
                    std::string(detectors::classification_name(f.dst_asset->classification));
        }
        sink_.write_record(std::move(record), f.time_ns);
    }
}

Status BehaviourFeed::load_baselines(const std::string& state_dir) {
    auto text = read_state_file(state_dir, kBaselineFile);
    if (!text) {
        return make_error(text.error());
    }
    if (!text->has_value()) {
        return Ok{};
    }
    if (Status st = engine_->load_baselines(**text); !st) {
        auto aside = move_state_file_aside(state_dir, kBaselineFile);
        return make_error(state_dir + "/" + kBaselineFile + ": " + st.error()
                + (aside ? "; moved aside to " + *aside + ", baselines start over"
                         : "; " + aside.error()));
    }
    return Ok{};
}

Status BehaviourFeed::save_baselines(const std::string& state_dir) const {
    return write_state_file(state_dir, kBaselineFile, engine_->save_baselines());
}

}  // namespace exfiltap::control
