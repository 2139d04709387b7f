// The `behaviour` config section (DESIGN.md "Config outline"): enabled flag, severity,
// windows and thresholds of each behaviour detector, and the engine's memory caps. Plain
// data with the defaults below; control/behaviour_config.cc reads the YAML into it.
//
// Defaults are meant for a real office network: they stay quiet for ordinary browsing,
// mail and software updates, and fire on bulk moves of data (see detectors/NOTES.md,
// "Behaviour engine", for the table and the reasoning).
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "detectors/asset_inventory.h"
#include "detectors/content_types.h"

namespace exfiltap::detectors {

inline constexpr uint64_t kKB = 1000;
inline constexpr uint64_t kMB = 1000 * kKB;
inline constexpr uint64_t kGB = 1000 * kMB;

/// external_upload: bytes an internal host sends to external, non-sanctioned addresses.
struct ExternalUploadConfig {
    bool enabled = true;
    Severity severity = Severity::High;
    /// Sliding window, kept as 60 buckets (window_s / 60 seconds each, at least 1 s).
    uint32_t window_s = 3600;
    /// Per host in the window, by the host's asset classification (hosts that no asset
    /// lists use `internal`): public, internal, confidential, restricted.
    std::array<uint64_t, kClassificationCount> host_bytes = {
            1 * kGB, 500 * kMB, 200 * kMB, 50 * kMB};
    /// One flow's upload (0 = off).
    uint64_t flow_bytes = 100 * kMB;
    /// Also count what internal servers send to external clients (downloads from inside).
    /// Off by default: public web and file servers would dominate every window.
    bool include_served = false;
};

/// internal_transfer: bytes between two internal, non-sanctioned addresses.
struct InternalTransferConfig {
    bool enabled = true;
    Severity severity = Severity::Medium;
    uint32_t window_s = 3600;
    /// One flow, both directions together (0 = off).
    uint64_t flow_bytes = 1 * kGB;
    /// Per host: bytes it received from internal hosts in the window (staging), 0 = off.
    uint64_t host_bytes = 5 * kGB;
};

/// baseline_deviation: per internal host, external upload bytes per fixed window against
/// an EWMA mean and variance of the host's earlier windows.
struct BaselineDeviationConfig {
    bool enabled = true;
    Severity severity = Severity::Medium;
    /// Windows are aligned to multiples of window_s since the epoch (packet time).
    uint32_t window_s = 3600;
    /// EWMA weight of the newest window (0 < alpha <= 1).
    double alpha = 0.1;
    /// Alert when a window's bytes exceed mean + k * stddev.
    double k = 4.0;
    /// Windows a host must have before it can alert.
    uint32_t warmup_windows = 24;
    /// Never alert on a window below this many bytes.
    uint64_t floor_bytes = 100 * kMB;
};

/// encrypted_asymmetry: a TLS, SSH or unidentified flow from an internal client to an
/// external server where the client sends far more than it receives.
struct EncryptedAsymmetryConfig {
    bool enabled = true;
    Severity severity = Severity::Medium;
    uint64_t min_bytes = 10 * kMB;
    /// sent / received at least this (received 0 counts as 1 byte).
    uint32_t ratio = 10;
};

/// archive_out: an archive or compressed object uploaded to an external server.
struct ArchiveOutConfig {
    bool enabled = true;
    Severity severity = Severity::Medium;
    /// Entropy (bits per byte * 1000) an archive's first bytes need; 0: any archive. An
    /// event without a measured entropy (0) always counts.
    uint32_t min_entropy_milli = 0;
};

/// unexpected_file_write: a file upload (FTP STOR/APPE, HTTP PUT or multipart, SMB2 WRITE)
/// to a server whose asset lacks the file-server role (external servers included).
struct UnexpectedFileWriteConfig {
    bool enabled = true;
    Severity severity = Severity::Medium;
    uint64_t min_bytes = 1;
    /// Writes to external servers count (they have no file-server role) from this size on:
    /// small form uploads to web sites are everyday traffic (MANIFEST: a 400-byte multipart
    /// POST is "nothing"); large ones are the signal.
    bool external = true;
    uint64_t external_min_bytes = 10 * kMB;
    /// Writes to internal servers that no asset lists count too. Off by default: the
    /// inventory says nothing about them, and internal shares and FTP drops are common.
    bool unlisted_internal = false;
};

/// external_login: logins from external clients to internal servers.
struct ExternalLoginConfig {
    bool enabled = true;
    Severity severity = Severity::High;
    uint32_t window_s = 600;
    /// Distinct external sources per internal service (server address + protocol); 0 = off.
    uint32_t service_sources = 5;
    /// Distinct external sources per user name; 0 = off.
    uint32_t user_sources = 3;
    /// Failed logins of one external source; 0 = off.
    uint32_t source_failures = 3;
    /// Logins of one external source whose outcome the protocol hides (SSH, RDP connection
    /// starts); 0 = off.
    uint32_t source_attempts = 10;
    /// A success from a source with at least this many failures in the window; 0 = off.
    uint32_t success_after_failures = 2;
};

/// mail_attachment_out: SMTP messages with attachments to outside, per sender host.
struct MailAttachmentOutConfig {
    bool enabled = true;
    Severity severity = Severity::Medium;
    uint32_t window_s = 3600;
    /// Messages with attachments in the window; 0 = off.
    uint32_t count = 20;
    /// Decoded attachment bytes in the window; 0 = off.
    uint64_t bytes = 50 * kMB;
    /// The organisation's mail domains: a message to an internal server whose first
    /// recipient is outside these (and their subdomains) counts. Empty: only messages to
    /// external servers count.
    std::vector<std::string> internal_domains;
};

/// dns_tunnel: DNS queries per registered domain in a window.
struct DnsTunnelConfig {
    bool enabled = true;
    Severity severity = Severity::High;
    /// Tumbling window opened by a domain's first query.
    uint32_t window_s = 60;
    /// Gates: queries and distinct subdomains in the window.
    uint32_t min_queries = 30;
    uint32_t min_distinct = 20;
    /// Score points (a finding needs min_score of the three):
    /// mean length of the subdomain labels >= min_mean_label_len;
    uint32_t min_mean_label_len = 20;
    /// Shannon entropy of the subdomain characters >= min_entropy_milli / 1000 bits;
    uint32_t min_entropy_milli = 3500;
    /// share of TXT, NULL, CNAME and MX queries >= min_type_share_percent.
    uint32_t min_type_share_percent = 50;
    uint32_t min_score = 2;
    /// Debian's publicsuffix list; when missing, a registered domain is the last two labels.
    std::string public_suffix_list = "/usr/share/publicsuffix/public_suffix_list.dat";
};

/// lateral_fanout: per internal host, the distinct internal destinations (addresses) and
/// services (address, protocol, server port) it opened connections to in a window, against
/// its own baseline (as baseline_deviation) and an absolute scan ceiling.
struct LateralFanoutConfig {
    bool enabled = true;
    Severity severity = Severity::Medium;
    /// Windows are aligned to multiples of window_s since the epoch (packet time).
    uint32_t window_s = 600;
    double alpha = 0.1;
    /// Alert when a window's distinct count exceeds mean + k * stddev of earlier windows.
    double k = 4.0;
    /// Windows a host must have before the baseline can alert (the ceiling always can).
    uint32_t warmup_windows = 24;
    /// The baseline never alerts below these distinct counts.
    uint32_t floor_hosts = 16;
    uint32_t floor_services = 32;
    /// Scan ceiling: alert at this many distinct hosts or services in a window whatever
    /// the baseline (0 = off).
    uint32_t scan_hosts = 64;
    uint32_t scan_services = 128;
};

/// share_enumeration: SMB2 TREE_CONNECT requests of an internal client in a sliding window;
/// distinct share paths (case-insensitive, IPC$ left out) counted.
struct ShareEnumerationConfig {
    bool enabled = true;
    Severity severity = Severity::Medium;
    uint32_t window_s = 600;
    /// Distinct shares in the window.
    uint32_t shares = 10;
};

/// first_access: the first access of an internal host to an asset of a listed
/// classification, after a warm-up that learns what every host already uses.
struct FirstAccessConfig {
    bool enabled = true;
    Severity severity = Severity::Medium;
    /// Learning time from the engine's first packet: pairs seen in it never alert.
    uint32_t warmup_s = 7 * 24 * 3600;
    /// Bit (1 << Classification) of the classifications watched: confidential, restricted.
    uint32_t classifications = (1U << static_cast<unsigned>(Classification::Confidential))
            | (1U << static_cast<unsigned>(Classification::Restricted));
};

/// staging: bytes an internal host received in a window from assets with the role
/// file-server, code-repository or database (whichever end opened the flow), against an
/// absolute threshold and the host's own baseline.
struct StagingConfig {
    bool enabled = true;
    Severity severity = Severity::High;
    /// Sliding window of the absolute threshold (60 buckets); the baseline uses windows of
    /// the same length aligned to multiples of window_s.
    uint32_t window_s = 3600;
    /// Absolute threshold by the classification of the sources: bytes from sources of a
    /// classification or a more sensitive one against that classification's value (0 = off
    /// for that classification).
    std::array<uint64_t, kClassificationCount> host_bytes = {5 * kGB, 2 * kGB, 1 * kGB, 500 * kMB};
    double alpha = 0.1;
    double k = 4.0;
    uint32_t warmup_windows = 24;
    /// The baseline never alerts on a window below this many bytes.
    uint64_t floor_bytes = 200 * kMB;
};

/// Memory caps of the engine; each table evicts its least recently used entry when full
/// and counts it (BehaviourStats).
struct BehaviourLimits {
    uint32_t max_hosts = 65536;
    uint32_t max_flows = 262144;
    uint32_t max_domains = 16384;
    /// Login tracking keys (services, user names, sources together).
    uint32_t max_login_keys = 16384;
    /// Sources remembered per service or user name.
    uint32_t max_sources_per_key = 64;
    /// Distinct destinations and services remembered per host and window (lateral_fanout);
    /// counts stop growing there.
    uint32_t max_distinct_per_host = 512;
    /// Distinct shares remembered per host (share_enumeration).
    uint32_t max_shares_per_host = 64;
    /// (host, asset) pairs first_access remembers; the least recently used goes first, and
    /// a pair forgotten this way alerts again on its next access after the warm-up.
    uint32_t max_first_access_pairs = 262144;
};

struct BehaviourConfig {
    ExternalUploadConfig external_upload;
    InternalTransferConfig internal_transfer;
    BaselineDeviationConfig baseline_deviation;
    EncryptedAsymmetryConfig encrypted_asymmetry;
    ArchiveOutConfig archive_out;
    UnexpectedFileWriteConfig unexpected_file_write;
    ExternalLoginConfig external_login;
    MailAttachmentOutConfig mail_attachment_out;
    DnsTunnelConfig dns_tunnel;
    LateralFanoutConfig lateral_fanout;
    ShareEnumerationConfig share_enumeration;
    FirstAccessConfig first_access;
    StagingConfig staging;
    BehaviourLimits limits;
};

}  // namespace exfiltap::detectors
