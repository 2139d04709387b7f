// Exact data match index: the keyed hashes of one table's normalised values, in a compact
// read-only form that workers look up without locks. Built by `exfiltap-edm index`, loaded
// by the daemon from the config; no raw value is ever stored, and the key is kept apart
// (STATE_DIR/edm.key), so the file alone reveals nothing.
//
// What is stored (N rows, C columns, one primary column):
// - primary table: open addressing, power-of-two capacity at load <= 0.7; per slot the
//   64-bit hash of the primary value (0 = empty; a hash of 0 is stored as 1) and its row
//   number (uint32). Lookups compare all 64 bits.
// - row fingerprints: per row, for each other column in schema order, the upper 32 bits of
//   the value's hash (0 = no value: empty or skipped; a fingerprint of 0 is stored as 1).
// - value filter: open addressing set of those 32-bit fingerprints (distinct, 0 = empty),
//   power-of-two capacity at load <= 0.7, so a word sequence that is no stored value is
//   rejected with one probe and never reaches the per-flow state.
// - word filter: a Bloom filter of the word hashes (edm_word_hash) of every word of every
//   stored text value (email, name, address, text; the primary too when it is text; number
//   values add nothing), so the matcher drops a word of ordinary traffic, and breaks the
//   word sequence there, with one probe. 2^b bits, b the smallest with 2^b >= 16 x distinct
//   words and b >= 16 (at most 34). Blocked: 512-bit lines (one cache line, 64-byte aligned
//   in memory), k = 2 bits in the same line. Of a word hash h: line (h >> 18) & (lines - 1),
//   bits (h & 511) and ((h >> 9) & 511) inside it; the three fields use disjoint bits of h
//   (b <= 34, so the line index needs at most 25 bits). About 1.4% false positives at 16
//   bits per word (plain k = 2 Bloom: 1.38%), fewer when b was rounded up.
//
// File layout (little-endian): header "EXFEDM\x01\x00", u32 version (2), u64 key check
// (siphash24(key, "exfiltap-edm key check")), u32 row count, u32 column count, u32 primary
// column, u32 max words, u64 primary capacity, u64 filter capacity, u32 word filter bits
// (log2, b), u64 distinct words, u32 table name length + bytes, per column u8 type + u32
// name length + bytes; then the primary hashes, the primary rows, the row fingerprints, the
// value filter and the word filter (2^b / 64 u64 words, bit i of the filter is bit i % 64 of
// word i / 64), each section 8-byte aligned; last a u64 checksum (siphash24 with a fixed
// public key over everything before it) so a truncated or damaged file is refused. Padding
// bytes are zero. Names (table, columns) are 1..128 bytes of printable ASCII or UTF-8
// (edm_valid_name). Version 1 (no word filter) is refused: rebuild the index.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "detectors/edm_tokens.h"
#include "detectors/siphash.h"

namespace exfiltap::detectors {

struct EdmColumn {
    std::string name;
    EdmColumnType type = EdmColumnType::Text;
};

struct EdmSchema {
    std::string table;               // the table's name, shown in alerts
    std::vector<EdmColumn> columns;  // in the CSV's column order
    uint32_t primary = 0;            // index of the primary column
};

/// Most columns of a table (a matched-columns mask is 32 bits).
inline constexpr size_t kEdmMaxColumns = 32;
/// Most rows of a table (row numbers are 32-bit).
inline constexpr uint64_t kEdmMaxRows = 0xfffffff0ULL;
/// Longest table or column name (bytes).
inline constexpr size_t kEdmMaxNameBytes = 128;
/// Word filter size limits (log2 of its bits) and bits per distinct word.
inline constexpr uint32_t kEdmWordFilterMinLog2 = 16;
inline constexpr uint32_t kEdmWordFilterMaxLog2 = 34;
inline constexpr uint64_t kEdmWordFilterBitsPerWord = 16;
/// The word filter's line: 512 bits, one cache line.
inline constexpr uint32_t kEdmWordFilterLineLog2 = 9;
/// The public key of the file checksum (it detects damage; it authenticates nothing).
inline constexpr SipKey kEdmChecksumKey{0x6b63656863746465ULL, 0x31656c69666d6465ULL};

/// A usable table or column name: 1..kEdmMaxNameBytes bytes, none below 0x20 nor 0x7f.
bool edm_valid_name(std::string_view name) noexcept;
/// The key check stored in the header: siphash24(key, "exfiltap-edm key check").
uint64_t edm_key_check(const SipKey& key) noexcept;

/// What a build did, for the tool's report.
struct EdmBuildReport {
    uint64_t rows = 0;                       // rows indexed
    uint64_t rows_without_primary = 0;       // rows skipped: primary empty, short or unusable
    uint64_t duplicate_primaries = 0;        // rows skipped: primary value seen in an earlier row
    uint64_t values = 0;                     // values stored (primary + others)
    uint64_t short_values = 0;               // values too short to protect (skipped unless forced)
    uint64_t unusable_values = 0;            // values that normalise to nothing or are too long
    uint64_t duplicate_values = 0;           // non-primary fingerprints already in the filter
    uint64_t distinct_words = 0;             // distinct words of stored text values (exact)
    std::vector<uint64_t> short_per_column;  // per column, short values
};

/// Builds an index row by row (the tool feeds it from the CSV). Not thread-safe.
class EdmIndexBuilder {
public:
    /// `force_short`: store values shorter than the kEdmMin* limits too.
    EdmIndexBuilder(EdmSchema schema, const SipKey& key, bool force_short);

