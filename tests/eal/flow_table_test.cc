#include "dataplane/flow_table.h"

#include <vector>

#include <gtest/gtest.h>

#include "tests/eal/eal_env.h"

namespace exfiltap::dataplane {
namespace {

constexpr uint64_t kSecond = 1000000000ULL;

class Recorder final : public FlowEndHandler {
public:
    void on_flow_end(Flow& flow, EvictReason reason) noexcept override {
        ended.push_back(flow.key.port_hi);
        reasons.push_back(reason);
    }
    std::vector<uint16_t> ended;
    std::vector<EvictReason> reasons;
};

PacketInfo tcp_packet(uint8_t src_last, uint16_t sport, uint8_t dst_last, uint16_t dport) {
    PacketInfo info;
    info.ip_version = 4;
    info.l4_proto = kProtoTcp;
    info.src = {10, 0, 0, src_last};
    info.dst = {198, 51, 100, dst_last};
    info.src_port = sport;
    info.dst_port = dport;
    return info;
}

FlowKey key_for_port(uint16_t port) {
    bool lo = false;
    return make_flow_key(tcp_packet(1, 1000, 2, port), true, lo);
}

std::unique_ptr<FlowTable> make_table(Recorder& rec, uint32_t capacity, const char* name) {
    FlowTableConfig config;
    config.capacity = capacity;
    config.timeout_ns = {60 * kSecond, 5 * kSecond, 30 * kSecond, 30 * kSecond};
    const char* error = nullptr;
    auto table = FlowTable::create(name, config, rec, &error);
    EXPECT_NE(table, nullptr) << (error != nullptr ? error : "");
    return table;
}

TEST(FlowKeyTest, BothDirectionsGiveTheSameKey) {
    bool fwd_lo = false;
    bool rev_lo = false;
    const FlowKey fwd = make_flow_key(tcp_packet(7, 40000, 9, 443), true, fwd_lo);
    PacketInfo reverse = tcp_packet(7, 40000, 9, 443);
    std::swap(reverse.src, reverse.dst);
    std::swap(reverse.src_port, reverse.dst_port);
    const FlowKey rev = make_flow_key(reverse, true, rev_lo);
    EXPECT_EQ(0, memcmp(&fwd, &rev, sizeof(FlowKey)));
    EXPECT_NE(fwd_lo, rev_lo);
}

TEST(FlowKeyTest, VlanIsPartOfTheKeyUnlessConfiguredOut) {
    PacketInfo a = tcp_packet(1, 1, 2, 2);
    PacketInfo b = a;
    b.vlan_count = 1;
    b.vlan[0] = 42;
    bool lo = false;
    const FlowKey with_a = make_flow_key(a, true, lo);
    const FlowKey with_b = make_flow_key(b, true, lo);
    EXPECT_NE(0, memcmp(&with_a, &with_b, sizeof(FlowKey)));
    const FlowKey without_a = make_flow_key(a, false, lo);
    const FlowKey without_b = make_flow_key(b, false, lo);
    EXPECT_EQ(0, memcmp(&without_a, &without_b, sizeof(FlowKey)));
}

TEST(FlowTableTest, FindsTheFlowItCreated) {
    Recorder rec;
    auto table = make_table(rec, 64, "ft_find");
    bool created = false;
    const uint32_t a = table->lookup_or_create(key_for_port(80), kSecond, created);
    EXPECT_TRUE(created);
    const uint32_t b = table->lookup_or_create(key_for_port(80), 2 * kSecond, created);
    EXPECT_FALSE(created);
    EXPECT_EQ(a, b);
    EXPECT_EQ(table->active(), 1U);
}

TEST(FlowTableTest, EvictsOldestWhenFull) {
    Recorder rec;
    auto table = make_table(rec, 8, "ft_full");
    bool created = false;
    for (uint16_t port = 1; port <= 8; ++port) {
        const uint32_t idx = table->lookup_or_create(key_for_port(port), port * kSecond, created);
        table->touch(idx, port * kSecond, TimeoutClass::TcpOpen);
    }
    // Port 1 becomes the most recent; port 2 is now the oldest.
    const uint32_t one = table->lookup_or_create(key_for_port(1), 20 * kSecond, created);
    table->touch(one, 20 * kSecond, TimeoutClass::TcpOpen);
    table->lookup_or_create(key_for_port(100), 21 * kSecond, created);
    EXPECT_TRUE(created);
    ASSERT_EQ(rec.ended.size(), 1U);
    EXPECT_EQ(rec.ended[0], 2);
    EXPECT_EQ(rec.reasons[0], EvictReason::TableFull);
    EXPECT_EQ(table->active(), 8U);
    EXPECT_EQ(table->evicted_full(), 1U);
}

TEST(FlowTableTest, ClosedFlowsAreEvictedFirst) {
    Recorder rec;
    auto table = make_table(rec, 4, "ft_closed");
    bool created = false;
    for (uint16_t port = 1; port <= 4; ++port) {
        const uint32_t idx = table->lookup_or_create(key_for_port(port), port * kSecond, created);
        table->touch(
                idx, port * kSecond, port == 3 ? TimeoutClass::TcpClosed : TimeoutClass::TcpOpen);
    }
    table->lookup_or_create(key_for_port(9), 10 * kSecond, created);
    ASSERT_EQ(rec.ended.size(), 1U);
    EXPECT_EQ(rec.ended[0], 3);
}

TEST(FlowTableTest, ExpiresIdleFlowsByTheirClassTimeout) {
    Recorder rec;
    auto table = make_table(rec, 64, "ft_expire");
    bool created = false;
    const uint32_t open = table->lookup_or_create(key_for_port(1), 0, created);
    table->touch(open, 0, TimeoutClass::TcpOpen);
    const uint32_t closed = table->lookup_or_create(key_for_port(2), 0, created);
    table->touch(closed, 0, TimeoutClass::TcpClosed);
    EXPECT_EQ(table->expire(6 * kSecond, 100), 1U);
    ASSERT_EQ(rec.ended.size(), 1U);
    EXPECT_EQ(rec.ended[0], 2);
    EXPECT_EQ(table->expire(59 * kSecond, 100), 0U);
    EXPECT_EQ(table->expire(61 * kSecond, 100), 1U);
    EXPECT_EQ(table->active(), 0U);
    EXPECT_EQ(rec.reasons[1], EvictReason::Timeout);
}

TEST(FlowTableTest, ExpiryIsBoundedPerCall) {
    Recorder rec;
    auto table = make_table(rec, 256, "ft_bound");
    bool created = false;
    for (uint16_t port = 1; port <= 100; ++port) {
        const uint32_t idx = table->lookup_or_create(key_for_port(port), 0, created);
        table->touch(idx, 0, TimeoutClass::Udp);
    }
    EXPECT_EQ(table->expire(1000 * kSecond, 64), 64U);
    EXPECT_EQ(table->expire(1000 * kSecond, 64), 36U);
}

TEST(FlowTableTest, ClearEndsEveryFlow) {
    Recorder rec;
    auto table = make_table(rec, 64, "ft_clear");
    bool created = false;
    for (uint16_t port = 1; port <= 10; ++port) {
        table->lookup_or_create(key_for_port(port), 0, created);
    }
    table->clear(EvictReason::Shutdown);
    EXPECT_EQ(rec.ended.size(), 10U);
    EXPECT_EQ(table->active(), 0U);
    // Slots are reusable after a clear.
    table->lookup_or_create(key_for_port(1), 0, created);
    EXPECT_TRUE(created);
}

}  // namespace
}  // namespace exfiltap::dataplane

int main(int argc, char** argv) {
    ::testing::InitGoogleTest(&argc, argv);
    ::testing::AddGlobalTestEnvironment(new exfiltap::testing::EalEnvironment());
    return RUN_ALL_TESTS();
}
