// exfiltap-bench: every stage of the fast path against this machine's limits, measured in
// the same run. Each scenario is one pass of traffic preloaded into mbufs (the symmetric
// Toeplitz hash of each frame computed at preload) and replayed for warm-up and measured
// passes through the real workers over net_ring ports; the same traffic then runs through
// bare forwarding (receive, transmit) over the same rings, and the inspected payload
// through Hyperscan stream-mode scanning alone with the same database. Figures per
// scenario: packets/s, Gbit/s, worker TSC cycles per packet in non-empty bursts, payload
// bytes scanned/s, flows created/s, the per-stage cycles, the ratios to both limits; then
// the flow table's scale and the budgets, each printed as met or not met.
//
// Without arguments every scenario runs in a short form (CI): nothing about timing is
// asserted and the exit status is 0 whatever the figures; --full runs the long form. Figures
// on a shared machine are noisy: ratios within one run are what changes are judged by.
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <rte_cycles.h>
#include <rte_eal.h>

#include "control/alert_sink.h"
#include "control/behaviour_feed.h"
#include "control/config.h"
#include "control/policy.h"
#include "control/siem_output.h"
#include "control/worker_setup.h"
#include "dataplane/block_table.h"
#include "dataplane/eal_setup.h"
#include "dataplane/flight_recorder.h"
#include "detectors/content_scanner.h"
#include "detectors/validators.h"
#include "tests/bench/bench_flow_scale.h"
#include "tests/bench/bench_harness.h"
#include "tests/bench/bench_packets.h"

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

namespace {

using namespace exfiltap;  // NOLINT(google-build-using-namespace)
using bench::PassChange;

constexpr double kEstablishedBudget = 250;  // cycles per packet, 10k established flows
constexpr double kNewFlowBudget = 1000;     // cycles per packet, new flows into 1M
constexpr double kContentBudget = 1.25;     // content stage / Hyperscan alone
constexpr double kFlowBytesBudget = 256;    // flow entry, its index share, TCP state
constexpr double kSnortPacketsPerCore = 200000;
constexpr double kSnortMultiple = 5;

struct Scenario {
    std::string name;
    std::string what;
    std::function<Result<bench::Traffic>()> make;
    unsigned warm = 1;
    unsigned passes = 1;
    uint32_t table = 65536;
    bool content_limit = false;  // compare the content stage with Hyperscan alone
    bool blocks = false;         // run with the full block table
};

struct Outcome {
    std::string scenario;
    std::string what;
    unsigned workers = 0;
    PassChange change = PassChange::Advance;
    bench::RunFigures pipeline;
    bench::RunFigures bare;
    std::optional<bench::ScanLimit> scan;
    /// Content stage / Hyperscan alone of each round (content-limit scenarios), and each
    /// side's cycles per packet.
    std::vector<double> round_ratios;
    std::vector<double> round_content;
    std::vector<double> round_scan;

    /// The least content pass over the least Hyperscan pass: other processes only ever add
    /// cycles, so each side's least pass is its least disturbed one.
    double least_round_ratio() const {
        if (round_content.empty() || round_scan.empty()) {
            return 0;
        }
        const double scan = *std::min_element(round_scan.begin(), round_scan.end());
        return scan > 0 ? *std::min_element(round_content.begin(), round_content.end()) / scan : 0;
    }

    double median_round_ratio() const {
        if (round_ratios.empty()) {
            return 0;
        }
        std::vector<double> sorted = round_ratios;
        std::sort(sorted.begin(), sorted.end());
        const size_t mid = sorted.size() / 2;
        return sorted.size() % 2 == 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
    }
};

struct Budget {
    std::string name;
    std::string figure;
    double value = 0;
    double limit = 0;
    bool at_most = true;
    bool measured = false;

