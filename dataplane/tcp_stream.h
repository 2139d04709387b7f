// TCP byte-stream order for one flow direction: in-order bytes go straight to the content
// stage; out-of-order payload is copied into fixed-size blocks of a per-worker SegmentPool
// (rx mbufs are never held) within a per-direction and a per-worker budget. The first copy
// of a byte is what the stream keeps; a later copy with different bytes is counted as a
// conflicting overlap. Pure code (no rte_ headers): unit-tested without EAL.
//
// Thread: the owning worker only. No allocation after construction, noexcept.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <vector>

namespace exfiltap::dataplane {

inline constexpr uint32_t kNoBlock = UINT32_MAX;

/// Preallocated blocks for held out-of-order segments, one pool per worker.
class SegmentPool {
public:
    static constexpr uint32_t kBlockBytes = 2048;

    explicit SegmentPool(uint32_t block_count);

    /// A block or kNoBlock when the pool is empty.
    uint32_t alloc() noexcept;
    void free(uint32_t block) noexcept;
    uint8_t* data(uint32_t block) noexcept { return memory_.get() + size_t{block} * kBlockBytes; }
    uint32_t& next(uint32_t block) noexcept { return next_[block]; }
    uint32_t in_use() const noexcept { return in_use_; }
    uint32_t capacity() const noexcept { return block_count_; }

private:
    uint32_t block_count_;
    std::unique_ptr<uint8_t[]> memory_;
    std::vector<uint32_t> next_;
    std::vector<uint32_t> free_;
    uint32_t in_use_ = 0;
};

/// What happened to a segment, for counters.
struct TcpStreamStats {
    uint64_t in_order_bytes = 0;
    uint64_t held_segments = 0;
    uint64_t retransmitted_bytes = 0;
    uint64_t conflicting_overlaps = 0;
    uint64_t gaps = 0;
    uint64_t gap_bytes = 0;
    uint64_t memory_exhausted = 0;
    /// Held or arriving bytes given up for lack of memory (never inspected).
    uint64_t evicted_bytes = 0;
};

/// Receives in-order bytes. `gap_before` is true when bytes were lost just before them.
class StreamSink {
public:
    virtual void deliver(std::span<const uint8_t> bytes, bool gap_before) noexcept = 0;

    /// A retransmission carries `bytes` that start `back` bytes before the end of what was
    /// delivered. False when the sink still has those bytes and they differ (a conflicting
    /// overlap). Sinks that keep nothing answer true.
    virtual bool same_as_delivered(uint32_t back, std::span<const uint8_t> bytes) noexcept {
        (void)back;
        (void)bytes;
        return true;
    }

protected:
    ~StreamSink() = default;
};

/// One direction's order state. Lives inside the flow entry.
struct TcpDirection {
    uint32_t next_seq = 0;
    uint32_t isn = 0;
    /// Highest acknowledgement the other side sent for this direction's bytes.
    uint32_t peer_ack = 0;
    /// Head of the held segment list (sorted by seq), as a SegmentPool block.
    uint32_t held_head = kNoBlock;
    uint32_t held_bytes = 0;
    bool seq_known = false;
    bool syn_seen = false;
    bool ack_known = false;
    bool fin_seen = false;
    bool pending_gap = false;
};

/// The order logic. One per worker; the direction state is passed per call.
class TcpReassembler {
public:
    TcpReassembler(SegmentPool& pool, uint32_t direction_budget_bytes) noexcept
        : pool_(pool), direction_budget_(direction_budget_bytes) {}

    /// A SYN (or SYN-ACK) with sequence `isn`: data starts at isn + 1.
    static void on_syn(TcpDirection& dir, uint32_t isn) noexcept;

    /// The other side acknowledged up to `ack` of this direction.
    static void on_ack(TcpDirection& dir, uint32_t ack) noexcept;

    /// A segment carrying `payload` at sequence `seq`. In-order bytes and held bytes that
    /// become in-order are passed to `sink`.
    void on_segment(TcpDirection& dir, uint32_t seq, std::span<const uint8_t> payload,
            StreamSink& sink, TcpStreamStats& stats) noexcept;

    /// The flow is ending (or the direction's budget ran out): held data is delivered in
    /// order with gaps marked, and its blocks are freed.
    void flush(TcpDirection& dir, StreamSink& sink, TcpStreamStats& stats) noexcept;

    /// Frees held blocks without delivering (flow torn down without inspection).
    void discard(TcpDirection& dir) noexcept;

private:
    // Held segment header, at the start of each segment's first block.
    struct Held {
        uint32_t seq;
        uint32_t len;
        uint32_t next_segment;
    };
    static constexpr uint32_t kFirstBlockPayload = SegmentPool::kBlockBytes - sizeof(Held);

    void deliver_held(TcpDirection& dir, StreamSink& sink, TcpStreamStats& stats) noexcept;
    /// Frees held segments that start after `seq` (the farthest ahead go first).
    void evict_beyond(TcpDirection& dir, uint32_t seq, TcpStreamStats& stats) noexcept;
    /// The receiver acknowledged bytes past the start of the held data: the hole before
    /// it was delivered and the tap did not see it.
    bool receiver_passed_hole(const TcpDirection& dir) noexcept;
    bool hold(TcpDirection& dir, uint32_t seq, std::span<const uint8_t> payload,
            TcpStreamStats& stats) noexcept;
    void copy_out(uint32_t head, uint32_t from, uint32_t len, uint8_t* out) noexcept;
    void free_segment(uint32_t head) noexcept;
    void compare_overlap(uint32_t head, uint32_t seq, std::span<const uint8_t> payload,
            TcpStreamStats& stats) noexcept;
    Held& header(uint32_t head) noexcept { return *reinterpret_cast<Held*>(pool_.data(head)); }

    SegmentPool& pool_;
    uint32_t direction_budget_;
};

/// Sequence arithmetic modulo 2^32.
inline int32_t seq_diff(uint32_t a, uint32_t b) noexcept {
    return static_cast<int32_t>(a - b);
}

}  // namespace exfiltap::dataplane
