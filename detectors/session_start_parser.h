// Connection-start parsers for protocols whose logins are encrypted: SSH (RFC 4253 section 4
// and 6) and RDP (TPKT, X.224 Connection Request, MS-RDPBCGR 2.2.1.1). Each reports one
// Login attempt when a connection really starts the protocol, then is done().
//
// Threads: one object per flow, owned and called by one worker. Every member is noexcept and
// neither allocates nor makes syscalls; all state lives inside the object (no heap).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>

#include "detectors/app_event.h"

namespace exfiltap::detectors {

/// SSH: the client's identification line ("SSH-2.0-..." or "SSH-1.99-...", at most 255 bytes
/// with CR LF), the server's (other lines before it are allowed, up to kServerPreambleCap
/// bytes) and then the client's first binary packet being SSH_MSG_KEXINIT (20) give one Login
/// (proto Ssh, outcome Attempt, `user` empty, `name` = the client's "SSH-protoversion-
/// softwareversion", comments after a space dropped). The three may arrive in any order.
/// A client whose first bytes are not "SSH-" (HTTP sent to port 22, say), an SSH-1 client, a
/// first packet that is not KEXINIT or a gap before the decision end the parser without an
/// event. done() after the event or the decision not to report.
class SshParser {
public:
    static constexpr size_t kBannerCap = 255;
    static constexpr size_t kServerPreambleCap = 4096;

    void on_data(AppDir dir, std::span<const uint8_t> data, AppEventSink& events,
            ObjectSink* objects) noexcept;
    void on_gap(AppDir dir) noexcept;
    void on_end(AppEventSink& events, ObjectSink* objects) noexcept;
    bool done() const noexcept { return done_; }

    /// True when the parser stopped because the stream is not SSH (or cannot be judged).
    bool gave_up() const noexcept { return gave_up_; }

private:
    enum class ClientState : uint8_t {
        Banner,
        PacketHead,
        Finished,  // KEXINIT seen
    };

    void on_client(std::span<const uint8_t> data) noexcept;
    void on_server(std::span<const uint8_t> data) noexcept;
    bool client_banner_valid() const noexcept;
    void give_up() noexcept;

    std::array<char, kBannerCap> client_banner_{};
    std::array<uint8_t, 6> packet_head_{};
    uint16_t client_len_ = 0;  // bytes of the banner line so far (CR LF included)
    uint16_t server_line_len_ = 0;
    uint16_t server_preamble_ = 0;
    uint8_t head_len_ = 0;
    ClientState client_ = ClientState::Banner;
    bool server_prefix_ok_ = true;  // the current server line still starts like "SSH-"
    bool server_banner_ = false;
    bool done_ = false;
    bool gave_up_ = false;
};

static_assert(sizeof(SshParser) <= 4096);

/// RDP: the client's first PDU must be TPKT (version 3) carrying an X.224 Connection Request
/// (TPDU code 0xE0). It gives one Login (proto Rdp, outcome Attempt, `user` = NAME of the
/// routing cookie "Cookie: mstshash=NAME\r\n" when present, else empty). The negotiation
/// request after the cookie is not read. Only the first kPduCap bytes of the PDU are looked
/// at. done() after that first client PDU (or as soon as the bytes are not TPKT/X.224 CR:
/// then without an event). The server's bytes are ignored.
class RdpParser {
public:
    static constexpr size_t kPduCap = 256;

    void on_data(AppDir dir, std::span<const uint8_t> data, AppEventSink& events,
            ObjectSink* objects) noexcept;
    void on_gap(AppDir dir) noexcept;
    void on_end(AppEventSink& events, ObjectSink* objects) noexcept;
    bool done() const noexcept { return done_; }

    bool gave_up() const noexcept { return gave_up_; }

private:
    void finish(AppEventSink& events) noexcept;

    std::array<uint8_t, kPduCap> pdu_{};
    uint16_t len_ = 0;
    uint16_t need_ = 4;  // the TPKT header first, then min(TPKT length, kPduCap)
    bool done_ = false;
    bool gave_up_ = false;
};

static_assert(sizeof(RdpParser) <= 4096);

}  // namespace exfiltap::detectors
