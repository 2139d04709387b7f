#include "dataplane/decode.h"

#if defined(__SSE2__) && defined(__x86_64__)
#include <emmintrin.h>
#endif

#include <bit>
#include <cstddef>
#include <cstring>

#include "dataplane/wire.h"

// Every read goes through a bounds check against the end the current layer may use: the
// captured length for L2/L3 headers, the IP datagram end (header length field, never the
// frame length) for what the IP header carries. A header that is cut or inconsistent stops
// the decode with its reason; what was decoded before it stays in PacketInfo, so a worker can
// still look up the addresses of a malformed packet in the block table.

namespace exfiltap::dataplane {
namespace {

using namespace wire;  // NOLINT(google-build-using-namespace): the wire vocabulary

constexpr uint16_t kEtherTypeIpv4 = 0x0800;
constexpr uint16_t kEtherTypeIpv6 = 0x86dd;
constexpr uint16_t kTpid8021Q = 0x8100;
constexpr uint16_t kTpid8021ad = 0x88a8;
constexpr uint16_t kTpidQinQLegacy = 0x9100;

constexpr uint32_t kEthernetHeaderLen = 14;
constexpr uint32_t kVlanTagLen = 4;
constexpr uint32_t kTcpMinHeaderLen = 20;
constexpr uint32_t kUdpHeaderLen = 8;

constexpr uint8_t kTcpOptEol = 0;
constexpr uint8_t kTcpOptNop = 1;
constexpr uint8_t kIpv4OptEol = 0;
constexpr uint8_t kIpv4OptNop = 1;

bool fail(PacketInfo& info, Malformed reason) noexcept {
    info.malformed = reason;
    return false;
}

// Walks a TLV option area where 0 ends the list and 1 is a one-byte pad (IPv4 and TCP use
// the same shape). Each other option needs a length byte of at least 2 that stays inside.
bool options_well_formed(const uint8_t* opt, uint32_t len, uint8_t eol, uint8_t nop) noexcept {
    uint32_t i = 0;
    while (i < len) {
        const uint8_t kind = opt[i];
        if (kind == eol) {
            return true;
        }
        if (kind == nop) {
            ++i;
            continue;
        }
        if (i + 1 >= len) {
            return false;
        }
        const uint8_t opt_len = opt[i + 1];
        if (opt_len < 2 || opt_len > len - i) {
            return false;
        }
        i += opt_len;
    }
    return true;
}

void set_payload(PacketInfo& info, uint32_t begin, uint32_t end) noexcept {
    info.payload_offset = begin;
    info.payload_len = end - begin;
}

// A first fragment whose L4 header is cut by the fragment boundary: ports at most, no
// payload is known.
bool partial_header(PacketInfo& info, uint32_t end) noexcept {
    set_payload(info, end, end);
    return true;
}

// TCP at [off, end). `partial` is set for a first fragment: the fragment boundary may cut
// the header, which is not an error of this packet (reassembly sees the whole one).
bool decode_tcp(
        const uint8_t* frame, uint32_t off, uint32_t end, bool partial, PacketInfo& info) noexcept {
    const uint32_t avail = end - off;
    const uint8_t* th = frame + off;
    if (avail >= 4) {
        info.src_port = load16(th);
        info.dst_port = load16(th + 2);
    }
    if (avail < kTcpMinHeaderLen) {
        return partial ? partial_header(info, end) : fail(info, Malformed::TcpTruncated);
    }
    info.tcp_seq = load32(th + 4);
    info.tcp_ack = load32(th + 8);
    info.tcp_flags = th[13];
    info.tcp_window = load16(th + 14);
    const uint32_t header_len = static_cast<uint32_t>(th[12] >> 4) * 4;
    if (header_len < kTcpMinHeaderLen) {
        return fail(info, Malformed::TcpBadDataOffset);
    }
    if (header_len > avail) {
        return partial ? partial_header(info, end) : fail(info, Malformed::TcpTruncated);
    }
    if (!options_well_formed(
                th + kTcpMinHeaderLen, header_len - kTcpMinHeaderLen, kTcpOptEol, kTcpOptNop)) {
        return fail(info, Malformed::TcpBadOptions);
    }
    set_payload(info, off + header_len, end);
    return true;
}

// UDP at [off, end). In a first fragment the UDP length covers the whole datagram, so it
// can exceed what this fragment carries.
bool decode_udp(
        const uint8_t* frame, uint32_t off, uint32_t end, bool partial, PacketInfo& info) noexcept {
    const uint32_t avail = end - off;
    const uint8_t* uh = frame + off;
    if (avail >= 4) {
        info.src_port = load16(uh);
        info.dst_port = load16(uh + 2);
    }
    if (avail < kUdpHeaderLen) {
        return partial ? partial_header(info, end) : fail(info, Malformed::UdpTruncated);
    }
    const uint32_t udp_len = load16(uh + 4);
    if (udp_len < kUdpHeaderLen) {
        return fail(info, Malformed::UdpBadLength);
    }
    if (udp_len > avail) {
        if (!partial) {
            return fail(info, Malformed::UdpBadLength);
        }
        set_payload(info, off + kUdpHeaderLen, end);
        return true;
    }
    // Bytes after the UDP length (inside the IP datagram) belong to no one: not payload.
    set_payload(info, off + kUdpHeaderLen, off + udp_len);
    return true;
}

// L4 at [off, end): TCP and UDP are parsed; for anything else (ICMP, ICMPv6, ESP, no next
// header, unknown numbers) the payload is simply the rest of the datagram.
bool decode_l4(const uint8_t* frame, uint32_t off, uint32_t end, PacketInfo& info) noexcept {
    info.l4_offset = static_cast<uint16_t>(off);
    if (info.fragment && !info.first_fragment) {
        set_payload(info, off, end);
        return true;
    }
    const bool partial = info.fragment;
    switch (info.l4_proto) {
    case kProtoTcp:
        return decode_tcp(frame, off, end, partial, info);
    case kProtoUdp:
        return decode_udp(frame, off, end, partial, info);
    default:
        set_payload(info, off, end);
        return true;
    }
}

bool decode_ipv4(const uint8_t* frame, uint32_t off, uint32_t len, PacketInfo& info) noexcept {
    const uint32_t captured = len - off;
    const uint8_t* ip = frame + off;
    if (captured < kIpv4MinHeaderLen) {
        return fail(info, Malformed::Ipv4Truncated);
    }
    if ((ip[0] >> 4) != 4) {
        return fail(info, Malformed::Ipv4BadVersion);
    }
    info.ip_version = 4;
    std::memcpy(info.src.data(), ip + 12, 4);
    std::memcpy(info.dst.data(), ip + 16, 4);
    const uint32_t header_len = static_cast<uint32_t>(ip[0] & 0x0f) * 4;
    if (header_len < kIpv4MinHeaderLen) {
        return fail(info, Malformed::Ipv4BadHeaderLength);
    }
    const uint32_t total_len = load16(ip + 2);
    info.ip_len = total_len;
    if (total_len < header_len) {
        return fail(info, Malformed::Ipv4BadTotalLength);
    }
    if (header_len > captured) {
        return fail(info, Malformed::Ipv4Truncated);
    }
    if (!options_well_formed(
                ip + kIpv4MinHeaderLen, header_len - kIpv4MinHeaderLen, kIpv4OptEol, kIpv4OptNop)) {
        return fail(info, Malformed::Ipv4BadOptions);
    }
    info.l4_proto = ip[9];
    const uint16_t frag = load16(ip + 6);
    const uint32_t frag_offset = static_cast<uint32_t>(frag & kIpv4FragOffsetMask) * 8;
    const bool more = (frag & kIpv4MoreFragments) != 0;
    if (more || frag_offset != 0) {
        info.fragment = true;
        info.first_fragment = frag_offset == 0;
        info.frag_id = load16(ip + 4);
        info.frag_offset = frag_offset;
        info.frag_more = more;
    }
    if (total_len > captured) {
        return fail(info, Malformed::Ipv4Truncated);
    }
    return decode_l4(frame, off + header_len, off + total_len, info);
}

bool decode_ipv6(const uint8_t* frame, uint32_t off, uint32_t len, PacketInfo& info) noexcept {
    const uint32_t captured = len - off;
    const uint8_t* ip = frame + off;
    if (captured < kIpv6HeaderLen) {
        return fail(info, Malformed::Ipv6Truncated);
    }
    if ((ip[0] >> 4) != 6) {
        return fail(info, Malformed::Ipv6BadVersion);
    }
    info.ip_version = 6;
    std::memcpy(info.src.data(), ip + 8, 16);
    std::memcpy(info.dst.data(), ip + 24, 16);
    const uint32_t payload_len = load16(ip + 4);
    uint8_t next = ip[6];
    info.ip_len = kIpv6HeaderLen + payload_len;
    // Payload length 0 with Hop-by-Hop first announces a jumbogram (RFC 2675). No Ethernet
    // link carries one, so it is refused rather than half supported.
    if (payload_len == 0 && next == kIpv6HopByHop) {
        return fail(info, Malformed::Ipv6BadPayloadLength);
    }
    if (info.ip_len > captured) {
        return fail(info, Malformed::Ipv6Truncated);
    }

    const uint32_t end = off + info.ip_len;
    uint32_t pos = off + kIpv6HeaderLen;
    unsigned walked = 0;
    while (is_ipv6_extension(next)) {
        if (walked == kMaxIpv6Extensions) {
            return fail(info, Malformed::Ipv6TooManyExtensions);
        }
        ++walked;
        if (end - pos < 2) {
            return fail(info, Malformed::Ipv6ExtensionTruncated);
        }
        const uint8_t* ext = frame + pos;
        const uint32_t ext_len = ipv6_extension_len(next, ext);
        if (ext_len > end - pos) {
            return fail(info, Malformed::Ipv6ExtensionTruncated);
        }
        if (next == kIpv6Fragment) {
            const uint16_t frag = load16(ext + 2);
            const uint32_t frag_offset = frag & 0xfff8u;
            const bool more = (frag & 1u) != 0;
            // An atomic fragment (offset 0, no more) is a whole packet (RFC 6946).
            if (more || frag_offset != 0) {
                info.fragment = true;
                info.first_fragment = frag_offset == 0;
                info.frag_id = load32(ext + 4);
                info.frag_offset = frag_offset;
                info.frag_more = more;
            }
        }
        next = ext[0];
        pos += ext_len;
        if (info.fragment && !info.first_fragment) {
            // The rest is fragment data: whatever it looks like, it is not a header here.
            break;
        }
    }
    info.l4_proto = next;
    return decode_l4(frame, pos, end, info);
}

// One's complement sums (RFC 1071) are kept in the machine's byte order: the sum of
// byte-swapped words is the byte-swapped sum (RFC 1071 2(B)), so the words are added as
// native 64-bit loads with the carries added back, and only the folded result is swapped,
// when it is compared with a stored field (a comparison with 0xffff needs no swap at all).
// exfiltap-bench ack-10k under callgrind: the checksums of a pure ACK took 322 instructions
// with a fold and a swap after each part of the sum.
uint64_t add_carry(uint64_t acc, uint64_t word) noexcept {
    acc += word;
    return acc + (acc < word ? 1 : 0);
}

// Adds the 16-bit words at p[0, n) to the native-order sum `acc`; p is at an even offset of
// the checksummed bytes, and an odd last byte is padded with zero.
uint64_t add_words(uint64_t acc, const uint8_t* p, uint32_t n) noexcept {
    uint32_t i = 0;
#if defined(__SSE2__) && defined(__x86_64__)
    // Long spans (payloads) 32 bytes a step: each 32-bit word widened to a 64-bit lane, so
    // no lane can carry (2^16 and 2^32 are 1 modulo 0xffff: any word width gives the same
    // folded sum) and the two accumulators do not wait on each other or on a carry, as the
    // 64-bit loop below does at every step. exfiltap-bench large: ~860 instructions of the
    // ~7,400 per packet were this loop.
    if (n >= 64) {
        const __m128i zero = _mm_setzero_si128();
        __m128i low = zero;
        __m128i high = zero;
        for (; i + 32 <= n; i += 32) {
            const __m128i a = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + i));
            const __m128i b = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + i + 16));
            low = _mm_add_epi64(low, _mm_unpacklo_epi32(a, zero));
            high = _mm_add_epi64(high, _mm_unpackhi_epi32(a, zero));
            low = _mm_add_epi64(low, _mm_unpacklo_epi32(b, zero));
            high = _mm_add_epi64(high, _mm_unpackhi_epi32(b, zero));
        }
        // Each lane holds at most n / 16 words below 2^32: far from overflowing.
        const __m128i both = _mm_add_epi64(low, high);
        const auto first = static_cast<uint64_t>(_mm_cvtsi128_si64(both));
        const auto second =
                static_cast<uint64_t>(_mm_cvtsi128_si64(_mm_unpackhi_epi64(both, both)));
        acc = add_carry(add_carry(acc, first), second);
    }
