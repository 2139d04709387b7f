// Logins of the mail access protocols: POP3 (RFC 1939, 2449, 5034) and IMAP4 (RFC 9051,
// 3501), plus the SASL helpers that SMTP AUTH shares with them. They report Login events
// (proto Pop3 or Imap, the user name, the outcome from the server's reply); they never keep
// or report a password.
//
// Threads: the worker. Nothing here allocates, locks, logs or throws; each parser keeps
// fixed-size line buffers inside the object (one per flow, in the worker's parser pool).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

#include "detectors/app_event.h"

namespace exfiltap::detectors {

/// SASL mechanisms whose client responses name the user.
enum class SaslMech : uint8_t {
    Other = 0,    // GSSAPI, NTLM, XOAUTH2, ...: the user is not read
    Plain = 1,    // RFC 4616: authzid NUL authcid NUL password, one response
    Login = 2,    // user name, then password: two responses
    CramMd5 = 3,  // "user digest", one response
};

/// The mechanism named `name` (any case).
SaslMech sasl_mech(std::string_view name) noexcept;

/// Client responses the mechanism takes before the server's verdict (Other: 1).
uint8_t sasl_responses(SaslMech mech) noexcept;

/// What a client SASL response answers, as far as the parser saw the exchange.
enum class SaslAnswer : uint8_t {
    Unknown = 0,     // a challenge that is not the user name prompt, or none was seen
    Initial = 1,     // the initial response sent with the command (SASL-IR, AUTH LOGIN <b64>)
    UserPrompt = 2,  // a LOGIN challenge asking for the user name ("Username:")
};

/// What the server's challenge `challenge` (base64 as sent after "334 " or "+ ", white space
/// around it allowed) asks for: UserPrompt when it decodes to "Username", "User Name" (any
/// case, a trailing ':' allowed), Unknown for anything else ("Password:" included).
SaslAnswer sasl_challenge(std::string_view challenge) noexcept;

/// The user name in client response number `index` (0 first) of `mech`, given as sent
/// (base64, white space around it allowed); `answer` says what the response answers. Writes
/// it to `out` (cut to out.size()) and returns its length; 0 when that response carries no
/// user name, is "*" (cancel) or does not decode. Nothing that may be a password is ever
/// reported:
/// - PLAIN (first response) must be authzid NUL authcid NUL password: the authcid (or the
///   authzid when the authcid is empty). With fewer than two NULs: 0. Decoding stops at the
///   second NUL, so the password is never decoded.
/// - LOGIN: only the first response, and only when it is the initial response or answers the
///   user name prompt; an answer to "Password:" or to an unknown prompt gives 0.
/// - CRAM-MD5: the name before the digest.
/// Scratch bytes, and on failure everything written to `out`, are wiped.
size_t sasl_user(SaslMech mech, uint8_t index, SaslAnswer answer, std::string_view response,
        std::span<char> out) noexcept;

/// POP3 client logins: USER/PASS, APOP, AUTH (PLAIN, LOGIN, CRAM-MD5 user names; SASL-IR
/// initial responses too). One Login event per attempt when the server answers (+OK
/// Success, -ERR Failure; USER answered -ERR is a Failure too); an attempt still
/// unanswered when the flow ends is reported as Attempt. Replies are matched to commands in
/// order (RFC 2449 pipelining), multi-line replies (CAPA, LIST, UIDL, RETR, TOP, AUTH) are
/// skipped up to their "." line. done() after STLS is accepted (the rest is TLS) or after a
/// successful login (nothing more to learn).
class Pop3Parser {
public:
    static constexpr size_t kLineCap = 512;
    static constexpr size_t kMaxPending = 16;

    void on_data(AppDir dir, std::span<const uint8_t> data, AppEventSink& events,
            ObjectSink* objects) noexcept;
    void on_gap(AppDir dir) noexcept;
    void on_end(AppEventSink& events, ObjectSink* objects) noexcept;
    bool done() const noexcept { return tls_ || logged_in_; }

    /// Client lines longer than kLineCap (cut; the rest of the line is skipped).
    uint32_t lines_cut() const noexcept { return lines_cut_; }
    /// Commands dropped because kMaxPending replies were awaited already.
    uint32_t pending_overflow() const noexcept { return pending_overflow_; }

private:
    enum class Cmd : uint8_t {
        Greeting,
        User,
        Pass,
        Apop,
        Auth,
        Stls,
        MultiLine,  // +OK is followed by lines up to "."
        Other,
    };

    void client_line(std::string_view line) noexcept;
    void server_line(AppEventSink& events) noexcept;
    void push(Cmd cmd) noexcept;
    void login(AppEventSink& events, LoginOutcome outcome) noexcept;

