// The behaviour engine (DESIGN.md "Detection", behaviour bullets): volume windows, baselines,
// encrypted-flow asymmetry, archives and file writes, external logins, mail attachments, DNS
// tunnels, lateral movement (fan-out, share enumeration, first access) and staging,
// aggregated from what the workers report (flow byte progress and AppEvents).
//
// Threads: the control thread only. It allocates, but every table is bounded
// (BehaviourLimits) and evicts its least recently used entry when full, counted in
// stats(). Time is packet time (ns since the epoch) given by the caller with each call and
// by advance(); the engine never reads a clock, so a capture replayed at full speed gives
// the same findings as the live traffic did. Calls with a time earlier than the latest seen
// count at the latest time (workers report a little out of order).
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "detectors/app_event.h"
#include "detectors/asset_inventory.h"
#include "detectors/behaviour_config.h"
#include "detectors/content_types.h"

namespace exfiltap::detectors {

/// Detector names are stable: alerts, metrics and response policies use them.
enum class BehaviourDetector : uint8_t {
    ExternalUpload = 0,
    InternalTransfer = 1,
    BaselineDeviation = 2,
    EncryptedAsymmetry = 3,
    ArchiveOut = 4,
    UnexpectedFileWrite = 5,
    ExternalLogin = 6,
    MailAttachmentOut = 7,
    DnsTunnel = 8,
    LateralFanout = 9,
    ShareEnumeration = 10,
    FirstAccess = 11,
    Staging = 12,
};
inline constexpr size_t kBehaviourDetectorCount = 13;
inline constexpr std::array<std::string_view, kBehaviourDetectorCount> kBehaviourDetectorNames = {
        "external_upload", "internal_transfer", "baseline_deviation", "encrypted_asymmetry",
        "archive_out", "unexpected_file_write", "external_login", "mail_attachment_out",
        "dns_tunnel", "lateral_fanout", "share_enumeration", "first_access", "staging"};

/// The detector's stable name (kBehaviourDetectorNames); header-only, so config checks can
/// use it without the engine.
constexpr std::string_view behaviour_detector_name(BehaviourDetector detector) noexcept {
    const auto index = static_cast<size_t>(detector);
    return index < kBehaviourDetectorNames.size() ? kBehaviourDetectorNames[index]
                                                  : std::string_view("unknown");
}

/// A flow as the worker reports it: client = the connection's initiator. Addresses in
/// network order, IPv4 in the first 4 bytes.
struct FlowTuple {
    uint8_t ip_version = 4;
    uint8_t proto = 6;  // IP protocol (6 TCP, 17 UDP)
    std::array<uint8_t, 16> client{};
    std::array<uint8_t, 16> server{};
    uint16_t client_port = 0;
    uint16_t server_port = 0;
    uint64_t flow_id = 0;

