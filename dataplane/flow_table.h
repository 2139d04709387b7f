// Per-worker flow table (DESIGN.md "Workers"): a preallocated array of exactly `capacity`
// flows and the table's own index over it, keyed by the canonical 5-tuple (plus VLAN ids
// unless configured out) and hashed in software with a per-table random key (hash()). The key lives
// only in the flow; the index holds, per entry, a 16-bit tag of the hash and the flow's 32-bit
// index.
//
// Index: 64-byte buckets of kBucketEntries entries each, bucket count chosen so the load
// stays at or below 60% (10.7 bytes a flow). A key's home bucket is the hash scaled to the
// bucket count (multiply and shift, no division); a full bucket overflows into the next one
// (linear probing by bucket), and every bucket counts the keys that passed it. A lookup stops
// at the first bucket whose count is zero; a delete takes its key's count back from each
// bucket it passed, so no tombstones build up under churn and every remaining key stays
// findable. Free flows are chained through their LRU link.
//
// Flows sit on one LRU list per timeout class, so idle expiry and eviction of the oldest
// idle flow are O(1). A full table evicts; traffic is never dropped. Ending a list's head
// prefetches along that list (prefetch_victims()): into a full table of a million flows
// every new flow ends a cold one, and the next victims' lines, LRU successors and home
// buckets are then in cache when their turn comes.
//
// Thread: the owning worker only. Created on the control thread before the workers start.
#pragma once

#include <array>
#include <cstdint>
#include <memory>

#include "dataplane/decode.h"
#include "dataplane/tcp_stream.h"

