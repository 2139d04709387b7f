// exfiltap-block-bench: the block table on its own (dataplane/block_table.h). Prints, per IP
// family, packets checked per second with 1,000 and 1,000,000 exact entries plus 10,000
// prefixes (one check() per packet, and check_burst() over bursts of 32), the cost of adding
// and removing one exact entry in a table of a million (median), the prefix commit time, and
// the DPDK heap each table takes. Measured, never asserted: a shared machine is noisy.
//
// Traffic mix per address: 1% an exact entry, 2% inside a block prefix, 1% inside an allow
// prefix, the rest in no entry (most traffic is not blocked).
#include <unistd.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include <rte_cycles.h>
#include <rte_eal.h>
#include <rte_lcore.h>
#include <rte_malloc.h>

#include "dataplane/block_table.h"
#include "dataplane/eal_setup.h"

namespace {

using exfiltap::dataplane::BlockTable;
using exfiltap::dataplane::BlockTableConfig;
using exfiltap::dataplane::BlockVerdict;
using Addr = std::array<uint8_t, 16>;
using Clock = std::chrono::steady_clock;

constexpr unsigned kPrefixes = 10000;
constexpr unsigned kPackets = 1u << 16;
constexpr unsigned kBurst = 32;
constexpr unsigned kTimedAdds = 20000;
constexpr double kLookupSeconds = 1.0;

struct Packet {
    Addr src{};
    Addr dst{};
};

size_t heap_allocated() {
    size_t total = 0;
    for (unsigned i = 0; i < rte_socket_count(); ++i) {
        rte_malloc_socket_stats stats{};
        if (rte_malloc_get_socket_stats(rte_socket_id_by_idx(i), &stats) == 0) {
            total += stats.heap_allocsz_bytes;
        }
    }
    return total;
}

double seconds_since(Clock::time_point start) {
    return std::chrono::duration<double>(Clock::now() - start).count();
}

class Family {
public:
    Family(uint8_t version, std::mt19937_64& rng) : version_(version), rng_(rng) {}

    Addr random_addr() {
        Addr addr{};
        const uint64_t hi = rng_();
        const uint64_t lo = rng_();
        std::memcpy(addr.data(), &hi, 8);
        std::memcpy(addr.data() + 8, &lo, 8);
        if (version_ == 4) {
            std::fill(addr.begin() + 4, addr.end(), 0);
            addr[0] = static_cast<uint8_t>(1 + addr[0] % 223);  // unicast, not 0/8
        } else {
            addr[0] = 0x20;  // global unicast 2000::/3
        }
        return addr;
    }

    /// Realistic lengths: v4 mostly /24 and /32, v6 mostly /48 and /64.
    uint8_t random_len() {
        const unsigned pick = static_cast<unsigned>(rng_() % 10);
        if (version_ == 4) {
            return static_cast<uint8_t>(pick < 5 ? 24 : pick < 8 ? 32 : 16 + pick % 8);
        }
        return static_cast<uint8_t>(pick < 4 ? 48 : pick < 7 ? 64 : pick < 9 ? 128 : 32);
    }

    Addr masked(const Addr& addr, uint8_t len) const {
        Addr out{};
        for (unsigned bit = 0; bit < len; ++bit) {
            out[bit / 8] |= addr[bit / 8] & (0x80 >> (bit % 8));
        }
        return out;
    }

    /// An address inside `prefix/len` (host bits random).
    Addr inside(const Addr& prefix, uint8_t len) {
        Addr addr = random_addr();
        const unsigned width = version_ == 4 ? 32 : 128;
        for (unsigned bit = 0; bit < width; ++bit) {
            if (bit < len) {
                addr[bit / 8] = static_cast<uint8_t>((addr[bit / 8] & ~(0x80 >> (bit % 8)))
                        | (prefix[bit / 8] & (0x80 >> (bit % 8))));
            }
        }
        return addr;
    }

