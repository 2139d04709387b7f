// The behaviour detectors on generated captures (exfiltap-gen --scenario behaviour, see
// tests/gen/scenario_behaviour.cc): for each detector one capture that must raise it, with
// the fields that explain it, and a near miss that must not. Every alert of every run is held
// to schema/alert.schema.json. The captures are small, so the config below lowers the
// thresholds that are too large for them; the rest are set to the values the captures are
// sized for, so a change of the shipped defaults does not move these tests.
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tests/integration/harness.h"
#include "tests/schema_validator.h"

namespace exfiltap::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::IsEmpty;

constexpr std::string_view kConfig = R"(assets:
  - name: workstations
    prefixes: [10.20.1.0/24]
    classification: internal
  - name: file-server
    prefixes: [10.20.9.10/32]
    classification: confidential
    roles: [file-server]
  - name: app-server
    prefixes: [10.20.7.7/32]
    classification: internal
  - name: dmz
    prefixes: [10.20.3.0/24]
    classification: internal
behaviour:
  external_upload:
    window_s: 3600
    host_bytes: {public: 2000000, internal: 2000000, confidential: 2000000, restricted: 2000000}
  internal_transfer:
    window_s: 3600
    flow_bytes: 2000000
    host_bytes: 0
  baseline_deviation:
    window_s: 60
    alpha: 0.1
    k: 4
    warmup_windows: 6
    floor_bytes: 400000
  encrypted_asymmetry:
    min_bytes: 1000000
    ratio: 10
  unexpected_file_write:
    min_bytes: 1
  external_login:
    window_s: 600
    service_sources: 5
    user_sources: 3
    source_failures: 3
    success_after_failures: 2
  mail_attachment_out:
    window_s: 3600
    count: 3
    bytes: 0
  dns_tunnel:
    window_s: 60
    min_queries: 30
    min_distinct: 20
    min_mean_label_len: 20
    min_type_share_percent: 50
    min_score: 2
)";

// Client bytes of the generated flows (scenario_behaviour.cc).
constexpr uint64_t kUploadThreshold = 2000000;
constexpr uint64_t kUploadAlertTotal = 2 * 1050000;
constexpr uint64_t kBaselineSpike = 2 * 262144 - 58;  // client bytes; the reply has 58
constexpr uint64_t kBaselineQuiet = 20000;
constexpr uint64_t kBaselineFloor = 400000;
constexpr uint64_t kZipBytes = 30 + 11 + 8000 + 46 + 11 + 22;  // invoice-N.zip

class BehaviourTest : public ::testing::Test {
protected:
    static void SetUpTestSuite() {
        config_path_ = new std::string(::testing::TempDir() + "/behaviour_test_exfiltap.yaml");
        std::ofstream(*config_path_) << kConfig;
    }

    static void TearDownTestSuite() {
        delete config_path_;
        config_path_ = nullptr;
    }

    void SetUp() override {
        const char* prefix = getenv("EXFILTAP_BEHAVIOUR_PREFIX");  // NOLINT: no threads
        ASSERT_NE(prefix, nullptr) << "EXFILTAP_BEHAVIOUR_PREFIX not set (meson test sets it)";
        prefix_ = prefix;
    }

    /// Runs DETECTOR's "alert" or "near" capture with the config; validates every record.
    RunOutput run_case(const std::string& detector, const std::string& kind) {
        return run_checked(prefix_ + "-" + detector + "-" + kind + ".pcap", *config_path_);
    }

    /// The alerts of `detector` (class and detector both name it).
    static std::vector<nlohmann::json> of(const RunOutput& run, const std::string& detector) {
        std::vector<nlohmann::json> out = alerts_of(run, detector);
        for (const auto& a : out) {
            EXPECT_EQ(a["exfil"]["detector"], detector) << a.dump();
        }
        return out;
    }

    static std::string dump(const RunOutput& run) { return dump_alerts(run); }

    static std::string* config_path_;
    std::string prefix_;
};

std::string* BehaviourTest::config_path_ = nullptr;

