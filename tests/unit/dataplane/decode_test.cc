#include "dataplane/decode.h"

#include <algorithm>
#include <array>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include <gtest/gtest.h>

#include "tests/unit/dataplane/packet_builder.h"

namespace exfiltap::dataplane {
namespace {

namespace fs = std::filesystem;
using test::Bytes;
using test::PacketBuilder;

const test::Ipv4Address kClient4 = test::ipv4(10, 20, 1, 15);
const test::Ipv4Address kServer4 = test::ipv4(203, 0, 113, 80);
const test::Ipv6Address kClient6 = test::ipv6(0xfd00, 0x20, 0x15);
const test::Ipv6Address kServer6 = test::ipv6(0x2001, 0xdb8, 0x80);

constexpr uint32_t kEth = 14;

Bytes text(const char* s) {
    return Bytes(s, s + std::strlen(s));
}

// A copy on the heap of exactly `len` bytes, so AddressSanitizer sees any read past it
// (a std::vector may hold spare capacity behind its size).
class ExactBuffer {
public:
    ExactBuffer(const uint8_t* data, size_t len)
        : bytes_(std::make_unique<uint8_t[]>(len)), len_(static_cast<uint32_t>(len)) {
        if (len != 0) {
            std::memcpy(bytes_.get(), data, len);
        }
    }
    explicit ExactBuffer(const Bytes& b) : ExactBuffer(b.data(), b.size()) {}

