// The behaviour engine's flow volume side: external uploads, internal transfers, encrypted
// asymmetry and per-host baselines. Application events are in behaviour_app.cc, the saved
// state in behaviour_state.cc.
#include "detectors/behaviour.h"

#include <arpa/inet.h>
#include <sys/socket.h>

#include <algorithm>
#include <charconv>
#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <utility>

#include "detectors/behaviour_impl.h"

namespace exfiltap::detectors {
namespace {

std::string sni_text(std::string_view sni) {
    return sni.empty() ? std::string() : " (TLS server name " + std::string(sni) + ")";
}

void fold(Baseline& b, double alpha, uint64_t value) {
    fold_ewma(b.mean, b.var, b.windows, alpha, value);
}

}  // namespace

uint64_t window_ns(uint32_t window_s) {
    return static_cast<uint64_t>(std::max<uint32_t>(window_s, 1)) * kNsPerS;
}

std::string endpoint_text(uint8_t ip_version, const std::array<uint8_t, 16>& addr, uint16_t port) {
    const std::string text = address_text(ip_version, addr);
    return ip_version == 6 ? "[" + text + "]:" + std::to_string(port)
                           : text + ":" + std::to_string(port);
}

std::string host_text(uint8_t ip_version, const std::array<uint8_t, 16>& addr, const Asset* asset) {
    std::string text = address_text(ip_version, addr);
    if (asset != nullptr) {
        text += " (asset " + asset->name + ", "
                + std::string(classification_name(asset->classification)) + ")";
    }
    return text;
}

std::string double_text(double value) {
    std::array<char, 64> buf{};
    const auto [end, ec] = std::to_chars(buf.data(), buf.data() + buf.size(), value);
    return ec == std::errc() ? std::string(buf.data(), end) : std::string("0");
}

void fold_ewma(double& mean, double& var, uint32_t& windows, double alpha, uint64_t value) {
    const auto v = static_cast<double>(value);
    if (windows == 0) {
        mean = v;
        var = 0.0;
    } else {
        // West's incremental EWMA of mean and variance.
        const double diff = v - mean;
        const double incr = alpha * diff;
        mean += incr;
        var = (1.0 - alpha) * (var + diff * incr);
    }
    if (windows < UINT32_MAX) {
        ++windows;
    }
}

std::string address_text(uint8_t ip_version, const std::array<uint8_t, 16>& addr) {
    std::array<char, INET6_ADDRSTRLEN> buf{};
    const int family = ip_version == 6 ? AF_INET6 : AF_INET;
    if (inet_ntop(family, addr.data(), buf.data(), buf.size()) == nullptr) {
        return "?";
    }
    return std::string(buf.data());
}

std::string bytes_text(uint64_t bytes) {
    static constexpr std::array<std::pair<uint64_t, std::string_view>, 4> kUnits = {{
            {1000ULL * 1000 * 1000 * 1000, "TB"},
            {1000ULL * 1000 * 1000, "GB"},
            {1000ULL * 1000, "MB"},
            {1000ULL, "KB"},
    }};
    for (const auto& [unit, name] : kUnits) {
        if (bytes >= unit) {
            const uint64_t tenths = bytes / (unit / 10);
            std::string text = std::to_string(tenths / 10);
            if (tenths % 10 != 0) {
                text += "." + std::to_string(tenths % 10);
            }
            return text + " " + std::string(name);
        }
    }
    return std::to_string(bytes) + (bytes == 1 ? " byte" : " bytes");
}

FlowTuple reversed(const FlowTuple& flow) {
    FlowTuple out = flow;
    std::swap(out.client, out.server);
    std::swap(out.client_port, out.server_port);
    return out;
}

// ---- BucketWindow ----

BucketWindow::BucketWindow(uint32_t window_s)
    : window_s_(window_s),
      bucket_ns_(std::max<uint64_t>(window_ns(window_s) / kBuckets, kNsPerS)) {}

void BucketWindow::roll(uint64_t index) {
    if (!started_) {
        started_ = true;
        head_ = index;
        return;
    }
    if (index <= head_) {
        return;
    }
    if (index - head_ >= kBuckets) {
        buckets_.fill(0);
        total_ = 0;
    } else {
        for (uint64_t i = head_ + 1; i <= index; ++i) {
            total_ -= buckets_[i % kBuckets];
            buckets_[i % kBuckets] = 0;
        }
    }
    head_ = index;
}

void BucketWindow::add(uint64_t time_ns, uint64_t value) {
    roll(time_ns / bucket_ns_);
    buckets_[head_ % kBuckets] += value;
    total_ += value;
}

uint64_t BucketWindow::total(uint64_t time_ns) {
    roll(time_ns / bucket_ns_);
    return total_;
}

BucketWindow& window_of(std::unique_ptr<BucketWindow>& slot, uint32_t window_s) {
    if (!slot || slot->window_s() != window_s) {
        slot = std::make_unique<BucketWindow>(window_s);
    }
    return *slot;
}

// ---- Impl: shared helpers ----

BehaviourEngine::Impl::Impl(const BehaviourConfig& cfg, const AssetInventory* inventory,
        std::vector<AddressPrefix> internal_networks, std::vector<SanctionedRange> ranges)
    : config(cfg),
      assets(inventory),
      internal(std::move(internal_networks)),
      sanctioned(std::move(ranges)),
      hosts(cfg.limits.max_hosts),
      flows(cfg.limits.max_flows),
      logins(cfg.limits.max_login_keys),
      accesses(cfg.limits.max_first_access_pairs),
      dns(cfg.dns_tunnel, cfg.limits.max_domains) {}

bool BehaviourEngine::Impl::is_internal(
        uint8_t ip_version, const std::array<uint8_t, 16>& addr) const {
    return std::any_of(internal.begin(), internal.end(),
            [&](const AddressPrefix& p) { return prefix_contains(p, ip_version, addr); });
}

const SanctionedRange* BehaviourEngine::Impl::sanctioned_of(const FlowTuple& flow) const {
    for (const SanctionedRange& range : sanctioned) {
        if (prefix_contains(range.prefix, flow.ip_version, flow.client)
                || prefix_contains(range.prefix, flow.ip_version, flow.server)) {
            return &range;
        }
    }
    return nullptr;
}

const Asset* BehaviourEngine::Impl::asset_of(
        uint8_t ip_version, const std::array<uint8_t, 16>& addr) const {
    return assets == nullptr ? nullptr : assets->find(ip_version, addr);
}

BehaviourFinding BehaviourEngine::Impl::make(
        BehaviourDetector id, Severity severity, const FlowTuple& flow, uint64_t time_ns) const {
    BehaviourFinding f;
    f.id = id;
    f.detector = std::string(behaviour_detector_name(id));
    f.severity = severity;
    f.flow = flow;
    f.time_ns = time_ns;
    f.count = 1;
    f.src_asset = asset_of(flow.ip_version, flow.client);
    f.dst_asset = asset_of(flow.ip_version, flow.server);
    return f;
}

void BehaviourEngine::Impl::emit(BehaviourFinding finding) {
    ++finding_counts[static_cast<size_t>(finding.id)];
    findings.push_back(std::move(finding));
}

void BehaviourEngine::Impl::apply_limits() {
    hosts.set_capacity(config.limits.max_hosts);
    flows.set_capacity(config.limits.max_flows);
    logins.set_capacity(config.limits.max_login_keys);
    accesses.set_capacity(config.limits.max_first_access_pairs);
}

HostState& BehaviourEngine::Impl::host(uint8_t ip_version, const std::array<uint8_t, 16>& addr) {
    return hosts.touch(HostKey{ip_version, addr});
}

// ---- Impl: time and baselines ----

uint64_t BehaviourEngine::Impl::take_time(uint64_t time_ns) {
    if (!have_time) {
        have_time = true;
        now_ns = time_ns;
        // A loaded state keeps its start: first_access's warm-up goes on across restarts.
        start_ns = saved_start_ns != 0 ? std::min(saved_start_ns, time_ns) : time_ns;
        baseline_window = time_ns / window_ns(config.baseline_deviation.window_s);
        // Baselines loaded before the first packet start with the window running now.
        hosts.for_each(
                [&](const HostKey&, HostState& host) { host.baseline.window = baseline_window; });
        return time_ns;
    }
    if (time_ns < now_ns) {
        ++late_events;
        return now_ns;
    }
    now_ns = time_ns;
    return time_ns;
}

void BehaviourEngine::Impl::advance(uint64_t time_ns) {
    const uint64_t t = take_time(time_ns);
    const uint64_t window = t / window_ns(config.baseline_deviation.window_s);
    if (window > baseline_window) {
        close_baselines(window);
        baseline_window = window;
    }
}

void BehaviourEngine::Impl::close_baselines(uint64_t window) {
    hosts.for_each([&](const HostKey& key, HostState& host) {
        if (host.baseline.started) {
            close_baseline(host, key, window);
        }
    });
}

void BehaviourEngine::Impl::close_baseline(HostState& host, const HostKey& key, uint64_t window) {
    Baseline& b = host.baseline;
    if (b.window >= window) {
        return;
    }
    const BaselineDeviationConfig& c = config.baseline_deviation;
    const uint64_t value = b.bytes;
    const double stddev = std::sqrt(std::max(b.var, 0.0));
    const double limit = b.mean + c.k * stddev;
    if (!b.partial && c.enabled && b.windows >= c.warmup_windows && value >= c.floor_bytes
            && static_cast<double>(value) > limit) {
        BehaviourFinding f = make(
                BehaviourDetector::BaselineDeviation, c.severity, host.last_external_flow, now_ns);
        f.bytes = value;
        f.window_s = c.window_s;
        f.threshold = std::max(c.floor_bytes, static_cast<uint64_t>(std::ceil(limit)));
        f.app_proto = std::string(app_proto_name(host.last_external_proto));
        f.reason = host_text(key.ip_version, key.addr, f.src_asset) + " sent " + bytes_text(value)
                + " to external hosts in a " + std::to_string(c.window_s)
                + " s window; its baseline over " + std::to_string(b.windows) + " windows is "
                + bytes_text(static_cast<uint64_t>(b.mean)) + " (stddev "
                + bytes_text(static_cast<uint64_t>(stddev)) + "), alert above "
                + bytes_text(f.threshold) + " (mean + " + double_text(c.k) + " stddev, floor "
                + bytes_text(c.floor_bytes) + ")";
        emit(std::move(f));
    }
    if (!b.partial) {
        fold(b, c.alpha, value);
    }
    b.partial = false;
    const uint64_t silent = std::min(window - b.window - 1, kMaxZeroWindows);
    for (uint64_t i = 0; i < silent; ++i) {
        fold(b, c.alpha, 0);
    }
    b.window = window;
    b.bytes = 0;
}

// ---- Impl: flow bytes ----

void BehaviourEngine::Impl::on_flow_bytes(const FlowTuple& flow, AppProto proto,
        std::string_view sni, uint64_t time_ns, uint64_t to_server, uint64_t to_client,
        bool ended) {
    advance(time_ns);
    const uint64_t t = now_ns;
    const bool client_inside = is_internal(flow.ip_version, flow.client);
    const bool server_inside = is_internal(flow.ip_version, flow.server);
    // Transit between two outside addresses, outside clients of inside servers (unless
    // include_served) and sanctioned services are not this engine's business (content
    // detection still sees them on the worker).
    const bool relevant = client_inside || (server_inside && config.external_upload.include_served);
    if (relevant && sanctioned_of(flow) == nullptr) {
        FlowState& state = flows.touch(flow);
        state.to_server += to_server;
        state.to_client += to_client;
        if (client_inside && server_inside) {
            internal_bytes(flow, proto, t, to_server, to_client, &state);
            lateral_flow(flow, proto, t, to_server, to_client, !state.lateral_counted);
            state.lateral_counted = true;
        } else {
            const uint64_t sent = client_inside ? to_server : to_client;
            const uint64_t flow_sent = client_inside ? state.to_server : state.to_client;
            if (sent > 0 || flow_sent > 0) {
                external_bytes(flow, proto, sni, t, sent);
            }
            if (config.external_upload.enabled && config.external_upload.flow_bytes > 0
                    && flow_sent >= config.external_upload.flow_bytes && !state.upload_fired) {
                state.upload_fired = true;
                const ExternalUploadConfig& c = config.external_upload;
                BehaviourFinding f = make(BehaviourDetector::ExternalUpload, c.severity, flow, t);
                f.bytes = flow_sent;
                f.threshold = c.flow_bytes;
                f.app_proto = std::string(app_proto_name(proto));
                f.sni = std::string(sni);
                const bool in = client_inside;
                f.reason = host_text(flow.ip_version, in ? flow.client : flow.server,
                                   in ? f.src_asset : f.dst_asset)
                        + " sent " + bytes_text(flow_sent) + " to external "
                        + (in ? endpoint_text(flow.ip_version, flow.server, flow.server_port)
                              : endpoint_text(flow.ip_version, flow.client, flow.client_port))
                        + " in one " + f.app_proto + " flow" + sni_text(sni) + " (threshold "
                        + bytes_text(c.flow_bytes) + " per flow)";
                emit(std::move(f));
            }
            asymmetry(flow, proto, sni, t, state, client_inside);
        }
    }
    if (ended) {
        flows.erase(flow);
    }
}

void BehaviourEngine::Impl::external_bytes(const FlowTuple& flow, AppProto proto,
        std::string_view sni, uint64_t time_ns, uint64_t bytes) {
    const bool client_inside = is_internal(flow.ip_version, flow.client);
    const FlowTuple oriented = client_inside ? flow : reversed(flow);
    const HostKey key{oriented.ip_version, oriented.client};
    HostState& h = host(key.ip_version, key.addr);

    Baseline& b = h.baseline;
    if (!b.started) {
        b = Baseline{};
        b.started = true;
        b.window = baseline_window;
    } else if (b.window < baseline_window) {
        close_baseline(h, key, baseline_window);
    }
    b.bytes += bytes;
    h.last_external_flow = oriented;
    h.last_external_proto = proto;

    const ExternalUploadConfig& c = config.external_upload;
    if (!c.enabled) {
        return;
    }
    BucketWindow& w = window_of(h.external, c.window_s);
    w.add(time_ns, bytes);
    const uint64_t total = w.total(time_ns);
    const Asset* asset = asset_of(key.ip_version, key.addr);
    const Classification cls = asset != nullptr ? asset->classification : Classification::Internal;
    const uint64_t threshold = c.host_bytes[static_cast<size_t>(cls)];
    auto& rearm = h.rearm_ns[static_cast<size_t>(BehaviourDetector::ExternalUpload)];
    if (threshold == 0 || total < threshold || time_ns < rearm) {
        return;
    }
    rearm = time_ns + window_ns(c.window_s);
    BehaviourFinding f = make(BehaviourDetector::ExternalUpload, c.severity, oriented, time_ns);
    f.bytes = total;
    f.window_s = c.window_s;
    f.threshold = threshold;
    f.app_proto = std::string(app_proto_name(proto));
    f.sni = std::string(sni);
    f.reason = host_text(key.ip_version, key.addr, asset) + " sent " + bytes_text(total)
            + " to external hosts in " + std::to_string(c.window_s) + " s (threshold "
            + bytes_text(threshold) + " for " + std::string(classification_name(cls))
            + " assets); latest to "
            + endpoint_text(oriented.ip_version, oriented.server, oriented.server_port)
            + sni_text(sni);
    emit(std::move(f));
}

void BehaviourEngine::Impl::internal_bytes(const FlowTuple& flow, AppProto proto, uint64_t time_ns,
        uint64_t to_server, uint64_t to_client, FlowState* state) {
    const InternalTransferConfig& c = config.internal_transfer;
    if (!c.enabled) {
        return;
    }
    const uint64_t total = state->to_server + state->to_client;
    if (c.flow_bytes > 0 && total >= c.flow_bytes && !state->transfer_fired) {
        state->transfer_fired = true;
        BehaviourFinding f = make(BehaviourDetector::InternalTransfer, c.severity, flow, time_ns);
        f.bytes = total;
        f.threshold = c.flow_bytes;
        f.app_proto = std::string(app_proto_name(proto));
        f.reason = host_text(flow.ip_version, flow.client, f.src_asset) + " and "
                + endpoint_text(flow.ip_version, flow.server, flow.server_port)
                + (f.dst_asset != nullptr ? " (asset " + f.dst_asset->name + ")" : "") + " moved "
                + bytes_text(total) + " in one " + f.app_proto + " flow ("
                + bytes_text(state->to_server) + " to the server, " + bytes_text(state->to_client)
                + " back; threshold " + bytes_text(c.flow_bytes) + " per flow)";
        emit(std::move(f));
    }
    if (c.host_bytes == 0) {
        return;
    }
    // Per host, what it received: staging collects data from many internal sources.
    const std::array<std::pair<bool, uint64_t>, 2> sides = {
            std::pair{true, to_client}, std::pair{false, to_server}};
    for (const auto& [client_side, received] : sides) {
        if (received == 0) {
            continue;
        }
        const FlowTuple oriented = client_side ? flow : reversed(flow);
        HostState& h = host(oriented.ip_version, oriented.client);
        BucketWindow& w = window_of(h.internal_rx, c.window_s);
        w.add(time_ns, received);
        const uint64_t sum = w.total(time_ns);
        auto& rearm = h.rearm_ns[static_cast<size_t>(BehaviourDetector::InternalTransfer)];
        if (sum < c.host_bytes || time_ns < rearm) {
            continue;
        }
        rearm = time_ns + window_ns(c.window_s);
        BehaviourFinding f =
                make(BehaviourDetector::InternalTransfer, c.severity, oriented, time_ns);
        f.bytes = sum;
        f.window_s = c.window_s;
        f.threshold = c.host_bytes;
        f.app_proto = std::string(app_proto_name(proto));
        f.reason = host_text(oriented.ip_version, oriented.client, f.src_asset) + " received "
                + bytes_text(sum) + " from internal hosts in " + std::to_string(c.window_s)
                + " s (threshold " + bytes_text(c.host_bytes) + "); latest from "
                + endpoint_text(oriented.ip_version, oriented.server, oriented.server_port);
        emit(std::move(f));
    }
}

void BehaviourEngine::Impl::asymmetry(const FlowTuple& flow, AppProto proto, std::string_view sni,
        uint64_t time_ns, FlowState& state, bool client_inside) {
    const EncryptedAsymmetryConfig& c = config.encrypted_asymmetry;
    if (!c.enabled || !client_inside || state.asymmetry_fired
            || (proto != AppProto::Tls && proto != AppProto::Ssh && proto != AppProto::Unknown)) {
        return;
    }
    const uint64_t sent = state.to_server;
    const uint64_t received = state.to_client;
    const uint64_t ratio = sent / std::max<uint64_t>(received, 1);
    if (sent < c.min_bytes || ratio < c.ratio) {
        return;
    }
    state.asymmetry_fired = true;
    BehaviourFinding f = make(BehaviourDetector::EncryptedAsymmetry, c.severity, flow, time_ns);
    f.bytes = sent;
    f.count = ratio;
    f.threshold = c.min_bytes;
    f.app_proto = std::string(app_proto_name(proto));
    f.sni = std::string(sni);
    f.reason = host_text(flow.ip_version, flow.client, f.src_asset) + " sent " + bytes_text(sent)
            + " and received " + bytes_text(received) + " (ratio " + std::to_string(ratio)
            + ":1) over " + f.app_proto + " with external "
            + endpoint_text(flow.ip_version, flow.server, flow.server_port) + sni_text(sni)
            + " (thresholds " + bytes_text(c.min_bytes) + " and " + std::to_string(c.ratio) + ":1)";
    emit(std::move(f));
}

// ---- BehaviourEngine ----

BehaviourEngine::BehaviourEngine(const BehaviourConfig& config, const AssetInventory* assets,
        std::vector<AddressPrefix> internal_networks, std::vector<SanctionedRange> sanctioned)
    : impl_(std::make_unique<Impl>(
            config, assets, std::move(internal_networks), std::move(sanctioned))) {}

BehaviourEngine::~BehaviourEngine() = default;

void BehaviourEngine::on_flow_bytes(const FlowTuple& flow, AppProto proto, std::string_view sni,
        uint64_t time_ns, uint64_t to_server_bytes, uint64_t to_client_bytes, bool ended) {
    impl_->on_flow_bytes(flow, proto, sni, time_ns, to_server_bytes, to_client_bytes, ended);
}

void BehaviourEngine::on_app_event(const FlowTuple& flow, uint64_t time_ns, const AppEvent& event) {
    impl_->on_app_event(flow, time_ns, event);
}

void BehaviourEngine::advance(uint64_t time_ns) {
    impl_->advance(time_ns);
}

std::vector<BehaviourFinding> BehaviourEngine::take_findings() {
    std::vector<BehaviourFinding> out;
    out.swap(impl_->findings);
    return out;
}

void BehaviourEngine::reconfigure(const BehaviourConfig& config, const AssetInventory* assets,
        std::vector<AddressPrefix> internal_networks, std::vector<SanctionedRange> sanctioned) {
    Impl& i = *impl_;
    const bool baseline_window_changed =
            config.baseline_deviation.window_s != i.config.baseline_deviation.window_s;
    const bool lateral_window_changed =
            config.lateral_fanout.window_s != i.config.lateral_fanout.window_s
            || config.staging.window_s != i.config.staging.window_s;
    i.config = config;
    i.assets = assets;
    i.internal = std::move(internal_networks);
    i.sanctioned = std::move(sanctioned);
    i.apply_limits();
    i.dns.reconfigure(config.dns_tunnel, config.limits.max_domains);
    if (baseline_window_changed) {
        i.hosts.for_each([&](const HostKey&, HostState& host) {
            if (host.baseline.started) {
                ++i.baseline_resets;
            }
            host.baseline = Baseline{};
        });
        i.baseline_window = i.now_ns / window_ns(config.baseline_deviation.window_s);
    }
    if (lateral_window_changed) {
        // Fan-out and staging baselines of another window length mean nothing now.
        i.hosts.for_each([&](const HostKey&, HostState& host) {
            if (host.lateral) {
                ++i.baseline_resets;
                host.lateral.reset();
            }
        });
    }
}

BehaviourStats BehaviourEngine::stats() const {
    BehaviourStats s;
    s.hosts = impl_->hosts.size();
    s.flows = impl_->flows.size();
    s.domains = impl_->dns.domains();
    s.login_keys = impl_->logins.size();
    s.host_evictions = impl_->hosts.evictions();
    s.flow_evictions = impl_->flows.evictions();
    s.domain_evictions = impl_->dns.evictions();
    s.login_evictions = impl_->logins.evictions();
    s.access_pairs = impl_->accesses.size();
    s.access_pair_evictions = impl_->accesses.evictions();
    s.findings = impl_->finding_counts;
    s.late_events = impl_->late_events;
    s.baseline_resets = impl_->baseline_resets;
    s.public_suffix_rules = impl_->dns.suffix_rules();
    s.public_suffix_warning = impl_->dns.suffix_warning();
    return s;
}

}  // namespace exfiltap::detectors
