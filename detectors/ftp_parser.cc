#include "detectors/ftp_parser.h"

#include <algorithm>
#include <cstring>

#include "detectors/text_util.h"

namespace exfiltap::detectors {

namespace {

// Reads a decimal number of at most `max_digits` digits at `at`; false when there is none or
// it exceeds `limit`.
bool read_number(std::string_view s, size_t& at, uint32_t limit, uint32_t& out,
        size_t max_digits = 5) noexcept {
    size_t digits = 0;
    uint32_t value = 0;
    while (at < s.size() && is_digit(s[at]) && digits < max_digits) {
        value = value * 10 + static_cast<uint32_t>(s[at] - '0');
        ++at;
        ++digits;
    }
    if (digits == 0 || value > limit || (at < s.size() && is_digit(s[at]))) {
        return false;
    }
    out = value;
    return true;
}

// "h1,h2,h3,h4,p1,p2" starting at `at` (blanks around commas allowed): address and port.
bool parse_host_port(
        std::string_view s, size_t at, std::array<uint8_t, 4>& addr, uint16_t& port) noexcept {
    std::array<uint32_t, 6> v{};
    for (size_t i = 0; i < v.size(); ++i) {
        if (i > 0) {
            while (at < s.size() && s[at] == ' ') {
                ++at;
            }
            if (at >= s.size() || s[at] != ',') {
                return false;
            }
            ++at;
            while (at < s.size() && s[at] == ' ') {
                ++at;
            }
        }
        if (!read_number(s, at, 255, v[i], 3)) {
            return false;
        }
    }
    for (size_t i = 0; i < 4; ++i) {
        addr[i] = static_cast<uint8_t>(v[i]);
    }
    port = static_cast<uint16_t>(v[4] << 8 | v[5]);
    return true;
}

bool parse_ipv4(std::string_view s, uint8_t* out) noexcept {
    size_t at = 0;
    for (size_t i = 0; i < 4; ++i) {
        if (i > 0) {
            if (at >= s.size() || s[at] != '.') {
                return false;
            }
            ++at;
        }
        uint32_t v = 0;
        if (!read_number(s, at, 255, v, 3)) {
            return false;
        }
        out[i] = static_cast<uint8_t>(v);
    }
    return at == s.size();
}

// One hexadecimal group of an IPv6 address (1 to 4 digits) into two bytes.
bool parse_hex_group(std::string_view group, uint8_t* out) noexcept {
    if (group.empty() || group.size() > 4) {
        return false;
    }
    uint32_t value = 0;
    for (char c : group) {
        const int h = hex_value(c);
        if (h < 0) {
            return false;
        }
        value = value << 4 | static_cast<uint32_t>(h);
    }
    out[0] = static_cast<uint8_t>(value >> 8);
    out[1] = static_cast<uint8_t>(value);
    return true;
}

// Colon-separated groups (a dotted IPv4 last one when `dotted_tail`) into `out`: the byte
// count, or -1 when they do not parse. An empty string is zero groups.
int parse_groups(std::string_view s, bool dotted_tail, std::array<uint8_t, 16>& out) noexcept {
    if (s.empty()) {
        return 0;
    }
    size_t n = 0;
    size_t at = 0;
    while (true) {
        const size_t end = s.find(':', at);
        const bool last = end == std::string_view::npos;
        const std::string_view group = s.substr(at, last ? std::string_view::npos : end - at);
        if (group.find('.') != std::string_view::npos) {
            const bool ok =
                    last && dotted_tail && n + 4 <= out.size() && parse_ipv4(group, out.data() + n);
            return ok ? static_cast<int>(n + 4) : -1;
        }
        if (n + 2 > out.size() || !parse_hex_group(group, out.data() + n)) {
            return -1;
        }
        n += 2;
        if (last) {
            return static_cast<int>(n);
        }
        at = end + 1;
    }
}

// Textual IPv6 (RFC 4291 section 2.2 forms: full, "::" compressed, dotted IPv4 tail).
bool parse_ipv6(std::string_view s, std::array<uint8_t, 16>& out) noexcept {
    const size_t gap = s.find("::");
    if (gap == std::string_view::npos) {
        return parse_groups(s, true, out) == 16;
    }
    const std::string_view tail_text = s.substr(gap + 2);
    if (tail_text.find("::") != std::string_view::npos) {
        return false;
    }
    std::array<uint8_t, 16> head{};
    std::array<uint8_t, 16> tail{};
    const int head_len = parse_groups(s.substr(0, gap), false, head);
    const int tail_len = parse_groups(tail_text, true, tail);
    if (head_len < 0 || tail_len < 0 || head_len + tail_len > 14) {
        return false;
    }
    out.fill(0);
    std::memcpy(out.data(), head.data(), static_cast<size_t>(head_len));
    std::memcpy(out.data() + 16 - tail_len, tail.data(), static_cast<size_t>(tail_len));
    return true;
}

// "(N bytes)" anywhere in a 150 reply's text.
uint64_t stated_size(std::string_view text) noexcept {
    for (size_t open = text.find('('); open != std::string_view::npos;
            open = text.find('(', open + 1)) {
        size_t at = open + 1;
        uint64_t value = 0;
        size_t digits = 0;
        while (at < text.size() && is_digit(text[at]) && digits < 19) {
            value = value * 10 + static_cast<uint64_t>(text[at] - '0');
            ++at;
            ++digits;
        }
        if (digits > 0 && text.substr(at, 6) == " bytes") {
            return value;
        }
    }
    return 0;
}

}  // namespace

void FtpParser::on_data(AppDir dir, std::span<const uint8_t> data, AppEventSink& events,
        ObjectSink* /*objects*/) noexcept {
    LineBuffer& lb = lines_[static_cast<size_t>(dir) & 1U];
    size_t at = 0;
    while (at < data.size() && !done_) {
        const uint8_t* start = data.data() + at;
        const size_t rest = data.size() - at;
        const auto* lf = static_cast<const uint8_t*>(std::memchr(start, '\n', rest));
        const size_t take = lf != nullptr ? static_cast<size_t>(lf - start) : rest;
        if (!lb.skipping) {
            const size_t room = kLineCap - lb.len;
            const size_t n = take < room ? take : room;
            std::memcpy(lb.bytes.data() + lb.len, start, n);
            lb.len = static_cast<uint16_t>(lb.len + n);
            if (n < take) {
                lb.cut = true;
            }
        }
        if (lf == nullptr) {
            return;
        }
        at += take + 1;
        if (lb.skipping) {
            lb.skipping = false;
            lb.len = 0;
            lb.cut = false;
            continue;
        }
        std::string_view line(lb.bytes.data(), lb.len);
        if (!line.empty() && line.back() == '\r') {
            line.remove_suffix(1);
        }
        if (lb.cut) {
            ++lines_cut_;
        }
        const bool cut = lb.cut;
        lb.len = 0;
        lb.cut = false;
        on_line(dir, line, cut, events);
    }
}

void FtpParser::on_gap(AppDir dir) noexcept {
    LineBuffer& lb = lines_[static_cast<size_t>(dir) & 1U];
    lb.len = 0;
    lb.cut = false;
    lb.skipping = true;
    if (dir == AppDir::ToClient) {
        multiline_code_ = 0;
    }
}

void FtpParser::on_end(AppEventSink& events, ObjectSink* /*objects*/) noexcept {
    if (done_) {
        return;
    }
    if (transfer_ == Transfer::Accepted) {
        emit_transfer(true, events);
    }
    transfer_ = Transfer::None;
    if (login_pending_ && pass_sent_) {
        emit_login(LoginOutcome::Attempt, events);
    }
    login_pending_ = false;
    done_ = true;
}

void FtpParser::on_line(
        AppDir dir, std::string_view line, bool cut, AppEventSink& events) noexcept {
    if (dir == AppDir::ToServer) {
        on_command(line, cut, events);
        return;
    }
    const bool coded = line.size() >= 3 && line[0] >= '1' && line[0] <= '5' && is_digit(line[1])
            && is_digit(line[2]);
    const unsigned code = coded
            ? static_cast<unsigned>((line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0'))
            : 0U;
    const bool final_line = coded && (line.size() == 3 || line[3] == ' ');
    if (multiline_code_ != 0) {
        // Inside "xyz-": only "xyz " ends it; other lines are free text.
        if (final_line && code == multiline_code_) {
            multiline_code_ = 0;
            on_reply(code, line.size() > 4 ? line.substr(4) : std::string_view{}, events);
        }
        return;
    }
    if (coded && line.size() > 3 && line[3] == '-') {
        multiline_code_ = static_cast<uint16_t>(code);
        return;
    }
    if (!final_line) {
        ++malformed_;
        return;
    }
    on_reply(code, line.size() > 4 ? line.substr(4) : std::string_view{}, events);
}

void FtpParser::on_command(std::string_view line, bool cut, AppEventSink& events) noexcept {
    const size_t space = line.find(' ');
    const std::string_view arg =
            space == std::string_view::npos ? std::string_view{} : line.substr(space + 1);
    const Verb verb = classify(line.substr(0, space));
    switch (verb) {
    case Verb::User: {
        // A user name is one word: what follows a space may be the password ("USER name
        // password"), so only the first word is kept and the rest is never looked at.
        const std::string_view words = trim(arg);
        const size_t word_end = words.find(' ');
        const bool one_word = word_end == std::string_view::npos;
        const std::string_view name = one_word ? words : words.substr(0, word_end);
        const size_t n = name.size() < user_.size() - 1 ? name.size() : user_.size() - 1;
        // copy_n: an empty view's pointer may be null, which memcpy may not be given.
        std::copy_n(name.data(), n, user_.data());
        user_len_ = static_cast<uint8_t>(n);
        user_cut_ = n < name.size() || (cut && one_word);
        login_pending_ = true;
        pass_sent_ = false;
        return;
    }
    case Verb::Pass:
        // The argument is a password: it is never looked at.
        login_pending_ = true;
        pass_sent_ = true;
        return;
    case Verb::Store:
    case Verb::Retrieve: {
        const size_t n = arg.size() < file_.size() - 1 ? arg.size() : file_.size() - 1;
        std::copy_n(arg.data(), n, file_.data());
        file_len_ = static_cast<uint16_t>(n);
        file_cut_ = n < arg.size() || cut;
        file_bytes_ = 0;
        transfer_ = Transfer::Requested;
        transfer_upload_ = verb == Verb::Store;
        return;
    }
    case Verb::List:
        // Their 150/226 replies must not complete an earlier, unanswered transfer command.
        if (transfer_ == Transfer::Requested) {
            transfer_ = Transfer::None;
        }
        return;
    case Verb::Port:
        on_port(arg, events);
        return;
    case Verb::Eprt:
        on_eprt(arg, events);
        return;
    case Verb::Auth:
        auth_pending_ = true;
        return;
    case Verb::Other:
        return;
    }
}

FtpParser::Verb FtpParser::classify(std::string_view verb) noexcept {
    struct Entry {
        std::string_view text;
        Verb verb;
    };
    static constexpr std::array<Entry, 12> kVerbs{{
            {"USER", Verb::User},
            {"PASS", Verb::Pass},
            {"STOR", Verb::Store},
            {"STOU", Verb::Store},
            {"APPE", Verb::Store},
            {"RETR", Verb::Retrieve},
            {"LIST", Verb::List},
            {"NLST", Verb::List},
            {"MLSD", Verb::List},
            {"PORT", Verb::Port},
            {"EPRT", Verb::Eprt},
            {"AUTH", Verb::Auth},
    }};
    for (const Entry& entry : kVerbs) {
        if (iequals(verb, entry.text)) {
            return entry.verb;
        }
    }
    return Verb::Other;
}

void FtpParser::on_port(std::string_view arg, AppEventSink& events) noexcept {
    std::array<uint8_t, 4> addr{};
    uint16_t port = 0;
    if (!parse_host_port(arg, 0, addr, port)) {
        ++malformed_;
        return;
    }
    emit_channel(addr, port, events);
}

void FtpParser::on_eprt(std::string_view arg, AppEventSink& events) noexcept {
    // <d>proto<d>address<d>port<d>, d any printable ASCII but digits (RFC 2428 section 2).
    if (arg.size() < 7 || arg[0] < 0x21 || arg[0] > 0x7e || is_digit(arg[0])) {
        ++malformed_;
        return;
    }
    const char d = arg[0];
    const size_t p1 = arg.find(d, 1);
    const size_t p2 = p1 == std::string_view::npos ? p1 : arg.find(d, p1 + 1);
    const size_t p3 = p2 == std::string_view::npos ? p2 : arg.find(d, p2 + 1);
    if (p3 == std::string_view::npos) {
        ++malformed_;
        return;
    }
    const std::string_view family = arg.substr(1, p1 - 1);
    const std::string_view host = arg.substr(p1 + 1, p2 - p1 - 1);
    const std::string_view port_text = arg.substr(p2 + 1, p3 - p2 - 1);
    size_t at = 0;
    uint32_t port = 0;
    std::array<uint8_t, 16> addr{};
    size_t addr_len = 0;
    if (family == "1" && parse_ipv4(host, addr.data())) {
        addr_len = 4;
    } else if (family == "2" && parse_ipv6(host, addr)) {
        addr_len = 16;
    }
    if (addr_len == 0 || !read_number(port_text, at, 65535, port) || at != port_text.size()) {
        ++malformed_;
        return;
    }
    emit_channel(
            std::span<const uint8_t>(addr.data(), addr_len), static_cast<uint16_t>(port), events);
}

void FtpParser::on_passive(std::string_view text, AppEventSink& events) noexcept {
    // RFC 1123 4.1.2.6: the numbers may come without parentheses, so scan for them.
    for (size_t at = 0; at < text.size(); ++at) {
        if (!is_digit(text[at]) || (at > 0 && is_digit(text[at - 1]))) {
            continue;
        }
        std::array<uint8_t, 4> addr{};
        uint16_t port = 0;
        if (parse_host_port(text, at, addr, port)) {
            emit_channel(addr, port, events);
            return;
        }
    }
    ++malformed_;
}

void FtpParser::on_extended_passive(std::string_view text, AppEventSink& events) noexcept {
    // "(<d><d><d>port<d>)": the host is the control connection's server.
    const size_t open = text.find('(');
    if (open == std::string_view::npos || open + 5 > text.size()) {
        ++malformed_;
        return;
    }
    const char d = text[open + 1];
    size_t at = open + 4;
    uint32_t port = 0;
    if (text[open + 2] != d || text[open + 3] != d || !read_number(text, at, 65535, port)
            || at >= text.size() || text[at] != d) {
        ++malformed_;
        return;
    }
    emit_channel({}, static_cast<uint16_t>(port), events);
}

void FtpParser::on_reply(unsigned code, std::string_view text, AppEventSink& events) noexcept {
    switch (code) {
    case 230:
    case 530:
        if (login_pending_) {
            emit_login(code == 230 ? LoginOutcome::Success : LoginOutcome::Failure, events);
            login_pending_ = false;
        }
        break;
    case 227:
        on_passive(text, events);
        return;
    case 229:
        on_extended_passive(text, events);
        return;
    case 234:
        done_ = auth_pending_;
        return;
    case 125:
    case 150:
        if (transfer_ == Transfer::Requested) {
            transfer_ = Transfer::Accepted;
            file_bytes_ = stated_size(text);
            emit_transfer(false, events);
        }
        return;
    case 226:
    case 250:
        if (transfer_ != Transfer::None) {
            emit_transfer(true, events);
            transfer_ = Transfer::None;
        }
        return;
    default:
        break;
    }
    if (code >= 400) {
        transfer_ = Transfer::None;
        auth_pending_ = false;
    }
}

void FtpParser::emit_login(LoginOutcome outcome, AppEventSink& events) noexcept {
    AppEvent event;
    event.kind = AppEventKind::Login;
    event.proto = AppProto::Ftp;
    event.outcome = outcome;
    event.set(event.user, std::string_view(user_.data(), user_len_));
    event.truncated = event.truncated || user_cut_;
    events.on_app_event(event);
}

void FtpParser::emit_transfer(bool final, AppEventSink& events) noexcept {
    AppEvent event;
    event.kind = AppEventKind::FileTransfer;
    event.proto = AppProto::Ftp;
    event.upload = transfer_upload_;
    event.final = final;
    event.bytes = file_bytes_;
    event.set(event.name, std::string_view(file_.data(), file_len_));
    event.truncated = event.truncated || file_cut_;
    events.on_app_event(event);
}

void FtpParser::emit_channel(
        std::span<const uint8_t> addr, uint16_t port, AppEventSink& events) noexcept {
    AppEvent event;
    event.kind = AppEventKind::FtpDataChannel;
    event.proto = AppProto::Ftp;
    // A transfer command sent ahead of the channel (pipelining) says which way data goes;
    // normally the command follows the announcement and this stays false.
    event.upload = transfer_ == Transfer::Requested && transfer_upload_;
    const size_t n = addr.size() <= event.data_addr.size() ? addr.size() : 0;
    if (n > 0) {
        std::memcpy(event.data_addr.data(), addr.data(), n);
    }
    event.data_addr_len = static_cast<uint8_t>(n);
    event.data_port = port;
    events.on_app_event(event);
}

}  // namespace exfiltap::detectors
