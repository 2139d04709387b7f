// exfiltap: the entry point. Parses the command line and config and compiles the content
// database; then either runs a capture through the workers (offline: --pcap), writing alerts
// and the summary, or runs the live daemon on the configured ports
// (`exfiltap [EAL args] -- --config FILE`). Exit codes: 0 done, 1 runtime failure, 2 usage
// or configuration error.
#include <signal.h>
#include <unistd.h>

#include <charconv>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include <rte_eal.h>

#include "common/log.h"
#include "control/alert_sink.h"
#include "control/alert_writer.h"
#include "control/behaviour_feed.h"
#include "control/config.h"
#include "control/daemon.h"
#include "control/evidence.h"
#include "control/siem_output.h"
#include "control/summary.h"
#include "control/worker_setup.h"
#include "dataplane/content_reload.h"
#include "dataplane/ctrl_thread.h"
#include "dataplane/eal_setup.h"
#include "dataplane/offline.h"
#include "detectors/content_scanner.h"

#include <CLI/CLI.hpp>

namespace {

// At the end of a capture, time moves on by this much so that every open window closes.
constexpr uint64_t kCaptureEndAdvanceNs = 86400ULL * 1000000000ULL;
// At the end of a run, SIEM outputs go on sending what is queued for at most this long.
constexpr uint32_t kSiemDrainMs = 2000;

using exfiltap::log_error;
using exfiltap::log_info;
using exfiltap::log_warning;

constexpr int kExitRuntime = 1;
constexpr int kExitConfig = 2;

struct Options {
    std::string pcap;
    std::string write;
    std::string config;
    std::string alerts;
    std::string summary_json;
    unsigned workers = 0;
    std::vector<std::string> overrides;
    bool test_config = false;
    std::vector<std::string> eal_args;  // before "--" on the command line
    /// --evidence: flow ids whose recorded packets go to one pcapng file after the run.
    std::vector<std::string> evidence;
};

volatile sig_atomic_t g_reload_requested =
        0;  // NOLINT(cppcoreguidelines-avoid-non-const-global-variables)
volatile sig_atomic_t g_stop_requested =
        0;  // NOLINT(cppcoreguidelines-avoid-non-const-global-variables)

void request_reload(int /*signal*/) {
    g_reload_requested = 1;
}

void request_stop(int /*signal*/) {
    g_stop_requested = 1;
}

// Reloads the configuration file and applies what can change while running: the content
// classes and patterns (and the alert settings that read them). What needs a restart is
// reported and kept as it runs.
void reload_content(const Options& opt, exfiltap::control::Config& running,
        exfiltap::dataplane::ContentReloader& reloader,
        const std::vector<exfiltap::dataplane::Worker*>& workers) {
    using namespace exfiltap;  // NOLINT(google-build-using-namespace)
    auto loaded = opt.config.empty() ? Result<control::Config>(control::default_config())
                                     : control::load_config(opt.config);
    for (const std::string& assignment : opt.overrides) {
        if (loaded) {
            if (Status st = control::apply_override(*loaded, assignment); !st) {
                loaded = make_error("--set " + assignment + ": " + st.error());
            }
        }
    }
    if (loaded) {
        if (Status st = control::load_edm(*loaded); !st) {
            loaded = make_error(st.error());
        }
    }
    if (!loaded) {
        log_error("control",
                "reload refused, configuration error; still running the old one:\n"
                        + loaded.error());
        return;
    }
    auto db = detectors::PatternDatabase::compile(loaded->content);
    if (!db) {
        log_error("control", "reload refused: " + db.error());
        return;
    }
    if (Status st = reloader.publish(*db, workers); !st) {
        log_error("control", "reload refused: " + st.error());
        return;
    }
    if (loaded->flows.table_size != running.flows.table_size
            || loaded->workers.count != running.workers.count
            || loaded->dpdk.memory_mb != running.dpdk.memory_mb) {
        log_warning("control",
                "reload: dpdk, workers and flow table sizes need a restart; "
                "the running values are kept");
    }
    running.content = loaded->content;
    log_info("control",
            "reload: content database generation " + std::to_string(reloader.generation())
                    + " published to the workers");
}

// An output that names the input (or another output) would destroy it.
std::string output_clash(const Options& opt) {
    namespace fs = std::filesystem;
    const std::vector<std::pair<std::string, std::string>> outputs = {
            {"--write", opt.write}, {"--alerts", opt.alerts}, {"--summary-json", opt.summary_json}};
    std::error_code ec;
    for (size_t i = 0; i < outputs.size(); ++i) {
        const auto& [name, path] = outputs[i];
        if (path.empty() || path == "-") {
            continue;
        }
        if (opt.pcap != "-" && fs::equivalent(path, opt.pcap, ec)) {
            return name + " " + path + " is the input capture; refusing to overwrite it";
        }
        for (size_t j = i + 1; j < outputs.size(); ++j) {
            if (!outputs[j].second.empty()
                    && (outputs[j].second == path || fs::equivalent(path, outputs[j].second, ec))) {
                return name + " and " + outputs[j].first + " name the same file " + path;
            }
        }
    }
    return {};
}

/// Flow ids from "12", "12,13" words; false when one is not an unsigned integer.
bool parse_evidence_flows(const std::vector<std::string>& words, std::vector<uint64_t>& out) {
    for (const std::string& word : words) {
        std::stringstream items(word);
        std::string item;
        while (std::getline(items, item, ',')) {
            uint64_t value = 0;
            const auto [end, error] =
                    std::from_chars(item.data(), item.data() + item.size(), value);
            if (item.empty() || error != std::errc() || end != item.data() + item.size()) {
                return false;
            }
            out.push_back(value);
        }
    }
    return true;
}

/// Offline --evidence: the workers have stopped, so their recorders are read here, on the
/// main thread, and the file is written by the same collector and writer as in the daemon.
void write_offline_evidence(const exfiltap::control::Config& config,
        const exfiltap::control::ThreadStarter& starter,
        const std::vector<std::unique_ptr<exfiltap::dataplane::Worker>>& workers,
        std::vector<uint64_t> flows) {
    using namespace exfiltap;  // NOLINT(google-build-using-namespace)
    const control::EvidenceConfig& settings = config.outputs.evidence;
    std::vector<control::RecordSource> sources;
    for (const auto& worker : workers) {
        const dataplane::FlightRecorder* recorder = worker->recorder();
        sources.emplace_back([recorder](dataplane::RecorderRequest* request) {
            request->result = recorder->copy_flows(
                    request->flow_ids, {request->buffer.get(), request->buffer_bytes});
            request->done.store(true, std::memory_order_release);
            return true;
        });
    }
    const auto buffer_bytes = static_cast<size_t>(
            std::min<uint64_t>(settings.recorder_bytes, settings.limits.max_file_bytes));
    control::EvidenceCollector collector(
            settings, settings.effective_dir(config.state_dir), std::move(sources), buffer_bytes);
    if (Status st = collector.start(starter); !st) {
        log_error("evidence", st.error());
        return;
    }
    Result<control::EvidenceTicket> ticket = collector.request("offline", std::move(flows));
    collector.poll();
    collector.stop();  // writes what is queued first
    if (!ticket) {
        log_error("evidence", ticket.error());
        return;
    }
    const control::EvidenceCounters counters = collector.counters();
    if (counters.files_written == 1) {
        log_info("evidence",
                "evidence: " + ticket->path + " (" + std::to_string(counters.packets_written)
                        + " packets)");
    }
}

int run(const Options& opt) {
    using namespace exfiltap;  // NOLINT(google-build-using-namespace)

    // Configuration: every problem is printed, then exit 2.
    auto loaded = opt.config.empty() ? Result<control::Config>(control::default_config())
                                     : control::load_config(opt.config);
    if (!loaded) {
        fprintf(stderr, "exfiltap: configuration error\n%s\n", loaded.error().c_str());
        return kExitConfig;
    }
    control::Config config = std::move(*loaded);
    for (const std::string& assignment : opt.overrides) {
        if (Status st = control::apply_override(config, assignment); !st) {
            fprintf(stderr, "exfiltap: --set %s: %s\n", assignment.c_str(), st.error().c_str());
            return kExitConfig;
        }
    }
    if (Status st = control::load_edm(config); !st) {
        fprintf(stderr, "exfiltap: configuration error\n%s\n", st.error().c_str());
        return kExitConfig;
    }
    auto patterns = detectors::PatternDatabase::compile(config.content);
    if (!patterns) {
        fprintf(stderr, "exfiltap: content patterns: %s\n", patterns.error().c_str());
        return kExitConfig;
    }
    if (opt.test_config) {
        printf("configuration OK%s%s\n", opt.config.empty() ? "" : ": ", opt.config.c_str());
        return 0;
    }
    if (opt.pcap.empty()) {
        if (config.ports.empty()) {
            fprintf(stderr,
                    "exfiltap: nothing to do: give --pcap FILE, or configure live ports "
                    "(ports.pairs or ports.passive) in --config\n");
            return kExitConfig;
        }
        // Live: SIGINT/SIGTERM drain and stop.
        struct sigaction stop {};
        stop.sa_handler = request_stop;
        sigemptyset(&stop.sa_mask);
        sigaction(SIGINT, &stop, nullptr);
        sigaction(SIGTERM, &stop, nullptr);
        control::DaemonOptions daemon;
        daemon.config_path = opt.config;
        daemon.overrides = opt.overrides;
        daemon.eal_args = opt.eal_args;
        daemon.workers = opt.workers;
        daemon.alerts = opt.alerts;
        daemon.stop_requested = &g_stop_requested;
        daemon.reload_requested = &g_reload_requested;
        return control::run_daemon(daemon, std::move(config), *patterns);
    }
    const unsigned workers = opt.workers != 0 ? opt.workers : config.workers.count;
    if (const std::string clash = output_clash(opt); !clash.empty()) {
        fprintf(stderr, "exfiltap: %s\n", clash.c_str());
        return kExitConfig;
    }

    std::vector<uint64_t> evidence_flows;
    if (!parse_evidence_flows(opt.evidence, evidence_flows)) {
        log_error("control", "--evidence takes flow ids (unsigned integers, comma-separated)");
        return kExitConfig;
    }

    // Outputs before the EAL, so a bad path fails fast.
    auto key = control::SampleKey::load_or_create(config.state_dir);
    if (!key) {
        log_error("control", "sample HMAC key: " + key.error());
        return kExitRuntime;
    }
    std::unique_ptr<control::AlertWriter> writer;
    const std::string alerts_path = !opt.alerts.empty() ? opt.alerts : config.outputs.alerts_file;
    if (!alerts_path.empty()) {
        auto opened = control::AlertWriter::open(alerts_path);
        if (!opened) {
            log_error("control", opened.error());
            return kExitRuntime;
        }
        writer = std::make_unique<control::AlertWriter>(std::move(*opened));
    }

    // SIEM outputs: built now, connected by their threads once the EAL can start them.
    control::SiemOutputs siem(config.outputs, EXFILTAP_VERSION);

    // EAL and workers.
    dataplane::EalOptions eal;
    eal.workers = workers;
    eal.memory_mb = config.dpdk.memory_mb;
    eal.file_prefix = "exfiltap_" + std::to_string(getpid());
    eal.extra_args = config.dpdk.eal_args;
    if (Status st = dataplane::init_eal(eal); !st) {
        log_error("dataplane", st.error());
        return kExitRuntime;
    }
    detectors::StreamPool::install_hyperscan_allocator();
    const control::ThreadStarter starter = [](const std::string& name, std::function<void()> body) {
        return dataplane::spawn_ctrl_thread(name, std::move(body));
    };
    if (Status st = siem.start(starter); !st) {
        log_error("control", st.error());
        dataplane::cleanup_eal();
        return kExitRuntime;
    }

    const dataplane::NetworkSet internal = control::internal_networks(config);
    dataplane::OfflineOptions off;
    off.input = opt.pcap;
    off.output = opt.write;
    off.workers = workers;
    off.worker = control::worker_template(config, internal, *patterns);
    // Flow verdicts act offline as live (the same workers); what they drop is left out of
    // --write. Address blocks need the daemon's block list and are not applied offline.
    const dataplane::FlowVerdictPolicy flow_policy =
            control::build_flow_verdicts(config.response, config.content);
    off.worker.flow_policy = &flow_policy;
    if (config.outputs.evidence.enabled || !evidence_flows.empty()) {
        off.worker.recorder_bytes = config.outputs.evidence.recorder_bytes;
        off.worker.recorder_snap_bytes = config.outputs.evidence.snap_bytes;
    }
    std::vector<hs_scratch*> scratches;
    for (unsigned w = 0; w < workers; ++w) {
        auto scratch = (*patterns)->alloc_scratch();
        if (!scratch) {
            log_error("detectors", scratch.error());
            return kExitRuntime;
        }
        scratches.push_back(*scratch);
    }
    off.scratches = scratches;
    control::AlertSink sink(config, std::move(*key), writer.get());
    if (!siem.empty()) {
        sink.set_outputs(&siem);
    }
    // Offline runs keep no baselines: a replay must not teach the live daemon's.
    control::BehaviourFeed behaviour(config, sink);
    sink.set_app_handler(
            [&behaviour](const dataplane::WorkerEvent& event) { behaviour.on_event(event); });
    off.on_event = [&sink](const dataplane::WorkerEvent& event) {
        sink.on_event(event);
    };

    // SIGHUP reloads the content configuration between reader batches.
    dataplane::ContentReloader reloader(*patterns);
    off.on_time = [&behaviour](uint64_t packet_time_ns) {
        behaviour.advance(packet_time_ns);
    };
    off.on_tick = [&](const dataplane::OfflineProgress& /*progress*/,
                          const std::vector<dataplane::Worker*>& list) -> uint64_t {
        reloader.poll(list);
        if (g_reload_requested != 0) {
            g_reload_requested = 0;
            reload_content(opt, config, reloader, list);
        }
        return UINT64_MAX;
    };

    std::vector<std::unique_ptr<dataplane::Worker>> worker_objects;
    auto result = dataplane::run_offline(off, worker_objects);
    int rc = 0;
    if (!result) {
        log_error("dataplane", result.error());
        rc = kExitRuntime;
    } else {
        // The capture is over: every window still open closes (a partial window holds fewer
        // bytes than a full one would, so closing it early never adds an alert).
        behaviour.advance(result->last_ns + kCaptureEndAdvanceNs);
        behaviour.flush();
        sink.flush_all();
        // Workers are done; only the output threads may still be sending.
        siem.stop(kSiemDrainMs);
        if (!evidence_flows.empty()) {
            write_offline_evidence(config, starter, worker_objects, evidence_flows);
        }
        const control::RunSummary summary =
                control::summarize(opt.pcap, *result, sink.alerts(), sink.behaviour_alerts());
        // With alerts on stdout the summary goes to stderr, so stdout stays JSON lines.
        fputs(control::summary_text(summary).c_str(), alerts_path == "-" ? stderr : stdout);
        if (!result->read_error.empty()) {
            log_error("dataplane",
                    "capture " + opt.pcap + " is damaged after packet "
                            + std::to_string(result->packets_read) + ": " + result->read_error
                            + " (the packets before it were processed)");
            rc = kExitRuntime;
        }
        if (writer != nullptr && writer->failed() > 0) {
            log_error("control",
                    std::to_string(writer->failed()) + " alert records of "
                            + std::to_string(writer->failed() + writer->written())
                            + " could not be written to " + alerts_path);
            rc = kExitRuntime;
        }
        nlohmann::json outputs = nlohmann::json::object();
        for (const auto& output : siem.outputs()) {
            const control::SiemOutputCounts c = output->counts();
            outputs[output->name()] = {{"offered", c.offered}, {"sent", c.sent},
                    {"dropped", c.dropped}, {"failed", c.failed}, {"connects", c.connects},
                    {"connect_failures", c.connect_failures}};
            const std::string text = output->name() + " output: " + std::to_string(c.sent) + " of "
                    + std::to_string(c.offered) + " records sent, " + std::to_string(c.dropped)
                    + " dropped (queue full), " + std::to_string(c.failed)
                    + " not sent (peer down or stalled)";
            if (c.dropped + c.failed > 0) {
                log_warning("control", text);
            } else {
                log_info("control", text);
            }
        }
        if (!opt.summary_json.empty()) {
            std::ofstream out(opt.summary_json);
            nlohmann::json j = control::summary_json(summary);
            if (!siem.empty()) {
                j["outputs"] = outputs;
            }
            out << j.dump(2) << "\n";
            if (!out) {
                log_error("control", "cannot write summary " + opt.summary_json);
                rc = kExitRuntime;
            }
        }
    }
    // Each worker's current scratch is freed here; replaced ones went back through the
    // reloader.
    std::vector<dataplane::Worker*> list;
    for (const auto& w : worker_objects) {
        list.push_back(w.get());
    }
    reloader.poll(list);
    if (worker_objects.empty()) {
        for (hs_scratch* scratch : scratches) {
            detectors::PatternDatabase::free_scratch(scratch);
        }
    }
    for (dataplane::Worker* w : list) {
        detectors::PatternDatabase::free_scratch(w->current_scratch());
    }
    worker_objects.clear();
    siem.stop(0);  // a failed run: the threads end before the EAL goes
    dataplane::cleanup_eal();
    return rc;
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{
            "exfiltap: finds sensitive data leaving the network and stops it\n"
            "  offline: exfiltap --pcap IN [--write OUT] [--config FILE]\n"
            "  live:    exfiltap [EAL args] -- --config FILE"};
    Options opt;
    // EAL arguments come first, ended by "--" (DPDK's convention).
    int first = 1;
    for (int i = 1; i < argc; ++i) {
        if (std::string(argv[i]) == "--") {
            for (int j = 1; j < i; ++j) {
                opt.eal_args.emplace_back(argv[j]);
            }
            first = i + 1;
            break;
        }
    }
    std::vector<std::string> rest;
    for (int i = argc - 1; i >= first; --i) {
        rest.emplace_back(argv[i]);  // CLI11 takes them reversed
    }
    app.add_option("--pcap", opt.pcap,
               "Run offline on this capture (pcap, us or ns; '-' or a pipe: standard input)")
            ->check(CLI::ExistingFile | CLI::IsMember({"-"}));
    app.add_option("--write", opt.write, "Write what the workers forward to this pcap");
    app.add_option("--config", opt.config, "YAML configuration file")->check(CLI::ExistingFile);
    app.add_option("--alerts", opt.alerts, "Alert JSON lines file ('-' for stdout)");
    app.add_option("--summary-json", opt.summary_json, "Write the run summary as JSON here");
    app.add_option("--workers", opt.workers, "Worker lcores (default: workers.count)")
            ->check(CLI::Range(1, 64));
    app.add_option("--set", opt.overrides, "Override one config key: key=value (repeatable)");
    app.add_option("--evidence", opt.evidence,
            "After the run, write the recorded packets of these flow ids (as alerts give them; "
            "comma-separated or repeated) to a pcapng file in outputs.evidence.dir");
    app.add_flag("--test-config", opt.test_config, "Validate the configuration and exit");
    app.set_version_flag("--version", "exfiltap 0.1.0");
    try {
        app.parse(rest);
    } catch (const CLI::ParseError& e) {
        const int code = app.exit(e);
        return code == 0 ? 0 : kExitConfig;
    }
    struct sigaction hup {};
    hup.sa_handler = request_reload;
    sigemptyset(&hup.sa_mask);
    sigaction(SIGHUP, &hup, nullptr);
    try {
        return run(opt);
    } catch (const std::exception& e) {
        log_error("control", std::string("fatal: ") + e.what());
        return kExitRuntime;
    }
}
