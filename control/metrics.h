// The Prometheus exporter: one prometheus-cpp pull `Exposer` serving `/metrics`, and one
// collectable that asks the daemon for a `MetricsSnapshot` at each scrape and turns it into
// the metric families of DESIGN.md's metric table. Workers never call anything here: they
// keep plain per-lcore counters, and the daemon's provider sums them into the snapshot.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "control/config_reader.h"

namespace prometheus {
class Exposer;
struct MetricFamily;
}  // namespace prometheus

namespace exfiltap::control {

/// `metrics:` section. Loopback only unless the operator writes another address.
struct MetricsConfig {
    bool enabled = true;
    std::string listen = "127.0.0.1:9477";
};

/// Applies `metrics: {listen: "HOST:PORT", enabled: BOOL}` onto `out`. HOST is an IPv4
/// address (IPv6 is refused: the packaged civetweb has no IPv6); PORT is 1..65535. Every
/// problem names file:line:key.
void apply_metrics(
        config_reader::Problems& problems, const config_reader::Entry& section, MetricsConfig& out);

/// A listen address split into its parts; `host` keeps IPv6 brackets off.
struct ListenAddress {
    std::string host;
    uint16_t port = 0;
    bool ipv6 = false;
};

/// Parses "A.B.C.D:PORT" or "[IPV6]:PORT" (PORT 0..65535; 0 lets the kernel choose, for
/// tests). Host names are refused: the exporter binds before any resolver is trusted. IPv6
/// is recognised so that callers can refuse it by name.
Result<ListenAddress> parse_listen(std::string_view text);

// One row per label set; the field names are the metric table's labels.

struct PortTraffic {
    std::string port;
    std::string direction;  // "rx" or "tx"
    uint64_t packets = 0;
    uint64_t bytes = 0;
};

struct ReasonCount {
    std::string reason;
    uint64_t packets = 0;
};

struct PortErrors {
    std::string port;
    uint64_t missed_packets = 0;
    uint64_t nombuf = 0;
};

struct WorkerStats {
    std::string worker;
    uint64_t flows_active = 0;
    uint64_t flows_created = 0;
    uint64_t stream_gaps = 0;
    uint64_t scanned_bytes = 0;
    double busy_ratio = 0.0;  // 0..1 over the daemon's last measuring interval
};

struct FlowEvictions {
    std::string worker;
    std::string reason;
    uint64_t flows = 0;
};

struct DetectionCount {
    std::string detector;
    std::string cls;  // label "class"
    std::string severity;
    uint64_t findings = 0;
    uint64_t alerts = 0;
};

struct BlocklistKind {
    std::string kind;  // "exact" or "prefix"
    uint64_t entries = 0;
    uint64_t hits = 0;
};

struct CommandMetric {
    std::string command;
    std::string result;  // "ok" or "nok"
    uint64_t count = 0;
};

/// A behaviour engine table: entries now and entries evicted because it was full.
struct TableUse {
    std::string table;
    uint64_t entries = 0;
    uint64_t evictions = 0;
};

struct OutputDrops {
    std::string output;
    uint64_t records = 0;
};

/// Everything one scrape exports, as plain data: the daemon fills it from the per-lcore
/// counters and control-side state. Rows whose label sets repeat are exported as they are,
/// so the provider keeps label sets unique.
struct MetricsSnapshot {
    std::vector<PortTraffic> traffic;        // packets_total, bytes_total
    std::vector<ReasonCount> dropped;        // dropped_packets_total
    std::vector<ReasonCount> would_drop;     // would_drop_packets_total
    std::vector<PortErrors> port_errors;     // port_missed_packets_total, port_nombuf_total
    std::vector<ReasonCount> malformed;      // malformed_packets_total
    std::vector<WorkerStats> workers;        // flows, stream gaps, scanned bytes, busy ratio
    std::vector<FlowEvictions> evictions;    // flows_evicted_total
    std::vector<DetectionCount> detections;  // findings_total, alerts_total
    std::vector<BlocklistKind> blocklist;    // blocklist_entries, blocklist_hits_total
    std::vector<CommandMetric> commands;     // control_commands_total
    std::vector<OutputDrops> output_drops;   // output_dropped_records_total
    std::vector<ReasonCount> reloads;        // config_reloads_total{result}
    std::vector<ReasonCount> app_flows;      // app_flows_total{proto}
    std::vector<ReasonCount> app_exhausted;  // app_exhausted_total{resource}
    std::vector<TableUse> behaviour_tables;  // behaviour_table_entries, _evictions_total
    std::vector<ReasonCount> edm_work;       // edm_work_total{stage}
    std::vector<ReasonCount> edm_exhausted;  // edm_exhausted_total{resource}
    std::vector<ReasonCount> edm_rows;       // edm_index_rows{table}
    uint64_t incidents_opened = 0;           // incidents_opened_total
    uint64_t incidents_open = 0;             // incidents_open
    std::string version;                     // build_info{version}
};

enum class MetricType : uint8_t {
    Counter,
    Gauge,
};

/// One exported metric: its name, HELP text and TYPE. Declared once, here.
struct MetricSpec {
    std::string_view name;
    std::string_view help;
    MetricType type;
};

inline constexpr std::array kMetricSpecs = {
        MetricSpec{"exfiltap_packets_total", "Packets received (rx) or sent (tx) per port.",
                MetricType::Counter},
        MetricSpec{"exfiltap_bytes_total", "Frame bytes received (rx) or sent (tx) per port.",
                MetricType::Counter},
        MetricSpec{"exfiltap_dropped_packets_total", "Packets dropped, by reason.",
                MetricType::Counter},
        MetricSpec{"exfiltap_would_drop_packets_total",
                "Packets a shadow policy or passive mode would have dropped, by reason.",
                MetricType::Counter},
        MetricSpec{"exfiltap_port_missed_packets_total",
                "Packets the NIC dropped because the receive queues were full (imissed).",
                MetricType::Counter},
        MetricSpec{"exfiltap_port_nombuf_total",
                "Receive mbuf allocation failures reported by the port (rx_nombuf).",
                MetricType::Counter},
        MetricSpec{"exfiltap_malformed_packets_total",
                "Malformed or truncated packets, by decode reason.", MetricType::Counter},
        MetricSpec{"exfiltap_flows_active", "Flows currently in the worker's flow table.",
                MetricType::Gauge},
        MetricSpec{"exfiltap_flows_created_total", "Flows created by the worker.",
                MetricType::Counter},
        MetricSpec{"exfiltap_flows_evicted_total", "Flows removed by the worker, by reason.",
                MetricType::Counter},
        MetricSpec{"exfiltap_stream_gaps_total",
                "TCP stream gaps that could not be filled, per worker.", MetricType::Counter},
        MetricSpec{"exfiltap_scanned_bytes_total", "Payload bytes scanned by the detectors.",
                MetricType::Counter},
        MetricSpec{"exfiltap_findings_total",
                "Validated detector findings, by detector, class and severity.",
                MetricType::Counter},
        MetricSpec{"exfiltap_alerts_total",
                "Alert records written, by detector, class and severity.", MetricType::Counter},
        MetricSpec{"exfiltap_blocklist_entries", "Entries in the block list, by kind.",
                MetricType::Gauge},
        MetricSpec{"exfiltap_blocklist_hits_total", "Packets that matched the block list, by kind.",
                MetricType::Counter},
        MetricSpec{"exfiltap_control_commands_total",
                "Control socket commands, by command and result.", MetricType::Counter},
        MetricSpec{"exfiltap_config_reloads_total",
                "Configuration reloads (SIGHUP or the reload command), by result: applied, or "
                "refused (the old configuration stays).",
                MetricType::Counter},
        MetricSpec{"exfiltap_worker_busy_ratio",
                "Share of the worker's time spent on packets (0 to 1).", MetricType::Gauge},
        MetricSpec{"exfiltap_output_dropped_records_total",
                "Records an output lost: its queue was full, or its file could not be written "
                "(disk full, file removed).",
                MetricType::Counter},
        MetricSpec{"exfiltap_app_flows_total",
                "Flows whose application protocol was identified, by protocol.",
                MetricType::Counter},
        MetricSpec{"exfiltap_app_exhausted_total",
                "Flows left unparsed (parser_slots) or bodies left undecoded (body_decoders) "
                "because the worker's pool was empty.",
                MetricType::Counter},
        MetricSpec{"exfiltap_behaviour_table_entries",
                "Entries in a behaviour engine table (hosts, flows, domains, login_keys).",
                MetricType::Gauge},
        MetricSpec{"exfiltap_behaviour_table_evictions_total",
                "Least recently used entries a full behaviour table dropped.", MetricType::Counter},
        MetricSpec{"exfiltap_edm_work_total",
                "Exact data match work, by stage: words tokenised, words in no stored value "
                "(words_unknown), primary-value hits, other-value hits, records matched.",
                MetricType::Counter},
        MetricSpec{"exfiltap_edm_exhausted_total",
                "Exact data match state that ran out: flow directions left without matching "
                "(state_slots), value hits overwritten inside their window (hit_list), records "
                "dropped uncorroborated from a full waiting list (waiting_records).",
                MetricType::Counter},
        MetricSpec{"exfiltap_edm_index_rows", "Rows of each loaded exact data match table.",
                MetricType::Gauge},
        MetricSpec{"exfiltap_incidents_opened_total",
                "Incidents opened: a host's findings reached the open score with at least two "
                "stages of the attack.",
                MetricType::Counter},
        MetricSpec{"exfiltap_incidents_open", "Incidents open now (not yet closed as idle).",
                MetricType::Gauge},
        MetricSpec{"exfiltap_build_info", "Always 1; the version label names the build.",
                MetricType::Gauge},
};

/// The exported names, in kMetricSpecs order (dashboards and rules are checked against it).
inline constexpr auto kMetricNames = [] {
    std::array<std::string_view, kMetricSpecs.size()> names{};
    for (size_t i = 0; i < kMetricSpecs.size(); ++i) {
        names[i] = kMetricSpecs[i].name;
    }
    return names;
}();

/// The families of one snapshot, in kMetricSpecs order, every family present even when it
/// has no rows. Any thread; allocates.
std::vector<prometheus::MetricFamily> to_families(const MetricsSnapshot& snapshot);

/// Called at each scrape, on a civetweb thread. The exporter never calls it twice at once.
using MetricsProvider = std::function<void(MetricsSnapshot&)>;

/// Starts `job` once in a new thread whose CPU affinity keeps it off the worker cores (the
/// daemon: `rte_ctrl_thread_create`). Returns an error when no thread could be started;
/// dropping `job` unrun is reported as an error too.
using RunInThread = std::function<Status(std::function<void()> job)>;

/// Serves `/metrics` until destroyed. The civetweb threads inherit the affinity of the
/// thread that built the Exposer, so it is built inside a thread from `run_in_thread`.
class MetricsExporter {
public:
    /// Binds `config.listen` and registers the collectable. Blocks until the exposer is up
    /// or has failed; a bind failure or bad address is an error naming the address, never
    /// an exception. `config.enabled` is the caller's business.
    static Result<std::unique_ptr<MetricsExporter>> start(const MetricsConfig& config,
            MetricsProvider provider, const RunInThread& run_in_thread);

    /// Stops serving: waits for a scrape in progress, then joins the civetweb threads.
    ~MetricsExporter();
    MetricsExporter(const MetricsExporter&) = delete;
    MetricsExporter& operator=(const MetricsExporter&) = delete;
    MetricsExporter(MetricsExporter&&) = delete;
    MetricsExporter& operator=(MetricsExporter&&) = delete;

    /// The bound port (the kernel's choice when the config said 0).
    uint16_t port() const { return port_; }

private:
    class Collector;
    MetricsExporter() = default;

    std::shared_ptr<Collector> collector_;
    std::unique_ptr<prometheus::Exposer> exposer_;
    uint16_t port_ = 0;
};

}  // namespace exfiltap::control
