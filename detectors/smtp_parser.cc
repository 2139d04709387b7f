#include "detectors/smtp_parser.h"

#include <algorithm>
#include <cstring>

#include "detectors/char_class.h"
#include "detectors/text_util.h"

namespace exfiltap::detectors {
namespace {

// The mailbox of a MAIL FROM / RCPT TO argument: "<a@b>" or a bare a@b, parameters dropped.
std::string_view mailbox(std::string_view arg) noexcept {
    arg = trim(arg);
    if (!arg.empty() && arg.front() == '<') {
        arg.remove_prefix(1);
        return arg.substr(0, std::min(arg.find('>'), arg.size()));
    }
    return arg.substr(0, std::min(arg.find(' '), arg.size()));
}

template <size_t N>
uint8_t copy_cut(std::array<char, N>& out, std::string_view text, bool& truncated) noexcept {
    static_assert(N <= 255);
    const size_t n = std::min(text.size(), N);
    if (n < text.size()) {
        truncated = true;
    }
    std::memcpy(out.data(), text.data(), n);
    return static_cast<uint8_t>(n);
}

}  // namespace

static_assert(sizeof(SmtpParser) <= 4096, "SmtpParser must fit its pool slot");

/// Takes the MIME walker's parts for SmtpParser: attachments into files_, decoded bytes to
/// the object sink.
class SmtpMimeSink final : public MimeHandler {
public:
    SmtpMimeSink(SmtpParser& parser, ObjectSink* objects) noexcept
        : parser_(parser), objects_(objects) {}

    void on_part_begin(const MimePartInfo& part) noexcept override {
        parser_.part_is_file_ = part.is_attachment();
        if (objects_ != nullptr
                && (part.encoding != MimeEncoding::Identity || parser_.part_is_file_)) {
            objects_->object_begin(ObjectKind::MimePart, AppDir::ToServer);
            parser_.object_open_ = true;
        }
    }

    void on_part_data(std::span<const uint8_t> data) noexcept override {
        if (parser_.object_open_ && objects_ != nullptr) {
            objects_->object_data(data);
        }
    }

