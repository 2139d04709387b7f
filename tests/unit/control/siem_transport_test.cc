// The SIEM outputs against real peers: a syslog receiver of the test (UDP, TCP, Unix
// datagram and stream sockets on loopback or in a temp folder), a receiver that accepts and
// never reads, nobody listening, and a redis-server the test starts on 127.0.0.1.
#include <arpa/inet.h>

#include <chrono>
#include <regex>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "control/siem_output.h"
#include "tests/siem_fixtures.h"
#include "tests/temp_dir.h"

#include <nlohmann/json.hpp>

namespace exfiltap::control {
namespace {

using test_support::TempDir;
using testing::RedisServer;
using testing::RedisSubscriber;
using testing::SyslogReceiver;

constexpr uint32_t kDrainMs = 10000;

AlertRecord record(uint64_t flow_id) {
    AlertRecord r;
    r.timestamp_s = 1700000000.0 + static_cast<double>(flow_id);
    r.flow_id = flow_id;
    inet_pton(AF_INET, "10.1.2.3", r.src.data());
    inet_pton(AF_INET, "198.51.100.7", r.dst.data());
    r.src_port = 50000;
    r.dst_port = 80;
    r.signature_id = 2100001;
    r.signature = "EXFIL payment card number sent to an external network";
    r.cls = "payment_card";
    r.sample = "************4242";
    r.severity = detectors::Severity::Critical;
    return r;
}

void publish(SiemOutputs& outputs, uint64_t first, uint64_t n) {
    for (uint64_t i = first; i < first + n; ++i) {
        const AlertRecord r = record(i);
        outputs.publish(r, alert_to_json(r));
    }
}

OutputsConfig syslog_to(SyslogTransport transport, const std::string& address,
        SyslogFormat format = SyslogFormat::Json) {
    OutputsConfig config;
    config.syslog.enabled = true;
    config.syslog.transport = transport;
    config.syslog.address = address;
    config.syslog.format = format;
    return config;
}

/// The MSG part of an RFC 5424 line with nil structured data, checking the header shape.
std::string msg_of(const std::string& line) {
    static const std::regex kHeader(
            R"(<170>1 \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z \S+ exfiltap \d+ alert - )");
    std::smatch m;
    EXPECT_TRUE(std::regex_search(line, m, kHeader, std::regex_constants::match_continuous))
            << line;
    return m.empty() ? std::string() : line.substr(static_cast<size_t>(m.length(0)));
}

TEST(SiemSyslogTest, UdpReceiverGetsRfc5424JsonMessages) {
    SyslogReceiver receiver(SyslogReceiver::Kind::Udp);
    ASSERT_TRUE(receiver.ok()) << receiver.error();
    SiemOutputs outputs(syslog_to(SyslogTransport::Udp, receiver.address()), "0.1.0");
    ASSERT_TRUE(outputs.start(start_std_thread).ok());

    publish(outputs, 1, 3);
    const std::vector<std::string> got = receiver.wait_for(3);
    outputs.stop(kDrainMs);

    ASSERT_EQ(got.size(), 3U);
    for (size_t i = 0; i < got.size(); ++i) {
        const nlohmann::json j = nlohmann::json::parse(msg_of(got[i]));
        EXPECT_EQ(j["flow_id"], i + 1);
        EXPECT_EQ(j["exfil"]["sample"], "************4242");
    }
    EXPECT_EQ(outputs.outputs()[0]->counts().sent, 3U);
}

TEST(SiemSyslogTest, TcpReceiverGetsOctetCountedCefMessages) {
    SyslogReceiver receiver(SyslogReceiver::Kind::Tcp);
    ASSERT_TRUE(receiver.ok()) << receiver.error();
    SiemOutputs outputs(
            syslog_to(SyslogTransport::Tcp, receiver.address(), SyslogFormat::Cef), "0.1.0");
    ASSERT_TRUE(outputs.start(start_std_thread).ok());

    publish(outputs, 1, 4);
    outputs.stop(kDrainMs);
    const std::vector<std::string> got = receiver.wait_for(4);

    ASSERT_EQ(got.size(), 4U);
    EXPECT_EQ(receiver.bad_frames(), 0U);
    for (size_t i = 0; i < got.size(); ++i) {
        const std::string cef = msg_of(got[i]);
        EXPECT_EQ(cef.rfind("CEF:0|exfiltap|exfiltap|0.1.0|2100001|EXFIL payment card", 0), 0U)
                << cef;
        EXPECT_NE(cef.find(" externalId=" + std::to_string(i + 1) + " "), std::string::npos);
        EXPECT_NE(cef.find(" cs4=************4242 "), std::string::npos);
    }
    EXPECT_EQ(receiver.accepted(), 1U);
}

TEST(SiemSyslogTest, UnixDatagramSocketReceives) {
    TempDir dir("exfiltap_siem");
    SyslogReceiver receiver(SyslogReceiver::Kind::UnixDgram, dir.file("log.sock"));
    ASSERT_TRUE(receiver.ok()) << receiver.error();
    SiemOutputs outputs(syslog_to(SyslogTransport::Unix, receiver.address()), "0.1.0");
    ASSERT_TRUE(outputs.start(start_std_thread).ok());

    publish(outputs, 1, 2);
    outputs.stop(kDrainMs);

    EXPECT_EQ(receiver.wait_for(2).size(), 2U);
}

TEST(SiemSyslogTest, UnixStreamSocketGetsFrames) {
    TempDir dir("exfiltap_siem");
    SyslogReceiver receiver(SyslogReceiver::Kind::UnixStream, dir.file("log.sock"));
    ASSERT_TRUE(receiver.ok()) << receiver.error();
    SiemOutputs outputs(syslog_to(SyslogTransport::Unix, receiver.address()), "0.1.0");
    ASSERT_TRUE(outputs.start(start_std_thread).ok());

    publish(outputs, 1, 2);
    outputs.stop(kDrainMs);

    const std::vector<std::string> got = receiver.wait_for(2);
    ASSERT_EQ(got.size(), 2U);
    EXPECT_EQ(nlohmann::json::parse(msg_of(got[1]))["flow_id"], 2);
}

TEST(SiemSyslogTest, NobodyListeningCountsEveryRecord) {
    const uint16_t port = testing::free_loopback_port();
    SiemOutputs outputs(
            syslog_to(SyslogTransport::Tcp, "127.0.0.1:" + std::to_string(port)), "0.1.0");
    ASSERT_TRUE(outputs.start(start_std_thread).ok());

    publish(outputs, 1, 10);
    outputs.stop(0);

    const SiemOutputCounts c = outputs.outputs()[0]->counts();
    EXPECT_EQ(c.sent, 0U);
    EXPECT_EQ(c.dropped + c.failed, 10U);
    EXPECT_EQ(outputs.drops(), (std::vector<std::pair<std::string, uint64_t>>{{"syslog", 10}}));
}

TEST(SiemSyslogTest, StalledReceiverNeverHoldsUpTheProducer) {
    // The receiver accepts and never reads: once the socket buffers are full every send
    // waits its timeout. Offering must go on regardless, dropping what does not fit.
    SyslogReceiver receiver(SyslogReceiver::Kind::TcpStalled);
    ASSERT_TRUE(receiver.ok()) << receiver.error();
    OutputsConfig config = syslog_to(SyslogTransport::Tcp, receiver.address());
    config.syslog.queue_records = 1000;
    TransportTimeouts timeouts;
    timeouts.send_ms = 200;
    SiemOutputs outputs(config, "0.1.0", timeouts);
    ASSERT_TRUE(outputs.start(start_std_thread).ok());

    const uint64_t kRecords = 200000;
    const auto begin = std::chrono::steady_clock::now();
    std::chrono::nanoseconds slowest{0};
    for (uint64_t i = 0; i < kRecords; ++i) {
        const AlertRecord r = record(i);
        const std::string json = alert_to_json(r);
        const auto t0 = std::chrono::steady_clock::now();
        outputs.publish(r, json);
        slowest = std::max(slowest, std::chrono::steady_clock::now() - t0);
    }
    const auto elapsed = std::chrono::steady_clock::now() - begin;
    outputs.stop(0);

    const SiemOutputCounts c = outputs.outputs()[0]->counts();
    EXPECT_EQ(c.offered, kRecords);
    EXPECT_GT(c.dropped, 0U);
    EXPECT_EQ(c.sent + c.dropped + c.failed, kRecords);
    std::printf(
            "[ figures  ] stalled syslog: %llu records offered in %.1f ms, slowest offer "
            "%.1f us; %llu taken by the kernel buffers, %llu dropped (queue full), "
            "%llu not sent\n",
            static_cast<unsigned long long>(kRecords),
            std::chrono::duration<double, std::milli>(elapsed).count(),
            std::chrono::duration<double, std::micro>(slowest).count(),
            static_cast<unsigned long long>(c.sent), static_cast<unsigned long long>(c.dropped),
            static_cast<unsigned long long>(c.failed));
}

class SiemRedisTest : public ::testing::Test {
protected:
    void SetUp() override {
        ASSERT_FALSE(dir_.path().empty());
        if (!server_.start(dir_.path())) {
            GTEST_SKIP() << server_.error();
        }
    }
    OutputsConfig redis_config(RedisMode mode) const {
        OutputsConfig config;
        config.redis.enabled = true;
        config.redis.address = server_.address();
        config.redis.mode = mode;
        config.redis.key = "exfiltap-test";
        return config;
    }

