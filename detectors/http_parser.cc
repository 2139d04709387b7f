#include "detectors/http_parser.h"

#include <algorithm>
#include <cstring>

#include "detectors/archive_magic.h"
#include "detectors/text_util.h"

namespace exfiltap::detectors {

namespace {

constexpr uint8_t kPendingHead = 1;
constexpr uint8_t kPendingConnect = 2;
constexpr uint8_t kPendingBasic = 4;

// Request methods a refused Expect: 100-continue body may be followed by (Hold state).
constexpr std::array<std::string_view, 10> kHoldMethods = {"GET ", "POST ", "PUT ", "HEAD ",
        "DELETE ", "OPTIONS ", "PATCH ", "CONNECT ", "TRACE ", "PROPFIND "};

size_t ifind(std::string_view text, std::string_view needle) noexcept {
    for (size_t i = 0; i + needle.size() <= text.size(); ++i) {
        if (iequals(text.substr(i, needle.size()), needle)) {
            return i;
        }
    }
    return std::string_view::npos;
}

bool is_space(char c) noexcept {
    return c == ' ' || c == '\t';
}

bool is_token_char(char c) noexcept {
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) {
        return true;
    }
    return std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

bool parse_length(std::string_view s, uint64_t& out) noexcept {
    if (s.empty() || s.size() > 18) {
        return false;
    }
    uint64_t v = 0;
    for (char c : s) {
        if (c < '0' || c > '9') {
            return false;
        }
        v = v * 10 + static_cast<uint64_t>(c - '0');
    }
    out = v;
    return true;
}

int base64_value(char c) noexcept {
    if (c >= 'A' && c <= 'Z') {
        return c - 'A';
    }
    if (c >= 'a' && c <= 'z') {
        return c - 'a' + 26;
    }
    if (c >= '0' && c <= '9') {
        return c - '0' + 52;
    }
    if (c == '+') {
        return 62;
    }
    if (c == '/') {
        return 63;
    }
    return -1;
}

// The user name of Basic credentials: decodes only up to the ':' and stops there, so the
// password is never decoded. Without a ':' nothing is reported (the token may be a secret).
bool basic_user(
        std::string_view b64, std::array<char, AppEvent::kUserCap>& out, bool& cut) noexcept {
    std::array<char, AppEvent::kUserCap> user{};
    size_t n = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (char c : b64) {
        const int v = base64_value(c);
        if (v < 0) {
            break;
        }
        acc = ((acc << 6) | static_cast<uint32_t>(v)) & 0xffffU;
        bits += 6;
        if (bits < 8) {
            continue;
        }
        bits -= 8;
        const auto byte = static_cast<char>((acc >> bits) & 0xffU);
        if (byte == ':') {
            AppEvent tmp;
            tmp.set(out, std::string_view(user.data(), n));
            cut = cut || tmp.truncated;
            return true;
        }
        if (n + 1 < user.size()) {
            user[n++] = byte;
        } else {
            cut = true;
        }
    }
    return false;
}

// Reads one parameter value of a header (quoted-string or token) starting at `s`; `used` is
// how much of `s` it took.
size_t param_value(
        std::string_view s, std::array<char, AppEvent::kNameCap>& out, size_t& used) noexcept {
    size_t n = 0;
    size_t i = 0;
    if (!s.empty() && s[0] == '"') {
        for (i = 1; i < s.size() && s[i] != '"'; ++i) {
            if (s[i] == '\\' && i + 1 < s.size()) {
                ++i;
            }
            if (n < out.size()) {
                out[n++] = s[i];
            }
        }
        used = i < s.size() ? i + 1 : i;
        return n;
    }
    for (; i < s.size() && s[i] != ';' && !is_space(s[i]); ++i) {
        if (n < out.size()) {
            out[n++] = s[i];
        }
    }
    used = i;
    return n;
}

// Percent-decodes `in` (RFC 5987 value-chars) and appends to `out` at `n`.
void append_percent_decoded(
        std::string_view in, std::array<char, AppEvent::kNameCap>& out, size_t& n) noexcept {
    for (size_t i = 0; i < in.size() && n < out.size(); ++i) {
        if (in[i] == '%' && i + 2 < in.size() && hex_value(static_cast<char>(in[i + 1])) >= 0
                && hex_value(static_cast<char>(in[i + 2])) >= 0) {
            out[n++] = static_cast<char>(hex_value(static_cast<char>(in[i + 1])) * 16
                    + hex_value(static_cast<char>(in[i + 2])));
            i += 2;
        } else {
            out[n++] = in[i];
        }
    }
}

// Drops the charset'language' prefix of an RFC 2231/5987 extended value.
std::string_view strip_charset(std::string_view v) noexcept {
    const size_t first = v.find('\'');
    if (first == std::string_view::npos) {
        return v;
    }
    const size_t second = v.find('\'', first + 1);
    return second == std::string_view::npos ? v : v.substr(second + 1);
}

}  // namespace

struct HttpParser::Context {
    AppEventSink& events;
    ObjectSink* objects;
    HttpParser* self;
    AppDir dir;
};

HttpParser::HttpParser(InflatePool* inflate) noexcept : inflate_(inflate) {}

// ---- entry points ----

void HttpParser::on_data(AppDir dir, std::span<const uint8_t> data, AppEventSink& events,
        ObjectSink* objects) noexcept {
    Context ctx{events, objects, this, dir};
    if (side(dir).gap_pending) {
        recover_gap(dir, ctx);
    }
    run(dir, data, ctx);
}

void HttpParser::on_gap(AppDir dir) noexcept {
    ++counters_.gaps;
    side(dir).gap_pending = true;
}

void HttpParser::on_end(AppEventSink& events, ObjectSink* objects) noexcept {
    Context ctx{events, objects, this, AppDir::ToServer};
    for (AppDir dir : {AppDir::ToServer, AppDir::ToClient}) {
        Side& s = side(dir);
        if (s.gap_pending) {
            recover_gap(dir, ctx);
        }
        if (s.state == State::Body || s.state == State::Hold) {
            finish_body(dir, s.framing == Framing::UntilClose, ctx);
        }
        s.state = State::Closed;
    }
    // Logins nobody answered.
    while (pending_count_ > 0) {
        const uint8_t flags = pending_[pending_head_];
        pending_head_ = static_cast<uint8_t>((pending_head_ + 1) % kMaxPending);
        --pending_count_;
        if ((flags & kPendingBasic) != 0) {
            AppEvent login;
            login.kind = AppEventKind::Login;
            login.proto = AppProto::Http;
            login.outcome = LoginOutcome::Attempt;
            login.user = login_user_;
            events.on_app_event(login);
        }
    }
    if (open_object_ != 0 && objects != nullptr) {
        objects->object_end();
    }
    open_object_ = 0;
}

bool HttpParser::done() const noexcept {
    return client_.state == State::Closed && server_.state == State::Closed;
}

// Every step either consumes bytes or changes state, so the loop ends.
void HttpParser::run(AppDir dir, std::span<const uint8_t> data, Context& ctx) noexcept {
    Side& s = side(dir);
    size_t at = 0;
    while (at < data.size() && s.state != State::Closed) {
        const auto rest = data.subspan(at);
        if (s.state == State::Body) {
            at += consume_body(dir, rest, ctx);
        } else if (s.state == State::Hold) {
            at += consume_hold(rest, ctx);
        } else {
            bool complete = false;
            at += take_line(s, rest, complete);
            if (complete) {
                process_line(dir, ctx);
                s.line_len = 0;
                s.line_cut = false;
            }
        }
    }
}

void HttpParser::recover_gap(AppDir dir, Context& ctx) noexcept {
    Side& s = side(dir);
    s.gap_pending = false;
    if (s.state == State::Closed) {
        return;
    }
    if ((s.state == State::Body) && s.framing == Framing::UntilClose) {
        // The rest of the connection is this body anyway; only decoding cannot go on.
        s.inflater.end();
        s.decoding = false;
        s.to_objects = false;
        s.skip_body = true;
        object_close(dir, ctx);
        return;
    }
    if (s.state == State::Body || s.state == State::Hold) {
        finish_body(dir, false, ctx);
    }
    s.state = State::Resync;
    s.line_len = 0;
    s.line_cut = false;
}

// ---- lines ----

size_t HttpParser::take_line(Side& s, std::span<const uint8_t> data, bool& complete) noexcept {
    const void* lf = std::memchr(data.data(), '\n', data.size());
    const size_t n = lf == nullptr
            ? data.size()
            : static_cast<size_t>(static_cast<const uint8_t*>(lf) - data.data());
    const size_t room = s.line.size() - s.line_len;
    const size_t copy = std::min(n, room);
    std::memcpy(s.line.data() + s.line_len, data.data(), copy);
    s.line_len = static_cast<uint16_t>(s.line_len + copy);
    if (copy < n) {
        s.line_cut = true;
    }
    complete = lf != nullptr;
    return complete ? n + 1 : n;
}

void HttpParser::process_line(AppDir dir, Context& ctx) noexcept {
    Side& s = side(dir);
    std::string_view line(s.line.data(), s.line_len);
    if (!s.line_cut && !line.empty() && line.back() == '\r') {
        line.remove_suffix(1);
    }
    const bool cut = s.line_cut;
    if (cut) {
        ++counters_.lines_cut;
    }
    const bool to_server = dir == AppDir::ToServer;
    switch (s.state) {
    case State::Start:
    case State::Resync: {
        const bool strict = s.state == State::Resync;
        if (line.empty() && !cut) {
            return;  // blank lines between messages are tolerated
        }
        if (to_server && line.starts_with("PRI * HTTP/2")) {
            client_.state = State::Closed;  // HTTP/2 prior knowledge: not ours
            server_.state = State::Closed;
            return;
        }
        const bool ok = to_server ? request_line(line, cut, strict) : status_line(line);
        if (ok) {
            s.state = State::Headers;
        } else if (!strict) {
            ++counters_.malformed;
            s.state = State::Resync;
        }
        return;
    }
    case State::Headers: {
        if (line.empty() && !cut) {
            if (to_server) {
                request_headers_end(ctx);
            } else {
                response_headers_end(ctx);
            }
            return;
        }
        if (++s.headers > kMaxHeaders) {
            if (s.headers == kMaxHeaders + 1) {
                ++counters_.headers_cut;
            }
            s.headers = kMaxHeaders + 1;
            return;
        }
        if (is_space(line.front())) {
            return;  // obsolete line folding: the continuation is ignored
        }
        const size_t colon = line.find(':');
        if (colon == std::string_view::npos || colon == 0) {
            return;
        }
        const std::string_view name = trim(line.substr(0, colon));
        const std::string_view value = trim(line.substr(colon + 1));
        if (to_server) {
            request_header(name, value);
        } else {
            response_header(name, value);
        }
        return;
    }
    default:
        return;
    }
}

bool HttpParser::request_line(std::string_view line, bool cut, bool strict) noexcept {
    if (strict && cut) {
        return false;
    }
    const size_t sp1 = line.find(' ');
    if (sp1 == std::string_view::npos || sp1 == 0 || sp1 >= AppEvent::kMethodCap) {
        return false;
    }
    const std::string_view method = line.substr(0, sp1);
    for (char c : method) {
        if (strict ? !(c >= 'A' && c <= 'Z') : !is_token_char(c)) {
            return false;
        }
    }
    std::string_view rest = line.substr(sp1 + 1);
    std::string_view uri;
    const size_t sp2 = rest.find(' ');
    if (sp2 != std::string_view::npos) {
        uri = rest.substr(0, sp2);
        const std::string_view version = rest.substr(sp2 + 1);
        if (!version.starts_with("HTTP/1.")
                && !(cut && std::string_view("HTTP/1.").starts_with(version))) {
            return false;
        }
    } else if (cut) {
        uri = rest;  // the target is longer than the line buffer
    } else {
        return false;  // HTTP/0.9 or garbage
    }
    if (uri.empty()) {
        return false;
    }
    request_ = AppEvent{};
    request_.kind = AppEventKind::HttpRequest;
    request_.proto = AppProto::Http;
    request_.set(request_.method, method);
    request_.set(request_.name, uri);
    request_.truncated = request_.truncated || cut;
    request_pending_ = false;
    request_put_ = method == "PUT";
    request_head_ = method == "HEAD";
    request_connect_ = method == "CONNECT";
    request_basic_ = false;
    request_expect_ = false;
    request_form_ = false;
    multipart_.active = false;
    reset_message(client_);
    return true;
}

bool HttpParser::status_line(std::string_view line) noexcept {
    // "HTTP/1.1 200 OK": version, space, three digits, then a space or the end.
    if (!line.starts_with("HTTP/1.") || line.size() < 12 || line[8] != ' ') {
        return false;
    }
    uint16_t code = 0;
    for (size_t i = 9; i < 12; ++i) {
        if (line[i] < '0' || line[i] > '9') {
            return false;
        }
        code = static_cast<uint16_t>(code * 10 + (line[i] - '0'));
    }
    if (line.size() > 12 && line[12] != ' ') {
        return false;
    }
    status_ = code;
    reset_message(server_);
    return true;
}

void HttpParser::common_header(Side& s, std::string_view name, std::string_view value) noexcept {
    if (iequals(name, "content-length")) {
        uint64_t length = 0;
        if (!parse_length(value, length) || (s.has_length && length != s.content_length)) {
            ++counters_.malformed;
            return;
        }
        s.has_length = true;
        s.content_length = length;
    } else if (iequals(name, "transfer-encoding")) {
        if (ifind(value, "chunked") != std::string_view::npos) {
            s.chunked = true;
        }
    } else if (iequals(name, "content-encoding")) {
        if (iequals(value, "gzip") || iequals(value, "x-gzip")) {
            s.coding = Coding::Gzip;
        } else if (iequals(value, "deflate")) {
            s.coding = Coding::Deflate;
        } else if (!iequals(value, "identity") && !value.empty()) {
            s.coding = Coding::Other;
        }
    }
}

void HttpParser::request_header(std::string_view name, std::string_view value) noexcept {
    if (iequals(name, "host")) {
        request_.set(request_.host, value);
    } else if (iequals(name, "authorization")) {
        if (value.size() > 6 && istarts_with(value, "basic") && is_space(value[5])) {
            bool cut = false;
            request_basic_ = true;
            if (!basic_user(trim(value.substr(6)), request_.user, cut)) {
                request_.user[0] = '\0';
            }
            request_.truncated = request_.truncated || cut;
            login_user_ = request_.user;
        }
    } else if (iequals(name, "expect")) {
        request_expect_ = iequals(value, "100-continue");
    } else if (iequals(name, "content-type")) {
        request_form_ = istarts_with(value, "application/x-www-form-urlencoded");
        if (!istarts_with(value, "multipart/")) {
            return;
        }
        const size_t at = ifind(value, "boundary=");
        if (at == std::string_view::npos) {
            return;
        }
        std::array<char, AppEvent::kNameCap> boundary{};
        size_t used = 0;
        const size_t n = param_value(value.substr(at + 9), boundary, used);
        multipart_begin(std::string_view(boundary.data(), n));
    } else {
        common_header(client_, name, value);
    }
}

void HttpParser::response_header(std::string_view name, std::string_view value) noexcept {
    common_header(server_, name, value);
}

void HttpParser::request_headers_end(Context& ctx) noexcept {
    Side& s = client_;
    s.framing = s.chunked ? Framing::Chunked : s.has_length ? Framing::Length : Framing::None;
    request_.bytes = s.framing == Framing::Length ? s.content_length : 0;
    request_.final = true;
    if (s.framing == Framing::Chunked) {
        request_pending_ = true;  // the size is known at the body's end
    } else {
        ctx.events.on_app_event(request_);
    }
    const uint8_t flags = static_cast<uint8_t>((request_head_ ? kPendingHead : 0)
            | (request_connect_ ? kPendingConnect : 0) | (request_basic_ ? kPendingBasic : 0));
    if (pending_count_ < kMaxPending) {
        pending_[(pending_head_ + pending_count_) % kMaxPending] = flags;
        ++pending_count_;
    } else {
        ++counters_.pending_lost;
    }
    start_body(AppDir::ToServer, ctx);
}

void HttpParser::pop_pending(Context& ctx) noexcept {
    uint8_t flags = 0;
    if (pending_count_ > 0) {
        flags = pending_[pending_head_];
        pending_head_ = static_cast<uint8_t>((pending_head_ + 1) % kMaxPending);
        --pending_count_;
    }
    if ((flags & kPendingBasic) != 0) {
        AppEvent login;
        login.kind = AppEventKind::Login;
        login.proto = AppProto::Http;
        login.user = login_user_;
        if (status_ == 401 || status_ == 403) {
            login.outcome = LoginOutcome::Failure;
        } else if (status_ >= 200 && status_ < 400) {
            login.outcome = LoginOutcome::Success;
        }
        ctx.events.on_app_event(login);
    }
    Side& s = server_;
    if (status_ == 101 || ((flags & kPendingConnect) != 0 && status_ >= 200 && status_ < 300)) {
        client_.state = State::Closed;  // upgraded or tunnelled: no HTTP any more
        server_.state = State::Closed;
        return;
    }
    if ((flags & kPendingHead) != 0 || status_ == 204 || status_ == 304) {
        s.framing = Framing::None;
    } else {
        s.framing = s.chunked  ? Framing::Chunked
                : s.has_length ? Framing::Length
                               : Framing::UntilClose;
    }
}

void HttpParser::response_headers_end(Context& ctx) noexcept {
    if (status_ >= 100 && status_ < 200 && status_ != 101) {
        if (status_ == 100) {
            request_expect_ = false;  // the body follows
        }
        server_.state = State::Start;
        return;
    }
    pop_pending(ctx);
    if (server_.state == State::Closed) {
        return;
    }
    // A final answer to an Expect: 100-continue request whose body has not started: the
    // client may send the body or its next request; Hold decides from the next bytes.
    if (request_expect_ && client_.state == State::Body && client_.body_bytes == 0) {
        request_expect_ = false;
        client_.state = State::Hold;
        hold_len_ = 0;
    }
    start_body(AppDir::ToClient, ctx);
}

// ---- bodies ----

void HttpParser::reset_message(Side& s) noexcept {
    s.inflater.end();
    s.framing = Framing::None;
    s.chunk = Chunk::Size;
    s.coding = Coding::None;
    s.has_length = false;
    s.chunked = false;
    s.to_objects = false;
    s.plain_object = false;
    s.decoding = false;
    s.skip_body = false;
    s.chunk_digits = 0;
    s.headers = 0;
    s.content_length = 0;
    s.remaining = 0;
    s.chunk_size = 0;
    s.body_bytes = 0;
}

void HttpParser::start_body(AppDir dir, Context& ctx) noexcept {
    Side& s = side(dir);
    if (s.framing == Framing::None || (s.framing == Framing::Length && s.content_length == 0)) {
        finish_body(dir, true, ctx);
        return;
    }
    if (s.state != State::Hold) {
        s.state = State::Body;
    }
    s.remaining = s.framing == Framing::Length ? s.content_length : 0;
    const bool wanted = ctx.objects != nullptr && ctx.objects->wants(dir);
    s.to_objects = wanted && (s.coding != Coding::None || s.framing == Framing::Chunked);
    // A form post ends without a line end: its last field would run into the next request.
    s.plain_object = !s.to_objects && dir == AppDir::ToServer && s.coding == Coding::None
            && request_form_ && ctx.objects != nullptr && ctx.objects->wants_plain(dir);
    s.to_objects = s.to_objects || s.plain_object;
    if (wanted && (s.coding == Coding::Gzip || s.coding == Coding::Deflate)) {
        const auto coding = s.coding == Coding::Gzip ? InflateCoding::Gzip : InflateCoding::Deflate;
        s.decoding = s.inflater.begin(inflate_, coding);
        if (!s.decoding && inflate_ != nullptr) {
            ++counters_.decode_refused;
        }
    }
}

size_t HttpParser::consume_body(AppDir dir, std::span<const uint8_t> data, Context& ctx) noexcept {
    Side& s = side(dir);
    switch (s.framing) {
    case Framing::Length: {
        const size_t n = static_cast<size_t>(std::min<uint64_t>(s.remaining, data.size()));
        body_bytes(dir, data.first(n), ctx);
        s.remaining -= n;
        if (s.remaining == 0) {
            finish_body(dir, true, ctx);
        }
        return n;
    }
    case Framing::UntilClose:
        body_bytes(dir, data, ctx);
        return data.size();
    case Framing::Chunked:
        return consume_chunked(dir, data, ctx);
    case Framing::None:
        break;
    }
    finish_body(dir, true, ctx);
    return 0;
}

size_t HttpParser::consume_chunked(
        AppDir dir, std::span<const uint8_t> data, Context& ctx) noexcept {
    Side& s = side(dir);
    size_t at = 0;
    // Up to the next line end; returns true when there was one (and steps past it).
    auto skip_line = [&]() noexcept {
        const void* lf = std::memchr(data.data() + at, '\n', data.size() - at);
        if (lf == nullptr) {
            at = data.size();
            return false;
        }
        at = static_cast<size_t>(static_cast<const uint8_t*>(lf) - data.data()) + 1;
        return true;
    };
    auto chunk_begin = [&]() noexcept {
        if (s.chunk_size == 0) {
            s.chunk = Chunk::TrailerStart;
        } else {
            s.remaining = s.chunk_size;
            s.chunk = Chunk::Data;
        }
    };
    while (at < data.size() && s.state == State::Body) {
        const uint8_t c = data[at];
        switch (s.chunk) {
        case Chunk::Size: {
            const int v = hex_value(c);
            if (v >= 0) {
                if ((s.chunk_size >> 56) != 0) {
                    ++counters_.malformed;  // absurd chunk size
                    finish_body(dir, false, ctx);
                    s.state = State::Resync;
                    return at;
                }
                s.chunk_size = s.chunk_size * 16 + static_cast<uint64_t>(v);
                s.chunk_digits = 1;
                ++at;
            } else if (s.chunk_digits == 0) {
                if (c != '\r' && c != '\n' && !is_space(static_cast<char>(c))) {
                    ++counters_.malformed;  // not a chunk size line
                    finish_body(dir, false, ctx);
                    s.state = State::Resync;
                    return at;
                }
                ++at;
            } else if (c == '\n') {
                ++at;
                chunk_begin();
            } else {
                s.chunk = Chunk::SizeTail;  // extensions, white space, CR
            }
            break;
        }
        case Chunk::SizeTail:
            if (skip_line()) {
                chunk_begin();
            }
            break;
        case Chunk::Data: {
            const size_t n = static_cast<size_t>(std::min<uint64_t>(s.remaining, data.size() - at));
            body_bytes(dir, data.subspan(at, n), ctx);
            at += n;
            s.remaining -= n;
            if (s.remaining == 0) {
                s.chunk = Chunk::DataTail;
            }
            break;
        }
        case Chunk::DataTail:
            if (skip_line()) {
                s.chunk = Chunk::Size;
                s.chunk_size = 0;
                s.chunk_digits = 0;
            }
            break;
        case Chunk::TrailerStart:
            if (c == '\r') {
                s.chunk = Chunk::TrailerCr;
                ++at;
            } else if (c == '\n') {
                ++at;
                finish_body(dir, true, ctx);
            } else {
                s.chunk = Chunk::TrailerLine;
            }
            break;
        case Chunk::TrailerCr:
            if (c == '\n') {
                ++at;
                finish_body(dir, true, ctx);
            } else {
                s.chunk = Chunk::TrailerLine;
            }
            break;
        case Chunk::TrailerLine:
            if (skip_line()) {
                s.chunk = Chunk::TrailerStart;
            }
            break;
        }
    }
    return at;
}

size_t HttpParser::consume_hold(std::span<const uint8_t> data, Context& ctx) noexcept {
    size_t at = 0;
    bool prefix = true;
    while (at < data.size() && prefix) {
        hold_[hold_len_++] = data[at++];
        const std::string_view held(reinterpret_cast<const char*>(hold_.data()), hold_len_);
        prefix = false;
        for (std::string_view method : kHoldMethods) {
            if (method == held) {
                // The client moved on to its next request: the refused body never came.
                request_put_ = false;
                multipart_.active = false;
                finish_body(AppDir::ToServer, true, ctx);
                std::memcpy(client_.line.data(), hold_.data(), hold_len_);
                client_.line_len = hold_len_;
                client_.line_cut = false;
                hold_len_ = 0;
                return at;
            }
            prefix = prefix || method.starts_with(held);
        }
    }
    if (prefix) {
        return at;  // still a possible method name: wait for more bytes
    }
    // It is the body after all: replay the held bytes as body bytes.
    std::array<uint8_t, sizeof(hold_)> held{};
    const size_t n = hold_len_;
    std::memcpy(held.data(), hold_.data(), n);
    hold_len_ = 0;
    client_.state = State::Body;
    run(AppDir::ToServer, std::span<const uint8_t>(held.data(), n), ctx);
    return at;
}

void HttpParser::body_bytes(AppDir dir, std::span<const uint8_t> data, Context& ctx) noexcept {
    Side& s = side(dir);
    s.body_bytes += data.size();
    if (s.skip_body || data.empty()) {
        return;
    }
    if (s.decoding) {
        ctx.dir = dir;
        const InflateStatus status = s.inflater.feed(data, &HttpParser::on_inflated, &ctx);
        if (status == InflateStatus::Capped || status == InflateStatus::Failed) {
            if (status == InflateStatus::Capped) {
                ++counters_.decode_capped;
            } else {
                ++counters_.decode_failed;
            }
            s.inflater.end();
            s.decoding = false;
            s.skip_body = true;
            object_close(dir, ctx);
        }
        return;
    }
    if (s.coding != Coding::None) {
        if (s.to_objects) {
            object_data(dir, data, ctx);  // no decoder: the encoded body as it is
        }
        return;
    }
    decoded_bytes(dir, data, ctx);
}

void HttpParser::on_inflated(void* context, std::span<const uint8_t> data) noexcept {
    auto* ctx = static_cast<Context*>(context);
    ctx->self->decoded_bytes(ctx->dir, data, *ctx);
}

void HttpParser::decoded_bytes(AppDir dir, std::span<const uint8_t> data, Context& ctx) noexcept {
    if (side(dir).to_objects) {
        object_data(dir, data, ctx);
    }
    if (dir == AppDir::ToServer && !multipart_.active && archive_head_.add(data)) {
        archive_head_.judged = true;
        check_archive(archive_head_.view(), data,
                request_pending_ || request_put_ ? request_.bytes : 0, ctx);
    }
    if (dir == AppDir::ToServer && multipart_.active) {
        multipart_scan(data, ctx);
    }
}

void HttpParser::finish_body(AppDir dir, bool complete, Context& ctx) noexcept {
    Side& s = side(dir);
    if (dir == AppDir::ToServer) {
        // A body shorter than a signature is judged on what it had.
        if (!multipart_.active && !archive_head_.judged && archive_head_.len > 0) {
            check_archive(archive_head_.view(), archive_head_.view(), s.body_bytes, ctx);
        }
        archive_head_.reset();
    }
    s.inflater.end();
    s.decoding = false;
    object_close(dir, ctx);
    if (dir == AppDir::ToServer) {
        if (multipart_.active) {
            multipart_finish(ctx);
        }
        if (request_pending_) {
            request_.bytes = s.body_bytes;
            request_.final = complete;
            ctx.events.on_app_event(request_);
            request_pending_ = false;
        }
        if (request_put_) {
            AppEvent file;
            file.kind = AppEventKind::FileTransfer;
            file.proto = AppProto::Http;
            file.upload = true;
            file.final = complete;
            file.bytes = s.body_bytes;
            std::string_view path = request_.name_view();
            path = path.substr(0, std::min(path.find('?'), path.find('#')));
            std::string_view last = path.substr(path.rfind('/') + 1);
            file.set(file.name, last.empty() ? path : last);
            file.truncated = file.truncated || request_.truncated;
            ctx.events.on_app_event(file);
            request_put_ = false;
        }
    }
    s.state = State::Start;
    s.framing = Framing::None;
}

// ---- objects ----

void HttpParser::object_data(AppDir dir, std::span<const uint8_t> data, Context& ctx) noexcept {
    if (ctx.objects == nullptr || data.empty()) {
        return;
    }
    const auto want = static_cast<uint8_t>(static_cast<uint8_t>(dir) + 1);
    if (open_object_ != want) {
        if (open_object_ != 0) {
            ctx.objects->object_end();
        }
        ctx.objects->object_begin(
                side(dir).plain_object ? ObjectKind::HttpPlainBody : ObjectKind::HttpBody, dir);
        open_object_ = want;
    }
    ctx.objects->object_data(data);
}

void HttpParser::object_close(AppDir dir, Context& ctx) noexcept {
    if (open_object_ != static_cast<uint8_t>(static_cast<uint8_t>(dir) + 1)) {
        return;
    }
    if (ctx.objects != nullptr) {
        ctx.objects->object_end();
    }
    open_object_ = 0;
}

void HttpParser::check_archive(std::span<const uint8_t> head, std::span<const uint8_t> sample,
        uint64_t size, Context& ctx) noexcept {
    std::string_view format;
    if (!archive_format(head, format)) {
        return;
    }
    AppEvent event;
    event.kind = AppEventKind::Archive;
    event.proto = AppProto::Http;
    event.upload = true;
    event.bytes = size;
    const std::span<const uint8_t> measured = sample.size() >= head.size() ? sample : head;
    event.entropy_milli = entropy_milli(measured.first(std::min<size_t>(measured.size(), 4096)));
    event.set(event.name, format);
    ctx.events.on_app_event(event);
}

// ---- multipart ----

void HttpParser::multipart_begin(std::string_view boundary) noexcept {
    Multipart& m = multipart_;
    m.active = false;
    if (boundary.empty() || boundary.size() > kMaxBoundary) {
        ++counters_.malformed;
        return;
    }
    m.delim[0] = '\r';
    m.delim[1] = '\n';
    m.delim[2] = '-';
    m.delim[3] = '-';
    std::memcpy(m.delim.data() + 4, boundary.data(), boundary.size());
    m.delim_len = static_cast<uint8_t>(boundary.size() + 4);
    // KMP failure function: fail[i] = longest proper border of delim[0..i].
    m.fail[0] = 0;
    uint8_t k = 0;
    for (uint8_t i = 1; i < m.delim_len; ++i) {
        while (k > 0 && m.delim[i] != m.delim[k]) {
            k = m.fail[k - 1];
        }
        if (m.delim[i] == m.delim[k]) {
            ++k;
        }
        m.fail[i] = k;
    }
    m.active = true;
    m.phase = Part::Preamble;
    m.match = 2;  // the body start counts as the line end before the first delimiter
    m.tail = 0;
    m.file = false;
    m.part_bytes = 0;
}

void HttpParser::part_head(std::span<const uint8_t> data, Context& ctx) noexcept {
    if (part_head_ && archive_head_.add(data)) {
        archive_head_.judged = true;
        part_head_ = false;
        check_archive(archive_head_.view(), data, 0, ctx);
    }
}

void HttpParser::multipart_scan(std::span<const uint8_t> data, Context& ctx) noexcept {
    Multipart& m = multipart_;
    if (part_head_ && m.phase == Part::Data) {
        part_head(data, ctx);  // the part's first bytes came in an earlier piece
    }
    size_t at = 0;
    while (at < data.size() && m.active) {
        switch (m.phase) {
        case Part::Preamble:
        case Part::Data: {
            const bool in_part = m.phase == Part::Data;
            if (m.match == 0) {
                // Nothing matched: jump to the next CR, where a delimiter could start.
                const void* cr = std::memchr(data.data() + at, '\r', data.size() - at);
                const size_t next = cr == nullptr
                        ? data.size()
                        : static_cast<size_t>(static_cast<const uint8_t*>(cr) - data.data());
                if (in_part) {
                    m.part_bytes += next - at;
                }
                at = next;
                if (at == data.size()) {
                    break;
                }
            }
            const auto c = static_cast<char>(data[at++]);
            if (in_part) {
                ++m.part_bytes;
            }
            while (m.match > 0 && m.delim[m.match] != c) {
                m.match = m.fail[m.match - 1];
            }
            if (m.delim[m.match] == c) {
                ++m.match;
            }
            if (m.match == m.delim_len) {
                if (in_part) {
                    m.part_bytes -= m.delim_len;
                    emit_part(true, ctx);
                }
                m.phase = Part::DelimTail;
                m.match = 0;
                m.tail = 0;
            }
            break;
        }
        case Part::DelimTail: {
            const uint8_t c = data[at++];
            if (c == '\n') {
                m.phase = Part::Headers;
                m.header_lines = 0;
                m.file = false;
                client_.line_len = 0;
                client_.line_cut = false;
            } else if (c == '-' && m.tail < 2) {
                if (++m.tail == 2) {
                    m.phase = Part::Epilogue;  // the closing delimiter
                }
            } else {
                m.tail = 3;  // transport padding: no close any more on this line
            }
            break;
        }
        case Part::Headers: {
            bool complete = false;
            at += take_line(client_, data.subspan(at), complete);
            if (!complete) {
                break;
            }
            std::string_view line(client_.line.data(), client_.line_len);
            if (!client_.line_cut && !line.empty() && line.back() == '\r') {
                line.remove_suffix(1);
            }
            const bool end = line.empty() && !client_.line_cut;
            if (!end) {
                multipart_part_header(line);
            }
            if (end || ++m.header_lines >= kMaxPartHeaders) {
                m.phase = Part::Data;
                m.part_bytes = 0;
                m.match = 0;
                if (m.file) {
                    // A file part's content starts here; its first bytes may come later.
                    archive_head_.reset();
                    part_head_ = true;
                    part_head(data.subspan(at), ctx);
                }
            }
            client_.line_len = 0;
            client_.line_cut = false;
            break;
        }
        case Part::Epilogue:
            at = data.size();
            break;
        }
    }
}

void HttpParser::multipart_part_header(std::string_view line) noexcept {
    const size_t colon = line.find(':');
    if (colon == std::string_view::npos
            || !iequals(trim(line.substr(0, colon)), "content-disposition")) {
        return;
    }
    std::string_view rest = line.substr(colon + 1);
    // Parameters: filename (plain), filename* (RFC 5987), filename*0, filename*1*... (RFC
    // 2231 continuations, in order); the extended forms win over the plain one.
    std::array<char, AppEvent::kNameCap> name{};
    size_t name_len = 0;
    int rank = 0;  // 0 none, 1 plain, 2 continuation, 3 extended
    while (!rest.empty()) {
        const size_t semi = rest.find(';');
        if (semi == std::string_view::npos) {
            break;
        }
        rest = rest.substr(semi + 1);
        while (!rest.empty() && is_space(rest.front())) {
            rest.remove_prefix(1);
        }
        const size_t eq = rest.find('=');
        if (eq == std::string_view::npos) {
            break;
        }
        const std::string_view key = trim(rest.substr(0, eq));
        std::array<char, AppEvent::kNameCap> value{};
        size_t used = 0;
        const size_t value_len = param_value(rest.substr(eq + 1), value, used);
        const std::string_view v(value.data(), value_len);
        rest = rest.substr(eq + 1 + used);
        if (!istarts_with(key, "filename")) {
            continue;
        }
        const std::string_view suffix = key.substr(8);
        if (suffix.empty()) {
            if (rank < 1) {
                const size_t n = std::min(v.size(), name.size());
                std::memcpy(name.data(), v.data(), n);
                name_len = n;
                rank = 1;
            }
        } else if (suffix == "*") {
            name_len = 0;
            append_percent_decoded(strip_charset(v), name, name_len);
            rank = 3;
        } else if (suffix.front() == '*' && rank <= 2) {
            const bool extended = suffix.back() == '*';
            const std::string_view index = suffix.substr(1, suffix.size() - (extended ? 2 : 1));
            if (index.empty() || index.find_first_not_of("0123456789") != std::string_view::npos) {
                continue;
            }
            if (rank < 2) {
                name_len = 0;
                rank = 2;
            }
            if (!extended) {
                const size_t n = std::min(v.size(), name.size() - name_len);
                std::memcpy(name.data() + name_len, v.data(), n);
                name_len += n;
            } else {
                append_percent_decoded(index == "0" ? strip_charset(v) : v, name, name_len);
            }
        }
    }
    Multipart& m = multipart_;
    m.file = name_len > 0;
    if (m.file) {
        m.file_event = AppEvent{};
        m.file_event.kind = AppEventKind::FileTransfer;
        m.file_event.proto = AppProto::Http;
        m.file_event.upload = true;
        m.file_event.set(m.file_event.name, std::string_view(name.data(), name_len));
        m.file_event.truncated =
                m.file_event.truncated || client_.line_cut || name_len == name.size();
    }
}

void HttpParser::emit_part(bool complete, Context& ctx) noexcept {
    Multipart& m = multipart_;
    if (part_head_ && archive_head_.len > 0) {
        check_archive(archive_head_.view(), archive_head_.view(), m.part_bytes, ctx);
    }
    part_head_ = false;
    if (m.file) {
        AppEvent event = m.file_event;
        event.bytes = m.part_bytes;
        event.final = complete;
        ctx.events.on_app_event(event);
    }
    m.file = false;
}

void HttpParser::multipart_finish(Context& ctx) noexcept {
    Multipart& m = multipart_;
    if (m.phase == Part::Data) {
        // The body ended without the part's delimiter.
        emit_part(false, ctx);
    } else if (m.phase == Part::Headers) {
        m.file = false;
    }
    m.active = false;
}

}  // namespace exfiltap::detectors
