#include "control/incident.h"

#include <arpa/inet.h>

#include <string>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "control/config.h"

#include <nlohmann/json.hpp>

namespace exfiltap::control {
namespace {

using detectors::Severity;

std::array<uint8_t, 16> ip(const char* text) {
    std::array<uint8_t, 16> out{};
    EXPECT_EQ(inet_pton(AF_INET, text, out.data()), 1) << text;
    return out;
}

bool internal_10(uint8_t version, const std::array<uint8_t, 16>& addr) {
    return version == 4 && addr[0] == 10;
}

AlertRecord record(const std::string& detector, const char* src, const char* dst, double t,
        Severity severity = Severity::High, const std::string& cls = "") {
    AlertRecord r;
    r.timestamp_s = t;
    r.flow_id = static_cast<uint64_t>(t);
    r.src = ip(src);
    r.dst = ip(dst);
    r.src_port = 40000;
    r.dst_port = 443;
    r.detector = detector;
    r.cls = cls.empty() ? detector : cls;
    r.severity = severity;
    r.signature = "sig " + detector;
    return r;
}

// The host 10.0.0.5 explores, stages, packs and sends out.
AlertRecord login(double t) {
    return record("external_login", "198.51.100.7", "10.0.0.5", t);
}
AlertRecord lateral(double t) {
    return record("lateral_fanout", "10.0.0.5", "10.0.0.9", t);
}
AlertRecord staging(double t) {
    return record("internal_transfer", "10.0.0.5", "10.0.0.20", t);
}
AlertRecord packing(double t) {
    return record("archive_out", "10.0.0.5", "203.0.113.9", t);
}
AlertRecord upload(double t, Severity severity = Severity::High) {
    return record("external_upload", "10.0.0.5", "203.0.113.9", t, severity);
}

struct Emitted {
    IncidentEvent event;
    Incident incident;
};

class IncidentTest : public ::testing::Test {
protected:
    explicit IncidentTest(IncidentConfig config = {})
        : correlator_(std::move(config), internal_10) {
        correlator_.set_emit([this](Incident& incident, IncidentEvent event) {
            emitted_.push_back({event, incident});
        });
    }

    void add(const std::vector<AlertRecord>& records) {
        for (const AlertRecord& r : records) {
            correlator_.add(r);
        }
    }

    /// The score a lone host reaches with these records (two stages at least), in a fresh
    /// correlator that opens at once and so reports every new stage's score.
    static uint32_t score_of(const std::vector<AlertRecord>& records) {
        IncidentConfig config;
        config.open_score = 1;
        IncidentCorrelator c(config, internal_10);
        uint32_t score = 0;
        c.set_emit([&](Incident& incident, IncidentEvent) { score = incident.score; });
        for (const AlertRecord& r : records) {
            c.add(r);
        }
        return score;
    }