TEST_F(BehaviourTest, ExternalUploadOverHostThresholdAlerts) {
    const RunOutput run = run_case("external_upload", "alert");
    const auto alerts = of(run, "external_upload");
    ASSERT_EQ(alerts.size(), 1U) << dump(run);
    const auto& a = alerts[0];
    EXPECT_EQ(a["src_ip"], "10.20.1.10");
    EXPECT_EQ(a["dest_ip"], "203.0.113.11");  // the upload that crossed the threshold
    EXPECT_EQ(a["dest_port"], 80);
    EXPECT_EQ(a["proto"], "TCP");
    EXPECT_GE(a["exfil"]["bytes"].get<uint64_t>(), kUploadThreshold);
    EXPECT_LE(a["exfil"]["bytes"].get<uint64_t>(), kUploadAlertTotal);
    EXPECT_EQ(a["exfil"]["threshold"], kUploadThreshold);
    EXPECT_EQ(a["exfil"]["window_s"], 3600);
    EXPECT_EQ(a["exfil"]["count"], 1);
    EXPECT_EQ(a["exfil"]["app_proto"], "http");
    EXPECT_EQ(a["src_asset"]["name"], "workstations");
    EXPECT_EQ(a["src_asset"]["classification"], "internal");
    EXPECT_FALSE(a.contains("dest_asset"));
}

TEST_F(BehaviourTest, ExternalUploadJustUnderThresholdIsQuiet) {
    const RunOutput run = run_case("external_upload", "near");
    EXPECT_THAT(of(run, "external_upload"), IsEmpty()) << dump(run);
}

TEST_F(BehaviourTest, InternalTransferOverFlowThresholdAlerts) {
    const RunOutput run = run_case("internal_transfer", "alert");
    const auto alerts = of(run, "internal_transfer");
    ASSERT_EQ(alerts.size(), 1U) << dump(run);
    const auto& a = alerts[0];
    EXPECT_EQ(a["src_ip"], "10.20.1.20");
    EXPECT_EQ(a["dest_ip"], "10.20.9.10");
    EXPECT_EQ(a["dest_port"], 445);
    EXPECT_GE(a["exfil"]["bytes"].get<uint64_t>(), 2000000U);
    EXPECT_LE(a["exfil"]["bytes"].get<uint64_t>(), 2200000U);  // 2.1 MB file and SMB2 framing
    EXPECT_EQ(a["exfil"]["threshold"], 2000000);
    EXPECT_EQ(a["exfil"]["app_proto"], "smb");
    EXPECT_EQ(a["src_asset"]["name"], "workstations");
    EXPECT_EQ(a["dest_asset"]["name"], "file-server");
    EXPECT_EQ(a["dest_asset"]["classification"], "confidential");
}

TEST_F(BehaviourTest, InternalTransferJustUnderThresholdIsQuiet) {
    const RunOutput run = run_case("internal_transfer", "near");
    EXPECT_THAT(of(run, "internal_transfer"), IsEmpty()) << dump(run);
}

TEST_F(BehaviourTest, BaselineSpikeAfterWarmupAlerts) {
    const RunOutput run = run_case("baseline_deviation", "alert");
    const auto alerts = of(run, "baseline_deviation");
    ASSERT_EQ(alerts.size(), 1U) << dump(run);
    const auto& a = alerts[0];
    EXPECT_EQ(a["src_ip"], "10.20.1.30");
    EXPECT_EQ(a["dest_ip"], "198.51.100.30");
    EXPECT_EQ(a["dest_port"], 80);
    // The spike window's client bytes; the previous window's small flow may end (time out) in
    // it and add its bytes.
    EXPECT_GE(a["exfil"]["bytes"].get<uint64_t>(), kBaselineSpike);
    EXPECT_LE(a["exfil"]["bytes"].get<uint64_t>(), kBaselineSpike + kBaselineQuiet);
    EXPECT_EQ(a["exfil"]["threshold"], kBaselineFloor);  // the floor is above mean + 4 stddev
    EXPECT_EQ(a["exfil"]["window_s"], 60);
    EXPECT_EQ(a["exfil"]["app_proto"], "http");
    EXPECT_EQ(a["src_asset"]["name"], "workstations");
}