    bool met() const { return measured && (at_most ? value <= limit : value >= limit); }
};

std::string self_dir() {
    std::error_code ec;
    const auto exe = std::filesystem::read_symlink("/proc/self/exe", ec);
    return ec ? std::string(".") : exe.parent_path().string();
}

// The shared captures: ../shared/pcaps beside the repository (CI lays shared/ there).
std::string find_pcap(const std::string& dir, const std::string& name) {
    std::vector<std::string> dirs;
    if (!dir.empty()) {
        dirs.push_back(dir);
    }
    dirs.push_back("../shared/pcaps");
    dirs.push_back(self_dir() + "/../../../shared/pcaps");
    dirs.push_back(self_dir() + "/../../../../shared/pcaps");
    for (const std::string& d : dirs) {
        const std::string path = d + "/" + name;
        if (std::filesystem::exists(path)) {
            return path;
        }
    }
    return {};
}

Result<bench::Traffic> generated_large(const std::string& gen, uint64_t packets) {
    std::string dir = "/tmp/exfiltap-bench-XXXXXX";
    if (mkdtemp(dir.data()) == nullptr) {
        return make_error("cannot create a temporary folder");
    }
    const std::string out = dir + "/large.pcap";
    const std::string cmd = "'" + gen + "' --scenario large --seed 7 --packets "
            + std::to_string(packets) + " --out '" + out + "' >/dev/null 2>&1";
    const int rc = std::system(cmd.c_str());
    auto traffic = rc == 0 ? bench::load_capture(out)
                           : Result<bench::Traffic>(make_error("exfiltap-gen failed: " + cmd));
    std::filesystem::remove_all(dir);
    return traffic;
}

double ratio(double a, double b) {
    return b > 0 ? a / b : 0;
}

double per_second(uint64_t n, double seconds) {
    return seconds > 0 ? static_cast<double>(n) / seconds : 0;
}

nlohmann::json figures_json(const bench::RunFigures& f) {
    nlohmann::json stages = nlohmann::json::object();
    for (size_t s = 0; s < bench::kStageCount; ++s) {
        stages[std::string(dataplane::kWorkerStageNames[s])] = f.stage_per_packet(s);
    }
    return {{"packets", f.packets}, {"bytes", f.bytes}, {"seconds", f.seconds},
            {"packets_per_second", f.pps()}, {"gbit_per_second", f.gbps()},
            {"cycles_per_packet", f.cycles_per_packet()}, {"all_busy_packets", f.all_busy_packets},
            {"median_pass_cycles_per_packet", f.median_pass_cycles()},
            {"best_pass_cycles_per_packet", f.best_pass_cycles()},
            {"scanned_bytes_per_second", per_second(f.scanned_bytes, f.seconds)},
            {"flows_created_per_second", per_second(f.flows_created, f.seconds)},
            {"flows_evicted", f.flows_evicted}, {"findings", f.findings},
            {"exceptions", f.exceptions}, {"retransmitted_bytes", f.retransmitted_bytes},
            {"events", f.events}, {"stage_cycles_per_packet", stages},
            {"per_worker_packets", f.per_worker_packets}};
}

// The content stage's cycles per packet less what its own timers cost (one rdtsc pair per
// timed scan), as Hyperscan alone is timed without them.
double content_cycles(const bench::RunFigures& f, double rdtsc_pair) {
    const double timers = f.busy_packets > 0 ? rdtsc_pair * static_cast<double>(f.content_timers)
                    / static_cast<double>(f.busy_packets)
                                             : 0;
    return std::max(
            0.0, f.stage_per_packet(static_cast<size_t>(dataplane::WorkerStage::Content)) - timers);
}

void print_outcome(const Outcome& o, double rdtsc_pair) {
    const bench::RunFigures& p = o.pipeline;
    printf("%-14s W=%u %-10s %10.0f pkt/s %7.3f Gbit/s %8.1f cyc/pkt (median pass %.1f, "
           "best %.1f) %8.1f MB/s scanned %9.0f flows/s\n",
            o.scenario.c_str(), o.workers,
            o.change == PassChange::Advance ? "established" : "new flows", p.pps(), p.gbps(),
            p.cycles_per_packet(), p.median_pass_cycles(), p.best_pass_cycles(),
            per_second(p.scanned_bytes, p.seconds) / 1e6, per_second(p.flows_created, p.seconds));
    printf("    stages (cyc/pkt):");
    for (size_t s = 0; s < bench::kStageCount; ++s) {
        printf(" %s %.1f", std::string(dataplane::kWorkerStageNames[s]).c_str(),
                p.stage_per_packet(s));
    }
    const double overhead = p.busy_packets > 0
            ? rdtsc_pair * static_cast<double>(p.stage_timers) / static_cast<double>(p.busy_packets)
            : 0;
    printf("  (timers ~%.1f)\n", overhead);
    printf("    bare forwarding: %.0f pkt/s, %.1f cyc/pkt; pipeline/bare: %.2fx cycles, %.2f of "
           "the packet rate\n",
            o.bare.pps(), o.bare.cycles_per_packet(),
            ratio(p.cycles_per_packet(), o.bare.cycles_per_packet()), ratio(p.pps(), o.bare.pps()));
    if (o.scan) {
        const double content = content_cycles(p, rdtsc_pair);
        printf("    Hyperscan alone: %.1f cyc/pkt (%llu matches); content stage / Hyperscan: "
               "%.2fx (its timers taken off); pipeline / Hyperscan: %.2fx\n",
                o.scan->cycles_per_packet, static_cast<unsigned long long>(o.scan->matches),
                ratio(content, o.scan->cycles_per_packet),
                ratio(p.cycles_per_packet(), o.scan->cycles_per_packet));
        std::string rounds;
        for (const double r : o.round_ratios) {
            std::array<char, 16> figure{};
            snprintf(figure.data(), figure.size(), "%.2f", r);
            rounds += (rounds.empty() ? "" : " ") + std::string(figure.data());
        }
        printf("    content stage / Hyperscan alone by round (pipeline and Hyperscan passes "
               "alternating): %s; median %.2fx; least content pass / least Hyperscan pass "
               "%.2fx\n",
                rounds.c_str(), o.median_round_ratio(), o.least_round_ratio());
    }
    if (p.exceptions > 0 || p.retransmitted_bytes > 0 || p.flows_evicted > 0) {
        printf("    exceptions %llu, retransmitted bytes %llu, flows evicted %llu\n",
                static_cast<unsigned long long>(p.exceptions),
                static_cast<unsigned long long>(p.retransmitted_bytes),
                static_cast<unsigned long long>(p.flows_evicted));
    }
}

struct Options {
    bool full = false;
    std::vector<unsigned> workers = {1, 2};
    std::vector<std::string> only;
    std::string json_path;
    std::string config_path;
    std::vector<std::string> overrides;
    std::string pcap_dir;
    std::string pcap;
    std::string gen;
    std::string large_pcap;
    std::vector<uint32_t> scale = {1000000, 10000000};
    unsigned memory_mb = 0;
    double pass_factor = 1;
    bool stage_cycles = true;
    bool bare = true;
    bool siem = true;
    /// Flight recorder ring per worker (0: off), as outputs.evidence.recorder_bytes.
    uint64_t recorder_bytes = 0;
};

std::vector<Scenario> scenarios(const Options& opt) {
    const bool full = opt.full;
    const auto passes = [&](unsigned short_form, unsigned long_form) {
        return std::max(
                1U, static_cast<unsigned>((full ? long_form : short_form) * opt.pass_factor));
    };
    std::vector<Scenario> list;
    list.push_back({"ack-10k", "64-byte pure ACKs, 10,000 established flows",
            [] {
                return Result<bench::Traffic>(bench::make_pure_acks(10000, PassChange::Advance));
            },
            1, passes(30, 200), 65536});
    list.push_back({"ack-1m", "64-byte pure ACKs, 1,000,000 established flows",
            [] {
                return Result<bench::Traffic>(bench::make_pure_acks(1000000, PassChange::Advance));
            },
            1, passes(1, 4), 1000000});
    if (full) {
        list.push_back({"ack-10m", "64-byte pure ACKs, 10,000,000 established flows",
                [] {
                    return Result<bench::Traffic>(
                            bench::make_pure_acks(10000000, PassChange::Advance));
                },
                1, passes(1, 2), 10000000});
    }
    list.push_back({"new-10k", "64-byte pure ACKs, 10,000 new flows a pass",
            [] {
                return Result<bench::Traffic>(
                        bench::make_pure_acks(10000, PassChange::ShiftAddresses));
            },
            1, passes(30, 200), 65536});
    list.push_back({"new-1m", "64-byte pure ACKs, new flows into a table of 1,000,000",
            [] {
                return Result<bench::Traffic>(
                        bench::make_pure_acks(1000000, PassChange::ShiftAddresses));
            },
            1, passes(1, 4), 1000000});
    list.push_back({"imix", "IMIX 7:4:1 (64/594/1518), 2,000 established flows",
            [] { return Result<bench::Traffic>(bench::make_imix(2000, 4)); }, 1, passes(3, 20),
            65536});
    const std::string kxun =
            opt.pcap.empty() ? find_pcap(opt.pcap_dir, "ndpi_mixed-1kxun.pcap") : opt.pcap;
    if (!kxun.empty()) {
        list.push_back({opt.pcap.empty() ? "1kxun" : "pcap", kxun,
                [kxun] { return bench::load_capture(kxun); }, 1, passes(5, 30), 1000000});
    } else {
        printf("exfiltap-bench: ndpi_mixed-1kxun.pcap not found (--pcap-dir): scenario skipped\n");
    }
    const std::string gen = opt.gen.empty() ? self_dir() + "/../gen/exfiltap-gen" : opt.gen;
    const std::string large = opt.large_pcap;
    const uint64_t large_packets = full ? 250000 : 40000;
    list.push_back({"large", "generated large mixed upload capture",
            [gen, large, large_packets] {
                return large.empty() ? generated_large(gen, large_packets)
                                     : bench::load_capture(large);
            },
            1, passes(1, 5), 1000000});
    list.push_back({"text-1460", "text uploads, 1460-byte segments, 1,000 flows",
            [] {
                return Result<bench::Traffic>(
                        bench::make_uploads(1000, 16, 1460, bench::PayloadKind::Text));
            },
            1, passes(3, 30), 65536, true});
    list.push_back({"text-64", "the same text in 64-byte segments, 1,000 flows",
            [] {
                return Result<bench::Traffic>(
                        bench::make_uploads(1000, 64, 64, bench::PayloadKind::Text));
            },
            1, passes(3, 30), 65536, true});
    list.push_back({"digits", "digit runs failing Luhn, 1460-byte segments, 1,000 flows",
            [] {
                return Result<bench::Traffic>(
                        bench::make_uploads(1000, 16, 1460, bench::PayloadKind::DigitRuns));
            },
            1, passes(3, 10), 65536, true});
    list.push_back({"blocks-1m", "ack-10k with 1,000,000 exact block entries + 10,000 prefixes",
            [] {
                return Result<bench::Traffic>(bench::make_pure_acks(10000, PassChange::Advance));
            },
            1, passes(30, 200), 65536, false, true});
    if (!opt.only.empty()) {
        std::erase_if(list, [&](const Scenario& s) {
            return std::find(opt.only.begin(), opt.only.end(), s.name) == opt.only.end();
        });
    }
    return list;
}

/// A TCP port on 127.0.0.1 with a listener that never accepts (`stalled`: the kernel
/// completes connections into its backlog and buffers a little, then sends stall), or with
/// nothing at all (the listener closed again: connections are refused).
struct LoopbackPort {
    int fd = -1;
    uint16_t port = 0;
    explicit LoopbackPort(bool keep_listening) {
        fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_in addr{};
        addr.sin_family = AF_INET;
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        socklen_t len = sizeof(addr);
        if (fd < 0 || bind(fd, reinterpret_cast<sockaddr*>(&addr), len) != 0 || listen(fd, 4) != 0
                || getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
            return;
        }
        port = ntohs(addr.sin_port);
        if (!keep_listening) {
            close(fd);
            fd = -1;
        }
    }
    ~LoopbackPort() {
        if (fd >= 0) {
            close(fd);
        }
    }
    LoopbackPort(const LoopbackPort&) = delete;
    LoopbackPort& operator=(const LoopbackPort&) = delete;
    LoopbackPort(LoopbackPort&&) = delete;
    LoopbackPort& operator=(LoopbackPort&&) = delete;
    std::string address() const { return "127.0.0.1:" + std::to_string(port); }
};

struct SiemFigures {
    std::string name;
    bench::RunFigures run;
    uint64_t records = 0;
    control::SiemOutputCounts syslog;
    control::SiemOutputCounts redis;
};

/// Uploads with a card number in every segment through one worker with the control side
/// the daemon runs (alert sink, suppression off so every finding is a record, behaviour
/// feed) and its records to:
/// no SIEM output, a syslog and a Redis output whose peers are down, and a syslog output
/// whose peer accepts and never reads. The workers' rate must not depend on it.
std::vector<SiemFigures> siem_comparison(
        const control::Config& base, const bench::RunOptions& template_run) {
    const bench::Traffic traffic = bench::make_uploads(1000, 16, 1460, bench::PayloadKind::Cards);
    std::vector<SiemFigures> out;
    std::string state_dir = std::filesystem::temp_directory_path().string() + "/xtbench-XXXXXX";
    if (mkdtemp(state_dir.data()) == nullptr) {
        return out;
    }
    auto key = control::SampleKey::load_or_create(state_dir);
    std::filesystem::remove_all(state_dir);
    if (!key) {
        printf("siem: %s\n", key.error().c_str());
        return out;
    }
    const LoopbackPort dead_syslog(false);
    const LoopbackPort dead_redis(false);
    const LoopbackPort stalled(true);
    for (const char* name : {"no SIEM output", "dead syslog+redis", "stalled syslog"}) {
        const std::string mode = name;
        control::Config config = base;
        config.outputs.alert_suppression_s = 0;
        if (mode != "no SIEM output") {
            config.outputs.syslog.enabled = true;
            config.outputs.syslog.transport = control::SyslogTransport::Tcp;
            config.outputs.syslog.address =
                    mode == "stalled syslog" ? stalled.address() : dead_syslog.address();
        }
        if (mode == "dead syslog+redis") {
            config.outputs.redis.enabled = true;
            config.outputs.redis.address = dead_redis.address();
        }
        control::SiemOutputs siem(config.outputs, "bench");
        if (Status st = siem.start(control::start_std_thread); !st) {
            printf("siem %s: %s\n", name, st.error().c_str());
            continue;
        }
        control::AlertSink sink(config, *key, nullptr);
        control::BehaviourFeed feed(config, sink);
        sink.set_app_handler(
                [&feed](const dataplane::WorkerEvent& event) { feed.on_event(event); });
        if (!siem.empty()) {
            sink.set_outputs(&siem);
        }
        bench::RunOptions run = template_run;
        run.on_event = [&sink](const dataplane::WorkerEvent& event) {
            sink.on_event(event);
        };
        auto figures = bench::run_traffic(traffic, run);
        feed.flush();
        sink.flush_all();
        siem.stop(0);
        if (!figures) {
            printf("siem %s: %s\n", name, figures.error().c_str());
            continue;
        }
        SiemFigures f;
        f.name = name;
        f.run = *figures;
        for (const auto& [cls, n] : sink.alerts()) {
            f.records += n;
        }
        for (const auto& [detector, n] : sink.behaviour_alerts()) {
            f.records += n;
        }
        for (const auto& output : siem.outputs()) {
            (output->name() == "redis" ? f.redis : f.syslog) = output->counts();
        }
        out.push_back(f);
    }
    return out;
}

void print_siem(const std::vector<SiemFigures>& figures) {
    if (figures.empty()) {
        return;
    }
    printf("SIEM outputs (text uploads with a card number in every 1460-byte segment, 1,000 "
           "flows, 1 worker; the control side on the main lcore, which also feeds the rings; "
           "suppression off, so every finding is a record; worker cycles per packet are what a "
           "SIEM must not change):\n");
    const SiemFigures& none = figures.front();
    for (const SiemFigures& f : figures) {
        const double ratio = none.run.pps() > 0 ? f.run.pps() / none.run.pps() : 0;
        const double cycles = none.run.median_pass_cycles() > 0
                ? f.run.median_pass_cycles() / none.run.median_pass_cycles()
                : 0;
        printf("  %-18s %10.0f packets/s (%.2f of none), %7.1f cycles/packet (%.2fx), %llu "
               "records",
                f.name.c_str(), f.run.pps(), ratio, f.run.median_pass_cycles(), cycles,
                static_cast<unsigned long long>(f.records));
        for (const auto& [label, c] :
                {std::pair{"syslog", f.syslog}, std::pair{"redis", f.redis}}) {
            if (c.offered > 0) {
                printf("; %s offered %llu, sent %llu, dropped %llu, not sent %llu", label,
                        static_cast<unsigned long long>(c.offered),
                        static_cast<unsigned long long>(c.sent),
                        static_cast<unsigned long long>(c.dropped),
                        static_cast<unsigned long long>(c.failed));
            }
        }
        printf("\n");
    }
}

/// The flight recorder's own cost: TSC cycles per record() for two frame sizes, measured
/// here on this thread against a ring of `ring_bytes` (many times around it).
void print_recorder_cost(size_t ring_bytes, uint32_t snap_bytes) {
    auto recorder = dataplane::FlightRecorder::create(ring_bytes, snap_bytes);
    if (recorder == nullptr) {
        printf("flight recorder: sizes refused (ring %zu, snap %u)\n", ring_bytes, snap_bytes);
        return;
    }
    std::vector<uint8_t> frame(1514, 0x5a);
    constexpr uint32_t kRecords = 1000000;
    printf("flight recorder (ring %zu bytes, snap %u):", recorder->capacity(), snap_bytes);
    for (const uint32_t len : {64U, 1514U}) {
        const uint64_t start = rte_rdtsc();
        for (uint32_t i = 0; i < kRecords; ++i) {
            recorder->record(i & 1023, i, frame.data(), len);
        }
        const double cycles = static_cast<double>(rte_rdtsc() - start) / kRecords;
        printf(" %u-byte frames %.1f cyc/record;", len, cycles);
    }
    printf(" %llu records overwritten\n",
            static_cast<unsigned long long>(recorder->stats().overwritten));
}

int run(const Options& opt) {
    auto loaded = opt.config_path.empty() ? Result<control::Config>(control::default_config())
                                          : control::load_config(opt.config_path);
    if (!loaded) {
        fprintf(stderr, "exfiltap-bench: configuration error\n%s\n", loaded.error().c_str());
        return 2;
    }
    control::Config config = std::move(*loaded);
    for (const std::string& assignment : opt.overrides) {
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
    auto patterns = detectors::PatternDatabase::compile(config.content);
    if (!patterns) {
        fprintf(stderr, "exfiltap-bench: %s\n", patterns.error().c_str());
        return 2;
    }
    const size_t cpus = dataplane::allowed_cpus().size();  // before the EAL pins this thread
    const unsigned max_workers = *std::max_element(opt.workers.begin(), opt.workers.end());
    dataplane::EalOptions eal;
    eal.workers = max_workers;
    const uint32_t largest_scale =
            opt.scale.empty() ? 0 : *std::max_element(opt.scale.begin(), opt.scale.end());
    eal.memory_mb = opt.memory_mb != 0
            ? opt.memory_mb
            : static_cast<unsigned>(3072 + (opt.full ? 8192 : 0) + largest_scale / 2500);
    eal.file_prefix = "exfiltap_bench_" + std::to_string(getpid());
    if (Status st = dataplane::init_eal(eal); !st) {
        fprintf(stderr, "exfiltap-bench: %s\n", st.error().c_str());
        return 1;
    }
    detectors::StreamPool::install_hyperscan_allocator();
    const dataplane::NetworkSet internal = control::internal_networks(config);
    const dataplane::FlowVerdictPolicy flow_policy =
            control::build_flow_verdicts(config.response, config.content);
    std::vector<hs_scratch*> scratches;
    for (unsigned w = 0; w < max_workers + 1; ++w) {  // the last: Hyperscan alone
        auto scratch = (*patterns)->alloc_scratch();
        if (!scratch) {
            fprintf(stderr, "exfiltap-bench: %s\n", scratch.error().c_str());
            return 1;
        }
        scratches.push_back(*scratch);
    }
    const double tsc_hz = static_cast<double>(rte_get_tsc_hz());
    const double rdtsc_pair = bench::rdtsc_pair_cycles();
    printf(
            "exfiltap-bench (%s form): TSC %.2f GHz, %u CPUs, workers %s; one rdtsc pair %.1f "
            "cycles\n",
            opt.full ? "long" : "short", tsc_hz / 1e9, static_cast<unsigned>(cpus),
            [&] {
                std::string s;
                for (const unsigned w : opt.workers) {
                    s += (s.empty() ? "" : ",") + std::to_string(w);
                }
                return s;
            }()
                    .c_str(),
            rdtsc_pair);

    if (opt.recorder_bytes > 0) {
        print_recorder_cost(opt.recorder_bytes, config.outputs.evidence.snap_bytes);
    }
    std::unique_ptr<dataplane::BlockTable> blocks;
    std::vector<Outcome> outcomes;
    std::vector<SiemFigures> siem;
    for (const Scenario& sc : scenarios(opt)) {
        auto traffic = sc.make();
        if (!traffic) {
            printf("%-14s skipped: %s\n", sc.name.c_str(), traffic.error().c_str());
            continue;
        }
        if (sc.blocks && blocks == nullptr) {
            dataplane::BlockTableConfig table_config;
            table_config.exact_capacity = 1000000 + 1024;
            table_config.prefix_capacity = 10000 + 64;
            table_config.readers = max_workers;
            std::string error;
            blocks = dataplane::BlockTable::create(table_config, &error);
            if (blocks == nullptr) {
                printf("%-14s skipped: block table: %s\n", sc.name.c_str(), error.c_str());
                continue;
            }
            if (Status st = bench::fill_blocks(*blocks, 1000000, 10000); !st) {
                printf("%-14s skipped: block table: %s\n", sc.name.c_str(), st.error().c_str());
                continue;
            }
        }
        const auto scenario_start = std::chrono::steady_clock::now();
        for (const unsigned w : opt.workers) {
            bench::RunOptions run;
            run.workers = w;
            run.warm_passes = sc.warm;
            run.passes = sc.passes;
            run.scratches.assign(scratches.begin(), scratches.begin() + w);
            run.worker = control::worker_template(config, internal, *patterns);
            run.worker.flows.capacity = sc.table;
            run.worker.flow_policy = &flow_policy;
            run.worker.blocks = sc.blocks ? blocks.get() : nullptr;
            run.worker.stage_cycles = opt.stage_cycles;
            run.worker.recorder_bytes = opt.recorder_bytes;
            run.worker.recorder_snap_bytes = config.outputs.evidence.snap_bytes;
            Outcome o;
            o.scenario = sc.name;
            o.what = sc.what;
            o.workers = w;
            o.change = traffic->change;
            // Against Hyperscan alone with one worker, in rounds: one measured pass of the
            // pipeline and one of Hyperscan alone, each after a warm pass, the order
            // alternating, so that each round's ratio compares two runs a second apart on this
            // noisy machine; the budget takes the median round. More workers: all passes in
            // one run, then Hyperscan alone.
            const unsigned rounds = sc.content_limit && w == 1 ? sc.passes : 1;
            run.passes = rounds > 1 ? 1 : sc.passes;
            bool failed = false;
            for (unsigned r = 0; r < rounds && !failed; ++r) {
                const bool scan_first = r % 2 == 1;
                std::optional<bench::ScanLimit> scan;
                auto scan_alone = [&] {
                    auto limit = bench::hyperscan_alone(*traffic, sc.warm, run.passes,
                            (*patterns)->database(), scratches.back(),
                            dataplane::worker_lcores().front());
                    if (limit) {
                        scan = *limit;
                    }
                };
                if (sc.content_limit && scan_first) {
                    scan_alone();
                }
                auto pipeline = bench::run_traffic(*traffic, run);
                if (!pipeline) {
                    printf("%-14s W=%u failed: %s\n", sc.name.c_str(), w, pipeline.error().c_str());
                    failed = true;
                    break;
                }
                if (sc.content_limit && !scan_first) {
                    scan_alone();
                }
                if (r == 0) {
                    o.pipeline = *pipeline;
                } else {
                    o.pipeline.merge(*pipeline);
                }
                if (scan) {
                    o.round_content.push_back(content_cycles(*pipeline, rdtsc_pair));
                    o.round_scan.push_back(scan->cycles_per_packet);
                    o.round_ratios.push_back(ratio(o.round_content.back(), o.round_scan.back()));
                    if (o.scan) {
                        o.scan->merge(*scan);
                    } else {
                        o.scan = scan;
                    }
                }
            }
            if (failed) {
                continue;
            }
            if (opt.bare) {
                run.passes = sc.passes;
                run.worker.bare_forward = true;
                run.worker.flows.capacity = 16;
                auto bare = bench::run_traffic(*traffic, run);
                if (bare) {
                    o.bare = *bare;
                }
            }
            print_outcome(o, rdtsc_pair);
            fflush(stdout);
            outcomes.push_back(std::move(o));
        }
        if (sc.name == "text-1460" && opt.siem) {
            bench::RunOptions run;
            run.workers = 1;
            run.warm_passes = sc.warm;
            run.passes = sc.passes;
            run.scratches.assign(scratches.begin(), scratches.begin() + 1);
            run.worker = control::worker_template(config, internal, *patterns);
            run.worker.flows.capacity = sc.table;
            run.worker.flow_policy = &flow_policy;
            run.worker.stage_cycles = opt.stage_cycles;
            siem = siem_comparison(config, run);
            print_siem(siem);
        }
        printf("    (%s: %.1f s of wall time, every worker count and limit included)\n",
                sc.name.c_str(),
                std::chrono::duration<double>(std::chrono::steady_clock::now() - scenario_start)
                        .count());
    }
    blocks.reset();

    // Flow table scale.
    std::vector<bench::FlowScale> scales;
    for (const uint32_t n : opt.scale) {
        auto s = bench::measure_flow_scale(n, opt.full ? n : std::min<uint32_t>(n, 2000000));
        if (!s) {
            printf("flow table %u: %s\n", n, s.error().c_str());
            continue;
        }
        printf("flow table %8u flows: %.1f bytes/flow (entry %llu incl. TCP state, index %.1f; "
               "heap grew %.1f/flow); %.2f M inserts/s, %.2f M lookups/s, %.2f M bulk "
               "lookups/s; longest probe %u buckets; full: %u more flows -> %llu evicted, %llu "
               "refused\n",
                s->flows, s->bytes_per_flow, static_cast<unsigned long long>(s->flow_entry_bytes),
                s->index_bytes_per_flow, static_cast<double>(s->heap_bytes) / s->flows,
                s->inserts_per_second / 1e6, s->lookups_per_second / 1e6,
                s->bulk_lookups_per_second / 1e6, s->max_probe, s->over_capacity,
                static_cast<unsigned long long>(s->evicted),
                static_cast<unsigned long long>(s->refused));
        scales.push_back(*s);
    }
    const size_t payload_state = dataplane::Worker::payload_state_bytes();
    const size_t stream_state = (*patterns)->stream_size();
    printf("payload state per inspected direction (apart from the flow): %zu bytes slot + "
           "%zu bytes Hyperscan stream state (pool block %zu), taken on first payload\n",
            payload_state, stream_state,
            (std::max<size_t>(2 * stream_state, 1024) + 63) & ~size_t{63});

    // Budgets.
    auto find = [&](const std::string& name, unsigned workers) -> const Outcome* {
        for (const Outcome& o : outcomes) {
            if (o.scenario == name && o.workers == workers) {
                return &o;
            }
        }
        return nullptr;
    };
    std::vector<Budget> budgets;
    {
        Budget b{"established 64-byte ACKs, 10,000 flows, 1 worker", "cycles/packet", 0,
                kEstablishedBudget};
        if (const Outcome* o = find("ack-10k", 1)) {
            b.value = o->pipeline.median_pass_cycles();
            b.measured = true;
        }
        budgets.push_back(b);
    }
    {
        Budget b{"new flows into a table of 1,000,000, 1 worker", "cycles/packet", 0,
                kNewFlowBudget};
        if (const Outcome* o = find("new-1m", 1)) {
            b.value = o->pipeline.median_pass_cycles();
            b.measured = true;
        }
        budgets.push_back(b);
    }
    for (const char* name : {"text-1460", "text-64", "digits"}) {
        Budget b{std::string("content stage on ") + name + " / Hyperscan alone, 1 worker", "ratio",
                0, kContentBudget};
        if (const Outcome* o = find(name, 1); o != nullptr && o->scan) {
            b.value = o->median_round_ratio();
            b.measured = true;
        }
        budgets.push_back(b);
    }
    {
        Budget b{"flow entry + index slot + TCP state", "bytes/flow", 0, kFlowBytesBudget};
        for (const bench::FlowScale& s : scales) {
            b.value = std::max(b.value, s.bytes_per_flow);
            b.measured = true;
        }
        budgets.push_back(b);
    }
    {
        Budget b{"large upload capture, 1 worker, per core (5x Snort 3's 200k)", "packets/s/core",
                0, kSnortPacketsPerCore * kSnortMultiple, false};
        if (const Outcome* o = find("large", 1);
                o != nullptr && o->pipeline.cycles_per_packet() > 0) {
            b.value = tsc_hz / o->pipeline.median_pass_cycles();
            b.measured = true;
        }
        budgets.push_back(b);
    }
    printf("budgets:\n");
    for (const Budget& b : budgets) {
        printf("  %-64s %12.2f %s %-9g %-14s %s\n", b.name.c_str(), b.value,
                b.at_most ? "<=" : ">=", b.limit, b.figure.c_str(),
                !b.measured ? "NOT MEASURED" : (b.met() ? "met" : "NOT MET"));
    }
    printf("(cycles: worker TSC cycles in non-empty bursts, stage timers on; cycle budgets are "
           "judged on the median measured pass, content ratios on the median round; on this "
           "machine two workers share one CPU, the "
           "main lcore feeding from the other)\n");

    if (!opt.json_path.empty()) {
        nlohmann::json j;
        j["form"] = opt.full ? "long" : "short";
        j["tsc_hz"] = rte_get_tsc_hz();
        j["cpus"] = cpus;
        j["rdtsc_pair_cycles"] = rdtsc_pair;
        j["runs"] = nlohmann::json::array();
        for (const Outcome& o : outcomes) {
            nlohmann::json r = {{"scenario", o.scenario}, {"what", o.what}, {"workers", o.workers},
                    {"flows", o.change == PassChange::Advance ? "established" : "new"},
                    {"pipeline", figures_json(o.pipeline)}, {"bare", figures_json(o.bare)},
                    {"cycles_ratio_to_bare",
                            ratio(o.pipeline.cycles_per_packet(), o.bare.cycles_per_packet())},
                    {"pps_ratio_to_bare", ratio(o.pipeline.pps(), o.bare.pps())}};
            if (o.scan) {
                const double content = content_cycles(o.pipeline, rdtsc_pair);
                r["hyperscan_alone"] = {{"cycles_per_packet", o.scan->cycles_per_packet},
                        {"bytes", o.scan->bytes}, {"matches", o.scan->matches}};
                r["content_ratio_to_hyperscan"] = ratio(content, o.scan->cycles_per_packet);
                r["content_ratio_by_round"] = o.round_ratios;
                r["median_round_content_ratio"] = o.median_round_ratio();
                r["least_pass_content_ratio"] = o.least_round_ratio();
                r["cycles_ratio_to_hyperscan"] =
                        ratio(o.pipeline.cycles_per_packet(), o.scan->cycles_per_packet);
            }
            j["runs"].push_back(r);
        }
        j["flow_scale"] = nlohmann::json::array();
        for (const bench::FlowScale& s : scales) {
            j["flow_scale"].push_back({{"flows", s.flows}, {"table_bytes", s.table_bytes},
                    {"bytes_per_flow", s.bytes_per_flow}, {"flow_entry_bytes", s.flow_entry_bytes},
                    {"index_bytes_per_flow", s.index_bytes_per_flow}, {"heap_bytes", s.heap_bytes},
                    {"max_probe", s.max_probe}, {"inserts_per_second", s.inserts_per_second},
                    {"lookups_per_second", s.lookups_per_second},
                    {"bulk_lookups_per_second", s.bulk_lookups_per_second},
                    {"over_capacity", s.over_capacity}, {"evicted", s.evicted},
                    {"refused", s.refused}});
        }
        j["siem"] = nlohmann::json::array();
        for (const SiemFigures& f : siem) {
            j["siem"].push_back({{"mode", f.name}, {"pps", f.run.pps()},
                    {"cycles_per_packet", f.run.median_pass_cycles()}, {"records", f.records},
                    {"syslog_offered", f.syslog.offered}, {"syslog_sent", f.syslog.sent},
                    {"syslog_dropped", f.syslog.dropped}, {"syslog_not_sent", f.syslog.failed},
                    {"redis_offered", f.redis.offered}, {"redis_dropped", f.redis.dropped},
                    {"redis_not_sent", f.redis.failed}});
        }
        j["payload_state_bytes"] = payload_state;
        j["stream_state_bytes"] = stream_state;
        j["budgets"] = nlohmann::json::array();
        for (const Budget& b : budgets) {
            j["budgets"].push_back(
                    {{"name", b.name}, {"figure", b.figure}, {"value", b.value}, {"limit", b.limit},
                            {"at_most", b.at_most}, {"measured", b.measured}, {"met", b.met()}});
        }
        std::ofstream(opt.json_path) << j.dump(2) << "\n";
    }
    for (hs_scratch* scratch : scratches) {
        detectors::PatternDatabase::free_scratch(scratch);
    }
    dataplane::cleanup_eal();
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{
            "exfiltap-bench: the fast path against bare forwarding and Hyperscan alone, "
            "scenario by scenario; no arguments: every scenario in short form"};
    Options opt;
    app.add_flag("--full", opt.full, "Long form: more passes, 10M established flows");
    app.add_option("--workers", opt.workers, "Worker counts to run each scenario with")
            ->delimiter(',')
            ->check(CLI::Range(1, 16));
    app.add_option("--scenario", opt.only, "Only these scenarios (repeatable)")->delimiter(',');
    app.add_option("--passes-factor", opt.pass_factor, "Multiply every scenario's passes");
    app.add_option("--json", opt.json_path, "Also write the figures as JSON here");
    app.add_option("--config", opt.config_path, "YAML configuration instead of the defaults")
            ->check(CLI::ExistingFile);
    app.add_option("--set", opt.overrides, "Override one config key: key=value (repeatable)");
    app.add_option("--pcap-dir", opt.pcap_dir, "Folder holding ndpi_mixed-1kxun.pcap");
    app.add_option("--pcap", opt.pcap, "Replay this capture instead of ndpi_mixed-1kxun.pcap")
            ->check(CLI::ExistingFile);
    app.add_option("--gen", opt.gen, "exfiltap-gen binary (default: beside this build)");
    app.add_option(
               "--large-pcap", opt.large_pcap, "The large upload capture, instead of generating it")
            ->check(CLI::ExistingFile);
    app.add_option("--flow-scale", opt.scale, "Flow table sizes to measure (0: none)")
            ->delimiter(',');
    app.add_option("--memory-mb", opt.memory_mb, "EAL memory (default: sized for the form)");
    app.add_flag("!--no-bare", opt.bare, "Skip the bare forwarding runs");
    app.add_flag("!--no-siem", opt.siem,
            "Skip the SIEM comparison (card uploads: no output, dead, stalled)");
    app.add_option("--recorder-bytes", opt.recorder_bytes,
            "Flight recorder ring per worker for the pipeline runs (0: off; the evidence cost)");
    app.add_flag("!--no-stage-cycles", opt.stage_cycles,
            "Run the workers without the per-stage cycle counters");
    std::string card_vectors;
    app.add_option("--card-vectors", card_vectors,
               "Card tracker's instruction set on digit runs (default: the best the build has)")
            ->check(CLI::IsMember({"scalar", "ssse3", "avx2"}));
    CLI11_PARSE(app, argc, argv);
    std::erase(opt.scale, 0U);
    if (!card_vectors.empty()) {
        using detectors::CardVectorLevel;
        const CardVectorLevel wanted = card_vectors == "scalar" ? CardVectorLevel::Scalar
                : card_vectors == "ssse3"                       ? CardVectorLevel::Ssse3
                                                                : CardVectorLevel::Avx2;
        if (detectors::set_card_vector_level(wanted) != wanted) {
            std::fprintf(stderr, "exfiltap-bench: this build has no %s\n", card_vectors.c_str());
            return 1;
        }
    }
    return run(opt);
}
