// MIME (RFC 2045-2047, 2231) for the mail and HTTP parsers: streaming base64 and
// quoted-printable decoders, a multipart boundary matcher and a walker that splits a message
// into its parts and decodes each part's body.
//
// Threads: the worker. Nothing here allocates, locks, logs or throws; every object keeps
// its state in fixed-size members, so any input split at any byte gives the same result.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

namespace exfiltap::detectors {

/// Base64 (RFC 4648 alphabet) decoder that takes its input in pieces of any size. White
/// space is skipped; other bytes outside the alphabet are counted and skipped. The first '='
/// ends the data: what follows is ignored until reset(). State: the last three symbols.
class Base64Decoder {
public:
    /// Output bytes decode() may write for `in_len` input bytes.
    static constexpr size_t max_output(size_t in_len) noexcept { return in_len / 4 * 3 + 3; }

    /// Decodes `in`; writes to `out` (room for max_output(in.size()) bytes) unless `out` is
    /// null, in which case it only counts. Returns the bytes produced.
    size_t decode(std::span<const uint8_t> in, uint8_t* out) noexcept;
    /// The data ended without '=': flushes the bytes of a last incomplete group (two or three
    /// symbols give one or two bytes). Writes at most 2 bytes; returns how many.
    size_t finish(uint8_t* out) noexcept;
    void reset() noexcept { *this = Base64Decoder{}; }

    bool ended() const noexcept { return ended_; }
    /// Bytes outside the alphabet and white space (a lone symbol before '=' counts too).
    uint64_t invalid_bytes() const noexcept { return invalid_; }

private:
    uint64_t invalid_ = 0;
    uint32_t acc_ = 0;
    uint8_t symbols_ = 0;  // 0..3 symbols held in acc_
    bool ended_ = false;
};

/// Quoted-printable (RFC 2045 6.7) decoder that takes its input in pieces of any size:
/// "=XY" becomes one byte, "=" at a line end (optionally followed by spaces or tabs) is a
/// soft line break and disappears. A malformed escape is kept as it is. Line breaks and
/// trailing white space of lines are kept. State: at most two pending bytes.
class QuotedPrintableDecoder {
public:
    static constexpr size_t max_output(size_t in_len) noexcept { return in_len + 2; }

    /// As Base64Decoder::decode().
    size_t decode(std::span<const uint8_t> in, uint8_t* out) noexcept;
    /// Flushes a pending incomplete escape (at most 2 bytes).
    size_t finish(uint8_t* out) noexcept;
    void reset() noexcept { *this = QuotedPrintableDecoder{}; }

    uint64_t malformed_escapes() const noexcept { return malformed_; }

private:
    enum class State : uint8_t {
        Text,
        Equal,       // after '='
        Hex,         // after '=' and one hex digit (held in hex_)
        EqualSpace,  // "=" then spaces or tabs: a soft break if the line ends now
        EqualCr,     // soft break: "=\r" seen, '\n' expected
    };
    uint64_t malformed_ = 0;
    State state_ = State::Text;
    uint8_t hex_ = 0;
};

/// Finds multipart delimiter lines ("--" boundary, optionally "--" after it) among nested
/// multiparts: up to kMaxDepth boundaries of at most kMaxBoundary bytes are active at once.
/// The caller tells it where a line starts and hands it that line's bytes one by one until
/// it says Matched or Mismatch; the bytes it held until then are matched_prefix().
class BoundaryMatcher {
public:
    static constexpr size_t kMaxDepth = 8;
    static constexpr size_t kMaxBoundary = 70;  // RFC 2046

    enum class Step : uint8_t {
        More,      // the line still starts like a delimiter: feed the next byte
        Matched,   // a whole "--boundary" was read: matched_level() says whose
        Mismatch,  // not a delimiter: the byte fed last is not part of matched_prefix()
    };

    /// Adds a boundary as the innermost level; false (nothing added) when kMaxDepth levels
    /// exist already or `boundary` is empty or longer than kMaxBoundary.
    bool push(std::string_view boundary) noexcept;
    /// Keeps the levels 0..depth-1.
    void truncate(size_t depth) noexcept;
    size_t depth() const noexcept { return depth_; }

    /// A new line starts: the next byte fed is its first.
    void begin_line() noexcept;
    Step feed(uint8_t c) noexcept;
    /// After Matched: the level (0 outermost) whose boundary the line holds; the innermost
    /// when several do.
    size_t matched_level() const noexcept { return matched_; }
    /// The bytes of the line consumed before the last Mismatch (or Matched): "--" and the
    /// start of a boundary.
    std::string_view matched_prefix() const noexcept;

private:
    char at(size_t level, size_t pos) const noexcept;

    std::array<std::array<char, kMaxBoundary>, kMaxDepth> boundary_{};
    std::array<uint8_t, kMaxDepth> len_{};
    std::array<char, kMaxBoundary + 2> prefix_{};
    size_t depth_ = 0;
    size_t pos_ = 0;
    size_t matched_ = 0;
    uint8_t candidates_ = 0;  // bit per level still matching
};

/// Content-Transfer-Encoding of a part.
enum class MimeEncoding : uint8_t {
    Identity = 0,  // 7bit, 8bit, binary, absent or unknown
    Base64 = 1,
    QuotedPrintable = 2,
};

/// What the walker knows about a leaf part when its body starts (and, with decoded_bytes,
/// when it ends).
struct MimePartInfo {
    static constexpr size_t kNameCap = 255;

