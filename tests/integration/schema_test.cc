// Every record a run writes, held to the schemas in schema/ (DESIGN.md "Outputs"): each alert
// line and the summary, on captures that raise alerts, on real ones that raise none and on the
// regression captures.
#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <system_error>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tests/integration/harness.h"
#include "tests/schema_validator.h"

namespace exfiltap::testing {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

nlohmann::json load_schema(const std::string& name) {
    std::ifstream in(std::string(EXFILTAP_SOURCE_ROOT) + "/schema/" + name);
    return nlohmann::json::parse(in, nullptr, false);  // discarded when missing or not JSON
}

std::string regress_capture(const std::string& name) {
    return std::string(EXFILTAP_SOURCE_ROOT) + "/tests/data/regress/" + name;
}

/// An alert as c01a gives it, to break one field at a time.
nlohmann::json hand_made_alert() {
    return nlohmann::json::parse(R"({
        "timestamp": "2026-01-01T00:00:00.001200+0000", "flow_id": 3704072288566913,
        "event_type": "alert", "src_ip": "10.20.1.15", "src_port": 52600,
        "dest_ip": "203.0.113.80", "dest_port": 80, "proto": "TCP",
        "community_id": "1:cJ3Z4/ShvRWwM6Jw4U+tSl2QyO8=",
        "alert": {"action": "allowed", "signature_id": 2100001,
            "signature": "EXFIL payment card number sent to an external network",
            "category": "Data Exfiltration", "severity": 2},
        "exfil": {"detector": "content", "class": "payment_card", "confidence": "high",
            "bytes": 193, "count": 1, "sample": "************5715",
            "sample_hmac": "769e2c8aec6906edf1b4cdcf3d28b1fcb507a8575369e0b4dd0fba96e611013e"}
    })");
}

class SchemaTest : public ::testing::Test {
protected:
    void SetUp() override {
        alert_schema_ = load_schema("alert.schema.json");
        summary_schema_ = load_schema("summary.schema.json");
        ASSERT_TRUE(alert_schema_.is_object()) << "schema/alert.schema.json missing or not JSON";
        ASSERT_TRUE(summary_schema_.is_object())
                << "schema/summary.schema.json missing or not JSON";
    }

    /// Runs the capture and validates the summary and every alert line it wrote, whatever the
    /// exit code: a damaged capture exits 1 and still writes both.
    RunOutput run_and_validate(const std::string& pcap) {
        RunOutput run = run_exfiltap(pcap);
        EXPECT_TRUE(run.summary.is_object()) << "no summary written: " << run.out;
        EXPECT_THAT(validate(summary_schema_, run.summary), IsEmpty()) << run.summary.dump(2);
        for (size_t i = 0; i < run.alerts.size(); ++i) {
            EXPECT_THAT(validate(alert_schema_, run.alerts[i]), IsEmpty())
                    << "alert line " << i + 1 << ": " << run.alerts[i].dump();
        }
        // Every line the run wrote was read, and so validated: the file and the count agree.
        EXPECT_EQ(run.alerts.size(), alerts_counted(run.summary));
        return run;
    }

    /// The summary's alerts summed over classes and behaviour detectors (0 when it has none).
    static uint64_t alerts_counted(const nlohmann::json& summary) {
        uint64_t counted = 0;
        if (summary.is_object() && summary.contains("alerts") && summary.at("alerts").is_object()) {
            for (const auto& [cls, n] : summary.at("alerts").items()) {
                counted += n.is_number_unsigned() ? n.get<uint64_t>() : 0;
            }
        }
        // Behaviour detectors are counted by detector.
        if (summary.is_object() && summary.contains("behaviour")
                && summary.at("behaviour").is_object()) {
            for (const auto& [detector, n] : summary.at("behaviour").items()) {
                counted += n.is_number_unsigned() ? n.get<uint64_t>() : 0;
            }
        }
        return counted;
    }

    nlohmann::json alert_schema_;
    nlohmann::json summary_schema_;
};

TEST_F(SchemaTest, DemoCaptureAlertsAndSummaryMatch) {
    const char* pcap = getenv("EXFILTAP_DEMO_PCAP");  // NOLINT(concurrency-mt-unsafe): no threads
    ASSERT_NE(pcap, nullptr) << "EXFILTAP_DEMO_PCAP not set";
    const RunOutput run = run_and_validate(pcap);
    EXPECT_EQ(run.exit_code, 0) << run.out;
    EXPECT_FALSE(run.alerts.empty());
}