    IncidentCorrelator correlator_;
    std::vector<Emitted> emitted_;
};

TEST_F(IncidentTest, StagesOfDetectors) {
    EXPECT_EQ(incident_stage_of(login(0), true), IncidentStage::Access);
    EXPECT_EQ(incident_stage_of(record("share_enumeration", "10.0.0.5", "10.0.0.9", 0), true),
            IncidentStage::Lateral);
    EXPECT_EQ(incident_stage_of(record("first_access", "10.0.0.5", "10.0.0.9", 0), true),
            IncidentStage::Lateral);
    EXPECT_EQ(incident_stage_of(record("staging", "10.0.0.5", "10.0.0.9", 0), true),
            IncidentStage::Staging);
    EXPECT_EQ(incident_stage_of(record("unexpected_file_write", "10.0.0.5", "10.0.0.9", 0), true),
            IncidentStage::Staging);
    EXPECT_EQ(incident_stage_of(packing(0), false), IncidentStage::Packing);
    EXPECT_EQ(incident_stage_of(record("content", "10.0.0.5", "203.0.113.9", 0, Severity::Medium,
                                        "encrypted_archive"),
                      false),
            IncidentStage::Packing);
    EXPECT_EQ(incident_stage_of(record("content", "10.0.0.5", "203.0.113.9", 0, Severity::High,
                                        "payment_card"),
                      false),
            IncidentStage::Exfiltration);
    EXPECT_EQ(incident_stage_of(record("dns_tunnel", "10.0.0.5", "203.0.113.9", 0), false),
            IncidentStage::Exfiltration);
    EXPECT_FALSE(incident_stage_of(record("tcp_overlap", "10.0.0.5", "203.0.113.9", 0), false));
}

TEST_F(IncidentTest, SingleStageNeverOpens) {
    std::vector<AlertRecord> uploads;
    for (int i = 0; i < 50; ++i) {
        AlertRecord r = upload(1000 + i, Severity::Critical);
        r.src_asset = "vault";
        r.src_asset_classification = "restricted";
        uploads.push_back(r);
    }
    add(uploads);
    EXPECT_TRUE(emitted_.empty());
    EXPECT_EQ(correlator_.opened_total(), 0U);
    EXPECT_EQ(correlator_.hosts(), 1U);
}

TEST_F(IncidentTest, OpensWhenTwoStagesPassTheScore) {
    add({lateral(1000), upload(2000)});
    ASSERT_EQ(emitted_.size(), 1U);
    EXPECT_EQ(emitted_[0].event, IncidentEvent::Opened);
    const Incident& incident = emitted_[0].incident;
    EXPECT_EQ(incident.id, 1U);
    EXPECT_EQ(incident.score, 55U);  // 15 + 30 + 10 for the order
    EXPECT_EQ(incident.host, ip("10.0.0.5"));
    EXPECT_EQ(incident.stages,
            (std::vector<IncidentStage>{IncidentStage::Lateral, IncidentStage::Exfiltration}));
    EXPECT_EQ(correlator_.open_count(), 1U);
}

TEST_F(IncidentTest, StagesOutOfOrderScoreLess) {
    // The same two stages, exfiltration first: no order bonus, below the open score.
    add({upload(1000), lateral(2000)});
    EXPECT_TRUE(emitted_.empty());
    EXPECT_LT(score_of({upload(1000), lateral(2000)}), score_of({lateral(1000), upload(2000)}));
}

TEST_F(IncidentTest, ScoreRisesWithEachStage) {
    const std::vector<AlertRecord> story = {
            login(100), lateral(200), staging(300), packing(400), upload(500)};
    uint32_t previous = 0;
    for (size_t n = 2; n <= story.size(); ++n) {
        const uint32_t score = score_of(std::vector<AlertRecord>(story.begin(), story.begin() + n));
        EXPECT_GT(score, previous) << n << " stages";
        previous = score;
    }
    // 10 + 15 + 15 + 20 + 30 + 4 ordered steps of 10
    EXPECT_EQ(previous, 130U);
}

TEST_F(IncidentTest, ScoreRisesWithSensitivity) {
    AlertRecord restricted = staging(300);
    restricted.dst_asset = "hr-share";
    restricted.dst_asset_classification = "restricted";
    AlertRecord confidential = restricted;
    confidential.dst_asset_classification = "confidential";
    const uint32_t none = score_of({lateral(100), staging(300)});
    const uint32_t conf = score_of({lateral(100), confidential});
    const uint32_t restr = score_of({lateral(100), restricted});
    EXPECT_LT(none, conf);
    EXPECT_LT(conf, restr);
    EXPECT_EQ(restr, (15U + 15 + 10) * 175 / 100);
}

TEST_F(IncidentTest, ScoreRisesWithSeverity) {
    EXPECT_LT(score_of({lateral(100), upload(200, Severity::Low)}),
            score_of({lateral(100), upload(200, Severity::Critical)}));
}

TEST_F(IncidentTest, FindingsInPacketTimeOrder) {
    add({lateral(1000), upload(3000), staging(2000)});
    add({upload(4000)});
    correlator_.close_all();
    ASSERT_FALSE(emitted_.empty());
    const Incident& closed = emitted_.back().incident;
    EXPECT_EQ(emitted_.back().event, IncidentEvent::Closed);
    ASSERT_EQ(closed.findings.size(), 4U);
    EXPECT_EQ(closed.findings[0].timestamp_s, 1000);
    EXPECT_EQ(closed.findings[1].timestamp_s, 2000);
    EXPECT_EQ(closed.findings[2].timestamp_s, 3000);
    EXPECT_EQ(closed.findings[3].timestamp_s, 4000);
    EXPECT_EQ(closed.close_reason, "end of run");
}

TEST_F(IncidentTest, NewStageAfterOpeningEscalates) {
    add({lateral(1000), upload(2000), upload(2100), packing(2200)});
    ASSERT_EQ(emitted_.size(), 2U);
    EXPECT_EQ(emitted_[1].event, IncidentEvent::Escalated);
    EXPECT_GT(emitted_[1].incident.score, emitted_[0].incident.score);
    EXPECT_EQ(emitted_[1].incident.findings_total, 4U);
}

TEST_F(IncidentTest, IdleGapClosesIncident) {
    add({lateral(1000), upload(2000)});
    const double later = 2000 + IncidentConfig{}.idle_s + 1;
    add({lateral(later)});
    ASSERT_EQ(emitted_.size(), 2U);
    EXPECT_EQ(emitted_[1].event, IncidentEvent::Closed);
    EXPECT_EQ(emitted_[1].incident.close_reason, "idle");
    EXPECT_EQ(correlator_.open_count(), 0U);
    // The new finding starts a new timeline: one stage, not open.
    EXPECT_EQ(correlator_.hosts(), 1U);
    ASSERT_EQ(correlator_.list().size(), 1U);
    EXPECT_TRUE(correlator_.list()[0]->closed);
    EXPECT_EQ(correlator_.find(1), correlator_.list()[0]);
}

TEST_F(IncidentTest, HostsWithinIdleTimeStayOpen) {
    // Simulated hours: each step within the idle time of the last.
    const double hour = 3600;
    add({login(0), lateral(3 * hour), staging(6 * hour), packing(9 * hour), upload(12 * hour)});
    EXPECT_EQ(correlator_.opened_total(), 1U);
    EXPECT_EQ(correlator_.open_count(), 1U);
    EXPECT_EQ(correlator_.list()[0]->stages.size(), 5U);
}

TEST_F(IncidentTest, ExternalLoginFollowsTheServer) {
    add({login(100), record("external_upload", "10.0.0.5", "203.0.113.9", 200)});
    ASSERT_EQ(emitted_.size(), 1U);
    EXPECT_EQ(emitted_[0].incident.host, ip("10.0.0.5"));
}

TEST_F(IncidentTest, FindingsWithoutInternalEndIgnored) {
    add({record("external_upload", "198.51.100.1", "203.0.113.9", 100)});
    EXPECT_EQ(correlator_.hosts(), 0U);
}

class IncidentBoundsTest : public IncidentTest {
protected:
    static IncidentConfig small() {
        IncidentConfig config;
        config.max_hosts = 2;
        config.max_findings = 3;
        return config;
    }
    IncidentBoundsTest() : IncidentTest(small()) {}
};

TEST_F(IncidentBoundsTest, KeepsFirstFindingsAndCountsTheRest) {
    add({lateral(1000), upload(2000), upload(2001), upload(2002), upload(2003)});
    correlator_.close_all();
    const Incident& closed = emitted_.back().incident;
    EXPECT_EQ(closed.findings.size(), 3U);
    EXPECT_EQ(closed.findings_total, 5U);
    const auto json = nlohmann::json::parse(incident_to_json(closed, IncidentEvent::Closed));
    EXPECT_EQ(json["incident"]["findings_omitted"], 2);
    EXPECT_EQ(json["incident"]["finding_count"], 5);
}

TEST_F(IncidentBoundsTest, EvictsLeastRecentlyActiveHost) {
    add({lateral(1000), upload(1001)});  // 10.0.0.5 opens
    add({record("lateral_fanout", "10.0.0.6", "10.0.0.9", 1002)});
    add({record("lateral_fanout", "10.0.0.7", "10.0.0.9", 1003)});  // 10.0.0.5 is the oldest
    EXPECT_EQ(correlator_.hosts(), 2U);
    ASSERT_EQ(emitted_.size(), 2U);
    EXPECT_EQ(emitted_[1].event, IncidentEvent::Closed);
    EXPECT_EQ(emitted_[1].incident.close_reason, "evicted");
}

TEST_F(IncidentTest, RecordHasEveFieldsAndFindingsInOrder) {
    AlertRecord up = upload(2000);
    up.src_asset = "ws-5";
    up.src_asset_classification = "internal";
    add({lateral(1000), up});
    ASSERT_EQ(emitted_.size(), 1U);
    const auto json =
            nlohmann::json::parse(incident_to_json(emitted_[0].incident, IncidentEvent::Opened));
    EXPECT_EQ(json["event_type"], "incident");
    EXPECT_EQ(json["timestamp"], "1970-01-01T00:33:20.000000+0000");
    const auto& inc = json["incident"];
    EXPECT_EQ(inc["id"], 1);
    EXPECT_EQ(inc["event"], "opened");
    EXPECT_EQ(inc["state"], "open");
    EXPECT_EQ(inc["host"]["ip"], "10.0.0.5");
    EXPECT_EQ(inc["host"]["asset"], "ws-5");
    EXPECT_EQ(inc["host"]["classification"], "internal");
    EXPECT_EQ(inc["score"], 68);  // 55 * 1.25
    EXPECT_EQ(inc["stages"], nlohmann::json::array({"lateral", "exfiltration"}));
    EXPECT_EQ(inc["first_seen"], "1970-01-01T00:16:40.000000+0000");
    ASSERT_EQ(inc["findings"].size(), 2U);
    const auto& first = inc["findings"][0];
    EXPECT_EQ(first["detector"], "lateral_fanout");
    EXPECT_EQ(first["stage"], "lateral");
    EXPECT_EQ(first["flow_id"], 1000);
    EXPECT_EQ(first["src_ip"], "10.0.0.5");
    EXPECT_EQ(first["dest_ip"], "10.0.0.9");
    EXPECT_EQ(first["dest_port"], 443);
    EXPECT_EQ(first["proto"], "TCP");
    EXPECT_EQ(first["signature"], "sig lateral_fanout");
    EXPECT_EQ(inc["findings"][1]["detector"], "external_upload");
}

TEST_F(IncidentTest, BlockTargetsAreOutsidePeersOfExfiltration) {
    add({lateral(1000), upload(2000), record("dns_tunnel", "10.0.0.5", "198.51.100.53", 2100),
            upload(2200)});
    const Incident* incident = correlator_.find(1);
    ASSERT_NE(incident, nullptr);
    const auto remote = incident_block_targets(*incident, PolicyAction::BlockRemote);
    ASSERT_EQ(remote.size(), 2U);
    EXPECT_EQ(remote[0].to_string(), "203.0.113.9/32");
    EXPECT_EQ(remote[1].to_string(), "198.51.100.53/32");
    const auto source = incident_block_targets(*incident, PolicyAction::BlockSource);
    ASSERT_EQ(source.size(), 1U);
    EXPECT_EQ(source[0].to_string(), "10.0.0.5/32");
}

TEST_F(IncidentTest, DisabledKeepsNothing) {
    IncidentConfig off;
    off.enabled = false;
    correlator_.set_config(off);
    add({lateral(1000), upload(2000)});
    EXPECT_EQ(correlator_.hosts(), 0U);
    EXPECT_TRUE(emitted_.empty());
}

TEST(IncidentConfigTest, ParsesSection) {
    auto config = parse_config(
            "incidents:\n  idle_s: 600\n  open_score: 80\n  max_hosts: 10\n  max_findings: 5\n"
            "  order_bonus: 0\n  enabled: no\n  stage_weights: {exfiltration: 50, access: 1}\n",
            "test.yaml");
    ASSERT_TRUE(config.ok()) << config.error();
    EXPECT_EQ(config->incidents.idle_s, 600U);
    EXPECT_EQ(config->incidents.open_score, 80U);
    EXPECT_EQ(config->incidents.max_hosts, 10U);
    EXPECT_EQ(config->incidents.max_findings, 5U);
    EXPECT_EQ(config->incidents.order_bonus, 0U);
    EXPECT_FALSE(config->incidents.enabled);
    EXPECT_EQ(config->incidents.stage_weights,
            (std::array<uint32_t, kIncidentStageCount>{1, 15, 15, 20, 50}));
}

TEST(IncidentConfigTest, DefaultsWhenAbsent) {
    auto config = parse_config("", "test.yaml");
    ASSERT_TRUE(config.ok());
    EXPECT_TRUE(config->incidents.enabled);
    EXPECT_EQ(config->incidents.idle_s, 4U * 3600);
    EXPECT_EQ(config->incidents.open_score, 50U);
}

TEST(IncidentConfigTest, BadValuesNameFileLineAndKey) {
    auto config = parse_config(
            "workers:\n  count: 1\nincidents:\n  idle_s: 0\n  max_hosts: many\n  colour: red\n"
            "  stage_weights: {sending: 3}\n",
            "test.yaml");
    ASSERT_FALSE(config.ok());
    const std::string& error = config.error();
    EXPECT_NE(error.find("test.yaml:4: incidents.idle_s:"), std::string::npos) << error;
    EXPECT_NE(error.find("test.yaml:5: incidents.max_hosts:"), std::string::npos) << error;
    EXPECT_NE(error.find("test.yaml:6: incidents.colour:"), std::string::npos) << error;
    EXPECT_NE(error.find("test.yaml:7: incidents.stage_weights.sending:"), std::string::npos)
            << error;
}

TEST(IncidentConfigTest, OverrideSetsKey) {
    Config config = default_config();
    ASSERT_TRUE(apply_override(config, "incidents.open_score=120").ok());
    EXPECT_EQ(config.incidents.open_score, 120U);
    const Status bad = apply_override(config, "incidents.max_findings=0");
    ASSERT_FALSE(bad.ok());
    EXPECT_NE(bad.error().find("incidents.max_findings"), std::string::npos) << bad.error();
}

}  // namespace
}  // namespace exfiltap::control