    void on_part_end(const MimePartInfo& part) noexcept override {
        if (parser_.object_open_ && objects_ != nullptr) {
            objects_->object_end();
        }
        parser_.object_open_ = false;
        if (!part.is_attachment()) {
            return;
        }
        ++parser_.attachments_;
        parser_.attachment_bytes_ += part.decoded_bytes;
        if (parser_.files_len_ >= SmtpParser::kMaxFiles) {
            ++parser_.files_not_reported_;
            return;
        }
        SmtpParser::File& file = parser_.files_[parser_.files_len_++];
        file.name_len = part.name_len;
        std::memcpy(file.name.data(), part.name.data(), part.name_len);
        file.truncated = part.name_truncated;
        file.bytes = part.decoded_bytes;
    }

private:
    SmtpParser& parser_;
    ObjectSink* objects_;
};

void SmtpParser::on_data(AppDir dir, std::span<const uint8_t> data, AppEventSink& events,
        ObjectSink* objects) noexcept {
    if (done()) {
        return;
    }
    if (dir == AppDir::ToServer) {
        client(data, events, objects);
    } else {
        server(data, events);
    }
}

void SmtpParser::client(
        std::span<const uint8_t> data, AppEventSink& events, ObjectSink* objects) noexcept {
    size_t i = 0;
    const size_t n = data.size();
    while (i < n && !done()) {
        switch (client_) {
        case Client::Command: {
            const auto* lf = static_cast<const uint8_t*>(std::memchr(data.data() + i, '\n', n - i));
            const size_t stop = lf == nullptr ? n : static_cast<size_t>(lf - data.data());
            if (!line_skip_) {
                const size_t room = line_.size() - line_len_;
                const size_t take = std::min(room, stop - i);
                std::memcpy(line_.data() + line_len_, data.data() + i, take);
                line_len_ = static_cast<uint16_t>(line_len_ + take);
                if (take < stop - i && !line_cut_) {
                    line_cut_ = true;
                    ++lines_cut_;
                }
            }
            i = stop;
            if (lf == nullptr) {
                break;
            }
            ++i;
            const std::string_view line = trim({line_.data(), line_len_});
            const bool lost = line_skip_;
            line_len_ = 0;
            line_skip_ = false;
            line_cut_ = false;
            if (lost) {
                break;
            }
            if (auth_active_) {
                auth_response(line);
            } else {
                command(line, events, objects);
            }
            break;
        }
        case Client::DataLineStart:
            if (data[i] == '.') {
                ++i;
                ++data_bytes_;
                client_ = Client::DataDot;
            } else {
                client_ = Client::DataText;
            }
            break;
        case Client::DataDot:
            if (data[i] == '\r') {
                ++i;
                ++data_bytes_;
                client_ = Client::DataDotCr;
            } else if (data[i] == '\n') {
                ++i;
                data_bytes_ -= 1;  // ".\n" ends the data (a bare LF, tolerated)
                client_ = Client::Command;
                end_message(events, objects);
                push(Cmd::DataEnd);
            } else {
                client_ = Client::DataText;  // a stuffed dot: dropped
            }
            break;
        case Client::DataDotCr:
            if (data[i] == '\n') {
                ++i;
                data_bytes_ -= 2;
                client_ = Client::Command;
                end_message(events, objects);
                push(Cmd::DataEnd);
            } else {
                static constexpr std::array<uint8_t, 1> kCr{'\r'};
                client_ = Client::DataText;
                message_bytes(kCr, events, objects);
            }
            break;
        case Client::DataText: {
            const auto* lf = static_cast<const uint8_t*>(std::memchr(data.data() + i, '\n', n - i));
            const size_t stop = lf == nullptr ? n : static_cast<size_t>(lf - data.data()) + 1;
            data_bytes_ += stop - i;
            message_bytes(data.subspan(i, stop - i), events, objects);
            i = stop;
            if (lf != nullptr) {
                client_ = Client::DataLineStart;
            }
            break;
        }
        case Client::Bdat: {
            const size_t take = static_cast<size_t>(std::min<uint64_t>(bdat_left_, n - i));
            data_bytes_ += take;
            message_bytes(data.subspan(i, take), events, objects);
            bdat_left_ -= take;
            i += take;
            if (bdat_left_ == 0) {
                client_ = Client::Command;
                if (bdat_last_) {
                    end_message(events, objects);
                }
            }
            break;
        }
        }
    }
}

void SmtpParser::command(
        std::string_view line, AppEventSink& events, ObjectSink* objects) noexcept {
    std::string_view args = line;
    const std::string_view verb = next_word(args);
    if (iequals(verb, "EHLO") || iequals(verb, "HELO") || iequals(verb, "LHLO")) {
        envelope_ = Envelope{};
        push(Cmd::Helo);
    } else if (iequals(verb, "MAIL")) {
        envelope_ = Envelope{};
        if (istarts_with(args, "FROM:")) {
            envelope_.sender_len =
                    copy_cut(envelope_.sender, mailbox(args.substr(5)), envelope_.truncated);
        }
        push(Cmd::Mail);
    } else if (iequals(verb, "RCPT")) {
        const uint32_t index = envelope_.recipients;
        if (istarts_with(args, "TO:") && !envelope_.have_recipient) {
            envelope_.recipient_len =
                    copy_cut(envelope_.recipient, mailbox(args.substr(3)), envelope_.truncated);
            envelope_.have_recipient = true;
        }
        ++envelope_.recipients;
        push(Cmd::Rcpt, static_cast<uint8_t>(std::min<uint32_t>(index, 255)));
    } else if (iequals(verb, "DATA")) {
        push(Cmd::Data);
        data_bytes_ = 0;
        bdat_open_ = false;
        client_ = Client::DataLineStart;
    } else if (iequals(verb, "BDAT")) {
        const std::string_view size_text = next_word(args);
        const bool last = iequals(next_word(args), "LAST");
        uint64_t size = 0;
        bool valid = !size_text.empty() && size_text.size() <= 18;
        for (const char c : size_text) {
            valid = valid && is_digit(c);
            size = size * 10 + static_cast<uint64_t>(c - '0');
        }
        if (!valid) {
            push(Cmd::Other);
            return;
        }
        if (!bdat_open_) {
            bdat_open_ = true;
            bdat_failed_ = false;
            data_bytes_ = 0;
        }
        push(last ? Cmd::BdatLast : Cmd::Bdat);
        bdat_left_ = size;
        bdat_last_ = last;
        if (size > 0) {
            client_ = Client::Bdat;
        } else if (last) {
            end_message(events, objects);
        }
    } else if (iequals(verb, "AUTH")) {
        auth_mech_ = sasl_mech(next_word(args));
        auth_responses_ = 0;
        auth_user_len_ = 0;
        auth_answer_ = SaslAnswer::Unknown;
        auth_active_ = true;
        auth_pending_ = true;
        auth_cancelled_ = false;
        push(Cmd::Auth);
        if (!args.empty()) {
            auth_answer_ = SaslAnswer::Initial;
            auth_response(args);  // initial response
        }
    } else if (iequals(verb, "STARTTLS")) {
        push(Cmd::StartTls);
    } else if (iequals(verb, "QUIT")) {
        push(Cmd::Quit);
    } else if (iequals(verb, "RSET")) {
        envelope_ = Envelope{};
        bdat_open_ = false;
        push(Cmd::Other);
    } else {
        push(Cmd::Other);
    }
}

void SmtpParser::auth_response(std::string_view line) noexcept {
    if (auth_user_len_ == 0) {
        auth_user_len_ = static_cast<uint8_t>(
                sasl_user(auth_mech_, auth_responses_, auth_answer_, line, auth_user_));
    }
    if (auth_responses_ < 255) {
        ++auth_responses_;
    }
    auth_answer_ = SaslAnswer::Unknown;  // the next response needs its own challenge
    if (line == "*") {
        // The client gave up the exchange (RFC 4954): no credentials were checked, so the
        // server's 501 is not a failed login; a retry reports its own.
        auth_cancelled_ = true;
    }
    // Past the responses the mechanism takes, lines are commands again (a capture without
    // the server's side never shows the verdict).
    auth_active_ = auth_responses_ < sasl_responses(auth_mech_) && line != "*";
}

void SmtpParser::server(std::span<const uint8_t> data, AppEventSink& events) noexcept {
    for (size_t i = 0; i < data.size() && !done(); ++i) {
        const uint8_t b = data[i];
        if (b == '\n') {
            if (!reply_skip_ && reply_pos_ >= 3 && reply_sep_ != '-') {
                reply(reply_code_, events);
            }
            reply_pos_ = 0;
            reply_code_ = 0;
            reply_sep_ = 0;
            reply_text_len_ = 0;
            reply_skip_ = false;
            continue;
        }
        if (reply_skip_) {
            continue;
        }
        if (reply_pos_ < 3) {
            if (!is_digit(static_cast<char>(b))) {
                reply_skip_ = true;
                ++bad_replies_;
                continue;
            }
            reply_code_ = static_cast<uint16_t>(reply_code_ * 10 + (b - '0'));
            ++reply_pos_;
        } else if (reply_pos_ == 3) {
            reply_sep_ = static_cast<char>(b);
            ++reply_pos_;
            if (b != ' ' && b != '-' && b != '\r' && b != '\t') {
                reply_skip_ = true;
                ++bad_replies_;
            }
        } else if (reply_text_len_ <= reply_text_.size()) {
            // The reply text's start (a 334 challenge); one byte past the buffer marks it cut.
            if (reply_text_len_ < reply_text_.size()) {
                reply_text_[reply_text_len_] = static_cast<char>(b);
            }
            ++reply_text_len_;
        }
    }
}

void SmtpParser::reply(uint16_t code, AppEventSink& events) noexcept {
    if (pending_count_ == 0) {
        ++bad_replies_;
        return;
    }
    const Pending p = pending_[pending_head_];
    const unsigned klass = code / 100U;
    if (p.cmd == Cmd::Auth && klass == 3) {
        auth_active_ = true;  // 334: the next client line is a response (NTLM takes several)
        // What it asks for: only an answer to the user name prompt names the user (LOGIN).
        auth_answer_ = reply_text_len_ <= reply_text_.size()
                ? sasl_challenge({reply_text_.data(), reply_text_len_})
                : SaslAnswer::Unknown;
        return;
    }
    pending_head_ = static_cast<uint8_t>((pending_head_ + 1) % kMaxPending);
    --pending_count_;
    const bool ok = klass == 2;
    switch (p.cmd) {
    case Cmd::Mail:
        if (!ok) {
            envelope_.sender_len = 0;
        }
        break;
    case Cmd::Rcpt:
        if (!ok) {
            if (envelope_.recipients > 0) {
                --envelope_.recipients;
            }
            if (p.rcpt == 0) {
                envelope_.have_recipient = false;
                envelope_.recipient_len = 0;
            }
        }
        break;
    case Cmd::Data:
        if (klass != 3 && !in_message_ && data_bytes_ == 0 && client_ == Client::DataLineStart) {
            client_ = Client::Command;  // refused: no data follows
        }
        break;
    case Cmd::DataEnd:
    case Cmd::BdatLast:
        if (awaiting_reply_) {
            if (ok && !(p.cmd == Cmd::BdatLast && bdat_failed_)) {
                report_message(events);
            } else {
                ++rejected_;
            }
            awaiting_reply_ = false;
        }
        bdat_failed_ = false;
        break;
    case Cmd::Bdat:
        if (!ok) {
            bdat_failed_ = true;
        }
        break;
    case Cmd::Auth:
        auth_active_ = false;
        auth_pending_ = false;
        if (!auth_cancelled_ || ok) {
            report_login(events, ok ? LoginOutcome::Success : LoginOutcome::Failure);
        }
        auth_cancelled_ = false;
        break;
    case Cmd::StartTls:
        tls_ = ok;
        break;
    case Cmd::Quit:
        quit_ = true;
        break;
    case Cmd::Greeting:
    case Cmd::Helo:
    case Cmd::Other:
        break;
    }
}

void SmtpParser::push(Cmd cmd, uint8_t rcpt) noexcept {
    if (pending_count_ >= kMaxPending) {
        ++pending_overflow_;
        return;
    }
    pending_[(pending_head_ + pending_count_) % kMaxPending] = Pending{cmd, rcpt};
    ++pending_count_;
}

void SmtpParser::message_bytes(
        std::span<const uint8_t> data, AppEventSink& events, ObjectSink* objects) noexcept {
    if (!in_message_) {
        begin_message(events);
    }
    if (message_gap_ || data.empty()) {
        return;
    }
    SmtpMimeSink sink(*this, objects);
    mime_.feed(data, objects != nullptr && objects->wants(AppDir::ToServer), sink);
}

void SmtpParser::begin_message(AppEventSink& events) noexcept {
    if (awaiting_reply_) {
        // The previous message's verdict was never seen (one-sided capture or lost bytes).
        report_message(events);
        awaiting_reply_ = false;
    }
    in_message_ = true;
    message_gap_ = false;
    mime_.reset();
    files_len_ = 0;
    attachments_ = 0;
    attachment_bytes_ = 0;
}

void SmtpParser::end_message(AppEventSink& events, ObjectSink* objects) noexcept {
    if (!in_message_) {
        begin_message(events);
    }
    SmtpMimeSink sink(*this, objects);
    mime_.finish(objects != nullptr && objects->wants(AppDir::ToServer), sink);
    sent_ = envelope_;
    sent_bytes_ = data_bytes_;
    sent_gap_ = message_gap_;
    envelope_ = Envelope{};
    awaiting_reply_ = true;
    in_message_ = false;
    bdat_open_ = false;
}

void SmtpParser::report_message(AppEventSink& events) noexcept {
    AppEvent event;
    event.kind = AppEventKind::MailMessage;
    event.proto = AppProto::Smtp;
    event.final = !sent_gap_;
    event.truncated = sent_.truncated;
    event.set(event.user, {sent_.sender.data(), sent_.sender_len});
    event.set(event.name, {sent_.recipient.data(), sent_.recipient_len});
    event.count = sent_.recipients;
    event.attachments = attachments_;
    event.attachment_bytes = attachment_bytes_;
    event.bytes = sent_bytes_;
    if (files_len_ > 0) {
        event.set(event.host, {files_[0].name.data(), files_[0].name_len});
        event.truncated = event.truncated || files_[0].truncated;
    }
    events.on_app_event(event);
    for (size_t k = 0; k < files_len_; ++k) {
        AppEvent file;
        file.kind = AppEventKind::FileTransfer;
        file.proto = AppProto::Smtp;
        file.upload = true;
        file.final = !sent_gap_;
        file.truncated = files_[k].truncated;
        file.set(file.name, {files_[k].name.data(), files_[k].name_len});
        file.bytes = files_[k].bytes;
        events.on_app_event(file);
    }
    ++messages_;
    files_len_ = 0;
}

void SmtpParser::report_login(AppEventSink& events, LoginOutcome outcome) noexcept {
    AppEvent event;
    event.kind = AppEventKind::Login;
    event.proto = AppProto::Smtp;
    event.outcome = outcome;
    event.set(event.user, {auth_user_.data(), auth_user_len_});
    events.on_app_event(event);
}

void SmtpParser::on_gap(AppDir dir) noexcept {
    if (dir == AppDir::ToClient) {
        reply_skip_ = true;
        return;
    }
    switch (client_) {
    case Client::Command:
        line_len_ = 0;
        line_skip_ = true;
        break;
    case Client::DataLineStart:
    case Client::DataDot:
    case Client::DataDotCr:
    case Client::DataText:
        // Look for the end of the data from the next line on; the MIME walk stops.
        message_gap_ = true;
        client_ = Client::DataText;
        break;
    case Client::Bdat:
        lost_ = true;  // the chunk's end cannot be found
        break;
    }
}

void SmtpParser::on_end(AppEventSink& events, ObjectSink* objects) noexcept {
    if (object_open_ && objects != nullptr) {
        objects->object_end();
    }
    object_open_ = false;
    in_message_ = false;
    if (awaiting_reply_) {
        report_message(events);
        awaiting_reply_ = false;
    }
    if (auth_pending_ && !auth_cancelled_) {
        report_login(events, LoginOutcome::Attempt);
    }
    auth_pending_ = false;
}

}  // namespace exfiltap::detectors
