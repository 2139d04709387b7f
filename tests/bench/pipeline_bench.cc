// exfiltap-pipeline-bench: the offline path with one capture preloaded in memory (RSS
// hashes computed at load), run through the real workers (exfiltap-bench runs the
// scenarios and budgets; this one compares pipeline configurations on a capture). It measures, in
// the same run and over the same rings, bare forwarding (receive then transmit, nothing else), the
// pipeline without the behaviour layer (no protocol parsers, no behaviour events) and the full
// pipeline (parsers in the workers, the behaviour engine fed on the main lcore as offline
// runs do), and prints packets per second, Gbit/s and worker TSC cycles per packet (cycles
// spent in non-empty bursts), with the ratios. With --config naming exact data match tables,
// each round also runs the full pipeline with EDM ("full+edm") after the same pipeline without
// it (every other mode runs without EDM), and prints the EDM counters. No timing is asserted:
// figures on a shared machine are noisy; ratios within one run are what later changes are
// judged by.
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include <rte_cycles.h>
#include <rte_eal.h>

#include "control/alert_sink.h"
#include "control/behaviour_feed.h"
#include "control/config.h"
#include "control/policy.h"
#include "control/worker_setup.h"
#include "dataplane/block_table.h"
#include "dataplane/eal_setup.h"
#include "dataplane/offline.h"
#include "detectors/content_scanner.h"
#include "tests/bench/bench_harness.h"

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