#endif
    for (; i + 8 <= n; i += 8) {
        uint64_t word = 0;
        std::memcpy(&word, p + i, sizeof(word));
        acc = add_carry(acc, word);
    }
    uint64_t tail = 0;
    if (i + 4 <= n) {
        uint32_t word = 0;
        std::memcpy(&word, p + i, sizeof(word));
        tail += word;
        i += 4;
    }
    if (i + 2 <= n) {
        uint16_t word = 0;
        std::memcpy(&word, p + i, sizeof(word));
        tail += word;
        i += 2;
    }
    if (i < n) {
        // The first byte of a big-endian word is its high byte.
        tail += std::endian::native == std::endian::little ? uint64_t{p[i]} : uint64_t{p[i]} << 8;
    }
    return add_carry(acc, tail);
}

// A 16-bit value in network order as the native-order sum holds it.
uint64_t native_word(uint32_t value) noexcept {
    const auto v = static_cast<uint16_t>(value);
    return std::endian::native == std::endian::little ? __builtin_bswap16(v) : v;
}

// The native-order sum folded to 16 bits, in network order (the form of a stored field).
uint16_t fold(uint64_t acc) noexcept {
    acc = (acc & 0xffffffffU) + (acc >> 32);
    acc = (acc & 0xffff) + (acc >> 16);
    acc = (acc & 0xffff) + (acc >> 16);
    acc = (acc & 0xffff) + (acc >> 16);
    const auto folded = static_cast<uint16_t>(acc);
    return std::endian::native == std::endian::little ? __builtin_bswap16(folded) : folded;
}

