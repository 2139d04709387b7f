// EAL start-up for exfiltap: the program builds its own EAL arguments (no hugepages, no PCI,
// no shared config, memory from config) and, when more lcores are asked for than the process
// may run on CPUs, its own --lcores map. Main thread only, once.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/result.h"

namespace exfiltap::dataplane {

struct EalOptions {
    unsigned workers = 1;
    unsigned memory_mb = 1024;
    /// Unique per process so concurrent runs (tests) never share runtime files.
    std::string file_prefix;
    bool telemetry = false;
    /// Live ports: virtual devices ("net_af_packet0,iface=eth1") and PCI addresses to use.
    /// Without PCI addresses the EAL runs with --no-pci.
    std::vector<std::string> vdevs;
    std::vector<std::string> pci;
    std::vector<std::string> extra_args;
};

/// The arguments init_eal() passes, for `cpus` (the CPUs this process may run on, in order).
/// The main lcore is lcore 0; workers are lcores 1..N. With enough CPUs each lcore gets its
/// own CPU (-l); otherwise the --lcores map spreads workers over the CPUs after the first.
std::vector<std::string> build_eal_args(const EalOptions& options, const std::vector<int>& cpus);

/// CPUs of this process's affinity mask.
std::vector<int> allowed_cpus();

/// Starts the EAL. Fails with a message for the operator.
Status init_eal(const EalOptions& options);

/// Releases the EAL and removes its (then empty) runtime directory under /run/dpdk, which
/// each process's unique file prefix would otherwise leave behind, one per run.
void cleanup_eal();

/// Worker lcore ids, in order (after init_eal()).
std::vector<unsigned> worker_lcores();

/// Memory the process holds by allocator, for leak checks and the operator. Resident size
/// is a poor witness: DPDK's --no-huge memory is touched page by page as it is first used,
/// and glibc keeps freed memory (a reload's compiled database) for the next allocation.
/// These are the bytes actually allocated now.
struct MemoryUsage {
    uint64_t heap_in_use_bytes = 0;       // malloc: in use from arenas plus mmapped chunks
    uint64_t heap_free_held_bytes = 0;    // malloc: freed, kept by glibc for reuse
    uint64_t dpdk_heap_in_use_bytes = 0;  // rte_malloc, all sockets (tables, rings, pools)
    uint64_t dpdk_heap_total_bytes = 0;
    uint64_t mbufs_in_use = 0;  // every mempool of the process, caches included
    uint64_t mbufs_total = 0;
};

/// Walks the allocators (control thread; after init_eal() for the DPDK figures). The mempool
/// count includes objects parked in per-lcore caches, so it is an upper bound at any moment.
MemoryUsage memory_usage();

}  // namespace exfiltap::dataplane
