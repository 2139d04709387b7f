// Alert records as JSON lines (DESIGN.md "Outputs"), community_id, masked samples and the
// sample HMAC key. Control thread only.
#pragma once

#include <array>
#include <cstdint>
#include <cstdio>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "detectors/content_types.h"

namespace exfiltap::control {

/// Community ID v1 (seed 0) of a flow: "1:" + base64(SHA-1(...)). Addresses in network
/// order, IPv4 in the first 4 bytes; ports in host order (0 for protocols without ports).
std::string community_id(uint8_t ip_version, const std::array<uint8_t, 16>& src,
        const std::array<uint8_t, 16>& dst, uint8_t proto, uint16_t src_port, uint16_t dst_port,
        uint16_t seed = 0);

/// "************1111": every character but the last four replaced by '*'.
std::string mask_value(std::string_view value);

/// The secret that keys sample HMACs: 32 random bytes in STATE_DIR/sample_hmac.key, created
/// with mode 0600 on first use (the directory is created 0700). Never exported.
class SampleKey {
public:
    static Result<SampleKey> load_or_create(const std::string& state_dir);
    /// Hex HMAC-SHA256 of the value under the key.
    std::string hmac_hex(std::string_view value) const;

private:
    std::array<uint8_t, 32> key_{};
};

/// "2026-12-05T14:03:07.123456+0000" (UTC, microseconds, the alert schema's format) of
/// seconds since the epoch; negative or non-finite as 0, beyond year 9999 clamped.
std::string format_timestamp(double seconds);

/// "TCP", "UDP", "ICMP", "IPv6-ICMP", or the protocol number.
std::string proto_name(uint8_t proto);

/// Formats an address (IPv4 dotted, IPv6 RFC 5952) from network-order bytes.
std::string format_ip(uint8_t ip_version, const std::array<uint8_t, 16>& address);

/// Everything an alert record states. Strings are already safe to write (masked).
struct AlertRecord {
    double timestamp_s = 0;  // packet time, seconds since the epoch
    uint64_t flow_id = 0;
    uint8_t ip_version = 4;
    std::array<uint8_t, 16> src{};
    std::array<uint8_t, 16> dst{};
    uint16_t src_port = 0;
    uint16_t dst_port = 0;
    uint8_t proto = 6;
    std::array<uint16_t, 4> vlan{};
    uint8_t vlan_count = 0;
    std::string action = "allowed";  // allowed, blocked, would_drop
    uint32_t signature_id = 0;
    std::string signature;
    std::string category = "Data Exfiltration";
    detectors::Severity severity = detectors::Severity::High;
    std::string detector = "content";
    std::string cls;
    detectors::Confidence confidence = detectors::Confidence::Low;
    uint64_t bytes = 0;  // bytes of the direction scanned when the finding was made
    uint64_t count = 1;
    std::string sample;       // masked
    std::string sample_hmac;  // hex
    std::string src_asset;    // "" when unknown
    std::string dst_asset;
    /// The asset's classification ("restricted", detectors::classification_name); written
    /// only with the asset's name.
    std::string src_asset_classification;
    std::string dst_asset_classification;
    /// What the response policy did ("blocked 203.0.113.9 for 3600 s (policy cards-out)");
    /// empty when it only alerts.
    std::string response;
    // Behaviour detectors: what explains the alert (empty / 0 when not applicable).
    std::string app_proto;  // "http", "ftp", ... (detectors::app_proto_name)
    std::string file_name;
    std::string server_name;  // TLS SNI
    std::string user;
    std::string domain;  // DNS registered domain
    std::string reason;  // one sentence with the figures
    uint32_t window_s = 0;
    uint64_t threshold = 0;
    // Exact data match: the table, the columns matched in its records, records so far in
    // the flow direction (never a value).
    std::string edm_table;
    std::vector<std::string> edm_columns;
    uint64_t edm_records = 0;
};

/// Renders the record as one JSON line (no newline).
std::string alert_to_json(const AlertRecord& record);

/// Appends JSON lines to a file (or stdout for "-"), flushed per record.
class AlertWriter {
public:
    static Result<AlertWriter> open(const std::string& path);
    AlertWriter() = default;
    AlertWriter(AlertWriter&& other) noexcept;
    AlertWriter& operator=(AlertWriter&& other) noexcept;
    AlertWriter(const AlertWriter&) = delete;
    AlertWriter& operator=(const AlertWriter&) = delete;
    ~AlertWriter();

    void write(const AlertRecord& record);
    /// Writes a record already rendered by alert_to_json() (one line, no newline).
    void write_json(std::string line);
    /// Opens the file again by name (after log rotation moved it). stdout: nothing to do.
    Status reopen();
    /// Called about once a second by the daemon. When the open file was removed (deleted,
    /// or its folder with it), the records written to it since the last call went nowhere:
    /// they are counted as failed, and the file is created again, its folder too (0750).
    /// Until that succeeds every record counts as failed, and each call tries again. A file
    /// moved aside (rotation) is left to reopen(). Returns what to log, or nothing.
    std::optional<std::string> recover_removed();
    uint64_t written() const { return written_; }
    /// Records that could not be written (disk full, file removed, ...): the run must not
    /// report success.
    uint64_t failed() const { return failed_; }

private:
    void close_file() noexcept;

    int fd_ = -1;
    bool owned_ = false;
    bool lost_ = false;  // the file was removed and could not be created again yet
    std::string path_;
    uint64_t written_ = 0;
    uint64_t failed_ = 0;
    uint64_t written_since_check_ = 0;
    uint64_t failing_ = 0;  // records failed in a row
};

}  // namespace exfiltap::control