// The destination the sender put in the pseudo-header: with a routing header that still has
// segments left, the final destination is in the routing header (RFC 8200 8.1, RFC 8754).
const uint8_t* ipv6_pseudo_destination(const uint8_t* frame, const PacketInfo& info) noexcept {
    const uint8_t* ip = frame + info.l3_offset;
    const uint8_t* final_dst = ip + 24;
    uint8_t next = ip[6];
    uint32_t pos = info.l3_offset + kIpv6HeaderLen;
    const uint32_t l4 = info.l4_offset;
    for (unsigned walked = 0; walked < kMaxIpv6Extensions && is_ipv6_extension(next); ++walked) {
        if (pos + 2 > l4) {
            break;
        }
        const uint8_t* ext = frame + pos;
        const uint32_t ext_len = ipv6_extension_len(next, ext);
        if (ext_len > l4 - pos) {
            break;
        }
        if (next == kIpv6Routing && ext_len >= 24 && ext[3] != 0) {
            const uint8_t type = ext[2];
            const uint32_t addresses = (ext_len - 8) / 16;
            if (type == 0) {
                // Type 0 lists the hops in order: the last one is the final destination.
                final_dst = ext + 8 + (addresses - 1) * 16;
            } else if (type == 2 || type == 4) {
                // Type 2 holds the home address; SRH lists segments in reverse order.
                final_dst = ext + 8;
            }
        }
        next = ext[0];
        pos += ext_len;
    }
    return final_dst;
}

