// The EDM index: building (control side, allocates freely but not per value), the file
// format, loading with every field checked against the file's length, and the worker-side
// lookups. See edm_index.h for the layout.
#include "detectors/edm_index.h"

#include <fcntl.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <bit>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <system_error>

#include "detectors/text_util.h"

namespace exfiltap::detectors {

static_assert(std::endian::native == std::endian::little,
        "the EDM file sections are written and read as host arrays (little-endian)");

namespace {

constexpr std::array<uint8_t, 8> kMagic = {'E', 'X', 'F', 'E', 'D', 'M', 0x01, 0x00};
constexpr uint32_t kVersion = 2;
constexpr std::string_view kKeyCheckText = "exfiltap-edm key check";
/// Smallest table capacity (slots) the builder makes and the loader accepts.
constexpr uint64_t kMinCapacity = 16;

std::string errno_text(int err) {
    return std::generic_category().message(err);
}

/// Whether `count` entries fit `capacity` slots at a load of at most 0.7.
bool within_load(uint64_t count, uint64_t capacity) {
    return count <= capacity / 10 * 7 + (capacity % 10) * 7 / 10;
}

uint64_t align8(uint64_t n) {
    return (n + 7) & ~uint64_t{7};
}

void put_u8(std::vector<uint8_t>& out, uint8_t v) {
    out.push_back(v);
}
void put_u32(std::vector<uint8_t>& out, uint32_t v) {
    for (int i = 0; i < 4; ++i) {
        out.push_back(static_cast<uint8_t>(v >> (8 * i)));
    }
}
void put_u64(std::vector<uint8_t>& out, uint64_t v) {
    for (int i = 0; i < 8; ++i) {
        out.push_back(static_cast<uint8_t>(v >> (8 * i)));
    }
}
void put_name(std::vector<uint8_t>& out, std::string_view name) {
    put_u32(out, static_cast<uint32_t>(name.size()));
    out.insert(out.end(), name.begin(), name.end());
}

/// Checks what the builder and the loader both require of a schema.
std::string schema_problem(const EdmSchema& schema) {
    if (!edm_valid_name(schema.table)) {
        return "table name must be 1.." + std::to_string(kEdmMaxNameBytes) + " printable bytes";
    }
    if (schema.columns.empty() || schema.columns.size() > kEdmMaxColumns) {
        return std::to_string(schema.columns.size()) + " columns, expected 1.."
                + std::to_string(kEdmMaxColumns);
    }
    if (schema.primary >= schema.columns.size()) {
        return "primary column " + std::to_string(schema.primary) + " is not one of the "
                + std::to_string(schema.columns.size()) + " columns";
    }
    for (size_t i = 0; i < schema.columns.size(); ++i) {
        if (!edm_valid_name(schema.columns[i].name)) {
            return "column " + std::to_string(i + 1) + ": name must be 1.."
                    + std::to_string(kEdmMaxNameBytes) + " printable bytes";
        }
        if (static_cast<uint8_t>(schema.columns[i].type)
                > static_cast<uint8_t>(EdmColumnType::Text)) {
            return "column " + std::to_string(i + 1) + ": unknown type";
        }
        for (size_t j = 0; j < i; ++j) {
            if (schema.columns[j].name == schema.columns[i].name) {
                return "column " + std::to_string(i + 1) + ": duplicate name";
            }
        }
    }
    return {};
}

/// What one cell holds, for the builder's counts.
enum class Cell {
    Empty,
    Unusable,
    Short,
    Stored
};

}  // namespace

bool edm_valid_name(std::string_view name) noexcept {
    if (name.empty() || name.size() > kEdmMaxNameBytes) {
        return false;
    }
    for (const char c : name) {
        const auto b = static_cast<uint8_t>(c);
        if (b < 0x20 || b == 0x7f) {
            return false;
        }
    }
    return true;
}

uint64_t edm_key_check(const SipKey& key) noexcept {
    return siphash24(
            key, {reinterpret_cast<const uint8_t*>(kKeyCheckText.data()), kKeyCheckText.size()});
}

// ---------------------------------------------------------------------------------------
// Builder

EdmIndexBuilder::EdmIndexBuilder(EdmSchema schema, const SipKey& key, bool force_short)
    : schema_(std::move(schema)),
      key_(key),
      force_short_(force_short),
      primary_hashes_(kMinCapacity, 0),
      primary_rows_(kMinCapacity, 0),
      filter_(kMinCapacity, 0),
      words_(kMinCapacity, 0) {
    report_.short_per_column.assign(schema_.columns.size(), 0);
}

bool EdmIndexBuilder::insert_primary(uint64_t hash, uint32_t row) {
    if (!within_load(report_.rows + 1, primary_hashes_.size())) {
        std::vector<uint64_t> hashes(primary_hashes_.size() * 2, 0);
        std::vector<uint32_t> rows(hashes.size(), 0);
        const uint64_t mask = hashes.size() - 1;
        for (size_t i = 0; i < primary_hashes_.size(); ++i) {
            const uint64_t h = primary_hashes_[i];
            if (h == 0) {
                continue;
            }
            uint64_t slot = h & mask;
            while (hashes[slot] != 0) {
                slot = (slot + 1) & mask;
            }
            hashes[slot] = h;
            rows[slot] = primary_rows_[i];
        }
        primary_hashes_.swap(hashes);
        primary_rows_.swap(rows);
    }
    const uint64_t mask = primary_hashes_.size() - 1;
    uint64_t slot = hash & mask;
    while (primary_hashes_[slot] != 0) {
        if (primary_hashes_[slot] == hash) {
            return false;
        }
        slot = (slot + 1) & mask;
    }
    primary_hashes_[slot] = hash;
    primary_rows_[slot] = row;
    return true;
}

bool EdmIndexBuilder::insert_filter(uint32_t fingerprint) {
    if (!within_load(filter_count_ + 1, filter_.size())) {
        std::vector<uint32_t> grown(filter_.size() * 2, 0);
        const uint64_t mask = grown.size() - 1;
        for (const uint32_t fp : filter_) {
            if (fp == 0) {
                continue;
            }
            uint64_t slot = fp & mask;
            while (grown[slot] != 0) {
                slot = (slot + 1) & mask;
            }
            grown[slot] = fp;
        }
        filter_.swap(grown);
    }
    const uint64_t mask = filter_.size() - 1;
    uint64_t slot = fingerprint & mask;
    while (filter_[slot] != 0) {
        if (filter_[slot] == fingerprint) {
            return false;
        }
        slot = (slot + 1) & mask;
    }
    filter_[slot] = fingerprint;
    ++filter_count_;
    return true;
}

void EdmIndexBuilder::insert_word(uint64_t hash) {
    if (hash == 0) {
        if (!zero_word_) {
            zero_word_ = true;
            ++report_.distinct_words;
        }
        return;
    }
    const uint64_t stored = report_.distinct_words - (zero_word_ ? 1 : 0);
    if (!within_load(stored + 1, words_.size())) {
        std::vector<uint64_t> grown(words_.size() * 2, 0);
        const uint64_t mask = grown.size() - 1;
        for (const uint64_t h : words_) {
            if (h == 0) {
                continue;
            }
            uint64_t slot = h & mask;
            while (grown[slot] != 0) {
                slot = (slot + 1) & mask;
            }
            grown[slot] = h;
        }
        words_.swap(grown);
    }
    const uint64_t mask = words_.size() - 1;
    uint64_t slot = hash & mask;
    while (words_[slot] != 0) {
        if (words_[slot] == hash) {
            return;
        }
        slot = (slot + 1) & mask;
    }
    words_[slot] = hash;
    ++report_.distinct_words;
}

uint64_t EdmIndexBuilder::add_text_words() {
    return edm_text_hash(key_, scratch_.text, [this](uint64_t word) { insert_word(word); });
}

uint32_t EdmIndexBuilder::word_filter_log2(uint64_t words) noexcept {
    uint32_t b = kEdmWordFilterMinLog2;
    while (b < kEdmWordFilterMaxLog2 && (uint64_t{1} << b) / kEdmWordFilterBitsPerWord < words) {
        ++b;
    }
    return b;
}

Result<bool> EdmIndexBuilder::add_row(std::span<const std::string_view> values) {
    const size_t columns = schema_.columns.size();
    if (values.size() != columns) {
        return make_error("a row has " + std::to_string(values.size()) + " values, the schema "
                + std::to_string(columns) + " columns");
    }
    if (schema_.primary >= columns || columns > kEdmMaxColumns) {
        return make_error("bad schema: " + schema_problem(schema_));
    }
    if (report_.rows >= kEdmMaxRows) {
        return make_error("more than " + std::to_string(kEdmMaxRows) + " rows");
    }

    // One cell: normalise into the reused scratch, decide, hash.
    auto cell = [&](size_t column, uint64_t& hash) {
        const EdmColumnType type = schema_.columns[column].type;
        const std::string_view value = values[column];
        if (!edm_normalise_into(type, value, scratch_)) {
            bool any_word_byte = false;
            for (const char c : value) {
                any_word_byte = any_word_byte || edm_is_word_byte(static_cast<uint8_t>(c));
            }
            return any_word_byte ? Cell::Unusable : Cell::Empty;
        }
        if (!force_short_ && !edm_long_enough(type, scratch_)) {
            return Cell::Short;
        }
        if (type == EdmColumnType::Number) {
            hash = edm_value_hash(key_, type, scratch_);
            return Cell::Stored;
        }
        // A text value: its words go to the word filter. A repeated primary (row skipped
        // below) adds nothing new: its words are the first one's.
        hash = add_text_words();
        if (scratch_.words > max_words_) {
            max_words_ = static_cast<uint32_t>(scratch_.words);
        }
        return Cell::Stored;
    };
    auto count = [&](size_t column, Cell what) {
        if (what == Cell::Unusable) {
            ++report_.unusable_values;
        } else if (what == Cell::Short) {
            ++report_.short_values;
            ++report_.short_per_column[column];
        }
    };

    // Primary: a row without a usable one is skipped, so is a repeated one.
    const uint32_t max_words_before = max_words_;
    uint64_t primary_hash = 0;
    const Cell primary = cell(schema_.primary, primary_hash);
    if (primary != Cell::Stored) {
        count(schema_.primary, primary);
        ++report_.rows_without_primary;
        return false;
    }
    primary_hash = primary_hash == 0 ? 1 : primary_hash;
    const auto row = static_cast<uint32_t>(report_.rows);
    if (!insert_primary(primary_hash, row)) {
        max_words_ = max_words_before;
        ++report_.duplicate_primaries;
        return false;
    }

    // The other columns, in schema order.
    uint64_t stored = 1;
    for (size_t column = 0; column < columns; ++column) {
        if (column == schema_.primary) {
            continue;
        }
        uint64_t hash = 0;
        const Cell what = cell(column, hash);
        uint32_t fp = 0;
        if (what == Cell::Stored) {
            fp = EdmIndex::fingerprint_of(hash);
            ++stored;
            if (!insert_filter(fp)) {
                ++report_.duplicate_values;
            }
        } else {
            count(column, what);
        }
        fingerprints_.push_back(fp);
    }
    ++report_.rows;
    report_.values += stored;
    return true;
}

Status EdmIndexBuilder::write(const std::string& path) {
    const std::string problem = schema_problem(schema_);
    if (!problem.empty()) {
        return make_error(path + ": bad schema: " + problem);
    }

    // Header.
    std::vector<uint8_t> head;
    head.insert(head.end(), kMagic.begin(), kMagic.end());
    put_u32(head, kVersion);
    put_u64(head, edm_key_check(key_));
    put_u32(head, static_cast<uint32_t>(report_.rows));
    put_u32(head, static_cast<uint32_t>(schema_.columns.size()));
    put_u32(head, schema_.primary);
    put_u32(head, max_words_);
    put_u64(head, primary_hashes_.size());
    put_u64(head, filter_.size());
    const uint32_t word_log2 = word_filter_log2(report_.distinct_words);
    put_u32(head, word_log2);
    put_u64(head, report_.distinct_words);
    put_name(head, schema_.table);
    for (const auto& column : schema_.columns) {
        put_u8(head, static_cast<uint8_t>(column.type));
        put_name(head, column.name);
    }

    // The word filter from the exact word set.
    std::vector<uint64_t> word_bits((uint64_t{1} << word_log2) / 64, 0);
    const uint64_t line_mask = (uint64_t{1} << (word_log2 - kEdmWordFilterLineLog2)) - 1;
    auto set_word = [&](uint64_t h) {
        uint64_t* line = word_bits.data() + ((h >> 18) & line_mask) * 8;
        const uint64_t a = h & 511;
        const uint64_t b = (h >> 9) & 511;
        line[a >> 6] |= uint64_t{1} << (a & 63);
        line[b >> 6] |= uint64_t{1} << (b & 63);
    };
    for (const uint64_t h : words_) {
        if (h != 0) {
            set_word(h);
        }
    }
    if (zero_word_) {
        set_word(0);
    }

    // A temp file next to the target, renamed over it when complete.
    std::string temp = path + ".XXXXXX";
    const int fd = mkstemp(temp.data());
    if (fd < 0) {
        return make_error(
                path + ": cannot create a temporary file next to it: " + errno_text(errno));
    }
    FILE* file = fdopen(fd, "wb");
    if (file == nullptr) {
        const int err = errno;
        close(fd);
        unlink(temp.c_str());
        return make_error(path + ": cannot write: " + errno_text(err));
    }
    fchmod(fd, 0644);
    SipHasher checksum(kEdmChecksumKey);
    uint64_t offset = 0;
    bool ok = true;
    auto emit = [&](const void* data, size_t n) {
        if (!ok || n == 0) {
            return;
        }
        ok = fwrite(data, 1, n, file) == n;
        checksum.update({static_cast<const uint8_t*>(data), n});
        offset += n;
    };
    auto pad = [&] {
        static constexpr std::array<uint8_t, 8> kZero{};
        emit(kZero.data(), align8(offset) - offset);
    };
    emit(head.data(), head.size());
    pad();
    emit(primary_hashes_.data(), primary_hashes_.size() * sizeof(uint64_t));
    pad();
    emit(primary_rows_.data(), primary_rows_.size() * sizeof(uint32_t));
    pad();
    emit(fingerprints_.data(), fingerprints_.size() * sizeof(uint32_t));
    pad();
    emit(filter_.data(), filter_.size() * sizeof(uint32_t));
    pad();
    emit(word_bits.data(), word_bits.size() * sizeof(uint64_t));
    const uint64_t sum = checksum.finish();
    std::vector<uint8_t> tail;
    put_u64(tail, sum);
    emit(tail.data(), tail.size());
    ok = ok && fflush(file) == 0 && fsync(fd) == 0;
    const int err = errno;
    ok = (fclose(file) == 0) && ok;
    if (!ok) {
        unlink(temp.c_str());
        return make_error(path + ": cannot write the index: " + errno_text(err));
    }
    if (rename(temp.c_str(), path.c_str()) != 0) {
        const int rename_err = errno;
        unlink(temp.c_str());
        return make_error(
                path + ": cannot move the finished index into place: " + errno_text(rename_err));
    }
    file_bytes_ = offset;
    word_filter_bytes_ = word_bits.size() * sizeof(uint64_t);
    return Ok{};
}

// ---------------------------------------------------------------------------------------
// Loader

/// Reads the file (or bytes) front to back, hashing everything for the checksum and
/// checking each size against what is left before anything is allocated.
class EdmIndexLoader {
public:
    EdmIndexLoader(std::string name, FILE* file, std::span<const uint8_t> bytes, uint64_t length)
        : name_(std::move(name)), file_(file), bytes_(bytes), length_(length) {}

