#include "dataplane/flow_offload.h"

#include <net/if.h>
#include <unistd.h>

#include <cstring>
#include <string>

#include <gtest/gtest.h>
#include <rte_byteorder.h>
#include <rte_dev.h>
#include <rte_ethdev.h>
#include <rte_mbuf.h>

#include "tests/eal/eal_env.h"

namespace exfiltap::dataplane {
namespace {

TEST(FlowDropRuleTest, MatchesOneIpv4SourceAndDrops) {
    const FlowDropRule rule(4, {192, 0, 2, 77});

    EXPECT_EQ(1u, rule.attr.ingress);
    EXPECT_EQ(0u, rule.attr.egress);
    EXPECT_EQ(0u, rule.attr.transfer);
    EXPECT_EQ(RTE_FLOW_ITEM_TYPE_ETH, rule.pattern[0].type);
    EXPECT_EQ(nullptr, rule.pattern[0].spec);
    EXPECT_EQ(RTE_FLOW_ITEM_TYPE_IPV4, rule.pattern[1].type);
    EXPECT_EQ(RTE_FLOW_ITEM_TYPE_END, rule.pattern[2].type);
    const auto* spec = static_cast<const rte_flow_item_ipv4*>(rule.pattern[1].spec);
    const auto* mask = static_cast<const rte_flow_item_ipv4*>(rule.pattern[1].mask);
    ASSERT_NE(nullptr, spec);
    ASSERT_NE(nullptr, mask);
    EXPECT_EQ(RTE_IPV4(192, 0, 2, 77), rte_be_to_cpu_32(spec->hdr.src_addr));
    EXPECT_EQ(0xffffffffu, mask->hdr.src_addr);
    EXPECT_EQ(0u, mask->hdr.dst_addr);
    EXPECT_EQ(0u, mask->hdr.next_proto_id);
    EXPECT_EQ(RTE_FLOW_ACTION_TYPE_DROP, rule.actions[0].type);
    EXPECT_EQ(RTE_FLOW_ACTION_TYPE_END, rule.actions[1].type);
}

TEST(FlowDropRuleTest, MatchesOneIpv6SourceAndDrops) {
    const std::array<uint8_t, 16> src = {
            0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x42};
    const FlowDropRule rule(6, src);

    EXPECT_EQ(RTE_FLOW_ITEM_TYPE_IPV6, rule.pattern[1].type);
    const auto* spec = static_cast<const rte_flow_item_ipv6*>(rule.pattern[1].spec);
    const auto* mask = static_cast<const rte_flow_item_ipv6*>(rule.pattern[1].mask);
    ASSERT_NE(nullptr, spec);
    ASSERT_NE(nullptr, mask);
    EXPECT_EQ(0, std::memcmp(spec->hdr.src_addr, src.data(), 16));
    const std::array<uint8_t, 16> ones = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
            0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
    const std::array<uint8_t, 16> zeros{};
    EXPECT_EQ(0, std::memcmp(mask->hdr.src_addr, ones.data(), 16));
    EXPECT_EQ(0, std::memcmp(mask->hdr.dst_addr, zeros.data(), 16));
    EXPECT_EQ(RTE_FLOW_ACTION_TYPE_DROP, rule.actions[0].type);
}

TEST(FlowDropRuleTest, CopyPointsAtItsOwnSpecs) {
    const FlowDropRule original(4, {198, 51, 100, 1});
    FlowDropRule copy(original);
    EXPECT_EQ(&copy.ipv4_spec, copy.pattern[1].spec);
    EXPECT_EQ(&copy.ipv4_mask, copy.pattern[1].mask);

    FlowDropRule assigned(6, {});
    assigned = original;
    EXPECT_EQ(RTE_FLOW_ITEM_TYPE_IPV4, assigned.pattern[1].type);
    EXPECT_EQ(&assigned.ipv4_spec, assigned.pattern[1].spec);
}

// A net_tap port with a unique interface name and no address; removed by TearDown.
class TapOffloadTest : public ::testing::Test {
protected:
    void SetUp() override {
        const std::string suffix = std::to_string(getpid() % 100000);
        vdev_ = "net_tap_xbt" + suffix;
        iface_ = "xbt" + suffix;
        if (rte_eal_hotplug_add("vdev", vdev_.c_str(), ("iface=" + iface_).c_str()) != 0) {
            GTEST_SKIP() << "net_tap cannot be created here: " << rte_strerror(rte_errno);
        }
        created_ = true;
        ASSERT_EQ(0, rte_eth_dev_get_port_by_name(vdev_.c_str(), &port_));
        pool_ = rte_pktmbuf_pool_create(("xbt" + suffix).c_str(), 511, 0, 0,
                RTE_MBUF_DEFAULT_BUF_SIZE, static_cast<int>(rte_socket_id()));
        ASSERT_NE(nullptr, pool_);
        rte_eth_conf conf{};
        ASSERT_EQ(0, rte_eth_dev_configure(port_, 1, 1, &conf));
        ASSERT_EQ(0, rte_eth_rx_queue_setup(port_, 0, 64, rte_socket_id(), nullptr, pool_));
        ASSERT_EQ(0, rte_eth_tx_queue_setup(port_, 0, 64, rte_socket_id(), nullptr));
        ASSERT_EQ(0, rte_eth_dev_start(port_));
        started_ = true;
    }