// Where the L4 checksum field sits and what the checksum covers; false when the packet is
// not one whose checksum can be judged (not TCP or UDP, a fragment, not decoded, cut).
struct L4Span {
    uint32_t begin = 0;
    uint32_t len = 0;
    uint32_t checksum_at = 0;
};

bool l4_span(const uint8_t* frame, uint32_t len, const PacketInfo& info, L4Span& span) noexcept {
    if (frame == nullptr || info.malformed != Malformed::None || info.fragment) {
        return false;
    }
    if (info.ip_version != 4 && info.ip_version != 6) {
        return false;
    }
    const uint32_t ip_end = static_cast<uint32_t>(info.l3_offset) + info.ip_len;
    const uint32_t begin = info.l4_offset;
    const uint32_t l3_min = info.ip_version == 4 ? kIpv4MinHeaderLen : kIpv6HeaderLen;
    if (begin < info.l3_offset + l3_min || begin > ip_end || ip_end > len) {
        return false;
    }
    span.begin = begin;
    if (info.l4_proto == kProtoTcp) {
        span.len = ip_end - begin;
        span.checksum_at = begin + 16;
        if (span.len < kTcpMinHeaderLen) {
            return false;
        }
    } else if (info.l4_proto == kProtoUdp) {
        if (ip_end - begin < kUdpHeaderLen) {
            return false;
        }
        span.len = load16(frame + begin + 4);
        span.checksum_at = begin + 6;
        if (span.len < kUdpHeaderLen || span.len > ip_end - begin) {
            return false;
        }
    } else {
        return false;
    }
    return true;
}

