#include "dataplane/eal_setup.h"

#include <malloc.h>
#include <sched.h>
#include <unistd.h>

#include <atomic>
#include <cstring>

#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_lcore.h>
#include <rte_malloc.h>
#include <rte_mempool.h>

namespace exfiltap::dataplane {

namespace {
// Set between a successful init_eal() and cleanup_eal(): memory_usage() asks DPDK only then.
std::atomic<bool> eal_running{false};
}  // namespace

std::vector<int> allowed_cpus() {
    std::vector<int> cpus;
    cpu_set_t set;
    CPU_ZERO(&set);
    if (sched_getaffinity(0, sizeof(set), &set) == 0) {
        for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu) {
            if (CPU_ISSET(cpu, &set)) {
                cpus.push_back(cpu);
            }
        }
    }
    if (cpus.empty()) {
        cpus.push_back(0);
    }
    return cpus;
}

std::vector<std::string> build_eal_args(const EalOptions& options, const std::vector<int>& cpus) {
    std::vector<std::string> args = {"exfiltap", "--no-huge", "--no-shconf", "-m",
            std::to_string(options.memory_mb), "--log-level", "lib.eal:warning", "--log-level",
            "pmd.net.ring:warning"};
    if (options.pci.empty()) {
        args.emplace_back("--no-pci");
    }
    for (const std::string& address : options.pci) {
        args.emplace_back("-a");
        args.push_back(address);
    }
    for (const std::string& vdev : options.vdevs) {
        args.emplace_back("--vdev");
        args.push_back(vdev);
    }
    if (!options.file_prefix.empty()) {
        args.emplace_back("--file-prefix");
        args.push_back(options.file_prefix);
    }
    if (!options.telemetry) {
        args.emplace_back("--no-telemetry");
    }
    const size_t lcores = size_t{options.workers} + 1;
    std::string map;
    if (lcores <= cpus.size()) {
        for (size_t i = 0; i < lcores; ++i) {
            map += (i == 0 ? "" : ",") + std::to_string(i) + "@" + std::to_string(cpus[i]);
        }
    } else {
        // More lcores than CPUs: the main lcore keeps the first CPU; workers share the rest
        // (or the only one). Workers back off when idle, so sharing a CPU does not starve.
        map = "0@" + std::to_string(cpus[0]);
        const size_t first = cpus.size() > 1 ? 1 : 0;
        for (size_t w = 1; w < lcores; ++w) {
            const size_t cpu = first + (w - 1) % (cpus.size() - first);
            map += "," + std::to_string(w) + "@" + std::to_string(cpus[cpu]);
        }
    }
    args.emplace_back("--lcores");
    args.push_back(map);
    args.emplace_back("--main-lcore");
    args.emplace_back("0");
    for (const std::string& extra : options.extra_args) {
        args.push_back(extra);
    }
    return args;
}

Status init_eal(const EalOptions& options) {
    std::vector<std::string> args = build_eal_args(options, allowed_cpus());
    std::vector<char*> argv;
    argv.reserve(args.size() + 1);
    for (std::string& arg : args) {
        argv.push_back(arg.data());
    }
    argv.push_back(nullptr);
    const int ret = rte_eal_init(static_cast<int>(args.size()), argv.data());
    if (ret < 0) {
        std::string all;
        for (const std::string& arg : args) {
            all += " " + arg;
        }
        return make_error(std::string("DPDK EAL initialisation failed (") + strerror(rte_errno)
                + "); arguments:" + all);
    }
    if (rte_lcore_count() < options.workers + 1) {
        return make_error("EAL started with " + std::to_string(rte_lcore_count()) + " lcores, need "
                + std::to_string(options.workers + 1));
    }
    eal_running.store(true, std::memory_order_release);
    return Ok{};
}

void cleanup_eal() {
    const std::string runtime_dir = rte_eal_get_runtime_dir();
    eal_running.store(false, std::memory_order_release);
    rte_eal_cleanup();
    // Only an empty directory goes: rmdir() refuses anything else.
    if (!runtime_dir.empty()) {
        rmdir(runtime_dir.c_str());
    }
}

std::vector<unsigned> worker_lcores() {
    std::vector<unsigned> ids;
    unsigned lcore = 0;
    RTE_LCORE_FOREACH_WORKER(lcore) {
        ids.push_back(lcore);
    }
    return ids;
}

MemoryUsage memory_usage() {
    MemoryUsage usage;
    const struct mallinfo2 heap = mallinfo2();
    usage.heap_in_use_bytes = heap.uordblks + heap.hblkhd;
    usage.heap_free_held_bytes = heap.fordblks;
    if (!eal_running.load(std::memory_order_acquire)) {
        return usage;
    }
    for (unsigned i = 0; i < rte_socket_count(); ++i) {
        rte_malloc_socket_stats stats{};
        if (rte_malloc_get_socket_stats(rte_socket_id_by_idx(i), &stats) == 0) {
            usage.dpdk_heap_in_use_bytes += stats.heap_allocsz_bytes;
            usage.dpdk_heap_total_bytes += stats.heap_totalsz_bytes;
        }
    }
    rte_mempool_walk(
            [](rte_mempool* pool, void* arg) {
                auto* sum = static_cast<MemoryUsage*>(arg);
                sum->mbufs_in_use += rte_mempool_in_use_count(pool);
                sum->mbufs_total += pool->size;
            },
            &usage);
    return usage;
}

}  // namespace exfiltap::dataplane