namespace exfiltap::dataplane {

inline constexpr uint32_t kNoFlow = UINT32_MAX;
inline constexpr uint32_t kNoPayload = UINT32_MAX;

/// Canonical flow key: the lower (address, port) endpoint first, so both directions match.
struct FlowKey {
    std::array<uint8_t, 16> addr_lo{};
    std::array<uint8_t, 16> addr_hi{};
    uint16_t port_lo = 0;
    uint16_t port_hi = 0;
    uint16_t vlan_outer = 0;
    uint16_t vlan_inner = 0;
    uint8_t proto = 0;
    uint8_t ip_version = 0;
    uint8_t pad[2] = {};
};
static_assert(sizeof(FlowKey) == 44);

/// Builds the canonical key of a decoded packet; `forward` tells whether the packet's source
/// is the key's lo endpoint.
FlowKey make_flow_key(const PacketInfo& info, bool vlan_in_key, bool& src_is_lo) noexcept;

enum class TimeoutClass : uint8_t {
    TcpOpen = 0,
    TcpClosed = 1,
    Udp = 2,
    Other = 3,
    /// TCP with no payload yet (handshakes, scans, SYN floods): short timeout, evicted
    /// before flows that carry data.
    TcpEmbryonic = 4,
};
inline constexpr size_t kTimeoutClassCount = 5;

enum class EvictReason : uint8_t {
    Timeout = 0,
    TableFull = 1,
    Shutdown = 2,
    /// A new connection (a SYN with another initial sequence number) took the 5-tuple.
    Reused = 3,
};

/// Per-direction state. Direction 0 is the client (the SYN sender, else the first sender).
struct FlowDirection {
    TcpDirection tcp;
    uint64_t packets = 0;
    uint64_t bytes = 0;                  // frame bytes
    uint64_t payload_bytes = 0;          // L4 payload bytes seen (before reordering)
    uint32_t payload_slot = kNoPayload;  // content state from the worker's payload pool
    uint32_t gaps = 0;
    bool outbound = false;       // internal source to external destination
    bool inspect = false;        // content inspection applies to this direction
    bool uninspectable = false;  // payload state could not be had: goes on uninspected
};

struct Flow {
    FlowKey key;
    /// The table's hash of `key` (in the padding after it): ending the flow needs no rehash.
    uint32_t hash = 0;
    uint64_t flow_id = 0;
    uint64_t first_ns = 0;
    uint64_t last_ns = 0;
    uint32_t lru_prev = kNoFlow;
    /// The next flow of its LRU list, or of the free chain while the flow is unused.
    uint32_t lru_next = kNoFlow;
    /// 0: the key's lo endpoint is the client; 1: hi is.
    uint8_t client_is_hi = 0;
    TimeoutClass timeout_class = TimeoutClass::Other;
    bool syn_seen = false;
    bool rst_seen = false;
    /// Findings or anomalies were reported: the control side gets a flow-end event.
    bool reported = false;
    /// The response policy's verdict on the flow (a FlowAction; 0: none).
    uint8_t verdict = 0;
    /// Application layer (dataplane/app_layer.h): an AppStatus, the identified
    /// detectors::AppProto, and the parser slot while the status is Active.
    uint8_t app_status = 0;
    uint8_t app_proto = 0;
    uint32_t app_slot = UINT32_MAX;
    /// Both ends are in the internal networks (set with the direction roles): the flow's end
    /// is reported even without payload, so scans count toward lateral fan-out.
    bool internal_pair = false;
    std::array<FlowDirection, 2> dir{};
};

/// One bucket of the flow table's index: a 16-bit tag of the hash per entry (0: free), the
/// count of keys stored past this bucket whose probe passed it, and the flows' indices.
inline constexpr uint32_t kBucketEntries = 10;
struct alignas(64) FlowBucket {
    std::array<uint16_t, kBucketEntries> tag;
    uint32_t passed;
    std::array<uint32_t, kBucketEntries> flow;
};
static_assert(sizeof(FlowBucket) == 64);

/// One index bucket per 6 flows: the load stays <= 60%. At 80% (one per 8) linear probing
/// clustered: after churn a miss walked 10.7 buckets on average (a simulation of 100,000
/// flows evicted oldest-first four times over); at 60%, 1.3.
inline constexpr uint32_t kFlowsPerBucket = 6;
static_assert(sizeof(Flow) + (sizeof(FlowBucket) + kFlowsPerBucket - 1) / kFlowsPerBucket <= 256,
        "DESIGN.md budget: 256 bytes a flow for the entry, its index share and TCP state");

struct FlowTableConfig {
    uint32_t capacity = 65536;
    std::array<uint64_t, kTimeoutClassCount> timeout_ns{};
    bool vlan_in_key = true;
    int socket_id = 0;
    /// Seed of the flow hash's key; 0: a random one at create(). Tests fix it.
    uint64_t hash_seed = 0;
};

/// Called for every flow leaving the table, before its slot is reused.
class FlowEndHandler {
public:
    virtual void on_flow_end(Flow& flow, EvictReason reason) noexcept = 0;

protected:
    ~FlowEndHandler() = default;
};

class FlowTable {
public:
    /// Creates the index and the flow array (control thread, after EAL init; both touched
    /// lazily). Returns null with `error` set on failure (capacity 0 or above 2^31, memory).
    static std::unique_ptr<FlowTable> create(const char* name, const FlowTableConfig& config,
            FlowEndHandler& handler, const char** error);
    ~FlowTable();
    FlowTable(const FlowTable&) = delete;
    FlowTable& operator=(const FlowTable&) = delete;
    FlowTable(FlowTable&&) = delete;
    FlowTable& operator=(FlowTable&&) = delete;

    /// Finds the flow of `key` or creates it (evicting the oldest idle flow when full).
    /// `created` tells which. Never refuses a key: kNoFlow only if nothing could be evicted,
    /// which a table of at least one flow never meets.
    uint32_t lookup_or_create(const FlowKey& key, uint64_t now_ns, bool& created) noexcept;

    /// The burst's flow stage: hash signatures and flow indices of `count` keys (at most
    /// kBurstKeys), looked up together: all keys hashed and their home buckets prefetched
    /// first, so one key's bucket miss hides behind the others'. positions[i] < 0: not in the
    /// table. A position is a hint for lookup_or_create(): flows may end between.
    static constexpr uint32_t kBurstKeys = 32;
    void lookup_bulk(const FlowKey* const* keys, uint32_t count, uint32_t* sigs,
            int32_t* positions) noexcept;

    /// lookup_or_create() with the key's signature and its lookup_bulk() position, taken
    /// when the flow there still has this key (no second hash lookup).
    uint32_t lookup_or_create(const FlowKey& key, uint32_t sig, int32_t hint, uint64_t now_ns,
            bool& created) noexcept;

