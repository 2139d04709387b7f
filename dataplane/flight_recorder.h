// The per-worker flight recorder (DESIGN.md "Outputs", Evidence): a bounded byte ring of the
// most recent packets a worker handled, each with its flow id, packet time and lengths, so
// that when an incident opens the packets of its flows, including those from before it
// opened, can be copied out and written as pcapng by a control thread.
//
// Threads: record(), copy_flows() and copy_flows_step() run on the owning worker only; create() and
// the RecordView helpers run anywhere. No DPDK: tested without EAL.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <span>
#include <vector>

namespace exfiltap::dataplane {

/// Header of one record, in the ring and in a copy-out buffer; `captured_len` bytes of the
/// frame follow, then padding to a multiple of 8 bytes.
struct RecordHeader {
    uint64_t flow_id = 0;
    uint64_t time_ns = 0;
    uint32_t original_len = 0;
    uint32_t captured_len = 0;
};
static_assert(sizeof(RecordHeader) == 24);

/// Bytes a record with `captured` frame bytes takes (header, frame, padding to 8).
constexpr size_t record_size(uint32_t captured) noexcept {
    return sizeof(RecordHeader) + ((size_t{captured} + 7) & ~size_t{7});
}

/// What one copy-out produced (copy_flows()).
struct CopyResult {
    uint64_t bytes = 0;      // bytes written into the buffer
    uint32_t records = 0;    // records written
    uint32_t truncated = 0;  // matching records left out: the buffer was full
    /// Ring bytes overwritten by newer packets before a copy in steps reached them.
    uint64_t overrun_bytes = 0;
};

/// Where a copy-out in steps (copy_flows_step()) stands between two calls.
struct CopyCursor {
    bool started = false;
    uint64_t position = 0;  // logical position of the next record to look at
    uint64_t end = 0;       // the newest record's end when the copy began
};

/// Counters of one recorder, written only by its worker.
struct RecorderStats {
    uint64_t recorded_packets = 0;
    uint64_t recorded_bytes = 0;  // frame bytes kept (captured lengths)
    uint64_t overwritten = 0;     // records lost to newer ones
};

class FlightRecorder {
public:
    /// Smallest ring accepted: room for one record of the largest snap length.
    static constexpr size_t kMinRingBytes = 128 * 1024;
    /// Largest snap length accepted (jumbo frames).
    static constexpr uint32_t kMaxSnapBytes = 65535;

    /// A ring of the largest power of two not above `ring_bytes` (at least kMinRingBytes)
    /// keeping up to `snap_bytes` of each frame. Allocates once (control thread, before the
    /// worker starts); null when the sizes are out of range.
    static std::unique_ptr<FlightRecorder> create(size_t ring_bytes, uint32_t snap_bytes);

    /// Appends one packet; the oldest records give way. Worker only; one header write, one
    /// copy, no division, no allocation. Cost: the copy of min(len, snap) bytes.
    void record(uint64_t flow_id, uint64_t time_ns, const uint8_t* frame, uint32_t len) noexcept {
        const uint32_t captured = len < snap_bytes_ ? len : snap_bytes_;
        const size_t size = record_size(captured);
        const uint64_t end = head_ + size;
        // Records older than one ring length behind the new end are overwritten (the slack
        // past the ring's end keeps every record contiguous, see flight_recorder.cc).
        while (tail_ + capacity_ < end) {
            drop_oldest();
        }
        uint8_t* at = ring_.get() + (head_ & mask_);
        const RecordHeader header{flow_id, time_ns, len, captured};
        std::memcpy(at, &header, sizeof(header));
        std::memcpy(at + sizeof(header), frame, captured);
        head_ = end;
        stats_.recorded_packets += 1;
        stats_.recorded_bytes += captured;
    }

    /// Copies every record still held whose flow id is in `flow_ids` (sorted ascending)
    /// into `out`, oldest first, as header + frame + padding; records that do not fit are
    /// counted as truncated. Worker only; walks the whole ring.
    CopyResult copy_flows(
            std::span<const uint64_t> flow_ids, std::span<uint8_t> out) const noexcept;

    /// copy_flows() in steps, so a worker never stops for a whole ring: each call walks about
    /// `walk_bytes` of the ring from `cursor` and adds to `result`; true when the copy has
    /// reached the records that were newest at its first call. Packets recorded between two
    /// calls may overwrite records the copy has not reached: they are skipped and counted in
    /// `result.overrun_bytes`. Worker only.
    bool copy_flows_step(std::span<const uint64_t> flow_ids, std::span<uint8_t> out,
            CopyCursor& cursor, CopyResult& result, size_t walk_bytes) const noexcept;

    const RecorderStats& stats() const noexcept { return stats_; }
    size_t capacity() const noexcept { return capacity_; }
    uint32_t snap_bytes() const noexcept { return snap_bytes_; }
    /// Bytes of records held now (at most capacity()).
    size_t held_bytes() const noexcept { return static_cast<size_t>(head_ - tail_); }

private:
    FlightRecorder(size_t capacity, uint32_t snap_bytes);
    void drop_oldest() noexcept;

    std::unique_ptr<uint8_t[]> ring_;
    size_t capacity_ = 0;  // a power of two
    uint64_t mask_ = 0;
    uint32_t snap_bytes_ = 0;
    // Logical positions (bytes since start): the oldest record held and the end of the
    // newest. The record at logical p sits at ring_[p & mask_], contiguous.
    uint64_t tail_ = 0;
    uint64_t head_ = 0;
    RecorderStats stats_;
};

/// A copy-out request for one worker (DESIGN.md "Outputs", Evidence). The control thread
/// allocates it with its buffer, hands its pointer to the worker (Worker::request_records())
/// and owns it throughout: it frees it only once `done` is set or the worker has stopped.
/// The worker fills `result` and the buffer, then sets `done` (release); it never allocates.
struct RecorderRequest {
    std::vector<uint64_t> flow_ids;  // sorted ascending
    std::unique_ptr<uint8_t[]> buffer;
    size_t buffer_bytes = 0;
    CopyResult result;
    CopyCursor cursor;  // the worker's, while it copies in steps
    /// Set by the worker when result and buffer are final (acquire to read them).
    std::atomic<bool> done{false};

    std::span<const uint8_t> records() const noexcept {
        return {buffer.get(), static_cast<size_t>(result.bytes)};
    }
};

/// Walks the records of a copy-out buffer (control side). Stops at the end or at the first
/// record that does not fit the bytes left.
class RecordReader {
public:
    explicit RecordReader(std::span<const uint8_t> bytes) noexcept : bytes_(bytes) {}
    /// The next record: its header and frame bytes; false at the end.
    bool next(RecordHeader& header, std::span<const uint8_t>& frame) noexcept;

private:
    std::span<const uint8_t> bytes_;
    size_t offset_ = 0;
};

}  // namespace exfiltap::dataplane
