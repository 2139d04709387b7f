#include "tests/gen/net.h"

#include <algorithm>
#include <cstdio>

namespace exfiltap::gen {
namespace {

constexpr size_t kEthHeader = 14;
constexpr size_t kVlanTag = 4;
constexpr size_t kIpv4Header = 20;
constexpr size_t kIpv6Header = 40;
constexpr size_t kTcpHeader = 20;
constexpr size_t kUdpHeader = 8;
constexpr size_t kMinFrame = 60;  // without FCS

void put16(uint8_t* p, uint32_t v) {
    p[0] = static_cast<uint8_t>(v >> 8);
    p[1] = static_cast<uint8_t>(v);
}

void put32(uint8_t* p, uint32_t v) {
    p[0] = static_cast<uint8_t>(v >> 24);
    p[1] = static_cast<uint8_t>(v >> 16);
    p[2] = static_cast<uint8_t>(v >> 8);
    p[3] = static_cast<uint8_t>(v);
}

// One's complement sum of big-endian 16-bit words, not yet folded; an odd tail byte is
// padded with zero, as RFC 1071 says.
uint64_t sum_words(const uint8_t* p, size_t n, uint64_t acc) {
    for (; n >= 2; p += 2, n -= 2) {
        acc += static_cast<uint64_t>(p[0]) << 8 | p[1];
    }
    if (n == 1) {
        acc += static_cast<uint64_t>(p[0]) << 8;
    }
    return acc;
}

uint16_t fold(uint64_t acc) {
    while (acc >> 16) {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    return static_cast<uint16_t>(~acc & 0xffff);
}

}  // namespace

IpAddr IpAddr::v4(uint8_t a, uint8_t b, uint8_t c, uint8_t d) {
    IpAddr ip;
    ip.bytes[0] = a;
    ip.bytes[1] = b;
    ip.bytes[2] = c;
    ip.bytes[3] = d;
    return ip;
}

IpAddr IpAddr::v6(const std::array<uint16_t, 8>& groups) {
    IpAddr ip;
    ip.is_v6 = true;
    for (size_t i = 0; i < groups.size(); ++i) {
        put16(&ip.bytes[i * 2], groups[i]);
    }
    return ip;
}

std::string IpAddr::str() const {
    char buf[48];
    if (!is_v6) {
        std::snprintf(buf, sizeof buf, "%u.%u.%u.%u", bytes[0], bytes[1], bytes[2], bytes[3]);
        return buf;
    }
    std::array<uint16_t, 8> g{};
    for (size_t i = 0; i < g.size(); ++i) {
        g[i] = static_cast<uint16_t>(bytes[i * 2] << 8 | bytes[i * 2 + 1]);
    }
    // Longest run of two or more zero groups (the first on a tie) becomes "::".
    size_t best_at = g.size();
    size_t best_len = 1;
    for (size_t i = 0; i < g.size();) {
        size_t j = i;
        while (j < g.size() && g[j] == 0) {
            ++j;
        }
        if (j - i > best_len) {
            best_at = i;
            best_len = j - i;
        }
        i = j == i ? i + 1 : j;
    }
    std::string out;
    for (size_t i = 0; i < g.size();) {
        if (i == best_at) {
            out += "::";
            i += best_len;
            continue;
        }
        if (!out.empty() && out.back() != ':') {
            out += ':';
        }
        std::snprintf(buf, sizeof buf, "%x", g[i]);
        out += buf;
        ++i;
    }
    return out;
}

bool IpAddr::inside() const {
    if (is_v6) {
        return bytes[0] == 0xfd;
    }
    return bytes[0] == 10 && bytes[1] == 20;
}

MacAddr mac_for(const IpAddr& ip) {
    MacAddr mac{0x02, 0x00, 0, 0, 0, 0};
    const size_t n = ip.is_v6 ? 16 : 4;
    // Last four address bytes name the host; v6 hosts get 0x06 in the second byte.
    mac[1] = ip.is_v6 ? 0x06 : 0x00;
    for (size_t i = 0; i < 4; ++i) {
        mac[2 + i] = ip.bytes[n - 4 + i];
    }
    return mac;
}

void build_frame(
        const FrameSpec& spec, std::span<const uint8_t> payload, std::vector<uint8_t>& out) {
    const bool tcp = spec.proto == kProtoTcp;
    const size_t l2 = kEthHeader + (spec.vlan != 0 ? kVlanTag : 0);
    const size_t l3 = spec.src.is_v6 ? kIpv6Header : kIpv4Header;
    const size_t opt = tcp && spec.mss_option != 0 ? 4 : 0;
    const size_t l4 = (tcp ? kTcpHeader : kUdpHeader) + opt;
    const size_t l4_len = l4 + payload.size();
    const size_t frame = l2 + l3 + l4_len;
    out.assign(frame < kMinFrame ? kMinFrame : frame, 0);
    uint8_t* p = out.data();

    // Ethernet and 802.1Q.
    std::copy(spec.dst_mac.begin(), spec.dst_mac.end(), p);
    std::copy(spec.src_mac.begin(), spec.src_mac.end(), p + 6);
    size_t at = 12;
    if (spec.vlan != 0) {
        put16(p + at, 0x8100);
        put16(p + at + 2, spec.vlan & 0x0fff);
        at += kVlanTag;
    }
    put16(p + at, spec.src.is_v6 ? 0x86dd : 0x0800);

    // IP header, and the pseudo-header sum for the transport checksum.
    uint8_t* ip = p + l2;
    uint64_t pseudo = 0;
    if (spec.src.is_v6) {
        put32(ip, 6u << 28 | (spec.flow_label & 0xfffff));
        put16(ip + 4, static_cast<uint32_t>(l4_len));
        ip[6] = spec.proto;
        ip[7] = spec.ttl;
        std::copy(spec.src.bytes.begin(), spec.src.bytes.end(), ip + 8);
        std::copy(spec.dst.bytes.begin(), spec.dst.bytes.end(), ip + 24);
        pseudo = sum_words(ip + 8, 32, 0);
        pseudo += (l4_len >> 16) + (l4_len & 0xffff) + spec.proto;
    } else {
        ip[0] = 0x45;
        put16(ip + 2, static_cast<uint32_t>(l3 + l4_len));
        put16(ip + 4, spec.ip_id);
        put16(ip + 6, 0x4000);  // DF
        ip[8] = spec.ttl;
        ip[9] = spec.proto;
        std::copy(spec.src.bytes.begin(), spec.src.bytes.begin() + 4, ip + 12);
        std::copy(spec.dst.bytes.begin(), spec.dst.bytes.begin() + 4, ip + 16);
        put16(ip + 10, fold(sum_words(ip, kIpv4Header, 0)));
        pseudo = sum_words(ip + 12, 8, 0) + spec.proto + l4_len;
    }

    // Transport header and payload.
    uint8_t* l4p = ip + l3;
    put16(l4p, spec.sport);
    put16(l4p + 2, spec.dport);
    if (tcp) {
        put32(l4p + 4, spec.seq);
        put32(l4p + 8, spec.ack);
        l4p[12] = static_cast<uint8_t>((l4 / 4) << 4);
        l4p[13] = spec.tcp_flags;
        put16(l4p + 14, spec.window);
        if (opt != 0) {
            l4p[20] = 2;  // MSS
            l4p[21] = 4;
            put16(l4p + 22, spec.mss_option);
        }
    } else {
        put16(l4p + 4, static_cast<uint32_t>(l4_len));
    }
    std::copy(payload.begin(), payload.end(), l4p + l4);
    uint16_t sum = fold(sum_words(l4p, l4_len, pseudo));
    if (!tcp && sum == 0) {
        sum = 0xffff;  // UDP: zero means "no checksum"
    }
    put16(l4p + (tcp ? 16 : 6), sum);
}

}  // namespace exfiltap::gen