    Flow& flow(uint32_t index) noexcept { return flows_[index]; }
    const Flow& flow(uint32_t index) const noexcept { return flows_[index]; }

    /// Prefetches every line of the flow at `index` (a hint: any index below capacity()).
    void prefetch_flow(uint32_t index) const noexcept;

    /// Marks activity: moves the flow to the tail of its timeout class's list.
    void touch(uint32_t index, uint64_t now_ns, TimeoutClass cls) noexcept;

    /// Ends flows idle past their timeout at `now_ns`, at most `budget` of them.
    uint32_t expire(uint64_t now_ns, uint32_t budget) noexcept;

    /// Ends one flow now (its handler runs first); the index is free afterwards.
    void end(uint32_t index, EvictReason reason) noexcept { remove(index, reason); }

    /// Ends every flow (shutdown / end of capture).
    void clear(EvictReason reason) noexcept;

    /// The table's hash of `key`: keyed (NH over the key's 32-bit words with a per-table
    /// random key, then a 64-bit finaliser), so whoever picks 5-tuples without knowing the
    /// key cannot aim them at one bucket. CRC32, keyed or not, is affine: keys built to
    /// collide under it collide under every seed.
    uint32_t hash(const FlowKey& key) const noexcept;

    uint32_t active() const noexcept { return active_; }
    uint32_t capacity() const noexcept { return config_.capacity; }
    uint64_t evicted_full() const noexcept { return evicted_full_; }
    /// Bytes of the flow array and the index together (what create() allocated).
    uint64_t memory_bytes() const noexcept {
        return uint64_t{sizeof(Flow)} * config_.capacity + uint64_t{sizeof(FlowBucket)} * buckets_;
    }
    uint32_t buckets() const noexcept { return buckets_; }
    /// Longest probe so far, in buckets past the home bucket (0: every key in its home).
    uint32_t max_probe() const noexcept { return max_probe_; }

private:
    FlowTable(const FlowTableConfig& config, FlowEndHandler& handler);
    void list_remove(uint32_t index) noexcept;
    void list_append(uint32_t index) noexcept;
    void remove(uint32_t index, EvictReason reason) noexcept;
    bool evict_oldest() noexcept;
    /// After the head of list `cls` ended: prefetches the home bucket of the flow
    /// kEvictAhead places from the head and the lines of the one after it. Reads only
    /// links of flows an earlier call prefetched; a hint, whatever reorders the list.
    void prefetch_victims(size_t cls) const noexcept;
    void prefetch_key(uint32_t index) const noexcept;
    uint32_t home_bucket(uint32_t sig) const noexcept {
        return static_cast<uint32_t>((uint64_t{sig} * buckets_) >> 32);
    }
    uint32_t next_bucket(uint32_t b) const noexcept { return b + 1 == buckets_ ? 0 : b + 1; }
    int32_t find(const FlowKey& key, uint32_t sig) const noexcept;
    void index_insert(uint32_t sig, uint32_t index) noexcept;
    void index_erase(uint32_t sig, uint32_t index) noexcept;
    uint32_t take_free() noexcept;
    uint32_t find_or_create(const FlowKey& key, uint32_t sig, int32_t hint, bool hint_exact,
            uint64_t now_ns, bool& created) noexcept;

    FlowTableConfig config_;
    FlowEndHandler& handler_;
    std::array<uint64_t, 6> hash_key_{};
    Flow* flows_ = nullptr;
    FlowBucket* index_ = nullptr;
    uint32_t buckets_ = 0;
    uint32_t max_probe_ = 0;
    // Free flows: a chain through lru_next, then the never used ones from `unused_` on
    // (so the array is touched only as flows are first taken).
    uint32_t free_head_ = kNoFlow;
    uint32_t unused_ = 0;
    std::array<uint32_t, kTimeoutClassCount> head_{};
    std::array<uint32_t, kTimeoutClassCount> tail_{};
    uint32_t active_ = 0;
    uint64_t evicted_full_ = 0;
    // Flows added or removed so far, and the count at the last lookup_bulk().
    uint64_t changes_ = 0;
    uint64_t bulk_changes_ = UINT64_MAX;
};

}  // namespace exfiltap::dataplane
