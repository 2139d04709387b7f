#include "dataplane/flight_recorder.h"

#include <algorithm>
#include <bit>
#include <cstdint>
#include <new>

namespace exfiltap::dataplane {

// Layout. Records are never split at the ring's end: the buffer has one largest record of
// slack past `capacity_`, and a record starting near the end runs on into it. A record at
// logical position p lives at ring_[p & mask_]; a later record at q writes the bytes
// ring_[q & mask_ ...], which can reach p's bytes only once q + its size passes
// p + capacity_. So "p + capacity_ >= head_" is exactly "p's bytes are intact", and record()
// drops the oldest records until the new end satisfies it for the oldest kept.

std::unique_ptr<FlightRecorder> FlightRecorder::create(size_t ring_bytes, uint32_t snap_bytes) {
    if (ring_bytes < kMinRingBytes || snap_bytes == 0 || snap_bytes > kMaxSnapBytes) {
        return nullptr;
    }
    const size_t capacity = std::bit_floor(ring_bytes);
    return std::unique_ptr<FlightRecorder>(new (std::nothrow) FlightRecorder(capacity, snap_bytes));
}

FlightRecorder::FlightRecorder(size_t capacity, uint32_t snap_bytes)
    : ring_(new uint8_t[capacity + record_size(snap_bytes)]()),
      capacity_(capacity),
      mask_(capacity - 1),
      snap_bytes_(snap_bytes) {}

void FlightRecorder::drop_oldest() noexcept {
    RecordHeader header;
    std::memcpy(&header, ring_.get() + (tail_ & mask_), sizeof(header));
    tail_ += record_size(header.captured_len);
    stats_.overwritten += 1;
}

CopyResult FlightRecorder::copy_flows(
        std::span<const uint64_t> flow_ids, std::span<uint8_t> out) const noexcept {
    CopyResult result;
    CopyCursor cursor;
    copy_flows_step(flow_ids, out, cursor, result, SIZE_MAX);
    return result;
}

bool FlightRecorder::copy_flows_step(std::span<const uint64_t> flow_ids, std::span<uint8_t> out,
        CopyCursor& cursor, CopyResult& result, size_t walk_bytes) const noexcept {
    if (!cursor.started) {
        cursor.started = true;
        cursor.position = tail_;
        cursor.end = head_;
    }
    if (cursor.position < tail_) {
        // Newer packets took the ring past the copy: what they overwrote is gone. tail_ is
        // a record boundary, so the walk goes on from there.
        result.overrun_bytes += tail_ - cursor.position;
        cursor.position = tail_;
    }
    if (flow_ids.empty()) {
        cursor.position = std::max(cursor.position, cursor.end);
        return true;
    }
    const uint64_t stop = walk_bytes >= cursor.end - std::min(cursor.position, cursor.end)
            ? cursor.end
            : cursor.position + walk_bytes;
    uint64_t p = cursor.position;
    while (p < stop) {
        const uint8_t* at = ring_.get() + (p & mask_);
        RecordHeader header;
        std::memcpy(&header, at, sizeof(header));
        const size_t size = record_size(header.captured_len);
        p += size;
        if (!std::binary_search(flow_ids.begin(), flow_ids.end(), header.flow_id)) {
            continue;
        }
        if (out.size() - result.bytes < size) {
            result.truncated += 1;
            continue;
        }
        std::memcpy(out.data() + result.bytes, at, size);
        result.bytes += size;
        result.records += 1;
    }
    cursor.position = p;
    return p >= cursor.end;
}

bool RecordReader::next(RecordHeader& header, std::span<const uint8_t>& frame) noexcept {
    if (bytes_.size() - offset_ < sizeof(RecordHeader)) {
        return false;
    }
    std::memcpy(&header, bytes_.data() + offset_, sizeof(header));
    const size_t size = record_size(header.captured_len);
    if (bytes_.size() - offset_ < size) {
        return false;
    }
    frame = bytes_.subspan(offset_ + sizeof(RecordHeader), header.captured_len);
    offset_ += size;
    return true;
}

}  // namespace exfiltap::dataplane
