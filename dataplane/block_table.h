// The data-path block table (DESIGN.md "Response"): what a worker checks every packet's two
// addresses against.
//
// - Exact blocks (/32, /128) sit in a lock-free rte_hash (RW_CONCURRENCY_LF, one writer: the
//   control thread). They change one by one while workers read; a removed key's slot goes
//   back to the hash through the RCU defer queue (rte_hash_rcu_qsbr_add), so no worker can
//   still be reading it when it is reused.
// - Prefixes (block and allow, any length including /32 and /128) are staged on the control
//   thread and take effect at commit_prefixes(): a new rte_fib (DIR24_8) and rte_fib6 (TRIE)
//   is built, published with release semantics, the control thread waits for an RCU grace
//   period and frees the old one. A family with no prefix has no fib at all (a DIR24_8 table
//   alone is 32 MiB). Next hops are 2 bytes: slot + 1 into the per-prefix slot table.
// - Allow wins: an address in an allow prefix is never blocked, whatever else matches, and
//   a packet whose source OR destination is allowed is Allowed. A block prefix inside (or
//   equal to) an allow prefix is left out of the fib and reported as shadowed, so longest
//   prefix match can never pick it over the allow; an allow inside a block prefix wins by
//   longest prefix match.
// - An IPv4-mapped IPv6 address (::ffff:a.b.c.d) is that IPv4 address everywhere (exact keys,
//   prefixes, lookups), so a v6 packet cannot step around a v4 block with one.
// - Hit counters: one array per reader (worker) indexed by slot, single-writer relaxed
//   stores (common/counter.h); the control side sums them. A slot reused after removal
//   starts at zero: its counters are reset after the grace period, before reuse.
//
// Threads: create(), the destructor and everything marked "control" run on one control
// thread. check(), quiescent(), reader_online() and reader_offline() run on reader `reader`
// only (0..readers-1): no lock, no allocation and no atomic read-modify-write there.
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <rte_memory.h>

#include "common/counter.h"
#include "common/result.h"

struct rte_hash;
struct rte_rcu_qsbr;

namespace exfiltap::dataplane {

struct BlockTableConfig {
    /// Exact entries (v4 and v6 together); at least 8 (an rte_hash bucket).
    uint32_t exact_capacity = 1u << 20;
    /// Staged prefixes (block and allow, v4 and v6 together); at most 32766 (2-byte next hops
    /// keep one bit for the fib's own use).
    uint32_t prefix_capacity = 16384;
    /// Worker threads that call check(); each gets a reader id 0..readers-1.
    unsigned readers = 1;
    int socket_id = SOCKET_ID_ANY;
    /// Prefix of the DPDK object names: at most 12 characters, unique per process.
    const char* name = "block";
};

enum class BlockVerdict : uint8_t {
    Pass,
    /// Source or destination is allowlisted: never drop this packet.
    Allowed,
    BlockedExact,
    BlockedPrefix,
};

/// A staged prefix as the control side sees it (address in network order, IPv4 in the first
/// four bytes, host bits zero).
struct BlockPrefix {
    uint8_t ip_version = 4;
    uint8_t len = 0;
    bool allow = false;
    std::array<uint8_t, 16> addr{};

    auto operator<=>(const BlockPrefix&) const = default;
};

/// Validates and normalises a prefix: version 4 or 6, length within the family, no host bits
/// (an error suggests the masked prefix), IPv4-mapped IPv6 of length >= 96 becomes IPv4.
Result<BlockPrefix> make_block_prefix(
        uint8_t ip_version, const std::array<uint8_t, 16>& addr, uint8_t len, bool allow);
/// "192.0.2.0/24 (block)": for the operator's messages.
std::string to_string(const BlockPrefix& prefix);

/// What the last commit published.
struct PrefixCommitStats {
    size_t v4_routes = 0;
    size_t v6_routes = 0;
    /// Block prefixes left out because an allow prefix covers them.
    std::vector<BlockPrefix> shadowed;
};

class BlockTable {
public:
    /// Creates the RCU variable, the exact hash and the counters (control thread, after EAL
    /// init). Returns null with `error` set on failure.
    static std::unique_ptr<BlockTable> create(const BlockTableConfig& config, std::string* error);
    /// Control thread; every reader must be offline (or stopped).
    ~BlockTable();
    BlockTable(const BlockTable&) = delete;
    BlockTable& operator=(const BlockTable&) = delete;
    BlockTable(BlockTable&&) = delete;
    BlockTable& operator=(BlockTable&&) = delete;

    // --- control thread only ---

