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
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "detectors/content_patterns.h"
#include "detectors/content_types.h"
#include "detectors/validators.h"

struct hs_database;
struct hs_scratch;
struct hs_stream;

namespace exfiltap::detectors {

class EdmStream;
class EdmStatePool;

/// Bytes of each direction's stream kept so that a validator can read a value that
/// straddles scan calls (packets).
inline constexpr size_t kHistoryBytes = 128;

/// An immutable compiled database. Shared by workers; freed when the last reference goes.
///
/// Two Hyperscan streaming databases: the main one (built-in classes, keywords, configured
/// markers and custom keywords; no start-of-match flag anywhere) and, only when custom
/// regexes are configured, a second one with HS_FLAG_SOM_LEFTMOST (horizon "small": starts
/// are exact within 64 KiB of the end, far more than a value can span) so that a custom
/// regex's value is the text it matched.
class PatternDatabase {
public:
    /// Compiles the patterns of every enabled class and custom rule in `config` (control
    /// thread). Errors name the pattern; a custom regex Hyperscan refuses is reported as
    /// "SOURCE: content.custom[i].regex: Hyperscan refuses '<pattern>': <reason>", one line
    /// per refused regex (SOURCE is CustomRule::source, "FILE:LINE").
    static Result<std::shared_ptr<const PatternDatabase>> compile(const ContentConfig& config);

    ~PatternDatabase();
    PatternDatabase(const PatternDatabase&) = delete;
    PatternDatabase& operator=(const PatternDatabase&) = delete;
    PatternDatabase(PatternDatabase&&) = delete;
    PatternDatabase& operator=(PatternDatabase&&) = delete;

    /// The main database; null when only custom regexes are configured.
    hs_database* database() const { return db_; }
    /// The start-of-match database of the custom regexes; null when there are none.
    hs_database* som_database() const { return som_db_; }
    /// Largest Hyperscan stream state of this database's streams, in bytes. A direction
    /// takes streams_per_direction() such blocks from a StreamPool.
    size_t stream_size() const { return stream_size_; }
    /// Hyperscan streams a ContentStream opens: 1, or 2 with custom regexes.
    size_t streams_per_direction() const {
        return (db_ != nullptr ? 1 : 0) + (som_db_ != nullptr ? 1 : 0);
    }
    const ContentConfig& config() const { return config_; }
    /// Name of custom rule `rule` (Finding::rule, 1-based); "" for 0 or an unknown rule.
    std::string_view rule_name(uint16_t rule) const noexcept { return config_.rule_name(rule); }

    /// Allocates a scratch usable with both databases (control thread). Caller frees it
    /// with free_scratch().
    Result<hs_scratch*> alloc_scratch() const;
    /// Grows `scratch` (null: allocates one) so that it also serves this database's
    /// streams, as hs_alloc_scratch() does for one database (control thread; a reload
    /// grows one prototype for every live database). On error `scratch` is left usable for
    /// what it served before.
    Status grow_scratch(hs_scratch*& scratch) const;
    static void free_scratch(hs_scratch* scratch) noexcept;

    /// What a match id of the main database means.
    const PatternInfo& pattern(unsigned id) const { return patterns_[id]; }
    /// Id of the card value pattern with a terminator (UINT32_MAX: payment cards are off):
    /// the match callback drops its matches the card tracker settled ahead.
    unsigned card_run_id() const { return card_run_id_; }
    /// What a match id of the start-of-match database means.
    const PatternInfo& som_pattern(unsigned id) const { return som_patterns_[id]; }
    /// Text of a Literal pattern (PatternInfo::literal).
    std::string_view literal(uint16_t index) const { return literals_[index]; }
    /// Whether findings of `cls` wait for a keyword after them.
    bool has_keywords(ContentClass cls) const { return has_keywords_[static_cast<size_t>(cls)]; }

private:
    PatternDatabase() = default;
    hs_database* db_ = nullptr;
    hs_database* som_db_ = nullptr;
    size_t stream_size_ = 0;
    ContentConfig config_;
    std::vector<PatternInfo> patterns_;
    unsigned card_run_id_ = UINT32_MAX;
    std::vector<PatternInfo> som_patterns_;
    std::vector<std::string> literals_;
    std::array<bool, kContentClassCount> has_keywords_{};
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
///
/// A validated value is reported at once when a class keyword ended within
/// keyword_window_bytes before it. Otherwise it waits in a small pending list until a class
/// keyword ends within the window after it (High), the stream has moved the window past it
/// (Low), or close(); so findings can come out later than the byte that completed them.
/// A private key header also waits for the first characters of its body, and a custom
/// regex match for the stream to move kSettleBytes past it (a longer match with the same
/// start replaces it).
class ContentStream {
public:
    static constexpr size_t kMaxDistinct = 16;
    /// Findings waiting per direction; when full, the oldest is reported as it stands.
    static constexpr size_t kMaxPending = 8;
    /// Bytes after a custom regex match during which a longer match with the same start
    /// replaces it.
    static constexpr uint64_t kSettleBytes = 64;
    /// Bytes after a source_code or document finding during which the mark that makes it
    /// High (a licence header or project name; a classification label) may still come: a
    /// PDF's metadata often follows its pages.
    static constexpr uint64_t kMarkWindowBytes = uint64_t{1} << 20;
    /// Bytes without a code token after which the count of code tokens starts again.
    static constexpr uint64_t kCodeGapBytes = 2048;
    /// Characters of the organisation or project name a source_code finding carries.
    static constexpr size_t kMarkChars = 24;

