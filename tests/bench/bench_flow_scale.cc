#include "tests/bench/bench_flow_scale.h"

#include <algorithm>
#include <array>
#include <memory>
#include <string>
#include <vector>

#include <rte_cycles.h>
#include <rte_lcore.h>
#include <rte_malloc.h>

#include "dataplane/flow_table.h"

namespace exfiltap::bench {

namespace {

class CountingHandler final : public dataplane::FlowEndHandler {
public:
    void on_flow_end(dataplane::Flow&, dataplane::EvictReason) noexcept override { ++ended; }
    uint64_t ended = 0;
};

uint64_t heap_in_use() {
    rte_malloc_socket_stats stats{};
    rte_malloc_get_socket_stats(static_cast<int>(rte_socket_id()), &stats);
    return stats.heap_allocsz_bytes;
}

// Distinct IPv4 TCP keys: client 10.x.y.z:port to one of 250 servers, as traffic has them.
dataplane::FlowKey key_of(uint32_t i) {
    dataplane::FlowKey k;
    k.addr_lo = {10, static_cast<uint8_t>(i >> 24), static_cast<uint8_t>(i >> 16),
            static_cast<uint8_t>(i >> 8)};
    k.addr_hi = {203, 0, 113, static_cast<uint8_t>(1 + i % 250)};
    k.port_lo = static_cast<uint16_t>(1024 + (i & 0xffU));
    k.port_hi = 443;
    k.proto = 6;
    k.ip_version = 4;
    return k;
}

double per_second(uint64_t ops, uint64_t cycles) {
    return cycles > 0 ? static_cast<double>(ops) * static_cast<double>(rte_get_tsc_hz())
                    / static_cast<double>(cycles)
                      : 0;
}

}  // namespace

Result<FlowScale> measure_flow_scale(uint32_t flows, uint32_t lookups) {
    FlowScale s;
    s.flows = flows;
    s.flow_entry_bytes = sizeof(dataplane::Flow);
    CountingHandler handler;
    dataplane::FlowTableConfig config;
    config.capacity = flows;
    config.timeout_ns.fill(UINT64_MAX / 4);
    const uint64_t heap_before = heap_in_use();
    const char* error = nullptr;
    auto table = dataplane::FlowTable::create(
            ("bench_scale_" + std::to_string(flows)).c_str(), config, handler, &error);
    if (table == nullptr) {
        return make_error(std::string("flow table of ") + std::to_string(flows)
                + " flows: " + (error != nullptr ? error : "failed") + " (raise --memory-mb)");
    }
    s.heap_bytes = heap_in_use() - heap_before;
    s.table_bytes = table->memory_bytes();
    s.bytes_per_flow = static_cast<double>(s.table_bytes) / flows;
    s.index_bytes_per_flow = s.bytes_per_flow - static_cast<double>(s.flow_entry_bytes);

    // Inserts: every key new.
    bool created = false;
    uint64_t start = rte_rdtsc();
    for (uint32_t i = 0; i < flows; ++i) {
        if (table->lookup_or_create(key_of(i), i, created) == dataplane::kNoFlow) {
            ++s.refused;
        }
    }
    s.inserts_per_second = per_second(flows, rte_rdtsc() - start);

    // Lookups of present keys, one at a time, then in bursts through lookup_bulk(); a
    // stride walks the whole table when only a sample is looked up.
    lookups = std::max<uint32_t>(std::min(lookups, flows), dataplane::FlowTable::kBurstKeys);
    const uint32_t stride = flows / lookups;
    uint64_t found = 0;
    start = rte_rdtsc();
    for (uint32_t i = 0; i < lookups; ++i) {
        const uint32_t k = i * stride;
        found += table->lookup_or_create(key_of(k), k, created) != dataplane::kNoFlow ? 1 : 0;
    }
    s.lookups_per_second = per_second(lookups, rte_rdtsc() - start);
    constexpr uint32_t kBurst = dataplane::FlowTable::kBurstKeys;
    std::array<dataplane::FlowKey, kBurst> keys{};
    std::array<const dataplane::FlowKey*, kBurst> key_ptrs{};
    std::array<uint32_t, kBurst> sigs{};
    std::array<int32_t, kBurst> positions{};
    start = rte_rdtsc();
    for (uint32_t i = 0; i + kBurst <= lookups; i += kBurst) {
        for (uint32_t k = 0; k < kBurst; ++k) {
            keys[k] = key_of((i + k) * stride);
            key_ptrs[k] = &keys[k];
        }
        table->lookup_bulk(key_ptrs.data(), kBurst, sigs.data(), positions.data());
        for (uint32_t k = 0; k < kBurst; ++k) {
            found += positions[k] >= 0 ? 1 : 0;
        }
    }
    s.bulk_lookups_per_second = per_second(lookups - lookups % kBurst, rte_rdtsc() - start);

    // Full: more flows than it holds; each new one must evict, none be refused.
    s.over_capacity = flows / 16;
    const uint64_t evicted_before = table->evicted_full();
    for (uint32_t i = 0; i < s.over_capacity; ++i) {
        if (table->lookup_or_create(key_of(flows + i), uint64_t{flows} + i, created)
                == dataplane::kNoFlow) {
            ++s.refused;
        }
    }
    s.evicted = table->evicted_full() - evicted_before;
    s.max_probe = table->max_probe();
    (void)found;
    return s;
}

}  // namespace exfiltap::bench