    bool operator==(const FlowTuple&) const = default;
};

/// A sanctioned destination (DESIGN.md "Response"): a software update or backup service.
/// Left out of the volume detectors (external_upload, internal_transfer,
/// baseline_deviation, encrypted_asymmetry) only.
struct SanctionedRange {
    std::string name;
    AddressPrefix prefix;
};

struct BehaviourFinding {
    std::string detector;  // behaviour_detector_name()
    BehaviourDetector id = BehaviourDetector::ExternalUpload;
    Severity severity = Severity::Medium;
    /// The flow that completed the finding. For host-level detectors (external_upload and
    /// internal_transfer per host, baseline_deviation, mail_attachment_out) it is turned so
    /// that the host is the client; external_login's per-service and per-user findings keep
    /// the login's flow (client = the external source). The lateral movement and staging
    /// detectors (lateral_fanout, share_enumeration, first_access, staging) always have the
    /// internal host they are about as the client (staging: the end that received).
    FlowTuple flow;
    uint64_t time_ns = 0;
    /// Bytes that crossed the threshold (window total, flow total, file size, ...).
    uint64_t bytes = 0;
    /// Events behind it (queries, messages, failures, distinct sources); 1 for one event.
    uint64_t count = 0;
    uint32_t window_s = 0;  // 0 when the finding is not about a window
    uint64_t threshold = 0;
    std::string app_proto;  // app_proto_name(), "" when unknown to the engine
    std::string file_name;
    std::string sni;
    std::string user;
    std::string domain;
    /// archive_out: the archive format ("zip", "gzip", ...) and the entropy of its first
    /// bytes in bits per byte * 1000 (0 unknown).
    std::string format;
    uint32_t entropy_milli = 0;
    /// One sentence for operators, with the figures.
    std::string reason;
    /// Assets of flow.client and flow.server (null: none). They point into the inventory the
    /// engine was given: take findings before handing the engine a new inventory.
    const Asset* src_asset = nullptr;
    const Asset* dst_asset = nullptr;
};

struct BehaviourStats {
    size_t hosts = 0;
    size_t flows = 0;
    size_t domains = 0;
    size_t login_keys = 0;
    uint64_t host_evictions = 0;
    uint64_t flow_evictions = 0;
    uint64_t domain_evictions = 0;
    uint64_t login_evictions = 0;
    /// first_access's (host, asset) pairs.
    size_t access_pairs = 0;
    uint64_t access_pair_evictions = 0;
    std::array<uint64_t, kBehaviourDetectorCount> findings{};
    /// Calls whose time was before the latest time seen (counted at the latest).
    uint64_t late_events = 0;
    /// Baselines dropped because a baseline window length (baseline_deviation,
    /// lateral_fanout, staging) changed on reconfigure.
    uint64_t baseline_resets = 0;
    size_t public_suffix_rules = 0;
    /// Empty when the public suffix list loaded.
    std::string public_suffix_warning;
};

class BehaviourEngine {
public:
    /// `assets` may be null (no inventory) and must outlive the engine or the next
    /// reconfigure(). `internal_networks` decide internal vs external.
    BehaviourEngine(const BehaviourConfig& config, const AssetInventory* assets,
            std::vector<AddressPrefix> internal_networks, std::vector<SanctionedRange> sanctioned);
    ~BehaviourEngine();
    BehaviourEngine(const BehaviourEngine&) = delete;
    BehaviourEngine& operator=(const BehaviourEngine&) = delete;

    /// Byte progress of a flow since its previous report (workers report every N bytes or
    /// second and at the end, `ended`). `proto` is the identified protocol, `sni` the TLS
    /// server name ("" when none): it names the destination, it never exempts it.
    void on_flow_bytes(const FlowTuple& flow, AppProto proto, std::string_view sni,
            uint64_t time_ns, uint64_t to_server_bytes, uint64_t to_client_bytes, bool ended);

    /// An application event of the flow (Login, FileTransfer, MailMessage, DnsQuery,
    /// Archive, TreeConnect; other kinds are ignored).
    void on_app_event(const FlowTuple& flow, uint64_t time_ns, const AppEvent& event);

    /// Moves packet time on: closes baseline windows (which may add findings). Call it with
    /// the lowest time the workers have reported, also when there is no traffic.
    void advance(uint64_t time_ns);

    /// The findings since the last call, in the order they were made.
    std::vector<BehaviourFinding> take_findings();

    /// The baselines as versioned, line-based text ending in a checksum line, for the state
    /// directory; survives restarts through load_baselines().
    std::string save_baselines() const;
    /// Replaces the baselines with those of `text`. A wrong version, a bad checksum, a
    /// malformed line or a window length other than the configured one is refused with the
    /// line number and nothing is changed.
    Status load_baselines(std::string_view text);

    /// A reload: new thresholds, inventory, networks and sanctioned ranges. Open windows,
    /// flows, login tracking and baselines are kept; a changed window length restarts
    /// that detector's windows (baselines: counted in baseline_resets).
    void reconfigure(const BehaviourConfig& config, const AssetInventory* assets,
            std::vector<AddressPrefix> internal_networks, std::vector<SanctionedRange> sanctioned);

    BehaviourStats stats() const;

    struct Impl;

private:
    std::unique_ptr<Impl> impl_;
};

}  // namespace exfiltap::detectors