    uint8_t version() const { return version_; }

private:
    uint8_t version_;
    std::mt19937_64& rng_;
};

struct Scenario {
    std::unique_ptr<BlockTable> table;
    std::vector<Addr> exact;
    std::vector<std::pair<Addr, uint8_t>> blocks;
    std::vector<std::pair<Addr, uint8_t>> allows;
    size_t heap_bytes = 0;
    size_t empty_bytes = 0;
    size_t exact_bytes = 0;
    double fill_seconds = 0;
    double commit_seconds = 0;
};

Scenario build(Family& family, unsigned exact_entries, const char* name) {
    Scenario s;
    const size_t before = heap_allocated();
    BlockTableConfig config;
    config.exact_capacity = 1u << 20;
    config.prefix_capacity = 16384;
    config.readers = 1;
    config.name = name;
    std::string error;
    s.table = BlockTable::create(config, &error);
    if (s.table == nullptr) {
        std::fprintf(stderr, "block table: %s\n", error.c_str());
        std::exit(1);
    }
    s.empty_bytes = heap_allocated() - before;
    const Clock::time_point fill = Clock::now();
    while (s.exact.size() < exact_entries) {
        const Addr addr = family.random_addr();
        if (s.table->add_exact(family.version(), addr).ok()) {
            s.exact.push_back(addr);
        }
    }
    s.fill_seconds = seconds_since(fill);
    s.exact_bytes = heap_allocated() - before;
    for (unsigned i = 0; i < kPrefixes; ++i) {
        const uint8_t len = family.random_len();
        const Addr prefix = family.masked(family.random_addr(), len);
        const bool allow = i % 20 == 0;
        if (s.table->stage_prefix(family.version(), prefix, len, allow).ok()) {
            (allow ? s.allows : s.blocks).emplace_back(prefix, len);
        }
    }
    const Clock::time_point commit = Clock::now();
    auto stats = s.table->commit_prefixes();
    s.commit_seconds = seconds_since(commit);
    if (!stats.ok()) {
        std::fprintf(stderr, "commit: %s\n", stats.error().c_str());
        std::exit(1);
    }
    s.heap_bytes = heap_allocated() - before;
    return s;
}

std::vector<Packet> traffic(Family& family, const Scenario& s, std::mt19937_64& rng) {
    std::vector<Packet> packets(kPackets);
    auto pick = [&]() {
        const unsigned roll = static_cast<unsigned>(rng() % 100);
        if (roll == 0) {
            return s.exact[rng() % s.exact.size()];
        }
        if (roll <= 2) {
            const auto& [prefix, len] = s.blocks[rng() % s.blocks.size()];
            return family.inside(prefix, len);
        }
        if (roll == 3) {
            const auto& [prefix, len] = s.allows[rng() % s.allows.size()];
            return family.inside(prefix, len);
        }
        return family.random_addr();
    };
    for (Packet& p : packets) {
        p.src = pick();
        p.dst = pick();
    }
    return packets;
}

struct Rate {
    double pps = 0;
    uint64_t packets = 0;
    uint64_t blocked = 0;
};

bool blocked(BlockVerdict v) {
    return v == BlockVerdict::BlockedExact || v == BlockVerdict::BlockedPrefix;
}

// Runs `burst(i)` (checks packets i..i+kBurst-1, returns how many it blocked) over the packets
// again and again for kLookupSeconds, as a worker would: online, quiescent after each burst.
template <typename Burst>
Rate timed(BlockTable& table, const Burst& burst) {
    Rate rate;
    table.reader_online(0);
    const Clock::time_point start = Clock::now();
    while (seconds_since(start) < kLookupSeconds) {
        for (unsigned i = 0; i < kPackets; i += kBurst) {
            rate.blocked += burst(i);
            table.quiescent(0);
        }
        rate.packets += kPackets;
    }
    rate.pps = static_cast<double>(rate.packets) / seconds_since(start);
    table.reader_offline(0);
    return rate;
}

Rate run_single(BlockTable& table, uint8_t version, const std::vector<Packet>& packets) {
    return timed(table, [&](unsigned i) {
        unsigned count = 0;
        for (unsigned k = i; k < i + kBurst; ++k) {
            count += blocked(table.check(0, version, packets[k].src.data(), packets[k].dst.data()))
                    ? 1
                    : 0;
        }
        return count;
    });
}

Rate run_burst(BlockTable& table, uint8_t version, const std::vector<Packet>& packets) {
    std::array<uint8_t, kBurst> versions;
    versions.fill(version);
    std::array<const uint8_t*, kBurst> srcs;
    std::array<const uint8_t*, kBurst> dsts;
    std::array<BlockVerdict, kBurst> verdicts;
    return timed(table, [&](unsigned i) {
        for (unsigned k = 0; k < kBurst; ++k) {
            srcs[k] = packets[i + k].src.data();
            dsts[k] = packets[i + k].dst.data();
        }
        table.check_burst(0, kBurst, versions.data(), srcs.data(), dsts.data(), verdicts.data());
        return static_cast<unsigned>(std::count_if(verdicts.begin(), verdicts.end(), blocked));
    });
}

double median_ns(std::vector<uint64_t>& cycles) {
    std::sort(cycles.begin(), cycles.end());
    return static_cast<double>(cycles[cycles.size() / 2]) * 1e9
            / static_cast<double>(rte_get_tsc_hz());
}

// Adds kTimedAdds fresh entries one by one (each timed), then removes them (each timed).
void time_changes(Family& family, Scenario& s) {
    std::vector<Addr> fresh;
    std::vector<uint64_t> add_cycles;
    while (fresh.size() < kTimedAdds) {
        const Addr addr = family.random_addr();
        if (s.table->exact_slot(family.version(), addr) >= 0) {
            continue;
        }
        const uint64_t start = rte_rdtsc_precise();
        const bool ok = s.table->add_exact(family.version(), addr).ok();
        add_cycles.push_back(rte_rdtsc_precise() - start);
        if (!ok) {
            std::fprintf(stderr, "add failed at %zu entries\n", s.table->exact_count());
            std::exit(1);
        }
        fresh.push_back(addr);
    }
    std::vector<uint64_t> remove_cycles;
    for (const Addr& addr : fresh) {
        const uint64_t start = rte_rdtsc_precise();
        s.table->remove_exact(family.version(), addr);
        remove_cycles.push_back(rte_rdtsc_precise() - start);
    }
    std::printf("  change at %zu entries: add %.0f ns, remove %.0f ns (median of %u)\n",
            s.exact.size(), median_ns(add_cycles), median_ns(remove_cycles), kTimedAdds);
}

void run_family(uint8_t version, std::mt19937_64& rng) {
    Family family(version, rng);
    for (const unsigned entries : {1000u, 1000000u}) {
        const std::string name = "bb" + std::to_string(version) + "_" + std::to_string(entries);
        Scenario s = build(family, entries, name.c_str());
        const std::vector<Packet> packets = traffic(family, s, rng);
        const Rate single = run_single(*s.table, version, packets);
        const Rate burst = run_burst(*s.table, version, packets);
        std::printf("IPv%u, %u exact + %zu block + %zu allow prefixes:\n", version, entries,
                s.blocks.size(), s.allows.size());
        std::printf("  check():       %6.2f M packets/s (%.1f%% of packets blocked)\n",
                single.pps / 1e6,
                100.0 * static_cast<double>(single.blocked) / static_cast<double>(single.packets));
        std::printf("  check_burst(): %6.2f M packets/s\n", burst.pps / 1e6);
        constexpr double kMiB = 1024.0 * 1024.0;
        std::printf(
                "  fill %.2f s, prefix commit %.1f ms\n", s.fill_seconds, s.commit_seconds * 1e3);
        std::printf(
                "  DPDK heap: %.1f MiB created (capacity 2^20 exact, 1 reader), %.1f MiB"
                " filled, %.1f MiB with the prefix fibs\n",
                static_cast<double>(s.empty_bytes) / kMiB,
                static_cast<double>(s.exact_bytes) / kMiB,
                static_cast<double>(s.heap_bytes) / kMiB);
        if (entries == 1000000u) {
            time_changes(family, s);
        }
    }
}

}  // namespace

int main() {
    std::vector<std::string> args = {"exfiltap-block-bench", "--no-huge", "--no-pci", "--no-shconf",
            "--no-telemetry", "-m", "1024", "-l", "0", "--log-level", "lib.eal:error",
            "--file-prefix", "exfiltap_bb_" + std::to_string(getpid())};
    std::vector<char*> argv;
    for (std::string& a : args) {
        argv.push_back(a.data());
    }
    if (rte_eal_init(static_cast<int>(argv.size()), argv.data()) < 0) {
        std::fprintf(stderr, "EAL init failed\n");
        return 1;
    }
    std::mt19937_64 rng(20240611);
    run_family(4, rng);
    run_family(6, rng);
    exfiltap::dataplane::cleanup_eal();
    return 0;
}
