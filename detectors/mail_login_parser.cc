#include "detectors/mail_login_parser.h"

#include <algorithm>
#include <cstring>

#include "detectors/char_class.h"
#include "detectors/mime.h"
#include "detectors/text_util.h"

namespace exfiltap::detectors {
namespace {

// Overwrites memory the compiler must not consider dead (scratch that saw a password).
void wipe(void* p, size_t n) noexcept {
    auto* bytes = static_cast<volatile unsigned char*>(p);
    for (size_t i = 0; i < n; ++i) {
        bytes[i] = 0;
    }
}

size_t copy_text(std::string_view text, std::span<char> out) noexcept {
    const size_t n = std::min(text.size(), out.size());
    std::memcpy(out.data(), text.data(), n);
    return n;
}

// The literal announced at the end of an IMAP line ("{123}" or "{123+}"): its size.
bool literal_at_end(std::string_view line, uint64_t& size) noexcept {
    if (line.empty() || line.back() != '}') {
        return false;
    }
    line.remove_suffix(1);
    if (!line.empty() && line.back() == '+') {
        line.remove_suffix(1);
    }
    size_t digits = 0;
    while (digits < line.size() && is_digit(line[line.size() - 1 - digits])) {
        ++digits;
    }
    if (digits == 0 || digits > 18 || digits == line.size()
            || line[line.size() - 1 - digits] != '{') {
        return false;
    }
    uint64_t n = 0;
    for (size_t i = line.size() - digits; i < line.size(); ++i) {
        n = n * 10 + static_cast<uint64_t>(line[i] - '0');
    }
    size = n;
    return true;
}

// Appends `data` to a line held as a head buffer plus a window of its last bytes.
template <size_t N, size_t T>
void append_line(std::array<char, N>& head, uint16_t& len, std::array<char, T>& tail,
        uint8_t& tail_len, bool& cut, std::span<const uint8_t> data) noexcept {
    for (const uint8_t b : data) {
        if (b == '\r') {
            continue;
        }
        if (len < N) {
            head[len++] = static_cast<char>(b);
        } else {
            cut = true;
        }
        if (tail_len < T) {
            tail[tail_len++] = static_cast<char>(b);
        } else {
            std::memmove(tail.data(), tail.data() + 1, T - 1);
            tail[T - 1] = static_cast<char>(b);
        }
    }
}

}  // namespace

void ImapParser::clear_user(Pending& p) noexcept {
    wipe(p.user.data(), p.user.size());
    p.user_len = 0;
}

static_assert(sizeof(Pop3Parser) <= 4096, "Pop3Parser must fit its pool slot");
static_assert(sizeof(ImapParser) <= 4096, "ImapParser must fit its pool slot");

// --- SASL ------------------------------------------------------------------------------------

SaslMech sasl_mech(std::string_view name) noexcept {
    if (iequals(name, "PLAIN")) {
        return SaslMech::Plain;
    }
    if (iequals(name, "LOGIN")) {
        return SaslMech::Login;
    }
    if (iequals(name, "CRAM-MD5")) {
        return SaslMech::CramMd5;
    }
    return SaslMech::Other;
}

uint8_t sasl_responses(SaslMech mech) noexcept {
    return mech == SaslMech::Login ? 2 : 1;
}

SaslAnswer sasl_challenge(std::string_view challenge) noexcept {
    challenge = trim(challenge);
    // "User Name:" is 16 base64 characters; longer challenges are not the prompt.
    constexpr size_t kMaxChallenge = 32;
    if (challenge.empty() || challenge.size() > kMaxChallenge) {
        return SaslAnswer::Unknown;
    }
    Base64Decoder decoder;
    std::array<uint8_t, Base64Decoder::max_output(kMaxChallenge) + 2> text{};
    size_t n = decoder.decode(
            {reinterpret_cast<const uint8_t*>(challenge.data()), challenge.size()}, text.data());
    n += decoder.finish(text.data() + n);
    if (decoder.invalid_bytes() > 0) {
        return SaslAnswer::Unknown;
    }
    std::string_view prompt = trim({reinterpret_cast<const char*>(text.data()), n});
    if (!prompt.empty() && prompt.back() == ':') {
        prompt.remove_suffix(1);
    }
    prompt = trim(prompt);
    return iequals(prompt, "Username") || iequals(prompt, "User Name") ? SaslAnswer::UserPrompt
                                                                       : SaslAnswer::Unknown;
}

size_t sasl_user(SaslMech mech, uint8_t index, SaslAnswer answer, std::string_view response,
        std::span<char> out) noexcept {
    response = trim(response);
    if (index != 0 || mech == SaslMech::Other || response.empty() || response == "*"
            || response == "=" || out.empty()) {
        return 0;
    }
    if (mech == SaslMech::Login && answer != SaslAnswer::Initial
            && answer != SaslAnswer::UserPrompt) {
        return 0;  // answers "Password:" or a prompt we do not know: may be the password
    }
    Base64Decoder decoder;
    std::array<uint8_t, 8> scratch{};
    size_t n = 0;        // length of the name being read in out
    size_t written = 0;  // how far out was written (wiped when the response is refused)
    size_t authzid_len = 0;
    int nuls = 0;  // PLAIN: NULs seen (1: the authcid is being read)
    bool stop = false;
    const auto take = [&](size_t produced) {
        for (size_t j = 0; j < produced && !stop; ++j) {
            const uint8_t b = scratch[j];
            if (mech == SaslMech::Plain && b == 0) {
                if (++nuls == 1) {
                    authzid_len = n;
                    n = 0;
                    continue;
                }
                stop = true;  // the password follows: never decoded further
                break;
            }
            if (n < out.size()) {
                out[n++] = static_cast<char>(b);
                written = std::max(written, n);
            }
        }
    };
    for (size_t i = 0; i < response.size() && !stop && !decoder.ended(); i += 4) {
        const std::string_view piece = response.substr(i, 4);
        take(decoder.decode(
                {reinterpret_cast<const uint8_t*>(piece.data()), piece.size()}, scratch.data()));
    }
    if (!stop) {
        take(decoder.finish(scratch.data()));
    }
    const bool bad = decoder.invalid_bytes() > 0;
    wipe(scratch.data(), scratch.size());
    wipe(&decoder, sizeof(decoder));
    // PLAIN needs both NULs: with one, what follows it may be the password ("user\0pw",
    // "\0pw", "pw\0").
    if (bad || (mech == SaslMech::Plain && !stop)) {
        wipe(out.data(), written);
        return 0;
    }
    if (mech == SaslMech::Plain) {
        if (n == 0) {
            n = authzid_len;  // empty authcid: the authzid names the user
        }
    } else if (mech == SaslMech::CramMd5) {
        size_t space = n;
        while (space > 0 && out[space - 1] != ' ') {
            --space;
        }
        n = space > 0 ? space - 1 : 0;
    }
    return n;
}

// --- Pop3Parser ------------------------------------------------------------------------------

void Pop3Parser::on_data(AppDir dir, std::span<const uint8_t> data, AppEventSink& events,
        ObjectSink* objects) noexcept {
    (void)objects;
    if (done()) {
        return;
    }
    size_t i = 0;
    const size_t n = data.size();
    if (dir == AppDir::ToServer) {
        while (i < n && !done()) {
            const auto* lf = static_cast<const uint8_t*>(std::memchr(data.data() + i, '\n', n - i));
            const size_t stop = lf == nullptr ? n : static_cast<size_t>(lf - data.data());
            for (; i < stop; ++i) {
                if (line_skip_) {
                    continue;
                }
                if (line_len_ < line_.size()) {
                    line_[line_len_++] = static_cast<char>(data[i]);
                } else {
                    ++lines_cut_;
                    line_skip_ = true;
                }
            }
            if (lf == nullptr) {
                break;
            }
            ++i;
            if (line_skip_) {
                // A cut line still was a command (or response): keep the replies in step.
                if (auth_active_) {
                    if (auth_responses_ < 255) {
                        ++auth_responses_;
                    }
                    auth_answer_ = SaslAnswer::Unknown;
                    auth_active_ = auth_responses_ < sasl_responses(auth_mech_);
                } else {
                    push(Cmd::Other);
                }
            } else {
                client_line({line_.data(), line_len_});
            }
            line_len_ = 0;
            line_skip_ = false;
        }
        return;
    }
    for (; i < n && !done(); ++i) {
        const uint8_t b = data[i];
        if (b == '\n') {
            if (!reply_skip_) {
                server_line(events);
            }
            reply_skip_ = false;
            reply_len_ = 0;
            continue;
        }
        if (b == '\r') {
            continue;
        }
        if (reply_len_ < reply_head_.size()) {
            reply_head_[reply_len_] = static_cast<char>(b);
        }
        if (reply_len_ < UINT16_MAX) {
            ++reply_len_;
        }
    }
}

void Pop3Parser::client_line(std::string_view line) noexcept {
    line = trim(line);
    if (auth_active_) {
        if (user_len_ == 0) {
            user_len_ = static_cast<uint8_t>(
                    sasl_user(auth_mech_, auth_responses_, auth_answer_, line, user_));
        }
        if (auth_responses_ < 255) {
            ++auth_responses_;
        }
        auth_answer_ = SaslAnswer::Unknown;  // the next response needs its own challenge
        auth_active_ = auth_responses_ < sasl_responses(auth_mech_) && line != "*";
        return;
    }
    std::string_view args = line;
    const std::string_view verb = next_word(args);
    if (iequals(verb, "USER")) {
        user_len_ = static_cast<uint8_t>(copy_text(args, user_));
        push(Cmd::User);
    } else if (iequals(verb, "PASS")) {
        login_pending_ = true;
        push(Cmd::Pass);
    } else if (iequals(verb, "APOP")) {
        user_len_ = static_cast<uint8_t>(copy_text(next_word(args), user_));
        login_pending_ = true;
        push(Cmd::Apop);
    } else if (iequals(verb, "AUTH")) {
        if (args.empty()) {
            push(Cmd::MultiLine);  // lists the mechanisms
            return;
        }
        auth_mech_ = sasl_mech(next_word(args));
        auth_responses_ = 0;
        auth_answer_ = SaslAnswer::Unknown;
        user_len_ = 0;
        if (!args.empty()) {
            user_len_ = static_cast<uint8_t>(
                    sasl_user(auth_mech_, 0, SaslAnswer::Initial, args, user_));
            auth_responses_ = 1;
        }
        auth_active_ = auth_responses_ < sasl_responses(auth_mech_);
        login_pending_ = true;
        push(Cmd::Auth);
    } else if (iequals(verb, "STLS")) {
        push(Cmd::Stls);
    } else if (iequals(verb, "CAPA") || iequals(verb, "RETR") || iequals(verb, "TOP")) {
        push(Cmd::MultiLine);
    } else if (iequals(verb, "LIST") || iequals(verb, "UIDL")) {
        push(args.empty() ? Cmd::MultiLine : Cmd::Other);
    } else {
        push(Cmd::Other);
    }
}

void Pop3Parser::server_line(AppEventSink& events) noexcept {
    const std::string_view head(
            reply_head_.data(), std::min<size_t>(reply_len_, reply_head_.size()));
    if (multiline_) {
        if (reply_len_ == 1 && head == ".") {
            multiline_ = false;
        }
        return;
    }
    if (pending_count_ == 0 || head.empty()) {
        return;
    }
    const Cmd cmd = pending_[pending_head_];
    bool ok = false;
    if (head.substr(0, 3) == "+OK") {
        ok = true;
    } else if (head.substr(0, 4) == "-ERR") {
        ok = false;
    } else if (head[0] == '+') {
        // SASL continuation: the next client line is a response (NTLM takes several). A
        // challenge longer than reply_head_ holds is not the user name prompt.
        auth_active_ = cmd == Cmd::Auth;
        auth_answer_ = reply_len_ <= reply_head_.size() ? sasl_challenge(head.substr(1))
                                                        : SaslAnswer::Unknown;
        return;
    } else {
        return;  // not a status line
    }
    pending_head_ = static_cast<uint8_t>((pending_head_ + 1) % kMaxPending);
    --pending_count_;
    switch (cmd) {
    case Cmd::User:
        if (!ok) {
            login(events, LoginOutcome::Failure);
        }
        break;
    case Cmd::Pass:
    case Cmd::Apop:
    case Cmd::Auth:
        auth_active_ = false;
        login(events, ok ? LoginOutcome::Success : LoginOutcome::Failure);
        logged_in_ = ok;
        break;
    case Cmd::Stls:
        tls_ = ok;
        break;
    case Cmd::MultiLine:
        multiline_ = ok;
        break;
    case Cmd::Greeting:
    case Cmd::Other:
        break;
    }
}

void Pop3Parser::push(Cmd cmd) noexcept {
    if (pending_count_ >= kMaxPending) {
        ++pending_overflow_;
        return;
    }
    pending_[(pending_head_ + pending_count_) % kMaxPending] = cmd;
    ++pending_count_;
}

void Pop3Parser::login(AppEventSink& events, LoginOutcome outcome) noexcept {
    AppEvent event;
    event.kind = AppEventKind::Login;
    event.proto = AppProto::Pop3;
    event.outcome = outcome;
    event.set(event.user, {user_.data(), user_len_});
    events.on_app_event(event);
    login_pending_ = false;
}

void Pop3Parser::on_gap(AppDir dir) noexcept {
    if (dir == AppDir::ToServer) {
        line_len_ = 0;
        line_skip_ = true;
    } else {
        reply_skip_ = true;
    }
}

void Pop3Parser::on_end(AppEventSink& events, ObjectSink* objects) noexcept {
    (void)objects;
    if (login_pending_ && !done()) {
        login(events, LoginOutcome::Attempt);
    }
}

// --- ImapParser ------------------------------------------------------------------------------

void ImapParser::on_data(AppDir dir, std::span<const uint8_t> data, AppEventSink& events,
        ObjectSink* objects) noexcept {
    (void)objects;
    const size_t d = dir == AppDir::ToServer ? 0 : 1;
    size_t i = 0;
    const size_t n = data.size();
    while (i < n && !done()) {
        if (literal_left_[d] > 0) {
            const size_t take = static_cast<size_t>(std::min<uint64_t>(literal_left_[d], n - i));
            if (d == 0 && literal_use_ == LiteralUse::User) {
                for (size_t k = 0; k < take; ++k) {
                    if (current_.user_len < current_.user.size()) {
                        current_.user[current_.user_len++] = static_cast<char>(data[i + k]);
                    }
                }
            }
            literal_left_[d] -= take;
            i += take;
            continue;
        }
        const auto* lf = static_cast<const uint8_t*>(std::memchr(data.data() + i, '\n', n - i));
        const size_t stop = lf == nullptr ? n : static_cast<size_t>(lf - data.data());
        const auto piece = data.subspan(i, stop - i);
        if (d == 0) {
            if (!skip_client_line_) {
                append_line(line_, line_len_, tail_, tail_len_, line_cut_, piece);
            }
        } else if (!skip_server_line_) {
            append_line(reply_, reply_len_, reply_tail_, reply_tail_len_, reply_cut_, piece);
        }
        i = stop;
        if (lf == nullptr) {
            break;
        }
        ++i;
        if (d == 0) {
            if (!skip_client_line_) {
                uint64_t size = 0;
                const bool literal = literal_at_end({tail_.data(), tail_len_}, size);
                if (line_cut_) {
                    ++lines_cut_;
                }
                client_fragment(literal);
                if (literal) {
                    literal_left_[0] = size;
                }
            }
            skip_client_line_ = false;
            line_len_ = 0;
            tail_len_ = 0;
            line_cut_ = false;
        } else {
            if (!skip_server_line_) {
                uint64_t size = 0;
                server_line(events);
                if (literal_at_end({reply_tail_.data(), reply_tail_len_}, size)) {
                    literal_left_[1] = size;
                }
            }
            skip_server_line_ = false;
            reply_len_ = 0;
            reply_tail_len_ = 0;
            reply_cut_ = false;
        }
    }
}

// One client line, or the part of a command line up to a literal ("{n}" ends it).
void ImapParser::client_fragment(bool literal_follows) noexcept {
    std::string_view line(line_.data(), line_len_);
    literal_use_ = LiteralUse::Skip;
    if (auth_active_ && !in_command_) {
        if (current_.user_len == 0) {
            current_.user_len = static_cast<uint8_t>(
                    sasl_user(auth_mech_, auth_responses_, auth_answer_, line, current_.user));
        }
        if (auth_responses_ < 255) {
            ++auth_responses_;
        }
        auth_answer_ = SaslAnswer::Unknown;  // the next response needs its own challenge
        auth_active_ = auth_responses_ < sasl_responses(auth_mech_) && trim(line) != "*";
        if (pending_count_ > 0) {
            Pending& last = pending_[pending_count_ - 1];
            if (last.kind == Kind::Authenticate && last.user_len == 0) {
                last.user = current_.user;
                last.user_len = current_.user_len;
            }
        }
        return;
    }
    if (in_command_ && login_user_literal_) {
        // The line goes on after the LOGIN user name literal: without a second argument the
        // only one was the password (or a client error), never reported as the user.
        login_user_literal_ = false;
        if (trim(line).empty()) {
            clear_user(current_);
        }
    }
    if (!in_command_) {
        current_ = Pending{};
        tracked_ = false;
        login_user_literal_ = false;
        std::string_view args = line;
        const std::string_view tag = next_word(args);
        const std::string_view command = next_word(args);
        current_.tag_len = static_cast<uint8_t>(copy_text(tag, current_.tag));
        if (iequals(command, "LOGIN")) {
            tracked_ = true;
            current_.kind = Kind::Login;
            // LOGIN user password: with one argument only, that one may be the password and
            // no user is reported.
            if (!args.empty() && args[0] == '"') {
                size_t k = 1;
                while (k < args.size() && args[k] != '"') {
                    if (args[k] == '\\' && k + 1 < args.size()) {
                        ++k;
                    }
                    if (current_.user_len < current_.user.size()) {
                        current_.user[current_.user_len++] = args[k];
                    }
                    ++k;
                }
                if (k + 1 >= args.size() || trim(args.substr(k + 1)).empty()) {
                    clear_user(current_);
                }
            } else if (!args.empty() && args[0] == '{') {
                literal_use_ = literal_follows && args.find(' ') == std::string_view::npos
                        ? LiteralUse::User
                        : LiteralUse::Skip;
                login_user_literal_ = literal_use_ == LiteralUse::User;
            } else {
                const std::string_view user = next_word(args);
                if (!args.empty()) {
                    current_.user_len = static_cast<uint8_t>(copy_text(user, current_.user));
                }
            }
        } else if (iequals(command, "AUTHENTICATE")) {
            tracked_ = true;
            current_.kind = Kind::Authenticate;
            auth_mech_ = sasl_mech(next_word(args));
            auth_responses_ = 0;
            auth_answer_ = SaslAnswer::Unknown;
            if (!args.empty()) {
                current_.user_len = static_cast<uint8_t>(
                        sasl_user(auth_mech_, 0, SaslAnswer::Initial, args, current_.user));
                auth_responses_ = 1;
            }
        } else if (iequals(command, "STARTTLS")) {
            tracked_ = true;
            current_.kind = Kind::StartTls;
        }
    }
    if (literal_follows) {
        in_command_ = true;
        return;
    }
    in_command_ = false;
    if (!tracked_) {
        return;
    }
    add_pending();
    if (current_.kind == Kind::Authenticate) {
        auth_active_ = auth_responses_ < sasl_responses(auth_mech_);
    }
}

void ImapParser::server_line(AppEventSink& events) noexcept {
    std::string_view args(reply_.data(), reply_len_);
    const std::string_view tag = next_word(args);
    if (!tag.empty() && tag[0] == '+') {
        // A continuation: during AUTHENTICATE it asks for the next SASL response. "+" and
        // the challenge may be written together ("+VXNl..."); a cut line is not the prompt.
        for (size_t k = 0; k < pending_count_; ++k) {
            auth_active_ = auth_active_ || pending_[k].kind == Kind::Authenticate;
        }
        const std::string_view challenge = tag.size() > 1 ? tag.substr(1) : args;
        auth_answer_ = reply_cut_ ? SaslAnswer::Unknown : sasl_challenge(challenge);
        return;
    }
    if (tag.empty() || tag == "*") {
        return;
    }
    const std::string_view status = next_word(args);
    LoginOutcome outcome = LoginOutcome::Attempt;
    if (iequals(status, "OK")) {
        outcome = LoginOutcome::Success;
    } else if (iequals(status, "NO") || iequals(status, "BAD")) {
        outcome = LoginOutcome::Failure;
    } else {
        return;
    }
    for (size_t k = 0; k < pending_count_; ++k) {
        const Pending& p = pending_[k];
        if (std::string_view(p.tag.data(), p.tag_len) != tag) {
            continue;
        }
        if (p.kind == Kind::StartTls) {
            tls_ = outcome == LoginOutcome::Success;
        } else {
            if (p.kind == Kind::Authenticate) {
                auth_active_ = false;
            }
            emit(p, outcome, events);
            logged_in_ = outcome == LoginOutcome::Success;
        }
        for (size_t m = k + 1; m < pending_count_; ++m) {
            pending_[m - 1] = pending_[m];
        }
        --pending_count_;
        return;
    }
}

void ImapParser::emit(const Pending& p, LoginOutcome outcome, AppEventSink& events) noexcept {
    AppEvent event;
    event.kind = AppEventKind::Login;
    event.proto = AppProto::Imap;
    event.outcome = outcome;
    event.set(event.user, {p.user.data(), p.user_len});
    events.on_app_event(event);
}

void ImapParser::add_pending() noexcept {
    if (pending_count_ >= kMaxPending) {
        // The oldest never got an answer: let it go.
        for (size_t m = 1; m < pending_count_; ++m) {
            pending_[m - 1] = pending_[m];
        }
        --pending_count_;
        ++pending_overflow_;
    }
    pending_[pending_count_++] = current_;
}

void ImapParser::on_gap(AppDir dir) noexcept {
    const size_t d = dir == AppDir::ToServer ? 0 : 1;
    literal_left_[d] = 0;
    if (d == 0) {
        skip_client_line_ = true;
        in_command_ = false;
        login_user_literal_ = false;
        literal_use_ = LiteralUse::Skip;
    } else {
        skip_server_line_ = true;
    }
}

void ImapParser::on_end(AppEventSink& events, ObjectSink* objects) noexcept {
    (void)objects;
    if (done()) {
        return;
    }
    for (size_t k = 0; k < pending_count_; ++k) {
        if (pending_[k].kind != Kind::StartTls) {
            emit(pending_[k], LoginOutcome::Attempt, events);
        }
    }
    pending_count_ = 0;
}

}  // namespace exfiltap::detectors
