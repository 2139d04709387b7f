// Inside the behaviour engine (detectors/behaviour.h): its tables and helpers, shared by
// behaviour.cc (volume, asymmetry, baselines, persistence) and behaviour_app.cc (archives,
// file writes, logins, mail, DNS). Not for other users.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "detectors/behaviour.h"
#include "detectors/dns_tunnel.h"
#include "detectors/lru_map.h"

namespace exfiltap::detectors {

inline constexpr uint64_t kNsPerS = 1000000000ULL;
/// Windows of silence folded into a baseline at most: after this many the mean is close to
/// zero anyway, and a host back after months costs no long loop.
inline constexpr uint64_t kMaxZeroWindows = 64;

/// A sliding window sum of kBuckets buckets of window_s / kBuckets seconds (at least 1 s);
/// the sum covers the current bucket and the kBuckets - 1 before it.
class BucketWindow {
public:
    static constexpr size_t kBuckets = 60;

    explicit BucketWindow(uint32_t window_s);
    void add(uint64_t time_ns, uint64_t value);
    uint64_t total(uint64_t time_ns);
    uint32_t window_s() const noexcept { return window_s_; }

private:
    void roll(uint64_t index);

    uint32_t window_s_;
    uint64_t bucket_ns_;
    uint64_t head_ = 0;
    bool started_ = false;
    uint64_t total_ = 0;
    std::array<uint64_t, kBuckets> buckets_{};
};

struct HostKey {
    uint8_t ip_version = 4;
    std::array<uint8_t, 16> addr{};
    bool operator==(const HostKey&) const = default;
};
struct HostKeyHash {
    size_t operator()(const HostKey& key) const noexcept {
        return static_cast<size_t>(
                fnv1a(key.addr.data(), key.addr.size(), fnv1a(&key.ip_version, 1)));
    }
};

/// EWMA of a host's external upload bytes per fixed window.
struct Baseline {
    bool started = false;  // the host has sent external bytes at least once
    uint64_t window = 0;   // index (time / window) of the window being filled
    uint64_t bytes = 0;    // bytes of that window so far
    uint32_t windows = 0;  // closed windows folded into mean and var
    double mean = 0.0;
    double var = 0.0;
    /// Loaded from a saved state: the window being filled began before the restart, so
    /// its (partial) bytes are dropped at its close instead of folded in.
    bool partial = false;
};

/// EWMA mean and variance of one figure per aligned window (lateral_fanout's distinct
/// counts, staging's bytes), folded lazily when the host is next seen in a later window.
struct WindowBaseline {
    bool started = false;
    uint64_t window = 0;   // index (time / window) of the window being filled
    uint32_t windows = 0;  // closed windows folded in
    double mean = 0.0;
    double var = 0.0;
};

/// A host's lateral movement and staging state (behaviour_lateral.cc), made on first use.
struct LateralState {
    // lateral_fanout: hashes of the destinations and services of the window being filled,
    // sorted, each at most limits.max_distinct_per_host long.
    std::vector<uint64_t> destinations;
    std::vector<uint64_t> services;
    WindowBaseline hosts_baseline;
    WindowBaseline services_baseline;
    // share_enumeration: the shares of the sliding window.
    struct Share {
        std::string path;  // lower case
        uint64_t last_ns = 0;
        uint32_t requests = 0;
    };
    std::vector<Share> shares;
    // staging: bytes received from source assets, sliding per source classification (made
    // for the classifications in use) and per aligned window (baseline), and the sources
    // seen in the sliding window.
    std::array<std::unique_ptr<BucketWindow>, kClassificationCount> staged;
    uint64_t staged_window_bytes = 0;
    WindowBaseline staged_baseline;
    struct Source {
        std::string asset;
        Classification classification = Classification::Internal;
        uint64_t last_ns = 0;
    };
    std::vector<Source> sources;
};

struct HostState {
    std::unique_ptr<BucketWindow> external;     // sent to external hosts
    std::unique_ptr<BucketWindow> internal_rx;  // received from internal hosts
    std::unique_ptr<BucketWindow> mail_count;   // messages with attachments to outside
    std::unique_ptr<BucketWindow> mail_bytes;   // their attachment bytes
    Baseline baseline;
    /// Per detector: no new host-level finding before this time (one per window).
    std::array<uint64_t, kBehaviourDetectorCount> rearm_ns{};
    /// The latest flow that added to the baseline, turned so the host is the client.
    FlowTuple last_external_flow;
    AppProto last_external_proto = AppProto::Unknown;
    std::unique_ptr<LateralState> lateral;
};

struct FlowHash {
    size_t operator()(const FlowTuple& f) const noexcept {
        uint64_t h = fnv1a(&f.flow_id, sizeof(f.flow_id));
        h = fnv1a(f.client.data(), f.client.size(), h);
        h = fnv1a(f.server.data(), f.server.size(), h);
        const std::array<uint16_t, 2> ports{f.client_port, f.server_port};
        h = fnv1a(ports.data(), sizeof(ports), h);
        const std::array<uint8_t, 2> kinds{f.ip_version, f.proto};
        return static_cast<size_t>(fnv1a(kinds.data(), kinds.size(), h));
    }
};

struct FlowState {
    uint64_t to_server = 0;
    uint64_t to_client = 0;
    bool upload_fired = false;
    bool transfer_fired = false;
    bool asymmetry_fired = false;
    /// Counted by lateral_fanout and first_access: a connection counts once, not again with
    /// each byte report or its final report (which may come in a later window).
    bool lateral_counted = false;
};

enum class LoginKeyKind : uint8_t {
    Service = 0,  // internal server address + protocol
    User = 1,     // user name
    Source = 2,   // external client address
};

struct LoginKey {
    LoginKeyKind kind = LoginKeyKind::Service;
    AppProto proto = AppProto::Unknown;
    uint8_t ip_version = 0;
    std::array<uint8_t, 16> addr{};
    std::string user;
    bool operator==(const LoginKey&) const = default;
};
struct LoginKeyHash {
    size_t operator()(const LoginKey& k) const noexcept {
        const std::array<uint8_t, 3> kinds{
                static_cast<uint8_t>(k.kind), static_cast<uint8_t>(k.proto), k.ip_version};
        uint64_t h = fnv1a(kinds.data(), kinds.size());
        h = fnv1a(k.addr.data(), k.addr.size(), h);
        return static_cast<size_t>(fnv1a(k.user.data(), k.user.size(), h));
    }
};

struct LoginSource {
    uint8_t ip_version = 0;
    std::array<uint8_t, 16> addr{};
    uint64_t last_ns = 0;
};

struct LoginState {
    std::vector<LoginSource> sources;  // Service and User keys
    std::vector<uint64_t> failures;    // Source keys: failure times in the window
    std::vector<uint64_t> attempts;    // Source keys: outcome-less login times
    uint64_t rearm_ns = 0;
    uint64_t success_rearm_ns = 0;
    uint64_t attempts_rearm_ns = 0;
};

/// first_access: an internal host and an asset it reached.
struct AccessKey {
    HostKey host;
    std::string asset;
    bool operator==(const AccessKey&) const = default;
};
struct AccessKeyHash {
    size_t operator()(const AccessKey& k) const noexcept {
        return static_cast<size_t>(fnv1a(k.asset.data(), k.asset.size(), HostKeyHash{}(k.host)));
    }
};

struct BehaviourEngine::Impl {
    Impl(const BehaviourConfig& config, const AssetInventory* assets,
            std::vector<AddressPrefix> internal_networks, std::vector<SanctionedRange> sanctioned);