    TempDir dir_{"exfiltap_redis"};
    RedisServer server_;
};

TEST_F(SiemRedisTest, ListGetsEveryRecordInOrder) {
    SiemOutputs outputs(redis_config(RedisMode::List), "0.1.0");
    ASSERT_TRUE(outputs.start(start_std_thread).ok());

    publish(outputs, 1, 100);
    outputs.stop(kDrainMs);

    auto list = server_.list("exfiltap-test");
    ASSERT_TRUE(list.ok()) << list.error();
    ASSERT_EQ(list->size(), 100U);
    for (size_t i = 0; i < list->size(); ++i) {
        const nlohmann::json j = nlohmann::json::parse((*list)[i]);
        EXPECT_EQ(j["flow_id"], i + 1);
        EXPECT_EQ(j["exfil"]["sample"], "************4242");
    }
    EXPECT_EQ(outputs.outputs()[0]->counts().sent, 100U);
}

TEST_F(SiemRedisTest, ChannelSubscriberGetsRecords) {
    RedisSubscriber subscriber(server_, "exfiltap-test");
    ASSERT_TRUE(subscriber.ok());
    SiemOutputs outputs(redis_config(RedisMode::Channel), "0.1.0");
    ASSERT_TRUE(outputs.start(start_std_thread).ok());

    publish(outputs, 1, 3);
    outputs.stop(kDrainMs);
    const std::vector<std::string> got = subscriber.read(3);

    ASSERT_EQ(got.size(), 3U);
    EXPECT_EQ(nlohmann::json::parse(got[2])["flow_id"], 3);
}

TEST_F(SiemRedisTest, ServerGoneCountsWhatCouldNotBeSent) {
    OutputsConfig config = redis_config(RedisMode::List);
    SiemOutputs outputs(config, "0.1.0");
    ASSERT_TRUE(outputs.start(start_std_thread).ok());
    publish(outputs, 1, 5);
    // Delivered before the server goes away.
    for (int i = 0; i < 1000 && outputs.outputs()[0]->counts().sent < 5; ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    server_.stop();

    publish(outputs, 6, 5);
    outputs.stop(0);

    const SiemOutputCounts c = outputs.outputs()[0]->counts();
    EXPECT_EQ(c.sent, 5U);
    EXPECT_EQ(c.failed + c.dropped, 5U);
}

TEST(SiemRedisDownTest, NoServerCountsEveryRecord) {
    OutputsConfig config;
    config.redis.enabled = true;
    config.redis.address = "127.0.0.1:" + std::to_string(testing::free_loopback_port());
    SiemOutputs outputs(config, "0.1.0");
    ASSERT_TRUE(outputs.start(start_std_thread).ok());

    publish(outputs, 1, 7);
    outputs.stop(0);

    EXPECT_EQ(outputs.drops(), (std::vector<std::pair<std::string, uint64_t>>{{"redis", 7}}));
}

}  // namespace
}  // namespace exfiltap::control
