#include "dataplane/flow_table.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <new>

#include <rte_common.h>
#include <rte_hash.h>
#include <rte_hash_crc.h>
#include <rte_malloc.h>

namespace exfiltap::dataplane {

FlowKey make_flow_key(const PacketInfo& info, bool vlan_in_key, bool& src_is_lo) noexcept {
    FlowKey key{};
    const int cmp = std::memcmp(info.src.data(), info.dst.data(), info.src.size());
    src_is_lo = cmp < 0 || (cmp == 0 && info.src_port <= info.dst_port);
    if (src_is_lo) {
        key.addr_lo = info.src;
        key.addr_hi = info.dst;
        key.port_lo = info.src_port;
        key.port_hi = info.dst_port;
    } else {
        key.addr_lo = info.dst;
        key.addr_hi = info.src;
        key.port_lo = info.dst_port;
        key.port_hi = info.src_port;
    }
    if (vlan_in_key) {
        key.vlan_outer = info.vlan_count > 0 ? info.vlan[0] : 0;
        key.vlan_inner = info.vlan_count > 1 ? info.vlan[1] : 0;
    }
    key.proto = info.l4_proto;
    key.ip_version = info.ip_version;
    return key;
}

namespace {

constexpr uint32_t kMinHashEntries = 16;

uint32_t flow_key_hash(const void* key, uint32_t len, uint32_t seed) {
    return rte_hash_crc(key, len, seed);
}

// Key equality in word loads: std::memcmp of the 44 bytes stayed a libc call (callgrind,
// exfiltap-bench ack-10k).
bool same_key(const FlowKey& a, const FlowKey& b) noexcept {
    static_assert(sizeof(FlowKey) == 5 * sizeof(uint64_t) + sizeof(uint32_t));
    const auto* pa = reinterpret_cast<const unsigned char*>(&a);
    const auto* pb = reinterpret_cast<const unsigned char*>(&b);
    uint64_t diff = 0;
    for (size_t i = 0; i < 5; ++i) {
        uint64_t wa = 0;
        uint64_t wb = 0;
        std::memcpy(&wa, pa + i * sizeof(uint64_t), sizeof(wa));
        std::memcpy(&wb, pb + i * sizeof(uint64_t), sizeof(wb));
        diff |= wa ^ wb;
    }
    uint32_t ta = 0;
    uint32_t tb = 0;
    std::memcpy(&ta, pa + 5 * sizeof(uint64_t), sizeof(ta));
    std::memcpy(&tb, pb + 5 * sizeof(uint64_t), sizeof(tb));
    return (diff | (ta ^ tb)) == 0;
}

// Entries to create the hash with for `capacity` flows. rte_hash has a power of two of
// bucket slots at or above its entries; filled past ~80% of them, nearly every add runs a
// cuckoo displacement search (exfiltap-bench new-10k: 4,700 instructions an add at 100%).
// So a capacity in the top fifth below a power of two is raised past it, which doubles the
// buckets; the key store and the flow array grow to that power of two plus one (by at most
// a quarter; by 4.9% for a million flows, by one entry for 65,536).
uint32_t hash_entries(uint32_t capacity) {
    const uint32_t wanted = std::max<uint32_t>(capacity, kMinHashEntries);
    const uint32_t buckets = rte_align32pow2(wanted);
    if (buckets < (1U << 31) && uint64_t{wanted} * 5 > uint64_t{buckets} * 4) {
        return buckets + 1;
    }
    return wanted;
}

}  // namespace

FlowTable::FlowTable(const FlowTableConfig& config, FlowEndHandler& handler)
    : config_(config), handler_(handler) {
    head_.fill(kNoFlow);
    tail_.fill(kNoFlow);
}

std::unique_ptr<FlowTable> FlowTable::create(const char* name, const FlowTableConfig& config,
        FlowEndHandler& handler, const char** error) {
    std::unique_ptr<FlowTable> table(new FlowTable(config, handler));
    rte_hash_parameters params{};
    params.name = name;
    // rte_hash wants at least a bucket's worth of entries; the array matches the hash, the
    // active limit stays `capacity`.
    table->slots_ = hash_entries(config.capacity);
    params.entries = table->slots_;
    params.key_len = sizeof(FlowKey);
    params.hash_func = flow_key_hash;
    params.hash_func_init_val = 0;
    params.socket_id = config.socket_id;
    // The extendable bucket table guarantees that `capacity` keys fit whatever their hashes.
    params.extra_flag = RTE_HASH_EXTRA_FLAGS_EXT_TABLE;
    table->hash_ = rte_hash_create(&params);
    if (table->hash_ == nullptr) {
        *error = "rte_hash_create failed for the flow table (memory: raise dpdk.memory_mb)";
        return nullptr;
    }
    void* mem = rte_zmalloc_socket(
            name, sizeof(Flow) * table->slots_, RTE_CACHE_LINE_SIZE, config.socket_id);
    if (mem == nullptr) {
        *error = "no memory for the flow array (raise dpdk.memory_mb or lower flows.table_size)";
        return nullptr;
    }
    table->flows_ = static_cast<Flow*>(mem);
    for (uint32_t i = 0; i < table->slots_; ++i) {
        new (&table->flows_[i]) Flow();
    }
    return table;
}

FlowTable::~FlowTable() {
    rte_hash_free(hash_);
    rte_free(flows_);
}

void FlowTable::list_remove(uint32_t index) noexcept {
    Flow& f = flows_[index];
    const auto cls = static_cast<size_t>(f.timeout_class);
    if (f.lru_prev != kNoFlow) {
        flows_[f.lru_prev].lru_next = f.lru_next;
    } else {
        head_[cls] = f.lru_next;
    }
    if (f.lru_next != kNoFlow) {
        flows_[f.lru_next].lru_prev = f.lru_prev;
    } else {
        tail_[cls] = f.lru_prev;
    }
    f.lru_prev = kNoFlow;
    f.lru_next = kNoFlow;
}

void FlowTable::list_append(uint32_t index) noexcept {
    Flow& f = flows_[index];
    const auto cls = static_cast<size_t>(f.timeout_class);
    f.lru_next = kNoFlow;
    f.lru_prev = tail_[cls];
    if (tail_[cls] != kNoFlow) {
        flows_[tail_[cls]].lru_next = index;
    } else {
        head_[cls] = index;
    }
    tail_[cls] = index;
}

void FlowTable::remove(uint32_t index, EvictReason reason) noexcept {
    Flow& f = flows_[index];
    handler_.on_flow_end(f, reason);
    list_remove(index);
    rte_hash_del_key(hash_, &f.key);
    f = Flow();
    --active_;
    ++changes_;
}

bool FlowTable::evict_oldest() noexcept {
    // Closed TCP flows go first, then handshakes that never carried data (a SYN flood must
    // not push out established flows), then the least recently active of the rest.
    uint32_t victim = head_[static_cast<size_t>(TimeoutClass::TcpClosed)];
    if (victim == kNoFlow) {
        victim = head_[static_cast<size_t>(TimeoutClass::TcpEmbryonic)];
    }
    if (victim == kNoFlow) {
        uint64_t oldest = UINT64_MAX;
        for (const uint32_t head : head_) {
            if (head != kNoFlow && flows_[head].last_ns < oldest) {
                oldest = flows_[head].last_ns;
                victim = head;
            }
        }
    }
    if (victim == kNoFlow) {
        return false;
    }
    remove(victim, EvictReason::TableFull);
    ++evicted_full_;
    return true;
}

void FlowTable::lookup_bulk(
        const FlowKey* const* keys, uint32_t count, uint32_t* sigs, int32_t* positions) noexcept {
    for (uint32_t i = 0; i < count; ++i) {
        sigs[i] = rte_hash_hash(hash_, keys[i]);
    }
    bulk_changes_ = changes_;
    // No prefetch of the flows found: three lines for each of 32 flows measured slower than
    // none (exfiltap-bench ack-1m: 475 against 420 cycles a packet).
    // rte_hash takes `const void**` and only reads the pointers.
    auto** key_list = const_cast<const void**>(reinterpret_cast<const void* const*>(keys));
    rte_hash_lookup_with_hash_bulk(hash_, key_list, sigs, count, positions);
}

uint32_t FlowTable::lookup_or_create(const FlowKey& key, uint64_t now_ns, bool& created) noexcept {
    return find_or_create(key, rte_hash_hash(hash_, &key), -1, false, now_ns, created);
}

uint32_t FlowTable::lookup_or_create(
        const FlowKey& key, uint32_t sig, int32_t hint, uint64_t now_ns, bool& created) noexcept {
    // With no flow added or removed since lookup_bulk(), its answer still holds, misses
    // included; otherwise a hit is checked against the key and a miss looked up again.
    return find_or_create(key, sig, hint, changes_ == bulk_changes_, now_ns, created);
}

uint32_t FlowTable::find_or_create(const FlowKey& key, uint32_t sig, int32_t hint, bool hint_exact,
        uint64_t now_ns, bool& created) noexcept {
    created = false;
    if (hint >= 0 && static_cast<uint32_t>(hint) < slots_ && same_key(flows_[hint].key, key)) {
        return static_cast<uint32_t>(hint);  // a free slot's key is all zero: never a match
    }
    int32_t pos = hint_exact ? -ENOENT : rte_hash_lookup_with_hash(hash_, &key, sig);
    if (pos >= 0) {
        return static_cast<uint32_t>(pos);
    }
    if (active_ >= config_.capacity && !evict_oldest()) {
        return kNoFlow;
    }
    pos = rte_hash_add_key_with_hash(hash_, &key, sig);
    if (pos < 0 || static_cast<uint32_t>(pos) >= slots_) {
        if (pos >= 0) {
            rte_hash_del_key_with_hash(hash_, &key, sig);
        }
        return kNoFlow;
    }
    const auto index = static_cast<uint32_t>(pos);
    Flow& f = flows_[index];
    f = Flow();
    f.key = key;
    f.first_ns = now_ns;
    f.last_ns = now_ns;
    f.timeout_class = TimeoutClass::Other;
    list_append(index);
    ++active_;
    ++changes_;
    created = true;
    return index;
}

void FlowTable::touch(uint32_t index, uint64_t now_ns, TimeoutClass cls) noexcept {
    Flow& f = flows_[index];
    if (now_ns > f.last_ns) {
        f.last_ns = now_ns;
    }
    list_remove(index);
    f.timeout_class = cls;
    list_append(index);
}

uint32_t FlowTable::expire(uint64_t now_ns, uint32_t budget) noexcept {
    uint32_t ended = 0;
    for (size_t cls = 0; cls < kTimeoutClassCount; ++cls) {
        const uint64_t timeout = config_.timeout_ns[cls];
        while (ended < budget && head_[cls] != kNoFlow) {
            const uint32_t index = head_[cls];
            if (flows_[index].last_ns + timeout > now_ns) {
                break;
            }
            remove(index, EvictReason::Timeout);
            ++ended;
        }
    }
    return ended;
}

void FlowTable::clear(EvictReason reason) noexcept {
    for (size_t cls = 0; cls < kTimeoutClassCount; ++cls) {
        while (head_[cls] != kNoFlow) {
            remove(head_[cls], reason);
        }
    }
}

}  // namespace exfiltap::dataplane