    const uint8_t* data() const { return bytes_.get(); }
    uint32_t size() const { return len_; }

private:
    std::unique_ptr<uint8_t[]> bytes_;
    uint32_t len_;
};

bool decode(const Bytes& frame, PacketInfo& info) {
    return decode_packet(frame.data(), static_cast<uint32_t>(frame.size()), info);
}

template <size_t N>
bool starts_with(const std::array<uint8_t, 16>& addr, const std::array<uint8_t, N>& expected) {
    return std::equal(expected.begin(), expected.end(), addr.begin());
}

// The 28 option bytes of IHL 12: Router Alert, NOP, Record Route with room for 5 hops.
Bytes ipv4_options_ihl12() {
    Bytes o = {148, 4, 0, 0, 1, 7, 23, 4};
    o.resize(28, 0);
    return o;
}

// 40 bytes of TCP options (data offset 15): MSS, SACK permitted, timestamps, NOP, window
// scale, MD5 signature, NOP, NOP.
Bytes tcp_options_40() {
    Bytes o = {2, 4, 0x05, 0xb4, 4, 2, 8, 10, 0, 0, 0, 1, 0, 0, 0, 0, 1, 3, 3, 7, 19, 18};
    o.resize(o.size() + 16, 0x5a);
    o.push_back(1);
    o.push_back(1);
    return o;
}

// The TCP segment (header and payload) of a frame built without tags.
Bytes tcp_segment_bytes(bool v6) {
    PacketBuilder b;
    if (v6) {
        b.ipv6(kClient6, kServer6);
    } else {
        b.ipv4(kClient4, kServer4);
    }
    const Bytes frame =
            b.tcp(52044, 80, kTcpAck | kTcpPsh).payload(text("card=6011659246077835")).build();
    const size_t l4 = kEth + (v6 ? 40 : 20);
    return Bytes(frame.begin() + static_cast<std::ptrdiff_t>(l4), frame.end());
}

Bytes plain_ipv4_tcp() {
    return PacketBuilder()
            .ipv4(kClient4, kServer4)
            .tcp(40000, 443, kTcpAck | kTcpPsh)
            .tcp_sequence(111, 222)
            .tcp_window(512)
            .payload(text("hello"))
            .build();
}

Bytes ipv6_chain_tcp() {
    return PacketBuilder()
            .ipv6(kClient6, kServer6)
            .ipv6_extension(test::kExtHopByHop, test::ipv6_padded_options(8))
            .ipv6_extension(test::kExtDestOptions, test::ipv6_padded_options(16))
            .ipv6_extension(test::kExtRouting, test::ipv6_srh({kServer6}, 0))
            .ipv6_extension(test::kExtDestOptions, test::ipv6_padded_options(8))
            .tcp(52044, 80, kTcpAck | kTcpPsh)
            .payload(text("POST /submit"))
            .build();
}

// --- headers -------------------------------------------------------------------------------

TEST(DecodeTest, DecodesPlainIpv4Tcp) {
    const Bytes frame = plain_ipv4_tcp();
    PacketInfo info;

    ASSERT_TRUE(decode(frame, info));

    EXPECT_EQ(info.malformed, Malformed::None);
    EXPECT_EQ(info.ip_version, 4);
    EXPECT_EQ(info.l4_proto, kProtoTcp);
    EXPECT_TRUE(starts_with(info.src, kClient4));
    EXPECT_TRUE(starts_with(info.dst, kServer4));
    EXPECT_EQ(info.src[4], 0);
    EXPECT_EQ(info.src_port, 40000);
    EXPECT_EQ(info.dst_port, 443);
    EXPECT_EQ(info.tcp_seq, 111u);
    EXPECT_EQ(info.tcp_ack, 222u);
    EXPECT_EQ(info.tcp_flags, kTcpAck | kTcpPsh);
    EXPECT_EQ(info.tcp_window, 512);
    EXPECT_EQ(info.l3_offset, kEth);
    EXPECT_EQ(info.l4_offset, kEth + 20);
    EXPECT_EQ(info.payload_offset, kEth + 40);
    EXPECT_EQ(info.payload_len, 5u);
    EXPECT_EQ(info.ip_len, 45u);
    EXPECT_EQ(info.vlan_count, 0);
    EXPECT_FALSE(info.fragment);
}

TEST(DecodeTest, ReadsPortsBehindIpv4Options) {
    const Bytes frame = PacketBuilder()
                                .ipv4(kClient4, kServer4)
                                .ipv4_options(ipv4_options_ihl12())
                                .tcp(53900, 80, kTcpSyn)
                                .tcp_options(tcp_options_40())
                                .payload(text("SSN 293-24-8826"))
                                .build();
    ASSERT_EQ(frame[kEth] & 0x0f, 12);
    ASSERT_EQ(frame[kEth + 48 + 12] >> 4, 15);
    PacketInfo info;

    ASSERT_TRUE(decode(frame, info));

    EXPECT_EQ(info.src_port, 53900);
    EXPECT_EQ(info.dst_port, 80);
    EXPECT_EQ(info.tcp_flags, kTcpSyn);
    EXPECT_EQ(info.l4_offset, kEth + 48);
    EXPECT_EQ(info.payload_offset, kEth + 48 + 60);
    EXPECT_EQ(info.payload_len, 15u);
}

TEST(DecodeTest, ReadsSingle8021QTag) {
    const Bytes frame = PacketBuilder().vlan(6).ipv4(kClient4, kServer4).udp(1, 2).build();
    PacketInfo info;

    ASSERT_TRUE(decode(frame, info));

    EXPECT_EQ(info.vlan_count, 1);
    EXPECT_EQ(info.vlan[0], 6);
    EXPECT_EQ(info.l3_offset, kEth + 4);
    EXPECT_EQ(info.l4_proto, kProtoUdp);
}

TEST(DecodeTest, Reads8021adOuterAnd8021QInnerTags) {
    const Bytes frame = PacketBuilder()
                                .vlan(300, test::kTpid8021ad)
                                .vlan(42)
                                .ipv4(kClient4, kServer4)
                                .tcp(1000, 80, kTcpAck)
                                .build();
    PacketInfo info;

    ASSERT_TRUE(decode(frame, info));

    EXPECT_EQ(info.vlan_count, 2);
    EXPECT_EQ(info.vlan[0], 300);
    EXPECT_EQ(info.vlan[1], 42);
    EXPECT_EQ(info.dst_port, 80);
}

TEST(DecodeTest, Reads9100OuterTag) {
    const Bytes frame = PacketBuilder()
                                .vlan(7, test::kTpid9100)
                                .vlan(8)
                                .ipv4(kClient4, kServer4)
                                .tcp(1000, 80, kTcpAck)
                                .build();
    PacketInfo info;

    ASSERT_TRUE(decode(frame, info));

    EXPECT_EQ(info.vlan_count, 2);
    EXPECT_EQ(info.vlan[0], 7);
    EXPECT_EQ(info.vlan[1], 8);
}

TEST(DecodeTest, ReadsThreeStacked8021QTags) {
    const Bytes frame = PacketBuilder()
                                .vlan(30)
                                .vlan(20)
                                .vlan(10)
                                .ipv4(kClient4, kServer4)
                                .tcp(1000, 80, kTcpAck)
                                .build();
    PacketInfo info;

    ASSERT_TRUE(decode(frame, info));

    EXPECT_EQ(info.vlan_count, 3);
    EXPECT_EQ(info.vlan[0], 30);
    EXPECT_EQ(info.vlan[1], 20);
    EXPECT_EQ(info.vlan[2], 10);
    EXPECT_EQ(info.l3_offset, kEth + 12);
    EXPECT_EQ(info.dst_port, 80);
}

TEST(DecodeTest, ReadsPriorityTagsWithVidZero) {
    // PCP 7 and DEI set: only the 12 VID bits are the id.
    const Bytes frame = PacketBuilder()
                                .vlan(0xf000)
                                .vlan(0x0000)
                                .ipv4(kClient4, kServer4)
                                .tcp(1000, 80, kTcpAck)
                                .build();
    PacketInfo info;

    ASSERT_TRUE(decode(frame, info));

    EXPECT_EQ(info.vlan_count, 2);
    EXPECT_EQ(info.vlan[0], 0);
    EXPECT_EQ(info.vlan[1], 0);
    EXPECT_EQ(info.ip_version, 4);
    EXPECT_EQ(info.dst_port, 80);
}

TEST(DecodeTest, AcceptsMaxVlanTags) {
    PacketBuilder b;
    for (unsigned i = 0; i < kMaxVlanTags; ++i) {
        b.vlan(static_cast<uint16_t>(100 + i));
    }
    const Bytes frame = b.ipv4(kClient4, kServer4).udp(1, 2).build();
    PacketInfo info;

    ASSERT_TRUE(decode(frame, info));

    EXPECT_EQ(info.vlan_count, kMaxVlanTags);
    EXPECT_EQ(info.vlan[kMaxVlanTags - 1], 100 + kMaxVlanTags - 1);
}

TEST(DecodeTest, WalksIpv6ExtensionChainToTcp) {
    const Bytes frame = ipv6_chain_tcp();
    PacketInfo info;

    ASSERT_TRUE(decode(frame, info));

    EXPECT_EQ(info.ip_version, 6);
    EXPECT_EQ(info.l4_proto, kProtoTcp);
    EXPECT_EQ(info.src, kClient6);
    EXPECT_EQ(info.dst, kServer6);
    EXPECT_EQ(info.l4_offset, kEth + 40 + 8 + 16 + 24 + 8);
    EXPECT_EQ(info.src_port, 52044);
    EXPECT_EQ(info.dst_port, 80);
    EXPECT_EQ(info.payload_len, 12u);
    EXPECT_EQ(info.ip_len, frame.size() - kEth);
}

TEST(DecodeTest, WalksIpv6AuthenticationHeader) {
    const Bytes frame = PacketBuilder()
                                .ipv6(kClient6, kServer6)
                                .ipv6_extension(test::kExtAh, test::ipv6_ah(0x100, 1))
                                .l4_raw(kProtoIcmpv6, {128, 0, 0, 0, 0, 1, 0, 1})
                                .build();
    PacketInfo info;

    ASSERT_TRUE(decode(frame, info));

    EXPECT_EQ(info.l4_proto, kProtoIcmpv6);
    EXPECT_EQ(info.l4_offset, kEth + 40 + 24);
    EXPECT_EQ(info.src_port, 0);
}

TEST(DecodeTest, ReadsIpv6FirstFragment) {
    const Bytes frame =
            PacketBuilder()
                    .ipv6(kClient6, kServer6)
                    .ipv6_extension(test::kExtFragment, test::ipv6_fragment(0, true, 0xdeadbeef))
                    .tcp(52044, 8080, kTcpAck)
                    .payload(Bytes(32, 'A'))
                    .build();
    PacketInfo info;

    ASSERT_TRUE(decode(frame, info));

    EXPECT_TRUE(info.fragment);
    EXPECT_TRUE(info.first_fragment);
    EXPECT_TRUE(info.frag_more);
    EXPECT_EQ(info.frag_id, 0xdeadbeefu);
    EXPECT_EQ(info.frag_offset, 0u);
    EXPECT_EQ(info.l4_proto, kProtoTcp);
    EXPECT_EQ(info.src_port, 52044);
    EXPECT_EQ(info.dst_port, 8080);
}

TEST(DecodeTest, SkipsL4OfIpv6NonFirstFragment) {
    const Bytes frame =
            PacketBuilder()
                    .ipv6(kClient6, kServer6)
                    .ipv6_extension(test::kExtFragment, test::ipv6_fragment(1232, false, 77))
                    .l4_raw(kProtoTcp, tcp_segment_bytes(true))
                    .build();
    PacketInfo info;

    ASSERT_TRUE(decode(frame, info));

    EXPECT_TRUE(info.fragment);
    EXPECT_FALSE(info.first_fragment);
    EXPECT_FALSE(info.frag_more);
    EXPECT_EQ(info.frag_offset, 1232u);
    EXPECT_EQ(info.frag_id, 77u);
    EXPECT_EQ(info.l4_proto, kProtoTcp);
    EXPECT_EQ(info.src_port, 0);
    EXPECT_EQ(info.tcp_flags, 0);
    EXPECT_EQ(info.l4_offset, kEth + 48);
    EXPECT_EQ(info.payload_offset, kEth + 48);
    EXPECT_EQ(info.payload_len, frame.size() - kEth - 48);
}

TEST(DecodeTest, TreatsIpv6AtomicFragmentAsWholePacket) {
    const Bytes frame =
            PacketBuilder()
                    .ipv6(kClient6, kServer6)
                    .ipv6_extension(test::kExtFragment, test::ipv6_fragment(0, false, 5))
                    .tcp(52044, 80, kTcpAck)
                    .build();
    PacketInfo info;

    ASSERT_TRUE(decode(frame, info));

    EXPECT_FALSE(info.fragment);
    EXPECT_EQ(info.dst_port, 80);
}

TEST(DecodeTest, DoesNotParseUnknownNextHeaderAsTcp) {
    const Bytes frame = PacketBuilder()
                                .ipv6(kClient6, kServer6)
                                .ipv6_extension(test::kExtDestOptions, test::ipv6_padded_options(8))
                                .l4_raw(253, tcp_segment_bytes(true))
                                .build();
    PacketInfo info;

    ASSERT_TRUE(decode(frame, info));

    EXPECT_EQ(info.l4_proto, 253);
    EXPECT_EQ(info.src_port, 0);
    EXPECT_EQ(info.dst_port, 0);
    EXPECT_EQ(info.tcp_flags, 0);
    EXPECT_EQ(info.tcp_seq, 0u);
}

TEST(DecodeTest, StopsIpv6WalkAtEsp) {
    const Bytes frame = PacketBuilder()
                                .ipv6(kClient6, kServer6)
                                .l4_raw(test::kExtEsp, tcp_segment_bytes(true))
                                .build();
    PacketInfo info;

    ASSERT_TRUE(decode(frame, info));

    EXPECT_EQ(info.l4_proto, test::kExtEsp);
    EXPECT_EQ(info.src_port, 0);
}

TEST(DecodeTest, StopsIpv6WalkAtNoNextHeader) {
    const Bytes frame = PacketBuilder()
                                .ipv6(kClient6, kServer6)
                                .ipv6_extension(test::kExtDestOptions, test::ipv6_padded_options(8))
                                .build();
    PacketInfo info;

    ASSERT_TRUE(decode(frame, info));

    EXPECT_EQ(info.l4_proto, test::kExtNoNext);
    EXPECT_EQ(info.payload_len, 0u);
}

TEST(DecodeTest, DecodesIpv4Udp) {
    const Bytes frame =
            PacketBuilder().ipv4(kClient4, kServer4).udp(5353, 53).payload(text("query")).build();
    PacketInfo info;

    ASSERT_TRUE(decode(frame, info));

    EXPECT_EQ(info.l4_proto, kProtoUdp);
    EXPECT_EQ(info.src_port, 5353);
    EXPECT_EQ(info.dst_port, 53);
    EXPECT_EQ(info.payload_offset, kEth + 28);
    EXPECT_EQ(info.payload_len, 5u);
}

TEST(DecodeTest, DecodesIpv6Udp) {
    const Bytes frame =
            PacketBuilder().ipv6(kClient6, kServer6).udp(5353, 53).payload(text("query")).build();
    PacketInfo info;

    ASSERT_TRUE(decode(frame, info));

    EXPECT_EQ(info.l4_proto, kProtoUdp);
    EXPECT_EQ(info.dst_port, 53);
    EXPECT_EQ(info.payload_offset, kEth + 48);
    EXPECT_EQ(info.payload_len, 5u);
    EXPECT_EQ(info.ip_len, 40u + 13u);
}

TEST(DecodeTest, BoundsUdpPayloadByUdpLength) {
    // UDP length 12 inside an IP datagram that carries 10 more bytes after it.
    const Bytes frame = PacketBuilder()
                                .ipv4(kClient4, kServer4)
                                .l4_raw(kProtoUdp, {0, 1, 0, 2, 0, 12, 0, 0})
                                .payload(Bytes(10, 'x'))
                                .build();
    PacketInfo info;

    ASSERT_TRUE(decode(frame, info));

    EXPECT_EQ(info.payload_len, 4u);
}

TEST(DecodeTest, RecordsOnlyProtocolOfIcmp) {
    const Bytes frame = PacketBuilder()
                                .ipv4(kClient4, kServer4)
                                .l4_raw(kProtoIcmp, {8, 0, 0, 0, 0, 1, 0, 1})
                                .build();
    PacketInfo info;

    ASSERT_TRUE(decode(frame, info));

    EXPECT_EQ(info.l4_proto, kProtoIcmp);
    EXPECT_EQ(info.src_port, 0);
    EXPECT_EQ(info.dst_port, 0);
}

TEST(DecodeTest, PassesArpAsNonIp) {
    Bytes arp = {0, 1, 8, 0, 6, 4, 0, 1};
    arp.resize(28, 0);
    const Bytes frame = PacketBuilder().raw_l3(test::kEtherArp, arp).pad_to(60).build();
    PacketInfo info;

    ASSERT_TRUE(decode(frame, info));

    EXPECT_EQ(info.ip_version, 0);
    EXPECT_EQ(info.l4_proto, 0);
    EXPECT_EQ(info.payload_len, 0u);
}

TEST(DecodeTest, ReadsIpv4FirstFragmentPorts) {
    const Bytes frame = PacketBuilder()
                                .ipv4(kClient4, kServer4)
                                .ipv4_fragment(0x4bc5, 0, true)
                                .tcp(12345, 8080, kTcpAck)
                                .payload(Bytes(64, 'A'))
                                .build();
    PacketInfo info;

    ASSERT_TRUE(decode(frame, info));

    EXPECT_TRUE(info.fragment);
    EXPECT_TRUE(info.first_fragment);
    EXPECT_TRUE(info.frag_more);
    EXPECT_EQ(info.frag_id, 0x4bc5u);
    EXPECT_EQ(info.dst_port, 8080);
}

TEST(DecodeTest, AcceptsTinyIpv4FirstFragment) {
    // Eight bytes of a TCP header: a legal, if suspicious, first fragment.
    const Bytes seg = tcp_segment_bytes(false);
    const Bytes frame = PacketBuilder()
                                .ipv4(kClient4, kServer4)
                                .ipv4_fragment(9, 0, true)
                                .l4_raw(kProtoTcp, Bytes(seg.begin(), seg.begin() + 8))
                                .build();
    PacketInfo info;

    ASSERT_TRUE(decode(frame, info));

    EXPECT_TRUE(info.first_fragment);
    EXPECT_EQ(info.src_port, 52044);
    EXPECT_EQ(info.dst_port, 80);
}

TEST(DecodeTest, SkipsL4OfIpv4NonFirstFragment) {
    const Bytes frame = PacketBuilder()
                                .ipv4(kClient4, kServer4)
                                .ipv4_fragment(9, 1480, true)
                                .l4_raw(kProtoTcp, tcp_segment_bytes(false))
                                .build();
    PacketInfo info;

    ASSERT_TRUE(decode(frame, info));

    EXPECT_TRUE(info.fragment);
    EXPECT_FALSE(info.first_fragment);
    EXPECT_EQ(info.frag_offset, 1480u);
    EXPECT_EQ(info.src_port, 0);
    EXPECT_EQ(info.tcp_flags, 0);
    EXPECT_EQ(info.payload_offset, kEth + 20);
    EXPECT_EQ(info.payload_len, frame.size() - kEth - 20);
}

TEST(DecodeTest, IgnoresEthernetPaddingInTcpPayload) {
    const Bytes frame =
            PacketBuilder().ipv4(kClient4, kServer4).tcp(1000, 80, kTcpAck).pad_to(60).build();
    ASSERT_EQ(frame.size(), 60u);
    PacketInfo info;

    ASSERT_TRUE(decode(frame, info));

    EXPECT_EQ(info.ip_len, 40u);
    EXPECT_EQ(info.payload_len, 0u);
}

TEST(DecodeTest, IgnoresEthernetPaddingInUdpPayload) {
    const Bytes frame = PacketBuilder()
                                .vlan(5)
                                .ipv4(kClient4, kServer4)
                                .udp(1000, 53)
                                .payload({1, 2})
                                .pad_to(64)
                                .build();
    PacketInfo info;

    ASSERT_TRUE(decode(frame, info));

    EXPECT_EQ(info.payload_len, 2u);
}

TEST(DecodeTest, ClearsFieldsOfPreviousPacket) {
    PacketInfo info;
    ASSERT_TRUE(decode(plain_ipv4_tcp(), info));
    Bytes arp(42, 0);
    arp[12] = 0x08;
    arp[13] = 0x06;

    ASSERT_TRUE(decode(arp, info));

    EXPECT_EQ(info.ip_version, 0);
    EXPECT_EQ(info.src_port, 0);
    EXPECT_EQ(info.tcp_seq, 0u);
}

// --- malformed -----------------------------------------------------------------------------

TEST(DecodeMalformedTest, ReportsTruncatedEthernet) {
    const Bytes frame = plain_ipv4_tcp();
    PacketInfo info;

    EXPECT_FALSE(decode_packet(frame.data(), 13, info));
    EXPECT_EQ(info.malformed, Malformed::EthernetTruncated);
    EXPECT_FALSE(decode_packet(nullptr, 0, info));
    EXPECT_EQ(info.malformed, Malformed::EthernetTruncated);
}

TEST(DecodeMalformedTest, ReportsTruncatedVlanTag) {
    const Bytes frame = PacketBuilder().vlan(6).ipv4(kClient4, kServer4).udp(1, 2).build();
    PacketInfo info;

    EXPECT_FALSE(decode_packet(frame.data(), kEth + 3, info));
    EXPECT_EQ(info.malformed, Malformed::VlanTruncated);
    EXPECT_EQ(info.vlan_count, 0);
}

TEST(DecodeMalformedTest, ReportsTooManyVlanTags) {
    PacketBuilder b;
    for (unsigned i = 0; i <= kMaxVlanTags; ++i) {
        b.vlan(static_cast<uint16_t>(10 + i));
    }
    const Bytes frame = b.ipv4(kClient4, kServer4).udp(1, 2).build();
    PacketInfo info;

    EXPECT_FALSE(decode(frame, info));
    EXPECT_EQ(info.malformed, Malformed::TooManyVlanTags);
    EXPECT_EQ(info.vlan_count, kMaxVlanTags);
    EXPECT_EQ(info.vlan[0], 10);
}

TEST(DecodeMalformedTest, ReportsIpv4BadVersion) {
    Bytes frame = plain_ipv4_tcp();
    frame[kEth] = 0x65;
    PacketInfo info;

    EXPECT_FALSE(decode(frame, info));
    EXPECT_EQ(info.malformed, Malformed::Ipv4BadVersion);
}

TEST(DecodeMalformedTest, ReportsIpv4BadHeaderLengthAndKeepsAddresses) {
    Bytes frame = plain_ipv4_tcp();
    frame[kEth] = 0x44;
    PacketInfo info;

    EXPECT_FALSE(decode(frame, info));
    EXPECT_EQ(info.malformed, Malformed::Ipv4BadHeaderLength);
    EXPECT_EQ(info.ip_version, 4);
    EXPECT_TRUE(starts_with(info.src, kClient4));
    EXPECT_TRUE(starts_with(info.dst, kServer4));
}

TEST(DecodeMalformedTest, ReportsIpv4TotalLengthBelowHeaderLength) {
    Bytes frame = PacketBuilder()
                          .ipv4(kClient4, kServer4)
                          .ipv4_options(ipv4_options_ihl12())
                          .tcp(53900, 80, kTcpAck)
                          .build();
    test::put16(frame, kEth + 2, 40);  // below the 48 bytes of IHL 12
    PacketInfo info;

    EXPECT_FALSE(decode(frame, info));
    EXPECT_EQ(info.malformed, Malformed::Ipv4BadTotalLength);
}

TEST(DecodeMalformedTest, ReportsIpv4BadOptions) {
    Bytes options = {7, 0, 0, 0};  // Record Route with length 0
    const Bytes frame = PacketBuilder()
                                .ipv4(kClient4, kServer4)
                                .ipv4_options(options)
                                .tcp(1000, 80, kTcpAck)
                                .build();
    PacketInfo info;

    EXPECT_FALSE(decode(frame, info));
    EXPECT_EQ(info.malformed, Malformed::Ipv4BadOptions);
}

TEST(DecodeMalformedTest, ReportsIpv4OptionRunningPastHeader) {
    Bytes options = {1, 7, 9, 4};  // NOP, Record Route claiming 9 of 3 remaining bytes
    const Bytes frame = PacketBuilder()
                                .ipv4(kClient4, kServer4)
                                .ipv4_options(options)
                                .tcp(1000, 80, kTcpAck)
                                .build();
    PacketInfo info;

    EXPECT_FALSE(decode(frame, info));
    EXPECT_EQ(info.malformed, Malformed::Ipv4BadOptions);
}

TEST(DecodeMalformedTest, ReportsIpv4HeaderCutByCapture) {
    const Bytes frame = plain_ipv4_tcp();
    PacketInfo info;

    EXPECT_FALSE(decode_packet(frame.data(), kEth + 10, info));
    EXPECT_EQ(info.malformed, Malformed::Ipv4Truncated);
    EXPECT_EQ(info.l3_offset, kEth);
}

TEST(DecodeMalformedTest, ReportsIpv4OptionsCutByCapture) {
    const Bytes frame = PacketBuilder()
                                .ipv4(kClient4, kServer4)
                                .ipv4_options(ipv4_options_ihl12())
                                .tcp(53900, 80, kTcpAck)
                                .build();
    PacketInfo info;

    EXPECT_FALSE(decode_packet(frame.data(), kEth + 30, info));
    EXPECT_EQ(info.malformed, Malformed::Ipv4Truncated);
    EXPECT_TRUE(starts_with(info.src, kClient4));
}

TEST(DecodeMalformedTest, ReportsTruncatedIpv4DatagramAndKeepsAddresses) {
    // As in a real capture: total length 65,028, UDP length 65,008, 1,516 bytes captured.
    const Bytes full = PacketBuilder()
                               .ipv4(kClient4, kServer4)
                               .udp(4000, 5000)
                               .payload(Bytes(65000, 7))
                               .build();
    ASSERT_EQ(test::get16(full, kEth + 2), 65028);
    ASSERT_EQ(test::get16(full, kEth + 24), 65008);
    const ExactBuffer captured(full.data(), kEth + 1516);
    PacketInfo info;

    EXPECT_FALSE(decode_packet(captured.data(), captured.size(), info));
    EXPECT_EQ(info.malformed, Malformed::Ipv4Truncated);
    EXPECT_EQ(info.ip_version, 4);
    EXPECT_TRUE(starts_with(info.src, kClient4));
    EXPECT_TRUE(starts_with(info.dst, kServer4));
    EXPECT_EQ(info.ip_len, 65028u);
    EXPECT_EQ(info.l4_proto, kProtoUdp);
    EXPECT_EQ(info.payload_len, 0u);
}

TEST(DecodeMalformedTest, ReportsIpv6HeaderCutByCapture) {
    const Bytes frame = ipv6_chain_tcp();
    PacketInfo info;

    EXPECT_FALSE(decode_packet(frame.data(), kEth + 39, info));
    EXPECT_EQ(info.malformed, Malformed::Ipv6Truncated);
}

TEST(DecodeMalformedTest, ReportsIpv6PayloadBeyondCaptureAndKeepsAddresses) {
    const Bytes frame = ipv6_chain_tcp();
    PacketInfo info;

    EXPECT_FALSE(decode_packet(frame.data(), static_cast<uint32_t>(frame.size() - 1), info));
    EXPECT_EQ(info.malformed, Malformed::Ipv6Truncated);
    EXPECT_EQ(info.ip_version, 6);
    EXPECT_EQ(info.src, kClient6);
    EXPECT_EQ(info.dst, kServer6);
}

TEST(DecodeMalformedTest, ReportsIpv6Jumbogram) {
    // Jumbo Payload option (0xc2) in Hop-by-Hop, payload length 0.
    Bytes hbh = {0xc2, 4, 0, 1, 0, 0};
    Bytes frame = PacketBuilder()
                          .ipv6(kClient6, kServer6)
                          .ipv6_extension(test::kExtHopByHop, hbh)
                          .tcp(1, 2, kTcpAck)
                          .build();
    test::put16(frame, kEth + 4, 0);
    PacketInfo info;

    EXPECT_FALSE(decode(frame, info));
    EXPECT_EQ(info.malformed, Malformed::Ipv6BadPayloadLength);
}

TEST(DecodeMalformedTest, ReportsTruncatedIpv6ExtensionHeader) {
    Bytes frame = PacketBuilder()
                          .ipv6(kClient6, kServer6)
                          .ipv6_extension(test::kExtDestOptions, test::ipv6_padded_options(16))
                          .build();
    frame[kEth + 40 + 1] = 2;           // claims 24 bytes; the datagram has 16
    frame.resize(frame.size() + 8, 0);  // bytes in the frame, but not in the datagram
    PacketInfo info;

    EXPECT_FALSE(decode(frame, info));
    EXPECT_EQ(info.malformed, Malformed::Ipv6ExtensionTruncated);
    EXPECT_EQ(info.src, kClient6);
}

TEST(DecodeMalformedTest, ReportsTooManyIpv6Extensions) {
    PacketBuilder b;
    b.ipv6(kClient6, kServer6);
    for (int i = 0; i < 17; ++i) {
        b.ipv6_extension(test::kExtDestOptions, test::ipv6_padded_options(8));
    }
    const Bytes frame = b.tcp(1, 2, kTcpAck).build();
    PacketInfo info;

    EXPECT_FALSE(decode(frame, info));
    EXPECT_EQ(info.malformed, Malformed::Ipv6TooManyExtensions);
}

TEST(DecodeMalformedTest, AcceptsSixteenIpv6Extensions) {
    PacketBuilder b;
    b.ipv6(kClient6, kServer6);
    for (int i = 0; i < 16; ++i) {
        b.ipv6_extension(test::kExtDestOptions, test::ipv6_padded_options(8));
    }
    const Bytes frame = b.tcp(1, 2, kTcpAck).build();
    PacketInfo info;

    EXPECT_TRUE(decode(frame, info));
    EXPECT_EQ(info.dst_port, 2);
}

TEST(DecodeMalformedTest, ReportsBadTcpDataOffset) {
    Bytes frame = plain_ipv4_tcp();
    frame[kEth + 20 + 12] = 0x40;
    PacketInfo info;

    EXPECT_FALSE(decode(frame, info));
    EXPECT_EQ(info.malformed, Malformed::TcpBadDataOffset);
    EXPECT_EQ(info.dst_port, 443);
}

TEST(DecodeMalformedTest, ReportsTruncatedTcpHeader) {
    const Bytes seg = tcp_segment_bytes(false);
    const Bytes frame = PacketBuilder()
                                .ipv4(kClient4, kServer4)
                                .l4_raw(kProtoTcp, Bytes(seg.begin(), seg.begin() + 12))
                                .pad_to(60)
                                .build();
    PacketInfo info;

    EXPECT_FALSE(decode(frame, info));
    EXPECT_EQ(info.malformed, Malformed::TcpTruncated);
    EXPECT_EQ(info.src_port, 52044);
}

TEST(DecodeMalformedTest, ReportsTcpOptionsBeyondDatagram) {
    Bytes frame = PacketBuilder().ipv4(kClient4, kServer4).tcp(1, 2, kTcpAck).pad_to(80).build();
    frame[kEth + 20 + 12] = 0xf0;  // 60-byte header in a 20-byte segment
    PacketInfo info;

    EXPECT_FALSE(decode(frame, info));
    EXPECT_EQ(info.malformed, Malformed::TcpTruncated);
}

TEST(DecodeMalformedTest, ReportsBadTcpOptions) {
    const Bytes frame = PacketBuilder()
                                .ipv4(kClient4, kServer4)
                                .tcp(1, 2, kTcpSyn)
                                .tcp_options({1, 1, 2, 1})  // MSS with length 1
                                .build();
    PacketInfo info;

    EXPECT_FALSE(decode(frame, info));
    EXPECT_EQ(info.malformed, Malformed::TcpBadOptions);
}

TEST(DecodeMalformedTest, ReportsTruncatedUdpHeader) {
    const Bytes frame = PacketBuilder()
                                .ipv6(kClient6, kServer6)
                                .l4_raw(kProtoUdp, {0, 53, 0, 53, 0, 8})
                                .build();
    PacketInfo info;

    EXPECT_FALSE(decode(frame, info));
    EXPECT_EQ(info.malformed, Malformed::UdpTruncated);
}

TEST(DecodeMalformedTest, ReportsUdpLengthBeyondDatagram) {
    Bytes frame = PacketBuilder()
                          .ipv4(kClient4, kServer4)
                          .udp(1, 2)
                          .payload(Bytes(4, 1))
                          .pad_to(80)
                          .build();
    test::put16(frame, kEth + 20 + 4, 13);
    PacketInfo info;

    EXPECT_FALSE(decode(frame, info));
    EXPECT_EQ(info.malformed, Malformed::UdpBadLength);
}

TEST(DecodeMalformedTest, ReportsUdpLengthBelowHeader) {
    Bytes frame = PacketBuilder().ipv4(kClient4, kServer4).udp(1, 2).payload(Bytes(4, 1)).build();
    test::put16(frame, kEth + 20 + 4, 7);
    PacketInfo info;

    EXPECT_FALSE(decode(frame, info));
    EXPECT_EQ(info.malformed, Malformed::UdpBadLength);
}

TEST(DecodeMalformedTest, NamesEveryReasonInSnakeCase) {
    std::set<std::string_view> seen;
    for (size_t i = 0; i < kMalformedCount; ++i) {
        const std::string_view name = malformed_name(static_cast<Malformed>(i));
        SCOPED_TRACE(i);
        EXPECT_FALSE(name.empty());
        EXPECT_NE(name, "unknown");
        EXPECT_EQ(name.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789_"),
                std::string_view::npos);
        EXPECT_TRUE(seen.insert(name).second) << name;
    }
    EXPECT_EQ(malformed_name(Malformed::Ipv4Truncated), "ipv4_truncated");
    EXPECT_EQ(malformed_name(Malformed::Ipv6TooManyExtensions), "ipv6_too_many_extensions");
    EXPECT_EQ(malformed_name(Malformed::Count), "unknown");
}

// --- checksums -----------------------------------------------------------------------------

uint16_t ipv4_pseudo_sum(uint8_t proto, uint16_t l4_len) {
    Bytes p;
    test::append(p, kClient4);
    test::append(p, kServer4);
    p.push_back(0);
    p.push_back(proto);
    test::append16(p, l4_len);
    return test::fold_sum(test::ones_sum(p));
}

uint16_t ipv6_pseudo_sum(uint8_t proto, uint32_t l4_len) {
    Bytes p;
    test::append(p, kClient6);
    test::append(p, kServer6);
    test::append32(p, l4_len);
    test::append(p, std::array<uint8_t, 3>{});
    p.push_back(proto);
    return test::fold_sum(test::ones_sum(p));
}

struct Decoded {
    Bytes frame;
    PacketInfo info;
};

Decoded decoded(Bytes frame) {
    Decoded d{std::move(frame), {}};
    EXPECT_TRUE(decode(d.frame, d.info));
    return d;
}

bool checksum_ok(const Decoded& d) {
    return l4_checksum_ok(d.frame.data(), static_cast<uint32_t>(d.frame.size()), d.info);
}

bool placeholder(const Decoded& d) {
    return l4_checksum_is_offload_placeholder(
            d.frame.data(), static_cast<uint32_t>(d.frame.size()), d.info);
}

TEST(ChecksumTest, AcceptsCorrectIpv4TcpChecksum) {
    const Decoded d = decoded(plain_ipv4_tcp());

    EXPECT_TRUE(checksum_ok(d));
    EXPECT_FALSE(placeholder(d));
}

TEST(ChecksumTest, RejectsCorruptedIpv4TcpPayload) {
    Decoded d = decoded(plain_ipv4_tcp());
    d.frame.back() ^= 0x01;

    EXPECT_FALSE(checksum_ok(d));
    EXPECT_FALSE(placeholder(d));
}

TEST(ChecksumTest, AcceptsOddLengthTcpThroughIpv6ExtensionChain) {
    const Decoded d =
            decoded(PacketBuilder()
                            .ipv6(kClient6, kServer6)
                            .ipv6_extension(test::kExtHopByHop, test::ipv6_padded_options(8))
                            .ipv6_extension(test::kExtAh, test::ipv6_ah(1, 2))
                            .tcp(1, 2, kTcpAck)
                            .payload(text("odd"))
                            .build());

    EXPECT_TRUE(checksum_ok(d));
}

TEST(ChecksumTest, UsesFinalSegmentAsPseudoHeaderDestination) {
    const test::Ipv6Address waypoint = test::ipv6(0x2001, 0xdb8, 0x99);
    const Decoded d = decoded(
            PacketBuilder()
                    .ipv6(kClient6, waypoint)
                    .ipv6_extension(test::kExtRouting, test::ipv6_srh({kServer6, waypoint}, 1))
                    .ipv6_pseudo_destination(kServer6)
                    .tcp(52044, 80, kTcpAck)
                    .payload(text("data"))
                    .build());

    EXPECT_TRUE(checksum_ok(d));
}

TEST(ChecksumTest, AcceptsCorrectIpv6UdpChecksum) {
    const Decoded d = decoded(
            PacketBuilder().ipv6(kClient6, kServer6).udp(5353, 53).payload(text("q")).build());

    EXPECT_TRUE(checksum_ok(d));
}

TEST(ChecksumTest, AcceptsIpv4UdpWithoutChecksum) {
    const Decoded d = decoded(PacketBuilder()
                                      .ipv4(kClient4, kServer4)
                                      .udp(5353, 53)
                                      .udp_without_checksum()
                                      .payload(text("q"))
                                      .build());

    EXPECT_TRUE(checksum_ok(d));
    EXPECT_FALSE(placeholder(d));
}

TEST(ChecksumTest, RejectsIpv6UdpWithoutChecksum) {
    const Decoded d = decoded(PacketBuilder()
                                      .ipv6(kClient6, kServer6)
                                      .udp(5353, 53)
                                      .udp_without_checksum()
                                      .payload(text("q"))
                                      .build());

    EXPECT_FALSE(checksum_ok(d));
}

TEST(ChecksumTest, RejectsDatagramNotCompletelyCaptured) {
    const Decoded d = decoded(plain_ipv4_tcp());

    EXPECT_FALSE(l4_checksum_ok(d.frame.data(), static_cast<uint32_t>(d.frame.size() - 1), d.info));
}

TEST(ChecksumTest, RejectsFragment) {
    const Decoded d = decoded(PacketBuilder()
                                      .ipv4(kClient4, kServer4)
                                      .ipv4_fragment(3, 0, true)
                                      .tcp(1, 2, kTcpAck)
                                      .build());

    EXPECT_FALSE(checksum_ok(d));
}

TEST(ChecksumTest, RecognisesIpv4TcpOffloadPlaceholder) {
    Decoded d = decoded(plain_ipv4_tcp());
    test::put16(d.frame, kEth + 20 + 16, ipv4_pseudo_sum(kProtoTcp, 25));

    EXPECT_FALSE(checksum_ok(d));
    EXPECT_TRUE(placeholder(d));
}

TEST(ChecksumTest, RecognisesIpv6UdpOffloadPlaceholder) {
    Decoded d = decoded(
            PacketBuilder().ipv6(kClient6, kServer6).udp(5353, 53).payload(text("abc")).build());
    test::put16(d.frame, kEth + 40 + 6, ipv6_pseudo_sum(kProtoUdp, 11));

    EXPECT_FALSE(checksum_ok(d));
    EXPECT_TRUE(placeholder(d));
}

TEST(ChecksumTest, RecognisesZeroTcpChecksumAsPlaceholder) {
    Decoded d = decoded(plain_ipv4_tcp());
    test::put16(d.frame, kEth + 20 + 16, 0);

    EXPECT_FALSE(checksum_ok(d));
    EXPECT_TRUE(placeholder(d));
}

TEST(ChecksumTest, DoesNotTakeArbitraryBadChecksumForPlaceholder) {
    Decoded d = decoded(plain_ipv4_tcp());
    const uint16_t seed = ipv4_pseudo_sum(kProtoTcp, 25);
    test::put16(d.frame, kEth + 20 + 16, static_cast<uint16_t>(seed + 1));

    EXPECT_FALSE(checksum_ok(d));
    EXPECT_FALSE(placeholder(d));
}

TEST(ChecksumTest, AcceptsCorrectIpv4HeaderChecksumWithOptions) {
    const Decoded d = decoded(PacketBuilder()
                                      .ipv4(kClient4, kServer4)
                                      .ipv4_options(ipv4_options_ihl12())
                                      .tcp(53900, 80, kTcpAck)
                                      .build());

    EXPECT_TRUE(
            ipv4_header_checksum_ok(d.frame.data(), static_cast<uint32_t>(d.frame.size()), d.info));
}

TEST(ChecksumTest, RejectsCorruptIpv4HeaderChecksum) {
    Decoded d = decoded(plain_ipv4_tcp());
    d.frame[kEth + 8] ^= 0x10;  // TTL

    EXPECT_FALSE(
            ipv4_header_checksum_ok(d.frame.data(), static_cast<uint32_t>(d.frame.size()), d.info));
}

TEST(ChecksumTest, RejectsIpv4HeaderChecksumOfIpv6) {
    const Decoded d = decoded(ipv6_chain_tcp());

    EXPECT_FALSE(
            ipv4_header_checksum_ok(d.frame.data(), static_cast<uint32_t>(d.frame.size()), d.info));
}

// Every payload length from 0 to 140 and a few full-size and jumbo ones, both IP versions,
// TCP and UDP, random bytes (every third length all 0xff, the largest sums): the checksums
// the builder writes (a plain 16-bit reference sum) verify, one flipped bit anywhere in the
// L4 bytes is caught, and the pseudo-header sum alone is taken for an offload placeholder.
// Spans of 64 bytes and more are added 32 bytes a step, the rest eight bytes at a time, so
// every length of both tails (odd ones included) and the switch between them are covered.
TEST(ChecksumTest, AgreesWithReferenceSumAtEveryLength) {
    std::mt19937 rng(7);
    std::vector<uint32_t> lengths;
    for (uint32_t n = 0; n <= 140; ++n) {
        lengths.push_back(n);
    }
    lengths.insert(lengths.end(), {1399, 1400, 1459, 1460, 8951, 8952});
    for (const bool v6 : {false, true}) {
        for (const bool tcp : {false, true}) {
            for (const uint32_t n : lengths) {
                SCOPED_TRACE(testing::Message()
                        << (v6 ? "IPv6 " : "IPv4 ") << (tcp ? "TCP " : "UDP ") << n);
                Bytes payload(n);
                for (uint8_t& b : payload) {
                    b = n % 3 == 0 ? uint8_t{0xff} : static_cast<uint8_t>(rng());
                }
                PacketBuilder builder;
                if (v6) {
                    builder.ipv6(kClient6, kServer6);
                } else {
                    builder.ipv4(kClient4, kServer4);
                }
                if (tcp) {
                    builder.tcp(40000 + static_cast<uint16_t>(n), 443, kTcpAck);
                } else {
                    builder.udp(40000 + static_cast<uint16_t>(n), 53);
                }
                Decoded d = decoded(builder.payload(payload).build());
                const auto len = static_cast<uint32_t>(d.frame.size());
                EXPECT_TRUE(checksum_ok(d));
                EXPECT_FALSE(placeholder(d));
                EXPECT_EQ(ipv4_header_checksum_ok(d.frame.data(), len, d.info), !v6);

                const size_t first = d.info.l4_offset;
                const size_t at = first + rng() % (d.frame.size() - first);
                const uint8_t original = d.frame[at];
                d.frame[at] ^= static_cast<uint8_t>(1U << (rng() % 8));
                EXPECT_FALSE(checksum_ok(d)) << "flipped byte " << at - first;
                d.frame[at] = original;

                const uint32_t l4_len = len - d.info.l4_offset;
                const size_t field = first + (tcp ? 16 : 6);
                test::put16(d.frame, field,
                        v6 ? ipv6_pseudo_sum(tcp ? kProtoTcp : kProtoUdp, l4_len)
                           : ipv4_pseudo_sum(
                                   tcp ? kProtoTcp : kProtoUdp, static_cast<uint16_t>(l4_len)));
                EXPECT_TRUE(placeholder(d));
            }
        }
    }
}

// --- robustness ----------------------------------------------------------------------------

// What a worker relies on after decode_packet, whatever the input.
::testing::AssertionResult consistent(uint32_t len, const PacketInfo& info, bool ok) {
    if (ok != (info.malformed == Malformed::None)) {
        return ::testing::AssertionFailure()
                << "return value disagrees with reason " << malformed_name(info.malformed);
    }
    if (info.vlan_count > kMaxVlanTags) {
        return ::testing::AssertionFailure() << "vlan_count " << int{info.vlan_count};
    }
    if (!info.fragment && (info.first_fragment || info.frag_more)) {
        return ::testing::AssertionFailure() << "fragment fields without fragment";
    }
    if (!ok) {
        return ::testing::AssertionSuccess();
    }
    if (info.ip_version == 0) {
        if (info.payload_len != 0) {
            return ::testing::AssertionFailure() << "payload without IP";
        }
        return ::testing::AssertionSuccess();
    }
    const uint64_t ip_end = uint64_t{info.l3_offset} + info.ip_len;
    if (ip_end > len) {
        return ::testing::AssertionFailure() << "datagram end " << ip_end << " past " << len;
    }
    if (info.l4_offset < info.l3_offset || info.l4_offset > ip_end) {
        return ::testing::AssertionFailure() << "l4_offset " << info.l4_offset;
    }
    if (uint64_t{info.payload_offset} + info.payload_len > ip_end
            || info.payload_offset < info.l4_offset) {
        return ::testing::AssertionFailure()
                << "payload " << info.payload_offset << "+" << info.payload_len;
    }
    return ::testing::AssertionSuccess();
}

// Decodes `len` bytes from an exact heap copy and runs every function on the result.
::testing::AssertionResult decode_exact(const uint8_t* data, size_t len) {
    const ExactBuffer buf(data, len);
    PacketInfo info;
    const bool ok = decode_packet(buf.data(), buf.size(), info);
    (void)l4_checksum_ok(buf.data(), buf.size(), info);
    (void)l4_checksum_is_offload_placeholder(buf.data(), buf.size(), info);
    (void)ipv4_header_checksum_ok(buf.data(), buf.size(), info);
    if (malformed_name(info.malformed).empty()) {
        return ::testing::AssertionFailure() << "no name";
    }
    return consistent(buf.size(), info, ok);
}

std::vector<Bytes> valid_frames() {
    const Bytes tiny_seg = tcp_segment_bytes(false);
    return {
            plain_ipv4_tcp(),
            PacketBuilder()
                    .vlan(300, test::kTpid8021ad)
                    .vlan(42)
                    .ipv4(kClient4, kServer4)
                    .ipv4_options(ipv4_options_ihl12())
                    .tcp(53900, 80, kTcpSyn)
                    .tcp_options(tcp_options_40())
                    .payload(text("SSN 293-24-8826"))
                    .build(),
            ipv6_chain_tcp(),
            PacketBuilder()
                    .vlan(30)
                    .vlan(20)
                    .vlan(10)
                    .ipv6(kClient6, kServer6)
                    .ipv6_extension(test::kExtAh, test::ipv6_ah(1, 2))
                    .ipv6_extension(test::kExtFragment, test::ipv6_fragment(0, true, 9))
                    .udp(53, 53)
                    .payload(Bytes(40, 'd'))
                    .build(),
            PacketBuilder()
                    .ipv4(kClient4, kServer4)
                    .ipv4_fragment(9, 0, true)
                    .l4_raw(kProtoTcp, Bytes(tiny_seg.begin(), tiny_seg.begin() + 8))
                    .pad_to(60)
                    .build(),
            PacketBuilder()
                    .ipv4(kClient4, kServer4)
                    .udp(5353, 53)
                    .payload({1, 2})
                    .pad_to(60)
                    .build(),
    };
}

TEST(DecodeRobustnessTest, SurvivesEveryPrefixOfValidFrames) {
    for (const Bytes& frame : valid_frames()) {
        for (size_t len = 0; len <= frame.size(); ++len) {
            ASSERT_TRUE(decode_exact(frame.data(), len)) << "prefix " << len;
        }
        PacketInfo info;
        EXPECT_TRUE(decode(frame, info)) << malformed_name(info.malformed);
    }
}

TEST(DecodeRobustnessTest, SurvivesRandomMutations) {
    std::mt19937 rng(20240611);
    const std::vector<Bytes> frames = valid_frames();
    for (int round = 0; round < 40000; ++round) {
        Bytes frame = frames[static_cast<size_t>(round) % frames.size()];
        const int flips = 1 + static_cast<int>(rng() % 4);
        for (int i = 0; i < flips; ++i) {
            // Mostly the headers, where the lengths and types are.
            const size_t span =
                    (rng() % 4 != 0) ? std::min<size_t>(frame.size(), 96) : frame.size();
            frame[rng() % span] = static_cast<uint8_t>(rng());
        }
        size_t len = frame.size();
        if (rng() % 3 == 0) {
            len = rng() % (frame.size() + 1);
        }
        ASSERT_TRUE(decode_exact(frame.data(), len)) << "round " << round;
    }
}

// --- captures ------------------------------------------------------------------------------

fs::path shared_dir() {
    if (const char* env = std::getenv("EXFILTAP_SHARED_DIR"); env != nullptr && *env != '\0') {
        return env;
    }
    return fs::path(EXFILTAP_SOURCE_ROOT) / ".." / "shared";
}

bool shared_required() {
    const char* env = std::getenv("EXFILTAP_REQUIRE_SHARED");
    return env != nullptr && std::string(env) == "1";
}

// Classic pcap read with plain file IO: both byte orders, micro- and nanosecond magic.
bool read_pcap(const fs::path& path, std::vector<Bytes>& packets, std::string& error) {
    std::ifstream in(path, std::ios::binary);
    const Bytes file((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (file.size() < 24) {
        error = "shorter than a pcap header";
        return false;
    }
    const uint32_t magic_le = uint32_t{file[0]} | uint32_t{file[1]} << 8 | uint32_t{file[2]} << 16
            | uint32_t{file[3]} << 24;
    bool big_endian = false;
    if (magic_le == 0xa1b2c3d4 || magic_le == 0xa1b23c4d) {
        big_endian = false;
    } else if (magic_le == 0xd4c3b2a1 || magic_le == 0x4d3cb2a1) {
        big_endian = true;
    } else {
        error = "not a classic pcap file";
        return false;
    }
    const auto u32 = [&](size_t at) {
        const uint32_t b0 = file[at], b1 = file[at + 1], b2 = file[at + 2], b3 = file[at + 3];
        return big_endian ? (b0 << 24 | b1 << 16 | b2 << 8 | b3)
                          : (b3 << 24 | b2 << 16 | b1 << 8 | b0);
    };
    if ((u32(20) & 0x0fffffff) != 1) {
        error = "link type is not Ethernet";
        return false;
    }
    size_t at = 24;
    while (at < file.size()) {
        if (file.size() - at < 16) {
            error = "record header cut";
            return false;
        }
        const uint32_t caplen = u32(at + 8);
        at += 16;
        if (caplen > file.size() - at) {
            error = "record cut";
            return false;
        }
        packets.emplace_back(file.begin() + static_cast<std::ptrdiff_t>(at),
                file.begin() + static_cast<std::ptrdiff_t>(at + caplen));
        at += caplen;
    }
    return true;
}

class DecodeCorpusTest : public ::testing::Test {
protected:
    void SetUp() override {
        dir_ = shared_dir();
        if (!fs::is_directory(dir_ / "pcaps") || !fs::is_directory(dir_ / "cases")) {
            if (shared_required()) {
                FAIL() << "EXFILTAP_REQUIRE_SHARED=1 but " << dir_
                       << " has no pcaps/ and cases/ folders (set EXFILTAP_SHARED_DIR)";
            }
            GTEST_SKIP() << "shared captures not found at " << dir_
                         << "; set EXFILTAP_SHARED_DIR to the shared folder to run this test";
        }
    }

    std::vector<Bytes> packets(const std::string& sub, const std::string& name) {
        std::vector<Bytes> out;
        std::string error;
        EXPECT_TRUE(read_pcap(dir_ / sub / name, out, error)) << name << ": " << error;
        return out;
    }

    std::vector<fs::path> files(const std::string& sub) {
        std::vector<fs::path> out;
        for (const auto& entry : fs::directory_iterator(dir_ / sub)) {
            if (entry.path().extension() == ".pcap") {
                out.push_back(entry.path());
            }
        }
        std::sort(out.begin(), out.end());
        return out;
    }

    fs::path dir_;
};

TEST_F(DecodeCorpusTest, DecodesEveryCapturedPacketWithinBounds) {
    // Captures that are malformed on purpose (fuzzed, cut by the snap length).
    const std::set<std::string> malformed_expected = {"ndpi_badpackets-snaplen.pcap",
            "ndpi_fuzz-bigendian.pcap", "sv_ipv4-truncated-udp.pcap"};
    size_t total = 0;
    for (const char* sub : {"pcaps", "cases"}) {
        for (const fs::path& path : files(sub)) {
            const std::string name = path.filename().string();
            std::vector<Bytes> pkts;
            std::string error;
            ASSERT_TRUE(read_pcap(path, pkts, error)) << name << ": " << error;
            std::map<std::string_view, size_t> reasons;
            for (size_t i = 0; i < pkts.size(); ++i) {
                ASSERT_TRUE(decode_exact(pkts[i].data(), pkts[i].size())) << name << " #" << i + 1;
                PacketInfo info;
                decode(pkts[i], info);
                if (info.malformed != Malformed::None) {
                    ++reasons[malformed_name(info.malformed)];
                }
            }
            total += pkts.size();
            if (malformed_expected.count(name) == 0) {
                EXPECT_TRUE(reasons.empty()) << name << ": " << reasons.begin()->first << " x"
                                             << reasons.begin()->second;
            }
        }
    }
    EXPECT_GT(total, 40000u);
}

TEST_F(DecodeCorpusTest, ValidatesEveryChecksumOfCaseCaptures) {
    // The cases are built with valid checksums throughout.
    for (const fs::path& path : files("cases")) {
        std::vector<Bytes> pkts;
        std::string error;
        ASSERT_TRUE(read_pcap(path, pkts, error)) << error;
        size_t checked = 0;
        for (size_t i = 0; i < pkts.size(); ++i) {
            PacketInfo info;
            ASSERT_TRUE(decode(pkts[i], info)) << path.filename() << " #" << i + 1;
            const uint32_t len = static_cast<uint32_t>(pkts[i].size());
            if (info.ip_version == 4) {
                EXPECT_TRUE(ipv4_header_checksum_ok(pkts[i].data(), len, info))
                        << path.filename() << " #" << i + 1;
            }
            if ((info.l4_proto == kProtoTcp || info.l4_proto == kProtoUdp) && !info.fragment) {
                EXPECT_TRUE(l4_checksum_ok(pkts[i].data(), len, info))
                        << path.filename() << " #" << i + 1;
                ++checked;
            }
        }
        EXPECT_GT(checked, 0u) << path.filename();
    }
}

TEST_F(DecodeCorpusTest, FindsOffloadPlaceholderOnEveryBadChecksumOfOffloadCaptures) {
    // Bad TCP checksums per capture as the corpus manifest counts them.
    const std::map<std::string, size_t> bad_tcp = {{"ndpi_mixed-1kxun.pcap", 409},
            {"zeek_ssh-guessing.pcap", 177}, {"sv_ftp-active-stor-exe-pdf.pcap", 153},
            {"sv_smtp-zip-attachment.pcap", 58}, {"zeek_http-post-large.pcap", 38},
            {"zeek_smb2-write-small.pcap", 27}, {"sv_smb1-write-eicar-segmented.pcap", 20},
            {"zeek_smtp-attachment-msg-ipv6.pcap", 17}};
    for (const auto& [name, expected] : bad_tcp) {
        size_t bad = 0;
        size_t placeholders = 0;
        for (const Bytes& pkt : packets("pcaps", name)) {
            PacketInfo info;
            if (!decode(pkt, info) || info.l4_proto != kProtoTcp || info.fragment) {
                continue;
            }
            const uint32_t len = static_cast<uint32_t>(pkt.size());
            if (!l4_checksum_ok(pkt.data(), len, info)) {
                ++bad;
                placeholders += l4_checksum_is_offload_placeholder(pkt.data(), len, info) ? 1 : 0;
            }
        }
        EXPECT_EQ(bad, expected) << name;
        EXPECT_EQ(placeholders, bad) << name;
    }
}

TEST_F(DecodeCorpusTest, ReadsThreeStackedTagsOfQinqinqCapture) {
    const std::vector<Bytes> pkts = packets("pcaps", "zeek_http-vlan-qinqinq.pcap");
    ASSERT_EQ(pkts.size(), 14u);
    for (const Bytes& pkt : pkts) {
        PacketInfo info;
        ASSERT_TRUE(decode(pkt, info));
        EXPECT_EQ(info.vlan_count, 3);
        EXPECT_EQ(info.vlan[0], 30);
        EXPECT_EQ(info.vlan[1], 20);
        EXPECT_EQ(info.vlan[2], 10);
        EXPECT_EQ(info.l4_proto, kProtoTcp);
    }
}

TEST_F(DecodeCorpusTest, ReadsPortsOfIpv4AndTcpOptionsCase) {
    size_t with_ip_options = 0;
    size_t with_tcp_options = 0;
    for (const Bytes& pkt : packets("cases", "c19_ipv4_and_tcp_options.pcap")) {
        PacketInfo info;
        ASSERT_TRUE(decode(pkt, info));
        if ((pkt[info.l3_offset] & 0x0f) == 12) {
            ++with_ip_options;
            with_tcp_options += (pkt[info.l4_offset + 12] >> 4) == 15 ? 1 : 0;
            EXPECT_EQ(info.src_port, 53900);
            EXPECT_EQ(info.dst_port, 80);
        }
    }
    EXPECT_GT(with_ip_options, 0u);
    EXPECT_GT(with_tcp_options, 0u);
}

TEST_F(DecodeCorpusTest, DoesNotDecodeDecoyOfIpv6ChainCaseAsTcp) {
    const std::vector<Bytes> pkts = packets("cases", "c04_ipv6_ext_chain.pcap");
    ASSERT_FALSE(pkts.empty());
    size_t tcp = 0;
    for (size_t i = 0; i + 1 < pkts.size(); ++i) {
        PacketInfo info;
        ASSERT_TRUE(decode(pkts[i], info));
        tcp += info.l4_proto == kProtoTcp && (info.src_port == 52044 || info.dst_port == 52044);
    }
    EXPECT_EQ(tcp, pkts.size() - 1);
    PacketInfo decoy;
    ASSERT_TRUE(decode(pkts.back(), decoy));
    EXPECT_EQ(decoy.l4_proto, 253);
    EXPECT_EQ(decoy.src_port, 0);
    EXPECT_EQ(decoy.dst_port, 0);
}

TEST_F(DecodeCorpusTest, WalksEveryAuthenticationHeaderOfFloodCapture) {
    size_t behind_ah = 0;
    for (const Bytes& pkt : packets("pcaps", "sv_ipv6-ah-flood.pcap")) {
        PacketInfo info;
        ASSERT_TRUE(decode(pkt, info));
        if (info.ip_version == 6 && pkt[info.l3_offset + 6] == 51) {
            EXPECT_EQ(info.l4_proto, kProtoIcmpv6);
            ++behind_ah;
        }
    }
    EXPECT_EQ(behind_ah, 35690u);
}

}  // namespace
}  // namespace exfiltap::dataplane
