#include "control/daemon.h"

#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <charconv>
#include <chrono>
#include <cstring>
#include <deque>
#include <filesystem>
#include <map>
#include <mutex>
#include <set>
#include <unordered_map>

#include <rte_eal.h>

#include "common/log.h"
#include "control/alert_sink.h"
#include "control/alert_writer.h"
#include "control/audit_log.h"
#include "control/behaviour_feed.h"
#include "control/block_list.h"
#include "control/block_store.h"
#include "control/control_protocol.h"
#include "control/control_server.h"
#include "control/evidence.h"
#include "control/metrics.h"
#include "control/policy.h"
#include "control/siem_output.h"
#include "control/worker_setup.h"
#include "dataplane/block_table.h"
#include "dataplane/content_reload.h"
#include "dataplane/ctrl_thread.h"
#include "dataplane/eal_setup.h"
#include "dataplane/flow_offload.h"
#include "dataplane/live.h"
#include "dataplane/offline.h"
#include "detectors/edm_index.h"

#include <systemd/sd-daemon.h>

namespace exfiltap::control {

namespace {

constexpr int kExitRuntime = 1;
constexpr size_t kRecentAlerts = 1000;
constexpr size_t kTalkerCapacity = 20000;
constexpr uint64_t kNsPerS = 1000000000ULL;
// Baselines are written to the state directory this often (and at stop).
constexpr int64_t kBaselineSaveIntervalS = 300;
// At the stop, SIEM outputs go on sending what is queued for at most this long.
constexpr uint32_t kSiemDrainMs = 2000;

int64_t wall_s() {
    return static_cast<int64_t>(time(nullptr));
}

std::string iso_time(int64_t seconds) {
    if (seconds <= 0) {
        return {};
    }
    const time_t t = seconds;
    tm parts{};
    gmtime_r(&t, &parts);
    char text[32];
    strftime(text, sizeof(text), "%Y-%m-%dT%H:%M:%SZ", &parts);
    return text;
}

/// The block list's view of the data-path table. Exact blocks are also offloaded as
/// rte_flow drop rules on the ports that accept them (probed at start); software stays the
/// path that decides, so an offload failure costs only load, never correctness.
class TableSink final : public BlockTableSink {
public:
    TableSink(dataplane::BlockTable& table, std::vector<std::pair<uint16_t, bool>> offload_v4,
            std::vector<std::pair<uint16_t, bool>> offload_v6)
        : table_(table), offload_v4_(std::move(offload_v4)), offload_v6_(std::move(offload_v6)) {}
    ~TableSink() override {
        for (auto& [key, rules] : offloaded_) {
            for (const auto& [port, flow] : rules) {
                (void)dataplane::remove_drop_rule(port, flow);
            }
        }
    }
    TableSink(const TableSink&) = delete;
    TableSink& operator=(const TableSink&) = delete;

    Result<uint32_t> add_exact(const Prefix& prefix) override {
        auto slot = table_.add_exact(prefix.ip_version, prefix.addr);
        if (slot) {
            offload(prefix);
        }
        return slot;
    }
    bool remove_exact(const Prefix& prefix) override {
        unload(key_of(prefix));
        return table_.remove_exact(prefix.ip_version, prefix.addr);
    }
    Result<uint32_t> stage_prefix(const Prefix& prefix, bool allow) override {
        if (allow) {
            // An allow entry removes the offloaded rules it overlaps: the NIC would drop
            // before the allowlist is ever looked up.
            std::vector<std::string> covered;
            for (const auto& [key, rules] : offloaded_) {
                if (prefix.contains(static_cast<uint8_t>(key[0]), address_of(key))) {
                    covered.push_back(key);
                }
            }
            for (const std::string& key : covered) {
                unload(key);
            }
        }
        return table_.stage_prefix(prefix.ip_version, prefix.addr, prefix.length, allow);
    }
    bool unstage_prefix(const Prefix& prefix, bool allow) override {
        return table_.unstage_prefix(prefix.ip_version, prefix.addr, prefix.length, allow);
    }
    Status commit_prefixes() override {
        auto stats = table_.commit_prefixes();
        if (!stats) {
            return make_error(stats.error());
        }
        return Ok{};
    }
    uint64_t hits(bool exact, uint32_t slot) const override {
        return exact ? table_.exact_hits(slot) : table_.prefix_hits(slot);
    }
    size_t offloaded() const { return offloaded_.size(); }
    uint64_t offload_failures() const { return offload_failures_; }

private:
    static std::string key_of(const Prefix& prefix) {
        std::string key(1, static_cast<char>(prefix.ip_version));
        key.append(reinterpret_cast<const char*>(prefix.addr.data()), prefix.addr.size());
        return key;
    }
    static std::array<uint8_t, 16> address_of(const std::string& key) {
        std::array<uint8_t, 16> addr{};
        memcpy(addr.data(), key.data() + 1, addr.size());
        return addr;
    }
    void offload(const Prefix& prefix) {
        const auto& ports = prefix.ip_version == 4 ? offload_v4_ : offload_v6_;
        std::vector<std::pair<uint16_t, rte_flow*>> rules;
        const dataplane::FlowDropRule rule(prefix.ip_version, prefix.addr);
        for (const auto& [port, supported] : ports) {
            if (!supported) {
                continue;
            }
            auto flow = dataplane::install_drop_rule(port, rule);
            if (flow) {
                rules.emplace_back(port, *flow);
            } else {
                ++offload_failures_;
            }
        }
        if (!rules.empty()) {
            offloaded_[key_of(prefix)] = std::move(rules);
        }
    }
    void unload(const std::string& key) {
        auto it = offloaded_.find(key);
        if (it == offloaded_.end()) {
            return;
        }
        for (const auto& [port, flow] : it->second) {
            (void)dataplane::remove_drop_rule(port, flow);
        }
        offloaded_.erase(it);
    }

    dataplane::BlockTable& table_;
    std::vector<std::pair<uint16_t, bool>> offload_v4_;
    std::vector<std::pair<uint16_t, bool>> offload_v6_;
    std::unordered_map<std::string, std::vector<std::pair<uint16_t, rte_flow*>>> offloaded_;
    uint64_t offload_failures_ = 0;
};

/// Bytes between two hosts over ended flows (the `flows` command's top talkers).
struct Talker {
    std::string src;
    std::string dst;
    uint64_t bytes_out = 0;  // client to server
    uint64_t bytes_in = 0;
    uint64_t flows = 0;
    int64_t last_s = 0;
};

class Daemon final : public CommandHandler {
public:
    Daemon(const DaemonOptions& options, Config config,
            std::shared_ptr<const detectors::PatternDatabase> patterns)
        : options_(options), config_(std::move(config)), patterns_(std::move(patterns)) {}

    int run();
    Reply handle(const Request& request, const Peer& peer) override;

private:
    Status open_outputs();
    Status start_dataplane();
    Status start_response();
    Status start_services();
    void on_event(const dataplane::WorkerEvent& event);
    void on_record(AlertRecord& record);
    void on_incident(Incident& incident, IncidentEvent event);
    /// Asks the workers' flight recorders for the packets of the incident's flows not asked
    /// for before (an opened incident: all of them; an escalation: its new flows).
    void request_incident_evidence(const Incident& incident);
    std::string policy_block(const Decision& decision, const Prefix& target,
            std::string_view detector, const std::string& detail, const std::string& signature,
            std::string& action);
    bool tick(const std::vector<dataplane::Worker*>& workers);
    /// Makes the evidence collector over the workers' recorders and starts its writer.
    void start_evidence(const std::vector<dataplane::Worker*>& workers);
    /// A reload of outputs.evidence: what applies without a restart (folder, limits, timeout).
    void reconfigure_evidence(const EvidenceConfig& loaded);
    /// At the stop: packets received, sent and dropped over all workers, in the log.
    void log_final_counts();
    /// At the stop: the SIEM outputs send what is queued (bounded), then their counts go to
    /// the log.
    void stop_siem_outputs();
    /// Reload: replaces the SIEM outputs when their settings changed. The old ones drain
    /// in their threads (bounded) while the control thread goes on; false when the new
    /// ones could not start (the old ones stay).
    bool reconfigure_siem(const OutputsConfig& outputs);
    /// Joins the retired outputs whose threads have ended (all of them when `wait`), logs
    /// their counts and keeps what they lost for output_drops.
    void reap_siem_outputs(bool wait);
    /// Records lost per output name, over every generation of outputs this run.
    std::vector<std::pair<std::string, uint64_t>> siem_drops() const;
    /// Applies what a reload may change; an error (the old configuration stays) says why.
    /// Counted by result in exfiltap_config_reloads_total.
    Status reload(const std::vector<dataplane::Worker*>& workers);
    Status apply_reload(const std::vector<dataplane::Worker*>& workers);
    void publish_flow_policy();
    void refresh_metrics();
    void fill_metrics(MetricsSnapshot& snapshot);
    nlohmann::json entry_json(const BlockEntry& entry) const;
    nlohmann::json stats_json() const;
    Reply block_reply(const Result<BlockOutcome>& outcome, const Prefix& prefix);

