// The behaviour engine's flow-volume and application-event detectors, fed by hand: for each
// detector one case that alerts (exact finding fields) and a near miss that must not.
#include <array>
#include <cstdio>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "detectors/behaviour.h"
#include "detectors/lru_map.h"
#include "tests/unit/detectors/behaviour_test_support.h"

namespace exfiltap::detectors {
namespace {

class BehaviourEngineTest : public ::testing::Test {
protected:
    void SetUp() override {
        Asset hr;
        hr.name = "hr-db";
        hr.classification = Classification::Restricted;
        hr.prefixes = {prefix("10.0.5.0", 24)};
        assets_.add(hr);
        Asset files;
        files.name = "files";
        files.classification = Classification::Confidential;
        files.roles = 1U << static_cast<unsigned>(AssetRole::FileServer);
        files.prefixes = {prefix("10.0.9.10", 32)};
        assets_.add(files);
        Asset build;
        build.name = "build";
        build.prefixes = {prefix("10.0.9.20", 32)};
        assets_.add(build);
    }

    BehaviourEngine make(const BehaviourConfig& config) {
        return BehaviourEngine(config, &assets_,
                {prefix("10.0.0.0", 8), prefix("192.168.0.0", 16), prefix("fd00::", 8)},
                {SanctionedRange{"updates", prefix("198.51.100.0", 24)}});
    }