    // behaviour.cc
    uint64_t take_time(uint64_t time_ns);
    void advance(uint64_t time_ns);
    void close_baselines(uint64_t window);
    void close_baseline(HostState& host, const HostKey& key, uint64_t window);
    void on_flow_bytes(const FlowTuple& flow, AppProto proto, std::string_view sni,
            uint64_t time_ns, uint64_t to_server, uint64_t to_client, bool ended);
    void external_bytes(const FlowTuple& oriented, AppProto proto, std::string_view sni,
            uint64_t time_ns, uint64_t bytes);
    void internal_bytes(const FlowTuple& flow, AppProto proto, uint64_t time_ns, uint64_t to_server,
            uint64_t to_client, FlowState* state);
    void asymmetry(const FlowTuple& flow, AppProto proto, std::string_view sni, uint64_t time_ns,
            FlowState& state, bool client_inside);
    HostState& host(uint8_t ip_version, const std::array<uint8_t, 16>& addr);

    // behaviour_lateral.cc
    /// `first_report`: the flow's first report to the engine (fan-out and first access count
    /// connections, staging counts bytes of every report).
    void lateral_flow(const FlowTuple& flow, AppProto proto, uint64_t time_ns, uint64_t to_server,
            uint64_t to_client, bool first_report);
    void fanout(const FlowTuple& flow, AppProto proto, uint64_t time_ns);
    void first_access(const FlowTuple& flow, AppProto proto, uint64_t time_ns);
    void staging(const FlowTuple& oriented, AppProto proto, uint64_t time_ns, uint64_t received,
            const Asset& source);
    void tree_connect(const FlowTuple& flow, uint64_t time_ns, const AppEvent& event);
    LateralState& lateral_of(const FlowTuple& oriented);

