#include "control/metrics.h"

#include <arpa/inet.h>

#include <algorithm>
#include <exception>
#include <future>
#include <initializer_list>
#include <mutex>
#include <utility>

#include <prometheus/collectable.h>
#include <prometheus/exposer.h>
#include <prometheus/metric_family.h>

#include "common/log.h"

namespace exfiltap::control {
namespace {

constexpr std::string_view kComponent = "control.metrics";
// Scrapes are rare (one per scrape interval per Prometheus), but civetweb gives each open
// connection a thread: eight keep a few idle local connections (any local user can open
// them) from starving the scrapes.
constexpr std::string_view kExposerThreads = "8";
// A client that connects and sends nothing holds a server thread until this passes (civetweb's
// default is 30 s); a scrape request arrives at once.
constexpr std::string_view kRequestTimeoutMs = "3000";
constexpr size_t kMaxListenLength = 64;
// Debian's civetweb, which prometheus-cpp serves through, is built without IPv6: it refuses
// "[::1]:9477" with only "Possible problem binding to port", so say what is wrong instead.
constexpr std::string_view kNoIpv6 =
        "IPv6 listen addresses are not supported (the HTTP server library is built without "
        "IPv6); use an IPv4 address such as 127.0.0.1:9477";

/// Index of a metric in kMetricSpecs; a name that is not declared there fails to compile.
consteval size_t index_of(std::string_view name) {
    for (size_t i = 0; i < kMetricSpecs.size(); ++i) {
        if (kMetricSpecs[i].name == name) {
            return i;
        }
    }
    throw "metric not declared in kMetricSpecs";
}

bool all_digits(std::string_view text) {
    return !text.empty()
            && std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; });
}

template <typename Row>
struct LabelField {
    const char* name;
    std::string Row::*field;
};

/// One sample per row: the labels from the row's string fields, the value from `value`.
template <typename Row, typename Value>
void add_rows(prometheus::MetricFamily& family, const std::vector<Row>& rows,
        std::initializer_list<LabelField<Row>> labels, Value Row::*value) {
    for (const Row& row : rows) {
        prometheus::ClientMetric sample;
        for (const auto& label : labels) {
            sample.label.push_back({label.name, row.*label.field});
        }
        const auto number = static_cast<double>(row.*value);
        if (family.type == prometheus::MetricType::Counter) {
            sample.counter.value = number;
        } else {
            sample.gauge.value = number;
        }
        family.metric.push_back(std::move(sample));
    }
}

}  // namespace

void apply_metrics(config_reader::Problems& problems, const config_reader::Entry& section,
        MetricsConfig& out) {
    const auto entries = config_reader::entries_of(
            problems, section.value, section.where, {"enabled", "listen"});
    for (const auto& entry : entries) {
        if (entry.name == "enabled") {
            config_reader::read_bool(problems, entry, out.enabled);
            continue;
        }
        std::string text;
        if (!config_reader::read_string(problems, entry, text)) {
            continue;
        }
        const auto address = parse_listen(text);
        if (!address) {
            problems.add(entry.where, address.error());
        } else if (address->ipv6) {
            problems.add(entry.where, std::string(kNoIpv6));
        } else if (address->port == 0) {
            problems.add(entry.where,
                    "port 0 would let the kernel pick a port Prometheus cannot know; "
                    "give a fixed port such as 127.0.0.1:9477");
        } else {
            out.listen = text;
        }
    }
}

Result<ListenAddress> parse_listen(std::string_view text) {
    const std::string shown = text.size() > kMaxListenLength
            ? std::string(text.substr(0, kMaxListenLength)) + "..."
            : std::string(text);
    const std::string usage =
            "expected HOST:PORT with an IP address, such as 127.0.0.1:9477 or "
            "[::1]:9477, got '"
            + shown + "'";
    const size_t colon = text.rfind(':');
    if (text.size() > kMaxListenLength || colon == std::string_view::npos) {
        return make_error(usage);
    }
    ListenAddress address;
    std::string_view host = text.substr(0, colon);
    const std::string_view port = text.substr(colon + 1);
    if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
        host = host.substr(1, host.size() - 2);
        address.ipv6 = true;
    }
    address.host = std::string(host);
    unsigned char buffer[sizeof(in6_addr)];
    const int family = address.ipv6 ? AF_INET6 : AF_INET;
    if (host.empty() || inet_pton(family, address.host.c_str(), buffer) != 1) {
        return make_error(usage);
    }
    if (!all_digits(port) || port.size() > 5 || std::stoul(std::string(port)) > 65535) {
        return make_error(usage + " (port must be 0..65535)");
    }
    address.port = static_cast<uint16_t>(std::stoul(std::string(port)));
    return address;
}

