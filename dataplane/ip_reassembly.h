// IPv4 and IPv6 fragment reassembly for inspection. The worker always forwards fragments as
// they came; it hands a copy of each decoded fragment to its IpReassembler, which keeps the
// fragment data in fixed-size pages of a preallocated pool and, once the fragments cover the
// datagram from offset 0 to the end named by the last fragment, builds the whole frame as if
// it had never been fragmented (L2 header of the first fragment kept, IP header fixed). The
// caller decodes that frame with decode_packet() and inspects it like any other packet.
//
// The first copy of a byte is what a datagram keeps; later copies with other bytes are
// counted as conflicting overlaps. A datagram that cannot be rebuilt without guessing (too
// many fragments, oversize, conflicting ends, memory) is given up: its data is freed and its
// key stays in the table until the timeout, so the rest of its fragments are counted and
// ignored instead of starting a half datagram. Nothing is ever delivered half-built.
//
// Pure code (no rte_ headers): unit-tested without EAL.
// Thread: the owning worker only. Allocates in the constructor only; every method is
// noexcept and does bounded work: O(fragments held for the datagram + fragment bytes) per add,
// plus a bounded number of evictions.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>

#include "dataplane/decode.h"

namespace exfiltap::dataplane {

struct IpReassemblyConfig {
    /// Datagrams tracked at once (incomplete or given up); a new one evicts the oldest.
    uint32_t max_datagrams = 1024;
    /// Fragments that bring new bytes to one datagram; one more gives the datagram up.
    uint32_t max_fragments_per_datagram = 64;
    /// Largest fragmentable part of one datagram (fragment offset + length, bytes after the
    /// IPv4 header or the IPv6 fragment header). At most 65535; the rebuilt IPv4 total length
    /// or IPv6 payload length must also fit its 16-bit field.
    uint32_t max_datagram_bytes = 65535;
    /// Budget for held fragment data, rounded down to whole pages (kPageBytes). The fixed
    /// tables (per datagram: key, saved headers, page and range lists) come on top of it;
    /// footprint_bytes() tells the whole.
    size_t memory_bytes = size_t{8} << 20;
    /// A datagram still incomplete this long after its first fragment is dropped.
    uint64_t timeout_ns = 30'000'000'000ULL;
    /// Seed of the key hash, so a sender cannot aim fragment ids at one bucket (a worker
    /// passes a random value).
    uint64_t hash_seed = 0x6a09e667f3bcc909ULL;
};

/// What happened to one fragment. The worker's exception policy acts on it (for instance
/// dropping a ConflictingOverlap in inline mode); the reassembler only counts.
enum class FragmentStatus : uint8_t {
    /// New bytes kept (the fragment may have completed the datagram).
    Held,
    /// New bytes kept; the bytes it shares with held data are identical.
    Overlap,
    /// Every byte was held already, identical. May still complete the datagram by naming
    /// its end.
    Duplicate,
    /// Some shared byte differs: the held (first) copy stays, new bytes are kept.
    ConflictingOverlap,
    /// Not usable on its own (header cut or bad, zero length, non-last length not a multiple
    /// of 8, headers longer than kMaxHeaderBytes): ignored, the datagram goes on. Or it
    /// contradicts the datagram (beyond the known end, a second end): the datagram is given up.
    Invalid,
    /// Gave its datagram up: one fragment more than max_fragments_per_datagram.
    TooManyFragments,
    /// Gave its datagram up: it reaches past max_datagram_bytes or the 16-bit length field.
    Oversize,
    /// Gave its datagram up: no page left even after evicting older datagrams.
    MemoryExhausted,
    /// Belongs to a datagram given up earlier; ignored until the key times out.
    DatagramFailed,
    /// info.fragment is false: nothing to do.
    NotFragment,
};

/// A rebuilt frame. Points into the reassembler's output buffer: valid until the next call
/// of add() or expire() on the same reassembler.
struct ReassembledFrame {
    const uint8_t* data = nullptr;
    uint32_t len = 0;
};

struct ReassemblyResult {
    FragmentStatus status = FragmentStatus::NotFragment;
    /// Set when this fragment completed its datagram.
    ReassembledFrame frame{};

    bool completed() const noexcept { return frame.data != nullptr; }
};

/// Counters by reason; each counts fragments unless it says datagrams.
struct ReassemblyStats {
    /// Fragments offered (info.fragment set).
    uint64_t fragments = 0;
    /// Datagrams started and datagrams rebuilt and returned.
    uint64_t datagrams_started = 0;
    uint64_t datagrams_completed = 0;
    /// Nothing new, identical bytes.
    uint64_t duplicates = 0;
    /// New bytes and identical shared bytes.
    uint64_t overlaps = 0;
    /// Shared bytes that differ from the first copy (evasion sign).
    uint64_t conflicting_overlaps = 0;
    uint64_t too_many_fragments = 0;
    uint64_t oversize = 0;
    uint64_t invalid = 0;
    /// Datagrams: incomplete ones evicted for memory or a full table, or given up because
    /// their own data did not fit.
    uint64_t memory_exhausted = 0;
    /// Datagrams: incomplete at their timeout.
    uint64_t timed_out = 0;
    /// Fragments of datagrams given up earlier.
    uint64_t discarded = 0;
};

class IpReassembler {
public:
    /// Fragment data is stored in pages of this size, addressed by datagram offset.
    static constexpr uint32_t kPageBytes = 1024;
    /// Bytes of the first fragment's headers kept for the rebuilt frame (L2, VLAN tags, IPv4
    /// header with options, IPv6 header and the extension headers before the fragment header).
    static constexpr uint32_t kMaxHeaderBytes = 512;
    /// Largest frame add() can return.
    static constexpr uint32_t kMaxFrameBytes = kMaxHeaderBytes + 65535;