    /// Adds one row; `values` has one entry per schema column (the CSV's fields). Returns
    /// false (and counts it) when the row is skipped. Errors: too many rows.
    Result<bool> add_row(std::span<const std::string_view> values);

    /// Finishes the tables and writes the index file (atomically: a temp file in the same
    /// folder, mode 0644, then rename). Call once, after the last add_row.
    Status write(const std::string& path);

    const EdmBuildReport& report() const noexcept { return report_; }
    /// Bytes the index file takes (after write()).
    uint64_t file_bytes() const noexcept { return file_bytes_; }
    /// Bytes of the word filter in the file (after write()).
    uint64_t word_filter_bytes() const noexcept { return word_filter_bytes_; }
    /// log2 of the word filter's bits for `words` distinct words: the smallest b with
    /// 2^b >= 16 x words, at least kEdmWordFilterMinLog2, at most kEdmWordFilterMaxLog2.
    static uint32_t word_filter_log2(uint64_t words) noexcept;

private:
    /// Inserts into the growing primary table; false when the hash is already there.
    bool insert_primary(uint64_t hash, uint32_t row);
    /// Inserts into the growing filter; false when the fingerprint is already there.
    bool insert_filter(uint32_t fingerprint);
    /// Inserts the word hashes of the normalised text value in scratch_ into the word set
    /// and returns the value's hash (the same as edm_value_hash, each word hashed once).
    uint64_t add_text_words();
    /// Inserts one word hash into the exact word set (counted in report_.distinct_words).
    void insert_word(uint64_t hash);

    EdmSchema schema_;
    SipKey key_;
    bool force_short_;
    EdmBuildReport report_;
    // Open-addressing tables grown by doubling at load 0.7, so after the last row they are
    // already the tables the file stores (no per-value allocation, no final rebuild).
    std::vector<uint64_t> primary_hashes_;  // capacity slots (0 = empty)
    std::vector<uint32_t> primary_rows_;    // capacity slots
    std::vector<uint32_t> fingerprints_;    // rows x (columns - 1)
    std::vector<uint32_t> filter_;          // capacity slots (0 = empty)
    uint64_t filter_count_ = 0;
    // Exact set of the distinct word hashes (open addressing, 0 = empty, doubled at load
    // 0.7); a word hash of 0 is kept apart. The Bloom filter is made from it in write().
    std::vector<uint64_t> words_;
    bool zero_word_ = false;
    EdmNormalised scratch_;  // reused by add_row
    uint32_t max_words_ = 1;
    uint64_t file_bytes_ = 0;
    uint64_t word_filter_bytes_ = 0;
};

/// A loaded, immutable index. Shared by workers through shared_ptr; lookups are noexcept,
/// lock-free and allocation-free.
class EdmIndex {
public:
    static constexpr uint32_t kNoRow = UINT32_MAX;

    // Shared, never copied: the word filter's alignment offset belongs to its buffer.
    EdmIndex(const EdmIndex&) = delete;
    EdmIndex& operator=(const EdmIndex&) = delete;

    /// Loads `path`, checks header, layout, checksum and that `key` is the key the index was
    /// built with. Errors name the file and what is wrong.
    static Result<std::shared_ptr<const EdmIndex>> load(const std::string& path, const SipKey& key);
    /// The same from bytes in memory (`name` names them in errors): the fuzz target's entry.
    static Result<std::shared_ptr<const EdmIndex>> load_from_bytes(
            std::span<const uint8_t> bytes, const SipKey& key, const std::string& name);
    /// Everything load() checks but the key, for `exfiltap-edm info`: key() is all zero and
    /// lookups give meaningless answers.
    static Result<std::shared_ptr<const EdmIndex>> load_without_key(const std::string& path);

    const EdmSchema& schema() const noexcept { return schema_; }
    const SipKey& key() const noexcept { return key_; }
    uint32_t rows() const noexcept { return rows_; }
    /// Most words of any stored text value (the tokeniser's sequence length).
    uint32_t max_words() const noexcept { return max_words_; }
    /// Whether any column has type Number (the tokeniser then also hashes digit runs).
    bool has_numbers() const noexcept { return has_numbers_; }