    // behaviour_app.cc
    void on_app_event(const FlowTuple& flow, uint64_t time_ns, const AppEvent& event);
    void archive(const FlowTuple& flow, uint64_t time_ns, const AppEvent& event);
    void file_write(const FlowTuple& flow, uint64_t time_ns, const AppEvent& event);
    void login(const FlowTuple& flow, uint64_t time_ns, const AppEvent& event);
    void mail(const FlowTuple& flow, uint64_t time_ns, const AppEvent& event);
    void dns_query(const FlowTuple& flow, uint64_t time_ns, const AppEvent& event);
    /// Records a source for a Service or User key; the number of distinct sources in the
    /// window.
    size_t note_source(LoginState& state, const FlowTuple& flow, uint64_t time_ns);

    // shared
    bool is_internal(uint8_t ip_version, const std::array<uint8_t, 16>& addr) const;
    const SanctionedRange* sanctioned_of(const FlowTuple& flow) const;
    const Asset* asset_of(uint8_t ip_version, const std::array<uint8_t, 16>& addr) const;
    BehaviourFinding make(
            BehaviourDetector id, Severity severity, const FlowTuple& flow, uint64_t time_ns) const;
    void emit(BehaviourFinding finding);
    void apply_limits();

    BehaviourConfig config;
    const AssetInventory* assets = nullptr;
    std::vector<AddressPrefix> internal;
    std::vector<SanctionedRange> sanctioned;
    LruMap<HostKey, HostState, HostKeyHash> hosts;
    LruMap<FlowTuple, FlowState, FlowHash> flows;
    LruMap<LoginKey, LoginState, LoginKeyHash> logins;
    LruMap<AccessKey, uint64_t, AccessKeyHash> accesses;  // first_access: first time seen
    DnsTunnelDetector dns;
    bool have_time = false;
    uint64_t now_ns = 0;
    uint64_t start_ns = 0;         // the first packet time (first_access's warm-up starts there)
    uint64_t saved_start_ns = 0;   // start_ns of a loaded state (0: none), kept by take_time
    uint64_t baseline_window = 0;  // index of the window being filled, engine-wide
    std::vector<BehaviourFinding> findings;
    std::array<uint64_t, kBehaviourDetectorCount> finding_counts{};
    uint64_t late_events = 0;
    uint64_t baseline_resets = 0;
};

/// Folds `value` into an EWMA mean and variance (West's incremental form).
void fold_ewma(double& mean, double& var, uint32_t& windows, double alpha, uint64_t value);
/// The window of `slot` for `window_s`, made (or remade after a window change) on use.
BucketWindow& window_of(std::unique_ptr<BucketWindow>& slot, uint32_t window_s);
/// Window length in ns (at least 1 s).
uint64_t window_ns(uint32_t window_s);
/// "10.0.0.5" or "10.0.0.5 (asset hr-db, confidential)".
std::string host_text(uint8_t ip_version, const std::array<uint8_t, 16>& addr, const Asset* asset);
/// "10.0.0.5:445", "[2001:db8::1]:445".
std::string endpoint_text(uint8_t ip_version, const std::array<uint8_t, 16>& addr, uint16_t port);
/// Shortest text of a double ("3.5", "4").
std::string double_text(double value);

/// "10.0.0.5", "2001:db8::1".
std::string address_text(uint8_t ip_version, const std::array<uint8_t, 16>& addr);
/// "612 MB", "1.5 GB", "900 bytes" (powers of 1000, one decimal when not whole).
std::string bytes_text(uint64_t bytes);
/// The flow turned around: client and server (and ports) swapped.
FlowTuple reversed(const FlowTuple& flow);

}  // namespace exfiltap::detectors