uint64_t pseudo_header_sum(const uint8_t* frame, const PacketInfo& info, uint32_t l4_len) noexcept {
    const uint8_t* ip = frame + info.l3_offset;
    uint64_t acc = 0;
    if (info.ip_version == 4) {
        acc = add_words(acc, ip + 12, 8);
    } else {
        acc = add_words(acc, ip + 8, 16);
        acc = add_words(acc, ipv6_pseudo_destination(frame, info), 16);
    }
    return add_carry(
            acc, native_word(l4_len >> 16) + native_word(l4_len) + native_word(info.l4_proto));
}

}  // namespace

bool is_ipv6_extension(uint8_t next) noexcept {
    switch (next) {
    case kIpv6HopByHop:
    case kIpv6Routing:
    case kIpv6Fragment:
    case kIpv6Ah:
    case kIpv6DestOptions:
    case kIpv6Mobility:
    case kIpv6Hip:
    case kIpv6Shim6:
        return true;
    default:
        return false;
    }
}

uint32_t ipv6_extension_len(uint8_t type, const uint8_t* p) noexcept {
    if (type == kIpv6Fragment) {
        return kIpv6FragmentHeaderLen;
    }
    if (type == kIpv6Ah) {
        return (static_cast<uint32_t>(p[1]) + 2) * 4;
    }
    return (static_cast<uint32_t>(p[1]) + 1) * 8;
}

std::string_view malformed_name(Malformed reason) noexcept {
    switch (reason) {
    case Malformed::None:
        return "none";
    case Malformed::EthernetTruncated:
        return "ethernet_truncated";
    case Malformed::VlanTruncated:
        return "vlan_truncated";
    case Malformed::TooManyVlanTags:
        return "too_many_vlan_tags";
    case Malformed::Ipv4Truncated:
        return "ipv4_truncated";
    case Malformed::Ipv4BadVersion:
        return "ipv4_bad_version";
    case Malformed::Ipv4BadHeaderLength:
        return "ipv4_bad_header_length";
    case Malformed::Ipv4BadTotalLength:
        return "ipv4_bad_total_length";
    case Malformed::Ipv4BadOptions:
        return "ipv4_bad_options";
    case Malformed::Ipv6Truncated:
        return "ipv6_truncated";
    case Malformed::Ipv6BadVersion:
        return "ipv6_bad_version";
    case Malformed::Ipv6BadPayloadLength:
        return "ipv6_bad_payload_length";
    case Malformed::Ipv6ExtensionTruncated:
        return "ipv6_extension_truncated";
    case Malformed::Ipv6TooManyExtensions:
        return "ipv6_too_many_extensions";
    case Malformed::TcpTruncated:
        return "tcp_truncated";
    case Malformed::TcpBadDataOffset:
        return "tcp_bad_data_offset";
    case Malformed::TcpBadOptions:
        return "tcp_bad_options";
    case Malformed::UdpTruncated:
        return "udp_truncated";
    case Malformed::UdpBadLength:
        return "udp_bad_length";
    case Malformed::Count:
        break;
    }
    return "unknown";
}

