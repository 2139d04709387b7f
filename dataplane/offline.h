// Offline mode (DESIGN.md "Modes"): the main lcore reads a capture, hashes each packet with
// the symmetric Toeplitz function a NIC applies, and feeds the workers' rx rings, which form
// a net_ring ethdev port, so workers run unchanged. What they transmit is put back in capture
// order (a sequence number per mbuf) and written with the original timestamps. Nothing is
// lost: the reader never spins on a full ring, and workers wait instead of dropping.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "common/result.h"
#include "dataplane/worker.h"

namespace exfiltap::dataplane {

struct OfflineOptions {
    std::string input;
    std::string output;  // empty: nothing written
    unsigned workers = 1;
    /// Template for every worker: id, rings, ports and lcores are filled in here.
    WorkerConfig worker;
    std::vector<hs_scratch*> scratches;  // one per worker
    uint32_t mbufs = 16383;
    /// Called on the main lcore for every worker event, in the order drained.
    std::function<void(const WorkerEvent&)> on_event;
};

struct OfflineResult {
    uint64_t packets_read = 0;
    uint64_t bytes_read = 0;
    uint64_t packets_written = 0;
    uint64_t packets_dropped = 0;
    uint64_t first_ns = 0;
    uint64_t last_ns = 0;
    double elapsed_s = 0;
    bool nanosecond = false;
    /// Set when the capture could not be read to its end (packets before it were processed).
    std::string read_error;
    /// DPDK heap bytes in use at the end of the run (pools, rings, flow tables).
    uint64_t dpdk_heap_bytes = 0;
    std::vector<const WorkerCounters*> counters;
    std::vector<const ReassemblyStats*> reassembly;
};

/// The symmetric Toeplitz hash of a frame's IP addresses (0 for non-IP frames), as a NIC
/// with the symmetric key computes it for RSS.
uint32_t symmetric_rss_hash(const uint8_t* frame, uint32_t len) noexcept;

/// Runs a capture through the workers. Workers stay alive in `workers` so that their
/// counters can be read afterwards.
Result<OfflineResult> run_offline(
        const OfflineOptions& options, std::vector<std::unique_ptr<Worker>>& workers);

}  // namespace exfiltap::dataplane