    Result<std::shared_ptr<const EdmIndex>> load(const SipKey* key);

private:
    Error fail(const std::string& what) const { return make_error(name_ + ": " + what); }
    uint64_t left() const { return length_ - offset_; }

    bool read(void* out, uint64_t n) {
        if (n > left()) {
            return false;
        }
        if (file_ != nullptr) {
            if (n > 0 && fread(out, 1, n, file_) != n) {
                return false;
            }
        } else if (n > 0) {
            std::memcpy(out, bytes_.data() + offset_, n);
        }
        checksum_.update({static_cast<const uint8_t*>(out), static_cast<size_t>(n)});
        offset_ += n;
        return true;
    }
    bool u8(uint8_t& v) { return read(&v, 1); }
    bool u32(uint32_t& v) {
        std::array<uint8_t, 4> b{};
        if (!read(b.data(), b.size())) {
            return false;
        }
        v = 0;
        for (int i = 3; i >= 0; --i) {
            v = (v << 8) | b[i];
        }
        return true;
    }
    bool u64(uint64_t& v) {
        std::array<uint8_t, 8> b{};
        if (!read(b.data(), b.size())) {
            return false;
        }
        v = 0;
        for (int i = 7; i >= 0; --i) {
            v = (v << 8) | b[i];
        }
        return true;
    }
    bool name(std::string& out) {
        uint32_t n = 0;
        if (!u32(n) || n == 0 || n > kEdmMaxNameBytes) {
            return false;
        }
        out.resize(n);
        return read(out.data(), n) && edm_valid_name(out);
    }
    /// Zero bytes up to the next multiple of 8.
    bool pad() {
        std::array<uint8_t, 8> b{};
        const uint64_t n = align8(offset_) - offset_;
        if (!read(b.data(), n)) {
            return false;
        }
        for (uint64_t i = 0; i < n; ++i) {
            if (b[i] != 0) {
                return false;
            }
        }
        return true;
    }
    /// The word filter's u64 words, placed so that its lines are 64-byte aligned.
    bool word_filter(EdmIndex& index, uint64_t count) {
        index.word_bits_.assign(count + 7, 0);
        const auto address = reinterpret_cast<uintptr_t>(index.word_bits_.data());
        index.word_align_ = ((64 - (address & 63)) & 63) / sizeof(uint64_t);
        return read(index.word_bits_.data() + index.word_align_, count * sizeof(uint64_t)) && pad();
    }
    template <typename T>
    bool array(std::vector<T>& out, uint64_t count) {
        out.resize(count);
        return read(out.data(), count * sizeof(T)) && pad();
    }

