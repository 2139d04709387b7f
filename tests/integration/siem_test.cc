// The SIEM outputs end to end: offline runs of the generated demo capture with syslog sent to
// a receiver of the test (TCP, UDP, Unix) and records pushed to a redis-server the test
// starts on 127.0.0.1; then a receiver that stalls and one that is absent, where the run must
// finish with the same alerts and count what it could not send.
#include <cstdlib>
#include <regex>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "tests/integration/harness.h"
#include "tests/siem_fixtures.h"
#include "tests/temp_dir.h"

namespace exfiltap::testing {
namespace {

std::string demo_pcap() {
    const char* pcap = getenv("EXFILTAP_DEMO_PCAP");
    return pcap != nullptr ? pcap : "";
}

/// The MSG of an RFC 5424 line with nil structured data ("" when the header is off).
std::string msg_of(const std::string& line) {
    static const std::regex kHeader(
            R"(<16[2-5]>1 \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z \S+ exfiltap-it \d+ alert - )");
    std::smatch m;
    if (!std::regex_search(line, m, kHeader, std::regex_constants::match_continuous)) {
        return {};
    }
    return line.substr(static_cast<size_t>(m.length(0)));
}

std::vector<std::string> syslog_args(const std::string& transport, const std::string& address,
        const std::string& format = "json", const std::string& queue = "10000") {
    return {"--set",
            "outputs.syslog={enabled: true, transport: " + transport + ", address: \"" + address
                    + "\", facility: local4, app_name: exfiltap-it, format: " + format
                    + ", queue_records: " + queue + "}"};
}

/// Every sample in the records shows at most its last four characters.
void expect_masked(const nlohmann::json& record) {
    if (!record.contains("exfil") || !record["exfil"].contains("sample")) {
        return;
    }
    const std::string sample = record["exfil"]["sample"];
    ASSERT_GE(sample.size(), 4U);
    EXPECT_EQ(sample.find_first_not_of('*'), sample.size() <= 4 ? 0 : sample.size() - 4) << sample;
}

/// The records without `sample_hmac`, which each run keys with its own state folder's secret.
std::vector<nlohmann::json> without_hmac(std::vector<nlohmann::json> records) {
    for (nlohmann::json& r : records) {
        if (r.contains("exfil")) {
            r["exfil"].erase("sample_hmac");
        }
    }
    return records;
}

TEST(SiemOfflineTest, TcpSyslogGetsEveryAlertAsJson) {
    const std::string pcap = demo_pcap();
    ASSERT_FALSE(pcap.empty()) << "EXFILTAP_DEMO_PCAP not set";
    SyslogReceiver receiver(SyslogReceiver::Kind::Tcp);
    ASSERT_TRUE(receiver.ok()) << receiver.error();

    const RunOutput run = run_exfiltap(pcap, syslog_args("tcp", receiver.address()));

    ASSERT_EQ(run.exit_code, 0) << run.out;
    ASSERT_GT(run.alerts.size(), 0U);
    const std::vector<std::string> got = receiver.wait_for(run.alerts.size());
    ASSERT_EQ(got.size(), run.alerts.size()) << run.out;
    EXPECT_EQ(receiver.bad_frames(), 0U);
    for (size_t i = 0; i < got.size(); ++i) {
        const std::string msg = msg_of(got[i]);
        ASSERT_FALSE(msg.empty()) << got[i];
        const nlohmann::json j = nlohmann::json::parse(msg);
        EXPECT_EQ(j, run.alerts[i]);  // the same record as the file, in the same order
        expect_masked(j);
    }
    EXPECT_EQ(run.summary["outputs"]["syslog"]["sent"], run.alerts.size());
    EXPECT_EQ(run.summary["outputs"]["syslog"]["dropped"], 0);
    EXPECT_EQ(run.summary["outputs"]["syslog"]["failed"], 0);
}

TEST(SiemOfflineTest, UdpSyslogCefLinesCarryMaskedSamples) {
    const std::string pcap = demo_pcap();
    ASSERT_FALSE(pcap.empty()) << "EXFILTAP_DEMO_PCAP not set";
    SyslogReceiver receiver(SyslogReceiver::Kind::Udp);
    ASSERT_TRUE(receiver.ok()) << receiver.error();

    const RunOutput run = run_exfiltap(pcap, syslog_args("udp", receiver.address(), "cef"));

    ASSERT_EQ(run.exit_code, 0) << run.out;
    const std::vector<std::string> got = receiver.wait_for(run.alerts.size());
    ASSERT_EQ(got.size(), run.alerts.size());
    static const std::regex kSample(R"( cs4=(\S+) cs4Label=sample)");
    size_t with_sample = 0;
    for (size_t i = 0; i < got.size(); ++i) {
        const std::string cef = msg_of(got[i]);
        const nlohmann::json& alert = run.alerts[i];
        const std::string head = "CEF:0|exfiltap|exfiltap|0.1.0|"
                + std::to_string(alert["alert"]["signature_id"].get<uint32_t>()) + "|";
        EXPECT_EQ(cef.rfind(head, 0), 0U) << cef;
        EXPECT_NE(cef.find(" src=" + alert["src_ip"].get<std::string>() + " "), std::string::npos);
        EXPECT_NE(cef.find(" externalId=" + std::to_string(alert["flow_id"].get<uint64_t>())),
                std::string::npos);
        std::smatch m;
        if (std::regex_search(cef, m, kSample)) {
            ++with_sample;
            EXPECT_EQ(m[1].str(), alert["exfil"]["sample"].get<std::string>());
            expect_masked(alert);
        }
    }
    EXPECT_GT(with_sample, 0U);
}

TEST(SiemOfflineTest, UnixSyslogAndRedisListBothGetEveryAlert) {
    const std::string pcap = demo_pcap();
    ASSERT_FALSE(pcap.empty()) << "EXFILTAP_DEMO_PCAP not set";
    test_support::TempDir dir("exfiltap_siem_it");
    SyslogReceiver receiver(SyslogReceiver::Kind::UnixDgram, dir.file("log.sock"));
    ASSERT_TRUE(receiver.ok()) << receiver.error();
    RedisServer redis;
    if (!redis.start(dir.path())) {
        GTEST_SKIP() << redis.error();
    }
    std::vector<std::string> args = syslog_args("unix", receiver.address());
    args.insert(args.end(),
            {"--set",
                    "outputs.redis={enabled: true, address: \"" + redis.address()
                            + "\", mode: list, key: exfiltap-it}"});

    const RunOutput run = run_exfiltap(pcap, args);

    ASSERT_EQ(run.exit_code, 0) << run.out;
    EXPECT_EQ(receiver.wait_for(run.alerts.size()).size(), run.alerts.size());
    auto list = redis.list("exfiltap-it");
    ASSERT_TRUE(list.ok()) << list.error();
    ASSERT_EQ(list->size(), run.alerts.size());
    for (size_t i = 0; i < list->size(); ++i) {
        const nlohmann::json j = nlohmann::json::parse((*list)[i]);
        EXPECT_EQ(j, run.alerts[i]);
        expect_masked(j);
    }
    EXPECT_EQ(run.summary["outputs"]["redis"]["sent"], run.alerts.size());
}

TEST(SiemOfflineTest, StalledAndAbsentSiemCostDropsNotAlerts) {
    const std::string pcap = demo_pcap();
    ASSERT_FALSE(pcap.empty()) << "EXFILTAP_DEMO_PCAP not set";
    const RunOutput plain = run_exfiltap(pcap);
    ASSERT_EQ(plain.exit_code, 0) << plain.out;
    // A receiver that accepts and never reads, a queue of one record, and Redis with nobody
    // on its port.
    SyslogReceiver stalled(SyslogReceiver::Kind::TcpStalled);
    ASSERT_TRUE(stalled.ok()) << stalled.error();
    std::vector<std::string> args = syslog_args("tcp", stalled.address(), "json", "1");
    args.insert(args.end(),
            {"--set",
                    "outputs.redis={enabled: true, address: \"127.0.0.1:"
                            + std::to_string(free_loopback_port()) + "\"}"});

    const RunOutput run = run_exfiltap(pcap, args);

    ASSERT_EQ(run.exit_code, 0) << run.out;
    EXPECT_EQ(without_hmac(run.alerts), without_hmac(plain.alerts));  // the same findings
    EXPECT_EQ(run.summary["packets"], plain.summary["packets"]);
    const nlohmann::json& s = run.summary["outputs"]["syslog"];
    const nlohmann::json& r = run.summary["outputs"]["redis"];
    EXPECT_EQ(s["offered"], run.alerts.size());
    EXPECT_EQ(
            s["sent"].get<uint64_t>() + s["dropped"].get<uint64_t>() + s["failed"].get<uint64_t>(),
            run.alerts.size());
    EXPECT_EQ(r["offered"], run.alerts.size());
    EXPECT_EQ(r["sent"], 0);
    EXPECT_EQ(r["dropped"].get<uint64_t>() + r["failed"].get<uint64_t>(), run.alerts.size());
    EXPECT_NE(run.out.find("redis output: 0 of"), std::string::npos) << run.out;
}

}  // namespace
}  // namespace exfiltap::testing
