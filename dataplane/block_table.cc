#include "dataplane/block_table.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <new>
#include <set>

#include <rte_errno.h>
#include <rte_fib.h>
#include <rte_fib6.h>
#include <rte_hash.h>
#include <rte_hash_crc.h>
#include <rte_malloc.h>
#include <rte_random.h>
#include <rte_rcu_qsbr.h>

#include "dataplane/wire.h"

namespace exfiltap::dataplane {

struct BlockTable::Generation {
    rte_fib* fib4 = nullptr;
    rte_fib6* fib6 = nullptr;
    /// By slot: 1 when the slot is an allow prefix.
    std::vector<uint8_t> allow;
};

namespace {

using Addr = std::array<uint8_t, 16>;

constexpr uint32_t kMinExactCapacity = 8;
// 2-byte next hops hold 15 bits (the fib keeps one), and next hop 0 means "no prefix".
constexpr uint32_t kMaxPrefixCapacity = 32766;
constexpr uint64_t kMaxTrie2ByteGroups = 32767;
constexpr size_t kMaxNameLen = 12;
constexpr std::array<uint8_t, 12> kMappedV4 = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

bool is_mapped_v4(const uint8_t* addr) noexcept {
    return std::memcmp(addr, kMappedV4.data(), kMappedV4.size()) == 0;
}

// The exact-hash key: IPv6 as is, IPv4 as its IPv4-mapped IPv6 form, so one 16-byte key type
// serves both (the hash compares 16-byte keys with one vector compare) and a v6 packet with a
// mapped address finds the v4 entry.
Addr exact_key(uint8_t ip_version, const uint8_t* addr) noexcept {
    Addr key{};
    if (ip_version == 4) {
        std::memcpy(key.data(), kMappedV4.data(), kMappedV4.size());
        std::memcpy(key.data() + 12, addr, 4);
    } else {
        std::memcpy(key.data(), addr, key.size());
    }
    return key;
}

uint32_t exact_hash(const void* key, uint32_t len, uint32_t seed) {
    return rte_hash_crc(key, len, seed);
}

// Next hop of one address in the published fibs (0: no prefix).
uint64_t prefix_lookup(
        const BlockTable::Generation* gen, uint8_t ip_version, const uint8_t* addr) noexcept {
    if (gen == nullptr) {
        return 0;
    }
    if (ip_version == 6 && is_mapped_v4(addr)) {
        ip_version = 4;
        addr += kMappedV4.size();
    }
    uint64_t next_hop = 0;
    if (ip_version == 4 && gen->fib4 != nullptr) {
        uint32_t ip = wire::load32(addr);
        rte_fib_lookup_bulk(gen->fib4, &ip, &next_hop, 1);
    } else if (ip_version == 6 && gen->fib6 != nullptr) {
        uint8_t ip[1][RTE_FIB6_IPV6_ADDR_SIZE];
        std::memcpy(ip[0], addr, RTE_FIB6_IPV6_ADDR_SIZE);
        rte_fib6_lookup_bulk(gen->fib6, ip, &next_hop, 1);
    }
    return next_hop;
}

int32_t exact_lookup(const rte_hash* hash, uint8_t ip_version, const uint8_t* addr) noexcept {
    if (ip_version == 6) {
        return rte_hash_lookup(hash, addr);
    }
    const Addr key = exact_key(4, addr);
    return rte_hash_lookup(hash, key.data());
}

bool is_allow(const BlockTable::Generation* gen, uint64_t next_hop) noexcept {
    return next_hop != 0 && gen->allow[next_hop - 1] != 0;
}

// The verdict of one packet from its lookups, counting the hits of the entries that decided.
BlockVerdict settle(const BlockTable::ReaderCounters& counters, const BlockTable::Generation* gen,
        uint64_t nh_src, uint64_t nh_dst, int32_t x_src, int32_t x_dst) noexcept {
    const bool allow_src = is_allow(gen, nh_src);
    const bool allow_dst = is_allow(gen, nh_dst);
    if (allow_src || allow_dst) {
        if (allow_src) {
            counters.prefix_hits[nh_src - 1].add();
        }
        if (allow_dst) {
            counters.prefix_hits[nh_dst - 1].add();
        }
        return BlockVerdict::Allowed;
    }
    if (x_src >= 0 || x_dst >= 0) {
        if (x_src >= 0) {
            counters.exact_hits[x_src].add();
        }
        if (x_dst >= 0) {
            counters.exact_hits[x_dst].add();
        }
        return BlockVerdict::BlockedExact;
    }
    if (nh_src != 0 || nh_dst != 0) {
        if (nh_src != 0) {
            counters.prefix_hits[nh_src - 1].add();
        }
        if (nh_dst != 0) {
            counters.prefix_hits[nh_dst - 1].add();
        }
        return BlockVerdict::BlockedPrefix;
    }
    return BlockVerdict::Pass;
}

Addr masked(const Addr& addr, unsigned len) {
    Addr out{};
    const unsigned full = len / 8;
    std::memcpy(out.data(), addr.data(), full);
    if (len % 8 != 0) {
        out[full] = static_cast<uint8_t>(addr[full] & (0xff << (8 - len % 8)));
    }
    return out;
}

Counter* make_counters(const std::string& name, uint32_t count, int socket_id) {
    void* mem = rte_zmalloc_socket(
            name.c_str(), sizeof(Counter) * count, RTE_CACHE_LINE_SIZE, socket_id);
    if (mem == nullptr) {
        return nullptr;
    }
    auto* counters = static_cast<Counter*>(mem);
    for (uint32_t i = 0; i < count; ++i) {
        new (&counters[i]) Counter();
    }
    return counters;
}

// Groups of 256 entries the trie reserves: it books, per prefix longer than 24 bits, one group
// for each further byte, before it knows which it will share, and refuses a prefix once its
// bookings pass num_tbl8. So size it for the bookings, not for the groups it will fill.
uint64_t trie_groups(const std::vector<std::pair<BlockPrefix, uint32_t>>& routes) {
    uint64_t groups = 0;
    for (const auto& [prefix, slot] : routes) {
        if (prefix.len > 24) {
            groups += (prefix.len - 24 + 7) / 8;
        }
    }
    return groups;
}

// DIR24_8 needs one tbl8 group per /24 that holds a longer prefix.
uint64_t dir24_groups(const std::vector<std::pair<BlockPrefix, uint32_t>>& routes) {
    std::set<Addr> groups;
    for (const auto& [prefix, slot] : routes) {
        if (prefix.len > 24) {
            groups.insert(masked(prefix.addr, 24));
        }
    }
    return groups.size();
}

}  // namespace

std::string to_string(const BlockPrefix& prefix) {
    char text[INET6_ADDRSTRLEN] = {};
    inet_ntop(prefix.ip_version == 4 ? AF_INET : AF_INET6, prefix.addr.data(), text, sizeof(text));
    return std::string(text) + "/" + std::to_string(prefix.len)
            + (prefix.allow ? " (allow)" : " (block)");
}

Result<BlockPrefix> make_block_prefix(
        uint8_t ip_version, const std::array<uint8_t, 16>& addr, uint8_t len, bool allow) {
    if (ip_version != 4 && ip_version != 6) {
        return make_error("IP version must be 4 or 6, got " + std::to_string(ip_version));
    }
    BlockPrefix prefix;
    prefix.allow = allow;
    prefix.ip_version = ip_version;
    prefix.len = len;
    if (ip_version == 6 && len >= 96 && is_mapped_v4(addr.data())) {
        prefix.ip_version = 4;
        prefix.len = static_cast<uint8_t>(len - 96);
        std::memcpy(prefix.addr.data(), addr.data() + 12, 4);
    } else if (ip_version == 4) {
        std::memcpy(prefix.addr.data(), addr.data(), 4);
    } else {
        prefix.addr = addr;
    }
    const unsigned max_len = prefix.ip_version == 4 ? 32 : 128;
    if (prefix.len > max_len) {
        return make_error("prefix length " + std::to_string(len) + " is longer than "
                + std::to_string(ip_version == 4 ? 32 : 128));
    }
    if (masked(prefix.addr, prefix.len) != prefix.addr) {
        BlockPrefix suggestion = prefix;
        suggestion.addr = masked(prefix.addr, prefix.len);
        return make_error("host bits set beyond the prefix length in " + to_string(prefix)
                + "; did you mean " + to_string(suggestion) + "?");
    }
    return prefix;
}

BlockTable::BlockTable(const BlockTableConfig& config)
    : config_(config), name_(config.name), readers_count_(config.readers) {}

std::unique_ptr<BlockTable> BlockTable::create(const BlockTableConfig& config, std::string* error) {
    if (config.readers == 0 || config.exact_capacity < kMinExactCapacity
            || config.prefix_capacity == 0 || config.prefix_capacity > kMaxPrefixCapacity
            || config.name == nullptr || std::strlen(config.name) == 0
            || std::strlen(config.name) > kMaxNameLen) {
        *error = "block table: readers >= 1, exact_capacity >= 8, prefix_capacity 1..32766 and"
                 " a name of 1 to 12 characters are required";
        return nullptr;
    }
    std::unique_ptr<BlockTable> table(new BlockTable(config));
    const int socket = config.socket_id;

    const size_t rcu_bytes = rte_rcu_qsbr_get_memsize(config.readers);
    table->rcu_ = static_cast<rte_rcu_qsbr*>(rte_zmalloc_socket(
            (table->name_ + "_rcu").c_str(), rcu_bytes, RTE_CACHE_LINE_SIZE, socket));
    if (table->rcu_ == nullptr || rte_rcu_qsbr_init(table->rcu_, config.readers) != 0) {
        *error = "block table: no memory for the RCU variable (raise dpdk.memory_mb)";
        return nullptr;
    }
    // Registered readers start offline: they hold up no grace period until reader_online().
    for (unsigned r = 0; r < config.readers; ++r) {
        rte_rcu_qsbr_thread_register(table->rcu_, r);
    }

    const std::string hash_name = table->name_ + "_x";
    rte_hash_parameters params{};
    params.name = hash_name.c_str();
    params.entries = config.exact_capacity;
    params.key_len = sizeof(Addr);
    params.hash_func = exact_hash;
    // A random seed: blocked addresses often come from an attacker, who must not be able to
    // pick ones that pile into the same buckets.
    params.hash_func_init_val = static_cast<uint32_t>(rte_rand());
    params.socket_id = socket;
    params.extra_flag = RTE_HASH_EXTRA_FLAGS_RW_CONCURRENCY_LF | RTE_HASH_EXTRA_FLAGS_EXT_TABLE;
    table->exact_ = rte_hash_create(&params);
    if (table->exact_ == nullptr) {
        *error = std::string("block table: rte_hash_create failed: ") + rte_strerror(rte_errno)
                + " (memory: raise dpdk.memory_mb or lower the exact capacity)";
        return nullptr;
    }
    rte_hash_rcu_config rcu_config{};
    rcu_config.v = table->rcu_;
    rcu_config.mode = RTE_HASH_QSBR_MODE_DQ;
    rcu_config.trigger_reclaim_limit = 0;  // reclaim what is due at every removal
    rcu_config.key_data_ptr = table.get();
    rcu_config.free_key_data_func = &BlockTable::on_exact_freed;
    if (rte_hash_rcu_qsbr_add(table->exact_, &rcu_config) != 0) {
        *error = std::string("block table: rte_hash_rcu_qsbr_add failed: ")
                + rte_strerror(rte_errno);
        return nullptr;
    }

    table->counters_ =
            static_cast<ReaderCounters*>(rte_zmalloc_socket((table->name_ + "_rc").c_str(),
                    sizeof(ReaderCounters) * config.readers, RTE_CACHE_LINE_SIZE, socket));
    if (table->counters_ == nullptr) {
        *error = "block table: no memory for the hit counters (raise dpdk.memory_mb)";
        return nullptr;
    }
    for (unsigned r = 0; r < config.readers; ++r) {
        ReaderCounters& c = table->counters_[r];
        c.exact_hits = make_counters(table->name_ + "_xh", config.exact_capacity, socket);
        c.prefix_hits = make_counters(table->name_ + "_ph", config.prefix_capacity, socket);
        if (c.exact_hits == nullptr || c.prefix_hits == nullptr) {
            *error = "block table: no memory for the hit counters (raise dpdk.memory_mb)";
            return nullptr;
        }
    }

    table->free_prefix_slots_.reserve(config.prefix_capacity);
    for (uint32_t slot = config.prefix_capacity; slot > 0; --slot) {
        table->free_prefix_slots_.push_back(slot - 1);
    }
    table->slot_published_.assign(config.prefix_capacity, 0);
    return table;
}

BlockTable::~BlockTable() {
    // The hash first: freeing it reclaims its defer queue, which resets counters.
    rte_hash_free(exact_);
    free_generation(prefixes_.load(std::memory_order_relaxed));
    if (counters_ != nullptr) {
        for (unsigned r = 0; r < readers_count_; ++r) {
            rte_free(counters_[r].exact_hits);
            rte_free(counters_[r].prefix_hits);
        }
        rte_free(counters_);
    }
    rte_free(rcu_);
}

void BlockTable::on_exact_freed(void* self, void* key_data) {
    // Runs on the control thread inside an add or remove, after the grace period of the
    // removed key: no reader can reach its slot any more, so the control thread may store
    // into the readers' counters before the hash hands the slot out again.
    const auto tag = reinterpret_cast<uintptr_t>(key_data);
    if (tag == 0) {
        return;
    }
    static_cast<BlockTable*>(self)->reset_hits(
            &ReaderCounters::exact_hits, static_cast<uint32_t>(tag - 1));
}

Result<uint32_t> BlockTable::add_exact(uint8_t ip_version, const std::array<uint8_t, 16>& addr) {
    if (ip_version != 4 && ip_version != 6) {
        return make_error("IP version must be 4 or 6, got " + std::to_string(ip_version));
    }
    const Addr key = exact_key(ip_version, addr.data());
    const hash_sig_t sig = rte_hash_hash(exact_, key.data());
    const int32_t present = rte_hash_lookup_with_hash(exact_, key.data(), sig);
    if (present >= 0) {
        return static_cast<uint32_t>(present);
    }
    const int32_t pos = rte_hash_add_key_with_hash(exact_, key.data(), sig);
    if (pos == -ENOSPC) {
        return make_error("exact block table full (" + std::to_string(config_.exact_capacity)
                + " entries); remove entries or raise its capacity");
    }
    if (pos < 0) {
        return make_error(
                std::string("exact block table: rte_hash_add_key failed: ") + rte_strerror(-pos));
    }
    // The slot rides along as the key's data (+1, so 0 means none) for on_exact_freed();
    // readers use the position lookups return and never read it.
    rte_hash_add_key_with_hash_data(
            exact_, key.data(), sig, reinterpret_cast<void*>(static_cast<uintptr_t>(pos) + 1));
    ++exact_count_;
    exact_live_.store(static_cast<uint32_t>(exact_count_), std::memory_order_release);
    return static_cast<uint32_t>(pos);
}

bool BlockTable::remove_exact(uint8_t ip_version, const std::array<uint8_t, 16>& addr) {
    if (ip_version != 4 && ip_version != 6) {
        return false;
    }
    const Addr key = exact_key(ip_version, addr.data());
    if (rte_hash_del_key(exact_, key.data()) < 0) {
        return false;
    }
    --exact_count_;
    exact_live_.store(static_cast<uint32_t>(exact_count_), std::memory_order_release);
    return true;
}

int32_t BlockTable::exact_slot(uint8_t ip_version, const std::array<uint8_t, 16>& addr) const {
    if (ip_version != 4 && ip_version != 6) {
        return -1;
    }
    const int32_t pos = exact_lookup(exact_, ip_version, addr.data());
    return pos >= 0 ? pos : -1;
}

Result<uint32_t> BlockTable::stage_prefix(
        uint8_t ip_version, const std::array<uint8_t, 16>& addr, uint8_t len, bool allow) {
    Result<BlockPrefix> prefix = make_block_prefix(ip_version, addr, len, allow);
    if (!prefix) {
        return make_error(prefix.error());
    }
    const auto found = staged_.find(*prefix);
    if (found != staged_.end()) {
        return found->second;
    }
    if (free_prefix_slots_.empty()) {
        return make_error("prefix table full (" + std::to_string(config_.prefix_capacity)
                + " prefixes); remove prefixes or raise its capacity");
    }
    const uint32_t slot = free_prefix_slots_.back();
    free_prefix_slots_.pop_back();
    staged_.emplace(*prefix, slot);
    return slot;
}

bool BlockTable::unstage_prefix(
        uint8_t ip_version, const std::array<uint8_t, 16>& addr, uint8_t len, bool allow) {
    Result<BlockPrefix> prefix = make_block_prefix(ip_version, addr, len, allow);
    if (!prefix) {
        return false;
    }
    const auto found = staged_.find(*prefix);
    if (found == staged_.end()) {
        return false;
    }
    const uint32_t slot = found->second;
    staged_.erase(found);
    if (slot_published_[slot] != 0) {
        released_prefix_slots_.push_back(slot);
        return true;
    }
    // Never in a published fib since the last grace period: no reader can count on it.
    reset_hits(&ReaderCounters::prefix_hits, slot);
    free_prefix_slots_.push_back(slot);
    return true;
}

Result<BlockTable::Generation*> BlockTable::build_generation(PrefixCommitStats& stats) {
    // Allow prefixes by family and length, to find the block prefixes they cover.
    std::set<BlockPrefix> allows;
    std::array<std::set<uint8_t>, 2> allow_lens;
    for (const auto& [prefix, slot] : staged_) {
        if (prefix.allow) {
            BlockPrefix key = prefix;
            key.allow = false;
            allows.insert(key);
            allow_lens[prefix.ip_version == 4 ? 0 : 1].insert(prefix.len);
        }
    }
    std::vector<std::pair<BlockPrefix, uint32_t>> routes4;
    std::vector<std::pair<BlockPrefix, uint32_t>> routes6;
    for (const auto& [prefix, slot] : staged_) {
        bool shadowed = false;
        if (!prefix.allow) {
            for (const uint8_t len : allow_lens[prefix.ip_version == 4 ? 0 : 1]) {
                if (len > prefix.len) {
                    break;
                }
                BlockPrefix cover = prefix;
                cover.len = len;
                cover.addr = masked(prefix.addr, len);
                if (allows.count(cover) != 0) {
                    shadowed = true;
                    break;
                }
            }
        }
        if (shadowed) {
            stats.shadowed.push_back(prefix);
        } else {
            (prefix.ip_version == 4 ? routes4 : routes6).emplace_back(prefix, slot);
        }
    }
    stats.v4_routes = routes4.size();
    stats.v6_routes = routes6.size();
    if (routes4.empty() && routes6.empty()) {
        return static_cast<Generation*>(nullptr);
    }

    auto gen = std::make_unique<Generation>();
    gen->allow.assign(config_.prefix_capacity, 0);
    const unsigned seq = static_cast<unsigned>(++generation_seq_ % 100000);
    // `code`: the errno the call reported (fib adds return it; creates set rte_errno).
    auto fail = [&](const char* what, int code) {
        free_generation(gen.release());
        return make_error(std::string("block table: ") + what + " failed: " + rte_strerror(code)
                + " (memory: raise dpdk.memory_mb)");
    };
    if (!routes4.empty()) {
        rte_fib_conf conf{};
        conf.type = RTE_FIB_DIR24_8;
        conf.default_nh = 0;
        conf.max_routes = static_cast<int>(routes4.size());
        conf.dir24_8.nh_sz = RTE_FIB_DIR24_8_2B;
        conf.dir24_8.num_tbl8 = static_cast<uint32_t>(dir24_groups(routes4) + 1);
        const std::string name = name_ + "4_" + std::to_string(seq);
        gen->fib4 = rte_fib_create(name.c_str(), config_.socket_id, &conf);
        if (gen->fib4 == nullptr) {
            return fail("rte_fib_create", rte_errno);
        }
        for (const auto& [prefix, slot] : routes4) {
            gen->allow[slot] = prefix.allow ? 1 : 0;
            const int ret =
                    rte_fib_add(gen->fib4, wire::load32(prefix.addr.data()), prefix.len, slot + 1);
            if (ret != 0) {
                return fail("rte_fib_add", -ret);
            }
        }
    }
    if (!routes6.empty()) {
        rte_fib6_conf conf{};
        conf.type = RTE_FIB6_TRIE;
        conf.default_nh = 0;
        conf.max_routes = static_cast<int>(routes6.size());
        // The trie's group indexes share the next-hop width: 2 bytes while they fit, so a
        // large IPv6 list doubles its 32 MiB first level.
        const uint64_t groups = trie_groups(routes6) + 1;
        conf.trie.nh_sz = groups <= kMaxTrie2ByteGroups ? RTE_FIB6_TRIE_2B : RTE_FIB6_TRIE_4B;
        conf.trie.num_tbl8 = static_cast<uint32_t>(groups);
        const std::string name = name_ + "6_" + std::to_string(seq);
        gen->fib6 = rte_fib6_create(name.c_str(), config_.socket_id, &conf);
        if (gen->fib6 == nullptr) {
            return fail("rte_fib6_create", rte_errno);
        }
        for (const auto& [prefix, slot] : routes6) {
            gen->allow[slot] = prefix.allow ? 1 : 0;
            const int ret = rte_fib6_add(gen->fib6, prefix.addr.data(), prefix.len, slot + 1);
            if (ret != 0) {
                return fail("rte_fib6_add", -ret);
            }
        }
    }
    return gen.release();
}

void BlockTable::free_generation(Generation* gen) {
    if (gen == nullptr) {
        return;
    }
    if (gen->fib4 != nullptr) {
        rte_fib_free(gen->fib4);
    }
    if (gen->fib6 != nullptr) {
        rte_fib6_free(gen->fib6);
    }
    delete gen;
}

Result<PrefixCommitStats> BlockTable::commit_prefixes() {
    PrefixCommitStats stats;
    Result<Generation*> built = build_generation(stats);
    if (!built) {
        return make_error(built.error());
    }
    Generation* old = prefixes_.load(std::memory_order_relaxed);
    prefixes_.store(*built, std::memory_order_release);
    rte_rcu_qsbr_synchronize(rcu_, RTE_QSBR_THRID_INVALID);
    free_generation(old);

    // No reader holds the old fib now: unstaged slots start again from zero.
    for (const uint32_t slot : released_prefix_slots_) {
        reset_hits(&ReaderCounters::prefix_hits, slot);
        free_prefix_slots_.push_back(slot);
    }
    released_prefix_slots_.clear();
    std::fill(slot_published_.begin(), slot_published_.end(), 0);
    const Generation* now = *built;
    if (now != nullptr) {
        for (const auto& [prefix, slot] : staged_) {
            slot_published_[slot] = 1;
        }
        for (const BlockPrefix& prefix : stats.shadowed) {
            slot_published_[staged_.at(prefix)] = 0;
        }
    }
    return stats;
}

uint64_t BlockTable::sum_hits(Counter* ReaderCounters::*hits, uint32_t slot, uint32_t limit) const {
    uint64_t sum = 0;
    if (slot < limit) {
        for (unsigned r = 0; r < readers_count_; ++r) {
            sum += (counters_[r].*hits)[slot].get();
        }
    }
    return sum;
}

void BlockTable::reset_hits(Counter* ReaderCounters::*hits, uint32_t slot) {
    // Only for a slot no reader can reach (after its grace period): the one time the control
    // thread stores into a reader's counter.
    for (unsigned r = 0; r < readers_count_; ++r) {
        (counters_[r].*hits)[slot].set(0);
    }
}

uint64_t BlockTable::exact_hits(uint32_t slot) const {
    return sum_hits(&ReaderCounters::exact_hits, slot, config_.exact_capacity);
}

uint64_t BlockTable::prefix_hits(uint32_t slot) const {
    return sum_hits(&ReaderCounters::prefix_hits, slot, config_.prefix_capacity);
}

void BlockTable::reader_online(unsigned reader) noexcept {
    rte_rcu_qsbr_thread_online(rcu_, reader);
}

void BlockTable::reader_offline(unsigned reader) noexcept {
    rte_rcu_qsbr_thread_offline(rcu_, reader);
}

void BlockTable::quiescent(unsigned reader) noexcept {
    rte_rcu_qsbr_quiescent(rcu_, reader);
}

BlockVerdict BlockTable::check(
        unsigned reader, uint8_t ip_version, const uint8_t* src, const uint8_t* dst) noexcept {
    if (ip_version != 4 && ip_version != 6) {
        return BlockVerdict::Pass;
    }
    const Generation* gen = prefixes_.load(std::memory_order_acquire);
    const bool any_exact = exact_live_.load(std::memory_order_relaxed) != 0;
    if (gen == nullptr && !any_exact) {
        return BlockVerdict::Pass;
    }

    // Prefixes first: an allow decides without touching the hash.
    const uint64_t nh_src = prefix_lookup(gen, ip_version, src);
    const uint64_t nh_dst = prefix_lookup(gen, ip_version, dst);
    int32_t x_src = -1;
    int32_t x_dst = -1;
    if (any_exact && !is_allow(gen, nh_src) && !is_allow(gen, nh_dst)) {
        x_src = exact_lookup(exact_, ip_version, src);
        x_dst = exact_lookup(exact_, ip_version, dst);
    }
    return settle(counters_[reader], gen, nh_src, nh_dst, x_src, x_dst);
}

void BlockTable::check_burst(unsigned reader, unsigned n, const uint8_t* ip_versions,
        const uint8_t* const* srcs, const uint8_t* const* dsts, BlockVerdict* verdicts) noexcept {
    const Generation* gen = prefixes_.load(std::memory_order_acquire);
    const bool any_exact = exact_live_.load(std::memory_order_relaxed) != 0;
    n = std::min(n, kBurstMax);
    if (gen == nullptr && !any_exact) {
        std::fill(verdicts, verdicts + n, BlockVerdict::Pass);
        return;
    }
    // Address 2i is packet i's source, 2i+1 its destination.
    constexpr unsigned kAddrs = 2 * kBurstMax;
    std::array<uint64_t, kAddrs> next_hops{};
    std::array<int32_t, kAddrs> exact_pos;
    exact_pos.fill(-1);

    // Prefixes: one bulk lookup per family.
    if (gen != nullptr) {
        std::array<uint32_t, kAddrs> ip4;
        std::array<uint64_t, kAddrs> nh4;
        std::array<uint8_t, kAddrs> at4;
        uint8_t ip6[kAddrs][RTE_FIB6_IPV6_ADDR_SIZE];
        std::array<uint64_t, kAddrs> nh6;
        std::array<uint8_t, kAddrs> at6;
        unsigned n4 = 0;
        unsigned n6 = 0;
        for (unsigned a = 0; a < 2 * n; ++a) {
            uint8_t version = ip_versions[a / 2];
            const uint8_t* addr = (a % 2 == 0) ? srcs[a / 2] : dsts[a / 2];
            if (version == 6 && is_mapped_v4(addr)) {
                version = 4;
                addr += kMappedV4.size();
            }
            if (version == 4 && gen->fib4 != nullptr) {
                ip4[n4] = wire::load32(addr);
                at4[n4++] = static_cast<uint8_t>(a);
            } else if (version == 6 && gen->fib6 != nullptr) {
                std::memcpy(ip6[n6], addr, RTE_FIB6_IPV6_ADDR_SIZE);
                at6[n6++] = static_cast<uint8_t>(a);
            }
        }
        if (n4 != 0) {
            rte_fib_lookup_bulk(gen->fib4, ip4.data(), nh4.data(), static_cast<int>(n4));
            for (unsigned k = 0; k < n4; ++k) {
                next_hops[at4[k]] = nh4[k];
            }
        }
        if (n6 != 0) {
            rte_fib6_lookup_bulk(gen->fib6, ip6, nh6.data(), static_cast<int>(n6));
            for (unsigned k = 0; k < n6; ++k) {
                next_hops[at6[k]] = nh6[k];
            }
        }
    }

    // Exact entries: one bulk lookup of every address.
    if (any_exact) {
        std::array<Addr, kAddrs> v4_keys;
        std::array<const void*, kAddrs> keys;
        std::array<int32_t, kAddrs> found;
        std::array<uint8_t, kAddrs> at;
        unsigned count = 0;
        for (unsigned a = 0; a < 2 * n; ++a) {
            const uint8_t version = ip_versions[a / 2];
            const uint8_t* addr = (a % 2 == 0) ? srcs[a / 2] : dsts[a / 2];
            if (version == 4) {
                v4_keys[count] = exact_key(4, addr);
                keys[count] = v4_keys[count].data();
            } else if (version == 6) {
                keys[count] = addr;
            } else {
                continue;
            }
            at[count++] = static_cast<uint8_t>(a);
        }
        if (count != 0) {
            rte_hash_lookup_bulk(exact_, keys.data(), count, found.data());
            for (unsigned k = 0; k < count; ++k) {
                exact_pos[at[k]] = found[k];
            }
        }
    }

    // Verdicts.
    for (unsigned i = 0; i < n; ++i) {
        verdicts[i] = settle(counters_[reader], gen, next_hops[2 * i], next_hops[2 * i + 1],
                exact_pos[2 * i], exact_pos[2 * i + 1]);
    }
}

}  // namespace exfiltap::dataplane
