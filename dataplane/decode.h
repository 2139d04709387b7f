// Decode of L2-L4 headers from one contiguous frame. Pure code on bytes (no rte_ headers),
// so it is unit-tested and fuzzed without EAL. Worker-safe: no allocation, noexcept.
#pragma once

#include <array>
#include <cstdint>
#include <string_view>

namespace exfiltap::dataplane {

/// Why a frame could not be decoded as far as its headers claim. Counted per reason; the
/// frame is still forwarded (fail-open).
enum class Malformed : uint8_t {
    None = 0,
    EthernetTruncated,
    VlanTruncated,
    TooManyVlanTags,
    Ipv4Truncated,
    Ipv4BadVersion,
    Ipv4BadHeaderLength,
    Ipv4BadTotalLength,
    Ipv4BadOptions,
    Ipv6Truncated,
    Ipv6BadVersion,
    Ipv6BadPayloadLength,
    Ipv6ExtensionTruncated,
    Ipv6TooManyExtensions,
    TcpTruncated,
    TcpBadDataOffset,
    TcpBadOptions,
    UdpTruncated,
    UdpBadLength,
    Count,
};
inline constexpr size_t kMalformedCount = static_cast<size_t>(Malformed::Count);

/// Stable snake_case name used in summaries and metrics ("ipv4_truncated", ...).
std::string_view malformed_name(Malformed reason) noexcept;

inline constexpr uint8_t kProtoIcmp = 1;
inline constexpr uint8_t kProtoTcp = 6;
inline constexpr uint8_t kProtoUdp = 17;
inline constexpr uint8_t kProtoIcmpv6 = 58;

inline constexpr uint8_t kTcpFin = 0x01;
inline constexpr uint8_t kTcpSyn = 0x02;
inline constexpr uint8_t kTcpRst = 0x04;
inline constexpr uint8_t kTcpPsh = 0x08;
inline constexpr uint8_t kTcpAck = 0x10;

inline constexpr unsigned kMaxVlanTags = 4;

struct PacketInfo {
    /// 0 when the frame carries no IP (ARP, LLDP, ...): forwarded, not inspected.
    uint8_t ip_version = 0;
    /// Transport protocol: the last next-header reached (6 TCP, 17 UDP, 58 ICMPv6, ...).
    uint8_t l4_proto = 0;
    uint8_t vlan_count = 0;
    uint8_t tcp_flags = 0;
    /// VLAN ids, outermost first.
    std::array<uint16_t, kMaxVlanTags> vlan{};
    /// Addresses in network order; IPv4 uses the first 4 bytes, the rest are zero.
    std::array<uint8_t, 16> src{};
    std::array<uint8_t, 16> dst{};
    uint16_t src_port = 0;
    uint16_t dst_port = 0;
    /// Offsets from the start of the frame.
    uint16_t l3_offset = 0;
    uint16_t l4_offset = 0;
    uint32_t payload_offset = 0;
    /// L4 payload bytes, bounded by the IP header's length (not the frame's).
    uint32_t payload_len = 0;
    /// Bytes of the IP datagram (header included) as the IP header states it.
    uint32_t ip_len = 0;
    uint32_t tcp_seq = 0;
    uint32_t tcp_ack = 0;
    uint16_t tcp_window = 0;
    /// A fragment (IPv4 MF or offset, IPv6 fragment header): ports and payload unknown
    /// unless this is a first fragment; never inspected as L4 in this form.
    bool fragment = false;
    bool first_fragment = false;
    /// IPv4 fragment id or IPv6 fragment identification; offset in bytes; more fragments.
    uint32_t frag_id = 0;
    uint32_t frag_offset = 0;
    bool frag_more = false;
    Malformed malformed = Malformed::None;
};

/// Decodes `frame` (captured bytes, `len` of them). Returns false and sets info.malformed
/// when a header is cut or inconsistent; fields decoded before the fault stay set. Returns
/// true for non-IP frames with ip_version 0. Never reads past `len`.
bool decode_packet(const uint8_t* frame, uint32_t len, PacketInfo& info) noexcept;

/// Verifies the L4 checksum (TCP, UDP; UDP checksum 0 over IPv4 means none) of a decoded
/// unfragmented packet. Requires the whole datagram to be captured.
bool l4_checksum_ok(const uint8_t* frame, uint32_t len, const PacketInfo& info) noexcept;

/// True when the stored L4 checksum is what a sender with checksum offload leaves before
/// the NIC fills it in: the pseudo-header sum alone (or zero). Captures taken on such a
/// sender show it on every segment it sent.
bool l4_checksum_is_offload_placeholder(
        const uint8_t* frame, uint32_t len, const PacketInfo& info) noexcept;

/// True for the IPv6 extension headers decode walks past (Hop-by-Hop, Routing, Fragment,
/// AH, Destination Options, Mobility, HIP, Shim6).
bool is_ipv6_extension(uint8_t next_header) noexcept;

/// Length of the extension header of `type` at `p`; its first two bytes must be readable.
uint32_t ipv6_extension_len(uint8_t type, const uint8_t* p) noexcept;

/// Verifies the IPv4 header checksum.
bool ipv4_header_checksum_ok(const uint8_t* frame, uint32_t len, const PacketInfo& info) noexcept;

}  // namespace exfiltap::dataplane