    DaemonOptions options_;
    Config config_;
    std::shared_ptr<const detectors::PatternDatabase> patterns_;
    std::string alerts_path_;
    std::unique_ptr<AlertWriter> writer_;
    std::unique_ptr<AlertSink> sink_;
    std::unique_ptr<SiemOutputs> siem_;
    std::vector<std::unique_ptr<SiemOutputs>> siem_retiring_;
    std::map<std::string, uint64_t> siem_lost_retired_;
    std::unique_ptr<BehaviourFeed> feed_;
    // Evidence (outputs.evidence): made at the first tick, when the workers exist; freed
    // after they have stopped (it owns the requests they may still hold).
    std::unique_ptr<EvidenceCollector> evidence_;
    // Flows whose evidence each open incident asked for (dropped when it closes).
    std::map<uint64_t, std::set<uint64_t>> incident_evidence_;
    int64_t next_baseline_save_s_ = 0;
    std::unique_ptr<AuditLog> audit_;
    std::unique_ptr<dataplane::LivePorts> ports_;
    std::unique_ptr<dataplane::BlockTable> table_;
    std::unique_ptr<TableSink> table_sink_;
    std::unique_ptr<BlockList> blocks_;
    std::unique_ptr<BlockStore> store_;
    std::unique_ptr<ControlServer> server_;
    std::unique_ptr<MetricsExporter> exporter_;
    std::unique_ptr<dataplane::ContentReloader> reloader_;
    dataplane::NetworkSet internal_;
    dataplane::WorkerShared shared_;
    std::vector<std::unique_ptr<dataplane::Worker>> workers_;
    std::vector<dataplane::Worker*> worker_list_;
    // Flow verdict tables: the workers read the current one; older ones are kept until the
    // run ends (a reload replaces a few hundred bytes; no grace period needed then).
    std::deque<std::unique_ptr<dataplane::FlowVerdictPolicy>> flow_policies_;
    std::deque<std::string> recent_alerts_;
    std::unordered_map<std::string, Talker> talkers_;
    std::map<std::tuple<std::string, std::string, std::string>, uint64_t> alert_counts_;
    int64_t started_s_ = 0;
    int64_t next_expiry_s_ = 0;
    uint64_t alerts_since_tick_ = 0;
    // Reloads by result (exfiltap_config_reloads_total): counted by the control thread,
    // read by the exporter's.
    std::atomic<uint64_t> reloads_applied_{0};
    std::atomic<uint64_t> reloads_refused_{0};

