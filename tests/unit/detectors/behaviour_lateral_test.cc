// The lateral movement and staging detectors of the behaviour engine (lateral_fanout,
// share_enumeration, first_access, staging), fed by hand: exact finding fields, no finding
// below the thresholds or during warm-up, and the memory bounds.
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "detectors/behaviour.h"
#include "tests/unit/detectors/behaviour_test_support.h"

namespace exfiltap::detectors {
namespace {

using ::testing::HasSubstr;

constexpr uint32_t kFileServerRole = 1U << static_cast<unsigned>(AssetRole::FileServer);
constexpr uint32_t kRepositoryRole = 1U << static_cast<unsigned>(AssetRole::CodeRepository);

class BehaviourLateralTest : public ::testing::Test {
protected:
    void SetUp() override {
        add("hr-db", Classification::Restricted, 1U << static_cast<unsigned>(AssetRole::Database),
                prefix("10.0.5.0", 24));
        add("files", Classification::Confidential, kFileServerRole, prefix("10.0.9.10", 32));
        add("git", Classification::Internal, kRepositoryRole, prefix("10.0.9.20", 32));
        add("wiki", Classification::Internal, 0, prefix("10.0.9.30", 32));
        add("backup-fs", Classification::Confidential, kFileServerRole, prefix("10.0.9.40", 32));
    }

    void add(const char* name, Classification cls, uint32_t roles, AddressPrefix p) {
        Asset a;
        a.name = name;
        a.classification = cls;
        a.roles = roles;
        a.prefixes = {p};
        assets_.add(a);
    }

    BehaviourEngine make(const BehaviourConfig& config) {
        return BehaviourEngine(config, &assets_, {prefix("10.0.0.0", 8)},
                {SanctionedRange{"backup", prefix("10.0.200.0", 24)}});
    }

