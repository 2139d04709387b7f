// exfiltap-bench's flow table scale test: the worker's FlowTable alone at a given size,
// on the main thread after EAL init. Memory per flow is the flow array and the table's index
// (FlowTable::memory_bytes()) over its capacity; what the DPDK heap grew by is kept beside it
// as a check (the same plus the heap's element headers).
#pragma once

#include <cstdint>

#include "common/result.h"

namespace exfiltap::bench {

struct FlowScale {
    uint32_t flows = 0;
    uint64_t table_bytes = 0;       // flow array + index (FlowTable::memory_bytes())
    uint64_t heap_bytes = 0;        // what the DPDK heap grew by at create()
    double bytes_per_flow = 0;      // table_bytes / flows
    uint64_t flow_entry_bytes = 0;  // sizeof(Flow), TCP state of both directions included
    double index_bytes_per_flow = 0;
    uint32_t max_probe = 0;  // longest probe after the run, in buckets past the home bucket
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