    std::array<char, kLineCap> line_{};
    std::array<char, AppEvent::kUserCap> user_{};
    std::array<Cmd, kMaxPending> pending_{};  // ring; [0] starts as the greeting
    std::array<char, 40> reply_head_{};       // the server line's start (a SASL challenge fits)
    uint32_t lines_cut_ = 0;
    uint32_t pending_overflow_ = 0;
    uint16_t line_len_ = 0;
    uint16_t reply_len_ = 0;  // bytes of the current server line (saturating)
    uint8_t user_len_ = 0;
    uint8_t pending_head_ = 0;
    uint8_t pending_count_ = 1;
    uint8_t auth_responses_ = 0;  // client responses read in the AUTH exchange
    SaslMech auth_mech_ = SaslMech::Other;
    SaslAnswer auth_answer_ = SaslAnswer::Unknown;  // what the next SASL response answers
    bool auth_active_ = false;                      // client lines are SASL responses
    bool login_pending_ = false;                    // an attempt awaits its verdict (for on_end)
    bool line_skip_ = false;                        // the client line was cut: skip to its end
    bool multiline_ = false;                        // inside a multi-line reply
    bool reply_skip_ = false;                       // server bytes lost: skip to the next line
    bool tls_ = false;
    bool logged_in_ = false;
};

/// IMAP client logins: `tag LOGIN user password` (atoms, quoted strings and literals
/// {n} / {n+}) and `tag AUTHENTICATE mech [initial-response]` (PLAIN, LOGIN, CRAM-MD5 user
/// names). A LOGIN with one argument only reports no user (that argument may be the
/// password). The tagged OK gives Success, NO or BAD Failure; an attempt still unanswered when
/// the flow ends is reported as Attempt. Literals of both directions are skipped by count
/// (a LOGIN user name in a literal is read from it). done() after STARTTLS is accepted or
/// after a successful login.
class ImapParser {
public:
    static constexpr size_t kLineCap = 512;
    static constexpr size_t kTagCap = 32;
    static constexpr size_t kMaxPending = 4;

    void on_data(AppDir dir, std::span<const uint8_t> data, AppEventSink& events,
            ObjectSink* objects) noexcept;
    void on_gap(AppDir dir) noexcept;
    void on_end(AppEventSink& events, ObjectSink* objects) noexcept;
    bool done() const noexcept { return tls_ || logged_in_; }

    /// Client lines longer than kLineCap (cut; a literal at their end is still seen).
    uint32_t lines_cut() const noexcept { return lines_cut_; }
    /// Tracked commands dropped unanswered because kMaxPending were awaited already.
    uint32_t pending_overflow() const noexcept { return pending_overflow_; }

private:
    enum class Kind : uint8_t {
        Login,
        Authenticate,
        StartTls,
    };
    struct Pending {
        std::array<char, kTagCap> tag{};
        uint8_t tag_len = 0;
        Kind kind = Kind::Login;
        std::array<char, AppEvent::kUserCap> user{};
        uint8_t user_len = 0;
    };
    /// Where the bytes of a client literal go.
    enum class LiteralUse : uint8_t {
        Skip,
        User,
    };

    void client_fragment(bool literal_follows) noexcept;
    void server_line(AppEventSink& events) noexcept;
    void emit(const Pending& p, LoginOutcome outcome, AppEventSink& events) noexcept;
    void add_pending() noexcept;
    static void clear_user(Pending& p) noexcept;

    std::array<char, kLineCap> line_{};
    std::array<char, 24> tail_{};  // the last bytes of a line cut at kLineCap ("{n}")
    std::array<char, kLineCap / 4> reply_{};
    std::array<char, 24> reply_tail_{};
    std::array<Pending, kMaxPending> pending_{};
    Pending current_{};                       // the command being read (LOGIN / AUTHENTICATE)
    std::array<uint64_t, 2> literal_left_{};  // literal bytes still to come, per direction
    uint32_t lines_cut_ = 0;
    uint32_t pending_overflow_ = 0;
    uint16_t line_len_ = 0;
    uint16_t reply_len_ = 0;
    uint8_t tail_len_ = 0;
    uint8_t reply_tail_len_ = 0;
    uint8_t pending_count_ = 0;
    uint8_t auth_responses_ = 0;
    SaslMech auth_mech_ = SaslMech::Other;
    SaslAnswer auth_answer_ = SaslAnswer::Unknown;  // what the next SASL response answers
    LiteralUse literal_use_ = LiteralUse::Skip;
    bool in_command_ = false;          // a fragment of the command was read; a literal follows
    bool login_user_literal_ = false;  // LOGIN's user came in a literal: a password must follow
    bool tracked_ = false;             // current_ is a LOGIN, AUTHENTICATE or STARTTLS
    bool auth_active_ = false;         // client lines are SASL responses
    bool line_cut_ = false;
    bool reply_cut_ = false;
    bool skip_client_line_ = false;
    bool skip_server_line_ = false;
    bool tls_ = false;
    bool logged_in_ = false;
};

}  // namespace exfiltap::detectors
