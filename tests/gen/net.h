#pragma once

#include <array>
#include <compare>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace exfiltap::gen {

inline constexpr uint8_t kProtoTcp = 6;
inline constexpr uint8_t kProtoUdp = 17;

inline constexpr uint8_t kTcpFin = 0x01;
inline constexpr uint8_t kTcpSyn = 0x02;
inline constexpr uint8_t kTcpRst = 0x04;
inline constexpr uint8_t kTcpPsh = 0x08;
inline constexpr uint8_t kTcpAck = 0x10;

using MacAddr = std::array<uint8_t, 6>;

// An IPv4 or IPv6 address in network byte order (IPv4 in the first four bytes).
struct IpAddr {
    bool is_v6 = false;
    std::array<uint8_t, 16> bytes{};

    static IpAddr v4(uint8_t a, uint8_t b, uint8_t c, uint8_t d);
    // From eight 16-bit groups, most significant first.
    static IpAddr v6(const std::array<uint16_t, 8>& groups);

    // Dotted quad, or RFC 5952 text (lower case, longest zero run as "::"), as inet_ntop
    // writes it.
    std::string str() const;

    // Inside the protected network by the default config: 10.20.0.0/16 or fd00::/8.
    bool inside() const;

    auto operator<=>(const IpAddr&) const = default;
};

// Locally administered MAC derived from an address, so every host keeps one MAC.
MacAddr mac_for(const IpAddr& ip);

// Everything that goes into one frame's headers.
struct FrameSpec {
    MacAddr src_mac{};
    MacAddr dst_mac{};
    uint16_t vlan = 0;  // 802.1Q id; 0: untagged
    IpAddr src;
    IpAddr dst;
    uint8_t ttl = 64;
    uint16_t ip_id = 0;       // IPv4 only
    uint32_t flow_label = 0;  // IPv6 only
    uint8_t proto = kProtoTcp;
    uint16_t sport = 0;
    uint16_t dport = 0;
    uint32_t seq = 0;  // TCP fields from here on
    uint32_t ack = 0;
    uint8_t tcp_flags = 0;
    uint16_t window = 0;
    uint16_t mss_option = 0;  // non-zero: an MSS option (SYN and SYN-ACK)
};

// Writes one Ethernet frame into out (replacing its contents): Ethernet, optional 802.1Q
// tag, IPv4 (DF, no options) or IPv6, TCP or UDP, payload, with valid IP, TCP and UDP
// checksums. Frames shorter than the Ethernet minimum are padded with zeros to 60 bytes, as
// they are on the wire, so a reader must take the payload length from the IP header.
void build_frame(
        const FrameSpec& spec, std::span<const uint8_t> payload, std::vector<uint8_t>& out);

}  // namespace exfiltap::gen
