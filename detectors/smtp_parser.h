// SMTP (RFC 5321) for the behaviour and content detectors: the envelope (MAIL FROM, RCPT
// TO), the message (DATA with dot-unstuffing, or BDAT chunks, RFC 3030) walked as MIME,
// AUTH logins (RFC 4954) and STARTTLS (RFC 3207).
//
// Threads: the worker. Nothing here allocates, locks, logs or throws; the parser keeps its
// state in fixed-size members (one per flow, in the worker's parser pool).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

#include "detectors/app_event.h"
#include "detectors/mail_login_parser.h"
#include "detectors/mime.h"

namespace exfiltap::detectors {

/// One SMTP flow. Reports:
/// - Login (proto Smtp) per AUTH exchange: the user name of PLAIN, LOGIN or CRAM-MD5 (never
///   the password), outcome from the final reply (2xx Success, 4xx/5xx Failure); Attempt
///   when the flow ends before the reply. An exchange the client cancels ("*") is not
///   reported unless the server accepts it (no credentials were checked).
/// - MailMessage per message the server accepts (2xx after the data), and one FileTransfer
///   (upload, name, decoded bytes) per attachment: a leaf MIME part with a file name or
///   Content-Disposition attachment. The first kMaxFiles attachments get FileTransfer
///   events; the message's attachments and attachment_bytes count them all. A message whose
///   reply is never seen (one-sided capture, flow cut) is reported when the flow ends or the
///   next message starts; one the server rejects is not reported.
/// - Decoded MIME parts to the ObjectSink (ObjectKind::MimePart, ToServer): parts in base64
///   or quoted-printable, and attachments in any encoding. Other identity-encoded parts are
///   not repeated (their bytes are in the flow's raw stream already).
/// Commands are matched with replies in order (pipelining), verbs in any case. done() once
/// STARTTLS is accepted or QUIT answered, or after the client's bytes were lost inside a BDAT
/// chunk (the framing cannot be found again).
class SmtpParser {
public:
    static constexpr size_t kLineCap = 512;
    static constexpr size_t kMaxPending = 16;
    static constexpr size_t kMaxFiles = 4;
    static constexpr size_t kSenderCap = AppEvent::kUserCap - 1;
    static constexpr size_t kRecipientCap = 160;

    void on_data(AppDir dir, std::span<const uint8_t> data, AppEventSink& events,
            ObjectSink* objects) noexcept;
    void on_gap(AppDir dir) noexcept;
    void on_end(AppEventSink& events, ObjectSink* objects) noexcept;
    bool done() const noexcept { return tls_ || quit_ || lost_; }

    /// Messages accepted (2xx) and reported; rejected by the server (not reported).
    uint32_t messages() const noexcept { return messages_; }
    uint32_t messages_rejected() const noexcept { return rejected_; }
    /// Client command lines longer than kLineCap (cut, the rest of the line skipped).
    uint32_t lines_cut() const noexcept { return lines_cut_; }
    /// Server lines that are not replies, and replies with no command awaiting them.
    uint32_t bad_replies() const noexcept { return bad_replies_; }
    /// Commands dropped because kMaxPending replies were awaited already.
    uint32_t pending_overflow() const noexcept { return pending_overflow_; }
    /// Attachments beyond kMaxFiles of a message (counted, no FileTransfer event).
    uint32_t files_not_reported() const noexcept { return files_not_reported_; }
    const MimeWalker& mime() const noexcept { return mime_; }

private:
    friend class SmtpMimeSink;

    enum class Cmd : uint8_t {
        Greeting,
        Helo,
        Mail,
        Rcpt,
        Data,
        DataEnd,  // the message's final reply
        Bdat,
        BdatLast,
        Auth,
        StartTls,
        Quit,
        Other,
    };
    struct Pending {
        Cmd cmd = Cmd::Greeting;
        uint8_t rcpt = 0;  // Rcpt: recipient number in the transaction (saturating)
    };
    enum class Client : uint8_t {
        Command,
        DataLineStart,  // DATA: at the start of a line
        DataDot,        // a line started with '.'
        DataDotCr,      // ".\r"
        DataText,       // inside a line
        Bdat,           // counting a BDAT chunk
    };
    struct Envelope {
        std::array<char, kSenderCap> sender{};
        std::array<char, kRecipientCap> recipient{};
        uint32_t recipients = 0;
        uint8_t sender_len = 0;
        uint8_t recipient_len = 0;
        bool truncated = false;
        bool have_recipient = false;
    };
    struct File {
        std::array<char, MimePartInfo::kNameCap> name{};
        uint64_t bytes = 0;
        uint16_t name_len = 0;
        bool truncated = false;
    };

