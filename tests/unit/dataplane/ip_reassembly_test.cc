#include "dataplane/ip_reassembly.h"

#include <algorithm>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include <gtest/gtest.h>

#include "dataplane/decode.h"
#include "tests/unit/dataplane/packet_builder.h"
#include "tests/unit/dataplane/pcap_file.h"

namespace exfiltap::dataplane {
namespace {

using test::Bytes;
using test::PacketBuilder;

const test::Ipv4Address kClient4 = test::ipv4(10, 20, 1, 15);
const test::Ipv4Address kServer4 = test::ipv4(203, 0, 113, 80);
const test::Ipv6Address kClient6 = test::ipv6(0xfd00, 0x20, 0x15);
const test::Ipv6Address kServer6 = test::ipv6(0x2001, 0xdb8, 0x80);
constexpr uint16_t kId = 0x1234;  // PacketBuilder's default IPv4 id
constexpr uint64_t kSecond = 1'000'000'000ULL;

Bytes text(std::string_view s) {
    return {s.begin(), s.end()};
}

Bytes pattern(size_t n) {
    Bytes b(n);
    for (size_t i = 0; i < n; ++i) {
        b[i] = static_cast<uint8_t>('a' + i % 26);
    }
    return b;
}

bool contains(const Bytes& hay, std::string_view needle) {
    return std::search(hay.begin(), hay.end(), needle.begin(), needle.end()) != hay.end();
}

// The transport header and payload of a whole packet: what fragmentation cuts up.
Bytes l4_bytes(const Bytes& frame) {
    PacketInfo info;
    EXPECT_TRUE(decode_packet(frame.data(), static_cast<uint32_t>(frame.size()), info));
    return {frame.begin() + info.l4_offset, frame.begin() + info.l3_offset + info.ip_len};
}

Bytes slice(const Bytes& b, uint32_t offset, uint32_t len) {
    return {b.begin() + offset, b.begin() + offset + len};
}

// One IPv4 fragment of `base` (L2 and addresses set) carrying `data` at `offset`.
Bytes ipv4_fragment(PacketBuilder base, uint8_t proto, Bytes data, uint32_t offset, bool more,
        uint16_t id = kId) {
    base.ipv4_fragment(id, offset, more).l4_raw(proto, std::move(data));
    return base.build();
}

// One IPv6 fragment: `base` holds the addresses and the headers before the fragment header.
Bytes ipv6_fragment(PacketBuilder base, uint8_t proto, Bytes data, uint32_t offset, bool more,
        uint32_t id = 0xa5d33a2d) {
    base.ipv6_extension(test::kExtFragment, test::ipv6_fragment(offset, more, id))
            .l4_raw(proto, std::move(data));
    return base.build();
}

// Cuts `l4` at `cuts` (multiples of 8, ascending) into fragments, in order.
std::vector<Bytes> split(const PacketBuilder& base, uint8_t version, const Bytes& l4,
        const std::vector<uint32_t>& cuts) {
    std::vector<uint32_t> at = {0};
    at.insert(at.end(), cuts.begin(), cuts.end());
    at.push_back(static_cast<uint32_t>(l4.size()));
    std::vector<Bytes> out;
    for (size_t i = 0; i + 1 < at.size(); ++i) {
        Bytes data = slice(l4, at[i], at[i + 1] - at[i]);
        const bool more = i + 2 < at.size();
        out.push_back(version == 4 ? ipv4_fragment(base, kProtoTcp, data, at[i], more)
                                   : ipv6_fragment(base, kProtoTcp, data, at[i], more));
    }
    return out;
}

PacketBuilder ipv4_base() {
    PacketBuilder b;
    b.ipv4(kClient4, kServer4);
    return b;
}

PacketBuilder ipv6_base() {
    PacketBuilder b;
    b.ipv6(kClient6, kServer6);
    return b;
}

Bytes tcp_packet(PacketBuilder base, Bytes payload, uint8_t flags = kTcpPsh | kTcpAck) {
    base.tcp(40000, 443, flags).payload(std::move(payload));
    return base.build();
}

// Decodes `frame` and offers it from a heap copy of exactly its size, so AddressSanitizer
// catches any read past the end.
ReassemblyResult offer(IpReassembler& r, const Bytes& frame, uint64_t now_ns = 0) {
    auto exact = std::make_unique<uint8_t[]>(frame.size());
    std::memcpy(exact.get(), frame.data(), frame.size());
    const auto len = static_cast<uint32_t>(frame.size());
    PacketInfo info;
    decode_packet(exact.get(), len, info);
    return r.add(exact.get(), len, info, now_ns);
}

// Decodes a copy of exactly `frame`'s size.
PacketInfo decode_exact(const Bytes& frame) {
    auto exact = std::make_unique<uint8_t[]>(frame.size());
    std::memcpy(exact.get(), frame.data(), frame.size());
    PacketInfo info;
    decode_packet(exact.get(), static_cast<uint32_t>(frame.size()), info);
    return info;
}

IpReassemblyConfig small_config() {
    IpReassemblyConfig c;
    c.max_datagrams = 8;
    c.max_fragments_per_datagram = 16;
    c.memory_bytes = size_t{64} * IpReassembler::kPageBytes;
    c.timeout_ns = 30 * kSecond;
    return c;
}

class IpReassemblyTest : public ::testing::Test {
protected:
    explicit IpReassemblyTest(const IpReassemblyConfig& config = small_config())
        : reassembler_(config) {}

