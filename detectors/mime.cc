#include "detectors/mime.h"

#include <algorithm>
#include <cstring>

#include "detectors/char_class.h"
#include "detectors/text_util.h"

namespace exfiltap::detectors {
namespace {

constexpr int8_t kB64Space = -2;
constexpr int8_t kB64Pad = -3;
constexpr int8_t kB64Bad = -1;

constexpr std::array<int8_t, 256> make_b64_table() noexcept {
    std::array<int8_t, 256> t{};
    for (auto& v : t) {
        v = kB64Bad;
    }
    constexpr std::string_view kAlphabet =
            "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for (size_t i = 0; i < kAlphabet.size(); ++i) {
        t[static_cast<uint8_t>(kAlphabet[i])] = static_cast<int8_t>(i);
    }
    t[' '] = kB64Space;
    t['\t'] = kB64Space;
    t['\r'] = kB64Space;
    t['\n'] = kB64Space;
    t['\f'] = kB64Space;
    t['\v'] = kB64Space;
    t['='] = kB64Pad;
    return t;
}
constexpr std::array<int8_t, 256> kB64 = make_b64_table();

constexpr int hex_value(uint8_t c) noexcept {
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    return -1;
}

bool is_space(char c) noexcept {
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

// The first token of a header value (up to ';' or white space) and the offset after it.
std::string_view first_token(std::span<char> v, size_t& pos) noexcept {
    pos = 0;
    while (pos < v.size() && is_space(v[pos])) {
        ++pos;
    }
    const size_t start = pos;
    while (pos < v.size() && v[pos] != ';' && !is_space(v[pos])) {
        ++pos;
    }
    return {v.data() + start, pos - start};
}

// Calls f(attribute, value) for each "attr=value" parameter of `v` from `pos` on.
// Attributes are lower-cased and quoted values unescaped, both in place.
template <typename F>
void for_each_param(std::span<char> v, size_t pos, F&& f) noexcept {
    const size_t n = v.size();
    while (pos < n) {
        while (pos < n && (is_space(v[pos]) || v[pos] == ';')) {
            ++pos;
        }
        const size_t attr_start = pos;
        while (pos < n && v[pos] != '=' && v[pos] != ';') {
            ++pos;
        }
        if (pos >= n || v[pos] != '=') {
            continue;  // no value: skip to the next ';'
        }
        size_t attr_end = pos;
        while (attr_end > attr_start && is_space(v[attr_end - 1])) {
            --attr_end;
        }
        for (size_t i = attr_start; i < attr_end; ++i) {
            v[i] = to_lower(v[i]);
        }
        ++pos;
        while (pos < n && (v[pos] == ' ' || v[pos] == '\t')) {
            ++pos;
        }
        const size_t value_start = pos;
        size_t value_end = pos;
        if (pos < n && v[pos] == '"') {
            ++pos;
            size_t out = value_start;
            while (pos < n && v[pos] != '"') {
                if (v[pos] == '\\' && pos + 1 < n) {
                    ++pos;
                }
                v[out++] = v[pos++];
            }
            value_end = out;
            if (pos < n) {
                ++pos;  // closing quote
            }
        } else {
            while (pos < n && v[pos] != ';' && !is_space(v[pos])) {
                ++pos;
            }
            value_end = pos;
        }
        f(std::string_view(v.data() + attr_start, attr_end - attr_start),
                v.subspan(value_start, value_end - value_start));
    }
}

}  // namespace

// --- Base64Decoder ---------------------------------------------------------------------------

size_t Base64Decoder::decode(std::span<const uint8_t> in, uint8_t* out) noexcept {
    size_t n = 0;
    if (ended_) {
        return 0;
    }
    for (size_t i = 0; i < in.size(); ++i) {
        const int8_t v = kB64[in[i]];
        if (v >= 0) {
            acc_ = acc_ << 6 | static_cast<uint32_t>(v);
            if (++symbols_ == 4) {
                if (out != nullptr) {
                    out[n] = static_cast<uint8_t>(acc_ >> 16);
                    out[n + 1] = static_cast<uint8_t>(acc_ >> 8);
                    out[n + 2] = static_cast<uint8_t>(acc_);
                }
                n += 3;
                acc_ = 0;
                symbols_ = 0;
            }
        } else if (v == kB64Pad) {
            n += finish(out == nullptr ? nullptr : out + n);
            return n;
        } else if (v == kB64Bad) {
            ++invalid_;
        }
    }
    return n;
}

size_t Base64Decoder::finish(uint8_t* out) noexcept {
    size_t n = 0;
    if (ended_) {
        return 0;
    }
    if (symbols_ == 2) {
        if (out != nullptr) {
            out[0] = static_cast<uint8_t>(acc_ >> 4);
        }
        n = 1;
    } else if (symbols_ == 3) {
        if (out != nullptr) {
            out[0] = static_cast<uint8_t>(acc_ >> 10);
            out[1] = static_cast<uint8_t>(acc_ >> 2);
        }
        n = 2;
    } else if (symbols_ == 1) {
        ++invalid_;
    }
    acc_ = 0;
    symbols_ = 0;
    ended_ = true;
    return n;
}

// --- QuotedPrintableDecoder ------------------------------------------------------------------

size_t QuotedPrintableDecoder::decode(std::span<const uint8_t> in, uint8_t* out) noexcept {
    size_t n = 0;
    const auto put = [&](uint8_t b) {
        if (out != nullptr) {
            out[n] = b;
        }
        ++n;
    };
    for (size_t i = 0; i < in.size(); ++i) {
        const uint8_t c = in[i];
        switch (state_) {
        case State::Text:
            break;
        case State::Equal:
            if (hex_value(c) >= 0) {
                hex_ = c;
                state_ = State::Hex;
                continue;
            }
            if (c == '\r') {
                state_ = State::EqualCr;
                continue;
            }
            if (c == '\n') {
                state_ = State::Text;
                continue;
            }
            if (c == ' ' || c == '\t') {
                state_ = State::EqualSpace;
                continue;
            }
            ++malformed_;
            put('=');
            break;
        case State::Hex:
            if (hex_value(c) >= 0) {
                put(static_cast<uint8_t>(hex_value(hex_) << 4 | hex_value(c)));
                state_ = State::Text;
                continue;
            }
            ++malformed_;
            put('=');
            put(hex_);
            break;
        case State::EqualSpace:
            if (c == ' ' || c == '\t') {
                continue;
            }
            if (c == '\r') {
                state_ = State::EqualCr;
                continue;
            }
            if (c == '\n') {
                state_ = State::Text;
                continue;
            }
            ++malformed_;
            put('=');
            break;
        case State::EqualCr:
            if (c == '\n') {
                state_ = State::Text;
                continue;
            }
            break;  // a soft break ended by a bare CR
        }
        // Plain text (or the byte after a malformed escape).
        if (c == '=') {
            state_ = State::Equal;
        } else {
            state_ = State::Text;
            put(c);
        }
    }
    return n;
}

size_t QuotedPrintableDecoder::finish(uint8_t* out) noexcept {
    size_t n = 0;
    const auto put = [&](uint8_t b) {
        if (out != nullptr) {
            out[n] = b;
        }
        ++n;
    };
    if (state_ == State::Equal || state_ == State::EqualSpace) {
        ++malformed_;
        put('=');
    } else if (state_ == State::Hex) {
        ++malformed_;
        put('=');
        put(hex_);
    }
    state_ = State::Text;
    return n;
}

// --- BoundaryMatcher -------------------------------------------------------------------------

bool BoundaryMatcher::push(std::string_view boundary) noexcept {
    if (depth_ >= kMaxDepth || boundary.empty() || boundary.size() > kMaxBoundary) {
        return false;
    }
    std::memcpy(boundary_[depth_].data(), boundary.data(), boundary.size());
    len_[depth_] = static_cast<uint8_t>(boundary.size());
    ++depth_;
    return true;
}

void BoundaryMatcher::truncate(size_t depth) noexcept {
    depth_ = std::min(depth_, depth);
    candidates_ &= static_cast<uint8_t>((1U << depth_) - 1U);
}

void BoundaryMatcher::begin_line() noexcept {
    pos_ = 0;
    candidates_ = static_cast<uint8_t>((1U << depth_) - 1U);
}

char BoundaryMatcher::at(size_t level, size_t pos) const noexcept {
    return boundary_[level][pos];
}

BoundaryMatcher::Step BoundaryMatcher::feed(uint8_t c) noexcept {
    if (candidates_ == 0) {
        return Step::Mismatch;
    }
    if (pos_ < 2) {
        if (c != '-') {
            candidates_ = 0;
            return Step::Mismatch;
        }
        prefix_[pos_++] = '-';
        return Step::More;
    }
    const size_t idx = pos_ - 2;
    uint8_t next = 0;
    for (size_t level = 0; level < depth_; ++level) {
        const auto bit = static_cast<uint8_t>(1U << level);
        if ((candidates_ & bit) != 0 && idx < len_[level]
                && at(level, idx) == static_cast<char>(c)) {
            next |= bit;
        }
    }
    candidates_ = next;
    if (next == 0) {
        return Step::Mismatch;
    }
    prefix_[pos_++] = static_cast<char>(c);
    for (size_t level = depth_; level-- > 0;) {
        if ((next & (1U << level)) != 0 && len_[level] == idx + 1) {
            matched_ = level;
            candidates_ = 0;
            return Step::Matched;
        }
    }
    return Step::More;
}

std::string_view BoundaryMatcher::matched_prefix() const noexcept {
    return {prefix_.data(), pos_};
}

// --- MimeWalker ------------------------------------------------------------------------------

void MimeWalker::reset() noexcept {
    part_ = MimePartInfo{};
    boundaries_.truncate(0);
    decode_errors_ = 0;
    parts_ = 0;
    too_deep_ = 0;
    headers_cut_ = 0;
    in_part_ = false;
    start_entity();
}

void MimeWalker::start_entity() noexcept {
    part_ = MimePartInfo{};
    part_.depth = static_cast<uint8_t>(boundaries_.depth());
    base64_.reset();
    qp_.reset();
    header_len_ = 0;
    header_name_len_ = 0;
    boundary_len_ = 0;
    line_end_held_ = 0;
    name_rank_ = 0;
    name_next_ = 0;
    header_kind_ = Header::None;
    header_pending_ = false;
    multipart_ = false;
    in_part_ = false;
    state_ = State::HeaderLineStart;
}

void MimeWalker::feed(std::span<const uint8_t> data, bool decode, MimeHandler& handler) noexcept {
    size_t i = 0;
    const size_t n = data.size();
    while (i < n) {
        const uint8_t c = data[i];
        switch (state_) {
        case State::HeaderLineStart:
            if ((c == ' ' || c == '\t') && header_pending_) {
                state_ = State::HeaderValue;  // folded line: the white space stays
                break;
            }
            if (c == ' ' || c == '\t') {
                state_ = State::HeaderSkip;
                break;
            }
            end_header();
            if (c == '\r') {
                state_ = State::HeaderBlankCr;
                ++i;
            } else if (c == '\n') {
                ++i;
                end_headers(decode, handler);
            } else {
                header_name_len_ = 0;
                state_ = State::HeaderName;
            }
            break;
        case State::HeaderName:
            ++i;
            if (c == ':') {
                std::string_view name(header_name_.data(),
                        std::min<size_t>(header_name_len_, header_name_.size()));
                while (!name.empty() && (name.back() == ' ' || name.back() == '\t')) {
                    name.remove_suffix(1);
                }
                header_kind_ = Header::None;
                if (header_name_len_ <= header_name_.size()) {
                    if (name == "content-type") {
                        header_kind_ = Header::ContentType;
                    } else if (name == "content-transfer-encoding") {
                        header_kind_ = Header::TransferEncoding;
                    } else if (name == "content-disposition") {
                        header_kind_ = Header::Disposition;
                    }
                }
                if (header_kind_ == Header::None) {
                    state_ = State::HeaderSkip;
                } else {
                    header_len_ = 0;
                    header_pending_ = true;
                    state_ = State::HeaderValue;
                }
            } else if (c == '\n') {
                state_ = State::HeaderLineStart;  // a line without ':' is ignored
            } else if (header_name_len_ < header_name_.size()) {
                header_name_[header_name_len_++] = to_lower(static_cast<char>(c));
            } else {
                header_name_len_ = static_cast<uint8_t>(header_name_.size() + 1);
            }
            break;
        case State::HeaderValue: {
            const auto* end =
                    static_cast<const uint8_t*>(std::memchr(data.data() + i, '\n', n - i));
            const size_t stop = end == nullptr ? n : static_cast<size_t>(end - data.data());
            for (; i < stop; ++i) {
                if (data[i] == '\r') {
                    continue;
                }
                if (header_len_ < header_.size()) {
                    header_[header_len_++] = static_cast<char>(data[i]);
                } else if (header_len_ == header_.size()) {
                    ++headers_cut_;
                    ++header_len_;  // one past the buffer marks the cut
                }
            }
            if (end != nullptr) {
                ++i;
                state_ = State::HeaderLineStart;
            }
            break;
        }
        case State::HeaderSkip: {
            const auto* end =
                    static_cast<const uint8_t*>(std::memchr(data.data() + i, '\n', n - i));
            if (end == nullptr) {
                i = n;
            } else {
                i = static_cast<size_t>(end - data.data()) + 1;
                state_ = State::HeaderLineStart;
            }
            break;
        }
        case State::HeaderBlankCr:
            if (c == '\n') {
                ++i;
            }
            end_headers(decode, handler);
            break;
        case State::BodyLineStart: {
            if (boundaries_.depth() == 0) {
                state_ = State::BodyText;
                flush_line_end(decode, handler);
                break;
            }
            const BoundaryMatcher::Step step = boundaries_.feed(c);
            if (step == BoundaryMatcher::Step::More) {
                ++i;
                break;
            }
            if (step == BoundaryMatcher::Step::Matched) {
                ++i;
                delimiter_tail_ = 0;
                delimiter_close_ = false;
                state_ = State::DelimiterTail;
                break;
            }
            // Not a delimiter: the held line end and prefix are body bytes; c is read again.
            const std::string_view prefix = boundaries_.matched_prefix();
            state_ = State::BodyText;
            flush_line_end(decode, handler);
            body({reinterpret_cast<const uint8_t*>(prefix.data()), prefix.size()}, decode, handler);
            break;
        }
        case State::BodyText: {
            size_t j = i;
            while (j < n && data[j] != '\r' && data[j] != '\n') {
                ++j;
            }
            body(data.subspan(i, j - i), decode, handler);
            i = j;
            if (i < n) {
                ++i;
                if (data[j] == '\n') {
                    line_end_held_ = 1;
                    state_ = State::BodyLineStart;
                    boundaries_.begin_line();
                } else {
                    state_ = State::BodyCr;
                }
            }
            break;
        }
        case State::BodyCr:
            if (c == '\n') {
                ++i;
                line_end_held_ = 2;
                state_ = State::BodyLineStart;
                boundaries_.begin_line();
            } else {
                state_ = State::BodyText;
                body({reinterpret_cast<const uint8_t*>("\r"), 1}, decode, handler);
            }
            break;
        case State::DelimiterTail:
            ++i;
            if (c == '\n') {
                delimiter(decode, handler);
            } else if (delimiter_tail_ < 2) {
                if (c == '-') {
                    ++delimiter_tail_;
                    delimiter_close_ = delimiter_tail_ == 2;
                } else {
                    delimiter_tail_ = 2;
                }
            }
            break;
        }
    }
}

void MimeWalker::finish(bool decode, MimeHandler& handler) noexcept {
    switch (state_) {
    case State::HeaderLineStart:
    case State::HeaderName:
    case State::HeaderValue:
    case State::HeaderSkip:
    case State::HeaderBlankCr:
        // Headers without a body: a leaf part of no bytes (when the entity is not multipart).
        end_header();
        if (!multipart_ && boundaries_.depth() == part_.depth) {
            in_part_ = true;
            ++parts_;
            handler.on_part_begin(part_);
        }
        break;
    case State::BodyLineStart: {
        const std::string_view prefix = boundaries_.matched_prefix();
        flush_line_end(decode, handler);
        if (boundaries_.depth() > 0) {
            body({reinterpret_cast<const uint8_t*>(prefix.data()), prefix.size()}, decode, handler);
        }
        break;
    }
    case State::BodyText:
        break;
    case State::BodyCr:
        body({reinterpret_cast<const uint8_t*>("\r"), 1}, decode, handler);
        break;
    case State::DelimiterTail:
        delimiter(decode, handler);
        break;
    }
    end_part(decode, handler);
    line_end_held_ = 0;
    state_ = State::BodyText;
    boundaries_.truncate(0);
}

void MimeWalker::end_header() noexcept {
    if (!header_pending_) {
        return;
    }
    header_pending_ = false;
    const bool cut = header_len_ > header_.size();
    const std::span<char> value(header_.data(), std::min<size_t>(header_len_, header_.size()));
    switch (header_kind_) {
    case Header::ContentType:
        parse_content_type(value);
        break;
    case Header::TransferEncoding: {
        size_t pos = 0;
        parse_encoding(first_token(value, pos));
        break;
    }
    case Header::Disposition:
        parse_disposition(value);
        break;
    case Header::None:
        break;
    }
    if (cut && header_kind_ != Header::TransferEncoding && part_.name_len > 0) {
        part_.name_truncated = true;
    }
    header_kind_ = Header::None;
}

void MimeWalker::parse_content_type(std::span<char> value) noexcept {
    size_t pos = 0;
    const std::string_view media = first_token(value, pos);
    multipart_ = istarts_with(media, "multipart/");
    part_.is_message = istarts_with(media, "message/");
    for_each_param(value, pos, [&](std::string_view attr, std::span<char> v) {
        if (attr == "boundary") {
            if (!v.empty() && v.size() <= boundary_.size()) {
                std::memcpy(boundary_.data(), v.data(), v.size());
                boundary_len_ = static_cast<uint8_t>(v.size());
            } else {
                boundary_len_ = 0;
            }
        } else {
            name_param(attr, v, false);
        }
    });
}

void MimeWalker::parse_disposition(std::span<char> value) noexcept {
    size_t pos = 0;
    if (iequals(first_token(value, pos), "attachment")) {
        part_.disposition_attachment = true;
    }
    for_each_param(value, pos,
            [&](std::string_view attr, std::span<char> v) { name_param(attr, v, true); });
}

void MimeWalker::parse_encoding(std::string_view value) noexcept {
    if (iequals(value, "base64")) {
        part_.encoding = MimeEncoding::Base64;
    } else if (iequals(value, "quoted-printable")) {
        part_.encoding = MimeEncoding::QuotedPrintable;
    } else {
        part_.encoding = MimeEncoding::Identity;
    }
}

// name / filename, including RFC 2231 forms: "name*" (charset'lang'%XX), "name*0", "name*1*"
// ... A Content-Disposition filename beats a Content-Type name, and an RFC 2231 form beats a
// plain one; continuations are taken in order only.
void MimeWalker::name_param(
        std::string_view attr, std::span<char> value, bool disposition) noexcept {
    const std::string_view base = disposition ? "filename" : "name";
    if (attr.substr(0, base.size()) != base) {
        return;
    }
    std::string_view rest = attr.substr(base.size());
    bool extended = false;
    int index = -1;
    if (rest.empty()) {
        // plain
    } else if (rest == "*") {
        extended = true;
    } else if (rest[0] == '*') {
        rest.remove_prefix(1);
        int number = 0;
        size_t digits = 0;
        while (digits < rest.size() && is_digit(rest[digits]) && digits < 3) {
            number = number * 10 + (rest[digits] - '0');
            ++digits;
        }
        if (digits == 0) {
            return;
        }
        rest.remove_prefix(digits);
        if (rest == "*") {
            extended = true;
        } else if (!rest.empty()) {
            return;
        }
        index = number;
    } else {
        return;  // "names", "filenamex", ...
    }
    const auto rank =
            static_cast<uint8_t>(1 + (disposition ? 2 : 0) + (index >= 0 || extended ? 1 : 0));
    if (rank > name_rank_) {
        if (index > 0) {
            return;  // a continuation without its start
        }
        name_rank_ = rank;
        part_.name_len = 0;
        part_.name_truncated = false;
    } else if (rank < name_rank_ || index < 0 || index != name_next_) {
        return;
    }
    name_next_ = index >= 0 ? static_cast<uint8_t>(index + 1) : 0xff;

    const auto append = [&](char ch) {
        if (part_.name_len < part_.name.size()) {
            part_.name[part_.name_len++] = ch;
        } else {
            part_.name_truncated = true;
        }
    };
    size_t i = 0;
    if (extended && index <= 0) {
        // charset'language'value: the charset and language are dropped.
        const std::string_view v(value.data(), value.size());
        const size_t first = v.find('\'');
        const size_t second = first == std::string_view::npos ? first : v.find('\'', first + 1);
        if (second != std::string_view::npos) {
            i = second + 1;
        }
    }
    for (; i < value.size(); ++i) {
        const auto ch = static_cast<uint8_t>(value[i]);
        if (extended && ch == '%' && i + 2 < value.size() && hex_value(value[i + 1]) >= 0
                && hex_value(value[i + 2]) >= 0) {
            append(static_cast<char>(hex_value(value[i + 1]) << 4 | hex_value(value[i + 2])));
            i += 2;
        } else {
            append(static_cast<char>(ch));
        }
    }
}

void MimeWalker::end_headers(bool decode, MimeHandler& handler) noexcept {
    (void)decode;
    end_header();
    if (multipart_) {
        if (boundary_len_ == 0 || !boundaries_.push({boundary_.data(), boundary_len_})) {
            ++too_deep_;
        }
        in_part_ = false;
    } else {
        in_part_ = true;
        ++parts_;
        part_.depth = static_cast<uint8_t>(boundaries_.depth());
        handler.on_part_begin(part_);
    }
    line_end_held_ = 0;
    state_ = State::BodyLineStart;
    boundaries_.begin_line();
}

void MimeWalker::delimiter(bool decode, MimeHandler& handler) noexcept {
    const size_t level = boundaries_.matched_level();
    end_part(decode, handler);
    line_end_held_ = 0;
    if (delimiter_close_) {
        boundaries_.truncate(level);
        in_part_ = false;
        state_ = State::BodyLineStart;
        boundaries_.begin_line();
    } else {
        boundaries_.truncate(level + 1);
        start_entity();
    }
}

void MimeWalker::flush_line_end(bool decode, MimeHandler& handler) noexcept {
    static constexpr std::array<uint8_t, 2> kCrLf{'\r', '\n'};
    const size_t held = line_end_held_;
    line_end_held_ = 0;
    body(std::span<const uint8_t>(kCrLf).subspan(2 - held), decode, handler);
}

void MimeWalker::body(std::span<const uint8_t> data, bool decode, MimeHandler& handler) noexcept {
    if (!in_part_ || data.empty()) {
        return;
    }
    if (part_.encoding == MimeEncoding::Identity) {
        part_.decoded_bytes += data.size();
        if (decode) {
            handler.on_part_data(data);
        }
        return;
    }
    if (!decode) {
        part_.decoded_bytes += part_.encoding == MimeEncoding::Base64
                ? base64_.decode(data, nullptr)
                : qp_.decode(data, nullptr);
        return;
    }
    constexpr size_t kChunk = 240;
    std::array<uint8_t, kChunk + 8> out;
    for (size_t at = 0; at < data.size(); at += kChunk) {
        const auto piece = data.subspan(at, std::min(kChunk, data.size() - at));
        const size_t produced = part_.encoding == MimeEncoding::Base64
                ? base64_.decode(piece, out.data())
                : qp_.decode(piece, out.data());
        if (produced > 0) {
            part_.decoded_bytes += produced;
            handler.on_part_data({out.data(), produced});
        }
    }
}

void MimeWalker::end_part(bool decode, MimeHandler& handler) noexcept {
    if (!in_part_) {
        return;
    }
    std::array<uint8_t, 4> out{};
    size_t produced = 0;
    if (part_.encoding == MimeEncoding::Base64) {
        produced = base64_.finish(out.data());
        decode_errors_ += base64_.invalid_bytes();
    } else if (part_.encoding == MimeEncoding::QuotedPrintable) {
        produced = qp_.finish(out.data());
        decode_errors_ += qp_.malformed_escapes();
    }
    if (produced > 0) {
        part_.decoded_bytes += produced;
        if (decode) {
            handler.on_part_data({out.data(), produced});
        }
    }
    in_part_ = false;
    handler.on_part_end(part_);
}

}  // namespace exfiltap::detectors