    void client(std::span<const uint8_t> data, AppEventSink& events, ObjectSink* objects) noexcept;
    void server(std::span<const uint8_t> data, AppEventSink& events) noexcept;
    void command(std::string_view line, AppEventSink& events, ObjectSink* objects) noexcept;
    void auth_response(std::string_view line) noexcept;
    void reply(uint16_t code, AppEventSink& events) noexcept;
    void push(Cmd cmd, uint8_t rcpt = 0) noexcept;
    void message_bytes(
            std::span<const uint8_t> data, AppEventSink& events, ObjectSink* objects) noexcept;
    void begin_message(AppEventSink& events) noexcept;
    void end_message(AppEventSink& events, ObjectSink* objects) noexcept;
    void report_message(AppEventSink& events) noexcept;
    void report_login(AppEventSink& events, LoginOutcome outcome) noexcept;

    MimeWalker mime_{};
    Envelope envelope_{};  // the transaction the client is building
    Envelope sent_{};      // the envelope of the message awaiting its reply
    std::array<File, kMaxFiles> files_{};
    std::array<char, kLineCap> line_{};
    std::array<Pending, kMaxPending> pending_{};  // ring; [0] starts as the greeting
    std::array<char, AppEvent::kUserCap - 1> auth_user_{};
    std::array<char, 40> reply_text_{};  // the reply line's text start (a SASL challenge)
    uint64_t data_bytes_ = 0;            // DATA as sent (dots included), or BDAT chunk bytes
    uint64_t sent_bytes_ = 0;
    uint64_t bdat_left_ = 0;
    uint64_t attachment_bytes_ = 0;
    uint32_t attachments_ = 0;
    uint32_t messages_ = 0;
    uint32_t rejected_ = 0;
    uint32_t lines_cut_ = 0;
    uint32_t bad_replies_ = 0;
    uint32_t pending_overflow_ = 0;
    uint32_t files_not_reported_ = 0;
    uint16_t line_len_ = 0;
    uint16_t reply_code_ = 0;
    uint8_t reply_pos_ = 0;  // bytes of the current reply line read (up to 4 kept)
    uint8_t pending_head_ = 0;
    uint8_t pending_count_ = 1;
    uint8_t auth_user_len_ = 0;
    uint8_t auth_responses_ = 0;
    uint8_t reply_text_len_ = 0;  // bytes of reply_text_ (one more when the text is longer)
    uint8_t files_len_ = 0;
    SaslMech auth_mech_ = SaslMech::Other;
    SaslAnswer auth_answer_ = SaslAnswer::Unknown;  // what the next SASL response answers
    Client client_ = Client::Command;
    char reply_sep_ = 0;
    bool line_skip_ = false;       // the command line's start was lost: skip to its end
    bool line_cut_ = false;        // the command line is longer than kLineCap
    bool reply_skip_ = false;      // the reply line is not a reply (or was lost)
    bool auth_active_ = false;     // client lines are SASL responses
    bool auth_pending_ = false;    // an AUTH awaits its final reply
    bool auth_cancelled_ = false;  // the client cancelled the exchange ("*")
    bool in_message_ = false;      // message bytes were seen (the MIME walker runs)
    bool message_gap_ = false;     // bytes of the message were lost
    bool sent_gap_ = false;
    bool bdat_open_ = false;  // a BDAT message is being sent
    bool bdat_last_ = false;
    bool bdat_failed_ = false;
    bool awaiting_reply_ = false;  // a finished message (sent_, files_) awaits its reply
    bool object_open_ = false;
    bool part_is_file_ = false;
    bool tls_ = false;
    bool quit_ = false;
    bool lost_ = false;
};

}  // namespace exfiltap::detectors