bool decode_packet(const uint8_t* frame, uint32_t len, PacketInfo& info) noexcept {
    info = PacketInfo{};
    if (frame == nullptr || len < kEthernetHeaderLen) {
        return fail(info, Malformed::EthernetTruncated);
    }

    // L2: any mix of the three tag types, outermost first.
    uint16_t ether_type = load16(frame + 12);
    uint32_t off = kEthernetHeaderLen;
    while (ether_type == kTpid8021Q || ether_type == kTpid8021ad || ether_type == kTpidQinQLegacy) {
        if (info.vlan_count == kMaxVlanTags) {
            return fail(info, Malformed::TooManyVlanTags);
        }
        if (len - off < kVlanTagLen) {
            return fail(info, Malformed::VlanTruncated);
        }
        info.vlan[info.vlan_count++] = load16(frame + off) & 0x0fff;
        ether_type = load16(frame + off + 2);
        off += kVlanTagLen;
    }

    // L3 and L4.
    if (ether_type == kEtherTypeIpv4) {
        info.l3_offset = static_cast<uint16_t>(off);
        return decode_ipv4(frame, off, len, info);
    }
    if (ether_type == kEtherTypeIpv6) {
        info.l3_offset = static_cast<uint16_t>(off);
        return decode_ipv6(frame, off, len, info);
    }
    return true;
}

bool l4_checksum_ok(const uint8_t* frame, uint32_t len, const PacketInfo& info) noexcept {
    L4Span span;
    if (!l4_span(frame, len, info, span)) {
        return false;
    }
    const uint16_t stored = load16(frame + span.checksum_at);
    if (info.l4_proto == kProtoUdp && stored == 0) {
        // IPv4 UDP may go without a checksum; IPv6 UDP must carry one (RFC 8200 8.1).
        return info.ip_version == 4;
    }
    return fold(add_words(pseudo_header_sum(frame, info, span.len), frame + span.begin, span.len))
            == 0xffff;
}

bool l4_checksum_is_offload_placeholder(
        const uint8_t* frame, uint32_t len, const PacketInfo& info) noexcept {
    L4Span span;
    if (!l4_span(frame, len, info, span)) {
        return false;
    }
    const uint16_t stored = load16(frame + span.checksum_at);
    if (stored == 0) {
        // UDP over IPv4 with 0 has no checksum at all, which is not a placeholder.
        return info.l4_proto == kProtoTcp;
    }
    // Linux (CHECKSUM_PARTIAL), the BSDs and NDIS store the folded pseudo-header sum itself,
    // not complemented; the NIC adds the segment and complements. The complement of it is
    // not accepted: every offloaded segment in the shared captures uses the plain sum.
    return stored == fold(pseudo_header_sum(frame, info, span.len));
}

bool ipv4_header_checksum_ok(const uint8_t* frame, uint32_t len, const PacketInfo& info) noexcept {
    if (frame == nullptr || info.ip_version != 4) {
        return false;
    }
    const uint32_t off = info.l3_offset;
    if (off >= len || len - off < kIpv4MinHeaderLen) {
        return false;
    }
    const uint32_t header_len = static_cast<uint32_t>(frame[off] & 0x0f) * 4;
    if (header_len < kIpv4MinHeaderLen || header_len > len - off) {
        return false;
    }
    return fold(add_words(0, frame + off, header_len)) == 0xffff;
}

}  // namespace exfiltap::dataplane