    /// Allocates everything (may throw std::bad_alloc). Config values out of range are
    /// clamped: at least one datagram, fragment and page; max_datagram_bytes at most 65535.
    explicit IpReassembler(const IpReassemblyConfig& config);
    ~IpReassembler();
    IpReassembler(const IpReassembler&) = delete;
    IpReassembler& operator=(const IpReassembler&) = delete;
    IpReassembler(IpReassembler&&) = delete;
    IpReassembler& operator=(IpReassembler&&) = delete;

    /// Takes a copy of the fragment in `frame` (`len` captured bytes) that decode_packet()
    /// described in `info`. The key is (IP version, source, destination, id, IPv4 protocol,
    /// VLAN ids); IPv6 leaves the next header out, as RFC 8200 lets fragments of one packet
    /// name different ones. The IP fields are read again from the frame, so an L4 fault that
    /// decode reported for a first fragment does not stop reassembly. A datagram older than
    /// timeout_ns is dropped (timed out) before the fragment is taken.
    ReassemblyResult add(
            const uint8_t* frame, uint32_t len, const PacketInfo& info, uint64_t now_ns) noexcept;

    /// Drops up to `budget` datagrams (oldest first) whose first fragment came timeout_ns or
    /// more before `now_ns`; incomplete ones count as timed out.
    void expire(uint64_t now_ns, uint32_t budget) noexcept;

    /// Datagrams in the table: incomplete ones and given-up ones waiting for their timeout.
    size_t in_progress() const noexcept { return in_use_; }
    /// Bytes of fragment data pages in use.
    size_t memory_in_use() const noexcept { return size_t{pages_in_use_} * kPageBytes; }
    /// Bytes allocated by the constructor, data pages and tables.
    size_t footprint_bytes() const noexcept { return footprint_; }
    const ReassemblyStats& stats() const noexcept { return stats_; }

private:
    struct Key {
        std::array<uint8_t, 16> src;
        std::array<uint8_t, 16> dst;
        uint32_t id;
        std::array<uint16_t, kMaxVlanTags> vlan;
        uint8_t version;
        uint8_t proto;
        uint8_t vlan_count;
        uint8_t reserved;
    };
    // Keys are hashed and compared as bytes: no padding may hide in them.
    static_assert(sizeof(Key) == 48);
    struct Range {
        uint32_t begin;
        uint32_t end;
    };
    struct Fragment;
    struct Datagram;

    static bool parse(const uint8_t* frame, uint32_t len, const PacketInfo& info, Fragment& frag,
            Key& key) noexcept;

    uint32_t find(const Key& key, uint32_t hash) const noexcept;
    uint32_t create(const Key& key, uint32_t hash, uint64_t now_ns) noexcept;
    void release(uint32_t slot) noexcept;
    void give_up(uint32_t slot) noexcept;
    bool expired(uint32_t slot, uint64_t now_ns) const noexcept;
    void evict(uint32_t slot) noexcept;
    bool reserve_pages(uint32_t slot, uint32_t begin, uint32_t end) noexcept;
    bool held_equal(uint32_t slot, uint32_t off, const uint8_t* src, uint32_t n) const noexcept;
    void write(uint32_t slot, uint32_t off, const uint8_t* src, uint32_t n) noexcept;
    void add_range(uint32_t slot, uint32_t begin, uint32_t end) noexcept;
    uint32_t limit(uint32_t slot, const Fragment& frag) const noexcept;
    void save_header(uint32_t slot, const uint8_t* frame, const Fragment& frag) noexcept;
    ReassembledFrame rebuild(uint32_t slot) noexcept;
    uint32_t lookup(const Key& key, uint64_t now_ns) noexcept;
    FragmentStatus check_bounds(uint32_t slot, const Fragment& frag) const noexcept;
    uint32_t compare_shared(uint32_t slot, const Fragment& frag, bool& conflict) const noexcept;
    void write_new(uint32_t slot, const Fragment& frag) noexcept;
    FragmentStatus take(uint32_t slot, const uint8_t* frame, const Fragment& frag) noexcept;
    bool complete(uint32_t slot) const noexcept;
    /// The stats field counting `status`, or nullptr (Held, NotFragment).
    uint64_t* counter(FragmentStatus status) noexcept;

    Range* ranges(uint32_t slot) noexcept;
    const Range* ranges(uint32_t slot) const noexcept;
    uint32_t* page_table(uint32_t slot) noexcept;
    const uint32_t* page_table(uint32_t slot) const noexcept;
    uint8_t* page(uint32_t index) noexcept;
    const uint8_t* page(uint32_t index) const noexcept;

    IpReassemblyConfig config_;
    uint32_t bucket_mask_ = 0;
    uint32_t page_count_ = 0;
    std::unique_ptr<Datagram[]> datagrams_;
    std::unique_ptr<uint32_t[]> buckets_;
    std::unique_ptr<uint32_t[]> free_slots_;
    uint32_t free_slot_count_ = 0;
    std::unique_ptr<Range[]> ranges_;
    std::unique_ptr<uint32_t[]> page_tables_;
    std::unique_ptr<uint8_t[]> headers_;
    std::unique_ptr<uint8_t[]> pages_;
    std::unique_ptr<uint32_t[]> free_pages_;
    uint32_t free_page_count_ = 0;
    uint32_t pages_in_use_ = 0;
    std::unique_ptr<uint8_t[]> out_;
    /// Age list: oldest first, for expiry and eviction.
    uint32_t oldest_;
    uint32_t newest_;
    size_t in_use_ = 0;
    size_t footprint_ = 0;
    ReassemblyStats stats_;
};

}  // namespace exfiltap::dataplane
