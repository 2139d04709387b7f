// HTTP/1.x parser for one TCP flow: requests, responses, body framing (Content-Length,
// chunked with trailers, until close), Basic logins, PUT and multipart uploads, and decoded
// bodies for the content detector.
//
// Threads: a worker holds one HttpParser per HTTP flow (in a fixed-size pool slot) and calls
// it as in-order bytes arrive. Every member is noexcept and allocation-free; the only memory
// outside the object is an InflatePool slot while a compressed body is being decoded.
//
// What it reports (AppEvent, proto Http):
// - HttpRequest per request: method, host, name = request target, user = Basic user.
//   bytes = Content-Length, reported when the headers end; a chunked body's de-chunked size is
//   reported when it ends (final = false when the flow ends or a gap cuts it first).
// - Login when the request carried `Authorization: Basic`: outcome from the response status
//   (401/403 Failure, 2xx/3xx Success, no response or another status: Attempt). Only the
//   user name part of the credentials is ever decoded; the password is never decoded or kept.
// - FileTransfer (upload) for PUT (name = last path segment, bytes = de-chunked body size) and
//   for each multipart part with a file name (filename, or RFC 2231/5987 filename*),
//   bytes = the part's size; final = false when the body did not end cleanly.
//
// What goes to the ObjectSink (only when it is non-null):
// - bodies with Content-Encoding gzip, x-gzip or deflate, decoded, in either direction;
// - when no decoder is available (no pool, pool exhausted, unknown coding such as br), the
//   encoded body goes out as it is (after de-chunking), so archive magic still sees it;
// - bodies without Content-Encoding only when de-chunking changed them (chunked): a plain
//   Content-Length or until-close body is already visible, unchanged, to the raw stream scan.
// A multipart request body goes out whole (parts included) under the same rules.
// Objects do not nest: when the two directions' bodies interleave, the open object is ended
// and a new one begins for the other direction (a body can thus arrive as several objects).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

#include "detectors/app_event.h"
#include "detectors/archive_magic.h"
#include "detectors/inflate_pool.h"

namespace exfiltap::detectors {

class HttpParser {
public:
    static constexpr size_t kLineCap = 1024;       // header line bytes kept; longer: cut
    static constexpr size_t kMaxHeaders = 100;     // per message; later ones are ignored
    static constexpr size_t kMaxBoundary = 70;     // RFC 2046
    static constexpr size_t kMaxPartHeaders = 32;  // header lines per multipart part
    static constexpr size_t kMaxPending = 32;      // pipelined requests awaiting a response

    /// Things counted instead of reported. Plain counters, read by the worker.
    struct Counters {
        uint32_t malformed = 0;       // bad request/status/chunk-size lines, bad lengths
        uint32_t lines_cut = 0;       // lines longer than kLineCap
        uint32_t headers_cut = 0;     // messages with more than kMaxHeaders headers
        uint32_t gaps = 0;            // on_gap() calls
        uint32_t pending_lost = 0;    // requests not queued (more than kMaxPending waiting)
        uint32_t decode_refused = 0;  // encoded bodies that found no free decoder
        uint32_t decode_capped = 0;   // bodies stopped by the output or ratio cap
        uint32_t decode_failed = 0;   // corrupt compressed bodies
    };

    /// `inflate`: the worker's decoder pool, shared by all its parsers; null: no decoding
    /// (encoded bodies go to the ObjectSink as they are).
    explicit HttpParser(InflatePool* inflate = nullptr) noexcept;
    HttpParser(const HttpParser&) = delete;
    HttpParser& operator=(const HttpParser&) = delete;

    /// In-order bytes of one direction. `objects` may be null: nothing is decoded then.
    void on_data(AppDir dir, std::span<const uint8_t> data, AppEventSink& events,
            ObjectSink* objects) noexcept;
    /// Bytes of `dir` were lost before its next data: the message in progress is given up
    /// (its events go out at the next call, final = false) and the direction resynchronises
    /// at the next line that starts a request (or a response).
    void on_gap(AppDir dir) noexcept;
    /// The flow ended: reports what is still open (incomplete bodies, unanswered logins).
    void on_end(AppEventSink& events, ObjectSink* objects) noexcept;
    /// True once both directions stopped being HTTP (CONNECT tunnel, protocol upgrade, an
    /// HTTP/2 preface) or the flow ended.
    bool done() const noexcept;

    const Counters& counters() const noexcept { return counters_; }

private:
    enum class State : uint8_t {
        Start,    // expecting a request line (client) or a status line (server)
        Headers,  // header lines until the empty line
        Body,     // body bytes per the framing
        Hold,     // Expect: 100-continue refused: is the next thing a body or a request?
        Resync,   // after a gap or garbage: skipping lines until a start line
        Closed,   // not HTTP any more (tunnel, upgrade, end of flow)
    };
    enum class Framing : uint8_t {
        None,
        Length,
        Chunked,
        UntilClose
    };
    enum class Chunk : uint8_t {
        Size,
        SizeTail,
        Data,
        DataTail,
        TrailerStart,
        TrailerCr,
        TrailerLine
    };
    enum class Coding : uint8_t {
        None,
        Gzip,
        Deflate,
        Other
    };
    enum class Part : uint8_t {
        Preamble,
        DelimTail,
        Headers,
        Data,
        Epilogue
    };

