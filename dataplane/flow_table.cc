#include "dataplane/flow_table.h"

#include <sys/random.h>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <memory>
#include <type_traits>

#include <rte_common.h>
#include <rte_cycles.h>
#include <rte_malloc.h>
#include <rte_prefetch.h>

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

// How many victims ahead prefetch_victims() fetches a home bucket (the flow's own lines one
// further). exfiltap-bench new-1m, median pass in cycles/packet, A/B runs under the same
// load: 1: 613-646, 2: 594-628, 3: 607 (one quiet run), 4: 595-629. 2 costs one link read
// more than 1 (a flow already prefetched).
constexpr uint32_t kEvictAhead = 2;

uint64_t split_mix(uint64_t& state) noexcept {
    uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

// The tag kept in the index: the hash's low 16 bits (the bucket comes from its high bits);
// 0 marks a free entry, so a hash whose low bits are 0 takes tag 1.
uint16_t tag_of(uint32_t sig) noexcept {
    const auto tag = static_cast<uint16_t>(sig);
    return tag != 0 ? tag : 1;
}

// Entries of `bucket` whose tag is `tag`, as a bit mask. With SSE2 the ten tags are compared
// in two loads (the second reads on into `passed` and the first flows, all inside the
// 64-byte bucket, and masks them off); the loop of ten compares took 40 instructions of a
// lookup's 166 (callgrind, exfiltap-bench ack-10k).
uint32_t tag_matches(const FlowBucket& bucket, uint16_t tag) noexcept {
#if defined(__SSE2__)
    static_assert(offsetof(FlowBucket, tag) == 0 && sizeof(FlowBucket) >= 32);
    const __m128i want = _mm_set1_epi16(static_cast<short>(tag));
    const auto* tags = reinterpret_cast<const __m128i*>(&bucket);
    const __m128i low = _mm_cmpeq_epi16(_mm_load_si128(tags), want);
    const __m128i high = _mm_cmpeq_epi16(_mm_load_si128(tags + 1), want);
    // Each 16-bit result (0 or -1) narrowed to a byte: one mask bit per entry.
    const auto mask = static_cast<uint32_t>(_mm_movemask_epi8(_mm_packs_epi16(low, high)));
    return mask & ((1U << kBucketEntries) - 1);
#else
    uint32_t mask = 0;
    for (uint32_t e = 0; e < kBucketEntries; ++e) {
        mask |= static_cast<uint32_t>(bucket.tag[e] == tag) << e;
    }
    return mask;
#endif
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

}  // namespace

FlowTable::FlowTable(const FlowTableConfig& config, FlowEndHandler& handler)
    : config_(config), handler_(handler) {
    head_.fill(kNoFlow);
    tail_.fill(kNoFlow);
    uint64_t state = config.hash_seed;
    while (state == 0) {
        if (getrandom(&state, sizeof(state), 0) != static_cast<ssize_t>(sizeof(state))) {
            state = rte_rdtsc() ^ reinterpret_cast<uintptr_t>(this);
        }
    }
    for (uint64_t& k : hash_key_) {
        k = split_mix(state);
    }
}

uint32_t FlowTable::hash(const FlowKey& key) const noexcept {
    // NH (as in UMAC) over the key's eleven 32-bit words and a zero twelfth: for two
    // different keys the 64-bit sums collide with probability at most 2^-32 over the key.
    static_assert(sizeof(FlowKey) == 11 * sizeof(uint32_t));
    std::array<uint32_t, 12> w{};
    std::memcpy(w.data(), &key, sizeof(key));
    uint64_t sum = 0;
    for (size_t i = 0; i < hash_key_.size(); ++i) {
        const uint32_t a = w[2 * i] + static_cast<uint32_t>(hash_key_[i]);
        const uint32_t b = w[2 * i + 1] + static_cast<uint32_t>(hash_key_[i] >> 32);
        sum += uint64_t{a} * b;
    }
    // Finaliser: every output bit depends on every bit of the sum (bucket from the high
    // bits, tag from the low ones).
    sum ^= sum >> 33;
    sum *= 0xff51afd7ed558ccdULL;
    sum ^= sum >> 33;
    sum *= 0xc4ceb9fe1a85ec53ULL;
    sum ^= sum >> 33;
    return static_cast<uint32_t>(sum);
}

std::unique_ptr<FlowTable> FlowTable::create(const char* name, const FlowTableConfig& config,
        FlowEndHandler& handler, const char** error) {
    // Flow indices are int32 positions in lookup_bulk().
    if (config.capacity == 0 || config.capacity > (1U << 31)) {
        *error = "flow table size must be between 1 and 2^31 flows";
        return nullptr;
    }
    std::unique_ptr<FlowTable> table(new FlowTable(config, handler));
    // One bucket per kFlowsPerBucket flows, rounded up: the load never passes 60%, where a
    // bucket of 10 is full rarely enough that nearly every key sits in its home bucket.
    table->buckets_ = (config.capacity + kFlowsPerBucket - 1) / kFlowsPerBucket;
    // rte_zmalloc hands out zeroed memory: every tag free, every count 0, and each never used
    // flow equal to a default Flow's key (all zero), so it matches no key.
    void* index = rte_zmalloc_socket(name, uint64_t{sizeof(FlowBucket)} * table->buckets_,
            RTE_CACHE_LINE_SIZE, config.socket_id);
    void* flows = rte_zmalloc_socket(
            name, uint64_t{sizeof(Flow)} * config.capacity, RTE_CACHE_LINE_SIZE, config.socket_id);
    table->index_ = static_cast<FlowBucket*>(index);
    table->flows_ = static_cast<Flow*>(flows);
    if (index == nullptr || flows == nullptr) {
        *error = "no memory for the flow table (raise dpdk.memory_mb or lower flows.table_size)";
        return nullptr;
    }
    return table;
}

FlowTable::~FlowTable() {
    rte_free(index_);
    rte_free(flows_);
}

uint32_t FlowTable::take_free() noexcept {
    if (free_head_ != kNoFlow) {
        const uint32_t index = free_head_;
        free_head_ = flows_[index].lru_next;
        return index;
    }
    return unused_ < config_.capacity ? unused_++ : kNoFlow;
}

int32_t FlowTable::find(const FlowKey& key, uint32_t sig) const noexcept {
    const uint16_t tag = tag_of(sig);
    uint32_t b = home_bucket(sig);
    // No key sits more than max_probe_ buckets past its home: the bound holds even if churn
    // ever left every bucket on a wrap-around path counted as passed.
    for (uint32_t probe = 0; probe <= max_probe_; ++probe) {
        const FlowBucket& bucket = index_[b];
        for (uint32_t m = tag_matches(bucket, tag); m != 0; m &= m - 1) {
            const uint32_t index = bucket.flow[static_cast<uint32_t>(__builtin_ctz(m))];
            if (same_key(flows_[index].key, key)) {
                return static_cast<int32_t>(index);
            }
        }
        if (bucket.passed == 0) {
            break;
        }
        b = next_bucket(b);
    }
    return -1;
}

void FlowTable::index_insert(uint32_t sig, uint32_t index) noexcept {
    // The caller keeps active_ < capacity <= 60% of the entries, so a free one exists.
    uint32_t b = home_bucket(sig);
    uint32_t probe = 0;
    for (;;) {
        FlowBucket& bucket = index_[b];
        const uint32_t free = tag_matches(bucket, 0);
        if (free != 0) {
            const auto e = static_cast<uint32_t>(__builtin_ctz(free));
            bucket.tag[e] = tag_of(sig);
            bucket.flow[e] = index;
            max_probe_ = std::max(max_probe_, probe);
            return;
        }
        ++bucket.passed;
        ++probe;
        b = next_bucket(b);
    }
}

void FlowTable::index_erase(uint32_t sig, uint32_t index) noexcept {
    const uint16_t tag = tag_of(sig);
    const uint32_t home = home_bucket(sig);
    uint32_t b = home;
    for (uint32_t probe = 0; probe <= max_probe_; ++probe) {
        FlowBucket& bucket = index_[b];
        for (uint32_t m = tag_matches(bucket, tag); m != 0; m &= m - 1) {
            const auto e = static_cast<uint32_t>(__builtin_ctz(m));
            if (bucket.flow[e] == index) {
                bucket.tag[e] = 0;
                // The key passed every bucket from its home to this one: take its count back.
                for (uint32_t p = home; p != b; p = next_bucket(p)) {
                    --index_[p].passed;
                }
                return;
            }
        }
        b = next_bucket(b);
    }
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
    index_erase(f.hash, index);
    // A free flow's key is all zero (it matches no key); take_free()'s caller resets the
    // rest, so the slot an eviction frees and refills is cleared once, not twice.
    f.key = FlowKey();
    f.lru_next = free_head_;
    free_head_ = index;
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
    const auto cls = static_cast<size_t>(flows_[victim].timeout_class);
    remove(victim, EvictReason::TableFull);
    ++evicted_full_;
    prefetch_victims(cls);
    return true;
}

void FlowTable::prefetch_flow(uint32_t index) const noexcept {
    const auto* first = reinterpret_cast<const char*>(&flows_[index]);
    const char* last = first + sizeof(Flow) - 1;
    for (const char* line = RTE_PTR_ALIGN_FLOOR(first, RTE_CACHE_LINE_SIZE); line <= last;
            line += RTE_CACHE_LINE_SIZE) {
        rte_prefetch0(line);
    }
}

void FlowTable::prefetch_key(uint32_t index) const noexcept {
    const auto* first = reinterpret_cast<const char*>(&flows_[index].key);
    rte_prefetch0(first);
    rte_prefetch0(first + sizeof(FlowKey) - 1);  // the key may cross a line
}

void FlowTable::prefetch_victims(size_t cls) const noexcept {
    // The victim just ended was the head. With kEvictAhead 2: the new head's successor
    // (ended after next) has its home bucket prefetched, and the flow after that its lines.
    // Each call reads the links of flows prefetched by earlier calls, so in steady state only
    // the prefetched lines are new: a flow's own lines, its successor (list_remove() writes
    // it) and its home bucket (index_erase()) are all in cache at its turn.
    uint32_t ahead = head_[cls];
    for (uint32_t k = 1; k < kEvictAhead && ahead != kNoFlow; ++k) {
        ahead = flows_[ahead].lru_next;
    }
    if (ahead == kNoFlow) {
        return;
    }
    const Flow& f = flows_[ahead];
    rte_prefetch0(&index_[home_bucket(f.hash)]);
    if (f.lru_next != kNoFlow) {
        prefetch_flow(f.lru_next);
    }
}

void FlowTable::lookup_bulk(
        const FlowKey* const* keys, uint32_t count, uint32_t* sigs, int32_t* positions) noexcept {
    // Three passes, so each miss hides behind the others' work: hashes and home buckets;
    // each key's first candidate in its home bucket, whose key is prefetched; the keys
    // compared (a key not at its first candidate is looked up again in full).
    for (uint32_t i = 0; i < count; ++i) {
        sigs[i] = hash(*keys[i]);
        rte_prefetch0(&index_[home_bucket(sigs[i])]);
    }
    for (uint32_t i = 0; i < count; ++i) {
        const FlowBucket& bucket = index_[home_bucket(sigs[i])];
        const uint32_t m = tag_matches(bucket, tag_of(sigs[i]));
        if (m == 0) {
            positions[i] = -1;
            continue;
        }
        const uint32_t index = bucket.flow[static_cast<uint32_t>(__builtin_ctz(m))];
        positions[i] = static_cast<int32_t>(index);
        prefetch_key(index);
    }
    bulk_changes_ = changes_;
    for (uint32_t i = 0; i < count; ++i) {
        if (positions[i] < 0 || !same_key(flows_[positions[i]].key, *keys[i])) {
            positions[i] = find(*keys[i], sigs[i]);
        }
    }
}

uint32_t FlowTable::lookup_or_create(const FlowKey& key, uint64_t now_ns, bool& created) noexcept {
    return find_or_create(key, hash(key), -1, false, now_ns, created);
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
    // lookup_bulk() compared the key already; after a change the flow there is checked again
    // (a free flow's key is all zero: never a match).
    if (hint >= 0 && static_cast<uint32_t>(hint) < config_.capacity
            && (hint_exact || same_key(flows_[hint].key, key))) {
        return static_cast<uint32_t>(hint);
    }
    if (!hint_exact) {
        const int32_t pos = find(key, sig);
        if (pos >= 0) {
            return static_cast<uint32_t>(pos);
        }
    }
    if (active_ >= config_.capacity && !evict_oldest()) {
        return kNoFlow;
    }
    const uint32_t index = take_free();
    if (index == kNoFlow) {
        return kNoFlow;
    }
    index_insert(sig, index);
    // Built in place: `f = Flow()` built a temporary on the stack and copied it over
    // (exfiltap-bench new-1m, perf annotate). A Flow holds nothing to destroy.
    static_assert(std::is_trivially_destructible_v<Flow>);
    Flow& f = *std::construct_at(&flows_[index]);
    f.key = key;
    f.hash = sig;
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
            prefetch_victims(cls);
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