    std::string name_;
    FILE* file_;
    std::span<const uint8_t> bytes_;
    uint64_t length_;
    uint64_t offset_ = 0;
    SipHasher checksum_{kEdmChecksumKey};
};

Result<std::shared_ptr<const EdmIndex>> EdmIndexLoader::load(const SipKey* key) {
    const std::string truncated = "truncated or damaged (the header is cut short)";
    std::array<uint8_t, 8> magic{};
    if (!read(magic.data(), magic.size())) {
        return fail("not an exfiltap EDM index (too short)");
    }
    if (magic != kMagic) {
        return fail("not an exfiltap EDM index (bad magic)");
    }
    uint32_t version = 0;
    uint64_t key_check = 0;
    uint32_t rows = 0;
    uint32_t columns = 0;
    uint32_t primary = 0;
    uint32_t max_words = 0;
    uint64_t primary_capacity = 0;
    uint64_t filter_capacity = 0;
    uint32_t word_log2 = 0;
    uint64_t words = 0;
    if (!u32(version)) {
        return fail(truncated);
    }
    if (version != kVersion) {
        return fail("index format version " + std::to_string(version) + ", this build reads "
                + std::to_string(kVersion)
                + ": rebuild the index with this exfiltap-edm (exfiltap-edm index ...)");
    }
    if (!u64(key_check) || !u32(rows) || !u32(columns) || !u32(primary) || !u32(max_words)
            || !u64(primary_capacity) || !u64(filter_capacity) || !u32(word_log2) || !u64(words)) {
        return fail(truncated);
    }
    if (columns == 0 || columns > kEdmMaxColumns || primary >= columns) {
        return fail("bad header: " + std::to_string(columns) + " columns, primary "
                + std::to_string(primary) + " (damaged?)");
    }
    if (rows > kEdmMaxRows || max_words == 0 || max_words > kEdmMaxValueWords) {
        return fail("bad header: " + std::to_string(rows) + " rows, " + std::to_string(max_words)
                + " words (damaged?)");
    }
    auto capacity_ok = [](uint64_t capacity) {
        return capacity >= kMinCapacity && std::has_single_bit(capacity);
    };
    if (!capacity_ok(primary_capacity) || !capacity_ok(filter_capacity)
            || !within_load(rows, primary_capacity)) {
        return fail("bad header: table capacities " + std::to_string(primary_capacity) + " and "
                + std::to_string(filter_capacity) + " for " + std::to_string(rows)
                + " rows (damaged?)");
    }
    // The word filter: each stored value has at most kEdmMaxValueWords words, and the size
    // is the one the builder picks for that many words.
    if (words > static_cast<uint64_t>(rows) * columns * kEdmMaxValueWords
            || word_log2 < kEdmWordFilterMinLog2 || word_log2 > kEdmWordFilterMaxLog2
            || word_log2 != EdmIndexBuilder::word_filter_log2(words)) {
        return fail("bad header: word filter of 2^" + std::to_string(word_log2) + " bits for "
                + std::to_string(words) + " words (damaged?)");
    }
    auto index = std::shared_ptr<EdmIndex>(new EdmIndex());
    EdmSchema& schema = index->schema_;
    if (!name(schema.table)) {
        return fail("bad or cut table name (damaged?)");
    }
    schema.primary = primary;
    for (uint32_t i = 0; i < columns; ++i) {
        EdmColumn column;
        uint8_t type = 0;
        if (!u8(type) || type > static_cast<uint8_t>(EdmColumnType::Text) || !name(column.name)) {
            return fail("bad or cut column " + std::to_string(i + 1) + " (damaged?)");
        }
        column.type = static_cast<EdmColumnType>(type);
        schema.columns.push_back(std::move(column));
    }
    const std::string problem = schema_problem(schema);
    if (!problem.empty()) {
        return fail("bad schema: " + problem);
    }
    if (!pad()) {
        return fail(truncated);
    }

    // Every section's size from the header, checked against the bytes left before anything
    // is allocated. Capacities are at most 2^63 here and the counts 32-bit, so guard the
    // products by comparing against the length first.
    const uint64_t other = columns - 1;
    const uint64_t need_max = left();
    const uint64_t word_bytes = (uint64_t{1} << word_log2) / 8;
    if (primary_capacity > need_max / 12 || filter_capacity > need_max / 4
            || static_cast<uint64_t>(rows) * other > need_max / 4 || word_bytes > need_max) {
        return fail("truncated: the header's table sizes need more than the file's "
                + std::to_string(length_) + " bytes");
    }
    const uint64_t need = primary_capacity * 8 + align8(primary_capacity * 4)
            + align8(static_cast<uint64_t>(rows) * other * 4) + align8(filter_capacity * 4)
            + word_bytes + 8;
    if (need != left()) {
        return fail("truncated or has extra bytes: the header says "
                + std::to_string(offset_ + need) + " bytes, the file has "
                + std::to_string(length_));
    }
    if (!array(index->primary_hashes_, primary_capacity)
            || !array(index->primary_rows_, primary_capacity)
            || !array(index->fingerprints_, static_cast<uint64_t>(rows) * other)
            || !array(index->filter_, filter_capacity) || !word_filter(*index, word_bytes / 8)) {
        return fail("cannot read the tables (truncated, damaged or unreadable)");
    }
    const uint64_t computed = checksum_.finish();
    uint64_t stored = 0;
    if (!u64(stored) || left() != 0) {
        return fail(truncated);
    }
    if (stored != computed) {
        return fail("checksum mismatch: the file is damaged or cut (rebuild it)");
    }
    if (key != nullptr && edm_key_check(*key) != key_check) {
        return fail(
                "the key does not match: this index was built with another edm.key "
                "(use the key it was built with, or rebuild the index)");
    }

    // The tables themselves: every row number in range, one primary per row, and free slots
    // left in both tables (a probe for an absent hash must meet an empty slot).
    uint64_t primaries = 0;
    for (size_t i = 0; i < index->primary_hashes_.size(); ++i) {
        if (index->primary_hashes_[i] != 0) {
            ++primaries;
            if (index->primary_rows_[i] >= rows) {
                return fail("bad primary table: row number out of range (damaged?)");
            }
        }
    }
    if (primaries != rows) {
        return fail("bad primary table: " + std::to_string(primaries) + " entries for "
                + std::to_string(rows) + " rows (damaged?)");
    }
    uint64_t values = 0;
    for (const uint32_t fp : index->filter_) {
        values += fp != 0 ? 1 : 0;
    }
    if (!within_load(values, filter_capacity)) {
        return fail("bad value filter: over-full (damaged?)");
    }
    // Each word sets at most two bits.
    uint64_t word_bits_set = 0;
    for (size_t i = 0; i < word_bytes / 8; ++i) {
        word_bits_set +=
                static_cast<uint64_t>(std::popcount(index->word_bits_[index->word_align_ + i]));
    }
    if (word_bits_set > 2 * words) {
        return fail("bad word filter: " + std::to_string(word_bits_set) + " bits set for "
                + std::to_string(words) + " words (damaged?)");
    }
    index->key_ = key != nullptr ? *key : SipKey{};
    index->rows_ = rows;
    index->max_words_ = max_words;
    index->other_columns_ = static_cast<uint32_t>(other);
    index->primary_mask_ = primary_capacity - 1;
    index->filter_mask_ = filter_capacity - 1;
    index->filter_count_ = values;
    index->word_count_ = words;
    index->word_filter_log2_ = word_log2;
    index->word_line_mask_ = (uint64_t{1} << (word_log2 - kEdmWordFilterLineLog2)) - 1;
    index->has_word_filter_ = true;
    for (const auto& column : schema.columns) {
        index->has_numbers_ = index->has_numbers_ || column.type == EdmColumnType::Number;
    }
    return std::shared_ptr<const EdmIndex>(std::move(index));
}

namespace {

Result<std::shared_ptr<const EdmIndex>> load_file(const std::string& path, const SipKey* key) {
    FILE* file = fopen(path.c_str(), "rbe");
    if (file == nullptr) {
        return make_error(path + ": cannot open EDM index: " + errno_text(errno));
    }
    struct stat info {};
    if (fstat(fileno(file), &info) != 0 || !S_ISREG(info.st_mode)) {
        fclose(file);
        return make_error(path + ": not a regular file");
    }
    setvbuf(file, nullptr, _IOFBF, 1 << 20);
    EdmIndexLoader loader(path, file, {}, static_cast<uint64_t>(info.st_size));
    auto result = loader.load(key);
    fclose(file);
    return result;
}

}  // namespace

Result<std::shared_ptr<const EdmIndex>> EdmIndex::load(const std::string& path, const SipKey& key) {
    return load_file(path, &key);
}

Result<std::shared_ptr<const EdmIndex>> EdmIndex::load_without_key(const std::string& path) {
    return load_file(path, nullptr);
}

Result<std::shared_ptr<const EdmIndex>> EdmIndex::load_from_bytes(
        std::span<const uint8_t> bytes, const SipKey& key, const std::string& name) {
    EdmIndexLoader loader(name, nullptr, bytes, bytes.size());
    return loader.load(&key);
}

// ---------------------------------------------------------------------------------------
// Lookups (workers)

uint32_t EdmIndex::find_primary(uint64_t hash) const noexcept {
    const uint64_t h = hash == 0 ? 1 : hash;
    uint64_t slot = h & primary_mask_;
    for (;;) {
        const uint64_t stored = primary_hashes_[slot];
        if (stored == h) {
            return primary_rows_[slot];
        }
        if (stored == 0) {
            return kNoRow;
        }
        slot = (slot + 1) & primary_mask_;
    }
}

bool EdmIndex::maybe_value(uint32_t fingerprint) const noexcept {
    if (fingerprint == 0) {
        return false;
    }
    uint64_t slot = fingerprint & filter_mask_;
    for (;;) {
        const uint32_t stored = filter_[slot];
        if (stored == fingerprint) {
            return true;
        }
        if (stored == 0) {
            return false;
        }
        slot = (slot + 1) & filter_mask_;
    }
}

uint64_t EdmIndex::memory_bytes() const noexcept {
    return primary_hashes_.size() * sizeof(uint64_t) + primary_rows_.size() * sizeof(uint32_t)
            + fingerprints_.size() * sizeof(uint32_t) + filter_.size() * sizeof(uint32_t)
            + word_bits_.size() * sizeof(uint64_t);
}

// ---------------------------------------------------------------------------------------
// Key file

namespace {}  // namespace

Result<SipKey> edm_read_key(const std::string& path) {
    const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return make_error(path + ": cannot open EDM key: " + errno_text(errno));
    }
    struct stat info {};
    if (fstat(fd, &info) != 0 || !S_ISREG(info.st_mode)) {
        close(fd);
        return make_error(path + ": EDM key is not a regular file");
    }
    std::array<char, 128> text{};
    size_t got = 0;
    while (got < text.size()) {
        const ssize_t n = read(fd, text.data() + got, text.size() - got);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            const int err = errno;
            close(fd);
            return make_error(path + ": cannot read EDM key: " + errno_text(err));
        }
        if (n == 0) {
            break;
        }
        got += static_cast<size_t>(n);
    }
    close(fd);
    while (got > 0 && (text[got - 1] == '\n' || text[got - 1] == '\r' || text[got - 1] == ' ')) {
        --got;
    }
    std::array<uint8_t, 16> bytes{};
    bool ok = got == 32;
    for (size_t i = 0; ok && i < bytes.size(); ++i) {
        const int hi = hex_value(text[2 * i]);
        const int lo = hex_value(text[2 * i + 1]);
        ok = hi >= 0 && lo >= 0;
        bytes[i] = static_cast<uint8_t>((hi << 4) | (lo & 0xf));
    }
    if (!ok) {
        return make_error(path + ": not an EDM key (expected 32 hex characters and a newline)");
    }
    return SipKey::from_bytes(bytes);
}

