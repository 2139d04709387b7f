// zlib decoders for HTTP bodies (Content-Encoding gzip, x-gzip, deflate) whose memory comes
// from a fixed per-worker pool (DESIGN.md "Detection": zlib's state from per-lcore pools, with
// a cap on concurrent decoders per worker).
//
// Threads: an InflatePool is built and destroyed on the control thread (it allocates every
// slot up front) and then used by exactly one worker; Inflater handles taken from it are used
// on that worker only. Nothing here allocates, locks or logs after the pool's constructor:
// zlib's zalloc/zfree callbacks carve its state and window out of the decoder's own slot.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>

namespace exfiltap::detectors {

class ObjectSink;
struct InflateSlot;

/// The body coding to undo. Deflate accepts both the zlib-wrapped stream RFC 9110 asks for
/// and the raw deflate stream some servers send; the first two bytes decide.
enum class InflateCoding : uint8_t {
    Gzip = 1,
    Deflate = 2,
};

enum class InflateStatus : uint8_t {
    Ok = 0,        // input consumed, more may follow
    Finished = 1,  // the compressed stream ended; later input is ignored
    Capped = 2,    // output cap or ratio cap reached (decompression bomb): decoding stopped
    Failed = 3,    // corrupt stream or not enough slot memory: decoding stopped
};

/// Output goes out in pieces of at most this many bytes (the slot's output buffer).
inline constexpr size_t kInflateChunkBytes = 4096;
/// Per-object output cap: a body never yields more than this many decoded bytes.
inline constexpr uint64_t kInflateMaxOutputBytes = uint64_t{1} << 20;
/// Ratio cap: output above kInflateRatioFloorBytes may not exceed input * this.
inline constexpr uint64_t kInflateMaxRatio = 100;
/// The ratio is judged only past this much output, so small, very compressible bodies
/// (a page of spaces) decode in full.
inline constexpr uint64_t kInflateRatioFloorBytes = 64 * 1024;

using InflateOutputFn = void (*)(void* context, std::span<const uint8_t> data) noexcept;

class InflatePool;

/// A handle to one decoder slot of an InflatePool: one pointer, cheap to keep in a parser.
/// Movable, not copyable; the destructor returns the slot.
class Inflater {
public:
    Inflater() noexcept = default;
    ~Inflater() { end(); }
    Inflater(const Inflater&) = delete;
    Inflater& operator=(const Inflater&) = delete;
    Inflater(Inflater&& other) noexcept : slot_(other.slot_) { other.slot_ = nullptr; }
    Inflater& operator=(Inflater&& other) noexcept;

    /// Takes a slot from `pool` and prepares it for `coding`. False when `pool` is null or
    /// has no free slot (the pool counts it in exhausted()). Ends a decoder already held.
    bool begin(InflatePool* pool, InflateCoding coding) noexcept;

    /// Decodes `in` and hands the output to `out(context, bytes)` in pieces of at most
    /// kInflateChunkBytes. After Finished, Capped or Failed the input is ignored and the
    /// same status comes back. Ok when no decoder is held (nothing to do).
    InflateStatus feed(std::span<const uint8_t> in, InflateOutputFn out, void* context) noexcept;
    /// The same, with the output going to `out.object_data()`.
    InflateStatus feed(std::span<const uint8_t> in, ObjectSink& out) noexcept;

    /// Releases the slot (a truncated stream is simply dropped). Idempotent.
    void end() noexcept;

    bool active() const noexcept { return slot_ != nullptr; }
    /// Compressed bytes consumed and decoded bytes produced since begin() (0 when idle).
    uint64_t input_bytes() const noexcept;
    uint64_t output_bytes() const noexcept;

private:
    InflateSlot* slot_ = nullptr;
};

/// A fixed set of decoder slots. Each slot holds zlib's z_stream, a bump arena for zlib's
/// inflate state (about 7 KiB) and 32 KiB window, and a 4 KiB output buffer.
class InflatePool {
public:
    /// Arena bytes per slot: zlib 1.2.13's inflate_state (7,160 bytes on x86-64) plus the
    /// 32 KiB window for windowBits 15, each rounded to 16 bytes, with 1 KiB to spare.
    /// The unit test measures the high-water mark against it.
    static constexpr size_t kArenaBytes = 7168 + 32768 + 1024;

    /// Allocates `max_decoders` slots (control thread; may throw std::bad_alloc).
    explicit InflatePool(size_t max_decoders);
    ~InflatePool();
    InflatePool(const InflatePool&) = delete;
    InflatePool& operator=(const InflatePool&) = delete;

    /// Bytes of one slot (z_stream, arena, output buffer, bookkeeping).
    static size_t slot_bytes() noexcept;

    size_t capacity() const noexcept { return capacity_; }
    size_t in_use() const noexcept { return capacity_ - free_count_; }
    /// begin() calls refused because every slot was taken.
    uint64_t exhausted() const noexcept { return exhausted_; }
    /// Decoders stopped by the output or ratio cap.
    uint64_t capped() const noexcept { return capped_; }
    /// Decoders stopped by a corrupt stream or a refused zlib allocation.
    uint64_t failed() const noexcept { return failed_; }
    /// The most arena bytes any slot has used so far.
    size_t arena_high_water() const noexcept { return arena_high_water_; }

private:
    friend class Inflater;
    friend struct InflateSlot;

    InflateSlot* acquire() noexcept;
    void release(InflateSlot* slot) noexcept;

    size_t capacity_ = 0;
    size_t free_count_ = 0;
    std::unique_ptr<InflateSlot[]> slots_;
    std::unique_ptr<uint32_t[]> free_;
    uint64_t exhausted_ = 0;
    uint64_t capped_ = 0;
    uint64_t failed_ = 0;
    size_t arena_high_water_ = 0;
};

}  // namespace exfiltap::detectors