TEST_F(BehaviourTest, BaselineSteadyVolumeIsQuiet) {
    const RunOutput run = run_case("baseline_deviation", "near");
    EXPECT_THAT(of(run, "baseline_deviation"), IsEmpty()) << dump(run);
}

TEST_F(BehaviourTest, EncryptedUploadWithLittleBackAlerts) {
    const RunOutput run = run_case("encrypted_asymmetry", "alert");
    const auto alerts = of(run, "encrypted_asymmetry");
    ASSERT_EQ(alerts.size(), 1U) << dump(run);
    const auto& a = alerts[0];
    EXPECT_EQ(a["src_ip"], "10.20.1.40");
    EXPECT_EQ(a["dest_ip"], "203.0.113.40");
    EXPECT_EQ(a["dest_port"], 443);
    EXPECT_EQ(a["exfil"]["server_name"], "files.example.net");
    EXPECT_EQ(a["exfil"]["app_proto"], "tls");
    EXPECT_GE(a["exfil"]["bytes"].get<uint64_t>(), 1000000U);
    EXPECT_LE(a["exfil"]["bytes"].get<uint64_t>(), 1300000U);
    EXPECT_GE(a["exfil"]["count"].get<uint64_t>(), 10U);  // the ratio
    EXPECT_EQ(a["exfil"]["threshold"], 1000000);
}

// The TLS upload with replies (ratio about 5) and a plain HTTP PUT of 1.2 MB (identified
// as HTTP, so not encrypted) raise nothing.
TEST_F(BehaviourTest, EncryptedUploadWithReplyTrafficIsQuiet) {
    const RunOutput run = run_case("encrypted_asymmetry", "near");
    EXPECT_THAT(of(run, "encrypted_asymmetry"), IsEmpty()) << dump(run);
}

/// The archive_out alerts of the alert capture sent to one outside server.
std::vector<nlohmann::json> archives_to(const RunOutput& run, const std::string& dest_ip) {
    std::vector<nlohmann::json> out;
    for (const auto& a : alerts_of(run, "archive_out")) {
        if (a["dest_ip"] == dest_ip) {
            out.push_back(a);
        }
    }
    return out;
}

TEST_F(BehaviourTest, ZipInMultipartPostToExternalServerAlerts) {
    const RunOutput run = run_case("archive_out", "alert");
    const auto alerts = archives_to(run, "198.51.100.50");
    ASSERT_EQ(alerts.size(), 1U) << dump(run);
    const auto& a = alerts[0];
    EXPECT_EQ(a["exfil"]["detector"], "archive_out");
    EXPECT_EQ(a["src_ip"], "10.20.1.50");
    EXPECT_EQ(a["dest_port"], 80);
    EXPECT_EQ(a["exfil"]["app_proto"], "http");
    EXPECT_THAT(a["exfil"].value("reason", ""), HasSubstr(" zip "));
    EXPECT_EQ(a["src_asset"]["name"], "workstations");
}

TEST_F(BehaviourTest, GzipPutToExternalServerAlerts) {
    const RunOutput run = run_case("archive_out", "alert");
    const auto alerts = archives_to(run, "198.51.100.51");
    ASSERT_EQ(alerts.size(), 1U) << dump(run);
    const auto& a = alerts[0];
    EXPECT_EQ(a["src_ip"], "10.20.1.50");
    EXPECT_EQ(a["dest_port"], 80);
    EXPECT_EQ(a["exfil"]["app_proto"], "http");
    EXPECT_THAT(a["exfil"].value("reason", ""), HasSubstr(" gzip "));
}

