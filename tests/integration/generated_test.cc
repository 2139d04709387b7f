// The project's own generated capture (exfiltap-gen --scenario demo) with exact counts from
// its expect file, and the command line's error handling.
#include <cstdlib>
#include <fstream>
#include <map>
#include <set>
#include <string>
#include <tuple>

#include <gtest/gtest.h>

#include "tests/integration/harness.h"

namespace exfiltap::testing {
namespace {

struct Demo {
    std::string pcap;
    nlohmann::json expect;
};

Demo load_demo() {
    Demo demo;
    const char* pcap = getenv("EXFILTAP_DEMO_PCAP");
    const char* expect = getenv("EXFILTAP_DEMO_EXPECT");
    if (pcap != nullptr && expect != nullptr) {
        demo.pcap = pcap;
        std::ifstream in(expect);
        in >> demo.expect;
    }
    return demo;
}

using AlertKey = std::tuple<std::string, std::string, std::string, std::string, int>;

// The demo's expectations are content findings; its uploads to outside also raise behaviour
// alerts (unexpected_file_write), which behaviour_test.cc covers. Keep content alerts only.
RunOutput content_only(RunOutput run) {
    std::erase_if(run.alerts,
            [](const nlohmann::json& a) { return a["exfil"]["detector"] != "content"; });
    return run;
}

std::set<AlertKey> alert_keys(const RunOutput& run) {
    std::set<AlertKey> keys;
    for (const auto& a : run.alerts) {
        if (a["exfil"]["detector"] != "content") {
            continue;  // behaviour alerts are tested in behaviour_test.cc
        }
        keys.emplace(a["exfil"]["class"], a["exfil"]["sample_hmac"], a["src_ip"], a["dest_ip"],
                a["dest_port"].get<int>());
    }
    return keys;
}

TEST(GeneratedCaptureTest, DemoFindsExactlyTheOutboundValues) {
    const Demo demo = load_demo();
    ASSERT_FALSE(demo.pcap.empty()) << "EXFILTAP_DEMO_PCAP / EXFILTAP_DEMO_EXPECT not set";
    const RunOutput run = content_only(run_exfiltap(demo.pcap));
    ASSERT_EQ(run.exit_code, 0) << run.out;
    const std::string state = run.dir + "/state";

    // Every alert names an expected value; with suppression, counts add up to the findings.
    std::set<AlertKey> expected;
    std::map<std::string, int> per_class;
    for (const auto& f : demo.expect["outbound_findings"]) {
        expected.emplace(f["class"], sample_hmac(state, f["value"]), f["src_ip"], f["dest_ip"],
                f["dest_port"].get<int>());
        ++per_class[f["class"]];
    }
    for (const AlertKey& key : alert_keys(run)) {
        EXPECT_TRUE(expected.count(key) == 1) << std::get<0>(key) << " " << std::get<2>(key);
    }
    std::map<std::string, int> counted;
    for (const auto& a : run.alerts) {
        counted[a["exfil"]["class"]] += a["exfil"]["count"].get<int>();
    }
    for (const auto& [cls, n] : per_class) {
        EXPECT_EQ(run.summary["findings"][cls], n) << cls;
        EXPECT_EQ(counted[cls], n) << cls;
    }
    // Without suppression every value has its own record.
    const RunOutput each =
            content_only(run_exfiltap(demo.pcap, {"--set", "outputs.alert_suppression_s=0"}));
    ASSERT_EQ(each.exit_code, 0) << each.out;
    std::set<AlertKey> expected_each;
    for (const auto& f : demo.expect["outbound_findings"]) {
        expected_each.emplace(f["class"], sample_hmac(each.dir + "/state", f["value"]), f["src_ip"],
                f["dest_ip"], f["dest_port"].get<int>());
    }
    EXPECT_EQ(alert_keys(each), expected_each);
    EXPECT_EQ(each.alerts.size(), expected_each.size());
    for (const auto& f : demo.expect["not_outbound"]) {
        const std::string hmac = sample_hmac(state, f["value"]);
        for (const auto& a : run.alerts) {
            EXPECT_NE(a["exfil"]["sample_hmac"], hmac) << "reported " << f["why"] << " value";
        }
    }
    for (const auto& a : run.alerts) {
        const std::string sample = a["exfil"]["sample"];
        EXPECT_EQ(sample.find_first_not_of('*'), sample.size() - 4) << sample;
    }
    EXPECT_EQ(run.summary["packets"], demo.expect["packets"]);
    EXPECT_EQ(run.summary["bytes"], demo.expect["bytes"]);
    EXPECT_EQ(run.summary["flows"], demo.expect["flows"]);
    EXPECT_EQ(run.summary["counters"]["malformed_total"], 0);
    EXPECT_GT(run.summary["counters"]["retransmitted_bytes"].get<int>(), 0);
}

TEST(GeneratedCaptureTest, DemoGivesTheSameAlertsOnThreeWorkers) {
    const Demo demo = load_demo();
    ASSERT_FALSE(demo.pcap.empty());
    const RunOutput one = run_exfiltap(demo.pcap, {"--workers", "1"});
    const RunOutput three = run_exfiltap(demo.pcap, {"--workers", "3"});
    ASSERT_EQ(one.exit_code, 0) << one.out;
    ASSERT_EQ(three.exit_code, 0) << three.out;
    EXPECT_EQ(three.summary["workers"], 3);
    EXPECT_EQ(one.alerts.size(), three.alerts.size());
    EXPECT_EQ(one.summary["findings"], three.summary["findings"]);
    EXPECT_EQ(one.summary["flows"], three.summary["flows"]);
    EXPECT_EQ(three.summary["packets_written"], demo.expect["packets"]);
}

TEST(GeneratedCaptureTest, DemoForwardsEveryPacketInOrder) {
    const Demo demo = load_demo();
    ASSERT_FALSE(demo.pcap.empty());
    const RunOutput run = run_exfiltap(demo.pcap, {"--workers", "2"});
    ASSERT_EQ(run.exit_code, 0) << run.out;
    const auto in = read_pcap(demo.pcap);
    const auto out = read_pcap(run.dir + "/out.pcap");
    ASSERT_EQ(in.size(), out.size());
    for (size_t i = 0; i < in.size(); ++i) {
        ASSERT_EQ(in[i].data, out[i].data) << i;
        ASSERT_EQ(in[i].sec, out[i].sec) << i;
        ASSERT_EQ(in[i].frac, out[i].frac) << i;
    }
}

TEST(CommandLineTest, BadConfigNamesFileLineAndKeyAndExitsTwo) {
    const std::string dir = ::testing::TempDir();
    const std::string path = dir + "/bad_exfiltap.yaml";
    std::ofstream(path) << "workers:\n  count: 2\nflows:\n  table_size: lots\n";
    const RunOutput run = run_exfiltap_raw({"--config", path, "--test-config"});
    EXPECT_EQ(run.exit_code, 2);
    EXPECT_NE(run.out.find(path + ":4"), std::string::npos) << run.out;
    EXPECT_NE(run.out.find("flows.table_size"), std::string::npos) << run.out;
}

TEST(CommandLineTest, GoodConfigPassesTestConfig) {
    const std::string path = ::testing::TempDir() + "/good_exfiltap.yaml";
    std::ofstream(path) << "networks:\n  internal: [10.0.0.0/8]\ncontent:\n  classes:\n"
                           "    payment_card: {threshold: 2, severity: critical}\n";
    const RunOutput run = run_exfiltap_raw({"--config", path, "--test-config"});
    EXPECT_EQ(run.exit_code, 0) << run.out;
    EXPECT_NE(run.out.find("configuration OK"), std::string::npos);
}

TEST(CommandLineTest, MissingCaptureIsAUsageError) {
    const RunOutput run = run_exfiltap_raw({"--pcap", "/nonexistent/x.pcap"});
    EXPECT_EQ(run.exit_code, 2);
    EXPECT_NE(run.out.find("x.pcap"), std::string::npos) << run.out;
}

TEST(CommandLineTest, BadOverrideNamesTheKey) {
    const RunOutput run = run_exfiltap_raw({"--set", "flows.nonsense=1", "--test-config"});
    EXPECT_EQ(run.exit_code, 2);
    EXPECT_NE(run.out.find("flows.nonsense"), std::string::npos) << run.out;
}

TEST(CommandLineTest, ThresholdTwoNeedsTwoDistinctCards) {
    EXFILTAP_SHARED_OR_SKIP(pcap, "cases/c11_two_pans_one_connection.pcap");
    const RunOutput run = run_exfiltap(pcap, {"--set", "content.classes.payment_card.threshold=2"});
    ASSERT_EQ(run.exit_code, 0) << run.out;
    EXPECT_EQ(run.summary["findings"]["payment_card"], 2);
    EXPECT_EQ(run.summary["alerts"]["payment_card"], 1);
}

}  // namespace
}  // namespace exfiltap::testing
