// The content detector: a compiled Hyperscan streaming database of the content classes, and
// per flow direction a ContentStream that scans in-order bytes and reports validated values.
//
// Threads: PatternDatabase::compile() runs on the control thread (slow). ContentStream and
// StreamPool are used by exactly one worker; their scan paths never allocate, lock or log.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "common/result.h"
#include "detectors/content_types.h"

struct hs_database;
struct hs_scratch;
struct hs_stream;

namespace exfiltap::detectors {

/// Bytes of each direction's stream kept so that a validator can read a value that
/// straddles scan calls (packets).
inline constexpr size_t kHistoryBytes = 128;

/// An immutable compiled database. Shared by workers; freed when the last reference goes.
class PatternDatabase {
public:
    /// Compiles the patterns of every enabled class in `config`. Errors name the pattern.
    static Result<std::shared_ptr<const PatternDatabase>> compile(const ContentConfig& config);

    ~PatternDatabase();
    PatternDatabase(const PatternDatabase&) = delete;
    PatternDatabase& operator=(const PatternDatabase&) = delete;
    PatternDatabase(PatternDatabase&&) = delete;
    PatternDatabase& operator=(PatternDatabase&&) = delete;

    hs_database* database() const { return db_; }
    /// Size of one Hyperscan stream state of this database, in bytes.
    size_t stream_size() const { return stream_size_; }
    const ContentConfig& config() const { return config_; }

    /// Allocates a scratch for this database (control thread). Caller frees it with
    /// free_scratch().
    Result<hs_scratch*> alloc_scratch() const;
    static void free_scratch(hs_scratch* scratch) noexcept;

    /// Pattern id layout: what a Hyperscan match id means.
    struct PatternInfo {
        ContentClass cls;
        bool keyword;  // a class keyword, not a value
        bool card;     // value pattern read by extract_card (else extract_ssn)
    };
    const PatternInfo& pattern(unsigned id) const { return patterns_[id]; }

private:
    PatternDatabase() = default;
    hs_database* db_ = nullptr;
    size_t stream_size_ = 0;
    ContentConfig config_;
    std::vector<PatternInfo> patterns_;
};

/// Fixed-size blocks for Hyperscan stream state, one pool per worker. Installed process-wide
/// as Hyperscan's stream allocator; the allocator finds the calling thread's pool through a
/// thread-local pointer (set with bind_to_this_thread()). When the pool is empty the
/// allocation fails, hs_open_stream() fails and the direction goes on uninspected (counted).
class StreamPool {
public:
    /// `block_bytes` must be at least the largest stream_size() of any live database.
    StreamPool(size_t block_count, size_t block_bytes);
    ~StreamPool();
    StreamPool(const StreamPool&) = delete;
    StreamPool& operator=(const StreamPool&) = delete;
    StreamPool(StreamPool&&) = delete;
    StreamPool& operator=(StreamPool&&) = delete;

    /// Installs the process-wide Hyperscan stream allocator (idempotent, control thread,
    /// before any worker scans). Threads without a bound pool fall back to malloc.
    static void install_hyperscan_allocator() noexcept;
    /// Makes this pool the one the calling thread's stream allocations come from.
    void bind_to_this_thread() noexcept;

    void* allocate(size_t bytes) noexcept;
    void release(void* block) noexcept;
    size_t in_use() const noexcept { return in_use_; }
    size_t capacity() const noexcept { return block_count_; }
    uint64_t exhausted() const noexcept { return exhausted_; }

private:
    size_t block_count_;
    size_t block_bytes_;
    std::unique_ptr<unsigned char[]> memory_;
    std::vector<void*> free_;
    size_t in_use_ = 0;
    uint64_t exhausted_ = 0;
};

/// Where a scan puts its findings: a fixed array owned by the worker for one burst.
struct FindingSink {
    static constexpr size_t kCapacity = 64;
    std::array<Finding, kCapacity> items{};
    size_t count = 0;
    uint64_t overflow = 0;  // findings lost because the array was full (counted)

    void push(const Finding& finding) noexcept {
        if (count < kCapacity) {
            items[count++] = finding;
        } else {
            ++overflow;
        }
    }
    void clear() noexcept {
        count = 0;
        overflow = 0;
    }
};

/// Per flow direction scanning state. Not copyable; lives in the worker's payload pool.
class ContentStream {
public:
    static constexpr size_t kMaxDistinct = 16;

    ContentStream() = default;
    ~ContentStream();
    ContentStream(const ContentStream&) = delete;
    ContentStream& operator=(const ContentStream&) = delete;
    ContentStream(ContentStream&&) = delete;
    ContentStream& operator=(ContentStream&&) = delete;

    /// Opens the Hyperscan stream on `db` (which must outlive the stream). False when stream
    /// memory is exhausted; the caller counts it and leaves the direction uninspected.
    bool open(const PatternDatabase& db) noexcept;
    bool is_open() const noexcept { return stream_ != nullptr; }

    /// Scans the next in-order bytes of the direction. Validated values not seen before in
    /// this direction go to `sink`. `gap_before` says bytes were lost before `data`: values
    /// are never joined across a gap.
    void scan(std::span<const uint8_t> data, hs_scratch* scratch, FindingSink& sink,
            bool gap_before = false) noexcept;

    /// Ends the stream: end-of-data matches are reported, the Hyperscan stream is freed.
    void close(hs_scratch* scratch, FindingSink& sink) noexcept;

    uint64_t scanned_bytes() const noexcept { return offset_; }

private:
    friend struct ScanContext;
    const PatternDatabase* db_ = nullptr;
    hs_stream* stream_ = nullptr;
    uint64_t offset_ = 0;  // stream offset of the byte after the last one scanned
    std::array<uint8_t, kHistoryBytes> history_{};
    uint32_t history_len_ = 0;
    uint64_t gap_offset_ = UINT64_MAX;  // offset of the first byte after the latest gap
    std::array<uint64_t, kContentClassCount> last_keyword_end_{};
    std::array<bool, kContentClassCount> keyword_seen_{};
    std::array<uint32_t, kContentClassCount> distinct_{};
    std::array<uint64_t, kMaxDistinct> seen_hashes_{};
    uint32_t seen_count_ = 0;
};

}  // namespace exfiltap::detectors
