#include "detectors/session_start_parser.h"

#include <cstring>
#include <string_view>

namespace exfiltap::detectors {

namespace {

constexpr std::string_view kSshPrefix = "SSH-";
constexpr uint8_t kSshMsgKexinit = 20;
// RFC 4253 6.1 sets 35,000 as the size every implementation must take; OpenSSH accepts up
// to 256 KiB, so anything larger is not a real first packet.
constexpr uint32_t kSshMaxPacket = 256 * 1024;
constexpr std::string_view kRdpCookie = "Cookie: mstshash=";

}  // namespace

void SshParser::on_data(AppDir dir, std::span<const uint8_t> data, AppEventSink& events,
        ObjectSink* /*objects*/) noexcept {
    if (done_) {
        return;
    }
    if (dir == AppDir::ToServer) {
        on_client(data);
    } else {
        on_server(data);
    }
    if (done_ || client_ != ClientState::Finished || !server_banner_) {
        return;
    }
    // Name: "SSH-2.0-OpenSSH_8.7" from "SSH-2.0-OpenSSH_8.7 comments\r\n".
    size_t n = 0;
    while (n < client_len_ && client_banner_[n] != ' ' && client_banner_[n] != '\r'
            && client_banner_[n] != '\n') {
        ++n;
    }
    AppEvent event;
    event.kind = AppEventKind::Login;
    event.proto = AppProto::Ssh;
    event.outcome = LoginOutcome::Attempt;
    event.set(event.name, std::string_view(client_banner_.data(), n));
    events.on_app_event(event);
    done_ = true;
}

void SshParser::on_gap(AppDir dir) noexcept {
    // Lost bytes before the decision make the stream unjudgeable.
    const bool undecided =
            dir == AppDir::ToServer ? client_ != ClientState::Finished : !server_banner_;
    if (undecided) {
        give_up();
    }
}

void SshParser::on_end(AppEventSink& /*events*/, ObjectSink* /*objects*/) noexcept {
    done_ = true;
}

void SshParser::on_client(std::span<const uint8_t> data) noexcept {
    size_t at = 0;
    while (at < data.size() && !done_) {
        if (client_ == ClientState::Banner) {
            const auto b = static_cast<char>(data[at++]);
            if ((client_len_ < kSshPrefix.size() && b != kSshPrefix[client_len_])
                    || client_len_ >= kBannerCap) {
                give_up();
                return;
            }
            client_banner_[client_len_++] = b;
            if (b == '\n') {
                if (!client_banner_valid()) {
                    give_up();
                    return;
                }
                client_ = ClientState::PacketHead;
            }
            continue;
        }
        if (client_ == ClientState::Finished) {
            return;
        }
        // uint32 packet_length, byte padding_length, byte message code.
        const size_t want = packet_head_.size() - head_len_;
        const size_t n = want < data.size() - at ? want : data.size() - at;
        std::memcpy(packet_head_.data() + head_len_, data.data() + at, n);
        head_len_ = static_cast<uint8_t>(head_len_ + n);
        at += n;
        if (head_len_ < packet_head_.size()) {
            return;
        }
        const uint32_t length = uint32_t{packet_head_[0]} << 24 | uint32_t{packet_head_[1]} << 16
                | uint32_t{packet_head_[2]} << 8 | uint32_t{packet_head_[3]};
        const uint8_t padding = packet_head_[4];
        if (length < 12 || length > kSshMaxPacket || padding < 4 || padding >= length
                || packet_head_[5] != kSshMsgKexinit) {
            give_up();
            return;
        }
        client_ = ClientState::Finished;
    }
}

void SshParser::on_server(std::span<const uint8_t> data) noexcept {
    // RFC 4253 4.2: the server may send other lines before its identification line.
    for (size_t at = 0; at < data.size() && !server_banner_; ++at) {
        const auto b = static_cast<char>(data[at]);
        if (++server_preamble_ > kServerPreambleCap) {
            give_up();
            return;
        }
        if (server_line_len_ < kSshPrefix.size() && b != kSshPrefix[server_line_len_]) {
            server_prefix_ok_ = false;
        }
        if (server_line_len_ < UINT16_MAX) {
            ++server_line_len_;
        }
        if (b != '\n') {
            continue;
        }
        if (server_prefix_ok_ && server_line_len_ > kSshPrefix.size() + 1) {
            server_banner_ = true;
            return;
        }
        server_line_len_ = 0;
        server_prefix_ok_ = true;
    }
}

bool SshParser::client_banner_valid() const noexcept {
    std::string_view line(client_banner_.data(), client_len_);
    line.remove_suffix(1);  // '\n'
    if (!line.empty() && line.back() == '\r') {
        line.remove_suffix(1);
    }
    line.remove_prefix(kSshPrefix.size());
    const size_t dash = line.find('-');
    if (dash == std::string_view::npos) {
        return false;
    }
    const std::string_view version = line.substr(0, dash);
    const std::string_view software = line.substr(dash + 1);
    // "1.99" is a server-side compatibility marker, but accept it from clients too.
    return (version == "2.0" || version == "1.99") && !software.empty() && software[0] != ' ';
}

void SshParser::give_up() noexcept {
    gave_up_ = true;
    done_ = true;
}

void RdpParser::on_data(AppDir dir, std::span<const uint8_t> data, AppEventSink& events,
        ObjectSink* /*objects*/) noexcept {
    if (done_ || dir != AppDir::ToServer) {
        return;
    }
    size_t at = 0;
    while (at < data.size() && !done_) {
        const size_t want = need_ - len_;
        const size_t n = want < data.size() - at ? want : data.size() - at;
        std::memcpy(pdu_.data() + len_, data.data() + at, n);
        len_ = static_cast<uint16_t>(len_ + n);
        at += n;
        if (len_ < need_) {
            return;
        }
        if (need_ == 4) {
            // TPKT: version 3, reserved, 16-bit length of the whole PDU; an X.224 CR needs 7.
            const size_t length = size_t{pdu_[2]} << 8 | pdu_[3];
            if (pdu_[0] != 3 || pdu_[1] != 0 || length < 11) {
                done_ = true;
                gave_up_ = true;
                return;
            }
            need_ = static_cast<uint16_t>(length < kPduCap ? length : kPduCap);
            continue;
        }
        finish(events);
    }
}

void RdpParser::on_gap(AppDir dir) noexcept {
    if (dir == AppDir::ToServer && !done_) {
        done_ = true;
        gave_up_ = true;
    }
}

void RdpParser::on_end(AppEventSink& events, ObjectSink* /*objects*/) noexcept {
    // A first PDU cut short by the flow's end is judged on what arrived.
    if (!done_ && need_ > 4 && len_ >= 11) {
        finish(events);
    }
    done_ = true;
}

void RdpParser::finish(AppEventSink& events) noexcept {
    done_ = true;
    const size_t length = size_t{pdu_[2]} << 8 | pdu_[3];
    // X.224: length indicator (bytes after itself), CR code 0xE0 (low bits: credit),
    // DST-REF, SRC-REF, class; the cookie follows in the variable part.
    const size_t li = pdu_[4];
    if ((pdu_[5] & 0xf0) != 0xe0 || li < 6 || 5 + li > length) {
        gave_up_ = true;
        return;
    }
    const size_t end = 5 + li < len_ ? 5 + li : len_;
    const std::string_view variable(reinterpret_cast<const char*>(pdu_.data()) + 11, end - 11);
    AppEvent event;
    event.kind = AppEventKind::Login;
    event.proto = AppProto::Rdp;
    event.outcome = LoginOutcome::Attempt;
    if (variable.substr(0, kRdpCookie.size()) == kRdpCookie) {
        std::string_view name = variable.substr(kRdpCookie.size());
        const size_t crlf = name.find("\r\n");
        if (crlf != std::string_view::npos) {
            name = name.substr(0, crlf);
        } else {
            event.truncated = true;  // the cookie runs past what was kept
        }
        event.set(event.user, name);
    }
    events.on_app_event(event);
}

}  // namespace exfiltap::detectors