    // What a scrape reads that the control loop owns, copied under the lock each second.
    struct ControlView {
        std::vector<const dataplane::WorkerCounters*> counters;
        std::vector<const dataplane::AppCounters*> app;
        std::vector<const detectors::EdmCounters*> edm;
        std::vector<std::pair<uint16_t, std::string>> ports;  // port id, label
        std::array<detectors::Severity, detectors::kContentClassCount> severity{};
        std::vector<double> busy_ratio;
        std::vector<CommandMetric> commands;
        uint64_t follow_dropped = 0;
        std::vector<BlocklistKind> blocklist;
        std::map<std::tuple<std::string, std::string, std::string>, uint64_t> alerts;
        std::vector<PortErrors> port_errors;
        uint64_t alert_write_failures = 0;
        std::vector<std::pair<std::string, uint64_t>> siem_drops;
        std::vector<TableUse> behaviour_tables;
        std::vector<ReasonCount> edm_rows;  // rows of each loaded EDM table
        uint64_t incidents_opened = 0;
        uint64_t incidents_open = 0;
    };
    mutable std::mutex view_mutex_;
    ControlView view_;
    // Busy ratio: worker busy cycles over TSC cycles between refreshes.
    std::vector<uint64_t> busy_cycles_before_;
    uint64_t tsc_before_ = 0;
    std::vector<double> busy_ratio_;
};

Status Daemon::open_outputs() {
    alerts_path_ = !options_.alerts.empty() ? options_.alerts : config_.outputs.alerts_file;
    auto key = SampleKey::load_or_create(config_.state_dir);
    if (!key) {
        return make_error("sample HMAC key: " + key.error());
    }
    if (!alerts_path_.empty()) {
        auto opened = AlertWriter::open(alerts_path_);
        if (!opened) {
            return make_error(opened.error());
        }
        writer_ = std::make_unique<AlertWriter>(std::move(*opened));
    }
    sink_ = std::make_unique<AlertSink>(config_, std::move(*key), writer_.get());
    sink_->set_hook([this](AlertRecord& record) { on_record(record); });
    sink_->set_incident_hook(
            [this](Incident& incident, IncidentEvent event) { on_incident(incident, event); });
    siem_ = std::make_unique<SiemOutputs>(config_.outputs, EXFILTAP_VERSION);
    if (!siem_->empty()) {
        sink_->set_outputs(siem_.get());
    }
    feed_ = std::make_unique<BehaviourFeed>(config_, *sink_);
    if (Status st = feed_->load_baselines(config_.state_dir); !st) {
        log_warning("behaviour", st.error());
    }
    sink_->set_app_handler([this](const dataplane::WorkerEvent& event) { feed_->on_event(event); });
    auto audit = AuditLog::open(config_.state_dir + "/audit.log");
    if (!audit) {
        return make_error(audit.error());
    }
    audit_ = std::make_unique<AuditLog>(std::move(*audit));
    return Ok{};
}

Status Daemon::start_dataplane() {
    dataplane::EalOptions eal;
    eal.workers = options_.workers != 0 ? options_.workers : config_.workers.count;
    eal.memory_mb = config_.dpdk.memory_mb;
    eal.file_prefix = "exfiltap_" + std::to_string(getpid());
    eal.telemetry = true;  // NIC statistics stay reachable (DESIGN.md "Modes")
    eal.extra_args = config_.dpdk.eal_args;
    eal.extra_args.insert(eal.extra_args.end(), options_.eal_args.begin(), options_.eal_args.end());
    dataplane::LivePortsOptions port_options;
    port_options.inline_mode = config_.ports.inline_mode;
    port_options.workers = eal.workers;
    port_options.rx_descriptors = static_cast<uint16_t>(config_.ports.rx_descriptors);
    port_options.tx_descriptors = static_cast<uint16_t>(config_.ports.tx_descriptors);
    port_options.mbufs = config_.ports.mbufs;
    port_options.rss_l4 = config_.ports.rss_l4;
    auto add_device = [&eal](const std::string& device) {
        (dataplane::is_virtual_device(device) ? eal.vdevs : eal.pci).push_back(device);
    };
    for (size_t i = 0; i < config_.ports.pairs.size(); ++i) {
        const auto& pair = config_.ports.pairs[i];
        const std::string n = config_.ports.pairs.size() > 1 ? std::to_string(i) : "";
        port_options.pairs.push_back({{"inside" + n, pair.inside}, {"outside" + n, pair.outside}});
        add_device(pair.inside);
        add_device(pair.outside);
    }
    for (size_t i = 0; i < config_.ports.passive.size(); ++i) {
        port_options.passive.push_back({"passive" + std::to_string(i), config_.ports.passive[i]});
        add_device(config_.ports.passive[i]);
    }
    if (Status st = dataplane::init_eal(eal); !st) {
        return st;
    }
    detectors::StreamPool::install_hyperscan_allocator();
    auto ports = dataplane::LivePorts::open(port_options);
    if (!ports) {
        return make_error(ports.error());
    }
    ports_ = std::move(*ports);
    for (const std::string& note : ports_->notes()) {
        log_warning("dataplane", note);
    }
    return Ok{};
}

Status Daemon::start_response() {
    dataplane::BlockTableConfig table_config;
    table_config.exact_capacity = config_.response.exact_capacity;
    table_config.prefix_capacity = config_.response.prefix_capacity;
    table_config.readers = options_.workers != 0 ? options_.workers : config_.workers.count;
    std::string error;
    table_ = dataplane::BlockTable::create(table_config, &error);
    if (table_ == nullptr) {
        return make_error("block table: " + error + " (raise dpdk.memory_mb or lower "
                                                    "response.block_table.exact_capacity)");
    }
    // Which ports take rte_flow drop rules (DESIGN.md "Response"): probed once, here.
    std::vector<std::pair<uint16_t, bool>> offload_v4;
    std::vector<std::pair<uint16_t, bool>> offload_v6;
    for (const auto& port : ports_->ports()) {
        const dataplane::FlowOffloadSupport support = dataplane::probe_flow_offload(port.port_id);
        offload_v4.emplace_back(port.port_id, static_cast<bool>(support.v4));
        offload_v6.emplace_back(port.port_id, static_cast<bool>(support.v6));
        log_info("response",
                "port " + port.name + ": exact blocks offloaded to the NIC: IPv4 "
                        + (support.v4 ? "yes" : "no (" + support.v4.error() + ")") + ", IPv6 "
                        + (support.v6 ? "yes" : "no (" + support.v6.error() + ")"));
    }
    table_sink_ = std::make_unique<TableSink>(*table_, offload_v4, offload_v6);
    blocks_ = std::make_unique<BlockList>(*table_sink_, config_.response);
    blocks_->set_audit(audit_.get());
    for (const std::string& warning : blocks_->apply_config(config_.response)) {
        log_warning("response", warning);
    }
    BlockStoreSettings settings;
    settings.state_dir = config_.state_dir;
    settings.snapshot_every_changes = config_.response.snapshot_every_changes;
    settings.snapshot_every_s = config_.response.snapshot_every_s;
    store_ = std::make_unique<BlockStore>(settings);
    auto loaded = store_->load(wall_s());
    if (!loaded) {
        return make_error("block list state: " + loaded.error());
    }
    for (const std::string& warning : loaded->warnings) {
        log_warning("response", warning);
    }
    for (const std::string& warning : blocks_->restore(std::move(loaded->entries))) {
        log_warning("response", warning);
    }
    blocks_->set_journal(store_.get());
    log_info("response",
            "block list: " + std::to_string(blocks_->size()) + " entries after restart");
    publish_flow_policy();
    return Ok{};
}

void Daemon::publish_flow_policy() {
    auto table = std::make_unique<dataplane::FlowVerdictPolicy>(
            build_flow_verdicts(config_.response, config_.content));
    // Workers read the pointer through their config; swap it in place.
    const dataplane::FlowVerdictPolicy* current = table.get();
    flow_policies_.push_back(std::move(table));
    for (dataplane::Worker* worker : worker_list_) {
        worker->set_flow_policy(current);
    }
}

void log_siem_counts(const SiemOutputs& outputs) {
    for (const auto& output : outputs.outputs()) {
        const SiemOutputCounts c = output->counts();
        const std::string text = output->name() + " output: " + std::to_string(c.sent)
                + " records sent, " + std::to_string(c.dropped) + " dropped (queue full), "
                + std::to_string(c.failed) + " not sent (peer down or stalled)";
        if (c.dropped + c.failed > 0) {
            log_warning("control", text);
        } else {
            log_info("control", text);
        }
    }
}

Result<std::function<void()>> siem_thread(const std::string& name, std::function<void()> body) {
    return dataplane::spawn_ctrl_thread(name, std::move(body));
}

void Daemon::stop_siem_outputs() {
    siem_->request_stop(kSiemDrainMs);
    reap_siem_outputs(true);
    siem_->wait_stopped();
    log_siem_counts(*siem_);
}

bool Daemon::reconfigure_siem(const OutputsConfig& outputs) {
    if (outputs.syslog == config_.outputs.syslog && outputs.redis == config_.outputs.redis) {
        return true;
    }
    auto next = std::make_unique<SiemOutputs>(outputs, EXFILTAP_VERSION);
    if (Status st = next->start(siem_thread); !st) {
        next->stop(0);
        log_error("control", "reload: the SIEM outputs keep their running settings: " + st.error());
        return false;
    }
    sink_->set_outputs(next->empty() ? nullptr : next.get());
    siem_->request_stop(kSiemDrainMs);
    siem_retiring_.push_back(std::move(siem_));
    siem_ = std::move(next);
    config_.outputs.syslog = outputs.syslog;
    config_.outputs.redis = outputs.redis;
    std::string now;
    for (const auto& output : siem_->outputs()) {
        now += (now.empty() ? "" : ", ") + output->name();
    }
    log_info("control",
            "reload: SIEM outputs now " + (now.empty() ? std::string("none") : now)
                    + "; the previous ones send what they hold for up to "
                    + std::to_string(kSiemDrainMs) + " ms");
    return true;
}

void Daemon::reap_siem_outputs(bool wait) {
    for (auto it = siem_retiring_.begin(); it != siem_retiring_.end();) {
        if (!wait && !(*it)->finished()) {
            ++it;
            continue;
        }
        (*it)->wait_stopped();
        log_siem_counts(**it);
        for (const auto& [name, lost] : (*it)->drops()) {
            siem_lost_retired_[name] += lost;
        }
        it = siem_retiring_.erase(it);
    }
}

std::vector<std::pair<std::string, uint64_t>> Daemon::siem_drops() const {
    std::map<std::string, uint64_t> lost = siem_lost_retired_;
    for (const auto& retiring : siem_retiring_) {
        for (const auto& [name, n] : retiring->drops()) {
            lost[name] += n;
        }
    }
    for (const auto& [name, n] : siem_->drops()) {
        lost[name] += n;
    }
    return {lost.begin(), lost.end()};
}

void Daemon::start_evidence(const std::vector<dataplane::Worker*>& workers) {
    const EvidenceConfig& settings = config_.outputs.evidence;
    std::vector<RecordSource> sources;
    for (dataplane::Worker* worker : workers) {
        sources.emplace_back([worker](dataplane::RecorderRequest* request) {
            return worker->request_records(request);
        });
    }
    auto collector = std::make_unique<EvidenceCollector>(settings,
            settings.effective_dir(config_.state_dir), std::move(sources), settings.buffer_bytes());
    if (Status st = collector->start(siem_thread); !st) {
        log_error("evidence", st.error() + "; evidence files will not be written");
        return;
    }
    log_info("evidence",
            "flight recorders on: " + std::to_string(settings.recorder_bytes)
                    + " bytes per worker, " + "evidence files in " + collector->dir());
    evidence_ = std::move(collector);
}

void Daemon::reconfigure_evidence(const EvidenceConfig& loaded) {
    // The recorders stay as the workers allocated them; the files' folder, limits and the
    // request timeout apply to requests made from now on.
    EvidenceConfig& running = config_.outputs.evidence;
    running.dir = loaded.dir;
    running.limits = loaded.limits;
    running.request_timeout_ms = loaded.request_timeout_ms;
    if (evidence_ != nullptr) {
        evidence_->reconfigure(
                running, running.effective_dir(config_.state_dir), running.buffer_bytes());
    }
}

Status Daemon::start_services() {
    server_ = std::make_unique<ControlServer>(config_.control);
    const ThreadSpawner spawner = [](std::function<void()> body) {
        return dataplane::spawn_ctrl_thread("exf-control", std::move(body));
    };
    if (Status st = server_->start(spawner); !st) {
        return make_error("control socket: " + st.error());
    }
    // SIEM outputs: each in its own control thread, never on a worker core.
    if (Status st = siem_->start(siem_thread); !st) {
        return make_error("SIEM output: " + st.error());
    }
    if (config_.metrics.enabled) {
        const RunInThread run_in_thread = [](std::function<void()> job) {
            return dataplane::run_in_ctrl_thread("exf-metrics", job);
        };
        auto exporter = MetricsExporter::start(
                config_.metrics, [this](MetricsSnapshot& s) { fill_metrics(s); }, run_in_thread);
        if (!exporter) {
            return make_error(exporter.error());
        }
        exporter_ = std::move(*exporter);
        log_info("control", "metrics on http://" + config_.metrics.listen + "/metrics");
    }
    return Ok{};
}

void Daemon::on_event(const dataplane::WorkerEvent& event) {
    if (event.type == dataplane::WorkerEvent::Type::FlowRecord) {
        const std::string src = format_ip(event.ip_version, event.src);
        const std::string dst = format_ip(event.ip_version, event.dst);
        Talker& t = talkers_[src + " " + dst];
        t.src = src;
        t.dst = dst;
        t.bytes_out += event.direction_bytes;
        t.bytes_in += event.reverse_bytes;
        t.flows += 1;
        t.last_s = static_cast<int64_t>(event.time_ns / kNsPerS);
        if (talkers_.size() > kTalkerCapacity) {
            // Forget the quietest pair (rare: only when the map is full).
            auto quietest = std::min_element(
                    talkers_.begin(), talkers_.end(), [](const auto& a, const auto& b) {
                        return a.second.bytes_out + a.second.bytes_in
                                < b.second.bytes_out + b.second.bytes_in;
                    });
            talkers_.erase(quietest);
        }
        return;
    }
    sink_->on_event(event);
}

// One block a policy asked for: shadowed, added, or refused (allowlist, capacity). Returns
// what the record says was done; `action` becomes blocked or would_drop when it took effect.
std::string Daemon::policy_block(const Decision& decision, const Prefix& target,
        std::string_view detector, const std::string& detail, const std::string& signature,
        std::string& action) {
    if (decision.shadow) {
        action = "would_drop";
        return "shadow: would block " + target.to_string() + " (policy " + decision.rule + ")";
    }
    BlockRequest request;
    request.prefix = target;
    request.source = EntrySource::Detector;
    request.who = detector_who(detector);
    request.detail = detail;
    request.reason = signature + " (policy " + decision.rule + ")";
    request.ttl_s = decision.ttl_s;
    auto outcome = blocks_->block(request);
    if (outcome && outcome->added) {
        // Passive ports drop nothing: the block is listed and counted as would_drop.
        action = config_.ports.inline_mode ? "blocked" : "would_drop";
        return (config_.ports.inline_mode ? "blocked " : "passive: listed ")
                + request.prefix.to_string() + " for " + std::to_string(outcome->ttl_s)
                + " s (policy " + decision.rule + ")";
    }
    return outcome ? outcome->message : outcome.error();
}

// An incident opened or rose: the first policy whose incident_score it reaches acts, once per
// incident (a later, higher-threshold policy acts again when the score reaches it).
void Daemon::on_incident(Incident& incident, IncidentEvent event) {
    if (event == IncidentEvent::Closed) {
        incident_evidence_.erase(incident.id);
        return;
    }
    request_incident_evidence(incident);
    PolicyInput input;
    input.detector = kDetectorIncident;
    input.severity = detectors::Severity::High;
    input.incident_score = incident.score;
    input.source = {incident.ip_version, incident.host, true};
    input.destination = input.source;
    const Decision decision = decide(config_.response, input);
    if (decision.rule.empty() || decision.rule == incident.acted_policy) {
        return;
    }
    incident.acted_policy = decision.rule;
    const std::vector<Prefix> targets = incident_block_targets(incident, decision.action);
    if (decision.action == PolicyAction::Alert || targets.empty()) {
        incident.response = decision.action == PolicyAction::Alert
                ? "alert (policy " + decision.rule + ")"
                : "nothing to block: no outside peer among the findings (policy " + decision.rule
                        + ")";
        return;
    }
    std::string responses;
    std::string action;
    const std::string detail = "incident " + std::to_string(incident.id);
    const std::string signature = "EXFIL incident " + std::to_string(incident.id) + " score "
            + std::to_string(incident.score);
    for (const Prefix& target : targets) {
        responses += (responses.empty() ? "" : "; ")
                + policy_block(decision, target, kDetectorIncident, detail, signature, action);
    }
    incident.response = responses;
}

void Daemon::request_incident_evidence(const Incident& incident) {
    if (evidence_ == nullptr) {
        return;
    }
    std::set<uint64_t>& asked = incident_evidence_[incident.id];
    std::vector<uint64_t> flows;
    for (const IncidentFinding& finding : incident.findings) {
        if (finding.flow_id != 0 && flows.size() < kMaxEvidenceFlows
                && asked.insert(finding.flow_id).second) {
            flows.push_back(finding.flow_id);
        }
    }
    if (flows.empty()) {
        return;
    }
    const std::string id = "incident-" + std::to_string(incident.id);
    Result<EvidenceTicket> ticket = evidence_->request(id, flows);
    if (!ticket) {
        log_warning("control", "evidence for " + id + ": " + ticket.error());
        return;
    }
    log_info("control",
            "evidence for " + id + ": " + std::to_string(flows.size()) + " flow(s) to "
                    + ticket->path);
}

// Every alert record passes here before it is written: the response policy decides, the
// block list acts, and the record says what was done.
void Daemon::on_record(AlertRecord& record) {
    PolicyInput input;
    input.detector = record.detector;
    input.class_name = record.cls;
    input.severity = record.severity;
    input.source = {
            record.ip_version, record.src, config_.is_internal(record.ip_version, record.src)};
    input.destination = {
            record.ip_version, record.dst, config_.is_internal(record.ip_version, record.dst)};
    const Decision decision = decide(config_.response, input);
    if (decision.block_target.has_value()) {
        const std::string detail = "signature " + std::to_string(record.signature_id) + " flow "
                + std::to_string(record.flow_id);
        record.response = policy_block(decision, *decision.block_target, record.detector, detail,
                record.signature, record.action);
    }
    const std::string line = alert_to_json(record);
    recent_alerts_.push_back(line);
    if (recent_alerts_.size() > kRecentAlerts) {
        recent_alerts_.pop_front();
    }
    if (server_ != nullptr) {
        server_->publish_alert(line);
    }
    ++alert_counts_[{
            record.detector, record.cls, std::string(detectors::severity_name(record.severity))}];
    ++alerts_since_tick_;
}

void Daemon::log_final_counts() {
    uint64_t rx = 0;
    uint64_t tx = 0;
    uint64_t policy = 0;
    uint64_t exceptions = 0;
    uint64_t tx_full = 0;
    for (const auto& w : workers_) {
        const dataplane::WorkerCounters& c = w->counters();
        rx += c.rx_packets.get();
        tx += c.tx_packets.get();
        for (const Counter& d : c.policy_dropped) {
            policy += d.get();
        }
        for (const Counter& d : c.dropped) {
            exceptions += d.get();
        }
        tx_full += c.tx_queue_full.get();
    }
    // Inline: packets in equal packets out plus the drops counted by reason (one count a
    // packet); anything else went missing. Passive ports forward nothing.
    const uint64_t dropped = policy + exceptions + tx_full;
    const uint64_t accounted = tx + dropped;
    std::string balance;
    if (!config_.ports.inline_mode) {
        balance = ", passive (nothing forwarded)";
    } else if (accounted == rx) {
        balance = ", every packet accounted for";
    } else {
        balance =
                ", UNACCOUNTED " + std::to_string(rx > accounted ? rx - accounted : accounted - rx);
    }
    log_info("dataplane",
            "final counts: " + std::to_string(rx) + " received, " + std::to_string(tx) + " sent, "
                    + std::to_string(dropped) + " dropped; policy " + std::to_string(policy)
                    + ", exceptions " + std::to_string(exceptions) + ", tx queue full "
                    + std::to_string(tx_full) + balance);
    // Alert records: a last look for a removed file, then what could not be written at all.
    if (writer_ != nullptr) {
        if (std::optional<std::string> what = writer_->recover_removed()) {
            log_error("control", *what);
        }
        if (writer_->failed() > 0) {
            log_error("control",
                    std::to_string(writer_->failed()) + " alert records of "
                            + std::to_string(writer_->failed() + writer_->written())
                            + " could not be written to " + alerts_path_);
        }
    }
}

bool Daemon::tick(const std::vector<dataplane::Worker*>& workers) {
    worker_list_ = workers;
    if (reloader_ != nullptr) {
        reloader_->poll(workers);
    }
    if (evidence_ == nullptr && config_.outputs.evidence.enabled && !workers.empty()) {
        start_evidence(workers);
    }
    if (evidence_ != nullptr) {
        evidence_->poll();
    }
    if (options_.reload_requested != nullptr && *options_.reload_requested != 0) {
        *options_.reload_requested = 0;
        (void)reload(workers);  // logged either way
    }
    if (server_ != nullptr) {
        server_->dispatch(*this);
    }
    const int64_t now = wall_s();
    if (now >= next_expiry_s_) {
        next_expiry_s_ = now + 1;
        for (const BlockEntry& expired : blocks_->expire(now)) {
            log_info("response", "expired: " + expired.prefix.to_string());
        }
        if (store_ != nullptr) {
            if (Status st = store_->maybe_snapshot(*blocks_, now); !st) {
                log_error("response", st.error());
            }
        }
        const uint64_t watermark_ns = dataplane::packet_time_watermark(workers);
        feed_->advance(watermark_ns);
        // Quiet hosts close their incidents in packet time, like the windows of the feed.
        sink_->incidents().expire(static_cast<double>(watermark_ns) / 1e9);
        reap_siem_outputs(false);
        if (writer_ != nullptr) {
            if (std::optional<std::string> what = writer_->recover_removed()) {
                log_error("control", *what);
            }
        }
        if (now >= next_baseline_save_s_) {
            next_baseline_save_s_ = now + kBaselineSaveIntervalS;
            if (Status st = feed_->save_baselines(config_.state_dir); !st) {
                log_error("behaviour", st.error());
            }
        }
        refresh_metrics();
    }
    return options_.stop_requested == nullptr || *options_.stop_requested == 0;
}

Status Daemon::reload(const std::vector<dataplane::Worker*>& workers) {
    Status st = apply_reload(workers);
    (st ? reloads_applied_ : reloads_refused_).fetch_add(1, std::memory_order_relaxed);
    return st;
}

Status Daemon::apply_reload(const std::vector<dataplane::Worker*>& workers) {
    auto loaded = options_.config_path.empty() ? Result<Config>(default_config())
                                               : load_config(options_.config_path);
    for (const std::string& assignment : options_.overrides) {
        if (loaded) {
            if (Status st = apply_override(*loaded, assignment); !st) {
                loaded = make_error(st.error());
            }
        }
    }
    if (loaded) {
        if (Status st = load_edm(*loaded); !st) {
            loaded = make_error(st.error());
        }
    }
    if (!loaded) {
        log_error("control", "reload refused, the old configuration stays:\n" + loaded.error());
        return make_error("reload refused, the old configuration stays: " + loaded.error());
    }
    auto db = detectors::PatternDatabase::compile(loaded->content);
    if (!db) {
        log_error("control", "reload refused: " + db.error());
        return make_error("reload refused: " + db.error());
    }
    if (Status st = reloader_->publish(*db, workers); !st) {
        log_error("control", "reload refused: " + st.error());
        return make_error("reload refused: " + st.error());
    }
    const bool restart_needed = loaded->flows.table_size != config_.flows.table_size
            || loaded->flows.parsers != config_.flows.parsers
            || loaded->flows.parser_slots != config_.flows.parser_slots
            || loaded->flows.body_decoders != config_.flows.body_decoders
            || loaded->workers.count != config_.workers.count
            || loaded->dpdk.memory_mb != config_.dpdk.memory_mb
            || loaded->dpdk.eal_args != config_.dpdk.eal_args
            || loaded->ports.pairs.size() != config_.ports.pairs.size()
            || loaded->ports.passive != config_.ports.passive
            || loaded->ports.inline_mode != config_.ports.inline_mode
            || loaded->control.socket != config_.control.socket
            || loaded->metrics.listen != config_.metrics.listen
            || loaded->response.exact_capacity != config_.response.exact_capacity
            || loaded->response.prefix_capacity != config_.response.prefix_capacity
            || loaded->state_dir != config_.state_dir
            || loaded->outputs.alerts_file != config_.outputs.alerts_file
            || loaded->control.group != config_.control.group
            || loaded->control.max_connections != config_.control.max_connections
            || loaded->control.rate_per_s != config_.control.rate_per_s
            || loaded->control.max_line_bytes != config_.control.max_line_bytes
            || loaded->metrics.enabled != config_.metrics.enabled
            || loaded->edm.state_slots != config_.edm.state_slots
            || !loaded->outputs.evidence.same_recorders(config_.outputs.evidence);
    if (restart_needed) {
        log_warning("control",
                "reload: dpdk, ports, workers, table sizes, state_dir, the alerts file "
                "name, the control and metrics settings and the evidence recorders (enabled, "
                "recorder_bytes, snap_bytes) need a restart; their running values are kept");
    }
    config_.content = loaded->content;
    config_.outputs.alert_suppression_s = loaded->outputs.alert_suppression_s;
    config_.internal_networks = loaded->internal_networks;
    config_.response.policies = loaded->response.policies;
    config_.response.shadow = loaded->response.shadow;
    config_.response.default_ttl_s = loaded->response.default_ttl_s;
    config_.response.min_prefix_v4 = loaded->response.min_prefix_v4;
    config_.response.min_prefix_v6 = loaded->response.min_prefix_v6;
    config_.response.catch_and_release = loaded->response.catch_and_release;
    config_.response.allowlist = loaded->response.allowlist;
    for (const std::string& warning : blocks_->apply_config(config_.response)) {
        log_warning("response", warning);
    }
    config_.assets = loaded->assets;
    config_.behaviour = loaded->behaviour;
    config_.incidents = loaded->incidents;
    sink_->incidents().set_config(config_.incidents);
    config_.response.sanctioned = loaded->response.sanctioned;
    config_.response.sanctioned_defaults = loaded->response.sanctioned_defaults;
    config_.response.sanctioned_added = loaded->response.sanctioned_added;
    feed_->reconfigure(config_);
    publish_flow_policy();
    (void)reconfigure_siem(loaded->outputs);  // logged either way
    reconfigure_evidence(loaded->outputs.evidence);
    if (writer_ != nullptr && alerts_path_ != "-") {
        if (Status st = writer_->reopen(); !st) {
            log_error("control", st.error());
        }
    }
    if (Status st = audit_->reopen(); !st) {
        log_error("control", st.error());
    }
    log_info("control",
            "reload: content generation " + std::to_string(reloader_->generation())
                    + ", networks, assets, behaviour, incidents, response policy, sanctioned "
                      "destinations, allowlist, SIEM outputs and evidence files applied");
    return Ok{};
}

void Daemon::refresh_metrics() {
    ControlView view;
    uint64_t exact_hits = 0;
    uint64_t prefix_hits = 0;
    for (const BlockEntry& entry : blocks_->entries()) {
        (entry.exact ? exact_hits : prefix_hits) += blocks_->hits(entry);
    }
    view.blocklist = {{"exact", blocks_->exact_count(), exact_hits},
            {"prefix", blocks_->prefix_count(), prefix_hits}};
    view.alerts = alert_counts_;
    for (size_t i = 0; i < ports_->ports().size(); ++i) {
        const auto stats = ports_->stats(i);
        view.port_errors.push_back({ports_->ports()[i].name, stats.missed, stats.nombuf});
    }
    view.alert_write_failures = writer_ != nullptr ? writer_->failed() : 0;
    view.siem_drops = siem_drops();
    for (const auto& port : ports_->ports()) {
        view.ports.emplace_back(port.port_id, port.name);
    }
    for (size_t i = 0; i < detectors::kContentClassCount; ++i) {
        view.severity[i] = config_.content.severity_of(static_cast<detectors::ContentClass>(i), 0);
    }
    for (const CommandCount& row : server_->command_counts()) {
        view.commands.push_back({std::string(row.command),
                std::string(command_result_name(row.result)), row.count});
    }
    view.follow_dropped = server_->stats().follow_lines_dropped;
    const detectors::BehaviourStats behaviour = feed_->stats();
    for (const detectors::EdmTableRules& table : config_.content.edm_tables) {
        if (table.index != nullptr) {
            view.edm_rows.push_back({table.index->schema().table, table.index->rows()});
        }
    }
    view.incidents_opened = sink_->incidents().opened_total();
    view.incidents_open = sink_->incidents().open_count();
    view.behaviour_tables = {{"hosts", behaviour.hosts, behaviour.host_evictions},
            {"flows", behaviour.flows, behaviour.flow_evictions},
            {"domains", behaviour.domains, behaviour.domain_evictions},
            {"login_keys", behaviour.login_keys, behaviour.login_evictions}};
    // Busy ratio over the last interval.
    const uint64_t tsc = rte_rdtsc();
    busy_ratio_.assign(worker_list_.size(), 0.0);
    busy_cycles_before_.resize(worker_list_.size(), 0);
    for (size_t w = 0; w < worker_list_.size(); ++w) {
        const uint64_t busy = worker_list_[w]->counters().busy_cycles.get();
        if (tsc_before_ != 0 && tsc > tsc_before_) {
            busy_ratio_[w] = std::min(1.0,
                    static_cast<double>(busy - busy_cycles_before_[w])
                            / static_cast<double>(tsc - tsc_before_));
        }
        busy_cycles_before_[w] = busy;
    }
    tsc_before_ = tsc;
    const std::lock_guard lock(view_mutex_);
    view.counters = std::move(view_.counters);
    view.app = std::move(view_.app);
    view.edm = std::move(view_.edm);
    view.busy_ratio = busy_ratio_;
    view_ = std::move(view);
}

// On a civetweb thread: worker counters are single-writer relaxed atomics, read as they are;
// what the control loop owns comes from the view it refreshes each second.
void Daemon::fill_metrics(MetricsSnapshot& s) {
    const std::lock_guard lock(view_mutex_);
    s.version = EXFILTAP_VERSION;
    const auto& counters = view_.counters;
    std::map<std::string, std::array<uint64_t, 4>> traffic;  // rx packets, rx bytes, tx ...
    std::array<uint64_t, dataplane::kDropCauseCount> dropped{};
    std::array<uint64_t, dataplane::kDropCauseCount> would_drop{};
    std::array<uint64_t, dataplane::kExceptionReasonCount> exception_drops{};
    std::array<uint64_t, dataplane::kMalformedCount> malformed{};
    std::array<uint64_t, detectors::kContentClassCount> findings{};
    uint64_t tx_queue_full = 0;
    for (size_t w = 0; w < counters.size(); ++w) {
        const dataplane::WorkerCounters& c = *counters[w];
        for (const auto& port : view_.ports) {
            auto& row = traffic[port.second];
            row[0] += c.port_rx_packets[port.first].get();
            row[1] += c.port_rx_bytes[port.first].get();
            row[2] += c.port_tx_packets[port.first].get();
            row[3] += c.port_tx_bytes[port.first].get();
        }
        for (size_t i = 1; i < dataplane::kDropCauseCount; ++i) {
            dropped[i] += c.policy_dropped[i].get();
            would_drop[i] += c.policy_would_drop[i].get();
        }
        for (size_t i = 0; i < dataplane::kExceptionReasonCount; ++i) {
            exception_drops[i] += c.dropped[i].get();
        }
        tx_queue_full += c.tx_queue_full.get();
        for (size_t i = 0; i < dataplane::kMalformedCount; ++i) {
            malformed[i] += c.malformed[i].get();
        }
        for (size_t i = 0; i < detectors::kContentClassCount; ++i) {
            findings[i] += c.findings[i].get();
        }
        WorkerStats ws;
        ws.worker = std::to_string(w);
        ws.flows_active = c.flows_active.get();
        ws.flows_created = c.flows_created.get();
        ws.stream_gaps = c.stream_gaps.get();
        ws.scanned_bytes = c.scanned_bytes.get();
        ws.busy_ratio = w < view_.busy_ratio.size() ? view_.busy_ratio[w] : 0.0;
        s.workers.push_back(ws);
        s.evictions.push_back({std::to_string(w), "timeout", c.flows_timed_out.get()});
        s.evictions.push_back({std::to_string(w), "table_full", c.flows_evicted_full.get()});
    }
    for (const auto& [port, row] : traffic) {
        s.traffic.push_back({port, "rx", row[0], row[1]});
        s.traffic.push_back({port, "tx", row[2], row[3]});
    }
    for (size_t i = 1; i < dataplane::kDropCauseCount; ++i) {
        const std::string reason(dataplane::kDropCauseNames[i]);
        s.dropped.push_back({reason, dropped[i]});
        s.would_drop.push_back({reason, would_drop[i]});
    }
    for (size_t i = 0; i < dataplane::kExceptionReasonCount; ++i) {
        s.dropped.push_back({std::string(dataplane::kExceptionReasonNames[i]), exception_drops[i]});
    }
    s.dropped.push_back({"tx_queue_full", tx_queue_full});
    // Every label set from the start, so increase() sees the first event.
    for (size_t i = 0; i < dataplane::kMalformedCount; ++i) {
        if (static_cast<dataplane::Malformed>(i) != dataplane::Malformed::None) {
            s.malformed.push_back(
                    {std::string(dataplane::malformed_name(static_cast<dataplane::Malformed>(i))),
                            malformed[i]});
        }
    }
    s.port_errors = view_.port_errors;
    // Findings by class (the severity is the class's configured one); alerts as written.
    std::map<std::tuple<std::string, std::string, std::string>, std::pair<uint64_t, uint64_t>> det;
    for (size_t i = 0; i < detectors::kContentClassCount; ++i) {
        const auto cls = static_cast<detectors::ContentClass>(i);
        det[{"content", std::string(detectors::content_class_name(cls)),
                    std::string(detectors::severity_name(view_.severity[i]))}]
                .first = findings[i];
    }
    for (const auto& [key, count] : view_.alerts) {
        det[key].second = count;
    }
    for (const auto& [key, counts] : det) {
        s.detections.push_back({std::get<0>(key), std::get<1>(key), std::get<2>(key), counts.first,
                counts.second});
    }
    s.blocklist = view_.blocklist;
    s.commands = view_.commands;
    std::array<uint64_t, detectors::kAppProtoCount> app_flows{};
    uint64_t slots_exhausted = 0;
    uint64_t decoders_exhausted = 0;
    for (const dataplane::AppCounters* a : view_.app) {
        for (size_t p = 0; p < detectors::kAppProtoCount; ++p) {
            app_flows[p] += a->flows_by_proto[p].get();
        }
        slots_exhausted += a->slots_exhausted.get();
        decoders_exhausted += a->decoders_exhausted.get();
    }
    for (size_t p = 0; p < detectors::kAppProtoCount; ++p) {
        s.app_flows.push_back(
                {std::string(detectors::app_proto_name(static_cast<detectors::AppProto>(p))),
                        app_flows[p]});
    }
    s.app_exhausted = {{"parser_slots", slots_exhausted}, {"body_decoders", decoders_exhausted}};
    s.behaviour_tables = view_.behaviour_tables;
    std::array<uint64_t, 5> edm_work{};
    std::array<uint64_t, 3> edm_exhausted{};
    for (const detectors::EdmCounters* e : view_.edm) {
        edm_work[0] += e->words.get();
        edm_work[1] += e->primary_hits.get();
        edm_work[2] += e->value_hits.get();
        edm_work[3] += e->records.get();
        edm_work[4] += e->words_unknown.get();
        edm_exhausted[0] += e->state_exhausted.get();
        edm_exhausted[1] += e->hits_overwritten.get();
        edm_exhausted[2] += e->candidates_dropped.get();
    }
    s.edm_work = {{"words", edm_work[0]}, {"primary_hits", edm_work[1]},
            {"value_hits", edm_work[2]}, {"records", edm_work[3]}, {"words_unknown", edm_work[4]}};
    s.edm_exhausted = {{"state_slots", edm_exhausted[0]}, {"hit_list", edm_exhausted[1]},
            {"waiting_records", edm_exhausted[2]}};
    s.edm_rows = view_.edm_rows;
    s.incidents_opened = view_.incidents_opened;
    s.incidents_open = view_.incidents_open;
    s.reloads.push_back({"applied", reloads_applied_.load(std::memory_order_relaxed)});
    s.reloads.push_back({"refused", reloads_refused_.load(std::memory_order_relaxed)});
    s.output_drops.push_back({"alerts_file", view_.alert_write_failures});
    s.output_drops.push_back({"control_follow", view_.follow_dropped});
    for (const auto& [name, lost] : view_.siem_drops) {
        s.output_drops.push_back({name, lost});
    }
}

nlohmann::json Daemon::entry_json(const BlockEntry& entry) const {
    nlohmann::json j;
    j["address"] = entry.prefix.length == (entry.prefix.ip_version == 4 ? 32 : 128)
            ? format_ip(entry.prefix.ip_version, entry.prefix.addr)
            : entry.prefix.to_string();
    j["kind"] = std::string(entry_kind_name(entry.kind));
    j["source"] = std::string(entry_source_name(entry.source));
    j["who"] = entry.who;
    j["reason"] = entry.reason;
    j["created"] = iso_time(entry.created_s);
    j["expires"] = iso_time(entry.expires_s);
    j["ttl_s"] = entry.ttl_s;
    j["hits"] = blocks_->hits(entry);
    if (const BlockEntry* allow = blocks_->shadowed_by(entry); allow != nullptr) {
        j["shadowed_by"] = allow->prefix.to_string();
    }
    return j;
}

nlohmann::json Daemon::stats_json() const {
    nlohmann::json j;
    uint64_t rx = 0;
    uint64_t tx = 0;
    uint64_t flows = 0;
    uint64_t dropped_blocked = 0;
    uint64_t dropped_verdict = 0;
    uint64_t would_drop = 0;
    uint64_t scanned = 0;
    uint64_t verdicts = 0;
    uint64_t resets = 0;
    uint64_t resets_failed = 0;
    uint64_t tx_queue_full = 0;
    uint64_t exception_drops = 0;
    for (const dataplane::Worker* w : worker_list_) {
        const auto& c = w->counters();
        tx_queue_full += c.tx_queue_full.get();
        for (const Counter& d : c.dropped) {
            exception_drops += d.get();
        }
        verdicts += c.flow_verdicts.get();
        resets += c.resets_sent.get();
        resets_failed += c.resets_failed.get();
        rx += c.rx_packets.get();
        tx += c.tx_packets.get();
        flows += c.flows_active.get();
        dropped_blocked += c.policy_dropped[1].get();
        dropped_verdict += c.policy_dropped[2].get();
        would_drop += c.policy_would_drop[1].get() + c.policy_would_drop[2].get();
        scanned += c.scanned_bytes.get();
    }
    j["uptime_s"] = wall_s() - started_s_;
    j["workers"] = worker_list_.size();
    j["packets_rx"] = rx;
    j["packets_tx"] = tx;
    j["flows_active"] = flows;
    j["dropped_blocked"] = dropped_blocked;
    j["dropped_flow_verdict"] = dropped_verdict;
    j["dropped_exceptions"] = exception_drops;
    j["dropped_tx_queue_full"] = tx_queue_full;
    j["would_drop"] = would_drop;
    j["scanned_bytes"] = scanned;
    j["flow_verdicts"] = verdicts;
    j["resets_sent"] = resets;
    j["resets_failed"] = resets_failed;
    uint64_t alerts = 0;
    for (const auto& [key, count] : alert_counts_) {
        alerts += count;
    }
    j["alerts"] = alerts;
    j["blocklist_exact"] = blocks_->exact_count();
    j["blocklist_prefix"] = blocks_->prefix_count();
    j["blocklist_offloaded"] = table_sink_->offloaded();
    j["mode"] = config_.ports.inline_mode ? "inline" : "passive";
    nlohmann::json outputs = nlohmann::json::object();
    for (const auto& output : siem_->outputs()) {
        const SiemOutputCounts c = output->counts();
        outputs[output->name()] = {{"offered", c.offered}, {"sent", c.sent},
                {"dropped_queue_full", c.dropped}, {"not_sent", c.failed}, {"connects", c.connects},
                {"connect_failures", c.connect_failures}};
    }
    j["siem_outputs"] = outputs;
    if (evidence_ != nullptr) {
        const EvidenceCounters e = evidence_->counters();
        uint64_t recorded = 0;
        uint64_t overwritten = 0;
        for (const dataplane::Worker* w : worker_list_) {
            recorded += w->counters().recorded_packets.get();
            overwritten += w->counters().recorder_overwritten.get();
        }
        j["evidence"] = {{"dir", evidence_->dir()}, {"requests", e.requests},
                {"refused", e.refused}, {"abandoned", e.abandoned},
                {"queue_dropped", e.queue_dropped}, {"files_written", e.files_written},
                {"write_errors", e.write_errors}, {"packets_written", e.packets_written},
                {"bytes_written", e.bytes_written}, {"packets_truncated", e.packets_truncated},
                {"overrun_bytes", e.overrun_bytes}, {"packets_cut", e.packets_cut},
                {"files_removed", e.files_removed}, {"bytes_removed", e.bytes_removed},
                {"recorded_packets", recorded}, {"recorder_overwritten", overwritten}};
    }
    j["siem_records_lost"] = nlohmann::json::object();
    for (const auto& [name, lost] : siem_drops()) {
        j["siem_records_lost"][name] = lost;
    }
    const dataplane::MemoryUsage memory = dataplane::memory_usage();
    j["memory"] = {{"heap_in_use_bytes", memory.heap_in_use_bytes},
            {"heap_free_held_bytes", memory.heap_free_held_bytes},
            {"dpdk_heap_in_use_bytes", memory.dpdk_heap_in_use_bytes},
            {"dpdk_heap_total_bytes", memory.dpdk_heap_total_bytes},
            {"mbufs_in_use", memory.mbufs_in_use}, {"mbufs_total", memory.mbufs_total}};
    return j;
}

Reply Daemon::block_reply(const Result<BlockOutcome>& outcome, const Prefix& prefix) {
    if (!outcome) {
        return Reply::failure(outcome.error());
    }
    if (!outcome->added) {
        return Reply::failure(outcome->message);
    }
    const BlockEntry* entry = blocks_->find(prefix, EntryKind::Block);
    return Reply::success(entry != nullptr ? entry_json(*entry) : nlohmann::json(outcome->message));
}

// Operator entries that would switch a link off or all blocking off with one command, or
// that can never match.
std::string refuse_operator_entry(const Prefix& prefix) {
    constexpr uint8_t kWidestV4 = 8;
    constexpr uint8_t kWidestV6 = 16;
    if (prefix.ip_version == 4 && prefix.length < kWidestV4) {
        return "refused: " + prefix.to_string() + " is wider than /8; list narrower prefixes";
    }
    if (prefix.ip_version == 6 && prefix.length < kWidestV6) {
        return "refused: " + prefix.to_string() + " is wider than /16; list narrower prefixes";
    }
    const std::array<uint8_t, 12> mapped = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (prefix.ip_version == 6 && std::equal(mapped.begin(), mapped.end(), prefix.addr.begin())) {
        return "refused: " + prefix.to_string()
                + " is an IPv4-mapped IPv6 address; give the IPv4 address";
    }
    return {};
}

Reply Daemon::handle(const Request& request, const Peer& peer) {
    const std::string who = operator_who(peer.user, static_cast<uint32_t>(peer.uid));
    if (request.command == Command::Block || request.command == Command::Allow) {
        if (std::string why = refuse_operator_entry(request.address); !why.empty()) {
            return Reply::failure(why);
        }
    }
    switch (request.command) {
    case Command::Block: {
        BlockRequest block;
        block.prefix = request.address;
        block.source = EntrySource::Operator;
        block.who = who;
        block.reason = request.reason;
        block.ttl_s = request.ttl_s.value_or(0);
        return block_reply(blocks_->block(block), request.address);
    }
    case Command::Unblock: {
        auto result = blocks_->unblock(request.address, who);
        return result ? Reply::success(*result) : Reply::failure(result.error());
    }
    case Command::Allow: {
        auto result = blocks_->allow(request.address, who, request.reason);
        if (!result) {
            return Reply::failure(result.error());
        }
        nlohmann::json message;
        message["message"] = result->message;
        message["shadowed"] = nlohmann::json::array();
        for (const Prefix& p : result->shadowed) {
            message["shadowed"].push_back(p.to_string());
        }
        return Reply::success(message);
    }
    case Command::Unallow: {
        auto result = blocks_->unallow(request.address, who);
        return result ? Reply::success(*result) : Reply::failure(result.error());
    }
    case Command::List: {
        nlohmann::json list = nlohmann::json::array();
        for (const BlockEntry& entry : blocks_->entries()) {
            if ((request.kind == ListKind::Block && entry.kind != EntryKind::Block)
                    || (request.kind == ListKind::Allow && entry.kind != EntryKind::Allow)) {
                continue;
            }
            list.push_back(entry_json(entry));
        }
        return Reply::success(list);
    }
    case Command::Stats:
        return Reply::success(stats_json());
    case Command::Flows: {
        std::vector<const Talker*> sorted;
        for (const auto& [key, talker] : talkers_) {
            sorted.push_back(&talker);
        }
        std::sort(sorted.begin(), sorted.end(), [](const Talker* a, const Talker* b) {
            return a->bytes_out + a->bytes_in > b->bytes_out + b->bytes_in;
        });
        nlohmann::json list = nlohmann::json::array();
        for (size_t i = 0; i < sorted.size() && i < request.top; ++i) {
            list.push_back({{"src", sorted[i]->src}, {"dst", sorted[i]->dst},
                    {"bytes_out", sorted[i]->bytes_out}, {"bytes_in", sorted[i]->bytes_in},
                    {"flows", sorted[i]->flows}, {"last", iso_time(sorted[i]->last_s)}});
        }
        return Reply::success(list);
    }
    case Command::Alerts: {
        nlohmann::json list = nlohmann::json::array();
        const size_t n = std::min<size_t>(request.count, recent_alerts_.size());
        for (size_t i = recent_alerts_.size() - n; i < recent_alerts_.size(); ++i) {
            list.push_back(nlohmann::json::parse(recent_alerts_[i], nullptr, false));
        }
        return Reply::success(list);
    }
    case Command::Incidents: {
        const IncidentCorrelator& incidents = sink_->incidents();
        if (request.incident_id.empty()) {
            nlohmann::json list = nlohmann::json::array();
            for (const Incident* incident : incidents.list()) {
                list.push_back(incident_row(*incident));
            }
            return Reply::success(list);
        }
        // Ids are the decimal numbers incident records carry; anything else names none.
        uint64_t id = 0;
        const std::string& text = request.incident_id;
        const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), id);
        const Incident* incident = ec == std::errc() && end == text.data() + text.size()
                ? incidents.find(id)
                : nullptr;
        if (incident == nullptr) {
            return Reply::failure("no incident " + text
                    + " (open and recently closed ones: exfiltapctl incidents)");
        }
        return Reply::success(incident_detail(*incident));
    }
    case Command::Evidence: {
        if (evidence_ == nullptr) {
            return Reply::failure(
                    "evidence is off (outputs.evidence.enabled) or the workers are not running");
        }
        const std::string id = request.incident_id.empty() ? "operator" : request.incident_id;
        Result<EvidenceTicket> ticket = evidence_->request(id, request.flow_ids);
        if (!ticket) {
            return Reply::failure(ticket.error());
        }
        return Reply::success({{"path", ticket->path}, {"id", id}, {"flow_ids", request.flow_ids},
                {"request", ticket->sequence}});
    }
    case Command::Reload: {
        Status st = reload(worker_list_);
        return st ? Reply::success(
                       "reloaded: content, networks, assets, behaviour, incidents, response "
                       "policy, "
                       "sanctioned destinations, allowlist and SIEM outputs applied (settings "
                       "that need a "
                       "restart keep their running values; the daemon log names them)")
                  : Reply::failure(st.error());
    }
    case Command::ReopenLogFiles: {
        std::string problems;
        if (writer_ != nullptr && alerts_path_ != "-") {
            if (Status st = writer_->reopen(); !st) {
                problems += st.error();
            }
        }
        if (Status st = audit_->reopen(); !st) {
            problems += (problems.empty() ? "" : "; ") + st.error();
        }
        return problems.empty() ? Reply::success("log files reopened") : Reply::failure(problems);
    }
    case Command::Version:
        return Reply::success(std::string("exfiltap ") + EXFILTAP_VERSION);
    case Command::CommandList:
        return Reply::success(command_list_message());
    }
    return Reply::failure("unknown command");
}