    /// Adds an exact block (`addr` in network order, IPv4 in the first 4 bytes) and returns
    /// its slot; adding a present address returns its slot unchanged. Workers see it when
    /// this returns. Errors: bad version, table full (after reclaiming what the grace period
    /// allows).
    Result<uint32_t> add_exact(uint8_t ip_version, const std::array<uint8_t, 16>& addr);
    /// Removes an exact block; false if it was not there. Its slot is reused only after a
    /// grace period (no reader waits for it: the defer queue reclaims it later).
    bool remove_exact(uint8_t ip_version, const std::array<uint8_t, 16>& addr);
    /// Stages a prefix (takes effect at commit_prefixes) and returns its slot; staging a
    /// staged prefix returns its slot. Errors: bad version or length, host bits set, full.
    Result<uint32_t> stage_prefix(
            uint8_t ip_version, const std::array<uint8_t, 16>& addr, uint8_t len, bool allow);
    /// Unstages a prefix (takes effect at commit_prefixes); false if it was not staged.
    bool unstage_prefix(
            uint8_t ip_version, const std::array<uint8_t, 16>& addr, uint8_t len, bool allow);
    /// Builds the fibs of the staged prefixes, publishes them, waits for a grace period
    /// (every online reader passes quiescent()), frees the old ones and recycles the slots of
    /// unstaged prefixes. Blocks the calling thread for that grace period. On error (no
    /// memory) the published fibs stay as they were.
    Result<PrefixCommitStats> commit_prefixes();

    /// Hits summed over the readers (relaxed: a scrape may miss the last few).
    uint64_t exact_hits(uint32_t slot) const;
    uint64_t prefix_hits(uint32_t slot) const;
    /// Exact entries present (removed ones not counted, even before their slot is reclaimed).
    size_t exact_count() const { return exact_count_; }
    /// Staged prefixes (published or not).
    size_t prefix_count() const { return staged_.size(); }
    /// The slot of a present exact entry, or -1.
    int32_t exact_slot(uint8_t ip_version, const std::array<uint8_t, 16>& addr) const;
    const std::map<BlockPrefix, uint32_t>& staged_prefixes() const { return staged_; }
    /// The RCU variable the readers report to (other RCU-published tables may share it).
    rte_rcu_qsbr* rcu() { return rcu_; }
    unsigned readers() const { return readers_count_; }

    // --- reader (worker) side ---

    /// Reader `reader` takes part in grace periods from now on (before its first check()).
    void reader_online(unsigned reader) noexcept;
    /// Reader `reader` holds no reference any more (before it sleeps or stops).
    void reader_offline(unsigned reader) noexcept;
    /// Once per poll loop, between bursts: no reference to the table is held across it.
    void quiescent(unsigned reader) noexcept;

    /// One packet: both addresses in network order (IPv4 in the first 4 bytes; 16 readable
    /// bytes for IPv6). Cost: nothing when empty(); else up to two fib and two hash lookups.
    BlockVerdict check(
            unsigned reader, uint8_t ip_version, const uint8_t* src, const uint8_t* dst) noexcept;
    /// A burst: check() of packet i gives verdicts[i]. Lookups are done in bulk per family.
    /// `n` at most kBurstMax (more are not looked at).
    void check_burst(unsigned reader, unsigned n, const uint8_t* ip_versions,
            const uint8_t* const* srcs, const uint8_t* const* dsts,
            BlockVerdict* verdicts) noexcept;
    // Two addresses a packet fill one rte_hash bulk lookup (RTE_HASH_LOOKUP_BULK_MAX).
    static constexpr unsigned kBurstMax = 32;

    /// Nothing to look up at all (any thread; relaxed).
    bool empty() const noexcept {
        return exact_live_.load(std::memory_order_relaxed) == 0
                && prefixes_.load(std::memory_order_relaxed) == nullptr;
    }

    /// One published set of prefix tables (internal; public for the .cc helpers).
    struct Generation;
    /// One reader's counters (internal).
    struct alignas(RTE_CACHE_LINE_SIZE) ReaderCounters {
        Counter* exact_hits = nullptr;
        Counter* prefix_hits = nullptr;
    };

private:
    explicit BlockTable(const BlockTableConfig& config);
    static void on_exact_freed(void* self, void* key_data);
    uint64_t sum_hits(Counter* ReaderCounters::*hits, uint32_t slot, uint32_t limit) const;
    void reset_hits(Counter* ReaderCounters::*hits, uint32_t slot);
    Result<Generation*> build_generation(PrefixCommitStats& stats);
    void free_generation(Generation* gen);

    BlockTableConfig config_;
    std::string name_;
    unsigned readers_count_ = 1;
    rte_rcu_qsbr* rcu_ = nullptr;
    rte_hash* exact_ = nullptr;
    ReaderCounters* counters_ = nullptr;
    // Read by workers, written by the control thread with plain stores.
    std::atomic<uint32_t> exact_live_{0};
    std::atomic<Generation*> prefixes_{nullptr};

    // Control side only.
    size_t exact_count_ = 0;
    std::map<BlockPrefix, uint32_t> staged_;
    std::vector<uint32_t> free_prefix_slots_;
    /// Slots of unstaged prefixes still in the published fib: recycled at the next commit.
    std::vector<uint32_t> released_prefix_slots_;
    /// Slots the published fib refers to.
    std::vector<uint8_t> slot_published_;
    uint64_t generation_seq_ = 0;
};

}  // namespace exfiltap::dataplane