    struct Side {
        State state = State::Start;
        Framing framing = Framing::None;
        Chunk chunk = Chunk::Size;
        Coding coding = Coding::None;
        bool line_cut = false;
        bool gap_pending = false;
        bool has_length = false;
        bool chunked = false;
        bool to_objects = false;    // this body goes to the ObjectSink
        bool plain_object = false;  // ... as an HttpPlainBody (exact data match only)
        bool decoding = false;      // through `inflater`
        bool skip_body = false;     // decoding stopped: the rest of the body is not an object
        uint8_t chunk_digits = 0;
        uint16_t line_len = 0;
        uint16_t headers = 0;
        uint64_t content_length = 0;
        uint64_t remaining = 0;  // Length: body bytes left; Chunked: bytes left in chunk
        uint64_t chunk_size = 0;
        uint64_t body_bytes = 0;  // de-framed body bytes so far
        Inflater inflater;
        std::array<char, kLineCap> line{};
    };

    struct Multipart {
        bool active = false;
        Part phase = Part::Preamble;
        bool file = false;      // the current part has a file name
        uint8_t delim_len = 0;  // "\r\n--" + boundary
        uint8_t match = 0;      // delimiter bytes matched so far
        uint8_t tail = 0;       // DelimTail: '-' seen right after the delimiter
        uint8_t header_lines = 0;
        uint64_t part_bytes = 0;
        std::array<char, kMaxBoundary + 4> delim{};
        std::array<uint8_t, kMaxBoundary + 4> fail{};  // KMP failure function of delim
        AppEvent file_event{};  // FileTransfer being built for the current part
    };

    struct Context;

    // Line and message handling.
    size_t take_line(Side& side, std::span<const uint8_t> data, bool& complete) noexcept;
    void process_line(AppDir dir, Context& ctx) noexcept;
    bool request_line(std::string_view line, bool cut, bool strict) noexcept;
    bool status_line(std::string_view line) noexcept;
    void request_header(std::string_view name, std::string_view value) noexcept;
    void response_header(std::string_view name, std::string_view value) noexcept;
    void common_header(Side& side, std::string_view name, std::string_view value) noexcept;
    void request_headers_end(Context& ctx) noexcept;
    void response_headers_end(Context& ctx) noexcept;
    void pop_pending(Context& ctx) noexcept;

    // Bodies.
    void run(AppDir dir, std::span<const uint8_t> data, Context& ctx) noexcept;
    size_t consume_chunked(AppDir dir, std::span<const uint8_t> data, Context& ctx) noexcept;
    size_t consume_body(AppDir dir, std::span<const uint8_t> data, Context& ctx) noexcept;
    size_t consume_hold(std::span<const uint8_t> data, Context& ctx) noexcept;
    void start_body(AppDir dir, Context& ctx) noexcept;
    void body_bytes(AppDir dir, std::span<const uint8_t> data, Context& ctx) noexcept;
    void decoded_bytes(AppDir dir, std::span<const uint8_t> data, Context& ctx) noexcept;
    void finish_body(AppDir dir, bool complete, Context& ctx) noexcept;
    void reset_message(Side& side) noexcept;
    void recover_gap(AppDir dir, Context& ctx) noexcept;
    static void on_inflated(void* context, std::span<const uint8_t> data) noexcept;

    // Objects (one open at a time).
    void object_data(AppDir dir, std::span<const uint8_t> data, Context& ctx) noexcept;
    void object_close(AppDir dir, Context& ctx) noexcept;
    /// Reports an Archive event when `head` (the first decoded bytes of an uploaded body
    /// or multipart part) starts with an archive signature.
    void check_archive(std::span<const uint8_t> head, std::span<const uint8_t> sample,
            uint64_t size, Context& ctx) noexcept;
    /// Adds a multipart file part's first bytes (pending since its headers ended).
    void part_head(std::span<const uint8_t> data, Context& ctx) noexcept;

    // Multipart request bodies.
    void multipart_begin(std::string_view boundary) noexcept;
    void multipart_scan(std::span<const uint8_t> data, Context& ctx) noexcept;
    void multipart_part_header(std::string_view line) noexcept;
    void multipart_finish(Context& ctx) noexcept;
    void emit_part(bool complete, Context& ctx) noexcept;

    Side& side(AppDir dir) noexcept { return dir == AppDir::ToServer ? client_ : server_; }

    InflatePool* inflate_ = nullptr;
    Counters counters_{};
    Side client_{};
    Side server_{};
    AppEvent request_{};            // the request in progress (HttpRequest)
    bool request_pending_ = false;  // request_ still to be emitted (chunked body)
    bool request_put_ = false;
    bool request_basic_ = false;
    bool request_expect_ = false;
    bool request_form_ = false;  // Content-Type application/x-www-form-urlencoded
    bool request_head_ = false;
    bool request_connect_ = false;
    uint16_t status_ = 0;      // of the response in progress
    uint8_t open_object_ = 0;  // 0: none, else the object's AppDir + 1
    // The request body's (or current multipart file part's) first decoded bytes, gathered
    // until an archive signature can be judged; `part_head_` while a part's are pending.
    ArchiveHead archive_head_;
    bool part_head_ = false;
    uint8_t pending_head_ = 0;
    uint8_t pending_count_ = 0;
    uint8_t hold_len_ = 0;
    // Requests waiting for their response, oldest first: what the response's framing and the
    // Login need (kPendingHead, kPendingConnect, kPendingBasic).
    std::array<uint8_t, kMaxPending> pending_{};
    std::array<uint8_t, 12> hold_{};  // Hold: bytes that may start a request line
    std::array<char, AppEvent::kUserCap> login_user_{};  // the latest Basic user
    Multipart multipart_{};
};

static_assert(sizeof(HttpParser) <= 4096, "a parser must fit the worker's pool slot");

}  // namespace exfiltap::detectors
