#include "detectors/app_identify.h"

#include <algorithm>
#include <array>
#include <string_view>

namespace exfiltap::detectors {

namespace {

// How far a direction's bytes are from a signature.
enum class Match : uint8_t {
    No,       // they cannot become this signature
    Partial,  // they are its start: more bytes decide
    Yes,
};

using Bytes = std::span<const uint8_t>;

std::string_view as_text(Bytes b) noexcept {
    return {reinterpret_cast<const char*>(b.data()), b.size()};
}

bool full(Bytes b) noexcept {
    return b.size() >= kIdentifyPeekBytes;
}

// `b` against the fixed prefix `sig`.
Match prefix(Bytes b, std::string_view sig) noexcept {
    const size_t n = std::min(b.size(), sig.size());
    if (as_text(b).substr(0, n) != sig.substr(0, n)) {
        return Match::No;
    }
    return n == sig.size() ? Match::Yes : Match::Partial;
}

char upper(char c) noexcept {
    return (c >= 'a' && c <= 'z') ? static_cast<char>(c - 'a' + 'A') : c;
}

// Case-insensitive search of `word` (upper case) in `text`.
bool contains_word(std::string_view text, std::string_view word) noexcept {
    if (text.size() < word.size()) {
        return false;
    }
    for (size_t i = 0; i + word.size() <= text.size(); ++i) {
        bool same = true;
        for (size_t j = 0; j < word.size() && same; ++j) {
            same = upper(text[i + j]) == word[j];
        }
        if (same) {
            return true;
        }
    }
    return false;
}

constexpr std::array<std::string_view, 22> kHttpMethods = {
        "GET",
        "POST",
        "PUT",
        "HEAD",
        "DELETE",
        "OPTIONS",
        "PATCH",
        "CONNECT",
        "TRACE",
        "PROPFIND",
        "PROPPATCH",
        "MKCOL",
        "COPY",
        "MOVE",
        "LOCK",
        "UNLOCK",
        "REPORT",
        "SEARCH",
        "MKCALENDAR",
        "CHECKOUT",
        "MERGE",
        "NOTIFY",
};

bool target_char(uint8_t c) noexcept {
    return c > 0x20 && c != 0x7f;
}

// "METHOD SP target SP HTTP/1.". A request target longer than the bytes we may look at
// decides on method and target alone once kIdentifyPeekBytes are there.
Match http_request(Bytes b) noexcept {
    size_t sp = 0;
    while (sp < b.size() && b[sp] != ' ') {
        ++sp;
    }
    const std::string_view token = as_text(b.subspan(0, sp));
    bool partial_method = false;
    bool method = false;
    for (const std::string_view m : kHttpMethods) {
        if (sp == b.size() && m.substr(0, std::min(m.size(), token.size())) == token
                && token.size() <= m.size()) {
            partial_method = true;
        }
        if (sp < b.size() && token == m) {
            method = true;
        }
    }
    if (sp == b.size()) {
        return partial_method ? Match::Partial : Match::No;
    }
    if (!method) {
        return Match::No;
    }
    size_t end = sp + 1;
    while (end < b.size() && target_char(b[end])) {
        ++end;
    }
    if (end == sp + 1) {
        return end == b.size() ? Match::Partial : Match::No;  // empty target
    }
    if (end == b.size()) {
        return full(b) ? Match::Yes : Match::Partial;
    }
    const Match version = prefix(b.subspan(end), " HTTP/1.");
    return version == Match::Partial && full(b) ? Match::Yes : version;
}

// A TLS record of type 22, version 3.0..3.4, a length, and the first handshake message of
// type `handshake`.
Match tls_record(Bytes b, uint8_t handshake) noexcept {
    const std::array<bool, 6> ok = {
            b.empty() || b[0] == 0x16,
            b.size() < 2 || b[1] == 0x03,
            b.size() < 3 || b[2] <= 0x04,
            true,
            true,
            b.size() < 6 || b[5] == handshake,
    };
    if (std::find(ok.begin(), ok.end(), false) != ok.end()) {
        return Match::No;
    }
    if (b.size() >= 5 && (b[3] << 8 | b[4]) == 0) {
        return Match::No;
    }
    return b.size() >= 6 ? Match::Yes : Match::Partial;
}

// NetBIOS session message (type 0, 17-bit length) carrying SMB1 or SMB2/3.
Match smb(Bytes b) noexcept {
    if (b.empty()) {
        return Match::Partial;
    }
    if (b[0] != 0x00 || (b.size() >= 2 && (b[1] & 0xfe) != 0)) {
        return Match::No;
    }
    if (b.size() >= 4 && (b[1] << 16 | b[2] << 8 | b[3]) < 4) {
        return Match::No;
    }
    if (b.size() < 5) {
        return Match::Partial;
    }
    if (b[4] != 0xfe && b[4] != 0xff) {
        return Match::No;
    }
    return prefix(b.subspan(5), "SMB");
}

// TPKT (03 00, length) + X.224 Connection Request (length indicator, code E0).
Match rdp(Bytes b) noexcept {
    const std::array<bool, 3> ok = {
            b.empty() || b[0] == 0x03,
            b.size() < 2 || b[1] == 0x00,
            b.size() < 6 || (b[5] & 0xf0) == 0xe0,
    };
    if (std::find(ok.begin(), ok.end(), false) != ok.end()) {
        return Match::No;
    }
    if (b.size() >= 4 && (b[2] << 8 | b[3]) < 11) {
        return Match::No;
    }
    return b.size() >= 6 ? Match::Yes : Match::Partial;
}

struct Result {
    AppProto proto = AppProto::Unknown;
    Match match = Match::No;
};

// Client signatures that decide on their own. A Partial result names the first candidate.
Result client_signature(Bytes b) noexcept {
    const std::array<Result, 5> candidates = {{
            {AppProto::Http, http_request(b)},
            {AppProto::Tls, tls_record(b, 1)},
            {AppProto::Ssh, prefix(b, "SSH-")},
            {AppProto::Smb, smb(b)},
            {AppProto::Rdp, rdp(b)},
    }};
    Result partial;
    for (const Result& r : candidates) {
        if (r.match == Match::Yes) {
            return r;
        }
        if (r.match == Match::Partial && partial.match == Match::No) {
            partial = r;
        }
    }
    return partial;
}

// The server sends first in these; "220" is resolved by the caller.
Result server_signature(Bytes b) noexcept {
    const std::array<Result, 7> candidates = {{
            {AppProto::Ssh, prefix(b, "SSH-")}, {AppProto::Tls, tls_record(b, 2)},
            {AppProto::Smb, smb(b)}, {AppProto::Pop3, prefix(b, "+OK")},
            {AppProto::Imap, prefix(b, "* OK")}, {AppProto::Imap, prefix(b, "* PREAUTH")},
            {AppProto::Smtp, prefix(b, "220")},  // or Ftp
    }};
    Result partial;
    for (const Result& r : candidates) {
        if (r.match == Match::Yes) {
            return r;
        }
        if (r.match == Match::Partial && partial.match == Match::No) {
            partial = r;
        }
    }
    return partial;
}

bool smtp_port(uint16_t port) noexcept {
    return port == 25 || port == 465 || port == 587 || port == 2525;
}

// A "220" greeting: SMTP or FTP, by the client's first command, else the greeting's text,
// else the port. `decided` is false while more bytes of either side could still tell.
AppProto smtp_or_ftp(uint16_t port, Bytes client, Bytes greeting, bool& decided) noexcept {
    decided = true;
    const std::string_view cmd = as_text(client.subspan(0, std::min<size_t>(client.size(), 4)));
    if (contains_word(cmd, "EHLO") || contains_word(cmd, "HELO")) {
        return AppProto::Smtp;
    }
    if (contains_word(cmd, "USER") || contains_word(cmd, "AUTH")) {
        // SMTP clients say EHLO before AUTH; FTP clients start with USER or AUTH TLS.
        return AppProto::Ftp;
    }
    const std::string_view text = as_text(greeting);
    const bool says_smtp = contains_word(text, "SMTP");
    const bool says_ftp = contains_word(text, "FTP");
    if (says_smtp != says_ftp) {
        return says_smtp ? AppProto::Smtp : AppProto::Ftp;
    }
    const bool greeting_done = full(greeting) || text.find('\n') != std::string_view::npos;
    const AppProto by_port = smtp_port(port) ? AppProto::Smtp
            : port == 21                     ? AppProto::Ftp
                                             : AppProto::Unknown;
    // The rest of the greeting may still name the protocol; without a port hint the
    // client's first command (4 bytes) may.
    decided = greeting_done && (by_port != AppProto::Unknown || client.size() >= 4);
    return by_port;
}

}  // namespace

AppProto proto_by_port(uint16_t server_port) noexcept {
    switch (server_port) {
    case 80:
    case 8000:
    case 8080:
        return AppProto::Http;
    case 443:
    case 8443:
        return AppProto::Tls;
    case 25:
    case 465:
    case 587:
    case 2525:
        return AppProto::Smtp;
    case 21:
        return AppProto::Ftp;
    case 110:
        return AppProto::Pop3;
    case 143:
        return AppProto::Imap;
    case 22:
        return AppProto::Ssh;
    case 3389:
        return AppProto::Rdp;
    case 139:
    case 445:
        return AppProto::Smb;
    case 53:
        return AppProto::Dns;
    default:
        return AppProto::Unknown;
    }
}

AppProto identify_tcp(uint16_t server_port, std::span<const uint8_t> to_server,
        std::span<const uint8_t> to_client, bool& need_more) noexcept {
    // Only the first kIdentifyPeekBytes of each direction count, so that the answer does not
    // depend on how much the caller happens to pass.
    const Bytes client = to_server.subspan(0, std::min(to_server.size(), kIdentifyPeekBytes));
    const Bytes server = to_client.subspan(0, std::min(to_client.size(), kIdentifyPeekBytes));
    need_more = false;

    // Client signatures decide on their own.
    const Result cs = client_signature(client);
    if (cs.match == Match::Yes) {
        return cs.proto;
    }
    const bool client_open = client.empty() || cs.match == Match::Partial;

    // Server signatures. Only an SSH banner waits for the client: an HTTP request to an SSH
    // server is HTTP. The other greetings come from protocols whose client waits for them.
    const Result ss = server_signature(server);
    if (ss.match == Match::Yes) {
        if (ss.proto == AppProto::Ssh) {
            need_more = client_open;
            return AppProto::Ssh;
        }
        if (ss.proto == AppProto::Smtp) {
            bool decided = true;
            const AppProto proto = smtp_or_ftp(server_port, client, server, decided);
            need_more = !decided;
            return proto;
        }
        return ss.proto;
    }

    // No signature (yet): the port decides, unless a side may still show one.
    const bool server_open = server.empty() || ss.match == Match::Partial;
    need_more = (client_open && !client.empty()) || (server_open && !server.empty())
            || (client.empty() && server.empty());
    return proto_by_port(server_port);
}

}  // namespace exfiltap::detectors
