// TCP resets of a flow verdict: each one decodes as a valid RST+ACK with good checksums, at
// the sequence numbers the receiving end accepts.
#include "dataplane/tcp_reset.h"

#include <algorithm>
#include <array>
#include <string>

#include <gtest/gtest.h>

#include "packet_builder.h"

namespace exfiltap::dataplane {
namespace {

using test::Bytes;
using test::PacketBuilder;

const test::Ipv4Address kClient4 = test::ipv4(10, 1, 2, 3);
const test::Ipv4Address kServer4 = test::ipv4(203, 0, 113, 9);
const test::Ipv6Address kClient6 = test::ipv6(0xfd00, 1, 3);
const test::Ipv6Address kServer6 = test::ipv6(0x2001, 0xdb8, 9);

Bytes data_segment(bool v6, bool vlan) {
    PacketBuilder b;
    if (vlan) {
        b.vlan(42);
    }
    if (v6) {
        b.ipv6(kClient6, kServer6);
    } else {
        b.ipv4(kClient4, kServer4);
    }
    const std::string text = "POST /upload card=4556737586899855";
    return b.tcp(52044, 443, kTcpAck | kTcpPsh)
            .tcp_sequence(1000, 5000)
            .payload(Bytes(text.begin(), text.end()))
            .build();
}

struct Reset {
    PacketInfo info;
    Bytes frame;
};

Reset build(const Bytes& original, bool toward_sender) {
    PacketInfo info;
    EXPECT_TRUE(decode_packet(original.data(), static_cast<uint32_t>(original.size()), info));
    std::array<uint8_t, kMaxResetFrame> out{};
    const uint32_t len = build_tcp_reset(original.data(), info, toward_sender, out.data());
    Reset reset;
    reset.frame.assign(out.begin(), out.begin() + len);
    EXPECT_GT(len, 0U);
    EXPECT_TRUE(decode_packet(reset.frame.data(), len, reset.info));
    return reset;
}

class TcpResetTest : public ::testing::TestWithParam<std::pair<bool, bool>> {};

TEST_P(TcpResetTest, ForwardResetTakesTheDroppedSegmentsPlace) {
    const auto [v6, vlan] = GetParam();
    const Bytes original = data_segment(v6, vlan);
    const Reset r = build(original, false);
    EXPECT_EQ(r.info.tcp_flags, kTcpRst | kTcpAck);
    PacketInfo orig;
    ASSERT_TRUE(decode_packet(original.data(), static_cast<uint32_t>(original.size()), orig));
    EXPECT_EQ(r.info.src, orig.src);
    EXPECT_EQ(r.info.dst, orig.dst);
    EXPECT_EQ(r.info.src_port, 52044);
    EXPECT_EQ(r.info.dst_port, 443);
    EXPECT_EQ(r.info.tcp_seq, 1000U);  // the dropped segment's place
    EXPECT_EQ(r.info.tcp_ack, 5000U);
    EXPECT_EQ(r.info.payload_len, 0U);
    EXPECT_EQ(r.info.vlan_count, vlan ? 1 : 0);
    EXPECT_TRUE(l4_checksum_ok(r.frame.data(), static_cast<uint32_t>(r.frame.size()), r.info));
    if (!v6) {
        EXPECT_TRUE(ipv4_header_checksum_ok(
                r.frame.data(), static_cast<uint32_t>(r.frame.size()), r.info));
    }
}

TEST_P(TcpResetTest, BackwardResetAnswersTheSender) {
    const auto [v6, vlan] = GetParam();
    const Bytes original = data_segment(v6, vlan);
    PacketInfo orig;
    ASSERT_TRUE(decode_packet(original.data(), static_cast<uint32_t>(original.size()), orig));
    const Reset r = build(original, true);
    EXPECT_EQ(r.info.tcp_flags, kTcpRst | kTcpAck);
    EXPECT_EQ(r.info.src, orig.dst);
    EXPECT_EQ(r.info.dst, orig.src);
    EXPECT_EQ(r.info.src_port, 443);
    EXPECT_EQ(r.info.dst_port, 52044);
    EXPECT_EQ(r.info.tcp_seq, 5000U);  // what the sender acknowledged last
    EXPECT_EQ(r.info.tcp_ack, 1000U);
    // Ethernet addresses swapped: the frame goes back where the segment came from.
    EXPECT_TRUE(std::equal(r.frame.begin(), r.frame.begin() + 6, original.begin() + 6));
    EXPECT_TRUE(std::equal(r.frame.begin() + 6, r.frame.begin() + 12, original.begin()));
    EXPECT_TRUE(l4_checksum_ok(r.frame.data(), static_cast<uint32_t>(r.frame.size()), r.info));
}

INSTANTIATE_TEST_SUITE_P(Families, TcpResetTest,
        ::testing::Values(std::make_pair(false, false), std::make_pair(false, true),
                std::make_pair(true, false), std::make_pair(true, true)));

TEST(TcpResetRefusal, NoResetForUdpOrIpv6Extensions) {
    const Bytes udp = PacketBuilder().ipv4(kClient4, kServer4).udp(53, 53).build();
    PacketInfo info;
    ASSERT_TRUE(decode_packet(udp.data(), static_cast<uint32_t>(udp.size()), info));
    std::array<uint8_t, kMaxResetFrame> out{};
    EXPECT_EQ(build_tcp_reset(udp.data(), info, false, out.data()), 0U);

    const Bytes ext = PacketBuilder()
                              .ipv6(kClient6, kServer6)
                              .ipv6_extension(test::kExtDestOptions, test::ipv6_padded_options(8))
                              .tcp(1, 2, kTcpAck)
                              .build();
    ASSERT_TRUE(decode_packet(ext.data(), static_cast<uint32_t>(ext.size()), info));
    EXPECT_EQ(build_tcp_reset(ext.data(), info, false, out.data()), 0U);
}

}  // namespace
}  // namespace exfiltap::dataplane
