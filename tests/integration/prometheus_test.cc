// A real Prometheus server scrapes the exporter: the fixture in prometheus_server.h starts
// Debian's prometheus on 127.0.0.1, the exporter runs here with a provider whose packet
// count grows at every scrape, and the values come back through /api/v1/query.
// Skipped when there is no prometheus binary, unless EXFILTAP_REQUIRE_SHARED=1.
#include <atomic>
#include <chrono>
#include <thread>

#include <gtest/gtest.h>

#include "control/metrics.h"
#include "tests/integration/prometheus_server.h"

namespace exfiltap::testing {
namespace {

using control::MetricsConfig;
using control::MetricsExporter;
using control::MetricsSnapshot;

constexpr auto kWait = std::chrono::seconds(30);

class PrometheusScrapeTest : public ::testing::Test {
protected:
    void SetUp() override {
        if (!find_prometheus_binary()) {
            if (shared_tools_required()) {
                FAIL() << "EXFILTAP_REQUIRE_SHARED=1 but there is no prometheus binary "
                          "(apt-get install prometheus)";
            }
            GTEST_SKIP() << "no prometheus binary: apt-get install prometheus to run this test "
                            "(EXFILTAP_REQUIRE_SHARED=1 makes this a failure)";
        }
        MetricsConfig config;
        config.listen = "127.0.0.1:0";
        auto exporter = MetricsExporter::start(
                config,
                [this](MetricsSnapshot& s) {
                    const uint64_t n = scrapes_.fetch_add(1) + 1;
                    s.traffic = {{"0", "rx", 1000 * n, 64000 * n}};
                    s.workers = {{"0", 5, n, 0, 0, 0.5}};
                    s.version = "0.1.0-test";
                },
                [](std::function<void()> job) {
                    std::thread(std::move(job)).join();
                    return Status(Ok{});
                });
        ASSERT_TRUE(exporter.ok()) << exporter.error();
        exporter_ = std::move(exporter.value());
        auto server = PrometheusServer::start("127.0.0.1:" + std::to_string(exporter_->port()));
        ASSERT_TRUE(server.ok()) << server.error();
        server_ = std::move(server.value());
    }

    std::atomic<uint64_t> scrapes_{0};
    std::unique_ptr<MetricsExporter> exporter_;
    std::unique_ptr<PrometheusServer> server_;
};

TEST_F(PrometheusScrapeTest, ReadsGrowingPacketCountBack) {
    const auto first = server_->wait_for_value(
            R"(exfiltap_packets_total{job="exfiltap",port="0",direction="rx"})",
            [](double v) { return v >= 1000; }, kWait);
    ASSERT_TRUE(first.ok()) << first.error() << "\n" << server_->log();
    const auto later = server_->wait_for_value(
            "exfiltap_packets_total", [&](double v) { return v >= first.value() + 2000; }, kWait);
    ASSERT_TRUE(later.ok()) << later.error() << "\n" << server_->log();
    // Every value is a whole number of scrapes times 1000: nothing was mangled on the way.
    EXPECT_EQ(static_cast<uint64_t>(later.value()) % 1000, 0U);
    EXPECT_LE(later.value(), 1000.0 * static_cast<double>(scrapes_.load()));
}

TEST_F(PrometheusScrapeTest, SeesTargetUpGaugesAndLabels) {
    const auto up = server_->wait_for_value(
            "up{job=\"exfiltap\"}", [](double v) { return v == 1; }, kWait);
    ASSERT_TRUE(up.ok()) << up.error() << "\n" << server_->log();
    const auto busy = server_->wait_for_value(
            "exfiltap_worker_busy_ratio{worker=\"0\"}", [](double v) { return v == 0.5; }, kWait);
    EXPECT_TRUE(busy.ok()) << busy.error();
    const auto info = server_->query("exfiltap_build_info");
    ASSERT_TRUE(info.ok()) << info.error();
    const nlohmann::json& samples = info.value();
    ASSERT_EQ(samples.size(), 1U) << samples.dump();
    EXPECT_EQ(samples[0]["metric"]["version"], "0.1.0-test");
    EXPECT_EQ(samples[0]["value"][1], "1");
}

TEST(PrometheusServerTest, RefusesTargetsOffLoopback) {
    const auto server = PrometheusServer::start("192.0.2.1:9477");
    ASSERT_FALSE(server.ok());
    EXPECT_EQ(server.error(),
            "prometheus test server scrapes loopback targets only, got 192.0.2.1:9477");
}

}  // namespace
}  // namespace exfiltap::testing
