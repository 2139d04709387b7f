// exfiltap-bench's flow table scale test: the worker's FlowTable alone at a given size,
// on the main thread after EAL init. Memory per flow is what the DPDK heap grew by when the
// table was created (flow array, hash buckets, key store, free-slot rings) over its flows.
#pragma once

#include <cstdint>

#include "common/result.h"

namespace exfiltap::bench {

struct FlowScale {
    uint32_t flows = 0;
    uint64_t table_bytes = 0;       // DPDK heap taken by the table
    double bytes_per_flow = 0;      // table_bytes / flows
    uint64_t flow_entry_bytes = 0;  // sizeof(Flow), TCP state of both directions included
    double hash_bytes_per_flow = 0;
    double inserts_per_second = 0;
    double lookups_per_second = 0;       // one key at a time
    double bulk_lookups_per_second = 0;  // FlowTable::lookup_bulk, bursts of 32
    /// Behaviour when full: keys inserted past capacity, flows evicted for them, and
    /// insertions refused (none expected: a full table evicts, never drops).
    uint32_t over_capacity = 0;
    uint64_t evicted = 0;
    uint64_t refused = 0;
};

/// Creates a table of `flows`, fills it, looks up `lookups` of its keys (spread over all of
/// them) one at a time and in bursts, then inserts flows/16 more.
Result<FlowScale> measure_flow_scale(uint32_t flows, uint32_t lookups);

}  // namespace exfiltap::bench
