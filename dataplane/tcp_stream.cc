#include "dataplane/tcp_stream.h"

#include <algorithm>
#include <array>
#include <cstring>

namespace exfiltap::dataplane {

SegmentPool::SegmentPool(uint32_t block_count)
    : block_count_(block_count),
      memory_(std::make_unique<uint8_t[]>(size_t{block_count} * kBlockBytes)),
      next_(block_count, kNoBlock) {
    free_.reserve(block_count);
    for (uint32_t i = block_count; i > 0; --i) {
        free_.push_back(i - 1);
    }
}

uint32_t SegmentPool::alloc() noexcept {
    if (free_.empty()) {
        return kNoBlock;
    }
    const uint32_t block = free_.back();
    free_.pop_back();
    next_[block] = kNoBlock;
    ++in_use_;
    return block;
}

void SegmentPool::free(uint32_t block) noexcept {
    // free_ was reserved for every block, so this never allocates.
    free_.push_back(block);
    --in_use_;
}

void TcpReassembler::on_syn(TcpDirection& dir, uint32_t isn) noexcept {
    dir.syn_seen = true;
    dir.isn = isn;
    if (!dir.seq_known) {
        dir.next_seq = isn + 1;
        dir.seq_known = true;
    }
}

void TcpReassembler::on_ack(TcpDirection& dir, uint32_t ack) noexcept {
    if (!dir.ack_known || seq_diff(ack, dir.peer_ack) > 0) {
        dir.peer_ack = ack;
        dir.ack_known = true;
    }
}

bool TcpReassembler::receiver_passed_hole(const TcpDirection& dir) noexcept {
    return dir.held_head != kNoBlock && dir.ack_known
            && seq_diff(dir.peer_ack, header(dir.held_head).seq) > 0;
}

void TcpReassembler::evict_beyond(TcpDirection& dir, uint32_t seq, TcpStreamStats& stats) noexcept {
    uint32_t* link = &dir.held_head;
    while (*link != kNoBlock && seq_diff(header(*link).seq, seq) <= 0) {
        link = &header(*link).next_segment;
    }
    uint32_t head = *link;
    *link = kNoBlock;
    while (head != kNoBlock) {
        const Held held = header(head);
        dir.held_bytes -= held.len;
        stats.evicted_bytes += held.len;
        free_segment(head);
        head = held.next_segment;
    }
}

void TcpReassembler::on_segment(TcpDirection& dir, uint32_t seq, std::span<const uint8_t> payload,
        StreamSink& sink, TcpStreamStats& stats) noexcept {
    if (payload.empty()) {
        return;
    }
    if (!dir.seq_known) {
        // Mid-stream pickup: the stream starts with the first payload we see.
        dir.next_seq = seq;
        dir.seq_known = true;
    }
    for (int attempt = 0; attempt < 2; ++attempt) {
        const int32_t ahead = seq_diff(seq, dir.next_seq);
        if (ahead <= 0) {
            const auto skip = static_cast<uint32_t>(-static_cast<int64_t>(ahead));
            const auto old_len = static_cast<uint32_t>(std::min<size_t>(skip, payload.size()));
            // A keep-alive probe resends one byte below next_seq, and some stacks fill it
            // with garbage: that is not a rewrite of the stream.
            const bool keepalive = payload.size() == 1 && skip == 1;
            if (old_len > 0 && !keepalive
                    && !sink.same_as_delivered(skip, payload.first(old_len))) {
                ++stats.conflicting_overlaps;
            }
            if (skip >= payload.size()) {
                stats.retransmitted_bytes += payload.size();
                return;
            }
            stats.retransmitted_bytes += skip;
            payload = payload.subspan(skip);
            sink.deliver(payload, dir.pending_gap);
            dir.pending_gap = false;
            dir.next_seq += static_cast<uint32_t>(payload.size());
            stats.in_order_bytes += payload.size();
            deliver_held(dir, sink, stats);
            return;
        }
        if (hold(dir, seq, payload, stats)) {
            return;
        }
        if (attempt > 0) {
            break;
        }
        ++stats.memory_exhausted;
        if (receiver_passed_hole(dir)) {
            // The receiver has the missing bytes, so they will not come again: deliver what
            // is held after a gap, which frees the memory, and try this segment once more.
            flush(dir, sink, stats);
        } else {
            // Keep what is nearest the hole; data far ahead of it goes first. Bytes the
            // receiver still waits for are never skipped on the sender's word alone.
            evict_beyond(dir, seq, stats);
        }
    }
    if (dir.ack_known && seq_diff(dir.peer_ack, seq) > 0) {
        // Larger than the budget, and already acknowledged: deliver it after a gap.
        ++stats.gaps;
        stats.gap_bytes += static_cast<uint32_t>(seq_diff(seq, dir.next_seq));
        sink.deliver(payload, true);
        dir.pending_gap = false;
        dir.next_seq = seq + static_cast<uint32_t>(payload.size());
        stats.in_order_bytes += payload.size();
        return;
    }
    stats.evicted_bytes += payload.size();
}

void TcpReassembler::deliver_held(
        TcpDirection& dir, StreamSink& sink, TcpStreamStats& stats) noexcept {
    while (dir.held_head != kNoBlock) {
        const uint32_t head = dir.held_head;
        const Held held = header(head);
        if (seq_diff(held.seq, dir.next_seq) > 0) {
            return;
        }
        const uint32_t end = held.seq + held.len;
        if (seq_diff(end, dir.next_seq) > 0) {
            const auto skip = static_cast<uint32_t>(seq_diff(dir.next_seq, held.seq));
            // Walk the blocks of the segment and hand each piece to the sink.
            uint32_t block = head;
            uint32_t pos = 0;
            uint32_t avail = kFirstBlockPayload;
            uint8_t* base = pool_.data(block) + sizeof(Held);
            bool gap = dir.pending_gap;
            while (pos < held.len && block != kNoBlock) {
                const uint32_t chunk = std::min(avail, held.len - pos);
                if (pos + chunk > skip) {
                    const uint32_t from = skip > pos ? skip - pos : 0;
                    sink.deliver({base + from, chunk - from}, gap);
                    gap = false;
                }
                pos += chunk;
                block = pool_.next(block);
                if (block != kNoBlock) {
                    base = pool_.data(block);
                    avail = SegmentPool::kBlockBytes;
                }
            }
            dir.pending_gap = false;
            stats.in_order_bytes += held.len - skip;
            dir.next_seq = end;
        }
        dir.held_head = held.next_segment;
        dir.held_bytes -= held.len;
        free_segment(head);
    }
}

void TcpReassembler::flush(TcpDirection& dir, StreamSink& sink, TcpStreamStats& stats) noexcept {
    while (dir.held_head != kNoBlock) {
        const Held& held = header(dir.held_head);
        const int32_t ahead = seq_diff(held.seq, dir.next_seq);
        if (ahead > 0) {
            ++stats.gaps;
            stats.gap_bytes += static_cast<uint32_t>(ahead);
            dir.pending_gap = true;
            dir.next_seq = held.seq;
        }
        deliver_held(dir, sink, stats);
    }
}

void TcpReassembler::discard(TcpDirection& dir) noexcept {
    while (dir.held_head != kNoBlock) {
        const uint32_t head = dir.held_head;
        dir.held_head = header(head).next_segment;
        free_segment(head);
    }
    dir.held_bytes = 0;
}

void TcpReassembler::free_segment(uint32_t head) noexcept {
    uint32_t block = head;
    while (block != kNoBlock) {
        const uint32_t next = pool_.next(block);
        pool_.free(block);
        block = next;
    }
}

void TcpReassembler::copy_out(uint32_t head, uint32_t from, uint32_t len, uint8_t* out) noexcept {
    uint32_t block = head;
    uint32_t pos = 0;
    uint32_t avail = kFirstBlockPayload;
    const uint8_t* base = pool_.data(block) + sizeof(Held);
    uint32_t copied = 0;
    while (copied < len && block != kNoBlock) {
        if (from < pos + avail) {
            const uint32_t off = from > pos ? from - pos : 0;
            const uint32_t n = std::min(avail - off, len - copied);
            std::memcpy(out + copied, base + off, n);
            copied += n;
            from += n;
        }
        pos += avail;
        block = pool_.next(block);
        if (block != kNoBlock) {
            base = pool_.data(block);
            avail = SegmentPool::kBlockBytes;
        }
    }
}

void TcpReassembler::compare_overlap(uint32_t head, uint32_t seq, std::span<const uint8_t> payload,
        TcpStreamStats& stats) noexcept {
    const Held& held = header(head);
    const uint32_t from_seq = seq_diff(seq, held.seq) > 0 ? seq : held.seq;
    const uint32_t end_new = seq + static_cast<uint32_t>(payload.size());
    const uint32_t end_old = held.seq + held.len;
    const uint32_t to_seq = seq_diff(end_new, end_old) < 0 ? end_new : end_old;
    if (seq_diff(to_seq, from_seq) <= 0) {
        return;
    }
    std::array<uint8_t, 256> old_bytes{};
    uint32_t at = from_seq;
    while (seq_diff(to_seq, at) > 0) {
        const uint32_t n = std::min<uint32_t>(old_bytes.size(), to_seq - at);
        copy_out(head, at - held.seq, n, old_bytes.data());
        if (std::memcmp(old_bytes.data(), payload.data() + (at - seq), n) != 0) {
            ++stats.conflicting_overlaps;
            return;
        }
        at += n;
    }
}

bool TcpReassembler::hold(TcpDirection& dir, uint32_t seq, std::span<const uint8_t> payload,
        TcpStreamStats& stats) noexcept {
    // Walk the sorted held list and store only the parts of [seq, end) no held segment has:
    // the first copy of a byte wins.
    const uint32_t end = seq + static_cast<uint32_t>(payload.size());
    uint32_t cur = seq;
    uint32_t* link = &dir.held_head;
    while (seq_diff(end, cur) > 0) {
        const uint32_t next = *link;
        uint32_t piece_end = end;
        if (next != kNoBlock) {
            const Held& held = header(next);
            const uint32_t held_end = held.seq + held.len;
            if (seq_diff(held_end, cur) <= 0) {
                link = &header(next).next_segment;
                continue;
            }
            if (seq_diff(held.seq, cur) <= 0) {
                compare_overlap(next, seq, payload, stats);
                cur = held_end;
                link = &header(next).next_segment;
                continue;
            }
            if (seq_diff(held.seq, end) < 0) {
                compare_overlap(next, seq, payload, stats);
                piece_end = held.seq;
            }
        }
        const uint32_t len = piece_end - cur;
        if (dir.held_bytes + len > direction_budget_) {
            return false;
        }
        // Allocate the blocks first so a failure leaves the list untouched.
        const uint32_t blocks_needed = len <= kFirstBlockPayload ? 1
                                                                 : 1
                        + (len - kFirstBlockPayload + SegmentPool::kBlockBytes - 1)
                                / SegmentPool::kBlockBytes;
        if (pool_.capacity() - pool_.in_use() < blocks_needed) {
            return false;
        }
        const uint32_t head = pool_.alloc();
        uint32_t block = head;
        const uint8_t* src = payload.data() + (cur - seq);
        uint32_t copied = std::min(len, kFirstBlockPayload);
        std::memcpy(pool_.data(head) + sizeof(Held), src, copied);
        while (copied < len) {
            const uint32_t more = pool_.alloc();
            pool_.next(block) = more;
            block = more;
            const uint32_t n = std::min(len - copied, SegmentPool::kBlockBytes);
            std::memcpy(pool_.data(block), src + copied, n);
            copied += n;
        }
        header(head) = Held{cur, len, next};
        *link = head;
        link = &header(head).next_segment;
        dir.held_bytes += len;
        ++stats.held_segments;
        cur = piece_end;
    }
    return true;
}

}  // namespace exfiltap::dataplane
