// The behaviour detectors and protocol parsers through the whole pipeline, on the real
// captures of ../shared/pcaps and the cases of ../shared/cases, with the outcomes
// MANIFEST.md and expected.json give (and the settings under which they apply).
#include <cstdlib>
#include <fstream>
#include <set>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "tests/integration/harness.h"

namespace exfiltap::testing {
namespace {

std::vector<nlohmann::json> of(const RunOutput& run, const std::string& detector) {
    std::vector<nlohmann::json> out;
    for (const auto& a : run.alerts) {
        if (a["exfil"]["detector"] == detector) {
            out.push_back(a);
        }
    }
    return out;
}

TEST(BehaviourPcapsTest, TxtTunnelCaseRaisesOneDnsTunnelAlertForItsDomain) {
    EXFILTAP_SHARED_OR_SKIP(pcap, "cases/c21a_dns_tunnel_txt.pcap");
    const RunOutput run = run_exfiltap(pcap);
    ASSERT_EQ(run.exit_code, 0) << run.out;
    const auto alerts = of(run, "dns_tunnel");
    ASSERT_EQ(alerts.size(), 1U) << dump_alerts(run);
    EXPECT_EQ(run.alerts.size(), 1U) << dump_alerts(run);
    const auto& a = alerts[0];
    EXPECT_EQ(a["src_ip"], "10.20.21.15");
    EXPECT_EQ(a["dest_ip"], "198.51.100.53");
    EXPECT_EQ(a["dest_port"], 53);
    EXPECT_EQ(a["proto"], "UDP");
    EXPECT_EQ(a["exfil"]["domain"], "cdn-sync.example");
    EXPECT_EQ(a["exfil"]["count"], 30);  // raised at the 30th query of the window
    EXPECT_EQ(a["exfil"]["app_proto"], "dns");
    // The tunnelled names carry data: the alert gives their length, never a name.
    EXPECT_EQ(a["exfil"]["reason"].get<std::string>().find(".cdn-sync.example"), std::string::npos);
    EXPECT_EQ(run.summary["protocols"]["dns"], 64);
    EXPECT_EQ(run.summary["app"]["dns_messages"], 128);
}

TEST(BehaviourPcapsTest, BenignDnsBurstRaisesNothing) {
    EXFILTAP_SHARED_OR_SKIP(pcap, "cases/c21b_dns_benign_burst.pcap");
    const RunOutput run = run_exfiltap(pcap);
    ASSERT_EQ(run.exit_code, 0) << run.out;
    EXPECT_TRUE(run.alerts.empty()) << dump_alerts(run);
    EXPECT_EQ(run.summary["app"]["dns_messages"], 108);
}

TEST(BehaviourPcapsTest, ExternalFtpGuessingRaisesFailuresPerSourceAndSuccessAfterFailures) {
    EXFILTAP_SHARED_OR_SKIP(pcap, "cases/c22a_ftp_guessing_external.pcap");
    const RunOutput run = run_exfiltap(pcap);
    ASSERT_EQ(run.exit_code, 0) << run.out;
    const auto alerts = of(run, "external_login");
    ASSERT_EQ(alerts.size(), 5U) << dump_alerts(run);
    std::multiset<std::string> failing;
    int success_after = 0;
    int user_sources = 0;
    for (const auto& a : alerts) {
        EXPECT_EQ(a["dest_ip"], "10.20.22.21");
        EXPECT_EQ(a["dest_port"], 21);
        EXPECT_EQ(a["exfil"]["user"], "admin");
        const std::string reason = a["exfil"]["reason"];
        if (reason.find(" failed 3 logins") != std::string::npos) {
            failing.insert(a["src_ip"].get<std::string>());
        } else if (reason.find("logged in over ftp") != std::string::npos) {
            ++success_after;
            EXPECT_EQ(a["src_ip"], "203.0.113.12");
        } else if (reason.find("from 3 external sources") != std::string::npos) {
            ++user_sources;
        }
    }
    EXPECT_EQ(
            failing, (std::multiset<std::string>{"203.0.113.10", "203.0.113.11", "203.0.113.12"}));
    EXPECT_EQ(success_after, 1);
    EXPECT_EQ(user_sources, 1);
}

TEST(BehaviourPcapsTest, FtpBruteForceAlertsOnlyWhenTheServerIsTheOnlyInternalHost) {
    EXFILTAP_SHARED_OR_SKIP(pcap, "pcaps/zeek_ftp-bruteforce.pcap");
    const RunOutput internal = run_exfiltap(pcap);
    ASSERT_EQ(internal.exit_code, 0) << internal.out;
    EXPECT_TRUE(internal.alerts.empty()) << dump_alerts(internal);
    EXPECT_EQ(internal.summary["protocols"]["ftp"], 30);

    const RunOutput run =
            run_exfiltap(pcap, {"--set", "networks.internal=[\"192.168.56.101/32\"]"});
    ASSERT_EQ(run.exit_code, 0) << run.out;
    const auto alerts = of(run, "external_login");
    ASSERT_EQ(alerts.size(), 1U) << dump_alerts(run);
    EXPECT_EQ(alerts[0]["src_ip"], "192.168.56.1");
    EXPECT_EQ(alerts[0]["dest_ip"], "192.168.56.101");
    EXPECT_EQ(alerts[0]["exfil"]["user"], "bro");
    EXPECT_EQ(alerts[0]["exfil"]["count"], 3);
    EXPECT_EQ(alerts[0]["exfil"]["app_proto"], "ftp");
}

TEST(BehaviourPcapsTest, SshGuessingAlertsWhenTheClientIsExternal) {
    EXFILTAP_SHARED_OR_SKIP(pcap, "pcaps/zeek_ssh-guessing.pcap");
    const RunOutput internal = run_exfiltap(pcap);
    ASSERT_EQ(internal.exit_code, 0) << internal.out;
    EXPECT_TRUE(internal.alerts.empty()) << dump_alerts(internal);

    const RunOutput run =
            run_exfiltap(pcap, {"--set", "networks.internal=[\"192.168.56.103/32\"]"});
    ASSERT_EQ(run.exit_code, 0) << run.out;
    const auto alerts = of(run, "external_login");
    ASSERT_EQ(alerts.size(), 1U) << dump_alerts(run);
    EXPECT_EQ(alerts[0]["src_ip"], "192.168.56.1");
    EXPECT_EQ(alerts[0]["dest_ip"], "192.168.56.103");
    EXPECT_EQ(alerts[0]["dest_port"], 22);
    EXPECT_EQ(alerts[0]["exfil"]["count"], 10);  // the 10th of 11 connection starts
}

TEST(BehaviourPcapsTest, SignalAttachmentUploadCountsItsTlsBytesPerDirection) {
    EXFILTAP_SHARED_OR_SKIP(pcap, "pcaps/ndpi_tls-upload-signal.pcap");
    // MANIFEST: about 196 KB up, 3 KB down to cdn.signal.org; alerts only with thresholds
    // below that, so the defaults stay quiet.
    const RunOutput quiet = run_exfiltap(pcap);
    ASSERT_EQ(quiet.exit_code, 0) << quiet.out;
    EXPECT_TRUE(quiet.alerts.empty()) << dump_alerts(quiet);
    EXPECT_EQ(quiet.summary["protocols"]["tls"], 14);

    const RunOutput run = run_exfiltap(pcap,
            {"--set", "behaviour.encrypted_asymmetry.min_bytes=150000", "--set",
                    "behaviour.external_upload.flow_bytes=150000"});
    ASSERT_EQ(run.exit_code, 0) << run.out;
    for (const std::string detector : {"encrypted_asymmetry", "external_upload"}) {
        const auto alerts = of(run, detector);
        ASSERT_EQ(alerts.size(), 1U) << detector << "\n" << dump_alerts(run);
        EXPECT_EQ(alerts[0]["src_ip"], "192.168.2.17");
        EXPECT_EQ(alerts[0]["dest_ip"], "13.35.253.42");
        EXPECT_EQ(alerts[0]["dest_port"], 443);
        EXPECT_EQ(alerts[0]["exfil"]["server_name"], "cdn.signal.org");
        EXPECT_EQ(alerts[0]["exfil"]["bytes"], 195730);
        EXPECT_EQ(alerts[0]["exfil"]["app_proto"], "tls");
    }
    EXPECT_EQ(of(run, "encrypted_asymmetry")[0]["exfil"]["count"], 65);  // the ratio
}

TEST(BehaviourPcapsTest, ZipMailAttachmentToAnExternalServerIsAnArchiveAndAMailOut) {
    EXFILTAP_SHARED_OR_SKIP(pcap, "pcaps/sv_smtp-zip-attachment.pcap");
    // MANIFEST: archive-out only when 10.2.19.30 is external.
    const RunOutput internal = run_exfiltap(pcap);
    ASSERT_EQ(internal.exit_code, 0) << internal.out;
    EXPECT_TRUE(internal.alerts.empty()) << dump_alerts(internal);

    const RunOutput run = run_exfiltap(pcap,
            {"--set", "networks.internal=[\"10.2.10.0/24\"]", "--set",
                    "behaviour.mail_attachment_out.count=1"});
    ASSERT_EQ(run.exit_code, 0) << run.out;
    const auto archive = of(run, "archive_out");
    ASSERT_EQ(archive.size(), 1U) << dump_alerts(run);
    EXPECT_EQ(archive[0]["src_ip"], "10.2.10.159");
    EXPECT_EQ(archive[0]["dest_ip"], "10.2.19.30");
    EXPECT_EQ(archive[0]["exfil"]["app_proto"], "smtp");
    EXPECT_NE(archive[0]["exfil"]["reason"].get<std::string>().find("uploaded zip data"),
            std::string::npos);
    const auto mail = of(run, "mail_attachment_out");
    ASSERT_EQ(mail.size(), 1U) << dump_alerts(run);
    EXPECT_EQ(mail[0]["exfil"]["user"], "int@smtp.lab.com");
    EXPECT_EQ(mail[0]["exfil"]["domain"], "gw.com");
    EXPECT_EQ(mail[0]["exfil"]["bytes"], 51675);  // the decoded zip
    const std::string name = mail[0]["exfil"]["file_name"];
    EXPECT_EQ(name.substr(0, 9), "smtptest-");  // RFC 2231 pieces put back together
    EXPECT_EQ(name.substr(name.size() - 5), "..zip");
}

TEST(BehaviourPcapsTest, SmbWriteToADatabaseHostIsAnUnexpectedFileWrite) {
    EXFILTAP_SHARED_OR_SKIP(pcap, "pcaps/zeek_smb2-write-1.5MB.pcap");
    const RunOutput plain = run_exfiltap(pcap);
    ASSERT_EQ(plain.exit_code, 0) << plain.out;
    EXPECT_TRUE(plain.alerts.empty()) << dump_alerts(plain);  // unlisted internal server

    const RunOutput run = run_exfiltap(pcap,
            {"--set",
                    "assets=[{name: build-db, prefixes: [\"10.0.0.12/32\"], classification: "
                    "confidential, roles: [database]}]",
                    "--set", "behaviour.internal_transfer.flow_bytes=1000000"});
    ASSERT_EQ(run.exit_code, 0) << run.out;
    const auto writes = of(run, "unexpected_file_write");
    ASSERT_EQ(writes.size(), 1U) << dump_alerts(run);
    EXPECT_EQ(writes[0]["src_ip"], "10.0.0.11");
    EXPECT_EQ(writes[0]["dest_ip"], "10.0.0.12");
    EXPECT_EQ(writes[0]["exfil"]["file_name"], "WP_SMBPlugin.pdf");
    EXPECT_EQ(writes[0]["exfil"]["bytes"], 1508939);
    EXPECT_EQ(writes[0]["dest_asset"]["name"], "build-db");
    EXPECT_EQ(writes[0]["dest_asset"]["classification"], "confidential");
    const auto transfer = of(run, "internal_transfer");
    ASSERT_EQ(transfer.size(), 1U) << dump_alerts(run);
    EXPECT_GE(transfer[0]["exfil"]["bytes"].get<uint64_t>(), 1000000U);
}

TEST(BehaviourPcapsTest, ActiveFtpStoresAreCreditedToTheUploaderWithTheirSizes) {
    EXFILTAP_SHARED_OR_SKIP(pcap, "pcaps/sv_ftp-active-stor-exe-pdf.pcap");
    const RunOutput run = run_exfiltap(pcap,
            {"--set",
                    "assets=[{name: ftp-drop, prefixes: [\"192.168.100.230/32\"], roles: "
                    "[backup]}]"});
    ASSERT_EQ(run.exit_code, 0) << run.out;
    const auto writes = of(run, "unexpected_file_write");
    ASSERT_EQ(writes.size(), 2U) << dump_alerts(run);
    // The data connections run from the server (port 20) to the client; the uploads are
    // still the client's.
    EXPECT_EQ(writes[0]["src_ip"], "192.168.100.16");
    EXPECT_EQ(writes[0]["dest_ip"], "192.168.100.230");
    EXPECT_EQ(writes[0]["dest_port"], 21);
    EXPECT_EQ(writes[0]["exfil"]["file_name"], "notepad.exe");
    EXPECT_EQ(writes[0]["exfil"]["user"], "anonymous");
    EXPECT_EQ(writes[0]["exfil"]["bytes"], 69120);
    EXPECT_EQ(writes[1]["exfil"]["file_name"], "test.pdf");
    EXPECT_EQ(writes[1]["exfil"]["bytes"], 118196);
    EXPECT_EQ(run.summary["app"]["ftp_data_linked"], 4);  // 2 STOR, 2 RETR
}

TEST(BehaviourPcapsTest, GzipRequestBodyIsScannedDecoded) {
    EXFILTAP_SHARED_OR_SKIP(pcap, "pcaps/sv_http-post-gzip-body.pcap");
    // The keyword exists only after inflating the body (`name=john dauny mladshiy`).
    const std::vector<std::string> keyword = {
            "--set", "content.custom=[{name: patronym, keywords: [mladshiy]}]"};
    const RunOutput internal = run_exfiltap(pcap, keyword);
    ASSERT_EQ(internal.exit_code, 0) << internal.out;
    EXPECT_TRUE(internal.alerts.empty()) << dump_alerts(internal);  // internal to internal

    std::vector<std::string> outbound = keyword;
    outbound.insert(outbound.end(), {"--set", "networks.internal=[\"192.168.235.102/32\"]"});
    const RunOutput run = run_exfiltap(pcap, outbound);
    ASSERT_EQ(run.exit_code, 0) << run.out;
    const auto custom = alerts_of(run, "custom");
    ASSERT_EQ(custom.size(), 1U) << dump_alerts(run);
    EXPECT_EQ(custom[0]["src_ip"], "192.168.235.102");
    EXPECT_EQ(custom[0]["dest_port"], 80);
    EXPECT_EQ(run.summary["app"]["objects"], 1);
    EXPECT_EQ(run.summary["app"]["object_bytes"], 25);
}

TEST(BehaviourPcapsTest, TwoWorkersGiveTheSameBehaviourAlertsAsOne) {
    // Logins from several sources join across flows: the feed orders the workers' events by
    // packet time, and flow ids come from the flow alone (the break test saw both differ).
    const char* prefix = getenv("EXFILTAP_BEHAVIOUR_PREFIX");  // NOLINT(concurrency-mt-unsafe)
    ASSERT_NE(prefix, nullptr) << "EXFILTAP_BEHAVIOUR_PREFIX not set (meson test sets it)";
    const std::string pcap = std::string(prefix) + "-external_login-alert.pcap";
    const auto key = [](const RunOutput& run) {
        std::multiset<std::string> keys;
        for (const auto& a : run.alerts) {
            keys.insert(a["timestamp"].get<std::string>() + " "
                    + std::to_string(a["flow_id"].get<uint64_t>()) + " "
                    + a["exfil"]["reason"].get<std::string>());
        }
        return keys;
    };
    const RunOutput one = run_exfiltap(pcap, {"--workers", "1"});
    ASSERT_EQ(one.exit_code, 0) << one.out;
    ASSERT_FALSE(one.alerts.empty());
    for (int round = 0; round < 3; ++round) {
        const RunOutput two = run_exfiltap(pcap, {"--workers", "2"});
        ASSERT_EQ(two.exit_code, 0) << two.out;
        EXPECT_EQ(key(two), key(one)) << dump_alerts(two);
    }
}

TEST(BehaviourPcapsTest, TimesAfter2038SurviveReadingAndWriting) {
    // A pcap's seconds are unsigned 32 bits; libpcap sign-extends them. One UDP packet at
    // 2700000000 s (2055-07-24) must keep that time in the output and in alerts.
    const std::string dir = ::testing::TempDir();
    const std::string path = dir + "/y2055.pcap";
    {
        std::ofstream out(path, std::ios::binary);
        const auto u32 = [&](uint32_t v) {
            out.write(reinterpret_cast<const char*>(&v), 4);
        };
        const auto u16 = [&](uint16_t v) {
            out.write(reinterpret_cast<const char*>(&v), 2);
        };
        u32(0xa1b2c3d4);
        u16(2);
        u16(4);
        u32(0);
        u32(0);
        u32(65535);
        u32(1);
        const std::vector<uint8_t> frame = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 0x08, 0x00, 0x45,
                0, 0, 32, 0, 1, 0, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2, 0x30, 0x39, 0x30,
                0x3a, 0, 12, 0, 0, 'a', 'b', 'c', 'd'};
        u32(2700000000U);
        u32(1000);
        u32(static_cast<uint32_t>(frame.size()));
        u32(static_cast<uint32_t>(frame.size()));
        out.write(reinterpret_cast<const char*>(frame.data()),
                static_cast<std::streamsize>(frame.size()));
    }
    const RunOutput run = run_exfiltap(path, {"--set", "flows.checksum_validation=no"});
    ASSERT_EQ(run.exit_code, 0) << run.out;
    const auto records = read_pcap(run.dir + "/out.pcap");
    ASSERT_EQ(records.size(), 1U);
    EXPECT_EQ(records[0].sec, 2700000000U);
    EXPECT_EQ(records[0].frac, 1000U);
    EXPECT_NEAR(run.summary["capture_span_s"].get<double>(), 0.0, 1e-9);
}

}  // namespace
}  // namespace exfiltap::testing
