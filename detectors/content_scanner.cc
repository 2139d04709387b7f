#include "detectors/content_scanner.h"

#include <algorithm>
#include <climits>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>

#include <hs.h>

#include "detectors/char_class.h"
#include "detectors/edm_matcher.h"
#include "detectors/secret_validators.h"
#include "detectors/validators.h"

namespace exfiltap::detectors {

namespace {

// Bytes before a value's end handed to the validator: the whole history. The longest card
// with separators is 23 characters and a run that fills this window cannot form a layout;
// longer values (JWTs) are validated on what is visible.
constexpr size_t kLookBehindBytes = kHistoryBytes;
// How far before the first card value end of a scan call the card tracker starts: past the
// kCardLayoutGroups groups of a grouped card number (25 bytes in four-digit groups, which
// a walk back reads with the 2 bytes before them) and a cut four-digit group with its
// separator before those (32 bytes in all), so that digit-dense text is settled from its
// first value end; longer groups only cost a validation (judge() says Maybe when a walk
// would read bytes the tracker did not see). 48 bytes cost ~150 more instructions a segment
// on exfiltap-bench digits for the same findings.
constexpr uint64_t kCardTrackerLeadBytes = 32;
// Segments from this long on fetch the state that findings touch before the scan: values
// turn up in them, and Hyperscan's first bytes give the lines time to arrive
// (exfiltap-bench digits: the first touch of seen_count_ was a third of report()'s samples).
constexpr size_t kPrefetchFindingBytes = 512;
// Bytes after a private key header read for the start of its body (armour headers
// included).
constexpr size_t kKeyBodyBytes = 256;
constexpr size_t kBlockAlignBytes = 64;
constexpr uint64_t kNone = UINT64_MAX;
// Longest distance from a validated JWT header to the end of its token that still counts.
constexpr uint64_t kMaxJwtBytes = 16384;

constexpr uint8_t kWaitKeyword = 1;  // no keyword before: wait for one after
constexpr uint8_t kWaitBody = 2;     // private key header: wait for the body's first characters
constexpr uint8_t kWaitSettle = 4;   // custom regex: a longer match may still come
constexpr uint8_t kWaitMark = 8;     // source_code, document: the mark that makes it High

std::string custom_regex_where(const ContentConfig& config, size_t rule) {
    std::string where = config.custom[rule].source;
    if (!where.empty()) {
        where += ": ";
    }
    return where + "content.custom[" + std::to_string(rule) + "].regex";
}

// Compiles every custom regex alone so that each refused one is reported, not only the
// first.
Status check_custom_regexes(const ContentConfig& config, unsigned mode) {
    std::string problems;
    for (size_t r = 0; r < config.custom.size(); ++r) {
        const CustomRule& rule = config.custom[r];
        if (!rule.keywords.empty()) {
            continue;
        }
        hs_database_t* db = nullptr;
        hs_compile_error_t* err = nullptr;
        if (hs_compile(rule.regex.c_str(), HS_FLAG_SOM_LEFTMOST, mode, nullptr, &db, &err)
                == HS_SUCCESS) {
            hs_free_database(db);
            continue;
        }
        if (!problems.empty()) {
            problems += '\n';
        }
        problems += custom_regex_where(config, r) + ": Hyperscan refuses '" + rule.regex
                + "': " + (err != nullptr && err->message != nullptr ? err->message : "unknown");
        hs_free_compile_error(err);
    }
    if (!problems.empty()) {
        return make_error(std::move(problems));
    }
    return Ok{};
}

Error compile_error(const std::vector<PatternSource>& sources, const hs_compile_error_t* err,
        const ContentConfig& config) {
    const std::string reason =
            err != nullptr && err->message != nullptr ? err->message : "unknown error";
    if (err == nullptr || err->expression < 0
            || static_cast<size_t>(err->expression) >= sources.size()) {
        return make_error("content detector: pattern database failed to compile: " + reason);
    }
    const PatternSource& source = sources[static_cast<size_t>(err->expression)];
    if (source.info.rule != 0) {
        const size_t rule = source.info.rule - 1U;
        std::string where = config.custom[rule].source;
        return make_error((where.empty() ? "" : where + ": ") + "content.custom["
                + std::to_string(rule) + "]: Hyperscan refuses '" + source.expression
                + "': " + reason);
    }
    return make_error("content detector: pattern database failed to compile: " + reason
            + " (pattern " + std::to_string(err->expression) + " of class "
            + std::string(content_class_name(source.info.cls))
            + (source.info.kind == PatternKind::Keyword ? ", keyword " : ", value ")
            + source.expression + "); check the class keywords in the content configuration");
}

Result<hs_database_t*> compile_set(
        const std::vector<PatternSource>& sources, unsigned mode, const ContentConfig& config) {
    std::vector<const char*> expressions;
    std::vector<unsigned> flags;
    std::vector<unsigned> ids;
    for (size_t i = 0; i < sources.size(); ++i) {
        expressions.push_back(sources[i].expression.c_str());
        flags.push_back(sources[i].flags);
        ids.push_back(static_cast<unsigned>(i));
    }
    hs_database_t* db = nullptr;
    hs_compile_error_t* err = nullptr;
    if (hs_compile_multi(expressions.data(), flags.data(), ids.data(),
                static_cast<unsigned>(sources.size()), mode, nullptr, &db, &err)
            != HS_SUCCESS) {
        Error error = compile_error(sources, err, config);
        hs_free_compile_error(err);
        return error;
    }
    return db;
}

// Finds the thread's pool from Hyperscan's process-wide allocator hook. The address range
// lets the free hook tell pool blocks from malloc() fallbacks.
struct PoolBinding {
    StreamPool* pool = nullptr;
    uintptr_t begin = 0;
    uintptr_t end = 0;
};
// Written only by its own thread (bind, pool destruction); read by Hyperscan's hooks.
thread_local PoolBinding t_binding;  // NOLINT(cppcoreguidelines-avoid-non-const-global-variables)

void* stream_alloc(size_t bytes) {
    if (t_binding.pool != nullptr) {
        return t_binding.pool->allocate(bytes);
    }
    return std::malloc(bytes);
}

void stream_free(void* block) {
    const auto address = reinterpret_cast<uintptr_t>(block);
    if (t_binding.pool != nullptr && address >= t_binding.begin && address < t_binding.end) {
        t_binding.pool->release(block);
        return;
    }
    std::free(block);
}

unsigned char* aligned_base(unsigned char* memory) {
    const auto misalignment = reinterpret_cast<uintptr_t>(memory) % kBlockAlignBytes;
    return misalignment == 0 ? memory : memory + (kBlockAlignBytes - misalignment);
}

// Whether the digit-and-separator run ending at `end` reaches the first byte of `text`.
bool run_reaches_start(std::string_view text, size_t end) {
    size_t i = end;
    while (i > 0) {
        const char c = text[i - 1];
        const bool joined = (c == ' ' || c == '-') && i >= 2 && is_digit(text[i - 2]);
        if (!is_digit(c) && !joined) {
            break;
        }
        --i;
    }
    return i == 0;
}

uint64_t value_hash(ContentClass cls, uint16_t rule, std::string_view key) {
    uint64_t hash = 0xcbf29ce484222325ULL;  // FNV-1a
    hash = (hash ^ static_cast<uint8_t>(cls)) * 0x100000001b3ULL;
    hash = (hash ^ (rule & 0xFFU)) * 0x100000001b3ULL;
    hash = (hash ^ (rule >> 8U)) * 0x100000001b3ULL;
    for (const char c : key) {
        hash = (hash ^ static_cast<uint8_t>(c)) * 0x100000001b3ULL;
    }
    return hash;
}

Candidate validate(const PatternInfo& info, std::string_view text, size_t end, bool reject,
        bool jwt_header_seen) noexcept {
    switch (info.cls) {
    case ContentClass::PaymentCard:
        return extract_card(text, end, reject);
    case ContentClass::UsSsn:
        return extract_ssn(text, end, reject);
    case ContentClass::Iban:
        return extract_iban(text, end, reject);
    case ContentClass::PrivateKey:
        return extract_private_key(text, end);
    case ContentClass::CloudToken:
    case ContentClass::VcsToken:
        return extract_token(static_cast<TokenKind>(info.variant), text, end, reject);
    case ContentClass::Jwt:
        return extract_jwt(text, end, jwt_header_seen);
    case ContentClass::PasswordAssignment:
        return extract_password(text, end, reject);
    case ContentClass::ClassificationMarker:
        return extract_marker(text, end);
    case ContentClass::Custom:
    case ContentClass::Edm:
    case ContentClass::SourceCode:  // literals only (extract_literal), tokens are counted
    case ContentClass::Document:    // formats and labels are not values
        break;
    }
    return {};
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// PatternDatabase

Result<std::shared_ptr<const PatternDatabase>> PatternDatabase::compile(
        const ContentConfig& config) {
    if (hs_valid_platform() != HS_SUCCESS) {
        return make_error(
                "content detector: this CPU lacks SSSE3, which Hyperscan needs; content "
                "inspection cannot run on this machine");
    }
    constexpr unsigned kSomMode = HS_MODE_STREAM | HS_MODE_SOM_HORIZON_SMALL;
    if (Status checked = check_custom_regexes(config, kSomMode); !checked) {
        return Error{checked.error()};
    }
    auto collected = collect_patterns(config);
    if (!collected.ok()) {
        return Error{collected.error()};
    }
    PatternSet& set = collected.value();

    std::shared_ptr<PatternDatabase> out(new PatternDatabase());
    out->config_ = config;
    out->literals_ = std::move(set.literals);
    out->has_keywords_ = set.has_keywords;
    if (!set.main.empty()) {
        auto db = compile_set(set.main, HS_MODE_STREAM, config);
        if (!db.ok()) {
            return Error{db.error()};
        }
        out->db_ = db.value();
    }
    if (!set.som.empty()) {
        auto db = compile_set(set.som, kSomMode, config);
        if (!db.ok()) {
            return Error{db.error()};
        }
        out->som_db_ = db.value();
    }
    for (const PatternSource& source : set.main) {
        const PatternInfo& info = source.info;
        if (out->card_run_id_ == UINT32_MAX && info.cls == ContentClass::PaymentCard
                && info.kind == PatternKind::Value && info.terminated) {
            out->card_run_id_ = static_cast<unsigned>(out->patterns_.size());
        }
        out->patterns_.push_back(info);
    }
    for (const PatternSource& source : set.som) {
        out->som_patterns_.push_back(source.info);
    }
    for (hs_database_t* db : {out->db_, out->som_db_}) {
        size_t size = 0;
        if (db == nullptr) {
            continue;
        }
        const hs_error_t rc = hs_stream_size(db, &size);
        if (rc != HS_SUCCESS) {
            return make_error("content detector: hs_stream_size failed with code "
                    + std::to_string(rc) + " on a freshly compiled database");
        }
        out->stream_size_ = std::max(out->stream_size_, size);
    }
    return std::shared_ptr<const PatternDatabase>(std::move(out));
}

PatternDatabase::~PatternDatabase() {
    hs_free_database(db_);
    hs_free_database(som_db_);
}

Result<hs_scratch*> PatternDatabase::alloc_scratch() const {
    hs_scratch_t* scratch = nullptr;
    if (Status grown = grow_scratch(scratch); !grown) {
        hs_free_scratch(scratch);
        return Error{grown.error()};
    }
    return scratch;
}

Status PatternDatabase::grow_scratch(hs_scratch*& scratch) const {
    for (hs_database_t* db : {db_, som_db_}) {
        if (db == nullptr) {
            continue;
        }
        const hs_error_t rc = hs_alloc_scratch(db, &scratch);
        if (rc != HS_SUCCESS) {
            return make_error("content detector: hs_alloc_scratch failed with code "
                    + std::to_string(rc) + "; the worker cannot scan (out of memory?)");
        }
    }
    return Ok{};
}

void PatternDatabase::free_scratch(hs_scratch* scratch) noexcept {
    hs_free_scratch(scratch);
}

// ---------------------------------------------------------------------------------------------
// StreamPool

StreamPool::StreamPool(size_t block_count, size_t block_bytes)
    : block_count_(block_count),
      block_bytes_(
              (std::max<size_t>(block_bytes, 1) + kBlockAlignBytes - 1) & ~(kBlockAlignBytes - 1)),
      memory_(new unsigned char[block_count_ * block_bytes_ + kBlockAlignBytes]) {
    free_.reserve(block_count_);
    unsigned char* base = aligned_base(memory_.get());
    // Reverse order so that the first allocations take the lowest addresses.
    for (size_t i = block_count_; i-- > 0;) {
        free_.push_back(base + i * block_bytes_);
    }
}

StreamPool::~StreamPool() {
    if (t_binding.pool == this) {
        t_binding = PoolBinding{};
    }
}

void StreamPool::install_hyperscan_allocator() noexcept {
    // Only stream state: scratch and databases keep Hyperscan's default allocator.
    hs_set_stream_allocator(stream_alloc, stream_free);
}

void StreamPool::bind_to_this_thread() noexcept {
    const auto base = reinterpret_cast<uintptr_t>(aligned_base(memory_.get()));
    t_binding = PoolBinding{this, base, base + block_count_ * block_bytes_};
}

void* StreamPool::allocate(size_t bytes) noexcept {
    if (bytes > block_bytes_ || free_.empty()) {
        ++exhausted_;
        return nullptr;
    }
    void* block = free_.back();
    free_.pop_back();
    ++in_use_;
    return block;
}

void StreamPool::release(void* block) noexcept {
    if (block == nullptr) {
        return;
    }
    free_.push_back(block);  // never grows: capacity was reserved for every block
    --in_use_;
}

// ---------------------------------------------------------------------------------------------
// ContentStream

// The state of one scan or close call, handed to Hyperscan's match callbacks. It sees the
// direction's history (bytes before `data`) and `data` as one range of stream offsets.
struct ScanContext {
    ContentStream& stream;
    FindingSink& sink;
    std::span<const uint8_t> data;
    uint64_t data_offset;  // stream offset of data[0]
    // The last digit-class value judged in this call: several patterns of one class (lengths,
    // separators) end on the same byte, and their validator reads the same bytes, so the
    // second judgement is the first's (exfiltap-bench digits: ~3 matches a digit run).
    uint64_t judged_end = UINT64_MAX;
    ContentClass judged_cls = ContentClass::Custom;
    // Card values: the run ending at each match, followed forward once instead of walked
    // back from every group end (the stream's, kept across calls).
    CardRunTracker& cards = stream.cards_;
    // Card value ends the tracker settled ahead as NoCard, as the ends of the card pattern's
    // matches (the byte after the value): [card_skip_to, card_skip_to + card_skip_span).
    // on_hs_match() drops the matches ending there with one comparison (exfiltap-bench
    // digits: ~255 of them a 1460-byte segment).
    uint64_t card_skip_to = 0;
    uint64_t card_skip_span = 0;
    unsigned card_id = UINT_MAX;  // set with the first range

    const PatternDatabase& db() const noexcept { return *stream.db_; }
    const ContentConfig& config() const noexcept { return stream.db_->config(); }
    uint64_t earliest() const noexcept { return data_offset - stream.history_len_; }
    uint64_t available_end() const noexcept { return data_offset + data.size(); }

    // Copies stream bytes [begin, stop) into `out`; returns the count. Two block copies (the
    // history part, then the data part): every candidate match copies up to 129 bytes, and
    // byte by byte this was most of the content stage on exfiltap-bench's digits scenario.
    template <size_t N>
    size_t copy(uint64_t begin, uint64_t stop, std::array<char, N>& out) const noexcept {
        if (stop <= begin) {
            return 0;
        }
        const auto total = static_cast<size_t>(std::min<uint64_t>(stop - begin, N));
        size_t length = 0;
        if (begin < data_offset) {
            const auto from_history =
                    static_cast<size_t>(std::min<uint64_t>(data_offset - begin, total));
            std::memcpy(out.data(),
                    stream.history_.data() + (stream.history_len_ - (data_offset - begin)),
                    from_history);
            length = from_history;
        }
        if (length < total) {
            const uint64_t from = begin + length;
            std::memcpy(out.data() + length, data.data() + (from - data_offset), total - length);
            length = total;
        }
        return length;
    }

    // Stream bytes [begin, stop) (clipped to what was scanned) as text: a view of `data`
    // when they all lie in it, else copied into `buffer`.
    template <size_t N>
    std::string_view window(
            uint64_t begin, uint64_t stop, std::array<char, N>& buffer) const noexcept {
        stop = std::min(stop, available_end());
        if (begin >= data_offset && stop >= begin && stop - begin <= N) {
            return {reinterpret_cast<const char*>(data.data() + (begin - data_offset)),
                    static_cast<size_t>(stop - begin)};
        }
        return {buffer.data(), copy(begin, stop, buffer)};
    }

    // False when no card value ends at `value_end` (text from `begin`): the tracker follows
    // the bytes since the previous card match, so a run costs one pass however many of its
    // group ends match.
    bool card_possible(uint64_t begin, uint64_t value_end) noexcept {
        if (!stream.cards_live_ || cards.next() > value_end || cards.next() < earliest()
                || value_end - cards.next() > kLookBehindBytes) {
            // Not from `begin`: the verdicts only need the groups a walk back from a value
            // end reads, and feeding the whole window was most of a scan call's start.
            cards.reset(std::max(begin, value_end - std::min(value_end, kCardTrackerLeadBytes)));
            stream.cards_live_ = true;
        }
        const uint64_t at = cards.next();
        if (at < data_offset) {
            const auto back = static_cast<size_t>(data_offset - at);
            const auto n = static_cast<size_t>(std::min(value_end, data_offset) - at);
            cards.feed({reinterpret_cast<const char*>(stream.history_.data())
                            + (stream.history_len_ - back),
                    n});
        }
        if (value_end > cards.next()) {
            const auto from = static_cast<size_t>(cards.next() - data_offset);
            cards.feed({reinterpret_cast<const char*>(data.data()) + from,
                    static_cast<size_t>(value_end - cards.next())});
        }
        const bool maybe = cards.judge(value_end, begin) == CardRunTracker::Verdict::Maybe;
        // Settle the rest of the run in this call's bytes now, in the same pass.
        if (value_end >= data_offset && value_end < available_end()) {
            const auto from = static_cast<size_t>(value_end - data_offset);
            const uint64_t bound = cards.advance(
                    {reinterpret_cast<const char*>(data.data()) + from, data.size() - from},
                    earliest(), kLookBehindBytes);
            card_id = db().card_run_id();
            const uint64_t skip_from = value_end + 1;
            card_skip_to = skip_from + 1;
            card_skip_span = bound > skip_from ? bound - skip_from : 0;
        }
        return maybe;
    }

    void on_match(unsigned id, uint64_t to) noexcept {
        const PatternInfo& info = db().pattern(id);
        switch (info.kind) {
        case PatternKind::Keyword:
            on_keyword(info.cls, to);
            return;
        case PatternKind::CodeToken:
            on_code_token(to);
            return;
        case PatternKind::DocFormat:
            on_doc_format(static_cast<DocFormat>(info.variant), to);
            return;
        case PatternKind::DocLabel:
            on_mark(ContentClass::Document, {});
            return;
        default:
            on_value(info, to);
        }
    }

    // source_code: counts a code token; enough of them, dense enough, make the direction's
    // one finding. No division: the density test multiplies.
    void on_code_token(uint64_t to) noexcept {
        if (stream.code_reported_) {
            return;
        }
        const SourceCodeConfig& sc = config().source_code;
        if (stream.code_tokens_ == 0 || to - stream.code_last_ > ContentStream::kCodeGapBytes) {
            stream.code_tokens_ = 0;
            stream.code_first_ = to;
        }
        stream.code_last_ = to;
        if (++stream.code_tokens_ < sc.min_tokens) {
            return;
        }
        const uint64_t span = to - stream.code_first_ + 1;
        if (uint64_t{stream.code_tokens_} * 1024 < uint64_t{sc.min_tokens_per_kib} * span) {
            stream.code_tokens_ = 0;  // too sparse: count again from the next token
            return;
        }
        stream.code_reported_ = true;
        const std::string_view mark(stream.code_mark_.data(), stream.code_mark_len_);
        report_marked(ContentClass::SourceCode, mark.empty() ? std::string_view("code") : mark, to);
    }

    // document: the first marker of each format in the direction is a finding.
    void on_doc_format(DocFormat format, uint64_t to) noexcept {
        const auto bit = static_cast<uint8_t>(1U << static_cast<unsigned>(format));
        if ((stream.doc_formats_ & bit) != 0) {
            return;
        }
        stream.doc_formats_ |= bit;
        report_marked(ContentClass::Document, doc_format_name(format), to);
    }

    // A finding of a class whose confidence comes from a mark anywhere near in the direction
    // (before it, or within kMarkWindowBytes after it) rather than a keyword window.
    void report_marked(ContentClass cls, std::string_view value, uint64_t to) noexcept {
        ContentStream::Pending p;
        p.finding.cls = cls;
        p.finding.value_len = static_cast<uint8_t>(std::min(value.size(), kMaxValueLen));
        std::copy_n(value.begin(), p.finding.value_len, p.finding.value.begin());
        p.finding.distinct_count = count_distinct(cls, 0);
        p.finding.end_offset = to;
        if (stream.keyword_seen_[static_cast<size_t>(cls)]) {
            p.finding.confidence = Confidence::High;
            sink.push(p.finding);
            return;
        }
        p.finding.confidence = Confidence::Low;
        p.wait = kWaitMark;
        park(p);
    }

    // A mark of `cls` (source_code: an organisation's licence header or a project name,
    // `name`; document: a classification label): findings of the class waiting for one
    // become High, later ones are High at once.
    void on_mark(ContentClass cls, std::string_view name) noexcept {
        stream.keyword_seen_[static_cast<size_t>(cls)] = true;
        if (cls == ContentClass::SourceCode && stream.code_mark_len_ == 0 && !name.empty()) {
            const size_t n = std::min(name.size(), stream.code_mark_.size());
            std::copy_n(name.end() - static_cast<std::ptrdiff_t>(n), n, stream.code_mark_.begin());
            stream.code_mark_len_ = static_cast<uint8_t>(n);
        }
        for (uint32_t i = 0; i < stream.pending_count_;) {
            ContentStream::Pending& p = stream.pending_[i];
            if (p.finding.cls == cls && (p.wait & kWaitMark) != 0) {
                p.finding.confidence = Confidence::High;
                if (cls == ContentClass::SourceCode && stream.code_mark_len_ != 0) {
                    p.finding.value_len = stream.code_mark_len_;
                    std::copy_n(stream.code_mark_.begin(), stream.code_mark_len_,
                            p.finding.value.begin());
                }
                p.wait &= static_cast<uint8_t>(~kWaitMark);
            }
            if (p.wait == 0) {
                emit(i);
            } else {
                ++i;
            }
        }
    }

    void on_keyword(ContentClass cls, uint64_t to) noexcept {
        const auto index = static_cast<size_t>(cls);
        stream.last_keyword_end_[index] = std::max(stream.last_keyword_end_[index], to);
        stream.keyword_seen_[index] = true;
        // Values waiting for a keyword after them.
        for (uint32_t i = 0; i < stream.pending_count_;) {
            ContentStream::Pending& p = stream.pending_[i];
            const uint64_t value_end = p.finding.end_offset;
            if (p.finding.cls == cls && (p.wait & kWaitKeyword) != 0 && to > value_end
                    && to - value_end <= config().keyword_window_bytes) {
                p.finding.confidence = Confidence::High;
                p.wait &= static_cast<uint8_t>(~kWaitKeyword);
            }
            if (p.wait == 0) {
                emit(i);
            } else {
                ++i;
            }
        }
    }

    void on_value(const PatternInfo& info, uint64_t to) noexcept {
        const uint64_t first = earliest();
        if (to <= first || to > available_end()) {
            return;
        }

        // Copy the value and the byte after it into one contiguous buffer.
        const uint64_t value_end = info.terminated ? to - 1 : to;
        if (info.kind != PatternKind::Literal
                && (info.cls == ContentClass::PaymentCard || info.cls == ContentClass::UsSsn
                        || info.cls == ContentClass::Iban)) {
            if (judged_end == value_end && judged_cls == info.cls) {
                return;
            }
            judged_end = value_end;
            judged_cls = info.cls;
        }
        const uint64_t begin = value_end - std::min<uint64_t>(value_end - first, kLookBehindBytes);
        if (info.cls == ContentClass::PaymentCard && info.kind != PatternKind::Literal
                && !card_possible(begin, value_end)) {
            return;
        }
        std::array<char, kLookBehindBytes + 1> buffer;
        const std::string_view text = window(begin, value_end + 1, buffer);
        const auto end = static_cast<size_t>(value_end - begin);
        const bool after_gap = begin == stream.gap_offset_;

        if (info.kind == PatternKind::JwtHeader) {
            const Candidate header = extract_jwt_header(text, end);
            if (header.ok && !(header.start == 0 && begin != 0)) {
                stream.jwt_header_end_ = to;
            }
            return;
        }

        Candidate candidate;
        if (info.kind == PatternKind::Literal) {
            candidate = extract_literal(
                    text, end, db().literal(info.literal), info.cls == ContentClass::Custom);
        } else {
            // A digit run reaching back to the gap may be the tail of a longer number.
            const bool digits =
                    info.cls == ContentClass::PaymentCard || info.cls == ContentClass::UsSsn;
            if (digits && after_gap && run_reaches_start(text, end)) {
                return;
            }
            candidate =
                    validate(info, text, end, config().reject_test_numbers, jwt_header_seen(to));
            if (info.cls == ContentClass::Jwt) {
                stream.jwt_header_end_ = kNone;  // a header vouches for one token only
            }
        }
        if (!candidate.ok) {
            return;
        }
        if (info.cls == ContentClass::SourceCode) {
            on_mark(ContentClass::SourceCode, db().literal(info.literal));
            return;
        }
        // Bytes before `begin` are unknown (lost in a gap, or older than the history): a
        // value touching `begin` may be cut. A JWT may reach further back when its header
        // was validated, but never across a gap.
        const bool cut = candidate.start == 0 && begin != 0;
        if (cut && (info.cls != ContentClass::Jwt || after_gap)) {
            return;
        }
        report(info, candidate, begin + candidate.start, value_end);
    }

    bool jwt_header_seen(uint64_t to) const noexcept {
        const uint64_t header = stream.jwt_header_end_;
        return header != kNone && header < to && to - header <= kMaxJwtBytes
                && (stream.gap_offset_ == kNone || header > stream.gap_offset_);
    }

    // Dedups per direction, sets the confidence from the class's latest keyword, and
    // reports the finding now or parks it until its wait is over.
    void report(const PatternInfo& info, const Candidate& candidate, uint64_t start,
            uint64_t value_end) noexcept {
        const ContentClass cls = info.cls;
        if (!remember(value_hash(cls, info.rule, candidate.key()))) {
            return;
        }
        if (cls == ContentClass::ClassificationMarker) {
            on_mark(ContentClass::Document, {});  // a labelled document
        }
        ContentStream::Pending p;
        p.finding.cls = cls;
        p.finding.rule = info.rule;
        p.finding.value_len = candidate.len;
        std::copy_n(candidate.value.begin(), candidate.len, p.finding.value.begin());
        p.finding.distinct_count = count_distinct(cls, info.rule);
        p.finding.end_offset = value_end;
        p.key_len = candidate.key_len;

        const auto index = static_cast<size_t>(cls);
        if (cls == ContentClass::Custom || !db().has_keywords(cls)) {
            p.finding.confidence = Confidence::High;  // an operator rule: nothing to weigh
        } else {
            const uint64_t keyword_end = stream.last_keyword_end_[index];
            const bool near = stream.keyword_seen_[index] && keyword_end <= start
                    && start - keyword_end <= config().keyword_window_bytes;
            p.finding.confidence = near ? Confidence::High : Confidence::Low;
            p.wait = near ? 0 : kWaitKeyword;
        }
        if (cls == ContentClass::PrivateKey) {
            p.wait |= kWaitBody;
        }
        if (p.wait == 0) {
            sink.push(p.finding);
            return;
        }
        park(p);
    }

    uint32_t count_distinct(ContentClass cls, uint16_t rule) noexcept {
        if (cls == ContentClass::Custom && rule >= 1 && rule <= kMaxCustomRules) {
            uint16_t& n = stream.rule_distinct_[rule - 1U];
            n = n == UINT16_MAX ? n : static_cast<uint16_t>(n + 1);
            return n;
        }
        return ++stream.distinct_[static_cast<size_t>(cls)];
    }

    // True when the value is new to this direction. Past kMaxDistinct values every value
    // counts as new: an overcount is safer than a missed threshold.
    bool remember(uint64_t hash) noexcept {
        for (uint32_t i = 0; i < stream.seen_count_; ++i) {
            if (stream.seen_hashes_[i] == hash) {
                return false;
            }
        }
        if (stream.seen_count_ < ContentStream::kMaxDistinct) {
            stream.seen_hashes_[stream.seen_count_++] = hash;
        }
        return true;
    }

    void park(const ContentStream::Pending& p) noexcept {
        if (stream.pending_count_ == ContentStream::kMaxPending) {
            // What the bytes up to this finding have decided goes out first, as a scan call
            // ending there would have let it: which finding is pushed out then depends on the
            // bytes, not on where the segments were cut (exfiltap's content_stream_fuzz).
            settle_at(p.finding.end_offset, false);
        }
        if (stream.pending_count_ == ContentStream::kMaxPending) {
            emit(0);  // the oldest goes out with the confidence it has now
        }
        stream.pending_[stream.pending_count_++] = p;
    }

    // Reports pending[i] and removes it. A custom regex match is deduplicated only now,
    // when its text is final.
    void emit(uint32_t i) noexcept {
        Finding finding = stream.pending_[i].finding;
        const bool settle = finding.distinct_count == 0;  // only custom regex matches
        for (uint32_t k = i + 1; k < stream.pending_count_; ++k) {
            stream.pending_[k - 1] = stream.pending_[k];
        }
        --stream.pending_count_;
        stream.pending_[stream.pending_count_].finding.value.fill(0);
        if (settle) {
            if (!remember(value_hash(finding.cls, finding.rule, finding.value_view()))) {
                return;
            }
            finding.distinct_count = count_distinct(finding.cls, finding.rule);
        }
        sink.push(finding);
    }

    // A custom regex match [from, to): a longer match with the same start replaces the
    // waiting one; the value is the matched text (its last kMaxValueLen characters).
    void on_custom_regex(unsigned id, uint64_t from, uint64_t to) noexcept {
        const PatternInfo& info = db().som_pattern(id);
        if (to > available_end() || to <= earliest() || from >= to
                || (stream.gap_offset_ != kNone && from < stream.gap_offset_)) {
            return;  // not visible, or it spans a gap
        }
        const uint64_t begin =
                std::max({from, earliest(), to - std::min<uint64_t>(to, kMaxValueLen)});
        ContentStream::Pending* slot = nullptr;
        for (uint32_t i = 0; i < stream.pending_count_; ++i) {
            ContentStream::Pending& p = stream.pending_[i];
            // Only while it still waits: kSettleBytes on, a scan call ending in between
            // would have let it go, and the longer match is a finding of its own.
            if ((p.wait & kWaitSettle) != 0 && p.finding.rule == info.rule && p.start == from
                    && to - p.finding.end_offset < ContentStream::kSettleBytes) {
                slot = &p;
                break;
            }
        }
        ContentStream::Pending fresh;
        ContentStream::Pending& p = slot != nullptr ? *slot : fresh;
        p.finding.cls = ContentClass::Custom;
        p.finding.rule = info.rule;
        p.finding.confidence = Confidence::High;
        p.finding.end_offset = to;
        p.finding.value_len = static_cast<uint8_t>(copy(begin, to, p.finding.value));
        p.start = from;
        p.wait = kWaitSettle;
        if (slot == nullptr) {
            park(p);
        }
    }

    // Decides what the bytes scanned so far allow: key bodies read, keyword windows and
    // settle distances passed. `final`: the stream ends, everything goes out.
    void settle(bool final) noexcept { settle_at(available_end(), final); }

    // The same for the bytes before stream offset `now` only.
    void settle_at(uint64_t now, bool final) noexcept {
        // How far past a value's end `now` is (0 when it is not past it).
        auto past = [now](uint64_t value_end) {
            return now > value_end ? now - value_end : 0;
        };
        for (uint32_t i = 0; i < stream.pending_count_;) {
            ContentStream::Pending& p = stream.pending_[i];
            const uint64_t value_end = p.finding.end_offset;
            if ((p.wait & kWaitBody) != 0 && read_body(p, final, now)) {
                p.wait &= static_cast<uint8_t>(~kWaitBody);
            }
            if ((p.wait & kWaitKeyword) != 0
                    && (final || past(value_end) >= config().keyword_window_bytes)) {
                p.wait &= static_cast<uint8_t>(~kWaitKeyword);
            }
            if ((p.wait & kWaitSettle) != 0
                    && (final || past(value_end) >= ContentStream::kSettleBytes)) {
                p.wait &= static_cast<uint8_t>(~kWaitSettle);
            }
            if ((p.wait & kWaitMark) != 0
                    && (final || past(value_end) >= ContentStream::kMarkWindowBytes)) {
                p.wait &= static_cast<uint8_t>(~kWaitMark);
            }
            if (final) {
                p.wait = 0;
            }
            if (p.wait == 0) {
                emit(i);
            } else {
                ++i;
            }
        }
    }

    // Reads the first body characters after a key header, from the bytes before `limit`;
    // true when done.
    bool read_body(ContentStream::Pending& p, bool final, uint64_t limit) const noexcept {
        const uint64_t from = p.finding.end_offset;
        if (from < earliest()) {
            return true;  // the bytes after the header are gone: type only
        }
        std::array<char, kKeyBodyBytes> after;
        const size_t length = copy(from, std::min(limit, available_end()), after);
        Candidate candidate;
        candidate.assign_tail(std::string_view(p.finding.value.data(), p.key_len));
        const bool full = length == after.size();
        if (read_key_body({after.data(), length}, final || full, candidate) == BodyRead::NeedMore) {
            return false;
        }
        p.finding.value_len = candidate.len;
        std::copy_n(candidate.value.begin(), candidate.len, p.finding.value.begin());
        return true;
    }

    // Lost bytes: a key body or a longer custom match cannot continue across them.
    void on_gap() noexcept {
        for (uint32_t i = 0; i < stream.pending_count_;) {
            ContentStream::Pending& p = stream.pending_[i];
            p.wait &= static_cast<uint8_t>(~(kWaitBody | kWaitSettle));
            if (p.wait == 0) {
                emit(i);
            } else {
                ++i;
            }
        }
    }
};

namespace {

// Out of line: inlined, it made every call of on_hs_match() save and restore the registers
// it uses, while most calls on digit-dense data are settled card ends. The callback's own
// arguments, so that on_hs_match() ends in a jump to it.
[[gnu::noinline, gnu::noclone]] int handle_match(unsigned id, unsigned long long /*from*/,
        unsigned long long to, unsigned /*flags*/, void* context) noexcept {
    static_cast<ScanContext*>(context)->on_match(id, to);
    return 0;  // keep scanning
}

int on_hs_match(unsigned id, unsigned long long from, unsigned long long to, unsigned flags,
        void* context) {
    const auto& scan = *static_cast<const ScanContext*>(context);
    // A card value (ending at to - 1) the tracker already settled: nothing to do.
    if (to - scan.card_skip_to < scan.card_skip_span && id == scan.card_id) [[likely]] {
        return 0;
    }
    return handle_match(id, from, to, flags, context);
}

int on_hs_som_match(unsigned id, unsigned long long from, unsigned long long to, unsigned /*flags*/,
        void* context) {
    static_cast<ScanContext*>(context)->on_custom_regex(id, from, to);
    return 0;
}

}  // namespace

ContentStream::~ContentStream() {
    close_streams();
}

void ContentStream::close_streams() noexcept {
    for (hs_stream** s : {&stream_, &som_stream_}) {
        if (*s != nullptr) {
            hs_close_stream(*s, nullptr, nullptr, nullptr);
            *s = nullptr;
        }
    }
    open_ = false;
}

bool ContentStream::open(const PatternDatabase& db, bool edm_only) noexcept {
    if (open_) {
        return false;
    }
    // A stream object is reused for the next flow: start from a clean state.
    offset_ = 0;
    history_len_ = 0;
    gap_offset_ = kNone;
    jwt_header_end_ = kNone;
    last_keyword_end_ = {};
    keyword_seen_ = {};
    distinct_ = {};
    rule_distinct_ = {};
    seen_count_ = 0;
    pending_count_ = 0;
    code_tokens_ = 0;
    code_first_ = 0;
    code_last_ = 0;
    code_reported_ = false;
    code_mark_len_ = 0;
    doc_formats_ = 0;
    cards_live_ = false;
    db_ = &db;
    if (edm_only) {
        edm_pool_ = db.config().edm_enabled() ? EdmStatePool::current() : nullptr;
        edm_ = edm_pool_ != nullptr ? edm_pool_->acquire(db.config().edm_tables) : nullptr;
        open_ = edm_ != nullptr;
        return open_;
    }
    bool ok = true;
    if (db.database() != nullptr && hs_open_stream(db.database(), 0, &stream_) != HS_SUCCESS) {
        stream_ = nullptr;
        ok = false;
    }
    if (ok && db.som_database() != nullptr
            && hs_open_stream(db.som_database(), 0, &som_stream_) != HS_SUCCESS) {
        som_stream_ = nullptr;
        ok = false;
    }
    if (!ok) {
        close_streams();
        return false;
    }
    open_ = true;
    if (db.config().edm_enabled()) {
        // Exact data match rides on the same bytes when the worker has state for it; without
        // a free block the direction goes on with the patterns only (counted by the pool).
        edm_pool_ = EdmStatePool::current();
        edm_ = edm_pool_ != nullptr ? edm_pool_->acquire(db.config().edm_tables) : nullptr;
    }
    return true;
}

void ContentStream::set_origin(uint32_t origin) noexcept {
    if (edm_ != nullptr) {
        edm_->set_origin(origin);
    }
}

void ContentStream::release_edm() noexcept {
    if (edm_ != nullptr && edm_pool_ != nullptr) {
        edm_pool_->release(edm_);
    }
    edm_ = nullptr;
    edm_pool_ = nullptr;
}

void ContentStream::prefetch_finding_state() const noexcept {
    prefetch_lines(&last_keyword_end_, &seen_count_ + 1);
    prefetch_lines(&cards_, &cards_ + 1);
    const Pending& slot = pending_[pending_count_ % kMaxPending];
    prefetch_lines(&slot, &slot + 1);
}

void ContentStream::scan(std::span<const uint8_t> data, hs_scratch* scratch, FindingSink& sink,
        bool gap_before) noexcept {
    if (!open_) {
        return;
    }
    if (gap_before) {
        ScanContext context{*this, sink, {}, offset_};
        context.on_gap();
        history_len_ = 0;
        gap_offset_ = offset_;
        cards_live_ = false;
        if (edm_ != nullptr && data.empty()) {
            edm_->scan({}, offset_, true, sink);
        }
    }
    if (data.empty()) {
        return;
    }

    if (data.size() >= kPrefetchFindingBytes) {
        prefetch_finding_state();
    }
    // Scan; hs_scan_stream takes an unsigned length, so huge spans go in pieces.
    ScanContext context{*this, sink, data, offset_};
    for (size_t done = 0; done < data.size();) {
        const size_t piece = std::min<size_t>(data.size() - done, UINT_MAX);
        const char* bytes = reinterpret_cast<const char*>(data.data() + done);
        const auto n = static_cast<unsigned>(piece);
        const bool failed =
                (stream_ != nullptr
                        && hs_scan_stream(stream_, bytes, n, 0, scratch, on_hs_match, &context)
                                != HS_SUCCESS)
                || (som_stream_ != nullptr
                        && hs_scan_stream(
                                   som_stream_, bytes, n, 0, scratch, on_hs_som_match, &context)
                                != HS_SUCCESS);
        if (failed) {
            // The stream state can no longer be trusted: stop inspecting this direction.
            // Values validated before the failure still go out.
            close_streams();
            context.settle(true);
            release_edm();
            return;
        }
        done += piece;
    }
    if (edm_ != nullptr) {
        edm_->scan(data, offset_, gap_before, sink);
    }

    // Waiting findings whose wait the new bytes decide.
    context.settle(false);

    // Keep the last kHistoryBytes of the direction for values that straddle scans.
    if (data.size() >= kHistoryBytes) {
        std::memcpy(history_.data(), data.data() + data.size() - kHistoryBytes, kHistoryBytes);
        history_len_ = kHistoryBytes;
    } else {
        const size_t keep = std::min<size_t>(history_len_, kHistoryBytes - data.size());
        std::memmove(history_.data(), history_.data() + history_len_ - keep, keep);
        std::memcpy(history_.data() + keep, data.data(), data.size());
        history_len_ = static_cast<uint32_t>(keep + data.size());
    }
    offset_ += data.size();
}

void ContentStream::close(hs_scratch* scratch, FindingSink& sink) noexcept {
    if (!open_) {
        return;
    }
    ScanContext context{*this, sink, {}, offset_};
    const std::array<std::pair<hs_stream**, match_event_handler>, 2> streams = {
            {{&stream_, on_hs_match}, {&som_stream_, on_hs_som_match}}};
    for (const auto& [s, handler] : streams) {
        if (*s == nullptr) {
            continue;
        }
        const hs_error_t rc =
                hs_close_stream(*s, scratch, scratch != nullptr ? handler : nullptr, &context);
        if (rc == HS_INVALID || rc == HS_SCRATCH_IN_USE) {
            // Rejected before the state was freed (bad or busy scratch): free it unreported.
            hs_close_stream(*s, nullptr, nullptr, nullptr);
        }
        *s = nullptr;
    }
    context.settle(true);
    if (edm_ != nullptr) {
        edm_->finish(offset_, sink);
        release_edm();
    }
    open_ = false;
}

}  // namespace exfiltap::detectors
