// FTP control channel parser (RFC 959, RFC 2428 for EPSV/EPRT): logins, data channels and
// file transfers of one control connection, reported as AppEvents.
//
// Threads: one object per flow, owned and called by one worker. Every member is noexcept and
// neither allocates nor makes syscalls; all state lives inside the object (no heap).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

#include "detectors/app_event.h"

namespace exfiltap::detectors {

/// Reads the client's commands and the server's replies line by line (one 512-byte line
/// buffer per direction; longer lines are cut, counted, and their first 512 bytes are still
/// interpreted) and reports:
/// - Login (proto Ftp): `user` from USER, outcome Success on a 230 reply and Failure on a 530
///   reply to USER or PASS; a PASS left unanswered when the flow ends gives Attempt. The
///   password itself is never kept.
/// - FtpDataChannel: PASV (227 reply), EPSV (229 reply: the address is the control flow's
///   server, which this parser does not know, so `data_addr_len` is 0), PORT and EPRT
///   commands; `data_addr`/`data_port` is the side that will listen, `upload` the direction
///   of a transfer command already sent when the channel is announced (usually none: false).
/// - FileTransfer (proto Ftp): STOR/STOU/APPE (upload) and RETR (download) with `name` = the
///   command's argument. Once with `final` false when the server accepts it (125/150;
///   `bytes` = the "(N bytes)" size when the reply states one, else 0), and once with `final`
///   true when it completes (226/250, or the flow's end after an accepted transfer). A 4xx or
///   5xx reply cancels the transfer without an event.
/// After AUTH TLS/SSL is accepted (234) the rest is encrypted: done() becomes true.
class FtpParser {
public:
    static constexpr size_t kLineCap = 512;

    /// In-order bytes of one direction. `objects` is unused (FTP control has no objects).
    void on_data(AppDir dir, std::span<const uint8_t> data, AppEventSink& events,
            ObjectSink* objects) noexcept;
    /// Bytes of `dir` were lost: the partial line is dropped and parsing resumes after the
    /// next line end of that direction.
    void on_gap(AppDir dir) noexcept;
    /// The flow ended: reports an accepted transfer that saw no completion reply and a PASS
    /// that saw no answer (Attempt).
    void on_end(AppEventSink& events, ObjectSink* objects) noexcept;
    bool done() const noexcept { return done_; }

    /// Lines longer than kLineCap (cut to it).
    uint32_t lines_cut() const noexcept { return lines_cut_; }
    /// Server lines that are not replies, and PASV/EPSV/PORT/EPRT arguments that do not parse.
    uint32_t malformed() const noexcept { return malformed_; }

private:
    struct LineBuffer {
        std::array<char, kLineCap> bytes{};
        uint16_t len = 0;
        bool cut = false;       // the current line went past kLineCap
        bool skipping = false;  // after a gap: drop everything up to the next line end
    };

    enum class Transfer : uint8_t {
        None,
        Requested,  // STOR/RETR/... sent, no reply yet
        Accepted,   // 125/150 seen, waiting for 226/250
    };

    enum class Verb : uint8_t {
        Other,
        User,
        Pass,
        Store,     // STOR, STOU, APPE
        Retrieve,  // RETR
        List,      // LIST, NLST, MLSD
        Port,
        Eprt,
        Auth,
    };

    static Verb classify(std::string_view verb) noexcept;
    void on_line(AppDir dir, std::string_view line, bool cut, AppEventSink& events) noexcept;
    void on_command(std::string_view line, bool cut, AppEventSink& events) noexcept;
    void on_port(std::string_view arg, AppEventSink& events) noexcept;
    void on_eprt(std::string_view arg, AppEventSink& events) noexcept;
    void on_reply(unsigned code, std::string_view text, AppEventSink& events) noexcept;
    void on_passive(std::string_view text, AppEventSink& events) noexcept;
    void on_extended_passive(std::string_view text, AppEventSink& events) noexcept;
    void emit_login(LoginOutcome outcome, AppEventSink& events) noexcept;
    void emit_transfer(bool final, AppEventSink& events) noexcept;
    void emit_channel(std::span<const uint8_t> addr, uint16_t port, AppEventSink& events) noexcept;

    std::array<LineBuffer, 2> lines_{};
    std::array<char, AppEvent::kUserCap> user_{};
    std::array<char, AppEvent::kNameCap> file_{};
    uint64_t file_bytes_ = 0;
    uint32_t lines_cut_ = 0;
    uint32_t malformed_ = 0;
    uint16_t file_len_ = 0;
    uint16_t multiline_code_ = 0;  // non-zero inside a multi-line reply ("xyz-" ... "xyz ")
    uint8_t user_len_ = 0;
    bool user_cut_ = false;
    bool file_cut_ = false;
    Transfer transfer_ = Transfer::None;
    bool transfer_upload_ = false;
    bool login_pending_ = false;  // USER or PASS sent, no 230/530 yet
    bool pass_sent_ = false;
    bool auth_pending_ = false;
    bool done_ = false;
};

static_assert(sizeof(FtpParser) <= 4096);

}  // namespace exfiltap::detectors
