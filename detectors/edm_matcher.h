// Exact data match at runtime: per flow direction, the tokeniser cuts the scanned bytes into
// words and word sequences (edm_tokens.h), looks their hashes up in every loaded index, and
// reports a record when its primary value and at least `min_matches` of its other values
// occur within `window_bytes` of each other in the direction's stream.
//
// Threads: EdmStream and EdmStatePool belong to one worker; scan paths never allocate, lock,
// throw or log. The indexes are immutable and shared.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string_view>
#include <vector>

#include "common/counter.h"
#include "detectors/content_types.h"
#include "detectors/edm_tokens.h"

namespace exfiltap::detectors {

class EdmIndex;
struct FindingSink;

/// Counters of one worker's matching (owned by its EdmStatePool; read by any thread).
struct EdmCounters {
    Counter words;               // words tokenised
    Counter words_unknown;       // of those, in no stored value (the word filter said so)
    Counter primary_hits;        // word sequences that are a stored primary value
    Counter value_hits;          // word sequences that pass the value filter
    Counter records;             // records matched (primary + min_matches others)
    Counter hits_overwritten;    // value hits lost from a full hit list inside their window
    Counter candidates_dropped;  // records dropped uncorroborated from a full waiting list
    Counter state_exhausted;     // directions left without EDM: no free state block
};

/// Records reported per direction and table one by one; past this, every kEdmReportEvery-th
/// record is reported (the finding's distinct_count always carries the running total) and
/// the total is reported again when the stream ends, so a bulk export cannot flood the
/// control ring.
inline constexpr uint32_t kEdmReportEach = 64;
inline constexpr uint32_t kEdmReportEvery = 64;

/// Per flow direction matching state: the tokeniser's carry, recent value hits, records
/// waiting for corroboration and records already counted. Fixed size (a few KiB), from the
/// worker's EdmStatePool.
class EdmStream {
public:
    /// Value hits kept (the newest win; an overwritten hit still inside its window is
    /// counted as `hits_overwritten`).
    static constexpr size_t kMaxHits = 128;
    /// Records waiting for corroboration; when full the oldest is dropped (counted).
    static constexpr size_t kMaxCandidates = 16;
    /// Records already counted, so a row repeated in the stream counts once (the oldest are
    /// forgotten first).
    static constexpr size_t kMaxMatched = 256;

    /// Starts a new direction on `tables` (which must outlive the stream; at most
    /// kMaxEdmTables, all built with the same key), counting into `counters` (which must
    /// outlive it too).
    void reset(const std::vector<EdmTableRules>& tables, EdmCounters& counters) noexcept;

    /// Tokenises the next in-order bytes at stream offset `offset` (the offset of data[0]).
    /// `gap_before`: bytes were lost before `data`, so no word or sequence joins across it.
    void scan(std::span<const uint8_t> data, uint64_t offset, bool gap_before,
            FindingSink& sink) noexcept;

    /// Ends the direction: the word in progress is completed and each table's total is
    /// reported when the last report did not carry it.
    void finish(uint64_t offset, FindingSink& sink) noexcept;

    /// Which stream this is (Finding::origin): 0 raw, else a decoded object's number.
    void set_origin(uint32_t origin) noexcept { origin_ = origin; }

    /// Records counted so far for table `table`.
    uint32_t records(size_t table) const noexcept { return tables_state_[table].records; }

private:
    struct Word {
        uint64_t hash = 0;  // edm_word_hash of the normalised word
        uint8_t digits_len = 0;
        bool numeric = false;  // digits and joiners only, at least one digit
        bool known = false;    // in some index's word filter
        std::array<char, 32> digits{};
    };
    struct Hit {
        uint64_t offset = 0;  // stream offset of the byte after the value
        uint32_t fingerprint = 0;
        uint8_t table = 0;
    };
    struct Candidate {
        uint64_t offset = 0;  // end of the primary value
        uint32_t row = 0;
        uint32_t mask = 0;  // bit s: other column slot s seen
        uint8_t table = 0;
        bool counted = false;  // corroborated and counted; reported when complete or settled
    };
    struct TableState {
        uint32_t records = 0;    // records counted
        uint32_t finalized = 0;  // records settled (their columns known)
        uint32_t reported = 0;   // records total carried by the last finding
        uint32_t columns = 0;    // union of matched schema columns
        uint64_t last_offset = 0;
        bool last_high = false;
    };