    AssetInventory assets_;
};

// ---- external_upload ----

TEST_F(BehaviourEngineTest, ExternalUploadHostReachingThresholdAlertsOnce) {
    BehaviourConfig c = quiet_config();
    c.external_upload.enabled = true;
    c.external_upload.flow_bytes = 0;
    BehaviourEngine engine = make(c);
    for (uint64_t i = 0; i < 6; ++i) {
        engine.on_flow_bytes(flow("10.0.0.5", 40000 + i, "203.0.113.7", 443, i + 1), AppProto::Tls,
                "", kT0 + i * 60 * kS, 100 * kMB, 10 * kKB, true);
    }
    const auto findings = engine.take_findings();
    ASSERT_EQ(findings.size(), 1U);
    const BehaviourFinding& f = findings[0];
    EXPECT_EQ(f.detector, "external_upload");
    EXPECT_EQ(f.severity, Severity::High);
    EXPECT_EQ(f.flow, flow("10.0.0.5", 40004, "203.0.113.7", 443, 5));
    EXPECT_EQ(f.time_ns, kT0 + 4 * 60 * kS);
    EXPECT_EQ(f.bytes, 500 * kMB);
    EXPECT_EQ(f.window_s, 3600U);
    EXPECT_EQ(f.threshold, 500 * kMB);
    EXPECT_EQ(f.app_proto, "tls");
    EXPECT_EQ(f.src_asset, nullptr);
    EXPECT_EQ(f.reason,
            "10.0.0.5 sent 500 MB to external hosts in 3600 s (threshold 500 MB for internal "
            "assets); latest to 203.0.113.7:443");
}

TEST_F(BehaviourEngineTest, ExternalUploadJustUnderThresholdIsQuiet) {
    BehaviourConfig c = quiet_config();
    c.external_upload.enabled = true;
    c.external_upload.flow_bytes = 0;
    BehaviourEngine engine = make(c);
    engine.on_flow_bytes(flow("10.0.0.5", 40000, "203.0.113.7", 443, 1), AppProto::Tls, "", kT0,
            500 * kMB - 1, 0, false);
    engine.advance(kT0 + 7200 * kS);
    EXPECT_TRUE(engine.take_findings().empty());
}

TEST_F(BehaviourEngineTest, ExternalUploadUsesTheAssetClassificationThreshold) {
    BehaviourConfig c = quiet_config();
    c.external_upload.enabled = true;
    c.external_upload.flow_bytes = 0;
    BehaviourEngine engine = make(c);
    engine.on_flow_bytes(flow("10.0.5.3", 40000, "203.0.113.7", 22, 1), AppProto::Ssh, "", kT0,
            50 * kMB, 0, false);
    const auto findings = engine.take_findings();
    ASSERT_EQ(findings.size(), 1U);
    EXPECT_EQ(findings[0].threshold, 50 * kMB);
    ASSERT_NE(findings[0].src_asset, nullptr);
    EXPECT_EQ(findings[0].src_asset->name, "hr-db");
    EXPECT_EQ(findings[0].reason,
            "10.0.5.3 (asset hr-db, restricted) sent 50 MB to external hosts in 3600 s "
            "(threshold 50 MB for restricted assets); latest to 203.0.113.7:22");
}

TEST_F(BehaviourEngineTest, ExternalUploadRearmsOnceTheWindowHasPassed) {
    BehaviourConfig c = quiet_config();
    c.external_upload.enabled = true;
    c.external_upload.flow_bytes = 0;
    BehaviourEngine engine = make(c);
    const FlowTuple f = flow("10.0.0.5", 40000, "203.0.113.7", 443, 1);
    engine.on_flow_bytes(f, AppProto::Tls, "", kT0, 600 * kMB, 0, false);
    engine.on_flow_bytes(f, AppProto::Tls, "", kT0 + 1800 * kS, 600 * kMB, 0, false);
    EXPECT_EQ(engine.take_findings().size(), 1U);
    engine.on_flow_bytes(f, AppProto::Tls, "", kT0 + 3600 * kS, 600 * kMB, 0, false);
    const auto again = engine.take_findings();
    ASSERT_EQ(again.size(), 1U);
    // The first 600 MB left the window; the 1800 s and 3600 s reports remain.
    EXPECT_EQ(again[0].bytes, 1200 * kMB);
}

TEST_F(BehaviourEngineTest, ExternalUploadPerFlowAlertsWithSni) {
    BehaviourConfig c = quiet_config();
    c.external_upload.enabled = true;
    BehaviourEngine engine = make(c);
    const FlowTuple f = flow("10.0.0.5", 40000, "203.0.113.7", 443, 9);
    engine.on_flow_bytes(f, AppProto::Tls, "files.example.net", kT0, 60 * kMB, 0, false);
    engine.on_flow_bytes(f, AppProto::Tls, "files.example.net", kT0 + kS, 40 * kMB, 0, false);
    const auto findings = engine.take_findings();
    ASSERT_EQ(findings.size(), 1U);
    EXPECT_EQ(findings[0].flow, f);
    EXPECT_EQ(findings[0].bytes, 100 * kMB);
    EXPECT_EQ(findings[0].window_s, 0U);
    EXPECT_EQ(findings[0].threshold, 100 * kMB);
    EXPECT_EQ(findings[0].sni, "files.example.net");
    EXPECT_EQ(findings[0].reason,
            "10.0.0.5 sent 100 MB to external 203.0.113.7:443 in one tls flow (TLS server name "
            "files.example.net) (threshold 100 MB per flow)");
}

TEST_F(BehaviourEngineTest, ExternalUploadIgnoresWhatInternalServersServeByDefault) {
    BehaviourConfig c = quiet_config();
    c.external_upload.enabled = true;
    c.encrypted_asymmetry.enabled = true;
    BehaviourEngine engine = make(c);
    engine.on_flow_bytes(flow("203.0.113.9", 50000, "10.0.0.8", 8443, 3), AppProto::Tls, "", kT0,
            1 * kMB, 900 * kMB, true);
    EXPECT_TRUE(engine.take_findings().empty());
}

TEST_F(BehaviourEngineTest, ExternalUploadCountsServedBytesWhenAsked) {
    BehaviourConfig c = quiet_config();
    c.external_upload.enabled = true;
    c.external_upload.include_served = true;
    BehaviourEngine engine = make(c);
    // An outside client pulls 120 MB from an internal server.
    const FlowTuple f = flow("203.0.113.9", 50000, "10.0.0.8", 8443, 3);
    engine.on_flow_bytes(f, AppProto::Tls, "", kT0, 1 * kMB, 120 * kMB, true);
    const auto findings = engine.take_findings();
    ASSERT_EQ(findings.size(), 1U);
    EXPECT_EQ(findings[0].flow, f);
    EXPECT_EQ(findings[0].reason,
            "10.0.0.8 sent 120 MB to external 203.0.113.9:50000 in one tls flow (threshold "
            "100 MB per flow)");
}

TEST_F(BehaviourEngineTest, SanctionedDestinationIsLeftOutOfVolumeDetectors) {
    BehaviourConfig c = quiet_config();
    c.external_upload.enabled = true;
    c.encrypted_asymmetry.enabled = true;
    BehaviourEngine engine = make(c);
    engine.on_flow_bytes(flow("10.0.0.5", 40000, "198.51.100.20", 443, 1), AppProto::Tls,
            "backup.example.com", kT0, 2 * kGB, 0, true);
    EXPECT_TRUE(engine.take_findings().empty());
}

TEST_F(BehaviourEngineTest, TlsServerNameNeverExempts) {
    BehaviourConfig c = quiet_config();
    c.external_upload.enabled = true;
    BehaviourEngine engine = make(c);
    engine.on_flow_bytes(flow("10.0.0.5", 40000, "203.0.113.7", 443, 1), AppProto::Tls,
            "update.microsoft.com", kT0, 150 * kMB, 0, true);
    const auto findings = engine.take_findings();
    ASSERT_EQ(findings.size(), 1U);
    EXPECT_EQ(findings[0].sni, "update.microsoft.com");
}

// ---- internal_transfer ----

TEST_F(BehaviourEngineTest, InternalTransferFlowAlerts) {
    BehaviourConfig c = quiet_config();
    c.internal_transfer.enabled = true;
    c.internal_transfer.host_bytes = 0;
    BehaviourEngine engine = make(c);
    const FlowTuple f = flow("10.0.0.5", 40000, "10.0.9.10", 445, 4);
    engine.on_flow_bytes(f, AppProto::Smb, "", kT0, 900 * kMB, 1 * kMB, false);
    engine.on_flow_bytes(f, AppProto::Smb, "", kT0 + 10 * kS, 99 * kMB, 0, false);
    const auto findings = engine.take_findings();
    ASSERT_EQ(findings.size(), 1U);
    const BehaviourFinding& got = findings[0];
    EXPECT_EQ(got.detector, "internal_transfer");
    EXPECT_EQ(got.severity, Severity::Medium);
    EXPECT_EQ(got.bytes, 1 * kGB);
    EXPECT_EQ(got.threshold, 1 * kGB);
    ASSERT_NE(got.dst_asset, nullptr);
    EXPECT_EQ(got.dst_asset->name, "files");
    EXPECT_EQ(got.reason,
            "10.0.0.5 and 10.0.9.10:445 (asset files) moved 1 GB in one smb flow (999 MB to the "
            "server, 1 MB back; threshold 1 GB per flow)");
}

TEST_F(BehaviourEngineTest, InternalTransferJustUnderThresholdIsQuiet) {
    BehaviourConfig c = quiet_config();
    c.internal_transfer.enabled = true;
    BehaviourEngine engine = make(c);
    engine.on_flow_bytes(flow("10.0.0.5", 40000, "10.0.9.10", 445, 4), AppProto::Smb, "", kT0,
            1 * kGB - 1, 0, true);
    EXPECT_TRUE(engine.take_findings().empty());
}

TEST_F(BehaviourEngineTest, InternalTransferHostCollectingFromManyServersAlerts) {
    BehaviourConfig c = quiet_config();
    c.internal_transfer.enabled = true;
    c.internal_transfer.host_bytes = 300 * kMB;
    BehaviourEngine engine = make(c);
    for (uint64_t i = 0; i < 3; ++i) {
        const std::string server = "10.0.7." + std::to_string(i + 1);
        engine.on_flow_bytes(flow("10.0.0.5", 40000 + i, server.c_str(), 445, i + 1), AppProto::Smb,
                "", kT0 + i * kS, 1 * kMB, 100 * kMB, true);
    }
    const auto findings = engine.take_findings();
    ASSERT_EQ(findings.size(), 1U);
    EXPECT_EQ(findings[0].flow, flow("10.0.0.5", 40002, "10.0.7.3", 445, 3));
    EXPECT_EQ(findings[0].bytes, 300 * kMB);
    EXPECT_EQ(findings[0].window_s, 3600U);
    EXPECT_EQ(findings[0].reason,
            "10.0.0.5 received 300 MB from internal hosts in 3600 s (threshold 300 MB); latest "
            "from 10.0.7.3:445");
}

// ---- encrypted_asymmetry ----

TEST_F(BehaviourEngineTest, EncryptedAsymmetryAlertsWithServerName) {
    BehaviourConfig c = quiet_config();
    c.encrypted_asymmetry.enabled = true;
    BehaviourEngine engine = make(c);
    const FlowTuple f = flow("10.0.0.5", 40000, "203.0.113.7", 443, 5);
    engine.on_flow_bytes(f, AppProto::Tls, "drop.example.org", kT0, 12 * kMB, 1 * kMB, false);
    const auto findings = engine.take_findings();
    ASSERT_EQ(findings.size(), 1U);
    EXPECT_EQ(findings[0].detector, "encrypted_asymmetry");
    EXPECT_EQ(findings[0].bytes, 12 * kMB);
    EXPECT_EQ(findings[0].count, 12U);
    EXPECT_EQ(findings[0].sni, "drop.example.org");
    EXPECT_EQ(findings[0].reason,
            "10.0.0.5 sent 12 MB and received 1 MB (ratio 12:1) over tls with external "
            "203.0.113.7:443 (TLS server name drop.example.org) (thresholds 10 MB and 10:1)");
}

TEST_F(BehaviourEngineTest, EncryptedAsymmetryBelowRatioIsQuiet) {
    BehaviourConfig c = quiet_config();
    c.encrypted_asymmetry.enabled = true;
    BehaviourEngine engine = make(c);
    engine.on_flow_bytes(flow("10.0.0.5", 40000, "203.0.113.7", 443, 5), AppProto::Tls, "", kT0,
            20 * kMB, 2 * kMB + 1, true);
    EXPECT_TRUE(engine.take_findings().empty());
}

TEST_F(BehaviourEngineTest, EncryptedAsymmetryIgnoresCleartextProtocols) {
    BehaviourConfig c = quiet_config();
    c.encrypted_asymmetry.enabled = true;
    BehaviourEngine engine = make(c);
    engine.on_flow_bytes(flow("10.0.0.5", 40000, "203.0.113.7", 80, 5), AppProto::Http, "", kT0,
            50 * kMB, 0, true);
    EXPECT_TRUE(engine.take_findings().empty());
}

// ---- baseline_deviation ----

BehaviourConfig baseline_config() {
    BehaviourConfig c = quiet_config();
    c.baseline_deviation.enabled = true;
    c.baseline_deviation.alpha = 0.5;
    c.baseline_deviation.k = 3.0;
    c.baseline_deviation.warmup_windows = 4;
    c.baseline_deviation.floor_bytes = 1 * kMB;
    return c;
}

/// Four hourly windows of 8, 12, 8 and 12 MB: mean 10.5 MB, stddev 1.94 MB, so the limit
/// is 16.3 MB.
void train(BehaviourEngine& engine) {
    const std::array<uint64_t, 4> mb = {8, 12, 8, 12};
    for (size_t i = 0; i < mb.size(); ++i) {
        engine.on_flow_bytes(flow("10.0.0.5", 40000, "203.0.113.7", 443, i + 1), AppProto::Tls, "",
                kT0 + i * 3600 * kS + 60 * kS, mb[i] * kMB, 0, true);
    }
}

TEST_F(BehaviourEngineTest, BaselineDeviationAlertsWhenTheWindowCloses) {
    BehaviourEngine engine = make(baseline_config());
    train(engine);
    engine.on_flow_bytes(flow("10.0.0.5", 40100, "203.0.113.8", 443, 10), AppProto::Tls, "",
            kT0 + 4 * 3600 * kS + 60 * kS, 40 * kMB, 0, true);
    EXPECT_TRUE(engine.take_findings().empty());
    engine.advance(kT0 + 5 * 3600 * kS);
    const auto findings = engine.take_findings();
    ASSERT_EQ(findings.size(), 1U);
    const BehaviourFinding& f = findings[0];
    EXPECT_EQ(f.detector, "baseline_deviation");
    EXPECT_EQ(f.flow, flow("10.0.0.5", 40100, "203.0.113.8", 443, 10));
    EXPECT_EQ(f.time_ns, kT0 + 5 * 3600 * kS);
    EXPECT_EQ(f.bytes, 40 * kMB);
    EXPECT_EQ(f.window_s, 3600U);
    EXPECT_NEAR(static_cast<double>(f.threshold), 16309475.0, 2.0);
    EXPECT_EQ(f.reason,
            "10.0.0.5 sent 40 MB to external hosts in a 3600 s window; its baseline over 4 "
            "windows is 10.5 MB (stddev 1.9 MB), alert above 16.3 MB (mean + 3 stddev, floor "
            "1 MB)");
}

TEST_F(BehaviourEngineTest, BaselineDeviationWithinSpreadIsQuiet) {
    BehaviourEngine engine = make(baseline_config());
    train(engine);
    engine.on_flow_bytes(flow("10.0.0.5", 40100, "203.0.113.8", 443, 10), AppProto::Tls, "",
            kT0 + 4 * 3600 * kS + 60 * kS, 16 * kMB, 0, true);
    engine.advance(kT0 + 5 * 3600 * kS);
    EXPECT_TRUE(engine.take_findings().empty());
}

TEST_F(BehaviourEngineTest, BaselineDeviationWaitsForWarmUp) {
    BehaviourConfig c = baseline_config();
    c.baseline_deviation.warmup_windows = 5;
    BehaviourEngine engine = make(c);
    train(engine);
    engine.on_flow_bytes(flow("10.0.0.5", 40100, "203.0.113.8", 443, 10), AppProto::Tls, "",
            kT0 + 4 * 3600 * kS + 60 * kS, 40 * kMB, 0, true);
    engine.advance(kT0 + 5 * 3600 * kS);
    EXPECT_TRUE(engine.take_findings().empty());
}

TEST_F(BehaviourEngineTest, BaselinesSurviveSaveAndLoad) {
    BehaviourEngine before = make(baseline_config());
    train(before);
    before.advance(kT0 + 4 * 3600 * kS);
    const std::string saved = before.save_baselines();
    EXPECT_EQ(saved.rfind("exfiltap-baselines 2\nwindows_s 3600 600 3600\nstart_ns "
                              + std::to_string(kT0 + 60 * kS) + "\nhost 4 10.0.0.5 4 ",
                      0),
            0U)
            << saved;

    BehaviourEngine after = make(baseline_config());
    const Status loaded = after.load_baselines(saved);
    ASSERT_TRUE(loaded.ok()) << loaded.error();
    EXPECT_EQ(after.save_baselines(), saved);
    // The window running at the restart is partial and dropped; the next one counts.
    after.on_flow_bytes(flow("10.0.0.5", 40100, "203.0.113.8", 443, 10), AppProto::Tls, "",
            kT0 + 4 * 3600 * kS + 60 * kS, 40 * kMB, 0, true);
    after.advance(kT0 + 5 * 3600 * kS);
    EXPECT_TRUE(after.take_findings().empty());
    after.on_flow_bytes(flow("10.0.0.5", 40101, "203.0.113.8", 443, 11), AppProto::Tls, "",
            kT0 + 5 * 3600 * kS + 60 * kS, 90 * kMB, 0, true);
    after.advance(kT0 + 6 * 3600 * kS);
    const auto findings = after.take_findings();
    ASSERT_EQ(findings.size(), 1U);
    EXPECT_EQ(findings[0].bytes, 90 * kMB);
}

TEST_F(BehaviourEngineTest, LoadRefusesACorruptFile) {
    BehaviourEngine before = make(baseline_config());
    train(before);
    before.advance(kT0 + 4 * 3600 * kS);
    std::string saved = before.save_baselines();
    saved[saved.find("10.0.0.5") + 7] = '6';
    BehaviourEngine after = make(baseline_config());
    const Status loaded = after.load_baselines(saved);
    ASSERT_FALSE(loaded.ok());
    EXPECT_EQ(loaded.error(), "baselines: checksum mismatch (the file is corrupt or was edited)");
    EXPECT_EQ(after.stats().hosts, 0U);
}

TEST_F(BehaviourEngineTest, LoadRefusesAFileCutShort) {
    BehaviourEngine before = make(baseline_config());
    train(before);
    before.advance(kT0 + 4 * 3600 * kS);
    const std::string saved = before.save_baselines();
    BehaviourEngine after = make(baseline_config());
    const Status loaded = after.load_baselines(saved.substr(0, saved.size() / 2));
    ASSERT_FALSE(loaded.ok());
    EXPECT_EQ(loaded.error(), "baselines: no checksum line (the file was cut short)");
}

TEST_F(BehaviourEngineTest, AnotherWindowLengthStartsThoseBaselinesOver) {
    BehaviourEngine before = make(baseline_config());
    train(before);
    before.advance(kT0 + 4 * 3600 * kS);
    BehaviourConfig other = baseline_config();
    other.baseline_deviation.window_s = 600;
    BehaviourEngine after = make(other);
    const Status loaded = after.load_baselines(before.save_baselines());
    ASSERT_TRUE(loaded.ok()) << loaded.error();
    EXPECT_EQ(after.stats().baseline_resets, 1U);
    EXPECT_EQ(after.save_baselines().find("\nhost "), std::string::npos) << after.save_baselines();
}

/// A saved-state text: `body` and its checksum line.
std::string with_checksum(const std::string& body) {
    std::array<char, 17> sum{};
    std::snprintf(sum.data(), sum.size(), "%016llx",
            static_cast<unsigned long long>(fnv1a(body.data(), body.size())));
    return body + "checksum " + sum.data() + "\n";
}

// A file of version 1 (baseline_deviation only) written by an earlier build is still read.
TEST_F(BehaviourEngineTest, Version1FileIsStillRead) {
    const std::string body =
            "exfiltap-baselines 1\nwindow_s 3600\nhost 4 10.0.0.5 4 10500000 "
            "3.75e+12\nend 1\n";
    BehaviourEngine engine = make(baseline_config());
    const Status loaded = engine.load_baselines(with_checksum(body));
    ASSERT_TRUE(loaded.ok()) << loaded.error();
    EXPECT_NE(engine.save_baselines().find("\nhost 4 10.0.0.5 4 10500000 3.75e+12\n"),
            std::string::npos)
            << engine.save_baselines();
}

TEST_F(BehaviourEngineTest, LoadNamesTheLineOfABadRecord) {
    const std::string body =
            "exfiltap-baselines 2\nwindows_s 3600 600 3600\nstart_ns 5\n"
            "access 4 10.0.0.5 7 hr%2\nend 1\n";
    BehaviourEngine engine = make(baseline_config());
    const Status loaded = engine.load_baselines(with_checksum(body));
    ASSERT_FALSE(loaded.ok());
    EXPECT_EQ(loaded.error(), "baselines line 4: bad values in this access line");
}

// ---- archive_out ----

AppEvent archive_event(bool upload) {
    AppEvent e;
    e.kind = AppEventKind::Archive;
    e.proto = AppProto::Http;
    e.upload = upload;
    e.entropy_milli = 7912;
    e.set(e.name, "zip");
    return e;
}

TEST_F(BehaviourEngineTest, ArchiveUploadedToExternalHostAlerts) {
    BehaviourConfig c = quiet_config();
    c.archive_out.enabled = true;
    BehaviourEngine engine = make(c);
    const FlowTuple f = flow("10.0.0.5", 40000, "203.0.113.7", 80, 6);
    engine.on_app_event(f, kT0, archive_event(true));
    const auto findings = engine.take_findings();
    ASSERT_EQ(findings.size(), 1U);
    EXPECT_EQ(findings[0].detector, "archive_out");
    EXPECT_EQ(findings[0].flow, f);
    EXPECT_EQ(findings[0].format, "zip");
    EXPECT_EQ(findings[0].entropy_milli, 7912U);
    EXPECT_EQ(findings[0].app_proto, "http");
    EXPECT_EQ(findings[0].reason,
            "10.0.0.5 uploaded zip data (entropy 7.91 bits/byte) over http to external "
            "203.0.113.7:80");
}

TEST_F(BehaviourEngineTest, ArchiveSentInternallyIsQuiet) {
    BehaviourConfig c = quiet_config();
    c.archive_out.enabled = true;
    BehaviourEngine engine = make(c);
    engine.on_app_event(flow("10.0.0.5", 40000, "10.0.9.10", 80, 6), kT0, archive_event(true));
    EXPECT_TRUE(engine.take_findings().empty());
}

TEST_F(BehaviourEngineTest, ArchiveDownloadedIsQuiet) {
    BehaviourConfig c = quiet_config();
    c.archive_out.enabled = true;
    BehaviourEngine engine = make(c);
    engine.on_app_event(flow("10.0.0.5", 40000, "203.0.113.7", 80, 6), kT0, archive_event(false));
    EXPECT_TRUE(engine.take_findings().empty());
}

TEST_F(BehaviourEngineTest, ArchiveBelowEntropyMinimumIsQuiet) {
    BehaviourConfig c = quiet_config();
    c.archive_out.enabled = true;
    c.archive_out.min_entropy_milli = 7950;
    BehaviourEngine engine = make(c);
    engine.on_app_event(flow("10.0.0.5", 40000, "203.0.113.7", 80, 6), kT0, archive_event(true));
    EXPECT_TRUE(engine.take_findings().empty());
}

// ---- unexpected_file_write ----

AppEvent file_event(AppProto proto, const char* name, uint64_t bytes, bool upload) {
    AppEvent e;
    e.kind = AppEventKind::FileTransfer;
    e.proto = proto;
    e.upload = upload;
    e.bytes = bytes;
    e.set(e.name, name);
    e.set(e.user, "alice");
    return e;
}

TEST_F(BehaviourEngineTest, FileWriteToHostWithoutFileServerRoleAlerts) {
    BehaviourConfig c = quiet_config();
    c.unexpected_file_write.enabled = true;
    BehaviourEngine engine = make(c);
    const FlowTuple f = flow("10.0.0.5", 40000, "10.0.9.20", 21, 7);
    engine.on_app_event(f, kT0, file_event(AppProto::Ftp, "test.pdf", 118196, true));
    const auto findings = engine.take_findings();
    ASSERT_EQ(findings.size(), 1U);
    EXPECT_EQ(findings[0].detector, "unexpected_file_write");
    EXPECT_EQ(findings[0].file_name, "test.pdf");
    EXPECT_EQ(findings[0].bytes, 118196U);
    EXPECT_EQ(findings[0].user, "alice");
    EXPECT_EQ(findings[0].reason,
            "10.0.0.5 wrote 'test.pdf' (118.1 KB) over ftp as user 'alice' to 10.0.9.20:21 "
            "(asset build), which the asset inventory does not list as a file server");
}

TEST_F(BehaviourEngineTest, SmallFileWriteToExternalHostIsQuiet) {
    BehaviourConfig c = quiet_config();
    c.unexpected_file_write.enabled = true;
    BehaviourEngine engine = make(c);
    engine.on_app_event(flow("10.0.0.5", 40000, "203.0.113.7", 80, 7), kT0,
            file_event(AppProto::Http, "toto.txt", 24, true));
    EXPECT_TRUE(engine.take_findings().empty());
}

TEST_F(BehaviourEngineTest, FileWriteToExternalHostAlerts) {
    BehaviourConfig c = quiet_config();
    c.unexpected_file_write.enabled = true;
    c.unexpected_file_write.external_min_bytes = 4096;
    BehaviourEngine engine = make(c);
    engine.on_app_event(flow("10.0.0.5", 40000, "203.0.113.7", 80, 7), kT0,
            file_event(AppProto::Http, "dump.sql", 4096, true));
    const auto findings = engine.take_findings();
    ASSERT_EQ(findings.size(), 1U);
    EXPECT_EQ(findings[0].reason,
            "10.0.0.5 wrote 'dump.sql' (4 KB) over http as user 'alice' to external host "
            "203.0.113.7:80");
}

TEST_F(BehaviourEngineTest, FileWriteToFileServerIsQuiet) {
    BehaviourConfig c = quiet_config();
    c.unexpected_file_write.enabled = true;
    BehaviourEngine engine = make(c);
    engine.on_app_event(flow("10.0.0.5", 40000, "10.0.9.10", 445, 7), kT0,
            file_event(AppProto::Smb, "q3.xlsx", 1500000, true));
    EXPECT_TRUE(engine.take_findings().empty());
}

TEST_F(BehaviourEngineTest, FileWriteToUnlistedInternalHostIsQuietByDefault) {
    BehaviourConfig c = quiet_config();
    c.unexpected_file_write.enabled = true;
    BehaviourEngine engine = make(c);
    const FlowTuple f = flow("10.0.0.5", 40000, "10.0.200.7", 445, 7);
    engine.on_app_event(f, kT0, file_event(AppProto::Smb, "notes.txt", 7000, true));
    EXPECT_TRUE(engine.take_findings().empty());
    c.unexpected_file_write.unlisted_internal = true;
    engine.reconfigure(c, &assets_,
            {prefix("10.0.0.0", 8), prefix("192.168.0.0", 16), prefix("fd00::", 8)}, {});
    engine.on_app_event(f, kT0, file_event(AppProto::Smb, "notes.txt", 7000, true));
    const auto findings = engine.take_findings();
    ASSERT_EQ(findings.size(), 1U);
    EXPECT_EQ(findings[0].reason,
            "10.0.0.5 wrote 'notes.txt' (7 KB) over smb as user 'alice' to 10.0.200.7:445, "
            "which the asset inventory does not list as a file server");
}

TEST_F(BehaviourEngineTest, FileWriteToExternalHostIsQuietWhenExternalIsOff) {
    BehaviourConfig c = quiet_config();
    c.unexpected_file_write.enabled = true;
    c.unexpected_file_write.external = false;
    BehaviourEngine engine = make(c);
    engine.on_app_event(flow("10.0.0.5", 40000, "203.0.113.7", 80, 7), kT0,
            file_event(AppProto::Http, "dump.sql", 4096, true));
    EXPECT_TRUE(engine.take_findings().empty());
}

TEST_F(BehaviourEngineTest, MailAttachmentIsNotAFileWrite) {
    BehaviourConfig c = quiet_config();
    c.unexpected_file_write.enabled = true;
    BehaviourEngine engine = make(c);
    engine.on_app_event(flow("10.0.0.5", 40000, "203.0.113.7", 25, 7), kT0,
            file_event(AppProto::Smtp, "report.zip", 51675, true));
    EXPECT_TRUE(engine.take_findings().empty());
}

TEST_F(BehaviourEngineTest, FileDownloadIsQuiet) {
    BehaviourConfig c = quiet_config();
    c.unexpected_file_write.enabled = true;
    BehaviourEngine engine = make(c);
    engine.on_app_event(flow("10.0.0.5", 40000, "10.0.9.20", 21, 7), kT0,
            file_event(AppProto::Ftp, "notepad.exe", 69120, false));
    EXPECT_TRUE(engine.take_findings().empty());
}

// ---- external_login ----

AppEvent login_event(AppProto proto, const char* user, LoginOutcome outcome) {
    AppEvent e;
    e.kind = AppEventKind::Login;
    e.proto = proto;
    e.outcome = outcome;
    e.set(e.user, user);
    return e;
}

BehaviourConfig login_config() {
    BehaviourConfig c = quiet_config();
    c.external_login.enabled = true;
    return c;
}

TEST_F(BehaviourEngineTest, SingleExternalLoginIsQuiet) {
    BehaviourEngine engine = make(login_config());
    engine.on_app_event(flow("203.0.113.10", 50000, "10.0.0.21", 21, 1), kT0,
            login_event(AppProto::Ftp, "bob", LoginOutcome::Success));
    EXPECT_TRUE(engine.take_findings().empty());
}

TEST_F(BehaviourEngineTest, TwoFailuresAreQuiet) {
    BehaviourEngine engine = make(login_config());
    for (uint64_t i = 0; i < 2; ++i) {
        engine.on_app_event(flow("203.0.113.10", 50000 + i, "10.0.0.21", 21, i + 1), kT0 + i * kS,
                login_event(AppProto::Ftp, "bob", LoginOutcome::Failure));
    }
    EXPECT_TRUE(engine.take_findings().empty());
}

TEST_F(BehaviourEngineTest, RepeatedFailuresOfOneSourceAlertOnce) {
    BehaviourEngine engine = make(login_config());
    for (uint64_t i = 0; i < 4; ++i) {
        engine.on_app_event(flow("203.0.113.10", 50000 + i, "10.0.0.21", 21, i + 1), kT0 + i * kS,
                login_event(AppProto::Ftp, "bob", LoginOutcome::Failure));
    }
    const auto findings = engine.take_findings();
    ASSERT_EQ(findings.size(), 1U);
    EXPECT_EQ(findings[0].detector, "external_login");
    EXPECT_EQ(findings[0].severity, Severity::High);
    EXPECT_EQ(findings[0].flow, flow("203.0.113.10", 50002, "10.0.0.21", 21, 3));
    EXPECT_EQ(findings[0].count, 3U);
    EXPECT_EQ(findings[0].threshold, 3U);
    EXPECT_EQ(findings[0].window_s, 600U);
    EXPECT_EQ(findings[0].user, "bob");
    EXPECT_EQ(findings[0].reason,
            "203.0.113.10 failed 3 logins to internal services in 600 s (threshold 3); latest "
            "over ftp to 10.0.0.21:21 as user 'bob'");
}

TEST_F(BehaviourEngineTest, FailuresOutsideTheWindowDoNotAdd) {
    BehaviourEngine engine = make(login_config());
    for (uint64_t i = 0; i < 3; ++i) {
        engine.on_app_event(flow("203.0.113.10", 50000 + i, "10.0.0.21", 21, i + 1),
                kT0 + i * 400 * kS, login_event(AppProto::Ftp, "bob", LoginOutcome::Failure));
    }
    EXPECT_TRUE(engine.take_findings().empty());
}

TEST_F(BehaviourEngineTest, SuccessAfterFailuresAlerts) {
    BehaviourConfig c = login_config();
    c.external_login.source_failures = 0;
    BehaviourEngine engine = make(c);
    for (uint64_t i = 0; i < 2; ++i) {
        engine.on_app_event(flow("203.0.113.12", 50000 + i, "10.0.0.21", 21, i + 1), kT0 + i * kS,
                login_event(AppProto::Ftp, "admin", LoginOutcome::Failure));
    }
    engine.on_app_event(flow("203.0.113.12", 50002, "10.0.0.21", 21, 3), kT0 + 2 * kS,
            login_event(AppProto::Ftp, "admin", LoginOutcome::Success));
    const auto findings = engine.take_findings();
    ASSERT_EQ(findings.size(), 1U);
    EXPECT_EQ(findings[0].count, 2U);
    EXPECT_EQ(findings[0].user, "admin");
    EXPECT_EQ(findings[0].reason,
            "203.0.113.12 logged in over ftp to 10.0.0.21:21 as user 'admin' after 2 failed "
            "logins in 600 s (threshold 2)");
}

TEST_F(BehaviourEngineTest, ManyExternalSourcesOnOneServiceAlert) {
    BehaviourConfig c = login_config();
    c.external_login.user_sources = 0;
    BehaviourEngine engine = make(c);
    for (uint64_t i = 0; i < 5; ++i) {
        const std::string src = "203.0.113." + std::to_string(20 + i);
        engine.on_app_event(flow(src.c_str(), 50000, "10.0.0.22", 22, i + 1), kT0 + i * kS,
                login_event(AppProto::Ssh, "", LoginOutcome::Attempt));
    }
    const auto findings = engine.take_findings();
    ASSERT_EQ(findings.size(), 1U);
    EXPECT_EQ(findings[0].count, 5U);
    EXPECT_EQ(findings[0].app_proto, "ssh");
    EXPECT_EQ(findings[0].reason,
            "5 external sources tried ssh logins on 10.0.0.22 in 600 s (threshold 5); latest "
            "203.0.113.24");
}

TEST_F(BehaviourEngineTest, OneUserFromManySourcesAlerts) {
    BehaviourConfig c = login_config();
    c.external_login.service_sources = 0;
    BehaviourEngine engine = make(c);
    const std::array<const char*, 3> servers = {"10.0.0.21", "10.0.0.23", "10.0.0.24"};
    for (uint64_t i = 0; i < 3; ++i) {
        const std::string src = "203.0.113." + std::to_string(30 + i);
        engine.on_app_event(flow(src.c_str(), 50000, servers[i], 143, i + 1), kT0 + i * kS,
                login_event(AppProto::Imap, "ceo", LoginOutcome::Success));
    }
    const auto findings = engine.take_findings();
    ASSERT_EQ(findings.size(), 1U);
    EXPECT_EQ(findings[0].user, "ceo");
    EXPECT_EQ(findings[0].reason,
            "user 'ceo' tried logins from 3 external sources in 600 s (threshold 3); latest "
            "203.0.113.32 over imap to 10.0.0.24:143");
}

TEST_F(BehaviourEngineTest, ManyHiddenOutcomeLoginsOfOneSourceAlert) {
    BehaviourConfig c = login_config();
    c.external_login.service_sources = 0;
    BehaviourEngine engine = make(c);
    for (uint64_t i = 0; i < 10; ++i) {
        engine.on_app_event(flow("203.0.113.40", 50000 + i, "10.0.0.22", 22, i + 1),
                kT0 + i * 7 * kS, login_event(AppProto::Ssh, "", LoginOutcome::Attempt));
    }
    const auto findings = engine.take_findings();
    ASSERT_EQ(findings.size(), 1U);
    EXPECT_EQ(findings[0].count, 10U);
    EXPECT_EQ(findings[0].threshold, 10U);
    EXPECT_EQ(findings[0].reason,
            "203.0.113.40 started 10 ssh logins with a hidden outcome to internal services in "
            "600 s (threshold 10); latest to 10.0.0.22:22");
}

TEST_F(BehaviourEngineTest, NineHiddenOutcomeLoginsAreQuiet) {
    BehaviourEngine engine = make(login_config());
    for (uint64_t i = 0; i < 9; ++i) {
        engine.on_app_event(flow("203.0.113.40", 50000 + i, "10.0.0.22", 22, i + 1),
                kT0 + i * 7 * kS, login_event(AppProto::Ssh, "", LoginOutcome::Attempt));
    }
    EXPECT_TRUE(engine.take_findings().empty());
}

TEST_F(BehaviourEngineTest, InternalLoginsAreNotExternal) {
    BehaviourEngine engine = make(login_config());
    for (uint64_t i = 0; i < 10; ++i) {
        engine.on_app_event(flow("192.168.56.1", 50000 + i, "10.0.0.21", 21, i + 1), kT0 + i * kS,
                login_event(AppProto::Ftp, "bro", LoginOutcome::Failure));
    }
    EXPECT_TRUE(engine.take_findings().empty());
}

// ---- mail_attachment_out ----

AppEvent mail_event(const char* recipient, uint64_t attachment_bytes) {
    AppEvent e;
    e.kind = AppEventKind::MailMessage;
    e.proto = AppProto::Smtp;
    e.count = 1;
    e.attachments = 1;
    e.attachment_bytes = attachment_bytes;
    e.bytes = attachment_bytes * 4 / 3;
    e.set(e.user, "int@corp.example");
    e.set(e.name, recipient);
    e.set(e.host, "q3.zip");
    return e;
}

BehaviourConfig mail_config() {
    BehaviourConfig c = quiet_config();
    c.mail_attachment_out.enabled = true;
    c.mail_attachment_out.count = 3;
    c.mail_attachment_out.internal_domains = {"corp.example"};
    return c;
}

TEST_F(BehaviourEngineTest, MailAttachmentsToExternalServerAlertAtCount) {
    BehaviourEngine engine = make(mail_config());
    for (uint64_t i = 0; i < 3; ++i) {
        engine.on_app_event(flow("10.0.0.5", 40000 + i, "203.0.113.25", 25, i + 1), kT0 + i * kS,
                mail_event("bob@gmail.example", 51675));
    }
    const auto findings = engine.take_findings();
    ASSERT_EQ(findings.size(), 1U);
    EXPECT_EQ(findings[0].detector, "mail_attachment_out");
    EXPECT_EQ(findings[0].count, 3U);
    EXPECT_EQ(findings[0].bytes, 3 * 51675U);
    EXPECT_EQ(findings[0].threshold, 3U);
    EXPECT_EQ(findings[0].user, "int@corp.example");
    EXPECT_EQ(findings[0].file_name, "q3.zip");
    EXPECT_EQ(findings[0].domain, "gmail.example");
    EXPECT_EQ(findings[0].reason,
            "10.0.0.5 sent 3 messages with attachments (155 KB decoded) to outside recipients "
            "in 3600 s (thresholds 3 messages or 50 MB); latest from int@corp.example to "
            "bob@gmail.example via external 203.0.113.25:25, first attachment 'q3.zip'");
}

TEST_F(BehaviourEngineTest, MailToOutsideRecipientThroughInternalRelayCounts) {
    BehaviourConfig c = mail_config();
    c.mail_attachment_out.count = 1;
    BehaviourEngine engine = make(c);
    engine.on_app_event(flow("10.0.0.5", 40000, "10.0.0.25", 25, 1), kT0,
            mail_event("<Bob@Partner.Example>", 1000));
    const auto findings = engine.take_findings();
    ASSERT_EQ(findings.size(), 1U);
    EXPECT_EQ(findings[0].domain, "partner.example");
}

TEST_F(BehaviourEngineTest, MailToInternalDomainThroughInternalRelayIsQuiet) {
    BehaviourConfig c = mail_config();
    c.mail_attachment_out.count = 1;
    BehaviourEngine engine = make(c);
    engine.on_app_event(flow("10.0.0.5", 40000, "10.0.0.25", 25, 1), kT0,
            mail_event("bob@sales.corp.example", 1000));
    EXPECT_TRUE(engine.take_findings().empty());
}

TEST_F(BehaviourEngineTest, MailAttachmentsUnderCountAreQuiet) {
    BehaviourEngine engine = make(mail_config());
    for (uint64_t i = 0; i < 2; ++i) {
        engine.on_app_event(flow("10.0.0.5", 40000 + i, "203.0.113.25", 25, i + 1), kT0 + i * kS,
                mail_event("bob@gmail.example", 51675));
    }
    EXPECT_TRUE(engine.take_findings().empty());
}

// ---- engine ----

TEST_F(BehaviourEngineTest, HostTableEvictsLeastRecentlyUsedAndCounts) {
    BehaviourConfig c = quiet_config();
    c.external_upload.enabled = true;
    c.limits.max_hosts = 16;
    BehaviourEngine engine = make(c);
    for (uint64_t i = 0; i < 20; ++i) {
        const std::string src = "10.0.1." + std::to_string(i + 1);
        engine.on_flow_bytes(flow(src.c_str(), 40000, "203.0.113.7", 443, i + 1), AppProto::Tls, "",
                kT0 + i * kS, 1000, 100, true);
    }
    const BehaviourStats stats = engine.stats();
    EXPECT_EQ(stats.hosts, 16U);
    EXPECT_EQ(stats.host_evictions, 4U);
    EXPECT_EQ(stats.flows, 0U);
}

TEST_F(BehaviourEngineTest, LateReportsCountAtTheLatestTime) {
    BehaviourConfig c = quiet_config();
    c.external_upload.enabled = true;
    c.external_upload.flow_bytes = 0;
    BehaviourEngine engine = make(c);
    engine.on_flow_bytes(flow("10.0.0.5", 40000, "203.0.113.7", 443, 1), AppProto::Tls, "",
            kT0 + 10 * kS, 300 * kMB, 0, true);
    engine.on_flow_bytes(flow("10.0.0.5", 40001, "203.0.113.7", 443, 2), AppProto::Tls, "", kT0,
            200 * kMB, 0, true);
    const auto findings = engine.take_findings();
    ASSERT_EQ(findings.size(), 1U);
    EXPECT_EQ(findings[0].time_ns, kT0 + 10 * kS);
    EXPECT_EQ(engine.stats().late_events, 1U);
}

TEST_F(BehaviourEngineTest, ReconfigureKeepsOpenWindows) {
    BehaviourConfig c = quiet_config();
    c.external_upload.enabled = true;
    c.external_upload.flow_bytes = 0;
    BehaviourEngine engine = make(c);
    engine.on_flow_bytes(flow("10.0.0.5", 40000, "203.0.113.7", 443, 1), AppProto::Tls, "", kT0,
            300 * kMB, 0, true);
    c.external_upload.severity = Severity::Critical;
    engine.reconfigure(c, &assets_, {prefix("10.0.0.0", 8)}, {});
    engine.on_flow_bytes(flow("10.0.0.5", 40001, "203.0.113.7", 443, 2), AppProto::Tls, "",
            kT0 + kS, 200 * kMB, 0, true);
    const auto findings = engine.take_findings();
    ASSERT_EQ(findings.size(), 1U);
    EXPECT_EQ(findings[0].bytes, 500 * kMB);
    EXPECT_EQ(findings[0].severity, Severity::Critical);
}

TEST_F(BehaviourEngineTest, StatsCountFindingsByDetector) {
    BehaviourConfig c = quiet_config();
    c.archive_out.enabled = true;
    BehaviourEngine engine = make(c);
    engine.on_app_event(flow("10.0.0.5", 40000, "203.0.113.7", 80, 6), kT0, archive_event(true));
    engine.on_app_event(flow("10.0.0.5", 40001, "203.0.113.7", 80, 7), kT0, archive_event(true));
    const BehaviourStats stats = engine.stats();
    EXPECT_EQ(stats.findings[static_cast<size_t>(BehaviourDetector::ArchiveOut)], 2U);
    EXPECT_EQ(stats.findings[static_cast<size_t>(BehaviourDetector::ExternalUpload)], 0U);
}

TEST(BehaviourDetectorNameTest, NamesAreStable) {
    EXPECT_EQ(behaviour_detector_name(BehaviourDetector::ExternalUpload), "external_upload");
    EXPECT_EQ(behaviour_detector_name(BehaviourDetector::InternalTransfer), "internal_transfer");
    EXPECT_EQ(behaviour_detector_name(BehaviourDetector::BaselineDeviation), "baseline_deviation");
    EXPECT_EQ(
            behaviour_detector_name(BehaviourDetector::EncryptedAsymmetry), "encrypted_asymmetry");
    EXPECT_EQ(behaviour_detector_name(BehaviourDetector::ArchiveOut), "archive_out");
    EXPECT_EQ(behaviour_detector_name(BehaviourDetector::UnexpectedFileWrite),
            "unexpected_file_write");
    EXPECT_EQ(behaviour_detector_name(BehaviourDetector::ExternalLogin), "external_login");
    EXPECT_EQ(behaviour_detector_name(BehaviourDetector::MailAttachmentOut), "mail_attachment_out");
    EXPECT_EQ(behaviour_detector_name(BehaviourDetector::DnsTunnel), "dns_tunnel");
}

}  // namespace
}  // namespace exfiltap::detectors
