#include "detectors/edm_matcher.h"

#include <algorithm>
#include <bit>
#include <new>
#include <string_view>
#include <type_traits>

#include "detectors/content_scanner.h"
#include "detectors/edm_index.h"
#include "detectors/text_util.h"

namespace exfiltap::detectors {

namespace {

enum ByteClass : uint8_t {
    kSeparator = 0,
    kWordByte = 1,
    kJoiner = 2,
};

struct ByteClasses {
    std::array<uint8_t, 256> cls{};
    std::array<char, 256> lower{};
};

constexpr ByteClasses make_byte_classes() noexcept {
    ByteClasses t;
    for (unsigned c = 0; c < 256; ++c) {
        const auto b = static_cast<uint8_t>(c);
        t.cls[c] = edm_is_word_byte(b) ? kWordByte : (edm_is_joiner(b) ? kJoiner : kSeparator);
        t.lower[c] = static_cast<char>(c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c);
    }
    return t;
}

// Built at compile time: the per-byte path reads it without a guard.
constexpr ByteClasses kByteClasses = make_byte_classes();

thread_local EdmStatePool* t_current_pool = nullptr;

constexpr uint8_t kLookPrimaryText = 1;
constexpr uint8_t kLookPrimaryNumber = 2;
constexpr uint8_t kLookValueText = 4;
constexpr uint8_t kLookValueNumber = 8;

uint8_t lookups_of(const EdmIndex& index) noexcept {
    const EdmSchema& schema = index.schema();
    uint8_t bits = 0;
    for (size_t c = 0; c < schema.columns.size(); ++c) {
        const bool number = schema.columns[c].type == EdmColumnType::Number;
        if (c == schema.primary) {
            bits |= number ? kLookPrimaryNumber : kLookPrimaryText;
        } else {
            bits |= number ? kLookValueNumber : kLookValueText;
        }
    }
    return bits;
}

}  // namespace

void EdmStream::reset(const std::vector<EdmTableRules>& tables, EdmCounters& counters) noexcept {
    tables_ = &tables;
    for (const EdmTableRules& table : tables) {
        if (table.index == nullptr) {
            tables_ = nullptr;  // not loaded (a parse without load_edm): nothing to match
        }
    }
    counters_ = &counters;
    max_words_ = 1;
    numbers_ = false;
    const size_t n = std::min(tables.size(), kMaxEdmTables);
    for (size_t t = 0; t < n; ++t) {
        if (tables[t].index != nullptr) {
            max_words_ = std::max(max_words_, tables[t].index->max_words());
            numbers_ = numbers_ || tables[t].index->has_numbers();
            lookups_[t] = lookups_of(*tables[t].index);
        }
    }
    max_words_ = std::min<uint32_t>(max_words_, kEdmMaxValueWords);
    word_len_ = 0;
    word_committed_ = 0;
    word_too_long_ = false;
    joiner_overflow_ = false;
    joiner_pending_ = false;
    held_len_ = 0;
    word_count_ = 0;
    word_head_ = 0;
    hit_count_ = 0;
    hit_head_ = 0;
    candidate_count_ = 0;
    matched_count_ = 0;
    matched_head_ = 0;
    tables_state_ = {};
    origin_ = 0;
}

void EdmStream::scan(std::span<const uint8_t> data, uint64_t offset, bool gap_before,
        FindingSink& sink) noexcept {
    if (tables_ == nullptr || tables_->empty()) {
        return;
    }
    if (gap_before) {
        // A word cut by lost bytes is not a word, and no sequence joins across the gap.
        word_len_ = 0;
        word_committed_ = 0;
        word_too_long_ = false;
        joiner_overflow_ = false;
        joiner_pending_ = false;
        held_len_ = 0;
        word_count_ = 0;
    }
    for (size_t i = 0; i < data.size(); ++i) {
        const uint8_t c = data[i];
        if (held_len_ == 0 && c != '%' && c != '\\') {
            feed(c, offset + i, sink);
        } else {
            unescape(c, offset + i, sink);
        }
    }
}

void EdmStream::unescape(uint8_t c, uint64_t at, FindingSink& sink) noexcept {
    // URL escapes (%XX) stand for their byte, JSON escapes (\uXXXX) for their character in
    // UTF-8 (a surrogate for a separator); anything else is taken as it is.
    if (held_len_ == 0) {
        held_[held_len_++] = c;  // '%' or '\\'
        return;
    }
    const bool url = held_[0] == '%';
    const int v = hex_value(static_cast<char>(c));
    const bool fits = url ? v >= 0 : (held_len_ == 1 ? c == 'u' : v >= 0);
    if (!fits) {
        flush_held(at, sink);
        if (c == '%' || c == '\\') {
            held_[held_len_++] = c;
        } else {
            feed(c, at, sink);
        }
        return;
    }
    held_[held_len_++] = c;
    if (url && held_len_ == 3) {
        held_len_ = 0;
        feed(static_cast<uint8_t>(hex_value(static_cast<char>(held_[1])) << 4 | v), at, sink);
    } else if (!url && held_len_ == 6) {
        held_len_ = 0;
        uint32_t code = 0;
        for (size_t k = 2; k < 6; ++k) {
            code = code << 4 | static_cast<uint32_t>(hex_value(static_cast<char>(held_[k])));
        }
        if (code < 0x80) {
            feed(static_cast<uint8_t>(code), at, sink);
        } else if (code < 0x800) {
            feed(static_cast<uint8_t>(0xc0 | code >> 6), at, sink);
            feed(static_cast<uint8_t>(0x80 | (code & 0x3f)), at, sink);
        } else if (code >= 0xd800 && code <= 0xdfff) {
            feed(' ', at, sink);  // half of a pair: not decoded, not joined to a word
        } else {
            feed(static_cast<uint8_t>(0xe0 | code >> 12), at, sink);
            feed(static_cast<uint8_t>(0x80 | ((code >> 6) & 0x3f)), at, sink);
            feed(static_cast<uint8_t>(0x80 | (code & 0x3f)), at, sink);
        }
    }
}

void EdmStream::flush_held(uint64_t at, FindingSink& sink) noexcept {
    const uint8_t n = held_len_;
    held_len_ = 0;
    for (uint8_t k = 0; k < n; ++k) {
        feed(held_[k], at, sink);
    }
}

void EdmStream::feed(uint8_t c, uint64_t at, FindingSink& sink) noexcept {
    if (c == 0xa0 && word_len_ > 0 && !word_too_long_
            && word_[word_len_ - 1] == static_cast<char>(0xc2)) {
        // A no-break space (C2 A0): the C2 was not a word byte after all, and this separates.
        --word_len_;
        while (word_len_ > 0 && edm_is_joiner(static_cast<uint8_t>(word_[word_len_ - 1]))) {
            --word_len_;
        }
        word_committed_ = word_len_;
        joiner_pending_ = false;
        joiner_overflow_ = false;
        close_word(at, sink);
        return;
    }
    const ByteClasses& classes = kByteClasses;
    const uint8_t cls = classes.cls[c];
    const bool in_word = word_committed_ > 0 || word_too_long_;
    if (cls == kWordByte) {
        joiner_pending_ = false;
        if (word_too_long_) {
            return;
        }
        if (joiner_overflow_ || word_len_ >= kEdmMaxWordBytes) {
            word_too_long_ = true;  // not a word; the rest of it is skipped
            return;
        }
        word_[word_len_++] = classes.lower[c];
        word_committed_ = word_len_;
        return;
    }
    if (!in_word) {
        return;
    }
    if (cls == kJoiner && !joiner_pending_) {
        // Kept only when a word byte follows (a second joiner or a separator ends the word
        // without it).
        joiner_pending_ = true;
        if (word_too_long_) {
            return;
        }
        if (word_len_ < kEdmMaxWordBytes) {
            word_[word_len_++] = static_cast<char>(c);
        } else {
            joiner_overflow_ = true;
        }
        return;
    }
    // A separator, or a joiner after a joiner: the word ends at its last word byte.
    close_word(at - (joiner_pending_ ? 1 : 0), sink);
}

void EdmStream::close_word(uint64_t end_offset, FindingSink& sink) noexcept {
    if (word_too_long_) {
        word_count_ = 0;  // not a word: the sequence breaks here
    } else if (word_committed_ > 0) {
        end_word(end_offset, sink);
    }
    word_len_ = 0;
    word_committed_ = 0;
    word_too_long_ = false;
    joiner_overflow_ = false;
    joiner_pending_ = false;
}

void EdmStream::finish(uint64_t offset, FindingSink& sink) noexcept {
    if (tables_ == nullptr || tables_->empty()) {
        return;
    }
    flush_held(offset, sink);
    close_word(offset - (joiner_pending_ ? 1 : 0), sink);
    word_count_ = 0;
    settle(offset, true, sink);
    const size_t n = std::min(tables_->size(), kMaxEdmTables);
    for (size_t t = 0; t < n; ++t) {
        if (tables_state_[t].records > tables_state_[t].reported) {
            report(static_cast<uint8_t>(t), sink);
        }
    }
}

void EdmStream::end_word(uint64_t end_offset, FindingSink& sink) noexcept {
    if (candidate_count_ > 0) {
        settle(end_offset, false, sink);
    }
    const std::string_view text(word_.data(), word_committed_);
    counters_->words.add();
    Word& word = words_[word_head_];
    word.hash = edm_word_hash((*tables_)[0].index->key(), text);
    word.numeric = false;
    word.digits_len = 0;
    if (numbers_) {
        bool numeric = true;
        size_t digits = 0;
        for (const char ch : text) {
            if (is_digit(ch)) {
                if (digits < word.digits.size()) {
                    word.digits[digits] = ch;
                }
                ++digits;
            } else if (!edm_is_joiner(static_cast<uint8_t>(ch))) {
                numeric = false;
                break;
            }
        }
        word.numeric = numeric && digits > 0 && digits <= word.digits.size();
        word.digits_len = word.numeric ? static_cast<uint8_t>(digits) : 0;
    }
    // A word that is in no stored text value ends every sequence here (most words of
    // ordinary traffic: one probe of a cache-line Bloom filter each). Numbers pass: a number
    // column matches digits across the words that hold them.
    word.known = false;
    const size_t tables = std::min(tables_->size(), kMaxEdmTables);
    for (size_t t = 0; t < tables && !word.known; ++t) {
        word.known = (*tables_)[t].index->maybe_word(word.hash);
    }
    if (!word.known) {
        counters_->words_unknown.add();
        if (!word.numeric) {
            word_count_ = 0;
            return;
        }
    }
    word_head_ = (word_head_ + 1) % max_words_;
    word_count_ = std::min(word_count_ + 1, max_words_);

    // Every sequence of the last n words, n = 1..word_count_, ends at this word: as text
    // when all its words are known, as a number when all are numeric.
    const SipKey& key = (*tables_)[0].index->key();
    for (uint32_t n = 1; n <= word_count_; ++n) {
        const uint32_t first = (word_head_ + max_words_ - n) % max_words_;
        uint64_t hash = words_[first].hash;
        bool numeric = words_[first].numeric;
        bool known = words_[first].known;
        for (uint32_t k = 1; k < n; ++k) {
            const Word& next = words_[(first + k) % max_words_];
            hash = edm_combine(hash, next.hash);
            numeric = numeric && next.numeric;
            known = known && next.known;
        }
        if (!known && !numeric) {
            break;  // a longer sequence holds the same word
        }
        if (known) {
            on_sequence(hash, false, n, end_offset, sink);
        }
        if (numeric) {
            std::array<char, kEdmMaxNumberDigits> digits{};
            size_t len = 0;
            for (uint32_t k = 0; k < n && numeric; ++k) {
                const Word& w = words_[(first + k) % max_words_];
                if (len + w.digits_len > digits.size()) {
                    numeric = false;
                    break;
                }
                std::copy_n(w.digits.data(), w.digits_len, digits.data() + len);
                len += w.digits_len;
            }
            if (numeric) {
                on_sequence(edm_number_hash(key, std::string_view(digits.data(), len)), true, n,
                        end_offset, sink);
            }
        }
    }
}

void EdmStream::on_sequence(
        uint64_t hash, bool number, size_t words, uint64_t end_offset, FindingSink& sink) noexcept {
    const size_t n = std::min(tables_->size(), kMaxEdmTables);
    for (size_t t = 0; t < n; ++t) {
        const EdmIndex* index = (*tables_)[t].index.get();
        if (index == nullptr || words > index->max_words()) {
            continue;
        }
        const uint8_t look = lookups_[t];
        if ((look & (number ? kLookPrimaryNumber : kLookPrimaryText)) != 0) {
            const uint32_t row = index->find_primary(hash);
            if (row != EdmIndex::kNoRow) {
                on_primary(static_cast<uint8_t>(t), row, end_offset, sink);
            }
        }
        const uint32_t fingerprint = EdmIndex::fingerprint_of(hash);
        if ((look & (number ? kLookValueNumber : kLookValueText)) != 0
                && index->maybe_value(fingerprint)) {
            on_value(static_cast<uint8_t>(t), fingerprint, end_offset, sink);
        }
    }
}

bool EdmStream::corroborate(Candidate& candidate, uint32_t fingerprint) const noexcept {
    const EdmIndex& index = *(*tables_)[candidate.table].index;
    for (uint32_t slot = 0; slot < index.other_columns(); ++slot) {
        if ((candidate.mask & (1U << slot)) == 0
                && index.fingerprint(candidate.row, slot) == fingerprint) {
            candidate.mask |= 1U << slot;
            return true;
        }
    }
    return false;
}

namespace {

// The other-column slots where `row` has a stored value.
uint32_t stored_mask(const EdmIndex& index, uint32_t row) noexcept {
    uint32_t mask = 0;
    for (uint32_t slot = 0; slot < index.other_columns(); ++slot) {
        mask |= index.fingerprint(row, slot) != 0 ? 1U << slot : 0U;
    }
    return mask;
}

// Other values a record needs: min_matches, but never more than the row has stored, and at
// least one when min_matches asks for any.
uint32_t required_matches(const EdmTableRules& rules, uint32_t stored) noexcept {
    if (rules.min_matches == 0 || rules.index->other_columns() == 0) {
        return 0;  // configured so, or a table of its primary column only
    }
    return std::max<uint32_t>(
            1, std::min<uint32_t>(rules.min_matches, static_cast<uint32_t>(std::popcount(stored))));
}

}  // namespace

bool EdmStream::advance(Candidate& candidate, FindingSink& sink) noexcept {
    const EdmTableRules& rules = (*tables_)[candidate.table];
    const uint32_t stored = stored_mask(*rules.index, candidate.row);
    if (!candidate.counted
            && static_cast<uint32_t>(std::popcount(candidate.mask))
                    >= required_matches(rules, stored)) {
        // The record counts now; it is reported once it has all its values or its window
        // has passed, so the report names every column seen.
        candidate.counted = true;
        matched_[matched_head_] = (uint64_t{candidate.table} << 32) | candidate.row;
        matched_head_ = (matched_head_ + 1) % kMaxMatched;
        matched_count_ = std::min<uint32_t>(matched_count_ + 1, kMaxMatched);
        ++tables_state_[candidate.table].records;
        counters_->records.add();
    }
    if (candidate.counted && (candidate.mask & stored) == stored) {
        finalize(candidate, sink);
        return true;
    }
    return false;
}

void EdmStream::settle(uint64_t end_offset, bool all, FindingSink& sink) noexcept {
    uint32_t kept = 0;
    for (uint32_t i = 0; i < candidate_count_; ++i) {
        Candidate& c = candidates_[i];
        if (all || end_offset - c.offset > (*tables_)[c.table].window_bytes) {
            if (c.counted) {
                finalize(c, sink);
            }
            continue;  // uncounted: left its window uncorroborated
        }
        candidates_[kept++] = c;
    }
    candidate_count_ = kept;
}

void EdmStream::on_primary(
        uint8_t table, uint32_t row, uint64_t end_offset, FindingSink& sink) noexcept {
    counters_->primary_hits.add();
    if (already_matched(table, row)) {
        return;
    }
    for (uint32_t i = 0; i < candidate_count_; ++i) {
        if (candidates_[i].table == table && candidates_[i].row == row) {
            return;  // waiting already: it keeps its first position
        }
    }
    const EdmTableRules& rules = (*tables_)[table];
    Candidate candidate{end_offset, row, 0, table, false};
    for (uint32_t i = 0; i < hit_count_; ++i) {
        const Hit& hit = hits_[i];
        if (hit.table == table && end_offset - hit.offset <= rules.window_bytes) {
            corroborate(candidate, hit.fingerprint);
        }
    }
    if (advance(candidate, sink)) {
        return;
    }
    if (candidate_count_ == kMaxCandidates) {
        // The oldest waiting record gives way: reported if it counted, else dropped.
        if (candidates_[0].counted) {
            finalize(candidates_[0], sink);
        } else {
            counters_->candidates_dropped.add();
        }
        std::move(candidates_.begin() + 1, candidates_.end(), candidates_.begin());
        --candidate_count_;
    }
    candidates_[candidate_count_++] = candidate;
}

void EdmStream::on_value(
        uint8_t table, uint32_t fingerprint, uint64_t end_offset, FindingSink& sink) noexcept {
    counters_->value_hits.add();
    if (hit_count_ == kMaxHits) {
        const Hit& old = hits_[hit_head_];
        if (end_offset - old.offset <= (*tables_)[old.table].window_bytes) {
            counters_->hits_overwritten.add();
        }
    } else {
        ++hit_count_;
    }
    hits_[hit_head_] = Hit{end_offset, fingerprint, table};
    hit_head_ = (hit_head_ + 1) % kMaxHits;

    uint32_t kept = 0;
    for (uint32_t i = 0; i < candidate_count_; ++i) {
        Candidate& c = candidates_[i];
        if (c.table == table && corroborate(c, fingerprint) && advance(c, sink)) {
            continue;  // complete: reported
        }
        candidates_[kept++] = c;
    }
    candidate_count_ = kept;
}

bool EdmStream::already_matched(uint8_t table, uint32_t row) const noexcept {
    const uint64_t key = (uint64_t{table} << 32) | row;
    for (uint32_t i = 0; i < matched_count_; ++i) {
        if (matched_[i] == key) {
            return true;
        }
    }
    return false;
}

void EdmStream::finalize(const Candidate& candidate, FindingSink& sink) noexcept {
    const EdmIndex& index = *(*tables_)[candidate.table].index;
    TableState& ts = tables_state_[candidate.table];
    ts.columns |= 1U << index.schema().primary;
    for (uint32_t slot = 0; slot < index.other_columns(); ++slot) {
        if ((candidate.mask & (1U << slot)) != 0) {
            ts.columns |= 1U << index.column_of_slot(slot);
        }
    }
    const uint32_t stored = stored_mask(index, candidate.row);
    ts.last_high = (candidate.mask & stored) == stored;
    ts.last_offset = candidate.offset;
    ++ts.finalized;
    if (ts.finalized <= kEdmReportEach || ts.finalized % kEdmReportEvery == 0) {
        report(candidate.table, sink);
    }
}

void EdmStream::report(uint8_t table, FindingSink& sink) noexcept {
    TableState& ts = tables_state_[table];
    Finding finding;
    finding.cls = ContentClass::Edm;
    finding.confidence = ts.last_high ? Confidence::High : Confidence::Low;
    finding.rule = static_cast<uint16_t>(table + 1);
    finding.distinct_count = ts.records;
    finding.columns = ts.columns;
    finding.origin = origin_;
    finding.end_offset = ts.last_offset;
    sink.push(finding);
    ts.reported = ts.records;
}

EdmStatePool::EdmStatePool(size_t count)
    : count_(count),
      // Default-initialised: the pages are not touched until a block is constructed.
      memory_(new unsigned char[std::max<size_t>(count, 1) * sizeof(EdmStream)]) {
    free_.reserve(count);
}

EdmStatePool::~EdmStatePool() {
    if (t_current_pool == this) {
        t_current_pool = nullptr;
    }
}

void EdmStatePool::bind_to_this_thread() noexcept {
    t_current_pool = this;
}

EdmStatePool* EdmStatePool::current() noexcept {
    return t_current_pool;
}

EdmStream* EdmStatePool::acquire(const std::vector<EdmTableRules>& tables) noexcept {
    EdmStream* stream = nullptr;
    if (!free_.empty()) {
        stream = free_.back();
        free_.pop_back();
    } else if (constructed_ < count_) {
        static_assert(alignof(EdmStream) <= __STDCPP_DEFAULT_NEW_ALIGNMENT__);
        static_assert(std::is_trivially_destructible_v<EdmStream>);  // never destroyed
        stream = new (memory_.get() + constructed_ * sizeof(EdmStream)) EdmStream();
        ++constructed_;
    } else {
        counters_.state_exhausted.add();
        return nullptr;
    }
    ++in_use_;
    stream->reset(tables, counters_);
    return stream;
}

void EdmStatePool::release(EdmStream* stream) noexcept {
    if (stream == nullptr) {
        return;
    }
    --in_use_;
    free_.push_back(stream);  // capacity reserved: never allocates
}

}  // namespace exfiltap::detectors