    /// Row whose primary value has this hash, or kNoRow.
    uint32_t find_primary(uint64_t hash) const noexcept;
    /// Whether this 32-bit fingerprint is a stored non-primary value.
    bool maybe_value(uint32_t fingerprint) const noexcept;
    /// Fingerprint of `row`'s other column `slot` (0-based over the non-primary columns in
    /// schema order); 0 when the row has no value there.
    uint32_t fingerprint(uint32_t row, uint32_t slot) const noexcept {
        return fingerprints_[static_cast<size_t>(row) * other_columns_ + slot];
    }
    /// Non-primary columns (columns - 1).
    uint32_t other_columns() const noexcept { return other_columns_; }
    /// Schema column index of non-primary slot `slot`.
    uint32_t column_of_slot(uint32_t slot) const noexcept {
        return slot < schema_.primary ? slot : slot + 1;
    }

    /// The fingerprint of a value hash (upper 32 bits, 0 mapped to 1).
    static uint32_t fingerprint_of(uint64_t hash) noexcept {
        const auto fp = static_cast<uint32_t>(hash >> 32);
        return fp == 0 ? 1 : fp;
    }

    /// Whether a word with this hash (edm_word_hash) may be a word of a stored text value:
    /// false means surely not (no stored text value holds it), true is right about 98.6% of
    /// the time for a word that is none. Numbers are not in the filter: the matcher lets
    /// numeric words through itself. One cache line read; true when there is no filter.
    bool maybe_word(uint64_t word_hash) const noexcept {
        if (!has_word_filter_) {
            return true;
        }
        const uint64_t* line =
                word_bits_.data() + word_align_ + ((word_hash >> 18) & word_line_mask_) * 8;
        const uint64_t a = word_hash & 511;
        const uint64_t b = (word_hash >> 9) & 511;
        return ((line[a >> 6] >> (a & 63)) & (line[b >> 6] >> (b & 63)) & 1) != 0;
    }
    /// Whether the index has a word filter (every loaded index has one; maybe_word() is
    /// always true without).
    bool has_word_filter() const noexcept { return has_word_filter_; }
    /// Distinct words of the stored text values, and the word filter's size.
    uint64_t word_count() const noexcept { return word_count_; }
    uint32_t word_filter_log2() const noexcept { return word_filter_log2_; }
    uint64_t word_filter_bytes() const noexcept {
        return has_word_filter_ ? (uint64_t{1} << word_filter_log2_) / 8 : 0;
    }

    /// Bytes of memory the loaded tables take.
    uint64_t memory_bytes() const noexcept;
    /// Slots of the primary table and of the value filter, and distinct fingerprints stored.
    uint64_t primary_capacity() const noexcept { return primary_hashes_.size(); }
    uint64_t filter_capacity() const noexcept { return filter_.size(); }
    uint64_t filter_values() const noexcept { return filter_count_; }

private:
    friend class EdmIndexLoader;
    EdmIndex() = default;
    EdmSchema schema_;
    SipKey key_;
    uint32_t rows_ = 0;
    uint32_t max_words_ = 1;
    uint32_t other_columns_ = 0;
    bool has_numbers_ = false;
    std::vector<uint64_t> primary_hashes_;  // capacity slots
    std::vector<uint32_t> primary_rows_;    // capacity slots
    uint64_t primary_mask_ = 0;
    std::vector<uint32_t> fingerprints_;  // rows x other_columns
    std::vector<uint32_t> filter_;        // capacity slots
    uint64_t filter_mask_ = 0;
    uint64_t filter_count_ = 0;
    // Word filter: 2^b bits in u64 words starting at word_bits_[word_align_], so that each
    // 512-bit line is one 64-byte aligned cache line.
    std::vector<uint64_t> word_bits_;
    size_t word_align_ = 0;
    uint64_t word_line_mask_ = 0;
    uint64_t word_count_ = 0;
    uint32_t word_filter_log2_ = 0;
    bool has_word_filter_ = false;
};

/// Reads the 16-byte key file (`exfiltap-edm` writes it as 32 hex characters and a newline,
/// mode 0600). Errors name the file.
Result<SipKey> edm_read_key(const std::string& path);
/// Creates the key file with 16 random bytes (getrandom) unless it exists; returns the key
/// either way. The file is created with mode 0600 and never overwritten (written to a temp
/// file, then link(2)ed into place, so a reader never sees half a key). `created`, when
/// given, tells whether this call made it.
Result<SipKey> edm_load_or_create_key(const std::string& path, bool* created = nullptr);

}  // namespace exfiltap::detectors
