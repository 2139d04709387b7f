#include "control/alert_writer.h"

#include <arpa/inet.h>
#include <sys/stat.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

namespace exfiltap::control {
namespace {

std::array<uint8_t, 16> ip(const char* text) {
    std::array<uint8_t, 16> out{};
    if (inet_pton(AF_INET, text, out.data()) != 1) {
        EXPECT_EQ(inet_pton(AF_INET6, text, out.data()), 1) << text;
    }
    return out;
}

/// A directory of its own per test, removed afterwards.
class TempDirTest : public ::testing::Test {
protected:
    void SetUp() override {
        std::string pattern = ::testing::TempDir() + "exfiltap_alerts_XXXXXX";
        ASSERT_NE(mkdtemp(pattern.data()), nullptr);
        dir_ = pattern;
    }
    void TearDown() override { std::filesystem::remove_all(dir_); }

    static std::vector<std::string> read_lines(const std::string& path) {
        std::ifstream in(path);
        std::vector<std::string> lines;
        for (std::string line; std::getline(in, line);) {
            lines.push_back(line);
        }
        return lines;
    }

    std::string dir_;
};

AlertRecord sample_record() {
    AlertRecord record;
    record.timestamp_s = 1767323045.123456;  // 2026-01-02T03:04:05.123456Z
    record.flow_id = 1234567890123ULL;
    record.ip_version = 4;
    record.src = ip("10.0.0.5");
    record.dst = ip("203.0.113.9");
    record.src_port = 51000;
    record.dst_port = 443;
    record.proto = 6;
    record.action = "blocked";
    record.signature_id = 1000001;
    record.signature = "Payment card numbers leaving";
    record.severity = detectors::Severity::Critical;
    record.detector = "content";
    record.cls = "payment_card";
    record.confidence = detectors::Confidence::High;
    record.bytes = 4096;
    record.count = 3;
    record.sample = mask_value("4111111111111111");
    record.sample_hmac = std::string(64, 'a');
    return record;
}

TEST(CommunityIdTest, MatchesSpecTcpVector) {
    EXPECT_EQ(community_id(4, ip("128.232.110.120"), ip("66.35.250.204"), 6, 34855, 80),
            "1:LQU9qZlK+B5F3KDmev6m5PMibrg=");
}

TEST(CommunityIdTest, MatchesSpecUdpVector) {
    EXPECT_EQ(community_id(4, ip("192.168.1.52"), ip("8.8.8.8"), 17, 54585, 53),
            "1:d/FP5EW3wiY1vCndhwleRRKHowQ=");
}

TEST(CommunityIdTest, MatchesSpecIpv6TcpVector) {
    EXPECT_EQ(community_id(6, ip("2001:470:e5bf:dead:4957:2174:e82c:4887"),
                      ip("2607:f8b0:400c:c03::1a"), 6, 63943, 25),
            "1:/qFaeAR+gFe1KYjMzVDsMv+wgU4=");
}

TEST(CommunityIdTest, MatchesSpecSctpVector) {
    EXPECT_EQ(community_id(4, ip("192.168.170.8"), ip("192.168.170.56"), 132, 7, 7),
            "1:MP2EtRCAUIZvTw6MxJHLV7N7JDs=");
}

TEST(CommunityIdTest, OmitsPortsForPortlessProtocol) {
    EXPECT_EQ(community_id(4, ip("10.1.12.1"), ip("10.1.12.2"), 46, 0, 0),
            "1:KHlLkgoJW7ifUTyTSgyVfkFHzKw=");
}

TEST(CommunityIdTest, SwappedEndpointsGiveSameId) {
    EXPECT_EQ(community_id(4, ip("66.35.250.204"), ip("128.232.110.120"), 6, 80, 34855),
            "1:LQU9qZlK+B5F3KDmev6m5PMibrg=");
    EXPECT_EQ(community_id(4, ip("8.8.8.8"), ip("192.168.1.52"), 17, 53, 54585),
            "1:d/FP5EW3wiY1vCndhwleRRKHowQ=");
    EXPECT_EQ(community_id(6, ip("2607:f8b0:400c:c03::1a"),
                      ip("2001:470:e5bf:dead:4957:2174:e82c:4887"), 6, 25, 63943),
            "1:/qFaeAR+gFe1KYjMzVDsMv+wgU4=");
    EXPECT_EQ(community_id(4, ip("10.1.12.2"), ip("10.1.12.1"), 46, 0, 0),
            "1:KHlLkgoJW7ifUTyTSgyVfkFHzKw=");
}

TEST(CommunityIdTest, SameAddressesOrderedByPort) {
    const auto a = ip("10.0.0.1");

    EXPECT_EQ(community_id(4, a, a, 6, 1000, 80), community_id(4, a, a, 6, 80, 1000));
}

TEST(CommunityIdTest, IcmpEchoRequestAndReplyShareId) {
    // Type in src_port, code in dst_port.
    EXPECT_EQ(community_id(4, ip("192.168.0.89"), ip("192.168.0.1"), 1, 8, 0),
            "1:X0snYXpgwiv9TZtqg64sgzUn6Dk=");
    EXPECT_EQ(community_id(4, ip("192.168.0.1"), ip("192.168.0.89"), 1, 0, 0),
            "1:X0snYXpgwiv9TZtqg64sgzUn6Dk=");
}

TEST(CommunityIdTest, IcmpOneWayTypeKeepsDirection) {
    EXPECT_EQ(community_id(4, ip("10.0.0.1"), ip("10.0.0.2"), 1, 11, 0),
            "1:YHxtAirCG//0OzkcVAukqKQN9xM=");
}

TEST(CommunityIdTest, Icmp6NeighbourSolicitationMatchesSpec) {
    EXPECT_EQ(community_id(6, ip("fe80::200:86ff:fe05:80da"), ip("fe80::260:97ff:fe07:69ea"), 58,
                      135, 0),
            "1:dGHyGvjMfljg6Bppwm3bg0LO8TY=");
    EXPECT_EQ(community_id(6, ip("fe80::260:97ff:fe07:69ea"), ip("fe80::200:86ff:fe05:80da"), 58,
                      136, 0),
            "1:dGHyGvjMfljg6Bppwm3bg0LO8TY=");
}

TEST(CommunityIdTest, SeedChangesId) {
    EXPECT_NE(community_id(4, ip("128.232.110.120"), ip("66.35.250.204"), 6, 34855, 80, 1),
            "1:LQU9qZlK+B5F3KDmev6m5PMibrg=");
}

TEST(MaskValueTest, ShowsLastFourOnly) {
    EXPECT_EQ(mask_value("4111111111111111"), "************1111");
    EXPECT_EQ(mask_value("12345"), "*2345");
}

TEST(MaskValueTest, ShortValuesAreFullyMasked) {
    EXPECT_EQ(mask_value("1234"), "****");
    EXPECT_EQ(mask_value("1"), "*");
    EXPECT_EQ(mask_value(""), "");
}

TEST_F(TempDirTest, SampleKeyCreatesPrivateFileAndDirectory) {
    const std::string state = dir_ + "/state/sub";

    auto key = SampleKey::load_or_create(state);

    ASSERT_TRUE(key.ok()) << key.error();
    struct stat file_info {};
    ASSERT_EQ(stat((state + "/sample_hmac.key").c_str(), &file_info), 0);
    EXPECT_EQ(file_info.st_mode & 0777, 0600U);
    EXPECT_EQ(file_info.st_size, 32);
    struct stat dir_info {};
    ASSERT_EQ(stat(state.c_str(), &dir_info), 0);
    EXPECT_EQ(dir_info.st_mode & 0777, 0700U);
}

TEST_F(TempDirTest, SampleKeyReloadsSameKey) {
    auto first = SampleKey::load_or_create(dir_);
    auto second = SampleKey::load_or_create(dir_);

    ASSERT_TRUE(first.ok()) << first.error();
    ASSERT_TRUE(second.ok()) << second.error();
    EXPECT_EQ(first->hmac_hex("4111111111111111"), second->hmac_hex("4111111111111111"));
}

TEST_F(TempDirTest, SampleKeysDifferBetweenStateDirs) {
    std::filesystem::create_directory(dir_ + "/a");
    std::filesystem::create_directory(dir_ + "/b");

    auto a = SampleKey::load_or_create(dir_ + "/a");
    auto b = SampleKey::load_or_create(dir_ + "/b");

    ASSERT_TRUE(a.ok() && b.ok());
    EXPECT_NE(a->hmac_hex("x"), b->hmac_hex("x"));
}

TEST_F(TempDirTest, SampleKeyOfWrongSizeIsError) {
    std::ofstream(dir_ + "/sample_hmac.key") << "too short";

    auto key = SampleKey::load_or_create(dir_);

    ASSERT_FALSE(key.ok());
    EXPECT_NE(key.error().find("sample_hmac.key: sample HMAC key has 9 bytes, expected 32"),
            std::string::npos)
            << key.error();
}

TEST_F(TempDirTest, SampleHmacIsHexHmacSha256) {
    std::string bytes;
    for (int i = 0; i < 32; ++i) {
        bytes.push_back(static_cast<char>(i));
    }
    {
        std::ofstream out(dir_ + "/sample_hmac.key", std::ios::binary);
        out << bytes;
    }
    std::filesystem::permissions(dir_ + "/sample_hmac.key", std::filesystem::perms::owner_read);

    auto key = SampleKey::load_or_create(dir_);

    ASSERT_TRUE(key.ok()) << key.error();
    // Computed independently (Python hmac module) for key bytes 0..31.
    EXPECT_EQ(key->hmac_hex("4111111111111111"),
            "0622241201382a45912fb22828b3f7db5153cf2072722a73ded22623ea79abc9");
}

TEST(FormatIpTest, FormatsBothFamilies) {
    EXPECT_EQ(format_ip(4, ip("192.0.2.1")), "192.0.2.1");
    EXPECT_EQ(format_ip(6, ip("2001:db8:0:0:0:0:0:1")), "2001:db8::1");
}

TEST(AlertToJsonTest, CarriesEveFields) {
    const AlertRecord record = sample_record();

    const auto json = nlohmann::json::parse(alert_to_json(record));

    EXPECT_EQ(json["timestamp"], "2026-01-02T03:04:05.123456+0000");
    EXPECT_EQ(json["flow_id"], 1234567890123ULL);
    EXPECT_EQ(json["event_type"], "alert");
    EXPECT_EQ(json["src_ip"], "10.0.0.5");
    EXPECT_EQ(json["src_port"], 51000);
    EXPECT_EQ(json["dest_ip"], "203.0.113.9");
    EXPECT_EQ(json["dest_port"], 443);
    EXPECT_EQ(json["proto"], "TCP");
    EXPECT_EQ(json["community_id"],
            community_id(4, record.src, record.dst, 6, record.src_port, record.dst_port));
    EXPECT_FALSE(json.contains("vlan"));
    EXPECT_FALSE(json.contains("src_asset"));
    EXPECT_FALSE(json.contains("dest_asset"));
}

TEST(AlertToJsonTest, CarriesAlertAndExfilObjects) {
    const auto json = nlohmann::json::parse(alert_to_json(sample_record()));

    const auto& alert = json["alert"];
    EXPECT_EQ(alert["action"], "blocked");
    EXPECT_EQ(alert["signature_id"], 1000001);
    EXPECT_EQ(alert["signature"], "Payment card numbers leaving");
    EXPECT_EQ(alert["category"], "Data Exfiltration");
    EXPECT_EQ(alert["severity"], 1);
    const auto& exfil = json["exfil"];
    EXPECT_EQ(exfil["detector"], "content");
    EXPECT_EQ(exfil["class"], "payment_card");
    EXPECT_EQ(exfil["confidence"], "high");
    EXPECT_EQ(exfil["bytes"], 4096);
    EXPECT_EQ(exfil["count"], 3);
    EXPECT_EQ(exfil["sample"], "************1111");
    EXPECT_EQ(exfil["sample_hmac"], std::string(64, 'a'));
}

TEST(AlertToJsonTest, SeverityFollowsSuricataScale) {
    AlertRecord record = sample_record();
    const std::pair<detectors::Severity, int> cases[] = {
            {detectors::Severity::Critical, 1},
            {detectors::Severity::High, 2},
            {detectors::Severity::Medium, 3},
            {detectors::Severity::Low, 4},
    };
    for (const auto& [severity, expected] : cases) {
        record.severity = severity;
        EXPECT_EQ(nlohmann::json::parse(alert_to_json(record))["alert"]["severity"], expected);
    }
}

TEST(AlertToJsonTest, WritesVlanAndAssetsWhenKnown) {
    AlertRecord record = sample_record();
    record.vlan = {100, 200, 0, 0};
    record.vlan_count = 2;
    record.src_asset = "hr-laptop";
    record.dst_asset = "backup";

    const auto json = nlohmann::json::parse(alert_to_json(record));

    EXPECT_EQ(json["vlan"], nlohmann::json::array({100, 200}));
    EXPECT_EQ(json["src_asset"]["name"], "hr-laptop");
    EXPECT_EQ(json["dest_asset"]["name"], "backup");
}

TEST(AlertToJsonTest, WritesAssetClassificationOfEachEnd) {
    AlertRecord record = sample_record();
    record.src_asset = "hr-db";
    record.src_asset_classification = "restricted";
    record.dst_asset = "partner-sftp";
    record.dst_asset_classification = "public";

    const auto json = nlohmann::json::parse(alert_to_json(record));

    EXPECT_EQ(json["src_asset"],
            nlohmann::json({{"name", "hr-db"}, {"classification", "restricted"}}));
    EXPECT_EQ(json["dest_asset"],
            nlohmann::json({{"name", "partner-sftp"}, {"classification", "public"}}));
}

TEST(AlertToJsonTest, AssetWithoutClassificationHasNameOnly) {
    AlertRecord record = sample_record();
    record.src_asset = "hr-laptop";

    const auto json = nlohmann::json::parse(alert_to_json(record));

    EXPECT_EQ(json["src_asset"], nlohmann::json({{"name", "hr-laptop"}}));
    EXPECT_FALSE(json.contains("dest_asset"));
}

TEST(AlertToJsonTest, ClassificationWithoutAssetNameIsNotWritten) {
    AlertRecord record = sample_record();
    record.dst_asset_classification = "confidential";

    const auto json = nlohmann::json::parse(alert_to_json(record));

    EXPECT_FALSE(json.contains("dest_asset"));
    EXPECT_EQ(alert_to_json(record).find("confidential"), std::string::npos);
}

TEST(AlertToJsonTest, NamesProtocolsLikeSuricata) {
    AlertRecord record = sample_record();
    record.ip_version = 6;
    record.src = ip("2001:db8::1");
    record.dst = ip("2001:db8::2");
    record.proto = 58;
    record.src_port = 128;
    record.dst_port = 0;

    auto json = nlohmann::json::parse(alert_to_json(record));
    EXPECT_EQ(json["proto"], "IPv6-ICMP");
    EXPECT_EQ(json["src_ip"], "2001:db8::1");
    EXPECT_EQ(json["icmp_type"], 128);
    EXPECT_FALSE(json.contains("src_port"));

    record.proto = 47;
    json = nlohmann::json::parse(alert_to_json(record));
    EXPECT_EQ(json["proto"], "47");

    record.proto = 17;
    EXPECT_EQ(nlohmann::json::parse(alert_to_json(record))["proto"], "UDP");
}

TEST(AlertToJsonTest, InvalidUtf8DoesNotThrow) {
    AlertRecord record = sample_record();
    record.signature = std::string("bad \xff byte");

    nlohmann::json parsed;
    EXPECT_NO_THROW(parsed = nlohmann::json::parse(alert_to_json(record)));
    EXPECT_TRUE(parsed.is_object());
}

TEST_F(TempDirTest, AlertWriterAppendsOneLinePerRecord) {
    const std::string path = dir_ + "/alerts.json";
    {
        auto writer = AlertWriter::open(path);
        ASSERT_TRUE(writer.ok()) << writer.error();
        writer->write(sample_record());
        writer->write(sample_record());
        EXPECT_EQ(writer->written(), 2U);
    }
    {
        auto writer = AlertWriter::open(path);
        ASSERT_TRUE(writer.ok()) << writer.error();
        writer->write(sample_record());
    }

    const auto lines = read_lines(path);

    ASSERT_EQ(lines.size(), 3U);
    for (const auto& line : lines) {
        EXPECT_EQ(nlohmann::json::parse(line)["event_type"], "alert");
    }
}

TEST_F(TempDirTest, AlertWriterFlushesEachRecord) {
    const std::string path = dir_ + "/alerts.json";
    auto writer = AlertWriter::open(path);
    ASSERT_TRUE(writer.ok()) << writer.error();

    writer->write(sample_record());

    EXPECT_EQ(read_lines(path).size(), 1U);
}

TEST_F(TempDirTest, AlertWriterSurvivesMove) {
    const std::string path = dir_ + "/alerts.json";
    auto opened = AlertWriter::open(path);
    ASSERT_TRUE(opened.ok());
    AlertWriter writer = std::move(*opened);

    writer.write(sample_record());

    EXPECT_EQ(writer.written(), 1U);
    EXPECT_EQ(read_lines(path).size(), 1U);
}

TEST_F(TempDirTest, AlertWriterOpenFailsInMissingDirectory) {
    auto writer = AlertWriter::open(dir_ + "/absent/alerts.json");

    ASSERT_FALSE(writer.ok());
    EXPECT_NE(writer.error().find("cannot open alerts file"), std::string::npos);
}

TEST_F(TempDirTest, AlertWriterCountsRecordsOfARemovedFileAndCreatesItAgain) {
    const std::string folder = dir_ + "/alerts";
    std::filesystem::create_directory(folder);
    const std::string path = folder + "/alerts.json";
    auto writer = AlertWriter::open(path);
    ASSERT_TRUE(writer) << writer.error();
    writer->write(sample_record());
    EXPECT_FALSE(writer->recover_removed().has_value());  // nothing happened
    writer->write(sample_record());
    writer->write(sample_record());
    std::filesystem::remove_all(folder);  // the two records since the last check are gone
    const std::optional<std::string> said = writer->recover_removed();
    ASSERT_TRUE(said.has_value());
    EXPECT_NE(said->find("was removed; created it again (2 alert records lost"), std::string::npos)
            << *said;
    EXPECT_EQ(writer->failed(), 2U);
    EXPECT_EQ(writer->written(), 1U);
    writer->write(sample_record());
    EXPECT_EQ(read_lines(path).size(), 1U);
    EXPECT_EQ(std::filesystem::status(folder).permissions() & std::filesystem::perms::all,
            std::filesystem::perms(0750));
}

TEST_F(TempDirTest, AlertWriterCountsRecordsWhileTheFileCannotBeCreated) {
    const std::string folder = dir_ + "/alerts";
    std::filesystem::create_directory(folder);
    const std::string path = folder + "/alerts.json";
    auto writer = AlertWriter::open(path);
    ASSERT_TRUE(writer) << writer.error();
    std::filesystem::remove_all(folder);
    // A plain file where the folder was: the folder cannot be made again.
    std::ofstream(folder) << "in the way\n";
    const std::optional<std::string> said = writer->recover_removed();
    ASSERT_TRUE(said.has_value());
    EXPECT_NE(said->find("cannot be created again"), std::string::npos) << *said;
    writer->write(sample_record());
    writer->write(sample_record());
    EXPECT_EQ(writer->failed(), 2U);
    EXPECT_FALSE(writer->recover_removed().has_value());  // quiet while it stays so
    std::filesystem::remove(folder);
    const std::optional<std::string> back = writer->recover_removed();
    ASSERT_TRUE(back.has_value());
    EXPECT_NE(back->find("created again (2 alert records lost"), std::string::npos) << *back;
    writer->write(sample_record());
    EXPECT_EQ(read_lines(path).size(), 1U);
}

TEST_F(TempDirTest, AlertWriterLeavesARotatedFileToReopen) {
    const std::string path = dir_ + "/alerts.json";
    auto writer = AlertWriter::open(path);
    ASSERT_TRUE(writer) << writer.error();
    writer->write(sample_record());
    std::filesystem::rename(path, path + ".1");  // logrotate moved it; nothing is lost
    EXPECT_FALSE(writer->recover_removed().has_value());
    writer->write(sample_record());
    EXPECT_EQ(writer->failed(), 0U);
    EXPECT_EQ(read_lines(path + ".1").size(), 2U);
    ASSERT_TRUE(writer->reopen());
    writer->write(sample_record());
    EXPECT_EQ(read_lines(path).size(), 1U);
}

TEST(AlertWriterTest, CountsRecordsADiskCannotTake) {
    auto writer = AlertWriter::open("/dev/full");  // every write fails with ENOSPC
    ASSERT_TRUE(writer) << writer.error();
    writer->write(sample_record());
    writer->write(sample_record());
    EXPECT_EQ(writer->failed(), 2U);
    EXPECT_EQ(writer->written(), 0U);
}

TEST_F(TempDirTest, AlertWriterCountsRecordsOfARemovedFileWhenReopened) {
    const std::string path = dir_ + "/alerts.json";
    auto writer = AlertWriter::open(path);
    ASSERT_TRUE(writer) << writer.error();
    writer->write(sample_record());
    EXPECT_FALSE(writer->recover_removed().has_value());
    writer->write(sample_record());
    writer->write(sample_record());
    std::filesystem::remove(path);  // removed, then a reload reopens before the next check
    ASSERT_TRUE(writer->reopen());
    EXPECT_EQ(writer->failed(), 2U);
    EXPECT_EQ(writer->written(), 1U);
    writer->write(sample_record());
    EXPECT_EQ(read_lines(path).size(), 1U);
    EXPECT_FALSE(writer->recover_removed().has_value());
    EXPECT_EQ(writer->failed(), 2U);
}

}  // namespace
}  // namespace exfiltap::control