    void TearDown() override {
        if (started_) {
            rte_eth_dev_stop(port_);
        }
        if (created_) {
            rte_eth_dev_close(port_);
            rte_eal_hotplug_remove("vdev", vdev_.c_str());
            EXPECT_EQ(0u, if_nametoindex(iface_.c_str())) << iface_ << " left behind";
        }
        rte_mempool_free(pool_);
    }

    std::string vdev_;
    std::string iface_;
    uint16_t port_ = 0;
    rte_mempool* pool_ = nullptr;
    bool created_ = false;
    bool started_ = false;
};

TEST_F(TapOffloadTest, InstallsAndRemovesDropRules) {
    const FlowOffloadSupport support = probe_flow_offload(port_);
    if (!support.v4.ok()) {
        GTEST_SKIP() << support.v4.error();
    }

    Result<rte_flow*> v4_rule = install_drop_rule(port_, FlowDropRule(4, {192, 0, 2, 10}));
    ASSERT_TRUE(v4_rule.ok()) << v4_rule.error();
    ASSERT_NE(nullptr, *v4_rule);
    if (support.v6.ok()) {
        Result<rte_flow*> v6_rule = install_drop_rule(port_,
                FlowDropRule(6, {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 9}));
        ASSERT_TRUE(v6_rule.ok()) << v6_rule.error();
        EXPECT_TRUE(remove_drop_rule(port_, *v6_rule).ok());
    }
    const Status removed = remove_drop_rule(port_, *v4_rule);
    EXPECT_TRUE(removed.ok()) << removed.error();
}

TEST(FlowOffloadTest, PortWithoutDeviceGivesReasons) {
    const uint16_t no_port = RTE_MAX_ETHPORTS - 1;
    const FlowOffloadSupport support = probe_flow_offload(no_port);
    ASSERT_FALSE(support.v4.ok());
    ASSERT_FALSE(support.v6.ok());
    EXPECT_NE(std::string::npos, support.v4.error().find("IPv4")) << support.v4.error();
    EXPECT_NE(std::string::npos, support.v6.error().find("IPv6")) << support.v6.error();
    const Result<rte_flow*> rule = install_drop_rule(no_port, FlowDropRule(4, {192, 0, 2, 1}));
    ASSERT_FALSE(rule.ok());
    EXPECT_NE(std::string::npos, rule.error().find("not installed")) << rule.error();
}

// gtest_main runs the tests; the EAL comes up before the first one.
[[maybe_unused]] ::testing::Environment* const kEal =
        ::testing::AddGlobalTestEnvironment(new exfiltap::testing::EalEnvironment());

}  // namespace
}  // namespace exfiltap::dataplane