std::vector<prometheus::MetricFamily> to_families(const MetricsSnapshot& s) {
    std::vector<prometheus::MetricFamily> families;
    families.reserve(kMetricSpecs.size());
    for (const MetricSpec& spec : kMetricSpecs) {
        prometheus::MetricFamily family;
        family.name = std::string(spec.name);
        family.help = std::string(spec.help);
        family.type = spec.type == MetricType::Counter ? prometheus::MetricType::Counter
                                                       : prometheus::MetricType::Gauge;
        families.push_back(std::move(family));
    }
    const auto at = [&](size_t index) -> prometheus::MetricFamily& {
        return families[index];
    };

    using PT = PortTraffic;
    add_rows(at(index_of("exfiltap_packets_total")), s.traffic,
            {{"port", &PT::port}, {"direction", &PT::direction}}, &PT::packets);
    add_rows(at(index_of("exfiltap_bytes_total")), s.traffic,
            {{"port", &PT::port}, {"direction", &PT::direction}}, &PT::bytes);
    using RC = ReasonCount;
    add_rows(at(index_of("exfiltap_dropped_packets_total")), s.dropped, {{"reason", &RC::reason}},
            &RC::packets);
    add_rows(at(index_of("exfiltap_would_drop_packets_total")), s.would_drop,
            {{"reason", &RC::reason}}, &RC::packets);
    add_rows(at(index_of("exfiltap_malformed_packets_total")), s.malformed,
            {{"reason", &RC::reason}}, &RC::packets);
    using PE = PortErrors;
    add_rows(at(index_of("exfiltap_port_missed_packets_total")), s.port_errors,
            {{"port", &PE::port}}, &PE::missed_packets);
    add_rows(at(index_of("exfiltap_port_nombuf_total")), s.port_errors, {{"port", &PE::port}},
            &PE::nombuf);
    using WS = WorkerStats;
    const std::initializer_list<LabelField<WS>> worker_label = {{"worker", &WS::worker}};
    add_rows(at(index_of("exfiltap_flows_active")), s.workers, worker_label, &WS::flows_active);
    add_rows(at(index_of("exfiltap_flows_created_total")), s.workers, worker_label,
            &WS::flows_created);
    add_rows(at(index_of("exfiltap_stream_gaps_total")), s.workers, worker_label, &WS::stream_gaps);
    add_rows(at(index_of("exfiltap_scanned_bytes_total")), s.workers, worker_label,
            &WS::scanned_bytes);
    add_rows(at(index_of("exfiltap_worker_busy_ratio")), s.workers, worker_label, &WS::busy_ratio);
    using FE = FlowEvictions;
    add_rows(at(index_of("exfiltap_flows_evicted_total")), s.evictions,
            {{"worker", &FE::worker}, {"reason", &FE::reason}}, &FE::flows);
    using DC = DetectionCount;
    const std::initializer_list<LabelField<DC>> detection_labels = {
            {"detector", &DC::detector}, {"class", &DC::cls}, {"severity", &DC::severity}};
    add_rows(
            at(index_of("exfiltap_findings_total")), s.detections, detection_labels, &DC::findings);
    add_rows(at(index_of("exfiltap_alerts_total")), s.detections, detection_labels, &DC::alerts);
    using BK = BlocklistKind;
    add_rows(at(index_of("exfiltap_blocklist_entries")), s.blocklist, {{"kind", &BK::kind}},
            &BK::entries);
    add_rows(at(index_of("exfiltap_blocklist_hits_total")), s.blocklist, {{"kind", &BK::kind}},
            &BK::hits);
    using CC = CommandMetric;
    add_rows(at(index_of("exfiltap_control_commands_total")), s.commands,
            {{"command", &CC::command}, {"result", &CC::result}}, &CC::count);
    add_rows(at(index_of("exfiltap_config_reloads_total")), s.reloads, {{"result", &RC::reason}},
            &RC::packets);
    using OD = OutputDrops;
    add_rows(at(index_of("exfiltap_output_dropped_records_total")), s.output_drops,
            {{"output", &OD::output}}, &OD::records);

    add_rows(at(index_of("exfiltap_app_flows_total")), s.app_flows, {{"proto", &RC::reason}},
            &RC::packets);
    add_rows(at(index_of("exfiltap_app_exhausted_total")), s.app_exhausted,
            {{"resource", &RC::reason}}, &RC::packets);
    using TU = TableUse;
    add_rows(at(index_of("exfiltap_behaviour_table_entries")), s.behaviour_tables,
            {{"table", &TU::table}}, &TU::entries);
    add_rows(at(index_of("exfiltap_behaviour_table_evictions_total")), s.behaviour_tables,
            {{"table", &TU::table}}, &TU::evictions);

    add_rows(at(index_of("exfiltap_edm_work_total")), s.edm_work, {{"stage", &RC::reason}},
            &RC::packets);
    add_rows(at(index_of("exfiltap_edm_exhausted_total")), s.edm_exhausted,
            {{"resource", &RC::reason}}, &RC::packets);
    add_rows(at(index_of("exfiltap_edm_index_rows")), s.edm_rows, {{"table", &RC::reason}},
            &RC::packets);

    prometheus::ClientMetric opened;
    opened.counter.value = static_cast<double>(s.incidents_opened);
    at(index_of("exfiltap_incidents_opened_total")).metric.push_back(std::move(opened));
    prometheus::ClientMetric open;
    open.gauge.value = static_cast<double>(s.incidents_open);
    at(index_of("exfiltap_incidents_open")).metric.push_back(std::move(open));

    prometheus::ClientMetric build;
    build.label.push_back({"version", s.version});
    build.gauge.value = 1;
    at(index_of("exfiltap_build_info")).metric.push_back(std::move(build));
    return families;
}

