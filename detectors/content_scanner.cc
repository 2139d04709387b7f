#include "detectors/content_scanner.h"

#include <algorithm>
#include <climits>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>

#include <hs.h>

#include "detectors/validators.h"

namespace exfiltap::detectors {

namespace {

// Bytes before a value's end handed to the validator. The longest value with separators is
// 23 characters; a run of digits and separators that fills all of this window cannot form a
// card layout, so a window cut short by this limit never makes a false value.
constexpr size_t kLookBehindBytes = 64;
constexpr size_t kBlockAlignBytes = 64;
constexpr uint64_t kNoGap = UINT64_MAX;

// Values end one byte after the value, so the match end alone fixes where the value ends
// (no start-of-match flag). The end-of-data twins report at hs_close_stream().
constexpr std::string_view kCardPatterns[] = {
        R"(\d(?:[ \-]?\d){11,18}[^0-9])",
        R"(\d(?:[ \-]?\d){11,18}\z)",
};
constexpr std::string_view kSsnPatterns[] = {
        R"(\d{3}-\d{2}-\d{4}[^0-9])",
        R"(\d{3} \d{2} \d{4}[^0-9])",
        R"(\d{3}-\d{2}-\d{4}\z)",
        R"(\d{3} \d{2} \d{4}\z)",
};

constexpr std::string_view kCardKeywords[] = {
        "card",
        "credit",
        "debit",
        "visa",
        "mastercard",
        "amex",
        "american express",
        "discover",
        "diners",
        "maestro",
        "unionpay",
        "exp",
        "cvv",
        "cvc",
        "pan",
        "card number",
        "payment",
};
constexpr std::string_view kSsnKeywords[] = {
        "ssn",
        "social security",
        "ss#",
        "soc sec",
        "tax id",
        "taxpayer id",
        "itin",
};

bool is_digit(char c) {
    return c >= '0' && c <= '9';
}

bool is_alnum(char c) {
    return is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

// A keyword as a caseless regex literal. Keywords of three characters or fewer ("pan",
// "exp", "ssn") must not continue a word, or "company" and "unexpected" would count.
std::string keyword_regex(std::string_view keyword) {
    static constexpr char kHex[] = "0123456789abcdef";
    std::string out;
    if (keyword.size() <= 3 && is_alnum(keyword.front())) {
        out += "(?:^|[^a-z0-9])";
    }
    for (const char c : keyword) {
        if (is_alnum(c)) {
            out += c;
        } else {
            const auto byte = static_cast<unsigned char>(c);
            out += "\\x";
            out += kHex[byte >> 4];
            out += kHex[byte & 0x0f];
        }
    }
    return out;
}

struct PatternSource {
    std::string expression;
    unsigned flags;
    PatternDatabase::PatternInfo info;
};

Error compile_error(const std::vector<PatternSource>& sources, const hs_compile_error_t* err) {
    std::string message = "content detector: pattern database failed to compile: ";
    message += err != nullptr && err->message != nullptr ? err->message : "unknown error";
    if (err != nullptr && err->expression >= 0
            && static_cast<size_t>(err->expression) < sources.size()) {
        const PatternSource& source = sources[static_cast<size_t>(err->expression)];
        message += " (pattern ";
        message += std::to_string(err->expression);
        message += " of class ";
        message += content_class_name(source.info.cls);
        message += source.info.keyword ? ", keyword " : ", value ";
        message += source.expression;
        message += "); check the class keywords in the content configuration";
    }
    return make_error(std::move(message));
}

// Value patterns and keywords of every enabled class, in pattern id order.
Result<std::vector<PatternSource>> collect_patterns(const ContentConfig& config) {
    using Names = std::span<const std::string_view>;
    std::vector<PatternSource> sources;
    for (size_t c = 0; c < kContentClassCount; ++c) {
        const ClassConfig& class_config = config.classes[c];
        if (!class_config.enabled) {
            continue;
        }
        const auto cls = static_cast<ContentClass>(c);
        const bool card = cls == ContentClass::PaymentCard;
        for (const std::string_view pattern : card ? Names(kCardPatterns) : Names(kSsnPatterns)) {
            sources.push_back({std::string(pattern), 0, {cls, false, card}});
        }
        auto add_keyword = [&](std::string_view keyword) {
            sources.push_back({keyword_regex(keyword), HS_FLAG_CASELESS, {cls, true, false}});
        };
        for (const std::string& keyword : class_config.keywords) {
            if (keyword.empty()) {
                return make_error(std::string("content detector: class ")
                        + std::string(content_class_name(cls))
                        + " has an empty keyword; remove it from the configuration");
            }
            add_keyword(keyword);
        }
        if (class_config.keywords.empty()) {
            for (const std::string_view keyword :
                    card ? Names(kCardKeywords) : Names(kSsnKeywords)) {
                add_keyword(keyword);
            }
        }
    }
    if (sources.empty()) {
        return make_error(
                "content detector: every content class is disabled; enable one or turn content "
                "inspection off");
    }

    return sources;
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

// Start of the value whose last of `digit_count` digits is at end - 1.
size_t value_start(std::string_view text, size_t end, size_t digit_count) {
    size_t i = end;
    size_t seen = 0;
    while (i > 0 && seen < digit_count) {
        --i;
        if (is_digit(text[i])) {
            ++seen;
        }
    }
    return i;
}

uint64_t value_hash(ContentClass cls, std::string_view digits) {
    uint64_t hash = 0xcbf29ce484222325ULL;  // FNV-1a
    hash = (hash ^ static_cast<uint8_t>(cls)) * 0x100000001b3ULL;
    for (const char c : digits) {
        hash = (hash ^ static_cast<uint8_t>(c)) * 0x100000001b3ULL;
    }
    return hash;
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

    auto collected = collect_patterns(config);
    if (!collected.ok()) {
        return Error{collected.error()};
    }
    const std::vector<PatternSource>& sources = collected.value();

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
                static_cast<unsigned>(sources.size()), HS_MODE_STREAM, nullptr, &db, &err)
            != HS_SUCCESS) {
        Error error = compile_error(sources, err);
        hs_free_compile_error(err);
        return error;
    }

    std::shared_ptr<PatternDatabase> out(new PatternDatabase());
    out->db_ = db;
    out->config_ = config;
    for (const PatternSource& source : sources) {
        out->patterns_.push_back(source.info);
    }
    const hs_error_t rc = hs_stream_size(db, &out->stream_size_);
    if (rc != HS_SUCCESS) {
        return make_error("content detector: hs_stream_size failed with code " + std::to_string(rc)
                + " on a freshly compiled database");
    }
    return std::shared_ptr<const PatternDatabase>(std::move(out));
}

PatternDatabase::~PatternDatabase() {
    hs_free_database(db_);
}

Result<hs_scratch*> PatternDatabase::alloc_scratch() const {
    hs_scratch_t* scratch = nullptr;
    const hs_error_t rc = hs_alloc_scratch(db_, &scratch);
    if (rc != HS_SUCCESS) {
        return make_error("content detector: hs_alloc_scratch failed with code "
                + std::to_string(rc) + "; the worker cannot scan (out of memory?)");
    }
    return scratch;
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

// The state of one scan or close call, handed to Hyperscan's match callback. It sees the
// direction's history (bytes before `data`) and `data` as one range of stream offsets.
struct ScanContext {
    ContentStream& stream;
    FindingSink& sink;
    std::span<const uint8_t> data;
    uint64_t data_offset;  // stream offset of data[0]

    uint64_t earliest() const noexcept { return data_offset - stream.history_len_; }
    uint64_t available_end() const noexcept { return data_offset + data.size(); }

    char byte_at(uint64_t offset) const noexcept {
        if (offset >= data_offset) {
            return static_cast<char>(data[offset - data_offset]);
        }
        return static_cast<char>(stream.history_[stream.history_len_ - (data_offset - offset)]);
    }

    void on_match(unsigned id, uint64_t to) noexcept {
        const PatternDatabase::PatternInfo& info = stream.db_->pattern(id);
        const auto cls = static_cast<size_t>(info.cls);
        if (info.keyword) {
            stream.last_keyword_end_[cls] = std::max(stream.last_keyword_end_[cls], to);
            stream.keyword_seen_[cls] = true;
            return;
        }
        on_value(info, to);
    }

    void on_value(const PatternDatabase::PatternInfo& info, uint64_t to) noexcept {
        const uint64_t first = earliest();
        if (to <= first || to > available_end()) {
            return;
        }

        // Copy the value and the byte after it into one contiguous buffer.
        const uint64_t value_end = is_digit(byte_at(to - 1)) ? to : to - 1;  // `\z` or `[^0-9]`
        const uint64_t begin = value_end - std::min<uint64_t>(value_end - first, kLookBehindBytes);
        const uint64_t stop = std::min<uint64_t>(value_end + 1, available_end());
        std::array<char, kLookBehindBytes + 1> buffer;
        size_t length = 0;
        for (uint64_t offset = begin; offset < stop; ++offset) {
            buffer[length++] = byte_at(offset);
        }
        const std::string_view text(buffer.data(), length);
        const auto end = static_cast<size_t>(value_end - begin);

        // Bytes before `begin` were lost: a value reaching back to it may be cut.
        if (begin == stream.gap_offset_ && run_reaches_start(text, end)) {
            return;
        }

        const CardCandidate candidate = info.card
                ? extract_card(text, end, stream.db_->config().reject_test_numbers)
                : extract_ssn(text, end);
        if (!candidate.ok) {
            return;
        }
        report(info.cls, candidate, begin + value_start(text, end, candidate.len), value_end);
    }

    // Dedups per direction and sets the confidence from the class's latest keyword.
    void report(ContentClass cls, const CardCandidate& candidate, uint64_t start,
            uint64_t value_end) noexcept {
        const std::string_view digits(candidate.digits, candidate.len);
        if (!remember(value_hash(cls, digits))) {
            return;
        }
        const auto index = static_cast<size_t>(cls);
        const uint64_t keyword_end = stream.last_keyword_end_[index];
        const bool near_keyword = stream.keyword_seen_[index] && keyword_end <= start
                && start - keyword_end <= stream.db_->config().keyword_window_bytes;

        Finding finding;
        finding.cls = cls;
        finding.confidence = near_keyword ? Confidence::High : Confidence::Low;
        finding.value_len = static_cast<uint8_t>(std::min(digits.size(), kMaxValueLen));
        std::copy_n(digits.data(), finding.value_len, finding.value.begin());
        finding.distinct_count = ++stream.distinct_[index];
        finding.end_offset = value_end;
        sink.push(finding);
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
};

namespace {

int on_hs_match(unsigned id, unsigned long long /*from*/, unsigned long long to, unsigned /*flags*/,
        void* context) {
    static_cast<ScanContext*>(context)->on_match(id, to);
    return 0;  // keep scanning
}

}  // namespace

ContentStream::~ContentStream() {
    if (stream_ != nullptr) {
        hs_close_stream(stream_, nullptr, nullptr, nullptr);
    }
}

bool ContentStream::open(const PatternDatabase& db) noexcept {
    if (stream_ != nullptr) {
        return false;
    }
    // A stream object is reused for the next flow: start from a clean state.
    offset_ = 0;
    history_len_ = 0;
    gap_offset_ = kNoGap;
    last_keyword_end_ = {};
    keyword_seen_ = {};
    distinct_ = {};
    seen_count_ = 0;
    db_ = &db;
    if (hs_open_stream(db.database(), 0, &stream_) != HS_SUCCESS) {
        stream_ = nullptr;
        return false;
    }
    return true;
}

void ContentStream::scan(std::span<const uint8_t> data, hs_scratch* scratch, FindingSink& sink,
        bool gap_before) noexcept {
    if (stream_ == nullptr) {
        return;
    }
    if (gap_before) {
        history_len_ = 0;
        gap_offset_ = offset_;
    }
    if (data.empty()) {
        return;
    }

    // Scan; hs_scan_stream takes an unsigned length, so huge spans go in pieces.
    ScanContext context{*this, sink, data, offset_};
    for (size_t done = 0; done < data.size();) {
        const size_t piece = std::min<size_t>(data.size() - done, UINT_MAX);
        const hs_error_t rc =
                hs_scan_stream(stream_, reinterpret_cast<const char*>(data.data() + done),
                        static_cast<unsigned>(piece), 0, scratch, on_hs_match, &context);
        if (rc != HS_SUCCESS) {
            // The stream state can no longer be trusted: stop inspecting this direction.
            hs_close_stream(stream_, nullptr, nullptr, nullptr);
            stream_ = nullptr;
            return;
        }
        done += piece;
    }

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
    if (stream_ == nullptr) {
        return;
    }
    ScanContext context{*this, sink, {}, offset_};
    const hs_error_t rc =
            hs_close_stream(stream_, scratch, scratch != nullptr ? on_hs_match : nullptr, &context);
    if (rc == HS_INVALID || rc == HS_SCRATCH_IN_USE) {
        // Rejected before the state was freed (bad or busy scratch): free it unreported.
        hs_close_stream(stream_, nullptr, nullptr, nullptr);
    }
    stream_ = nullptr;
}

}  // namespace exfiltap::detectors