TEST_F(BehaviourTest, ZipStoredOverFtpToExternalServerAlerts) {
    const RunOutput run = run_case("archive_out", "alert");
    const auto alerts = archives_to(run, "198.51.100.52");
    ASSERT_EQ(alerts.size(), 1U) << dump(run);
    const auto& a = alerts[0];
    EXPECT_EQ(a["src_ip"], "10.20.1.50");
    EXPECT_GE(a["dest_port"].get<int>(), 40000);  // the PASV data port
    EXPECT_LE(a["dest_port"].get<int>(), 50000);
    EXPECT_EQ(a["exfil"]["app_proto"], "ftp-data");
    EXPECT_THAT(a["exfil"].value("reason", ""), HasSubstr(" zip "));
}

TEST_F(BehaviourTest, ArchivesSentToInternalFileServerAreQuiet) {
    const RunOutput run = run_case("archive_out", "near");
    EXPECT_THAT(of(run, "archive_out"), IsEmpty()) << dump(run);
}

TEST_F(BehaviourTest, FileWritesToServerWithoutFileServerRoleAlert) {
    const RunOutput run = run_case("unexpected_file_write", "alert");
    const auto alerts = of(run, "unexpected_file_write");
    ASSERT_EQ(alerts.size(), 3U) << dump(run);
    std::map<std::string, nlohmann::json> by_proto;
    for (const auto& a : alerts) {
        EXPECT_EQ(a["src_ip"], "10.20.1.60");
        EXPECT_EQ(a["dest_ip"], "10.20.7.7");
        EXPECT_EQ(a["dest_asset"]["name"], "app-server");
        by_proto[a["exfil"]["app_proto"]] = a;
    }
    ASSERT_EQ(by_proto.count("ftp"), 1U) << dump(run);
    EXPECT_EQ(by_proto["ftp"]["dest_port"], 21);
    EXPECT_EQ(by_proto["ftp"]["exfil"]["file_name"], "budget-2026.xlsx");
    EXPECT_EQ(by_proto["ftp"]["exfil"]["bytes"], 60000);
    ASSERT_EQ(by_proto.count("smb"), 1U) << dump(run);
    EXPECT_EQ(by_proto["smb"]["dest_port"], 445);
    EXPECT_EQ(by_proto["smb"]["exfil"]["file_name"], "finance\\march-payroll.xlsx");
    EXPECT_EQ(by_proto["smb"]["exfil"]["bytes"], 150000);
    ASSERT_EQ(by_proto.count("http"), 1U) << dump(run);
    EXPECT_EQ(by_proto["http"]["dest_port"], 80);
    EXPECT_EQ(by_proto["http"]["exfil"]["file_name"], "minutes.docx");
    EXPECT_EQ(by_proto["http"]["exfil"]["bytes"], 30000);
}

TEST_F(BehaviourTest, FileWritesToFileServerAreQuiet) {
    const RunOutput run = run_case("unexpected_file_write", "near");
    EXPECT_THAT(of(run, "unexpected_file_write"), IsEmpty()) << dump(run);
}

TEST_F(BehaviourTest, LoginsFromManyExternalSourcesAlert) {
    const RunOutput run = run_case("external_login", "alert");
    const auto alerts = of(run, "external_login");
    ASSERT_EQ(alerts.size(), 2U) << dump(run);
    std::map<std::string, nlohmann::json> by_proto;
    for (const auto& a : alerts) {
        EXPECT_EQ(a["exfil"]["window_s"], 600);
        by_proto[a["exfil"]["app_proto"]] = a;
    }
    // One user name from three sources: the third source's login completes it.
    ASSERT_EQ(by_proto.count("ftp"), 1U) << dump(run);
    const auto& ftp = by_proto["ftp"];
    EXPECT_EQ(ftp["src_ip"], "198.51.100.73");
    EXPECT_EQ(ftp["dest_ip"], "10.20.3.21");
    EXPECT_EQ(ftp["dest_port"], 21);
    EXPECT_EQ(ftp["exfil"]["user"], "svc-backup");
    EXPECT_EQ(ftp["exfil"]["count"], 3);
    EXPECT_EQ(ftp["exfil"]["threshold"], 3);
    EXPECT_EQ(ftp["dest_asset"]["name"], "dmz");
    // One service from five sources.
    ASSERT_EQ(by_proto.count("ssh"), 1U) << dump(run);
    const auto& ssh = by_proto["ssh"];
    EXPECT_EQ(ssh["src_ip"], "203.0.113.65");
    EXPECT_EQ(ssh["dest_ip"], "10.20.3.22");
    EXPECT_EQ(ssh["dest_port"], 22);
    EXPECT_EQ(ssh["exfil"]["count"], 5);
    EXPECT_EQ(ssh["exfil"]["threshold"], 5);
    EXPECT_FALSE(ssh["exfil"].contains("user"));
    for (const auto& a : run.alerts) {
        EXPECT_EQ(a.dump().find("not-a-real-secret"), std::string::npos) << "password leaked";
    }
}