    // Offers `frame`; a completed frame is copied to delivered_.
    FragmentStatus feed(const Bytes& frame, uint64_t now_ns = 0) {
        const ReassemblyResult r = offer(reassembler_, frame, now_ns);
        if (r.completed()) {
            delivered_.emplace_back(r.frame.data, r.frame.data + r.frame.len);
        }
        return r.status;
    }

    PacketInfo decoded(size_t i = 0) {
        PacketInfo info;
        EXPECT_TRUE(decode_packet(
                delivered_.at(i).data(), static_cast<uint32_t>(delivered_.at(i).size()), info));
        return info;
    }

    Bytes payload_of(size_t i = 0) {
        const PacketInfo info = decoded(i);
        const Bytes& f = delivered_.at(i);
        return {f.begin() + info.payload_offset,
                f.begin() + info.payload_offset + info.payload_len};
    }

    IpReassembler reassembler_;
    std::vector<Bytes> delivered_;
};

// --- rebuilding ----------------------------------------------------------------------------

TEST_F(IpReassemblyTest, InOrderIpv4FragmentsGiveTheUnfragmentedFrame) {
    const Bytes whole = tcp_packet(ipv4_base(), pattern(600));
    const auto frags = split(ipv4_base(), 4, l4_bytes(whole), {208, 416});

    EXPECT_EQ(feed(frags[0]), FragmentStatus::Held);
    EXPECT_EQ(feed(frags[1]), FragmentStatus::Held);
    EXPECT_TRUE(delivered_.empty());
    EXPECT_EQ(feed(frags[2]), FragmentStatus::Held);

    ASSERT_EQ(delivered_.size(), 1U);
    EXPECT_EQ(delivered_[0], whole);
    EXPECT_EQ(reassembler_.stats().datagrams_completed, 1U);
    EXPECT_EQ(reassembler_.in_progress(), 0U);
    EXPECT_EQ(reassembler_.memory_in_use(), 0U);
}

TEST_F(IpReassemblyTest, RebuiltIpv4FrameDecodesWithPortsPayloadAndChecksums) {
    const Bytes whole = tcp_packet(ipv4_base(), pattern(600));
    for (const Bytes& f : split(ipv4_base(), 4, l4_bytes(whole), {208, 416})) {
        feed(f);
    }

    ASSERT_EQ(delivered_.size(), 1U);
    const PacketInfo info = decoded();
    EXPECT_FALSE(info.fragment);
    EXPECT_EQ(info.src_port, 40000);
    EXPECT_EQ(info.dst_port, 443);
    EXPECT_EQ(payload_of(), pattern(600));
    EXPECT_TRUE(ipv4_header_checksum_ok(delivered_[0].data(), whole.size(), info));
    EXPECT_TRUE(l4_checksum_ok(delivered_[0].data(), whole.size(), info));
}

TEST_F(IpReassemblyTest, LastFirstMiddleOrderRejoinsCardNumberCutAtBoundary) {
    const std::string pan = "4778013874981371";
    const std::string body =
            "POST /checkout HTTP/1.1\r\nHost: shop.example\r\n"
            "Content-Type: application/x-www-form-urlencoded\r\n\r\n"
            "name=J+Doe&card="
            + pan + "&exp=12%2F29&cvv=123";
    const Bytes whole = tcp_packet(ipv4_base(), text(body));
    const Bytes l4 = l4_bytes(whole);
    const auto pan_at = static_cast<uint32_t>(20 + body.find(pan));
    const uint32_t cut = (pan_at / 8 + 1) * 8;  // inside the number
    ASSERT_LT(cut, pan_at + pan.size());
    const auto frags = split(ipv4_base(), 4, l4, {48, cut});
    for (const Bytes& f : frags) {
        ASSERT_FALSE(contains(f, pan));
    }

    feed(frags[2]);
    feed(frags[0]);
    EXPECT_TRUE(delivered_.empty());
    feed(frags[1]);

    ASSERT_EQ(delivered_.size(), 1U);
    EXPECT_EQ(decoded().dst_port, 443);
    EXPECT_EQ(payload_of(), text(body));
    EXPECT_TRUE(contains(payload_of(), pan));
}

TEST_F(IpReassemblyTest, Ipv6FragmentsBehindVlanTagKeepTheTag) {
    PacketBuilder base = ipv6_base();
    base.vlan(6);
    const Bytes whole = tcp_packet(base, Bytes(1000, 'A'));
    const auto frags = split(base, 6, l4_bytes(whole), {440, 880});

    feed(frags[1]);
    feed(frags[2]);
    feed(frags[0]);

    ASSERT_EQ(delivered_.size(), 1U);
    EXPECT_EQ(delivered_[0], whole);
    const PacketInfo info = decoded();
    EXPECT_EQ(info.vlan_count, 1);
    EXPECT_EQ(info.vlan[0], 6);
    EXPECT_FALSE(info.fragment);
    EXPECT_EQ(info.l4_proto, kProtoTcp);
    EXPECT_EQ(info.dst_port, 443);
    EXPECT_EQ(payload_of(), Bytes(1000, 'A'));
    EXPECT_TRUE(l4_checksum_ok(delivered_[0].data(), whole.size(), info));
}

TEST_F(IpReassemblyTest, Ipv6HeadersBeforeTheFragmentHeaderStayAndNameItsNextHeader) {
    PacketBuilder base = ipv6_base();
    base.ipv6_extension(test::kExtHopByHop, test::ipv6_padded_options(8))
            .ipv6_extension(test::kExtDestOptions, test::ipv6_padded_options(16));
    const Bytes whole = tcp_packet(base, pattern(300));
    const auto frags = split(base, 6, l4_bytes(whole), {160});

    feed(frags[1]);
    feed(frags[0]);

    ASSERT_EQ(delivered_.size(), 1U);
    EXPECT_EQ(delivered_[0], whole);
    EXPECT_EQ(payload_of(), pattern(300));
}

TEST_F(IpReassemblyTest, Ipv6FragmentsNamingDifferentNextHeadersStillJoin) {
    // RFC 8200 4.5: only the offset-zero fragment's next header counts.
    const Bytes whole = tcp_packet(ipv6_base(), pattern(100));
    const Bytes l4 = l4_bytes(whole);

    feed(ipv6_fragment(ipv6_base(), kProtoTcp, slice(l4, 0, 64), 0, true));
    feed(ipv6_fragment(ipv6_base(), kProtoUdp, slice(l4, 64, 56), 64, false));

    ASSERT_EQ(delivered_.size(), 1U);
    EXPECT_EQ(delivered_[0], whole);
}

TEST_F(IpReassemblyTest, TinyFragmentsOfSynHeaderRejoinIntoSyn) {
    PacketBuilder base = ipv4_base();
    base.vlan(6);
    Bytes whole = base.tcp(12345, 8080, kTcpSyn).build();
    const auto frags = split(base, 4, l4_bytes(whole), {8, 16});

    feed(frags[1]);
    feed(frags[2]);
    feed(frags[0]);

    ASSERT_EQ(delivered_.size(), 1U);
    EXPECT_EQ(delivered_[0], whole);
    const PacketInfo info = decoded();
    EXPECT_EQ(info.tcp_flags, kTcpSyn);
    EXPECT_EQ(info.src_port, 12345);
    EXPECT_EQ(info.dst_port, 8080);
    EXPECT_EQ(info.payload_len, 0U);
}

TEST_F(IpReassemblyTest, Ipv4OptionsAndDontFragmentBitSurviveTheRebuild) {
    PacketBuilder base = ipv4_base();
    base.ipv4_options({148, 4, 0, 0});  // Router Alert
    const Bytes whole = tcp_packet(base, pattern(200));
    auto frags = split(base, 4, l4_bytes(whole), {112});

    feed(frags[0]);
    feed(frags[1]);

    ASSERT_EQ(delivered_.size(), 1U);
    EXPECT_EQ(delivered_[0], whole);
    EXPECT_TRUE(ipv4_header_checksum_ok(delivered_[0].data(), whole.size(), decoded()));
}

TEST_F(IpReassemblyTest, UdpDatagramRejoinsWithValidChecksum) {
    PacketBuilder base = ipv4_base();
    const Bytes whole = PacketBuilder(base).udp(5353, 53).payload(pattern(900)).build();
    const Bytes l4 = l4_bytes(whole);

    feed(ipv4_fragment(base, kProtoUdp, slice(l4, 0, 504), 0, true));
    feed(ipv4_fragment(base, kProtoUdp, slice(l4, 504, 404), 504, false));

    ASSERT_EQ(delivered_.size(), 1U);
    const PacketInfo info = decoded();
    EXPECT_EQ(info.dst_port, 53);
    EXPECT_EQ(info.payload_len, 900U);
    EXPECT_TRUE(l4_checksum_ok(delivered_[0].data(), whole.size(), info));
}

// --- keys ------------------------------------------------------------------------------------

TEST_F(IpReassemblyTest, FragmentsOnDifferentVlansDoNotJoin) {
    PacketBuilder v10 = ipv4_base();
    v10.vlan(10);
    PacketBuilder v20 = ipv4_base();
    v20.vlan(20);
    const Bytes l4 = l4_bytes(tcp_packet(v10, pattern(100)));

    feed(ipv4_fragment(v10, kProtoTcp, slice(l4, 0, 64), 0, true));
    feed(ipv4_fragment(v20, kProtoTcp, slice(l4, 64, 56), 64, false));

    EXPECT_TRUE(delivered_.empty());
    EXPECT_EQ(reassembler_.in_progress(), 2U);
}

TEST_F(IpReassemblyTest, FragmentsWithDifferentIdsDoNotJoin) {
    const Bytes l4 = l4_bytes(tcp_packet(ipv4_base(), pattern(100)));

    feed(ipv4_fragment(ipv4_base(), kProtoTcp, slice(l4, 0, 64), 0, true, 1));
    feed(ipv4_fragment(ipv4_base(), kProtoTcp, slice(l4, 64, 56), 64, false, 2));

    EXPECT_TRUE(delivered_.empty());
    EXPECT_EQ(reassembler_.in_progress(), 2U);
}

// --- anomalies -------------------------------------------------------------------------------

TEST_F(IpReassemblyTest, DuplicatesAreCountedAndHarmless) {
    const Bytes whole = tcp_packet(ipv4_base(), pattern(600));
    const auto frags = split(ipv4_base(), 4, l4_bytes(whole), {208, 416});

    EXPECT_EQ(feed(frags[0]), FragmentStatus::Held);
    EXPECT_EQ(feed(frags[0]), FragmentStatus::Duplicate);
    EXPECT_EQ(feed(frags[1]), FragmentStatus::Held);
    EXPECT_EQ(feed(frags[1]), FragmentStatus::Duplicate);
    feed(frags[2]);

    ASSERT_EQ(delivered_.size(), 1U);
    EXPECT_EQ(delivered_[0], whole);
    EXPECT_EQ(reassembler_.stats().duplicates, 2U);
    EXPECT_EQ(reassembler_.stats().conflicting_overlaps, 0U);
}

TEST_F(IpReassemblyTest, OverlapWithIdenticalBytesIsCountedAndJoined) {
    const Bytes whole = tcp_packet(ipv4_base(), pattern(600));
    const Bytes l4 = l4_bytes(whole);

    feed(ipv4_fragment(ipv4_base(), kProtoTcp, slice(l4, 0, 208), 0, true));
    EXPECT_EQ(feed(ipv4_fragment(ipv4_base(), kProtoTcp, slice(l4, 104, 312), 104, true)),
            FragmentStatus::Overlap);
    feed(ipv4_fragment(ipv4_base(), kProtoTcp, slice(l4, 416, 204), 416, false));

    ASSERT_EQ(delivered_.size(), 1U);
    EXPECT_EQ(delivered_[0], whole);
    EXPECT_EQ(reassembler_.stats().overlaps, 1U);
}

TEST_F(IpReassemblyTest, ConflictingOverlapKeepsTheFirstCopy) {
    const Bytes whole = tcp_packet(ipv4_base(), pattern(600));
    const Bytes l4 = l4_bytes(whole);
    Bytes evil = slice(l4, 200, 216);
    std::fill(evil.begin() + 8, evil.end(), 'X');

    feed(ipv4_fragment(ipv4_base(), kProtoTcp, slice(l4, 0, 416), 0, true));
    EXPECT_EQ(feed(ipv4_fragment(ipv4_base(), kProtoTcp, evil, 200, true)),
            FragmentStatus::ConflictingOverlap);
    feed(ipv4_fragment(ipv4_base(), kProtoTcp, slice(l4, 416, 204), 416, false));

    ASSERT_EQ(delivered_.size(), 1U);
    EXPECT_EQ(delivered_[0], whole);
    EXPECT_EQ(reassembler_.stats().conflicting_overlaps, 1U);
}

TEST_F(IpReassemblyTest, ConflictingOverlapThatAlsoFillsAHoleIsCountedAndKeepsNewBytes) {
    const Bytes whole = tcp_packet(ipv4_base(), pattern(600));
    const Bytes l4 = l4_bytes(whole);
    Bytes mixed = slice(l4, 0, 416);
    mixed[100] = 'X';  // held already: the first copy stays

    feed(ipv4_fragment(ipv4_base(), kProtoTcp, slice(l4, 0, 208), 0, true));
    feed(ipv4_fragment(ipv4_base(), kProtoTcp, slice(l4, 416, 204), 416, false));
    EXPECT_EQ(feed(ipv4_fragment(ipv4_base(), kProtoTcp, mixed, 0, true)),
            FragmentStatus::ConflictingOverlap);

    ASSERT_EQ(delivered_.size(), 1U);
    EXPECT_EQ(delivered_[0], whole);
}

TEST(IpReassemblyLimitsTest, TooManyFragmentsGiveTheDatagramUp) {
    IpReassemblyConfig config = small_config();
    config.max_fragments_per_datagram = 4;
    IpReassembler r(config);
    const Bytes l4 = l4_bytes(tcp_packet(ipv4_base(), pattern(60)));
    std::vector<FragmentStatus> statuses;
    for (uint32_t off = 0; off < 80; off += 8) {
        statuses.push_back(
                offer(r, ipv4_fragment(ipv4_base(), kProtoTcp, slice(l4, off, 8), off, off < 72))
                        .status);
    }

    EXPECT_EQ(statuses[3], FragmentStatus::Held);
    EXPECT_EQ(statuses[4], FragmentStatus::TooManyFragments);
    EXPECT_EQ(statuses[5], FragmentStatus::DatagramFailed);
    EXPECT_EQ(r.stats().too_many_fragments, 1U);
    EXPECT_EQ(r.stats().discarded, 5U);
    EXPECT_EQ(r.memory_in_use(), 0U);
    EXPECT_EQ(r.in_progress(), 1U);  // kept until its timeout, so the rest is ignored
}

TEST_F(IpReassemblyTest, FragmentPastTheLargestDatagramIsOversize) {
    const Bytes l4 = pattern(16);

    EXPECT_EQ(feed(ipv4_fragment(ipv4_base(), kProtoTcp, l4, 65528, false)),
            FragmentStatus::Oversize);

    EXPECT_EQ(reassembler_.stats().oversize, 1U);
    EXPECT_EQ(reassembler_.memory_in_use(), 0U);
}

TEST_F(IpReassemblyTest, DatagramWhoseHeaderPushesTotalLengthPast65535IsOversize) {
    // 65,512 data bytes fit behind a 20-byte IPv4 header, not behind a 24-byte one.
    feed(ipv4_fragment(ipv4_base(), kProtoTcp, pattern(16), 65496, false));
    EXPECT_EQ(reassembler_.stats().oversize, 0U);
    PacketBuilder with_option = ipv4_base();
    with_option.ipv4_options({148, 4, 0, 0});
    EXPECT_EQ(feed(ipv4_fragment(with_option, kProtoTcp, pattern(8), 0, true)),
            FragmentStatus::Oversize);
    EXPECT_EQ(reassembler_.stats().oversize, 1U);
}

TEST(IpReassemblyLimitsTest, ConfiguredDatagramCapIsOversize) {
    IpReassemblyConfig config = small_config();
    config.max_datagram_bytes = 1024;
    IpReassembler r(config);
    const Bytes f = ipv4_fragment(ipv4_base(), kProtoTcp, pattern(16), 1016, false);

    EXPECT_EQ(offer(r, f).status, FragmentStatus::Oversize);
}

TEST_F(IpReassemblyTest, NonLastFragmentNotAMultipleOfEightIsInvalid) {
    EXPECT_EQ(feed(ipv4_fragment(ipv4_base(), kProtoTcp, pattern(13), 0, true)),
            FragmentStatus::Invalid);
    EXPECT_EQ(reassembler_.stats().invalid, 1U);
    EXPECT_EQ(reassembler_.in_progress(), 0U);
}

TEST_F(IpReassemblyTest, ZeroLengthFragmentIsInvalid) {
    EXPECT_EQ(feed(ipv4_fragment(ipv4_base(), kProtoTcp, {}, 64, false)), FragmentStatus::Invalid);
    EXPECT_EQ(reassembler_.in_progress(), 0U);
}

TEST_F(IpReassemblyTest, FragmentCutByTheCaptureIsInvalid) {
    Bytes f = ipv4_fragment(ipv4_base(), kProtoTcp, pattern(64), 0, true);
    f.resize(f.size() - 10);
    EXPECT_EQ(feed(f), FragmentStatus::Invalid);
}

TEST_F(IpReassemblyTest, FragmentBeyondTheKnownEndGivesTheDatagramUp) {
    feed(ipv4_fragment(ipv4_base(), kProtoTcp, pattern(40), 64, false));

    EXPECT_EQ(feed(ipv4_fragment(ipv4_base(), kProtoTcp, pattern(16), 104, true)),
            FragmentStatus::Invalid);
    EXPECT_EQ(feed(ipv4_fragment(ipv4_base(), kProtoTcp, pattern(64), 0, true)),
            FragmentStatus::DatagramFailed);
    EXPECT_TRUE(delivered_.empty());
    EXPECT_EQ(reassembler_.memory_in_use(), 0U);
}

TEST_F(IpReassemblyTest, TwoDifferentLastFragmentsGiveTheDatagramUp) {
    feed(ipv4_fragment(ipv4_base(), kProtoTcp, pattern(40), 64, false));

    EXPECT_EQ(feed(ipv4_fragment(ipv4_base(), kProtoTcp, pattern(48), 64, false)),
            FragmentStatus::Invalid);
    EXPECT_EQ(reassembler_.stats().invalid, 1U);
    EXPECT_EQ(reassembler_.memory_in_use(), 0U);
}

TEST_F(IpReassemblyTest, LastFragmentEndingBeforeHeldBytesGivesTheDatagramUp) {
    feed(ipv4_fragment(ipv4_base(), kProtoTcp, pattern(64), 64, true));

    EXPECT_EQ(feed(ipv4_fragment(ipv4_base(), kProtoTcp, pattern(8), 8, false)),
            FragmentStatus::Invalid);
}

TEST_F(IpReassemblyTest, FrameThatIsNoFragmentIsLeftAlone) {
    EXPECT_EQ(feed(tcp_packet(ipv4_base(), pattern(10))), FragmentStatus::NotFragment);
    EXPECT_EQ(reassembler_.stats().fragments, 0U);
}

// --- time and memory -------------------------------------------------------------------------

TEST_F(IpReassemblyTest, IncompleteDatagramTimesOutAndFreesItsMemory) {
    const auto frags =
            split(ipv4_base(), 4, l4_bytes(tcp_packet(ipv4_base(), pattern(600))), {208, 416});
    feed(frags[0], 1 * kSecond);
    feed(frags[1], 2 * kSecond);
    EXPECT_EQ(reassembler_.in_progress(), 1U);
    EXPECT_GT(reassembler_.memory_in_use(), 0U);

    reassembler_.expire(31 * kSecond - 1, 16);
    EXPECT_EQ(reassembler_.in_progress(), 1U);
    reassembler_.expire(31 * kSecond, 16);

    EXPECT_EQ(reassembler_.in_progress(), 0U);
    EXPECT_EQ(reassembler_.memory_in_use(), 0U);
    EXPECT_EQ(reassembler_.stats().timed_out, 1U);
}

TEST_F(IpReassemblyTest, LateFragmentAfterTheTimeoutStartsAfresh) {
    const auto frags =
            split(ipv4_base(), 4, l4_bytes(tcp_packet(ipv4_base(), pattern(600))), {208, 416});
    feed(frags[0], 0);
    feed(frags[1], 0);
    feed(frags[2], 30 * kSecond);

    EXPECT_TRUE(delivered_.empty());
    EXPECT_EQ(reassembler_.stats().timed_out, 1U);
    EXPECT_EQ(reassembler_.in_progress(), 1U);
}

TEST_F(IpReassemblyTest, ExpireStopsAtItsBudget) {
    const Bytes l4 = pattern(64);
    for (uint16_t id = 1; id <= 5; ++id) {
        feed(ipv4_fragment(ipv4_base(), kProtoTcp, l4, 0, true, id), 0);
    }

    reassembler_.expire(60 * kSecond, 2);

    EXPECT_EQ(reassembler_.in_progress(), 3U);
}

TEST(IpReassemblyLimitsTest, MemoryBudgetExhaustionEvictsTheOldestDatagram) {
    IpReassemblyConfig config = small_config();
    config.memory_bytes = size_t{4} * IpReassembler::kPageBytes;
    IpReassembler r(config);
    const Bytes whole = tcp_packet(ipv4_base(), pattern(2000));
    const Bytes l4 = l4_bytes(whole);
    offer(r, ipv4_fragment(ipv4_base(), kProtoTcp, slice(l4, 0, 1480), 0, true, 1));
    offer(r, ipv4_fragment(ipv4_base(), kProtoTcp, slice(l4, 0, 1480), 0, true, 2));
    EXPECT_EQ(r.memory_in_use(), size_t{4} * IpReassembler::kPageBytes);
    EXPECT_EQ(
            offer(r, ipv4_fragment(ipv4_base(), kProtoTcp, slice(l4, 0, 1480), 0, true, 3)).status,
            FragmentStatus::Held);

    EXPECT_EQ(r.stats().memory_exhausted, 1U);
    EXPECT_EQ(r.in_progress(), 2U);
    const ReassemblyResult done =
            offer(r, ipv4_fragment(ipv4_base(), kProtoTcp, slice(l4, 1480, 540), 1480, false, 2));
    ASSERT_TRUE(done.completed());
    EXPECT_EQ(done.frame.len, whole.size());
}

TEST(IpReassemblyLimitsTest, DatagramLargerThanTheWholeBudgetIsMemoryExhausted) {
    IpReassemblyConfig config = small_config();
    config.memory_bytes = size_t{2} * IpReassembler::kPageBytes;
    IpReassembler r(config);
    const Bytes f = ipv4_fragment(ipv4_base(), kProtoTcp, pattern(4000), 0, true);

    EXPECT_EQ(offer(r, f).status, FragmentStatus::MemoryExhausted);
    EXPECT_EQ(r.stats().memory_exhausted, 1U);
    EXPECT_EQ(r.memory_in_use(), 0U);
}

TEST(IpReassemblyLimitsTest, FullTableEvictsTheOldestDatagram) {
    IpReassemblyConfig config = small_config();
    config.max_datagrams = 2;
    IpReassembler r(config);
    for (uint16_t id = 1; id <= 3; ++id) {
        offer(r, ipv4_fragment(ipv4_base(), kProtoTcp, pattern(64), 0, true, id), id);
    }

    EXPECT_EQ(r.in_progress(), 2U);
    EXPECT_EQ(r.stats().memory_exhausted, 1U);
    EXPECT_EQ(r.memory_in_use(), size_t{2} * IpReassembler::kPageBytes);
}

// --- garbage ---------------------------------------------------------------------------------

// A fragment of id kId at a random offset past 0 (so its datagram can never be complete),
// random length (now and then not a multiple of 8), random MF and bytes of few values (so
// overlaps both agree and differ).
Bytes garbage_fragment(std::mt19937& rng) {
    const uint32_t offset = 8 * (1 + rng() % 250);
    uint32_t len = 1 + rng() % 300;
    const bool more = rng() % 4 != 0;
    if (more && rng() % 8 != 0) {
        len = (len + 7) / 8 * 8;
    }
    Bytes data(len);
    for (auto& b : data) {
        b = static_cast<uint8_t>(rng() % 3);
    }
    return ipv4_fragment(ipv4_base(), kProtoTcp, data, offset, more);
}

// A valid IPv4 (VLAN-tagged) or IPv6 (with Destination Options) fragment of `l4` with up to
// two random bytes changed and now and then cut short.
Bytes mutated_fragment(std::mt19937& rng, const Bytes& l4) {
    PacketBuilder v4 = ipv4_base();
    v4.vlan(3);
    PacketBuilder v6 = ipv6_base();
    v6.ipv6_extension(test::kExtDestOptions, test::ipv6_padded_options(8));
    const uint32_t offset = 8 * (rng() % 6);
    const uint32_t len = 8 * (1 + rng() % 4);
    const bool more = rng() % 2 != 0;
    const auto id = static_cast<uint16_t>(rng() % 4);
    Bytes f = rng() % 2 == 0
            ? ipv4_fragment(v4, kProtoTcp, slice(l4, offset, len), offset, more, id)
            : ipv6_fragment(v6, kProtoTcp, slice(l4, offset, len), offset, more, id);
    for (int flips = static_cast<int>(rng() % 3); flips > 0; --flips) {
        f[rng() % f.size()] = static_cast<uint8_t>(rng());
    }
    if (rng() % 5 == 0) {
        f.resize(1 + rng() % f.size());
    }
    return f;
}

TEST_F(IpReassemblyTest, ThousandOverlappingFragmentsOfOneIdNeverCrashOrDeliver) {
    std::mt19937 rng(20240611);
    for (int i = 0; i < 1000; ++i) {
        feed(garbage_fragment(rng), i * 1000ULL);
        ASSERT_LE(reassembler_.in_progress(), 1U);
        ASSERT_LE(reassembler_.memory_in_use(), size_t{64} * IpReassembler::kPageBytes);
    }

    const ReassemblyStats& s = reassembler_.stats();
    EXPECT_TRUE(delivered_.empty());
    EXPECT_EQ(s.datagrams_completed, 0U);
    EXPECT_EQ(s.fragments, 1000U);
    EXPECT_GT(s.invalid + s.too_many_fragments + s.conflicting_overlaps + s.discarded, 0U);
    reassembler_.expire(UINT64_MAX, 16);
    EXPECT_EQ(reassembler_.in_progress(), 0U);
    EXPECT_EQ(reassembler_.memory_in_use(), 0U);
}

TEST_F(IpReassemblyTest, MutatedFragmentsStayWithinBounds) {
    // Valid IPv4 and IPv6 fragments with random bytes changed and random cuts; whatever
    // completes must decode within its own length.
    std::mt19937 rng(7);
    const Bytes l4 = l4_bytes(tcp_packet(ipv4_base(), pattern(400)));
    uint64_t completed = 0;
    for (int round = 0; round < 20000; ++round) {
        feed(mutated_fragment(rng, l4), round * 1'000'000ULL);
        for (const Bytes& frame : delivered_) {
            decode_exact(frame);
            ++completed;
        }
        delivered_.clear();
        ASSERT_LE(reassembler_.memory_in_use(), size_t{64} * IpReassembler::kPageBytes);
    }
    EXPECT_GT(completed, 0U);
    reassembler_.expire(UINT64_MAX, 1000);
    EXPECT_EQ(reassembler_.in_progress(), 0U);
    EXPECT_EQ(reassembler_.memory_in_use(), 0U);
}

// --- captures --------------------------------------------------------------------------------

struct CaptureRun {
    std::vector<Bytes> captured;
    std::vector<Bytes> delivered;
    uint64_t last_time_ns = 0;
};

class IpReassemblyCaptureTest : public ::testing::Test {
protected:
    void SetUp() override {
        dir_ = test::shared_capture_dir();
        if (!std::filesystem::is_directory(dir_ / "pcaps")
                || !std::filesystem::is_directory(dir_ / "cases")) {
            if (test::shared_captures_required()) {
                FAIL() << "EXFILTAP_REQUIRE_SHARED=1 but " << dir_
                       << " has no pcaps/ and cases/ folders (set EXFILTAP_SHARED_DIR)";
            }
            GTEST_SKIP() << "shared captures not found at " << dir_
                         << "; set EXFILTAP_SHARED_DIR to the shared folder to run this test";
        }
    }