/// The one collectable: asks the provider for a snapshot, one scrape at a time.
class MetricsExporter::Collector final : public prometheus::Collectable {
public:
    explicit Collector(MetricsProvider provider) : provider_(std::move(provider)) {}

    std::vector<prometheus::MetricFamily> Collect() const override {
        // Runs on a civetweb thread, which is C code: nothing may escape from here.
        try {
            MetricsSnapshot snapshot;
            {
                const std::lock_guard lock(mutex_);
                provider_(snapshot);
            }
            return to_families(snapshot);
        } catch (const std::exception& e) {
            log_warning(kComponent,
                    std::string("scrape answered with no metrics: the snapshot failed: ")
                            + e.what());
        } catch (...) {
            log_warning(kComponent, "scrape answered with no metrics: the snapshot failed");
        }
        // No series beats wrong ones: a half-filled snapshot would look like counter resets.
        return {};
    }

private:
    mutable std::mutex mutex_;
    MetricsProvider provider_;
};

Result<std::unique_ptr<MetricsExporter>> MetricsExporter::start(
        const MetricsConfig& config, MetricsProvider provider, const RunInThread& run_in_thread) {
    const auto address = parse_listen(config.listen);
    if (!address) {
        return make_error("metrics.listen: " + address.error());
    }
    if (address->ipv6) {
        return make_error("metrics.listen: " + std::string(kNoIpv6));
    }
    auto collector = std::make_shared<Collector>(std::move(provider));

    using Built = Result<std::unique_ptr<prometheus::Exposer>>;
    auto promise = std::make_shared<std::promise<Built>>();
    std::future<Built> future = promise->get_future();
    const std::string listen = config.listen;
    auto job = [promise, listen, collector]() {
        Built built = make_error("not built");
        try {
            auto exposer = std::make_unique<prometheus::Exposer>(std::vector<std::string>{
                    "listening_ports", listen, "num_threads", std::string(kExposerThreads),
                    "request_timeout_ms", std::string(kRequestTimeoutMs)});
            exposer->RegisterCollectable(collector);
            built = std::move(exposer);
        } catch (const std::exception& e) {
            built = make_error(e.what());
        } catch (...) {
            built = make_error("unknown error");
        }
        try {
            promise->set_value(std::move(built));
        } catch (const std::future_error&) {
            // The job ran twice; the first result stands and this exposer is closed here.
        }
    };
    // Only the job holds the promise now, so a launcher that drops it breaks the promise
    // instead of leaving us waiting.
    promise.reset();
    const Status launched = run_in_thread(std::move(job));
    if (!launched) {
        return make_error("metrics: cannot start the exporter thread: " + launched.error());
    }

    Built built = make_error("not built");
    try {
        built = future.get();
    } catch (const std::future_error&) {
        return make_error("metrics: the exporter thread ended without starting the exporter");
    }
    if (!built) {
        return make_error("metrics: cannot listen on " + config.listen + ": " + built.error()
                + " (is the address local and the port free?)");
    }
    std::unique_ptr<MetricsExporter> exporter(new MetricsExporter());
    exporter->collector_ = std::move(collector);
    exporter->exposer_ = std::move(built.value());
    const std::vector<int> ports = exporter->exposer_->GetListeningPorts();
    exporter->port_ = ports.empty() ? address->port : static_cast<uint16_t>(ports.front());
    return exporter;
}

MetricsExporter::~MetricsExporter() = default;

}  // namespace exfiltap::control