    AssetInventory assets_;
};

/// A small TCP exchange from `client` to `server`:`port` at `time_ns`.
void connect(BehaviourEngine& engine, const std::string& client, const std::string& server,
        uint16_t port, uint64_t time_ns, uint64_t id) {
    engine.on_flow_bytes(flow(client.c_str(), 40000, server.c_str(), port, id), AppProto::Unknown,
            "", time_ns, 200, 300, true);
}

std::string host(int last) {
    return "10.0.2." + std::to_string(last);
}

// ---- lateral_fanout ----

BehaviourConfig fanout_config() {
    BehaviourConfig c = quiet_config();
    c.lateral_fanout.enabled = true;
    c.lateral_fanout.scan_hosts = 30;
    c.lateral_fanout.scan_services = 0;
    return c;
}

TEST_F(BehaviourLateralTest, FanoutOverScanCeilingAlertsOnceWithFigures) {
    BehaviourEngine engine = make(fanout_config());
    for (int i = 1; i <= 40; ++i) {
        connect(engine, "10.0.0.5", host(i), 445, kT0 + static_cast<uint64_t>(i) * kS,
                static_cast<uint64_t>(i));
    }
    const auto findings = engine.take_findings();
    ASSERT_EQ(findings.size(), 1U);
    const BehaviourFinding& f = findings[0];
    EXPECT_EQ(f.detector, "lateral_fanout");
    EXPECT_EQ(f.id, BehaviourDetector::LateralFanout);
    EXPECT_EQ(f.severity, Severity::Medium);
    EXPECT_EQ(f.flow, flow("10.0.0.5", 40000, "10.0.2.30", 445, 30));
    EXPECT_EQ(f.time_ns, kT0 + 30 * kS);
    EXPECT_EQ(f.count, 30U);
    EXPECT_EQ(f.threshold, 30U);
    EXPECT_EQ(f.window_s, 600U);
    EXPECT_THAT(f.reason,
            HasSubstr("10.0.0.5 connected to 30 distinct internal hosts (30 "
                      "distinct host/port services) in the current 600 s window"));
    EXPECT_THAT(f.reason, HasSubstr("scan ceiling 30 hosts or 0 services"));
    EXPECT_THAT(f.reason, HasSubstr("no baseline yet (0 of 24 warm-up windows)"));
    EXPECT_EQ(engine.stats().findings[static_cast<size_t>(BehaviourDetector::LateralFanout)], 1U);
}

TEST_F(BehaviourLateralTest, FanoutUnderScanCeilingIsQuiet) {
    BehaviourEngine engine = make(fanout_config());
    for (int i = 1; i <= 29; ++i) {
        connect(engine, "10.0.0.5", host(i), 445, kT0 + static_cast<uint64_t>(i) * kS,
                static_cast<uint64_t>(i));
        // The same hosts again on the same port are not new.
        connect(engine, "10.0.0.5", host(i), 445, kT0 + 100 * kS, 100 + static_cast<uint64_t>(i));
    }
    EXPECT_TRUE(engine.take_findings().empty());
}

TEST_F(BehaviourLateralTest, FanoutCountsServicesOfOneHost) {
    BehaviourConfig c = fanout_config();
    c.lateral_fanout.scan_services = 40;
    BehaviourEngine engine = make(c);
    for (int port = 1; port <= 45; ++port) {
        connect(engine, "10.0.0.5", "10.0.2.1", static_cast<uint16_t>(port), kT0,
                static_cast<uint64_t>(port));
    }
    const auto findings = engine.take_findings();
    ASSERT_EQ(findings.size(), 1U);
    EXPECT_EQ(findings[0].count, 1U);  // distinct hosts
    EXPECT_EQ(findings[0].threshold, 40U);
    EXPECT_THAT(findings[0].reason, HasSubstr("1 distinct internal hosts (40 distinct host/port"));
}

TEST_F(BehaviourLateralTest, FanoutLeavesOutExternalAndSanctionedDestinations) {
    BehaviourEngine engine = make(fanout_config());
    for (int i = 1; i <= 40; ++i) {
        const std::string outside = "203.0.113." + std::to_string(i);
        const std::string backup = "10.0.200." + std::to_string(i);
        connect(engine, "10.0.0.5", outside, 443, kT0, static_cast<uint64_t>(i));
        connect(engine, "10.0.0.5", backup, 443, kT0, 100 + static_cast<uint64_t>(i));
    }
    EXPECT_TRUE(engine.take_findings().empty());
}

BehaviourConfig fanout_baseline_config() {
    BehaviourConfig c = fanout_config();
    c.lateral_fanout.scan_hosts = 0;
    c.lateral_fanout.alpha = 0.5;
    c.lateral_fanout.k = 3.0;
    c.lateral_fanout.warmup_windows = 4;
    c.lateral_fanout.floor_hosts = 5;
    c.lateral_fanout.floor_services = 1000;
    return c;
}

/// `windows` windows of 600 s, each with connections to hosts 1..3.
void train_fanout(BehaviourEngine& engine, uint64_t windows) {
    for (uint64_t w = 0; w < windows; ++w) {
        for (int i = 1; i <= 3; ++i) {
            connect(engine, "10.0.0.5", host(i), 445, kT0 + w * 600 * kS + 10 * kS,
                    w * 10 + static_cast<uint64_t>(i));
        }
    }
}

/// 10.0.0.5 reaches hosts 1..8 on port 445, one a second after `t`.
void fan_out_to_eight(BehaviourEngine& engine, uint64_t t) {
    for (int i = 1; i <= 8; ++i) {
        connect(engine, "10.0.0.5", host(i), 445, t + static_cast<uint64_t>(i) * kS,
                1000 + static_cast<uint64_t>(i));
    }
}

TEST_F(BehaviourLateralTest, FanoutOverBaselineAlertsAfterWarmUp) {
    BehaviourEngine engine = make(fanout_baseline_config());
    train_fanout(engine, 4);
    const uint64_t t = kT0 + 4 * 600 * kS + 10 * kS;
    fan_out_to_eight(engine, t);
    const auto findings = engine.take_findings();
    ASSERT_EQ(findings.size(), 1U);
    const BehaviourFinding& f = findings[0];
    // Mean 3, stddev 0: the floor (5) decides.
    EXPECT_EQ(f.count, 5U);
    EXPECT_EQ(f.threshold, 5U);
    EXPECT_EQ(f.time_ns, t + 5 * kS);
    EXPECT_THAT(f.reason, HasSubstr("hosts: baseline over 4 windows 3 (stddev 0), alert above 5"));
}

// The fan-out baselines are saved with the others: after a restart the host is still warm
// (the window running at the save is not folded in: 5 windows trained, 4 folded).
TEST_F(BehaviourLateralTest, FanoutBaselineSurvivesARestart) {
    BehaviourEngine before = make(fanout_baseline_config());
    train_fanout(before, 5);
    const std::string saved = before.save_baselines();
    EXPECT_NE(saved.find("\nfanout 4 10.0.0.5 4 3 0 4 3 0\n"), std::string::npos) << saved;

    BehaviourEngine after = make(fanout_baseline_config());
    const Status loaded = after.load_baselines(saved);
    ASSERT_TRUE(loaded.ok()) << loaded.error();
    EXPECT_EQ(after.save_baselines(), saved);
    const uint64_t t = kT0 + 6 * 600 * kS + 10 * kS;
    fan_out_to_eight(after, t);
    const auto findings = after.take_findings();
    ASSERT_EQ(findings.size(), 1U);
    EXPECT_EQ(findings[0].count, 5U);
    EXPECT_THAT(findings[0].reason,
            HasSubstr("hosts: baseline over 4 windows 3 (stddev 0), alert above 5"));
}

TEST_F(BehaviourLateralTest, FanoutWaitsForWarmUp) {
    BehaviourEngine engine = make(fanout_baseline_config());
    train_fanout(engine, 2);
    for (int i = 1; i <= 20; ++i) {
        connect(engine, "10.0.0.5", host(i), 445, kT0 + 2 * 600 * kS + 10 * kS,
                1000 + static_cast<uint64_t>(i));
    }
    EXPECT_TRUE(engine.take_findings().empty());
}

TEST_F(BehaviourLateralTest, FanoutWithinBaselineIsQuiet) {
    BehaviourEngine engine = make(fanout_baseline_config());
    train_fanout(engine, 6);
    EXPECT_TRUE(engine.take_findings().empty());
}

TEST_F(BehaviourLateralTest, FanoutDistinctSetsStopAtTheirBound) {
    BehaviourConfig c = fanout_config();
    c.limits.max_distinct_per_host = 16;
    c.lateral_fanout.scan_hosts = 20;
    BehaviourEngine engine = make(c);
    for (int i = 1; i <= 60; ++i) {
        connect(engine, "10.0.0.5", host(i), 445, kT0, static_cast<uint64_t>(i));
    }
    // Counts saturate at 16, so a ceiling of 20 is never reached: the bound is real.
    EXPECT_TRUE(engine.take_findings().empty());
}

// ---- share_enumeration ----

AppEvent tree_event(const std::string& path) {
    AppEvent e;
    e.kind = AppEventKind::TreeConnect;
    e.proto = AppProto::Smb;
    e.set(e.name, path);
    return e;
}

BehaviourConfig share_config() {
    BehaviourConfig c = quiet_config();
    c.share_enumeration.enabled = true;
    return c;
}

std::string share(int i) {
    return "\\\\FS1\\Share" + std::to_string(i);
}

TEST_F(BehaviourLateralTest, ShareEnumerationAlertsAtThresholdWithShareNames) {
    BehaviourEngine engine = make(share_config());
    const FlowTuple smb = flow("10.0.0.5", 49000, "10.0.9.10", 445, 7);
    engine.on_app_event(smb, kT0, tree_event("\\\\fs1\\IPC$"));
    engine.on_app_event(smb, kT0, tree_event(share(1)));
    engine.on_app_event(smb, kT0 + kS, tree_event(share(1)));  // again: not distinct
    for (int i = 2; i <= 12; ++i) {
        engine.on_app_event(smb, kT0 + static_cast<uint64_t>(i) * kS, tree_event(share(i)));
    }
    const auto findings = engine.take_findings();
    ASSERT_EQ(findings.size(), 1U);
    const BehaviourFinding& f = findings[0];
    EXPECT_EQ(f.detector, "share_enumeration");
    EXPECT_EQ(f.flow, smb);
    EXPECT_EQ(f.time_ns, kT0 + 10 * kS);
    EXPECT_EQ(f.count, 10U);
    EXPECT_EQ(f.threshold, 10U);
    EXPECT_EQ(f.window_s, 600U);
    EXPECT_EQ(f.app_proto, "smb");
    EXPECT_EQ(f.reason,
            "10.0.0.5 connected to 10 distinct SMB shares (11 tree connects) in 600 s "
            "(threshold 10): \\\\fs1\\share1, \\\\fs1\\share2, \\\\fs1\\share3, "
            "\\\\fs1\\share4, \\\\fs1\\share5 and 5 more; latest on 10.0.9.10:445");
}

TEST_F(BehaviourLateralTest, NineSharesAreQuiet) {
    BehaviourEngine engine = make(share_config());
    const FlowTuple smb = flow("10.0.0.5", 49000, "10.0.9.10", 445, 7);
    for (int i = 1; i <= 9; ++i) {
        engine.on_app_event(smb, kT0, tree_event(share(i)));
        engine.on_app_event(smb, kT0, tree_event("\\\\fs1\\ipc$"));
    }
    EXPECT_TRUE(engine.take_findings().empty());
}

TEST_F(BehaviourLateralTest, SharesOutsideTheWindowDoNotCount) {
    BehaviourEngine engine = make(share_config());
    const FlowTuple smb = flow("10.0.0.5", 49000, "10.0.9.10", 445, 7);
    for (int i = 1; i <= 12; ++i) {
        engine.on_app_event(smb, kT0 + static_cast<uint64_t>(i) * 120 * kS, tree_event(share(i)));
    }
    EXPECT_TRUE(engine.take_findings().empty());
}

TEST_F(BehaviourLateralTest, SharesPerHostStopAtTheirBound) {
    BehaviourConfig c = share_config();
    c.limits.max_shares_per_host = 8;
    BehaviourEngine engine = make(c);
    const FlowTuple smb = flow("10.0.0.5", 49000, "10.0.9.10", 445, 7);
    for (int i = 1; i <= 30; ++i) {
        engine.on_app_event(smb, kT0 + static_cast<uint64_t>(i), tree_event(share(i)));
    }
    EXPECT_TRUE(engine.take_findings().empty());
}

TEST_F(BehaviourLateralTest, ExternalClientsDoNotEnumerate) {
    BehaviourEngine engine = make(share_config());
    const FlowTuple smb = flow("203.0.113.5", 49000, "10.0.9.10", 445, 7);
    for (int i = 1; i <= 12; ++i) {
        engine.on_app_event(smb, kT0, tree_event(share(i)));
    }
    EXPECT_TRUE(engine.take_findings().empty());
}

// ---- first_access ----

BehaviourConfig first_access_config() {
    BehaviourConfig c = quiet_config();
    c.first_access.enabled = true;
    c.first_access.warmup_s = 3600;
    return c;
}

TEST_F(BehaviourLateralTest, FirstAccessAfterWarmUpAlertsOnceNamingTheAsset) {
    BehaviourEngine engine = make(first_access_config());
    connect(engine, "10.0.0.9", "10.0.9.30", 80, kT0, 1);  // time starts
    connect(engine, "10.0.0.5", "10.0.5.3", 5432, kT0 + 7200 * kS, 2);
    connect(engine, "10.0.0.5", "10.0.5.4", 5432, kT0 + 7300 * kS, 3);  // same asset
    const auto findings = engine.take_findings();
    ASSERT_EQ(findings.size(), 1U);
    const BehaviourFinding& f = findings[0];
    EXPECT_EQ(f.detector, "first_access");
    EXPECT_EQ(f.flow, flow("10.0.0.5", 40000, "10.0.5.3", 5432, 2));
    EXPECT_EQ(f.time_ns, kT0 + 7200 * kS);
    ASSERT_NE(f.dst_asset, nullptr);
    EXPECT_EQ(f.dst_asset->name, "hr-db");
    EXPECT_EQ(f.dst_asset->classification, Classification::Restricted);
    EXPECT_EQ(f.count, 1U);
    EXPECT_EQ(f.reason,
            "10.0.0.5 accessed hr-db (restricted) for the first time, at 10.0.5.3:5432 (not "
            "seen from this host in 7200 s of monitoring, warm-up 3600 s; 1 "
            "host/asset pairs remembered)");
}

TEST_F(BehaviourLateralTest, AccessLearnedDuringWarmUpIsQuietLater) {
    BehaviourEngine engine = make(first_access_config());
    connect(engine, "10.0.0.5", "10.0.5.3", 5432, kT0, 1);
    connect(engine, "10.0.0.5", "10.0.9.10", 445, kT0 + 3599 * kS, 2);
    connect(engine, "10.0.0.5", "10.0.5.3", 5432, kT0 + 7200 * kS, 3);
    connect(engine, "10.0.0.5", "10.0.9.10", 445, kT0 + 7200 * kS, 4);
    EXPECT_TRUE(engine.take_findings().empty());
}

// What first_access learned, and when its warm-up began, survive a restart: a known pair
// stays quiet, a new one alerts at once (without the saved state the warm-up would start
// again and both would be learned).
TEST_F(BehaviourLateralTest, FirstAccessMemoryAndWarmUpSurviveARestart) {
    BehaviourEngine before = make(first_access_config());
    connect(before, "10.0.0.5", "10.0.5.3", 5432, kT0, 1);
    connect(before, "10.0.0.7", "10.0.9.10", 445, kT0 + 60 * kS, 2);
    const std::string saved = before.save_baselines();
    EXPECT_NE(saved.find("\nstart_ns " + std::to_string(kT0) + "\n"), std::string::npos);
    EXPECT_NE(saved.find("\naccess 4 10.0.0.7 " + std::to_string(kT0 + 60 * kS) + " files\n"),
            std::string::npos)
            << saved;

    BehaviourEngine after = make(first_access_config());
    const Status loaded = after.load_baselines(saved);
    ASSERT_TRUE(loaded.ok()) << loaded.error();
    EXPECT_EQ(after.stats().access_pairs, 2U);
    EXPECT_EQ(after.save_baselines(), saved);
    connect(after, "10.0.0.5", "10.0.5.3", 5432, kT0 + 7200 * kS, 3);
    connect(after, "10.0.0.7", "10.0.9.10", 445, kT0 + 7200 * kS, 4);
    connect(after, "10.0.0.6", "10.0.5.3", 5432, kT0 + 7200 * kS, 5);
    const auto findings = after.take_findings();
    ASSERT_EQ(findings.size(), 1U);
    EXPECT_EQ(findings[0].flow.client, ip("10.0.0.6"));
    EXPECT_THAT(findings[0].reason, HasSubstr("in 7200 s of monitoring"));
}

// Asset names are saved as one word: a space or a percent sign comes back as it was.
TEST_F(BehaviourLateralTest, AssetNamesWithSpacesSurviveARestart) {
    add("HR 100% db", Classification::Restricted, 0, prefix("10.0.6.1", 32));
    BehaviourEngine before = make(first_access_config());
    connect(before, "10.0.0.5", "10.0.6.1", 5432, kT0, 1);
    const std::string saved = before.save_baselines();
    EXPECT_NE(saved.find(" HR%20100%25%20db\n"), std::string::npos) << saved;
    BehaviourEngine after = make(first_access_config());
    ASSERT_TRUE(after.load_baselines(saved).ok());
    connect(after, "10.0.0.5", "10.0.6.1", 5432, kT0 + 7200 * kS, 2);
    EXPECT_TRUE(after.take_findings().empty());
    EXPECT_EQ(after.save_baselines(), saved);
}

TEST_F(BehaviourLateralTest, FirstAccessIgnoresUnwatchedClassifications) {
    BehaviourEngine engine = make(first_access_config());
    connect(engine, "10.0.0.5", "10.0.9.30", 80, kT0, 1);
    connect(engine, "10.0.0.5", "10.0.9.20", 22, kT0 + 7200 * kS, 2);  // git: internal
    connect(engine, "10.0.0.6", "10.0.2.2", 22, kT0 + 7200 * kS, 3);   // no asset
    EXPECT_TRUE(engine.take_findings().empty());
}

TEST_F(BehaviourLateralTest, FirstAccessPairsAreBoundedAndAnEvictedPairAlertsAgain) {
    BehaviourConfig c = first_access_config();
    c.limits.max_first_access_pairs = 16;
    BehaviourEngine engine = make(c);
    for (int i = 1; i <= 20; ++i) {
        const std::string client = "10.0.1." + std::to_string(i);
        connect(engine, client, "10.0.9.10", 445, kT0 + static_cast<uint64_t>(i) * kS,
                static_cast<uint64_t>(i));
    }
    EXPECT_EQ(engine.stats().access_pairs, 16U);
    EXPECT_EQ(engine.stats().access_pair_evictions, 4U);
    // Hosts 1..4 were forgotten: they come back as first accesses; 17..20 are remembered.
    for (const int i : {17, 18, 19, 20, 1, 2, 3, 4}) {
        const std::string client = "10.0.1." + std::to_string(i);
        connect(engine, client, "10.0.9.10", 445, kT0 + 7200 * kS, 100 + static_cast<uint64_t>(i));
    }
    const auto findings = engine.take_findings();
    ASSERT_EQ(findings.size(), 4U);
    EXPECT_EQ(findings[0].flow.client, ip("10.0.1.1"));
    EXPECT_EQ(findings[3].flow.client, ip("10.0.1.4"));
    EXPECT_EQ(engine.stats().access_pairs, 16U);
}

// ---- staging ----

BehaviourConfig staging_config() {
    BehaviourConfig c = quiet_config();
    c.staging.enabled = true;
    c.staging.host_bytes = {0, 10 * kMB, 2 * kMB, 1 * kMB};
    return c;
}

/// Server-to-client bytes of one flow from `server`.
void pull(BehaviourEngine& engine, const char* client, const char* server, uint16_t port,
        uint64_t time_ns, uint64_t bytes, uint64_t id) {
    engine.on_flow_bytes(
            flow(client, 49000, server, port, id), AppProto::Smb, "", time_ns, 4000, bytes, true);
}

TEST_F(BehaviourLateralTest, StagingOverThresholdAlertsWithSources) {
    BehaviourEngine engine = make(staging_config());
    pull(engine, "10.0.0.5", "10.0.9.20", 22, kT0, 1 * kMB, 1);  // git, internal: 10 MB
    pull(engine, "10.0.0.5", "10.0.9.10", 445, kT0 + 60 * kS, 1500 * kKB, 2);
    // files (confidential): 1.5 MB of 2 MB; all sources 2.5 MB of 10 MB.
    EXPECT_TRUE(engine.take_findings().empty());
    pull(engine, "10.0.0.5", "10.0.9.10", 445, kT0 + 120 * kS, 500 * kKB, 3);
    const auto findings = engine.take_findings();
    ASSERT_EQ(findings.size(), 1U);
    const BehaviourFinding& f = findings[0];
    EXPECT_EQ(f.detector, "staging");
    EXPECT_EQ(f.severity, Severity::High);
    EXPECT_EQ(f.flow, flow("10.0.0.5", 49000, "10.0.9.10", 445, 3));
    EXPECT_EQ(f.bytes, 2 * kMB);
    EXPECT_EQ(f.threshold, 2 * kMB);
    EXPECT_EQ(f.count, 2U);
    EXPECT_EQ(f.window_s, 3600U);
    EXPECT_EQ(f.app_proto, "smb");
    EXPECT_THAT(f.reason,
            HasSubstr("10.0.0.5 received 3 MB in 3600 s from file servers, code repositories "
                      "and databases: files (confidential), git (internal); 2 MB of it from "
                      "confidential or more sensitive sources, threshold 2 MB"));
    EXPECT_THAT(f.reason, HasSubstr("latest from files (file-server) at 10.0.9.10:445"));
}

TEST_F(BehaviourLateralTest, AFewBytesFromARestrictedSourceDoNotLowerTheBar) {
    BehaviourEngine engine = make(staging_config());
    pull(engine, "10.0.0.5", "10.0.5.3", 5432, kT0, 9, 1);  // hr-db, restricted: 1 MB
    pull(engine, "10.0.0.5", "10.0.9.10", 445, kT0 + kS, 1500 * kKB, 2);
    EXPECT_TRUE(engine.take_findings().empty());
    pull(engine, "10.0.0.5", "10.0.5.3", 5432, kT0 + 2 * kS, 1 * kMB, 3);
    const auto findings = engine.take_findings();
    ASSERT_EQ(findings.size(), 1U);
    EXPECT_EQ(findings[0].bytes, 1 * kMB + 9);
    EXPECT_EQ(findings[0].threshold, 1 * kMB);
    EXPECT_THAT(findings[0].reason, HasSubstr("from restricted or more sensitive sources"));
}

TEST_F(BehaviourLateralTest, StagingUnderThresholdIsQuiet) {
    BehaviourEngine engine = make(staging_config());
    pull(engine, "10.0.0.5", "10.0.9.10", 445, kT0, 1999 * kKB, 1);
    EXPECT_TRUE(engine.take_findings().empty());
}

TEST_F(BehaviourLateralTest, StagingCountsWhatTheHostReceivesNotWhatItSends) {
    BehaviourEngine engine = make(staging_config());
    // Uploads to the file server and bytes from a host without a source role.
    engine.on_flow_bytes(flow("10.0.0.5", 49000, "10.0.9.10", 445, 1), AppProto::Smb, "", kT0,
            50 * kMB, 1000, true);
    pull(engine, "10.0.0.5", "10.0.9.30", 80, kT0, 50 * kMB, 2);
    EXPECT_TRUE(engine.take_findings().empty());
}

TEST_F(BehaviourLateralTest, StagingCountsASourceThatOpenedTheFlow) {
    BehaviourEngine engine = make(staging_config());
    // The file server connects to the host and sends (to_server bytes).
    engine.on_flow_bytes(flow("10.0.9.10", 50000, "10.0.0.5", 445, 1), AppProto::Smb, "", kT0,
            3 * kMB, 1000, true);
    const auto findings = engine.take_findings();
    ASSERT_EQ(findings.size(), 1U);
    EXPECT_EQ(findings[0].flow, flow("10.0.0.5", 445, "10.0.9.10", 50000, 1));
    EXPECT_EQ(findings[0].bytes, 3 * kMB);
}

TEST_F(BehaviourLateralTest, StagingBetweenSourcesIsReplicationNotStaging) {
    BehaviourEngine engine = make(staging_config());
    pull(engine, "10.0.9.40", "10.0.9.10", 445, kT0, 50 * kMB, 1);
    EXPECT_TRUE(engine.take_findings().empty());
}

TEST_F(BehaviourLateralTest, StagingOverBaselineAlertsAfterWarmUp) {
    BehaviourConfig c = staging_config();
    c.staging.host_bytes = {0, 0, 0, 0};
    c.staging.alpha = 0.5;
    c.staging.k = 3.0;
    c.staging.warmup_windows = 4;
    c.staging.floor_bytes = 20 * kMB;
    BehaviourEngine engine = make(c);
    for (uint64_t w = 0; w < 4; ++w) {
        pull(engine, "10.0.0.5", "10.0.9.10", 445, kT0 + w * 3600 * kS + 60 * kS, 10 * kMB, w + 1);
    }
    EXPECT_TRUE(engine.take_findings().empty());
    const uint64_t t = kT0 + 4 * 3600 * kS + 60 * kS;
    pull(engine, "10.0.0.5", "10.0.9.10", 445, t, 15 * kMB, 10);  // above the mean, under floor
    EXPECT_TRUE(engine.take_findings().empty());
    pull(engine, "10.0.0.5", "10.0.9.10", 445, t + kS, 10 * kMB, 11);
    const auto findings = engine.take_findings();
    ASSERT_EQ(findings.size(), 1U);
    EXPECT_EQ(findings[0].bytes, 25 * kMB);
    EXPECT_EQ(findings[0].threshold, 20 * kMB);
    EXPECT_THAT(findings[0].reason,
            HasSubstr("under the absolute thresholds; this window 25 MB, baseline over 4 windows "
                      "10 MB "
                      "(stddev 0 bytes), alert above 20 MB"));
}

TEST_F(BehaviourLateralTest, StagingWaitsForWarmUpWithoutAbsoluteThreshold) {
    BehaviourConfig c = staging_config();
    c.staging.host_bytes = {0, 0, 0, 0};
    c.staging.floor_bytes = 1 * kMB;
    BehaviourEngine engine = make(c);
    pull(engine, "10.0.0.5", "10.0.9.10", 445, kT0, 500 * kMB, 1);
    EXPECT_TRUE(engine.take_findings().empty());
}

// ---- engine ----

TEST_F(BehaviourLateralTest, ReconfiguredWindowLengthResetsLateralBaselines) {
    BehaviourConfig c = fanout_baseline_config();
    BehaviourEngine engine = make(c);
    train_fanout(engine, 4);
    c.lateral_fanout.window_s = 1200;
    engine.reconfigure(c, &assets_, {prefix("10.0.0.0", 8)}, {});
    EXPECT_EQ(engine.stats().baseline_resets, 1U);
    for (int i = 1; i <= 20; ++i) {
        connect(engine, "10.0.0.5", host(i), 445, kT0 + 4 * 600 * kS + 10 * kS,
                1000 + static_cast<uint64_t>(i));
    }
    EXPECT_TRUE(engine.take_findings().empty());  // warm-up starts over
}

TEST(BehaviourLateralNameTest, NamesAreStable) {
    EXPECT_EQ(behaviour_detector_name(BehaviourDetector::LateralFanout), "lateral_fanout");
    EXPECT_EQ(behaviour_detector_name(BehaviourDetector::ShareEnumeration), "share_enumeration");
    EXPECT_EQ(behaviour_detector_name(BehaviourDetector::FirstAccess), "first_access");
    EXPECT_EQ(behaviour_detector_name(BehaviourDetector::Staging), "staging");
}

}  // namespace
}  // namespace exfiltap::detectors