    // Offers every fragment of the capture, as a worker would, at capture time.
    CaptureRun run(const std::string& sub, const std::string& name) {
        std::vector<test::PcapRecord> records;
        std::string error;
        EXPECT_TRUE(test::read_pcap_file(dir_ / sub / name, records, error))
                << name << ": " << error;
        CaptureRun out;
        for (const test::PcapRecord& rec : records) {
            const ReassemblyResult r = offer(reassembler_, rec.data, rec.time_ns);
            if (r.completed()) {
                out.delivered.emplace_back(r.frame.data, r.frame.data + r.frame.len);
            }
            out.captured.push_back(rec.data);
            out.last_time_ns = rec.time_ns;
        }
        return out;
    }

    static PacketInfo decode_frame(const Bytes& frame) {
        PacketInfo info;
        EXPECT_TRUE(decode_packet(frame.data(), static_cast<uint32_t>(frame.size()), info));
        return info;
    }

    static Bytes payload(const Bytes& frame) {
        const PacketInfo info = decode_frame(frame);
        return {frame.begin() + info.payload_offset,
                frame.begin() + info.payload_offset + info.payload_len};
    }

    std::filesystem::path dir_;
    IpReassembler reassembler_{IpReassemblyConfig{}};
};

TEST_F(IpReassemblyCaptureTest, OutOfOrderIpv4FragmentsRejoinTheCardNumber) {
    const CaptureRun run_result = run("cases", "c09_ipv4_frag_ooo_pan.pcap");
    for (const Bytes& frame : run_result.captured) {
        ASSERT_FALSE(contains(frame, "4778013874981371"));  // cut by a fragment boundary
    }

    ASSERT_EQ(run_result.delivered.size(), 1U);
    const Bytes& frame = run_result.delivered[0];
    const PacketInfo info = decode_frame(frame);
    EXPECT_FALSE(info.fragment);
    EXPECT_EQ(info.l4_proto, kProtoTcp);
    EXPECT_TRUE(l4_checksum_ok(frame.data(), static_cast<uint32_t>(frame.size()), info));
    EXPECT_TRUE(contains(payload(frame), "4778013874981371"));
}

TEST_F(IpReassemblyCaptureTest, TinyIpv4FragmentsBehindVlanRejoinIntoSyn) {
    const CaptureRun run_result = run("pcaps", "sv_vlan-ipv4-frag-tcp-syn.pcap");

    ASSERT_EQ(run_result.delivered.size(), 1U);
    const PacketInfo info = decode_frame(run_result.delivered[0]);
    EXPECT_EQ(info.vlan_count, 1);
    EXPECT_EQ(info.vlan[0], 6);
    EXPECT_NE(info.tcp_flags & kTcpSyn, 0);
    EXPECT_EQ(info.src_port, 12345);
    EXPECT_EQ(info.dst_port, 8080);
}

TEST_F(IpReassemblyCaptureTest, Ipv6FragmentsBehindVlanRejoinThousandBytes) {
    const CaptureRun run_result = run("pcaps", "sv_vlan-ipv6-frag-tcp.pcap");

    ASSERT_EQ(run_result.delivered.size(), 1U);
    const PacketInfo info = decode_frame(run_result.delivered[0]);
    EXPECT_EQ(info.vlan[0], 6);
    EXPECT_EQ(info.dst_port, 8080);
    EXPECT_EQ(payload(run_result.delivered[0]), Bytes(1000, 'A'));
}

TEST_F(IpReassemblyCaptureTest, IncompleteIpv4FragmentsTimeOut) {
    const CaptureRun run_result = run("pcaps", "zeek_ipv4-frags-incomplete.pcap");

    EXPECT_TRUE(run_result.delivered.empty());
    EXPECT_EQ(reassembler_.in_progress(), 1U);
    reassembler_.expire(run_result.last_time_ns + 30 * kSecond, 16);
    EXPECT_EQ(reassembler_.stats().timed_out, 1U);
    EXPECT_EQ(reassembler_.in_progress(), 0U);
    EXPECT_EQ(reassembler_.memory_in_use(), 0U);
}

TEST_F(IpReassemblyCaptureTest, GarbageFragmentsOfOneIdStayBounded) {
    const CaptureRun run_result = run("pcaps", "ndpi_ipv4-frag-garbage.pcap");

    const ReassemblyStats& s = reassembler_.stats();
    EXPECT_TRUE(run_result.delivered.empty());
    EXPECT_GT(s.fragments, 1000U);
    EXPECT_GT(
            s.duplicates + s.overlaps + s.conflicting_overlaps + s.too_many_fragments + s.discarded,
            0U);
    EXPECT_LE(reassembler_.memory_in_use(), size_t{64} * IpReassembler::kPageBytes);
    reassembler_.expire(run_result.last_time_ns + 30 * kSecond, 16);
    EXPECT_EQ(reassembler_.in_progress(), 0U);
    EXPECT_EQ(reassembler_.memory_in_use(), 0U);
}

TEST_F(IpReassemblyCaptureTest, FragmentedIpv6DnsAnswerRejoins) {
    const CaptureRun run_result = run("pcaps", "zeek_dns-ipv6-fragmented-txt.pcap");

    ASSERT_EQ(run_result.delivered.size(), 1U);
    const Bytes& frame = run_result.delivered[0];
    const PacketInfo info = decode_frame(frame);
    EXPECT_EQ(info.l4_proto, kProtoUdp);
    EXPECT_EQ(info.src_port, 53);
    EXPECT_TRUE(l4_checksum_ok(frame.data(), static_cast<uint32_t>(frame.size()), info));
}

}  // namespace
}  // namespace exfiltap::dataplane
