#include "dataplane/tcp_reset.h"

#include <algorithm>
#include <cstring>

#include "dataplane/wire.h"

namespace exfiltap::dataplane {

namespace {

constexpr uint32_t kTcpHeaderLen = 20;
constexpr uint8_t kResetTtl = 64;
constexpr uint32_t kMacLen = 6;

void store16(uint8_t* p, uint16_t v) noexcept {
    p[0] = static_cast<uint8_t>(v >> 8);
    p[1] = static_cast<uint8_t>(v);
}

void store32(uint8_t* p, uint32_t v) noexcept {
    store16(p, static_cast<uint16_t>(v >> 16));
    store16(p + 2, static_cast<uint16_t>(v));
}

uint32_t sum_words(const uint8_t* p, uint32_t len, uint32_t sum) noexcept {
    for (uint32_t i = 0; i + 1 < len; i += 2) {
        sum += wire::load16(p + i);
    }
    if ((len & 1U) != 0) {
        sum += static_cast<uint32_t>(p[len - 1]) << 8;
    }
    return sum;
}

uint16_t fold(uint32_t sum) noexcept {
    while ((sum >> 16) != 0) {
        sum = (sum & 0xffffU) + (sum >> 16);
    }
    return static_cast<uint16_t>(~sum);
}

}  // namespace

uint32_t build_tcp_reset(
        const uint8_t* frame, const PacketInfo& info, bool toward_sender, uint8_t* out) noexcept {
    if (info.l4_proto != kProtoTcp || info.fragment || info.ip_version == 0) {
        return 0;
    }
    const uint32_t l3 = info.l3_offset;
    const uint32_t l4 = info.l4_offset;
    if (info.ip_version == 6 && l4 != l3 + wire::kIpv6HeaderLen) {
        return 0;  // extension headers: rebuilding them is not worth a reset
    }
    const uint32_t len = l4 + kTcpHeaderLen;
    if (len > kMaxResetFrame || l3 < 2 * kMacLen) {
        return 0;
    }
    memcpy(out, frame, l4);
    if (toward_sender) {
        std::swap_ranges(out, out + kMacLen, out + kMacLen);
    }

    // IP header: addresses (swapped going back), lengths, TTL, checksum.
    uint32_t pseudo = 0;
    if (info.ip_version == 4) {
        uint8_t* ip = out + l3;
        const uint32_t header_len = l4 - l3;
        if (toward_sender) {
            std::swap_ranges(ip + 12, ip + 16, ip + 16);
        }
        store16(ip + 2, static_cast<uint16_t>(header_len + kTcpHeaderLen));
        store16(ip + 4, 0);       // identification
        store16(ip + 6, 0x4000);  // don't fragment
        ip[8] = kResetTtl;
        store16(ip + 10, 0);
        store16(ip + 10, fold(sum_words(ip, header_len, 0)));
        pseudo = sum_words(ip + 12, 8, kProtoTcp + kTcpHeaderLen);
    } else {
        uint8_t* ip = out + l3;
        if (toward_sender) {
            std::swap_ranges(ip + 8, ip + 24, ip + 24);
        }
        store16(ip + 4, static_cast<uint16_t>(kTcpHeaderLen));
        ip[6] = kProtoTcp;
        ip[7] = kResetTtl;
        pseudo = sum_words(ip + 8, 32, kProtoTcp + kTcpHeaderLen);
    }

    // TCP: RST+ACK at exactly the sequence each end expects next (RFC 5961 takes nothing
    // else). The segment itself is dropped, so its receiver still waits for its first byte;
    // its sender expects what it last acknowledged.
    uint8_t* tcp = out + l4;
    memset(tcp, 0, kTcpHeaderLen);
    store16(tcp, toward_sender ? info.dst_port : info.src_port);
    store16(tcp + 2, toward_sender ? info.src_port : info.dst_port);
    store32(tcp + 4, toward_sender ? info.tcp_ack : info.tcp_seq);
    store32(tcp + 8, toward_sender ? info.tcp_seq : info.tcp_ack);
    tcp[12] = static_cast<uint8_t>((kTcpHeaderLen / 4) << 4);
    tcp[13] = kTcpRst | kTcpAck;
    store16(tcp + 16, fold(sum_words(tcp, kTcpHeaderLen, pseudo)));
    return len;
}

}  // namespace exfiltap::dataplane