TEST_F(SchemaTest, PanSplitAcrossSegmentsAlertMatches) {
    EXFILTAP_SHARED_OR_SKIP(pcap, "cases/c01a_pan_split_2seg.pcap");
    const RunOutput run = run_and_validate(pcap);
    EXPECT_EQ(run.exit_code, 0) << run.out;
    EXPECT_FALSE(run.alerts.empty());
}

TEST_F(SchemaTest, QinqAlertWithVlanIdsMatches) {
    EXFILTAP_SHARED_OR_SKIP(pcap, "cases/c06_qinq_88a8_ssn.pcap");
    const RunOutput run = run_and_validate(pcap);
    EXPECT_EQ(run.exit_code, 0) << run.out;
    EXPECT_TRUE(std::any_of(run.alerts.begin(), run.alerts.end(), [](const nlohmann::json& alert) {
        return alert.contains("vlan");
    })) << "the vlan field went unchecked";
}

TEST_F(SchemaTest, SmtpPanFormatAlertsMatch) {
    EXFILTAP_SHARED_OR_SKIP(pcap, "cases/c14_pan_formats_smtp.pcap");
    const RunOutput run = run_and_validate(pcap);
    EXPECT_EQ(run.exit_code, 0) << run.out;
    EXPECT_FALSE(run.alerts.empty());
}

// The stream detector's alert on TCP bytes resent with other content carries no sample.
TEST_F(SchemaTest, EvasionAlertWithoutSampleMatches) {
    const RunOutput run = run_and_validate(regress_capture("e6_overlap_first_wins.pcap"));
    EXPECT_EQ(run.exit_code, 0) << run.out;
    const auto overlaps = alerts_of(run, "conflicting_overlap");
    ASSERT_FALSE(overlaps.empty());
    EXPECT_FALSE(overlaps[0]["exfil"].contains("sample")) << "the sample-less alert went unchecked";
}

// Inputs that once broke exfiltap, damaged captures among them: what they make must match too.
TEST_F(SchemaTest, EveryRegressionCaptureWritesValidRecords) {
    std::vector<std::string> pcaps;
    std::error_code error;
    for (const auto& entry : std::filesystem::directory_iterator(regress_capture(""), error)) {
        if (entry.path().extension() == ".pcap") {
            pcaps.push_back(entry.path().string());
        }
    }
    ASSERT_FALSE(pcaps.empty()) << regress_capture("") << ": " << error.message();
    std::sort(pcaps.begin(), pcaps.end());
    for (const std::string& pcap : pcaps) {
        SCOPED_TRACE(pcap);
        run_and_validate(pcap);
    }
}

// Real traffic (DESIGN.md: the corpus holds nothing to report): the summary alone.
TEST_F(SchemaTest, RealCaptureWithoutAlertsHasMatchingSummary) {
    EXFILTAP_SHARED_OR_SKIP(pcap, "pcaps/ndpi_mixed-1kxun.pcap");
    const RunOutput run = run_and_validate(pcap);
    EXPECT_EQ(run.exit_code, 0) << run.out;
    EXPECT_TRUE(run.alerts.empty());
}

TEST_F(SchemaTest, SummaryWithMalformedCountsMatches) {
    EXFILTAP_SHARED_OR_SKIP(pcap, "pcaps/ndpi_fuzz-bigendian.pcap");
    const RunOutput run = run_and_validate(pcap);
    EXPECT_EQ(run.exit_code, 0) << run.out;
    ASSERT_TRUE(run.summary.is_object());
    EXPECT_FALSE(run.summary.value("malformed", nlohmann::json::object()).empty())
            << "the malformed map went unchecked";
}

TEST_F(SchemaTest, HandMadeAlertMatches) {
    EXPECT_THAT(validate(alert_schema_, hand_made_alert()), IsEmpty());
}

TEST_F(SchemaTest, AlertWithWholeCardNumberAsSampleFails) {
    nlohmann::json alert = hand_made_alert();
    alert["exfil"]["sample"] = "4857083934735715";
    EXPECT_THAT(validate(alert_schema_, alert),
            ElementsAre(HasSubstr("/exfil/sample: does not match pattern")));
}

TEST_F(SchemaTest, AlertWithUndeclaredFieldFails) {
    nlohmann::json alert = hand_made_alert();
    alert["exfil"]["payload"] = "4857083934735715";
    EXPECT_THAT(validate(alert_schema_, alert),
            ElementsAre("/exfil/payload: additional property not allowed"));
}

}  // namespace
}  // namespace exfiltap::testing