    MimeEncoding encoding = MimeEncoding::Identity;
    /// Content-Disposition: attachment.
    bool disposition_attachment = false;
    /// Content-Type message/... (kept whole as one part, not walked into).
    bool is_message = false;
    /// The file name was longer than kNameCap bytes (or its header longer than the header
    /// buffer) and is cut.
    bool name_truncated = false;
    /// Nesting level: 0 for a message that is not multipart, 1 for the parts of the top
    /// multipart, ...
    uint8_t depth = 0;
    uint16_t name_len = 0;
    uint64_t decoded_bytes = 0;
    /// Content-Disposition filename (RFC 2231 continuations and charset'lang'%XX undone)
    /// or else Content-Type name. RFC 2047 encoded words are kept as they are.
    std::array<char, kNameCap> name{};

    std::string_view name_view() const noexcept { return {name.data(), name_len}; }
    /// A file name or a Content-Disposition attachment: what mail calls an attachment.
    bool is_attachment() const noexcept { return disposition_attachment || name_len > 0; }
};

/// Receives the parts of a message from MimeWalker (on the worker; must not block).
class MimeHandler {
public:
    /// A leaf part's headers ended; its body follows.
    virtual void on_part_begin(const MimePartInfo& part) noexcept = 0;
    /// Decoded body bytes of the current part (only when the walker decodes).
    virtual void on_part_data(std::span<const uint8_t> data) noexcept = 0;
    /// The part ended (a boundary or the message's end); part.decoded_bytes is final.
    virtual void on_part_end(const MimePartInfo& part) noexcept = 0;

protected:
    ~MimeHandler() = default;
};

/// Splits one message (headers and body, no SMTP dot-stuffing) into its parts: multipart
/// nesting up to BoundaryMatcher::kMaxDepth levels (a multipart deeper than that, or one
/// without a usable boundary, is counted in too_deep() and its body skipped), per part
/// Content-Type, Content-Transfer-Encoding and Content-Disposition. Only the three Content-
/// headers are kept (kHeaderCap bytes each after unfolding; longer ones are cut and
/// counted). Preambles and epilogues are skipped. Lines may end in CRLF or LF.
class MimeWalker {
public:
    static constexpr size_t kHeaderCap = 512;

    /// Starts a new message.
    void reset() noexcept;
    /// Feeds message bytes. With `decode` false the parts' bodies are only counted (sizes
    /// are the same) and on_part_data() is not called.
    void feed(std::span<const uint8_t> data, bool decode, MimeHandler& handler) noexcept;
    /// The message ended: ends a part still open.
    void finish(bool decode, MimeHandler& handler) noexcept;

    uint32_t parts() const noexcept { return parts_; }
    uint32_t too_deep() const noexcept { return too_deep_; }
    uint32_t headers_cut() const noexcept { return headers_cut_; }
    /// Base64 bytes outside the alphabet plus malformed quoted-printable escapes.
    uint64_t decode_errors() const noexcept { return decode_errors_; }

private:
    enum class State : uint8_t {
        HeaderLineStart,
        HeaderName,
        HeaderValue,
        HeaderSkip,     // a header we do not keep (or a line without ':')
        HeaderBlankCr,  // "\r" at a line start: the blank line that ends the headers
        BodyLineStart,  // matching a delimiter at the start of a body line
        BodyText,       // inside a body line
        BodyCr,         // '\r' inside a body line
        DelimiterTail,  // after "--boundary": up to the line's end
    };
    enum class Header : uint8_t {
        None,
        ContentType,
        TransferEncoding,
        Disposition,
    };

    void start_entity() noexcept;
    void end_header() noexcept;
    void end_headers(bool decode, MimeHandler& handler) noexcept;
    void parse_content_type(std::span<char> value) noexcept;
    void parse_disposition(std::span<char> value) noexcept;
    void parse_encoding(std::string_view value) noexcept;
    void name_param(std::string_view attr, std::span<char> value, bool disposition) noexcept;
    void body(std::span<const uint8_t> data, bool decode, MimeHandler& handler) noexcept;
    void flush_line_end(bool decode, MimeHandler& handler) noexcept;
    void delimiter(bool decode, MimeHandler& handler) noexcept;
    void end_part(bool decode, MimeHandler& handler) noexcept;

    MimePartInfo part_{};
    Base64Decoder base64_{};
    QuotedPrintableDecoder qp_{};
    BoundaryMatcher boundaries_{};
    std::array<char, kHeaderCap> header_{};
    std::array<char, 32> header_name_{};
    std::array<char, BoundaryMatcher::kMaxBoundary> boundary_{};
    uint64_t decode_errors_ = 0;
    uint32_t parts_ = 0;
    uint32_t too_deep_ = 0;
    uint32_t headers_cut_ = 0;
    uint16_t header_len_ = 0;
    uint8_t header_name_len_ = 0;
    uint8_t boundary_len_ = 0;
    uint8_t line_end_held_ = 0;  // held body line end: 0, 1 ("\n") or 2 ("\r\n")
    uint8_t name_rank_ = 0;      // where part_.name came from (higher wins)
    uint8_t name_next_ = 0;      // next RFC 2231 continuation index expected
    State state_ = State::HeaderLineStart;
    Header header_kind_ = Header::None;
    bool header_pending_ = false;  // a kept header awaits its possible continuation lines
    bool multipart_ = false;       // the entity's Content-Type is multipart/...
    bool in_part_ = false;         // the body being read is a leaf part's
    bool delimiter_close_ = false;
    uint8_t delimiter_tail_ = 0;  // bytes seen after the boundary (up to 2 are checked)
};

}  // namespace exfiltap::detectors
