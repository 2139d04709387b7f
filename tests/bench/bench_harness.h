// exfiltap-bench's runner: preloads one pass of a scenario into mbufs (the symmetric
// Toeplitz hash of each computed here, once), spreads them over the workers' ring ports as
// a NIC's redirection table would, and runs the real workers (Worker::lcore_main) for warm-up
// and measured passes. Between passes the main thread changes the returned mbufs in place
// (bench_packets.h), so nothing is allocated or copied per packet while workers run.
// Main thread only, after EAL init.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "common/result.h"
#include "dataplane/block_table.h"
#include "dataplane/worker.h"
#include "tests/bench/bench_packets.h"

namespace exfiltap::bench {

struct RunOptions {
    unsigned workers = 1;
    unsigned warm_passes = 1;
    unsigned passes = 1;
    /// Template for every worker (ids, rings and ports are set by the runner).
    dataplane::WorkerConfig worker;
    std::vector<hs_scratch*> scratches;  // one per worker
    /// Called on the main thread for every worker event drained (findings, app events),
    /// as the control thread would take them; events are only counted without it.
    std::function<void(const dataplane::WorkerEvent&)> on_event;
};

inline constexpr size_t kStageCount = dataplane::kWorkerStageCount;

/// What the measured passes did, summed over workers.
struct RunFigures {
    uint64_t packets = 0;
    uint64_t bytes = 0;
    double seconds = 0;
    uint64_t busy_cycles = 0;
    uint64_t busy_packets = 0;
    uint64_t all_busy_packets = 0;  // warm-up passes included (callgrind's divisor)
    std::array<uint64_t, kStageCount> stage_cycles{};
    uint64_t stage_timers = 0;    // timed intervals of the content and event stages
    uint64_t content_timers = 0;  // of the content stage alone
    uint64_t scanned_bytes = 0;
    uint64_t flows_created = 0;
    uint64_t flows_evicted = 0;
    uint64_t findings = 0;
    uint64_t exceptions = 0;
    uint64_t retransmitted_bytes = 0;
    uint64_t events = 0;
    std::vector<uint64_t> per_worker_packets;
    /// Cycles per packet of each measured pass alone: on a shared machine other processes
    /// only ever add cycles, so the median pass is steadier than the whole.
    std::vector<double> pass_cycles_per_packet;

    double pps() const { return seconds > 0 ? static_cast<double>(packets) / seconds : 0; }
    double gbps() const { return seconds > 0 ? static_cast<double>(bytes) * 8 / seconds / 1e9 : 0; }
    double cycles_per_packet() const {
        return busy_packets > 0
                ? static_cast<double>(busy_cycles) / static_cast<double>(busy_packets)
                : 0;
    }
    double median_pass_cycles() const;
    double best_pass_cycles() const;
    /// Adds another run of the same traffic (counters summed, passes appended).
    void merge(const RunFigures& other);
    double stage_per_packet(size_t stage) const {
        return busy_packets > 0
                ? static_cast<double>(stage_cycles[stage]) / static_cast<double>(busy_packets)
                : 0;
    }
};

/// Runs `traffic` through fresh workers. The EAL must offer options.workers worker lcores.
Result<RunFigures> run_traffic(const Traffic& traffic, const RunOptions& options);

/// Hyperscan stream-mode scanning alone of the payload of the inspected streams of
/// `traffic`, in frame order, for `passes` passes, on `db` with `scratch` and a callback that
/// only counts: TSC cycles per frame of the traffic (all frames counted, as the pipeline's
/// cycles per packet are). The payload is read from the preloaded traffic, not from mbufs
/// another core just wrote, so this limit has warmer caches than the pipeline gets.
struct ScanLimit {
    double cycles_per_packet = 0;
    uint64_t bytes = 0;
    uint64_t matches = 0;
    unsigned passes = 0;

    /// Adds another run of the same traffic.
    void merge(const ScanLimit& other);
};
/// `warm_passes` are scanned first and not timed, as the pipeline's are. `lcore`: the worker
/// lcore to scan on (0: this thread).
Result<ScanLimit> hyperscan_alone(const Traffic& traffic, unsigned warm_passes, unsigned passes,
        hs_database* db, hs_scratch* scratch, unsigned lcore);

/// TSC cycles one rte_rdtsc() pair costs on this machine (subtracted per timed interval).
double rdtsc_pair_cycles();

/// Fills the block table with addresses no scenario or benchmark capture uses
/// (198.18.0.0/15, then 3fff::/20 past it), so lookups cost what a full table costs without
/// dropping the traffic.
Status fill_blocks(dataplane::BlockTable& table, uint32_t exact, uint32_t prefixes);

}  // namespace exfiltap::bench