Result<SipKey> edm_load_or_create_key(const std::string& path, bool* created) {
    if (created != nullptr) {
        *created = false;
    }
    struct stat info {};
    if (stat(path.c_str(), &info) == 0) {
        return edm_read_key(path);
    }
    std::array<uint8_t, 16> bytes{};
    size_t got = 0;
    while (got < bytes.size()) {
        const ssize_t n = getrandom(bytes.data() + got, bytes.size() - got, 0);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            return make_error(
                    path + ": cannot get random bytes for a new key: " + errno_text(errno));
        }
        got += static_cast<size_t>(n);
    }
    static constexpr char kHex[] = "0123456789abcdef";
    std::string text;
    for (const uint8_t b : bytes) {
        text.push_back(kHex[b >> 4]);
        text.push_back(kHex[b & 0xf]);
    }
    text.push_back('\n');
    // mkstemp makes the file 0600; link(2) then puts it in place only if no key is there.
    std::string temp = path + ".XXXXXX";
    const int fd = mkstemp(temp.data());
    if (fd < 0) {
        return make_error(path + ": cannot create the EDM key: " + errno_text(errno));
    }
    fchmod(fd, 0600);
    const bool written = write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size())
            && fsync(fd) == 0;
    const int write_err = errno;
    close(fd);
    std::fill(text.begin(), text.end(), '\0');
    if (!written) {
        unlink(temp.c_str());
        return make_error(path + ": cannot write the EDM key: " + errno_text(write_err));
    }
    const int linked = link(temp.c_str(), path.c_str());
    const int link_err = errno;
    unlink(temp.c_str());
    if (linked != 0) {
        if (link_err == EEXIST) {
            return edm_read_key(path);
        }
        return make_error(path + ": cannot create the EDM key: " + errno_text(link_err));
    }
    if (created != nullptr) {
        *created = true;
    }
    return SipKey::from_bytes(bytes);
}

}  // namespace exfiltap::detectors
