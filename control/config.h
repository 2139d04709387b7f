// The YAML configuration (DESIGN.md "Config outline"). Loaded and validated on the control
// thread at start; every problem names the file, the line and the key. Every key has a
// default, so an empty file is a valid config.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "common/result.h"
#include "control/control_server.h"
#include "control/edm_config.h"
#include "control/evidence_config.h"
#include "control/incident_config.h"
#include "control/metrics.h"
#include "control/policy.h"
#include "control/prefix.h"
#include "control/siem_config.h"
#include "dataplane/exception_policy.h"
#include "detectors/asset_inventory.h"
#include "detectors/behaviour_config.h"
#include "detectors/content_types.h"

namespace exfiltap::control {

enum class ChecksumValidation : uint8_t {
    Yes,
    No,
    Auto,
};

struct DpdkConfig {
    /// Extra EAL arguments, appended after the ones the program sets itself.
    std::vector<std::string> eal_args;
    uint32_t memory_mb = 1024;
};

/// Live ports (DESIGN.md "Modes"). A device is a virtual device with its arguments
/// ("net_af_packet0,iface=eth1") or a PCI address. Offline runs ignore this section.
struct PortsConfig {
    bool inline_mode = false;
    struct Pair {
        std::string inside;
        std::string outside;
    };
    std::vector<Pair> pairs;
    std::vector<std::string> passive;
    uint32_t rx_descriptors = 1024;
    uint32_t tx_descriptors = 1024;
    uint32_t mbufs = 16383;
    bool rss_l4 = false;

    bool empty() const { return pairs.empty() && passive.empty(); }
};

struct WorkersConfig {
    uint32_t count = 1;
};

struct FlowsConfig {
    uint32_t table_size = 65536;
    uint32_t tcp_timeout_s = 3600;
    uint32_t tcp_closed_timeout_s = 30;
    /// TCP flows that have not carried payload yet (handshakes, scans).
    uint32_t tcp_embryonic_timeout_s = 30;
    uint32_t udp_timeout_s = 120;
    uint32_t other_timeout_s = 60;
    bool vlan_in_key = true;
    /// Out-of-order bytes held per flow direction and per worker.
    uint32_t reorder_flow_bytes = 256 * 1024;
    uint32_t reorder_worker_bytes = 64 * 1024 * 1024;
    ChecksumValidation checksum_validation = ChecksumValidation::Auto;
    /// Protocol identification and parsers (behaviour detectors, decoded bodies).
    bool parsers = true;
    /// Flows per worker whose parser state is held at once (a few KiB each).
    uint32_t parser_slots = 8192;
    /// Concurrent gzip/deflate body decoders per worker (~45 KiB each).
    uint32_t body_decoders = 64;
};

struct OutputsConfig {
    /// JSON lines alert file; empty: none (offline --alerts overrides).
    std::string alerts_file;
    /// One record per flow direction, class and detector per interval; later findings
    /// raise the next record's count (DESIGN.md "Alert volume").
    uint32_t alert_suppression_s = 60;
    /// SIEM outputs besides the file (control/siem_output.h); off by default. A CEF feed is
    /// syslog with `format: cef`.
    SyslogOutputConfig syslog;
    RedisOutputConfig redis;
    /// Flight recorders and pcapng evidence files (control/evidence.h); off by default.
    EvidenceConfig evidence;
};

struct Config {
    std::string source_file;  // where it was loaded from ("" for defaults)
    DpdkConfig dpdk;
    PortsConfig ports;
    WorkersConfig workers;
    std::vector<Prefix> internal_networks;  // defaults from DESIGN.md when the key is absent
    /// Named hosts and subnets (`assets`) with classification and roles; empty by default.
    detectors::AssetInventory assets;
    FlowsConfig flows;
    detectors::ContentConfig content;
    /// Behaviour detectors' windows and thresholds (`behaviour`).
    detectors::BehaviourConfig behaviour;
    OutputsConfig outputs;
    /// Action per exception reason (DESIGN.md "Exception policy").
    dataplane::ExceptionPolicy exceptions;
    ResponseConfig response;
    ControlConfig control;
    MetricsConfig metrics;
    std::string state_dir = "/var/lib/exfiltap";
    /// Exact data match key file and state blocks (`edm`); its tables are
    /// content.edm_tables, loaded by load_edm() after the whole file is read.
    EdmSettings edm;
    /// Incident correlation (`incidents`): per-host timelines, scores, when one opens.
    IncidentConfig incidents;

    /// True when the address is inside one of internal_networks.
    bool is_internal(uint8_t version, const std::array<uint8_t, 16>& address) const noexcept;
};

/// The built-in configuration (what an empty file gives).
Config default_config();

/// Loads the index of every configured EDM table (control/edm_config.h) with the key of
/// config.edm.key_file or STATE_DIR/edm.key. Call after the file and every --set are
/// applied, before compiling the content database.
Status load_edm(Config& config);

/// Loads and validates `path`. On error the message lists every problem found, each as
/// "FILE:LINE: KEY: what is wrong".
Result<Config> load_config(const std::string& path);

/// Same for YAML text (tests); `name` stands for the file name in messages.
Result<Config> parse_config(const std::string& text, const std::string& name);

/// Applies one "dotted.key=value" override (--set); the value is read as YAML.
Status apply_override(Config& config, const std::string& assignment);

}  // namespace exfiltap::control