int Daemon::run() {
    started_s_ = wall_s();
    if (Status st = open_outputs(); !st) {
        log_error("control", st.error());
        return kExitRuntime;
    }
    if (Status st = start_dataplane(); !st) {
        log_error("dataplane", st.error());
        return kExitRuntime;
    }
    int rc = 0;
    {
        if (Status st = start_response(); !st) {
            log_error("response", st.error());
            rc = kExitRuntime;
        }
        if (rc == 0) {
            if (Status st = start_services(); !st) {
                log_error("control", st.error());
                rc = kExitRuntime;
            }
        }
        if (rc == 0) {
            const unsigned workers =
                    options_.workers != 0 ? options_.workers : config_.workers.count;
            internal_ = internal_networks(config_);
            dataplane::LiveOptions live;
            live.worker = worker_template(config_, internal_, patterns_);
            live.worker.flow_records = true;
            live.worker.blocks = table_.get();
            live.worker.flow_policy = flow_policies_.back().get();
            if (config_.outputs.evidence.enabled) {
                live.worker.recorder_bytes = config_.outputs.evidence.recorder_bytes;
                live.worker.recorder_snap_bytes = config_.outputs.evidence.snap_bytes;
            }
            live.workers = workers;
            live.ports = ports_.get();
            std::vector<hs_scratch*> scratches;
            for (unsigned w = 0; w < workers; ++w) {
                auto scratch = patterns_->alloc_scratch();
                if (!scratch) {
                    log_error("detectors", scratch.error());
                    return kExitRuntime;
                }
                scratches.push_back(*scratch);
            }
            live.scratches = scratches;
            reloader_ = std::make_unique<dataplane::ContentReloader>(patterns_);
            live.on_event = [this](const dataplane::WorkerEvent& e) {
                on_event(e);
            };
            live.on_tick = [this](const std::vector<dataplane::Worker*>& list) {
                if (worker_list_.empty()) {
                    const std::lock_guard lock(view_mutex_);
                    for (const dataplane::Worker* w : list) {
                        view_.counters.push_back(&w->counters());
                        view_.edm.push_back(&w->edm_counters());
                        if (w->app_layer() != nullptr) {
                            view_.app.push_back(&w->app_layer()->counters());
                        }
                    }
                }
                return tick(list);
            };
            live.on_ready = [this]() {
                log_info("control",
                        "ready: " + std::to_string(ports_->ports().size()) + " port(s), "
                                + std::to_string(workers_.size()) + " worker(s), "
                                + (config_.ports.inline_mode ? "inline" : "passive")
                                + ", control socket " + config_.control.socket);
                sd_notify(0, "READY=1\nSTATUS=forwarding");
            };
            auto result = dataplane::run_live(live, shared_, workers_);
            sd_notify(0, "STOPPING=1");
            if (!result) {
                log_error("dataplane", result.error());
                rc = kExitRuntime;
            }
            feed_->flush();
            sink_->flush_all();
            stop_siem_outputs();
            if (evidence_ != nullptr) {
                evidence_->poll();  // what the workers answered still gets written
                evidence_->stop();
            }
            log_final_counts();
            if (Status st = feed_->save_baselines(config_.state_dir); !st) {
                log_error("behaviour", st.error());
            }
            if (Status st = store_->write_snapshot(blocks_->persistent_entries(), wall_s()); !st) {
                log_error("response", st.error());
            }
            std::vector<dataplane::Worker*> list;
            for (const auto& w : workers_) {
                list.push_back(w.get());
            }
            reloader_->poll(list);
            for (dataplane::Worker* w : list) {
                detectors::PatternDatabase::free_scratch(w->current_scratch());
            }
            if (workers_.empty()) {
                for (hs_scratch* scratch : scratches) {
                    detectors::PatternDatabase::free_scratch(scratch);
                }
            }
        }
    }
    exporter_.reset();
    if (server_ != nullptr) {
        server_->stop();
    }
    {
        const std::lock_guard lock(view_mutex_);
        view_.counters.clear();
        view_.app.clear();
        view_.edm.clear();
    }
    if (siem_ != nullptr) {
        siem_->stop(0);  // an early failure: the threads end before the EAL goes
    }
    for (const auto& retiring : siem_retiring_) {
        retiring->stop(0);
    }
    evidence_.reset();  // the workers have stopped: no request is in a worker's hands now
    workers_.clear();
    blocks_.reset();
    table_sink_.reset();
    table_.reset();
    ports_.reset();
    dataplane::cleanup_eal();
    log_info("control", "stopped");
    return rc;
}

}  // namespace

int run_daemon(const DaemonOptions& options, Config config,
        std::shared_ptr<const detectors::PatternDatabase> patterns) {
    if (config.ports.empty()) {
        log_error("control",
                "no live ports configured (ports.pairs or ports.passive); for a capture use "
                "--pcap FILE");
        return 2;
    }
    Daemon daemon(options, std::move(config), std::move(patterns));
    return daemon.run();
}

}  // namespace exfiltap::control