    void feed(uint8_t c, uint64_t at, FindingSink& sink) noexcept;
    void unescape(uint8_t c, uint64_t at, FindingSink& sink) noexcept;
    void flush_held(uint64_t at, FindingSink& sink) noexcept;
    void close_word(uint64_t end_offset, FindingSink& sink) noexcept;
    void end_word(uint64_t end_offset, FindingSink& sink) noexcept;
    void on_sequence(uint64_t hash, bool number, size_t words, uint64_t end_offset,
            FindingSink& sink) noexcept;
    void on_primary(uint8_t table, uint32_t row, uint64_t end_offset, FindingSink& sink) noexcept;
    void on_value(
            uint8_t table, uint32_t fingerprint, uint64_t end_offset, FindingSink& sink) noexcept;
    bool corroborate(Candidate& candidate, uint32_t fingerprint) const noexcept;
    /// Counts the candidate when it has enough values, reports it when it has all; true
    /// when reported (the caller drops it).
    bool advance(Candidate& candidate, FindingSink& sink) noexcept;
    /// Reports counted candidates whose window has passed (all: every one) and drops the
    /// uncounted ones among them.
    void settle(uint64_t end_offset, bool all, FindingSink& sink) noexcept;
    void finalize(const Candidate& candidate, FindingSink& sink) noexcept;
    void report(uint8_t table, FindingSink& sink) noexcept;
    bool already_matched(uint8_t table, uint32_t row) const noexcept;

    const std::vector<EdmTableRules>* tables_ = nullptr;
    uint32_t max_words_ = 1;
    bool numbers_ = false;
    // Per table, which lookups can ever hit (kLook* bits): a sequence is looked up only in
    // the hash domain (text or number) of the columns that could hold it.
    std::array<uint8_t, kMaxEdmTables> lookups_{};

    // Tokeniser carry: the word in progress and the last max_words_ words.
    std::array<char, kEdmMaxWordBytes + 1> word_{};
    uint32_t word_len_ = 0;        // bytes in word_ (joiners included)
    uint32_t word_committed_ = 0;  // bytes up to the last word byte
    bool word_too_long_ = false;
    bool joiner_overflow_ = false;  // a joiner did not fit after a word of the longest size
    bool joiner_pending_ = false;   // the last byte was a joiner inside a word
    // An escape being read: '%' and up to two hex digits, or '\\', 'u' and up to four.
    std::array<uint8_t, 6> held_{};
    uint8_t held_len_ = 0;
    std::array<Word, kEdmMaxValueWords> words_{};
    uint32_t word_count_ = 0;  // words in the sequence ring (<= max_words_)
    uint32_t word_head_ = 0;   // ring index of the next word

    std::array<Hit, kMaxHits> hits_{};
    uint32_t hit_count_ = 0;
    uint32_t hit_head_ = 0;
    std::array<Candidate, kMaxCandidates> candidates_{};
    uint32_t candidate_count_ = 0;
    std::array<uint64_t, kMaxMatched> matched_{};
    uint32_t matched_count_ = 0;
    uint32_t matched_head_ = 0;
    std::array<TableState, kMaxEdmTables> tables_state_{};
    EdmCounters* counters_ = nullptr;
    uint32_t origin_ = 0;
};

/// Fixed EdmStream blocks for one worker. The memory is reserved up front but a block is
/// only constructed (and its pages touched) when first used. Bound to the worker's thread so that
/// ContentStream::open() finds it (like StreamPool); without a bound pool, streams go without EDM.
class EdmStatePool {
public:
    explicit EdmStatePool(size_t count);
    ~EdmStatePool();
    EdmStatePool(const EdmStatePool&) = delete;
    EdmStatePool& operator=(const EdmStatePool&) = delete;
    EdmStatePool(EdmStatePool&&) = delete;
    EdmStatePool& operator=(EdmStatePool&&) = delete;

    void bind_to_this_thread() noexcept;
    /// The calling thread's pool, or null.
    static EdmStatePool* current() noexcept;

    /// A block reset for `tables`, or null when all are in use (counted as
    /// state_exhausted).
    EdmStream* acquire(const std::vector<EdmTableRules>& tables) noexcept;
    void release(EdmStream* stream) noexcept;

    size_t in_use() const noexcept { return in_use_; }
    size_t capacity() const noexcept { return count_; }
    const EdmCounters& counters() const noexcept { return counters_; }

private:
    size_t count_;
    std::unique_ptr<unsigned char[]> memory_;  // count_ blocks, constructed on first use
    size_t constructed_ = 0;
    std::vector<EdmStream*> free_;
    size_t in_use_ = 0;
    EdmCounters counters_;
};

}  // namespace exfiltap::detectors
