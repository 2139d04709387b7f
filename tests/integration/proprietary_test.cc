// The proprietary-content classes through the whole offline pipeline, on the captures
// exfiltap-gen --scenario proprietary writes (tests/gen/scenario_proprietary.cc): source code
// and office/PDF documents leaving, with and without the marks that raise their confidence,
// and near misses (prose, an internal copy).
#include <cstdlib>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "tests/integration/harness.h"

namespace exfiltap::testing {
namespace {

std::string capture(const std::string& name) {
    const char* prefix = getenv("EXFILTAP_PROPRIETARY_PREFIX");  // NOLINT: no threads yet
    return prefix == nullptr ? std::string() : std::string(prefix) + "-" + name + ".pcap";
}

RunOutput run_case(const std::string& name) {
    const std::string pcap = capture(name);
    EXPECT_FALSE(pcap.empty()) << "EXFILTAP_PROPRIETARY_PREFIX not set (meson test sets it)";
    return run_exfiltap(pcap,
            {"--set", R"(content.source_code.organisations=["Example Corp"])", "--set",
                    "content.source_code.project_names=[BLUEBIRD]"});
}

TEST(ProprietaryTest, LicensedSourceCodeLeavingIsHighConfidenceSourceCode) {
    const RunOutput run = run_case("code-licensed");
    ASSERT_EQ(run.exit_code, 0) << run.out;
    const auto alerts = alerts_of(run, "source_code");
    ASSERT_EQ(alerts.size(), 1U) << dump_alerts(run);
    const auto& a = alerts[0];
    EXPECT_EQ(a["src_ip"], "10.20.0.5");
    EXPECT_EQ(a["dest_ip"], "203.0.113.80");
    EXPECT_EQ(a["dest_port"], 80);
    EXPECT_EQ(a["alert"]["signature_id"], 2100012);
    EXPECT_EQ(a["alert"]["signature"], "EXFIL source code sent to an external network");
    EXPECT_EQ(a["alert"]["severity"], 3);  // medium
    EXPECT_EQ(a["exfil"]["detector"], "content");
    EXPECT_EQ(a["exfil"]["confidence"], "high");
    const std::string sample = a["exfil"]["sample"];
    EXPECT_EQ(sample, "********Corp");  // the organisation's name, last four only
    EXPECT_EQ(run.summary["findings"]["source_code"], 1);
    EXPECT_EQ(run.summary["findings"]["document"], 0);
}

TEST(ProprietaryTest, UnlicensedSourceCodeIsLowConfidence) {
    const RunOutput run = run_case("code-plain");
    ASSERT_EQ(run.exit_code, 0) << run.out;
    const auto alerts = alerts_of(run, "source_code");
    ASSERT_EQ(alerts.size(), 1U) << dump_alerts(run);
    EXPECT_EQ(alerts[0]["exfil"]["confidence"], "low");
    EXPECT_EQ(alerts[0]["exfil"]["reason"],
            "dense code tokens, no licence header or project name of the organisation");
}

TEST(ProprietaryTest, LabelledPdfIsAHighConfidenceDocument) {
    const RunOutput run = run_case("pdf-labelled");
    ASSERT_EQ(run.exit_code, 0) << run.out;
    const auto alerts = alerts_of(run, "document");
    ASSERT_EQ(alerts.size(), 1U) << dump_alerts(run);
    EXPECT_EQ(alerts[0]["exfil"]["confidence"], "high");
    EXPECT_EQ(alerts[0]["exfil"]["reason"],
            "a pdf document (with a classification or "
            "sensitivity label)");
    EXPECT_EQ(alerts[0]["alert"]["severity"], 4);  // low
    EXPECT_TRUE(alerts_of(run, "source_code").empty()) << dump_alerts(run);
}

TEST(ProprietaryTest, OfficeZipIsADocumentOfItsFormat) {
    const RunOutput run = run_case("office-zip");
    ASSERT_EQ(run.exit_code, 0) << run.out;
    const auto alerts = alerts_of(run, "document");
    ASSERT_EQ(alerts.size(), 1U) << dump_alerts(run);
    EXPECT_EQ(alerts[0]["exfil"]["reason"], "a xlsx document (no label seen)");
    EXPECT_EQ(alerts[0]["exfil"]["confidence"], "low");
}

TEST(ProprietaryTest, ProseAndInternalCopiesRaiseNothing) {
    for (const std::string name : {"prose", "code-internal"}) {
        const RunOutput run = run_case(name);
        ASSERT_EQ(run.exit_code, 0) << run.out;
        EXPECT_TRUE(alerts_of(run, "source_code").empty()) << name << "\n" << dump_alerts(run);
        EXPECT_TRUE(alerts_of(run, "document").empty()) << name << "\n" << dump_alerts(run);
    }
}

}  // namespace
}  // namespace exfiltap::testing