    ContentStream() = default;
    ~ContentStream();
    ContentStream(const ContentStream&) = delete;
    ContentStream& operator=(const ContentStream&) = delete;
    ContentStream(ContentStream&&) = delete;
    ContentStream& operator=(ContentStream&&) = delete;

    /// Opens the Hyperscan stream(s) on `db` (which must outlive the stream). False when
    /// stream memory is exhausted; the caller counts it and leaves the direction uninspected.
    /// `edm_only`: no Hyperscan stream, exact data match alone (false when it cannot run).
    bool open(const PatternDatabase& db, bool edm_only = false) noexcept;
    bool is_open() const noexcept { return open_; }
    /// The last bytes scanned, oldest first: at most kHistoryBytes, and only those since the
    /// latest gap. The worker judges retransmissions against them.
    std::span<const uint8_t> history() const noexcept { return {history_.data(), history_len_}; }
    /// Names the stream for exact-data-match findings (Finding::origin): 0, the default, for
    /// a flow direction's own bytes, a decoded object's number otherwise. After open().
    void set_origin(uint32_t origin) noexcept;
    /// Asks for the lines every scan() reads (the stream's fields, its history, the pending
    /// count and the EDM state pointer), a little ahead of the call.
    void prefetch_state() const noexcept {
        prefetch_lines(this, &jwt_header_end_ + 1);
        __builtin_prefetch(&pending_count_);
        __builtin_prefetch(&edm_);
    }

    /// Scans the next in-order bytes of the direction. Validated values not seen before in
    /// this direction go to `sink` (now or on a later call). `gap_before` says bytes were
    /// lost before `data`: values are never joined across a gap.
    void scan(std::span<const uint8_t> data, hs_scratch* scratch, FindingSink& sink,
            bool gap_before = false) noexcept;

    /// Ends the stream: end-of-data matches and every waiting finding are reported, the
    /// Hyperscan streams are freed.
    void close(hs_scratch* scratch, FindingSink& sink) noexcept;

    uint64_t scanned_bytes() const noexcept { return offset_; }
    /// Findings currently waiting (tests).
    size_t pending() const noexcept { return pending_count_; }

private:
    friend struct ScanContext;

    struct Pending {
        Finding finding;
        uint64_t start = 0;   // custom regex: stream offset of the match start
        uint8_t wait = 0;     // kWait* bits still open
        uint8_t key_len = 0;  // private key: characters of the type in finding.value
    };

    void close_streams() noexcept;
    void release_edm() noexcept;
    // Prefetches the lines a finding touches: keyword and dedup state, the card tracker,
    // the next pending slot.
    void prefetch_finding_state() const noexcept;
    // Prefetches every cache line of the bytes [begin, end).
    static void prefetch_lines(const void* begin, const void* end) noexcept {
        constexpr uintptr_t kLine = 64;
        const auto last = reinterpret_cast<uintptr_t>(end) - 1;
        for (auto line = reinterpret_cast<uintptr_t>(begin) & ~(kLine - 1); line <= last;
                line += kLine) {
            __builtin_prefetch(reinterpret_cast<const void*>(line));
        }
    }

    const PatternDatabase* db_ = nullptr;
    hs_stream* stream_ = nullptr;
    hs_stream* som_stream_ = nullptr;
    bool open_ = false;
    uint64_t offset_ = 0;  // stream offset of the byte after the last one scanned
    std::array<uint8_t, kHistoryBytes> history_{};
    uint32_t history_len_ = 0;
    uint64_t gap_offset_ = UINT64_MAX;      // offset of the first byte after the latest gap
    uint64_t jwt_header_end_ = UINT64_MAX;  // end of the last validated JWT header mark
    std::array<uint64_t, kContentClassCount> last_keyword_end_{};
    std::array<bool, kContentClassCount> keyword_seen_{};
    std::array<uint32_t, kContentClassCount> distinct_{};
    std::array<uint16_t, kMaxCustomRules> rule_distinct_{};  // saturating
    std::array<uint64_t, kMaxDistinct> seen_hashes_{};
    uint32_t seen_count_ = 0;
    std::array<Pending, kMaxPending> pending_{};
    uint32_t pending_count_ = 0;
    // source_code: tokens counted since code_first_ (restarted after kCodeGapBytes without
    // one), whether the direction's finding went out, the first mark's text.
    uint32_t code_tokens_ = 0;
    uint64_t code_first_ = 0;
    uint64_t code_last_ = 0;
    bool code_reported_ = false;
    uint8_t code_mark_len_ = 0;
    std::array<char, kMarkChars> code_mark_{};
    // document: formats reported in this direction (bits of DocFormat).
    uint8_t doc_formats_ = 0;
    // Exact data match state of this direction (from the worker's pool), when EDM runs.
    EdmStream* edm_ = nullptr;
    EdmStatePool* edm_pool_ = nullptr;
    // The digit runs of card values, followed from one scan call to the next (live since the
    // first card match after open() or a gap): a run crossing segments goes on where it was
    // instead of being read again from before the segment's first match.
    CardRunTracker cards_;
    bool cards_live_ = false;
};

}  // namespace exfiltap::detectors