namespace {

using namespace exfiltap;  // NOLINT(google-build-using-namespace)

struct Figures {
    std::string name;
    uint64_t packets = 0;
    uint64_t bytes = 0;
    double seconds = 0;
    double pps = 0;
    double gbps = 0;
    double cycles_per_packet = 0;
    uint64_t scanned_bytes = 0;
    uint64_t findings = 0;
    uint64_t app_events = 0;
    uint64_t behaviour_alerts = 0;
    double control_seconds = 0;  // main-lcore time in the behaviour feed
    bool edm = false;            // EDM ran: the edm_* counters below are summed over workers
    uint64_t edm_words = 0;
    uint64_t edm_primary_hits = 0;
    uint64_t edm_value_hits = 0;
    uint64_t edm_records = 0;
    uint64_t edm_hits_overwritten = 0;
    uint64_t edm_candidates_dropped = 0;
    uint64_t edm_state_exhausted = 0;
};

void add_edm_counters(Figures& f, const std::vector<std::unique_ptr<dataplane::Worker>>& workers) {
    f.edm = true;
    for (const auto& worker : workers) {
        const detectors::EdmCounters& c = worker->edm_counters();
        f.edm_words += c.words.get();
        f.edm_primary_hits += c.primary_hits.get();
        f.edm_value_hits += c.value_hits.get();
        f.edm_records += c.records.get();
        f.edm_hits_overwritten += c.hits_overwritten.get();
        f.edm_candidates_dropped += c.candidates_dropped.get();
        f.edm_state_exhausted += c.state_exhausted.get();
    }
}

Figures measure(const std::string& name, const dataplane::OfflineResult& r) {
    Figures f;
    f.name = name;
    f.packets = r.packets_read;
    f.bytes = r.bytes_read;
    f.seconds = r.elapsed_s;
    f.pps = r.elapsed_s > 0 ? static_cast<double>(r.packets_read) / r.elapsed_s : 0;
    f.gbps = r.elapsed_s > 0 ? static_cast<double>(r.bytes_read) * 8 / r.elapsed_s / 1e9 : 0;
    uint64_t cycles = 0;
    uint64_t packets = 0;
    for (const dataplane::WorkerCounters* c : r.counters) {
        cycles += c->busy_cycles.get();
        packets += c->busy_packets.get();
        f.scanned_bytes += c->scanned_bytes.get();
        for (const Counter& n : c->findings) {
            f.findings += n.get();
        }
    }
    for (const dataplane::AppCounters* a : r.app) {
        f.app_events += a->events.get();
    }
    f.cycles_per_packet =
            packets > 0 ? static_cast<double>(cycles) / static_cast<double>(packets) : 0;
    return f;
}

nlohmann::json edm_json(const Figures& f) {
    return {{"words", f.edm_words}, {"primary_hits", f.edm_primary_hits},
            {"value_hits", f.edm_value_hits}, {"records", f.edm_records},
            {"hits_overwritten", f.edm_hits_overwritten},
            {"candidates_dropped", f.edm_candidates_dropped},
            {"state_exhausted", f.edm_state_exhausted}};
}

nlohmann::json to_json(const Figures& f) {
    nlohmann::json j = {{"name", f.name}, {"packets", f.packets}, {"bytes", f.bytes},
            {"seconds", f.seconds}, {"packets_per_second", f.pps}, {"gbit_per_second", f.gbps},
            {"cycles_per_packet", f.cycles_per_packet}, {"scanned_bytes", f.scanned_bytes},
            {"findings", f.findings}, {"app_events", f.app_events},
            {"behaviour_alerts", f.behaviour_alerts}, {"control_seconds", f.control_seconds}};
    if (f.edm) {
        j["edm"] = edm_json(f);
    }
    return j;
}

int run(const std::string& pcap, const std::string& config_path, unsigned workers, unsigned repeat,
        const std::vector<std::string>& overrides, const std::string& json_path,
        uint32_t block_exact, uint32_t block_prefixes) {
    auto loaded = config_path.empty() ? Result<control::Config>(control::default_config())
                                      : control::load_config(config_path);
    if (!loaded) {
        fprintf(stderr, "exfiltap-bench: configuration error\n%s\n", loaded.error().c_str());
        return 2;
    }
    control::Config config = std::move(*loaded);
    for (const std::string& assignment : overrides) {
        if (Status st = control::apply_override(config, assignment); !st) {
            fprintf(stderr, "exfiltap-bench: --set %s: %s\n", assignment.c_str(),
                    st.error().c_str());
            return 2;
        }
    }
    if (Status st = control::load_edm(config); !st) {
        fprintf(stderr, "exfiltap-bench: configuration error\n%s\n", st.error().c_str());
        return 2;
    }
    // With EDM tables, every mode but "full+edm" runs on a copy without them (its own
    // database), so the existing comparisons stay those of the pipeline without EDM.
    const bool with_edm = !config.content.edm_tables.empty();
    control::Config config_off = config;
    config_off.content.edm_tables.clear();
    auto patterns = detectors::PatternDatabase::compile(config_off.content);
    if (!patterns) {
        fprintf(stderr, "exfiltap-bench: %s\n", patterns.error().c_str());
        return 2;
    }
    std::shared_ptr<const detectors::PatternDatabase> edm_patterns;
    if (with_edm) {
        auto compiled = detectors::PatternDatabase::compile(config.content);
        if (!compiled) {
            fprintf(stderr, "exfiltap-bench: %s\n", compiled.error().c_str());
            return 2;
        }
        edm_patterns = std::move(*compiled);
    }
    auto source = dataplane::MemorySource::load(pcap);
    if (!source) {
        fprintf(stderr, "exfiltap-bench: %s\n", source.error().c_str());
        return 2;
    }
    dataplane::EalOptions eal;
    eal.workers = workers;
    eal.memory_mb = config.dpdk.memory_mb;
    eal.file_prefix = "exfiltap_bench_" + std::to_string(getpid());
    if (Status st = dataplane::init_eal(eal); !st) {
        fprintf(stderr, "exfiltap-bench: %s\n", st.error().c_str());
        return 1;
    }
    detectors::StreamPool::install_hyperscan_allocator();
    const dataplane::NetworkSet internal = control::internal_networks(config);
    // The daemon's fast path: block table (readers = workers) and flow-verdict table.
    dataplane::BlockTableConfig table_config;
    table_config.exact_capacity = std::max<uint32_t>(block_exact + 1024, 4096);
    table_config.prefix_capacity = std::max<uint32_t>(block_prefixes + 64, 256);
    table_config.readers = workers;
    std::string table_error;
    auto table = dataplane::BlockTable::create(table_config, &table_error);
    if (table == nullptr) {
        fprintf(stderr, "exfiltap-bench: block table: %s\n", table_error.c_str());
        return 1;
    }
    if (Status st = bench::fill_blocks(*table, block_exact, block_prefixes); !st) {
        fprintf(stderr, "exfiltap-bench: block table: %s\n", st.error().c_str());
        return 1;
    }
    const dataplane::FlowVerdictPolicy flow_policy =
            control::build_flow_verdicts(config.response, config.content);
    std::vector<hs_scratch*> scratches;
    for (unsigned w = 0; w < workers; ++w) {
        auto scratch = (*patterns)->alloc_scratch();
        if (!scratch) {
            fprintf(stderr, "exfiltap-bench: %s\n", scratch.error().c_str());
            return 1;
        }
        scratches.push_back(*scratch);
        if (edm_patterns != nullptr) {
            if (Status st = edm_patterns->grow_scratch(scratches.back()); !st) {
                fprintf(stderr, "exfiltap-bench: %s\n", st.error().c_str());
                return 1;
            }
        }
    }

    printf("exfiltap-bench: %s: %zu packets, %.1f MB preloaded; %u worker(s), TSC %.2f GHz; "
           "block table: %zu exact, %zu prefixes\n",
            pcap.c_str(), (*source)->packets(), static_cast<double>((*source)->bytes()) / 1e6,
            workers, static_cast<double>(rte_get_tsc_hz()) / 1e9, table->exact_count(),
            table->prefix_count());
    for (const detectors::EdmTableRules& t : config.content.edm_tables) {
        printf("exfiltap-bench: EDM table %s (min_matches %u, window %u bytes)%s\n", t.path.c_str(),
                t.min_matches, t.window_bytes,
                config.content.edm_enabled() ? "" : " -- the edm class is disabled");
    }
    // The behaviour feed of the full runs: alerts counted, not written; the sample key lives
    // in a folder of this run.
    std::string state_dir = "/tmp/exfiltap-bench-XXXXXX";
    if (mkdtemp(state_dir.data()) == nullptr) {
        fprintf(stderr, "exfiltap-bench: cannot create a temporary folder\n");
        return 1;
    }
    auto key = control::SampleKey::load_or_create(state_dir);
    std::filesystem::remove_all(state_dir);
    if (!key) {
        fprintf(stderr, "exfiltap-bench: %s\n", key.error().c_str());
        return 1;
    }
    enum class Mode {
        Bare,
        NoBehaviour,
        Full,
        FullEdm
    };
    std::vector<std::pair<Mode, const char*>> modes = {{Mode::Bare, "bare forwarding"},
            {Mode::NoBehaviour, "no behaviour"}, {Mode::Full, "full pipeline"}};
    if (with_edm) {
        modes.emplace_back(Mode::FullEdm, "full+edm");
    }
    std::vector<Figures> results;
    for (unsigned round = 0; round < repeat; ++round) {
        for (const auto& [mode, name] : modes) {
            const bool edm_mode = mode == Mode::FullEdm;
            const bool full = mode == Mode::Full || edm_mode;
            const control::Config& mode_config = edm_mode ? config : config_off;
            control::AlertSink sink(mode_config, *key, nullptr);
            control::BehaviourFeed feed(mode_config, sink);
            double control_seconds = 0;
            dataplane::OfflineOptions off;
            off.workers = workers;
            off.worker = control::worker_template(
                    mode_config, internal, edm_mode ? edm_patterns : *patterns);
            off.worker.bare_forward = mode == Mode::Bare;
            off.worker.app_layer = full;
            off.worker.blocks = table.get();
            off.worker.flow_policy = &flow_policy;
            off.scratches = scratches;
            if (full) {
                sink.set_app_handler([&](const dataplane::WorkerEvent& event) {
                    const uint64_t start = rte_rdtsc();
                    feed.on_event(event);
                    control_seconds += static_cast<double>(rte_rdtsc() - start)
                            / static_cast<double>(rte_get_tsc_hz());
                });
                off.on_event = [&sink](const dataplane::WorkerEvent& event) {
                    sink.on_event(event);
                };
                off.on_time = [&](uint64_t time_ns) {
                    const uint64_t start = rte_rdtsc();
                    feed.advance(time_ns);
                    control_seconds += static_cast<double>(rte_rdtsc() - start)
                            / static_cast<double>(rte_get_tsc_hz());
                };
            }
            std::vector<std::unique_ptr<dataplane::Worker>> objects;
            (*source)->rewind();
            auto result = dataplane::run_offline(off, **source, objects);
            if (!result) {
                fprintf(stderr, "exfiltap-bench: %s\n", result.error().c_str());
                return 1;
            }
            Figures f = measure(name, *result);
            for (const auto& [detector, n] : sink.behaviour_alerts()) {
                f.behaviour_alerts += n;
            }
            f.control_seconds = control_seconds;
            if (edm_mode) {
                add_edm_counters(f, objects);
            }
            results.push_back(f);
        }
    }

    printf("  %-16s %12s %9s %14s %12s %9s %10s %9s %11s\n", "scenario", "packets/s", "Gbit/s",
            "cycles/packet", "scanned MB", "findings", "app events", "b.alerts", "control ms");
    for (const Figures& f : results) {
        printf("  %-16s %12.0f %9.3f %14.1f %12.1f %9llu %10llu %9llu %11.1f\n", f.name.c_str(),
                f.pps, f.gbps, f.cycles_per_packet, static_cast<double>(f.scanned_bytes) / 1e6,
                static_cast<unsigned long long>(f.findings),
                static_cast<unsigned long long>(f.app_events),
                static_cast<unsigned long long>(f.behaviour_alerts), f.control_seconds * 1e3);
    }
    // The last round is the one reported as the ratio (caches and pools warm).
    const size_t last = results.size() - modes.size();
    const Figures& bare = results[last];
    const Figures& plain = results[last + 1];
    const Figures& full = results[last + 2];
    const double cycle_ratio =
            bare.cycles_per_packet > 0 ? full.cycles_per_packet / bare.cycles_per_packet : 0;
    const double pps_ratio = bare.pps > 0 ? full.pps / bare.pps : 0;
    const double behaviour_cycles =
            plain.cycles_per_packet > 0 ? full.cycles_per_packet / plain.cycles_per_packet : 0;
    const double behaviour_pps = plain.pps > 0 ? full.pps / plain.pps : 0;
    printf("  full / bare: %.2fx the worker cycles per packet, %.2f of the packet rate\n",
            cycle_ratio, pps_ratio);
    printf("  full / no behaviour: %.2fx the worker cycles per packet, %.2f of the packet rate "
           "(the behaviour layer: %.1f cycles per packet)\n",
            behaviour_cycles, behaviour_pps, full.cycles_per_packet - plain.cycles_per_packet);
    double edm_cycles = 0;
    double edm_pps = 0;
    if (with_edm) {
        const Figures& edm = results.back();
        edm_cycles =
                full.cycles_per_packet > 0 ? edm.cycles_per_packet / full.cycles_per_packet : 0;
        edm_pps = full.pps > 0 ? edm.pps / full.pps : 0;
        printf("  full+edm / full: %.2fx the worker cycles per packet, %.2f of the packet rate "
               "(EDM: %.1f cycles per packet)\n",
                edm_cycles, edm_pps, edm.cycles_per_packet - full.cycles_per_packet);
        printf("  EDM counters (full+edm, last round, summed over workers): %llu words, %llu "
               "primary hits, %llu value hits, %llu records; %llu hits overwritten, %llu "
               "candidates dropped, %llu directions without state\n",
                static_cast<unsigned long long>(edm.edm_words),
                static_cast<unsigned long long>(edm.edm_primary_hits),
                static_cast<unsigned long long>(edm.edm_value_hits),
                static_cast<unsigned long long>(edm.edm_records),
                static_cast<unsigned long long>(edm.edm_hits_overwritten),
                static_cast<unsigned long long>(edm.edm_candidates_dropped),
                static_cast<unsigned long long>(edm.edm_state_exhausted));
    }
    printf("  (the packet rate includes the reader on the main lcore copying into mbufs; the\n"
           "   cycle figures are the workers' own)\n");

    if (!json_path.empty()) {
        nlohmann::json j;
        j["capture"] = pcap;
        j["workers"] = workers;
        j["block_exact"] = table->exact_count();
        j["block_prefixes"] = table->prefix_count();
        j["tsc_hz"] = rte_get_tsc_hz();
        j["runs"] = nlohmann::json::array();
        for (const Figures& f : results) {
            j["runs"].push_back(to_json(f));
        }
        j["cycles_ratio_full_to_bare"] = cycle_ratio;
        j["pps_ratio_full_to_bare"] = pps_ratio;
        j["cycles_ratio_full_to_no_behaviour"] = behaviour_cycles;
        j["pps_ratio_full_to_no_behaviour"] = behaviour_pps;
        if (with_edm) {
            j["edm_tables"] = nlohmann::json::array();
            for (const detectors::EdmTableRules& t : config.content.edm_tables) {
                j["edm_tables"].push_back(t.path);
            }
            j["cycles_ratio_full_edm_to_full"] = edm_cycles;
            j["pps_ratio_full_edm_to_full"] = edm_pps;
            j["edm"] = edm_json(results.back());
        }
        std::ofstream(json_path) << j.dump(2) << "\n";
    }
    for (hs_scratch* scratch : scratches) {
        detectors::PatternDatabase::free_scratch(scratch);
    }
    table.reset();
    dataplane::cleanup_eal();
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{
            "exfiltap-bench: the offline path on a preloaded capture, against bare "
            "forwarding over the same rings"};
    std::string pcap;
    std::string config_path;
    unsigned workers = 1;
    unsigned repeat = 2;
    std::vector<std::string> overrides;
    std::string json_path;
    uint32_t block_exact = 0;
    uint32_t block_prefixes = 0;
    app.add_option("--block-exact", block_exact,
            "Exact block entries (addresses the capture does not use) in the table");
    app.add_option("--block-prefixes", block_prefixes,
            "Block prefixes (IPv6 /48s in 3fff::/20) in the table");
    app.add_option("--pcap", pcap, "Capture to preload")->required()->check(CLI::ExistingFile);
    app.add_option("--config", config_path,
               "YAML configuration instead of the defaults (--set applies on top); with EDM "
               "tables a \"full+edm\" mode runs after \"full\", which then runs without EDM")
            ->check(CLI::ExistingFile);
    app.add_option("--workers", workers, "Worker lcores")->check(CLI::Range(1, 64));
    app.add_option("--repeat", repeat,
               "Rounds of (bare, no behaviour, full[, full+edm]); the last is reported")
            ->check(CLI::Range(1, 100));
    app.add_option("--set", overrides, "Override one config key: key=value (repeatable)");
    app.add_option("--json", json_path, "Also write the figures as JSON here");
    CLI11_PARSE(app, argc, argv);
    return run(
            pcap, config_path, workers, repeat, overrides, json_path, block_exact, block_prefixes);
}
