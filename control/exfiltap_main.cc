// exfiltap: offline mode entry point. Parses the command line and config, starts the EAL,
// compiles the content database, runs the capture through the workers, writes alerts and
// prints the summary. Exit codes: 0 done, 1 runtime failure, 2 usage or configuration error.
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <rte_eal.h>

#include "common/log.h"
#include "control/alert_writer.h"
#include "control/config.h"
#include "control/summary.h"
#include "dataplane/eal_setup.h"
#include "dataplane/offline.h"
#include "detectors/content_scanner.h"

#include <CLI/CLI.hpp>

namespace {

using exfiltap::log_error;

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
};

uint32_t signature_id(exfiltap::detectors::ContentClass cls) {
    return 2100001 + static_cast<uint32_t>(cls);
}

std::string signature_text(exfiltap::detectors::ContentClass cls) {
    switch (cls) {
    case exfiltap::detectors::ContentClass::PaymentCard:
        return "EXFIL payment card number sent to an external network";
    case exfiltap::detectors::ContentClass::UsSsn:
        return "EXFIL US social security number sent to an external network";
    }
    return "EXFIL sensitive data sent to an external network";
}

// Turns worker findings into alert records: masks the value, HMACs it, applies the class
// threshold, writes the record and counts it.
class AlertSink {
public:
    AlertSink(const exfiltap::control::Config& config, exfiltap::control::SampleKey key,
            exfiltap::control::AlertWriter* writer)
        : config_(config), key_(std::move(key)), writer_(writer) {}

    void on_event(const exfiltap::dataplane::WorkerEvent& event) {
        using exfiltap::detectors::content_class_name;
        const auto& finding = event.finding;
        const auto& cls_config = config_.content.classes[static_cast<size_t>(finding.cls)];
        if (finding.distinct_count < cls_config.threshold) {
            return;
        }
        exfiltap::control::AlertRecord record;
        record.timestamp_s = static_cast<double>(event.time_ns) / 1e9;
        record.flow_id = event.flow_id;
        record.ip_version = event.ip_version;
        record.src = event.src;
        record.dst = event.dst;
        record.src_port = event.src_port;
        record.dst_port = event.dst_port;
        record.proto = event.proto;
        record.vlan_count = event.vlan_count;
        record.vlan = {event.vlan[0], event.vlan[1], 0, 0};
        record.signature_id = signature_id(finding.cls);
        record.signature = signature_text(finding.cls);
        record.severity = cls_config.severity;
        record.detector = "content";
        record.cls = std::string(content_class_name(finding.cls));
        record.confidence = finding.confidence;
        record.bytes = event.direction_bytes;
        record.count = 1;
        record.sample = exfiltap::control::mask_value(finding.value_view());
        record.sample_hmac = key_.hmac_hex(finding.value_view());
        if (writer_ != nullptr) {
            writer_->write(record);
        }
        ++alerts_[record.cls];
    }

    const std::map<std::string, uint64_t>& alerts() const { return alerts_; }

private:
    const exfiltap::control::Config& config_;
    exfiltap::control::SampleKey key_;
    exfiltap::control::AlertWriter* writer_;
    std::map<std::string, uint64_t> alerts_;
};

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
        fprintf(stderr,
                "exfiltap: nothing to do: give --pcap FILE (live ports are not "
                "available in this version)\n");
        return kExitConfig;
    }
    const unsigned workers = opt.workers != 0 ? opt.workers : config.workers.count;

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

    dataplane::NetworkSet internal;
    for (const control::Prefix& prefix : config.internal_networks) {
        internal.add(prefix.ip_version, prefix.addr, prefix.length);
    }
    dataplane::OfflineOptions off;
    off.input = opt.pcap;
    off.output = opt.write;
    off.workers = workers;
    off.worker.socket_id = 0;
    off.worker.internal = &internal;
    off.worker.patterns = *patterns;
    off.worker.flows.capacity = config.flows.table_size;
    off.worker.flows.vlan_in_key = config.flows.vlan_in_key;
    constexpr uint64_t kSecond = 1000000000ULL;
    off.worker.flows.timeout_ns = {config.flows.tcp_timeout_s * kSecond,
            config.flows.tcp_closed_timeout_s * kSecond, config.flows.udp_timeout_s * kSecond,
            config.flows.other_timeout_s * kSecond};
    off.worker.reorder_flow_bytes = config.flows.reorder_flow_bytes;
    off.worker.reorder_worker_bytes = config.flows.reorder_worker_bytes;
    switch (config.flows.checksum_validation) {
    case control::ChecksumValidation::Yes:
        off.worker.checksum = dataplane::ChecksumMode::Yes;
        break;
    case control::ChecksumValidation::No:
        off.worker.checksum = dataplane::ChecksumMode::No;
        break;
    case control::ChecksumValidation::Auto:
        off.worker.checksum = dataplane::ChecksumMode::Auto;
        break;
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
    AlertSink sink(config, std::move(*key), writer.get());
    off.on_event = [&sink](const dataplane::WorkerEvent& event) {
        sink.on_event(event);
    };

    std::vector<std::unique_ptr<dataplane::Worker>> worker_objects;
    auto result = dataplane::run_offline(off, worker_objects);
    int rc = 0;
    if (!result) {
        log_error("dataplane", result.error());
        rc = kExitRuntime;
    } else {
        const control::RunSummary summary = control::summarize(opt.pcap, *result, sink.alerts());
        fputs(control::summary_text(summary).c_str(), stdout);
        if (!opt.summary_json.empty()) {
            std::ofstream out(opt.summary_json);
            out << control::summary_json(summary).dump(2) << "\n";
            if (!out) {
                log_error("control", "cannot write summary " + opt.summary_json);
                rc = kExitRuntime;
            }
        }
    }
    worker_objects.clear();
    for (hs_scratch* scratch : scratches) {
        detectors::PatternDatabase::free_scratch(scratch);
    }
    rte_eal_cleanup();
    return rc;
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"exfiltap: finds sensitive data leaving the network and stops it"};
    Options opt;
    app.add_option("--pcap", opt.pcap, "Run offline on this capture (pcap, us or ns)")
            ->check(CLI::ExistingFile);
    app.add_option("--write", opt.write, "Write what the workers forward to this pcap");
    app.add_option("--config", opt.config, "YAML configuration file")->check(CLI::ExistingFile);
    app.add_option("--alerts", opt.alerts, "Alert JSON lines file ('-' for stdout)");
    app.add_option("--summary-json", opt.summary_json, "Write the run summary as JSON here");
    app.add_option("--workers", opt.workers, "Worker lcores (default: workers.count)")
            ->check(CLI::Range(1, 64));
    app.add_option("--set", opt.overrides, "Override one config key: key=value (repeatable)");
    app.add_flag("--test-config", opt.test_config, "Validate the configuration and exit");
    app.set_version_flag("--version", "exfiltap 0.1.0");
    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        const int code = app.exit(e);
        return code == 0 ? 0 : kExitConfig;
    }
    try {
        return run(opt);
    } catch (const std::exception& e) {
        log_error("control", std::string("fatal: ") + e.what());
        return kExitRuntime;
    }
}