// One source: a mistyped password, then a successful FTP login, and one SSH connection.
TEST_F(BehaviourTest, SingleExternalLoginIsQuiet) {
    const RunOutput run = run_case("external_login", "near");
    EXPECT_THAT(of(run, "external_login"), IsEmpty()) << dump(run);
}

TEST_F(BehaviourTest, ThirdMailWithAttachmentToOutsideAlerts) {
    const RunOutput run = run_case("mail_attachment_out", "alert");
    const auto alerts = of(run, "mail_attachment_out");
    ASSERT_EQ(alerts.size(), 1U) << dump(run);
    const auto& a = alerts[0];
    EXPECT_EQ(a["src_ip"], "10.20.1.80");
    EXPECT_EQ(a["dest_ip"], "203.0.113.25");
    EXPECT_EQ(a["dest_port"], 25);
    EXPECT_EQ(a["exfil"]["count"], 3);
    EXPECT_EQ(a["exfil"]["threshold"], 3);
    EXPECT_EQ(a["exfil"]["bytes"], 3 * kZipBytes);  // decoded attachment bytes
    EXPECT_EQ(a["exfil"]["file_name"], "invoice-3.zip");
    EXPECT_EQ(a["exfil"]["user"], "j.doe@corp.example");
    EXPECT_EQ(a["exfil"]["domain"], "example.org");
    EXPECT_EQ(a["exfil"]["app_proto"], "smtp");
    EXPECT_EQ(a["src_asset"]["name"], "workstations");
}

TEST_F(BehaviourTest, TwoMailsWithAttachmentsAreQuiet) {
    const RunOutput run = run_case("mail_attachment_out", "near");
    EXPECT_THAT(of(run, "mail_attachment_out"), IsEmpty()) << dump(run);
}

TEST_F(BehaviourTest, LongTxtQueriesUnderOneDomainAlert) {
    const RunOutput run = run_case("dns_tunnel", "alert");
    const auto alerts = of(run, "dns_tunnel");
    ASSERT_EQ(alerts.size(), 1U) << dump(run);
    const auto& a = alerts[0];
    EXPECT_EQ(a["src_ip"], "10.20.1.90");
    EXPECT_EQ(a["dest_ip"], "10.20.0.53");
    EXPECT_EQ(a["dest_port"], 53);
    EXPECT_EQ(a["proto"], "UDP");
    EXPECT_EQ(a["exfil"]["domain"], "example.com");
    EXPECT_EQ(a["exfil"]["app_proto"], "dns");
    EXPECT_GE(a["exfil"]["count"].get<uint64_t>(), 30U);  // queries in the window
    EXPECT_LE(a["exfil"]["count"].get<uint64_t>(), 40U);
    EXPECT_EQ(a["exfil"]["threshold"], 30);
    EXPECT_EQ(a["exfil"]["window_s"], 60);
}

TEST_F(BehaviourTest, OrdinaryLookupsAreQuiet) {
    const RunOutput run = run_case("dns_tunnel", "near");
    EXPECT_THAT(of(run, "dns_tunnel"), IsEmpty()) << dump(run);
}

}  // namespace
}  // namespace exfiltap::testing
