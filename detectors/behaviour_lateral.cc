// The behaviour engine's lateral movement and staging side: fan-out to internal hosts and
// services, SMB share enumeration, first access to sensitive assets and data pulled from
// file servers, code repositories and databases. All four key on the internal host that
// does it (the connection's client; for staging the end that receives).
#include <algorithm>
#include <cmath>
#include <string>

#include "detectors/behaviour.h"
#include "detectors/behaviour_impl.h"
#include "detectors/char_class.h"

namespace exfiltap::detectors {
namespace {

/// Sources named per host in the staging window; the least recent goes first.
constexpr size_t kMaxSources = 16;
/// Shares and sources an alert's reason names.
constexpr size_t kNamedInReason = 5;

/// Moves `b` to `window`: the figure of the window being filled and the silent windows
/// after it are folded in. Returns true when the window changed (the caller clears its
/// per-window figures).
bool roll(WindowBaseline& b, uint64_t window, double alpha, uint64_t value) {
    if (!b.started) {
        b.started = true;
        b.window = window;
        return false;
    }
    if (window <= b.window) {
        return false;
    }
    fold_ewma(b.mean, b.var, b.windows, alpha, value);
    const uint64_t silent = std::min(window - b.window - 1, kMaxZeroWindows);
    for (uint64_t i = 0; i < silent; ++i) {
        fold_ewma(b.mean, b.var, b.windows, alpha, 0);
    }
    b.window = window;
    return true;
}

/// mean + k * stddev, rounded up.
uint64_t limit_of(const WindowBaseline& b, double k) {
    return static_cast<uint64_t>(std::ceil(b.mean + k * std::sqrt(std::max(b.var, 0.0))));
}

/// Whether `value` is over the baseline: warm, at least `floor` and above mean + k * stddev.
bool over_baseline(
        const WindowBaseline& b, uint32_t warmup, double k, uint64_t floor, uint64_t value) {
    return b.windows >= warmup && value >= floor && value > limit_of(b, k);
}

/// "over 24 windows 3.2 (stddev 1.1)", or how far the warm-up is.
std::string baseline_text(
        const WindowBaseline& b, uint32_t warmup, double k, uint64_t floor, bool bytes) {
    auto figure = [&](double v) {
        return bytes ? bytes_text(static_cast<uint64_t>(v)) : double_text(std::round(v * 10) / 10);
    };
    if (b.windows < warmup) {
        return "no baseline yet (" + std::to_string(b.windows) + " of " + std::to_string(warmup)
                + " warm-up windows)";
    }
    const uint64_t limit = std::max(floor, limit_of(b, k));
    return "baseline over " + std::to_string(b.windows) + " windows " + figure(b.mean) + " (stddev "
            + figure(std::sqrt(std::max(b.var, 0.0))) + "), alert above "
            + (bytes ? bytes_text(limit) : std::to_string(limit)) + " (mean + " + double_text(k)
            + " stddev, floor " + (bytes ? bytes_text(floor) : std::to_string(floor)) + ")";
}

/// Inserts `hash` into the sorted `set` unless it is there or the set holds `cap`; true
/// when it was new and inserted.
bool insert_distinct(std::vector<uint64_t>& set, uint64_t hash, size_t cap) {
    const auto it = std::lower_bound(set.begin(), set.end(), hash);
    if ((it != set.end() && *it == hash) || set.size() >= cap) {
        return false;
    }
    set.insert(it, hash);
    return true;
}

bool is_source(const Asset* asset) {
    return asset != nullptr
            && (asset->has_role(AssetRole::FileServer) || asset->has_role(AssetRole::CodeRepository)
                    || asset->has_role(AssetRole::Database));
}

std::string_view source_role(const Asset& asset) {
    for (const AssetRole role :
            {AssetRole::FileServer, AssetRole::CodeRepository, AssetRole::Database}) {
        if (asset.has_role(role)) {
            return asset_role_name(role);
        }
    }
    return "source";
}

}  // namespace

LateralState& BehaviourEngine::Impl::lateral_of(const FlowTuple& oriented) {
    HostState& h = host(oriented.ip_version, oriented.client);
    if (!h.lateral) {
        h.lateral = std::make_unique<LateralState>();
    }
    return *h.lateral;
}

void BehaviourEngine::Impl::lateral_flow(const FlowTuple& flow, AppProto proto, uint64_t time_ns,
        uint64_t to_server, uint64_t to_client, bool first_report) {
    if (flow.ip_version == 0 || flow.client == flow.server) {
        return;
    }
    if (first_report) {
        fanout(flow, proto, time_ns);
        first_access(flow, proto, time_ns);
    }
    // Staging: what an end received from a source asset, whichever end opened the flow. An
    // end that is a source itself (replication between servers) is not staging data.
    const Asset* server_asset = asset_of(flow.ip_version, flow.server);
    const Asset* client_asset = asset_of(flow.ip_version, flow.client);
    if (to_client > 0 && is_source(server_asset) && !is_source(client_asset)) {
        staging(flow, proto, time_ns, to_client, *server_asset);
    }
    if (to_server > 0 && is_source(client_asset) && !is_source(server_asset)) {
        staging(reversed(flow), proto, time_ns, to_server, *client_asset);
    }
}

void BehaviourEngine::Impl::fanout(const FlowTuple& flow, AppProto proto, uint64_t time_ns) {
    const LateralFanoutConfig& c = config.lateral_fanout;
    if (!c.enabled) {
        return;
    }
    LateralState& l = lateral_of(flow);
    const uint64_t window = time_ns / window_ns(c.window_s);
    const uint64_t hosts_before = l.destinations.size();
    const uint64_t services_before = l.services.size();
    roll(l.services_baseline, window, c.alpha, services_before);
    if (roll(l.hosts_baseline, window, c.alpha, hosts_before)) {
        l.destinations.clear();
        l.services.clear();
    }
    const size_t cap = std::max<uint32_t>(config.limits.max_distinct_per_host, 1);
    const uint64_t dest = fnv1a(flow.server.data(), flow.server.size(), fnv1a(&flow.ip_version, 1));
    const std::array<uint16_t, 2> service{flow.proto, flow.server_port};
    const bool new_host = insert_distinct(l.destinations, dest, cap);
    const bool new_service =
            insert_distinct(l.services, fnv1a(service.data(), sizeof(service), dest), cap);
    HostState& h = host(flow.ip_version, flow.client);
    auto& rearm = h.rearm_ns[static_cast<size_t>(BehaviourDetector::LateralFanout)];
    if ((!new_host && !new_service) || time_ns < rearm) {
        return;
    }
    const uint64_t hosts = l.destinations.size();
    const uint64_t services = l.services.size();
    const bool scan_hosts = c.scan_hosts > 0 && hosts >= c.scan_hosts;
    const bool scan_services = c.scan_services > 0 && services >= c.scan_services;
    const bool base_hosts =
            over_baseline(l.hosts_baseline, c.warmup_windows, c.k, c.floor_hosts, hosts);
    const bool base_services =
            over_baseline(l.services_baseline, c.warmup_windows, c.k, c.floor_services, services);
    if (!scan_hosts && !scan_services && !base_hosts && !base_services) {
        return;
    }
    // One finding per host and window: the window's figures only grow until it closes.
    rearm = (window + 1) * window_ns(c.window_s);
    BehaviourFinding f = make(BehaviourDetector::LateralFanout, c.severity, flow, time_ns);
    f.count = hosts;
    f.window_s = c.window_s;
    if (scan_hosts || scan_services) {
        f.threshold = scan_hosts ? c.scan_hosts : c.scan_services;
    } else {
        f.threshold = base_hosts
                ? std::max<uint64_t>(c.floor_hosts, limit_of(l.hosts_baseline, c.k))
                : std::max<uint64_t>(c.floor_services, limit_of(l.services_baseline, c.k));
    }
    f.app_proto = std::string(app_proto_name(proto));
    const std::string ceiling = "scan ceiling " + std::to_string(c.scan_hosts) + " hosts or "
            + std::to_string(c.scan_services) + " services";
    f.reason = host_text(flow.ip_version, flow.client, f.src_asset) + " connected to "
            + std::to_string(hosts) + " distinct internal hosts (" + std::to_string(services)
            + " distinct host/port services) in the current " + std::to_string(c.window_s)
            + " s window" + (scan_hosts || scan_services ? ", over the " : " (") + ceiling
            + (scan_hosts || scan_services ? "; " : "); ") + "hosts: "
            + baseline_text(l.hosts_baseline, c.warmup_windows, c.k, c.floor_hosts, false)
            + "; services: "
            + baseline_text(l.services_baseline, c.warmup_windows, c.k, c.floor_services, false)
            + "; latest to " + endpoint_text(flow.ip_version, flow.server, flow.server_port);
    emit(std::move(f));
}

void BehaviourEngine::Impl::first_access(const FlowTuple& flow, AppProto proto, uint64_t time_ns) {
    const FirstAccessConfig& c = config.first_access;
    if (!c.enabled) {
        return;
    }
    const Asset* asset = asset_of(flow.ip_version, flow.server);
    if (asset == nullptr
            || (c.classifications & (1U << static_cast<unsigned>(asset->classification))) == 0
            || asset == asset_of(flow.ip_version, flow.client)) {
        return;
    }
    bool created = false;
    uint64_t& first_ns =
            accesses.touch(AccessKey{HostKey{flow.ip_version, flow.client}, asset->name}, created);
    if (!created) {
        return;
    }
    first_ns = time_ns;
    const uint64_t warm_ns = start_ns + static_cast<uint64_t>(c.warmup_s) * kNsPerS;
    if (time_ns < warm_ns) {
        return;  // learning what every host already uses
    }
    BehaviourFinding f = make(BehaviourDetector::FirstAccess, c.severity, flow, time_ns);
    f.app_proto = std::string(app_proto_name(proto));
    f.reason = address_text(flow.ip_version, flow.client) + " accessed " + asset->name + " ("
            + std::string(classification_name(asset->classification)) + ") for the first time, at "
            + endpoint_text(flow.ip_version, flow.server, flow.server_port)
            + (proto == AppProto::Unknown ? std::string() : " over " + f.app_proto)
            + " (not seen from this host in " + std::to_string((time_ns - start_ns) / kNsPerS)
            + " s of monitoring, warm-up " + std::to_string(c.warmup_s) + " s; "
            + std::to_string(accesses.size()) + " host/asset pairs remembered)";
    emit(std::move(f));
}

void BehaviourEngine::Impl::staging(const FlowTuple& oriented, AppProto proto, uint64_t time_ns,
        uint64_t received, const Asset& source) {
    const StagingConfig& c = config.staging;
    if (!c.enabled) {
        return;
    }
    LateralState& l = lateral_of(oriented);
    const uint64_t wns = window_ns(c.window_s);
    if (roll(l.staged_baseline, time_ns / wns, c.alpha, l.staged_window_bytes)) {
        l.staged_window_bytes = 0;
    }
    l.staged_window_bytes += received;
    window_of(l.staged[static_cast<size_t>(source.classification)], c.window_s)
            .add(time_ns, received);

    auto& sources = l.sources;
    sources.erase(
            std::remove_if(sources.begin(), sources.end(),
                    [&](const LateralState::Source& s) { return s.last_ns + wns <= time_ns; }),
            sources.end());
    auto it = std::find_if(sources.begin(), sources.end(),
            [&](const LateralState::Source& s) { return s.asset == source.name; });
    if (it == sources.end()) {
        if (sources.size() >= kMaxSources) {
            sources.erase(std::min_element(sources.begin(), sources.end(),
                    [](const auto& a, const auto& b) { return a.last_ns < b.last_ns; }));
        }
        sources.push_back(LateralState::Source{source.name, source.classification, 0});
        it = sources.end() - 1;
    }
    it->last_ns = time_ns;
    std::rotate(it, it + 1, sources.end());  // most recent last

    // From the most sensitive classification down: what came from sources of that
    // classification or a more sensitive one, against that classification's threshold. A
    // few bytes from a restricted database do not lower the bar for a file server's bulk.
    uint64_t total = 0;
    uint64_t over = 0;
    uint64_t threshold = 0;
    Classification by = Classification::Public;
    for (size_t i = kClassificationCount; i-- > 0;) {
        if (l.staged[i]) {
            total += l.staged[i]->total(time_ns);
        }
        const uint64_t limit = c.host_bytes[i];
        if (threshold == 0 && limit > 0 && total >= limit) {
            over = total;
            threshold = limit;
            by = static_cast<Classification>(i);
        }
    }
    HostState& h = host(oriented.ip_version, oriented.client);
    auto& rearm = h.rearm_ns[static_cast<size_t>(BehaviourDetector::Staging)];
    const bool absolute = threshold > 0;
    const bool baseline = over_baseline(
            l.staged_baseline, c.warmup_windows, c.k, c.floor_bytes, l.staged_window_bytes);
    if ((!absolute && !baseline) || time_ns < rearm) {
        return;
    }
    rearm = time_ns + wns;
    BehaviourFinding f = make(BehaviourDetector::Staging, c.severity, oriented, time_ns);
    f.bytes = absolute ? over : l.staged_window_bytes;
    f.count = sources.size();
    f.window_s = c.window_s;
    f.threshold = absolute ? threshold : std::max(c.floor_bytes, limit_of(l.staged_baseline, c.k));
    f.app_proto = std::string(app_proto_name(proto));
    std::string named;
    for (size_t i = 0; i < sources.size() && i < kNamedInReason; ++i) {
        const LateralState::Source& s = sources[sources.size() - 1 - i];  // newest first
        named += (i == 0 ? "" : ", ") + s.asset + " ("
                + std::string(classification_name(s.classification)) + ")";
    }
    if (sources.size() > kNamedInReason) {
        named += " and " + std::to_string(sources.size() - kNamedInReason) + " more";
    }
    f.reason = host_text(oriented.ip_version, oriented.client, f.src_asset) + " received "
            + bytes_text(total) + " in " + std::to_string(c.window_s)
            + " s from file servers, code repositories and databases: " + named + "; "
            + (absolute ? bytes_text(over) + " of it from " + std::string(classification_name(by))
                                    + " or more sensitive sources, threshold "
                                    + bytes_text(threshold)
                        : std::string("under the absolute thresholds"))
            + "; this window " + bytes_text(l.staged_window_bytes) + ", "
            + baseline_text(l.staged_baseline, c.warmup_windows, c.k, c.floor_bytes, true)
            + "; latest from " + source.name + " (" + std::string(source_role(source)) + ") at "
            + endpoint_text(oriented.ip_version, oriented.server, oriented.server_port);
    emit(std::move(f));
}

void BehaviourEngine::Impl::tree_connect(
        const FlowTuple& flow, uint64_t time_ns, const AppEvent& ev) {
    const ShareEnumerationConfig& c = config.share_enumeration;
    if (!c.enabled || !is_internal(flow.ip_version, flow.client)) {
        return;
    }
    std::string path(ev.name_view());
    std::transform(path.begin(), path.end(), path.begin(), to_lower);
    // IPC$ carries DCE/RPC for every client, not files.
    if (path.empty() || path == "ipc$" || path.ends_with("\\ipc$")) {
        return;
    }
    LateralState& l = lateral_of(flow);
    const uint64_t wns = window_ns(c.window_s);
    auto& shares = l.shares;
    shares.erase(std::remove_if(shares.begin(), shares.end(),
                         [&](const LateralState::Share& s) { return s.last_ns + wns <= time_ns; }),
            shares.end());
    auto it = std::find_if(shares.begin(), shares.end(),
            [&](const LateralState::Share& s) { return s.path == path; });
    if (it != shares.end()) {
        it->last_ns = time_ns;
        ++it->requests;
    } else {
        if (shares.size() >= std::max<uint32_t>(config.limits.max_shares_per_host, 1)) {
            shares.erase(std::min_element(shares.begin(), shares.end(),
                    [](const auto& a, const auto& b) { return a.last_ns < b.last_ns; }));
        }
        shares.push_back(LateralState::Share{path, time_ns, 1});
    }
    HostState& h = host(flow.ip_version, flow.client);
    auto& rearm = h.rearm_ns[static_cast<size_t>(BehaviourDetector::ShareEnumeration)];
    if (c.shares == 0 || shares.size() < c.shares || time_ns < rearm) {
        return;
    }
    rearm = time_ns + wns;
    uint64_t requests = 0;
    std::string named;
    for (size_t i = 0; i < shares.size(); ++i) {
        requests += shares[i].requests;
        if (i < kNamedInReason) {
            named += (i == 0 ? "" : ", ") + shares[i].path;
        }
    }
    if (shares.size() > kNamedInReason) {
        named += " and " + std::to_string(shares.size() - kNamedInReason) + " more";
    }
    BehaviourFinding f = make(BehaviourDetector::ShareEnumeration, c.severity, flow, time_ns);
    f.count = shares.size();
    f.window_s = c.window_s;
    f.threshold = c.shares;
    f.app_proto = std::string(app_proto_name(AppProto::Smb));
    f.reason = address_text(flow.ip_version, flow.client) + " connected to "
            + std::to_string(shares.size()) + " distinct SMB shares (" + std::to_string(requests)
            + " tree connects) in " + std::to_string(c.window_s) + " s (threshold "
            + std::to_string(c.shares) + "): " + named + "; latest on "
            + endpoint_text(flow.ip_version, flow.server, flow.server_port);
    emit(std::move(f));
}

}  // namespace exfiltap::detectors
