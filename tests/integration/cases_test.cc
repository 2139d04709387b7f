// The bug-report cases of ../shared/cases with the outcomes of their expected.json.
#include <algorithm>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tests/integration/harness.h"

namespace exfiltap::testing {
namespace {

using ::testing::UnorderedElementsAre;

int findings(const RunOutput& run, const std::string& cls) {
    return run.summary["findings"].value(cls, -1);
}

TEST(CasesTest, PanSplitAcrossTwoSegmentsIsFoundOnce) {
    EXFILTAP_SHARED_OR_SKIP(pcap, "cases/c01a_pan_split_2seg.pcap");
    const RunOutput run = run_exfiltap(pcap);
    ASSERT_EQ(run.exit_code, 0) << run.out;
    EXPECT_EQ(findings(run, "payment_card"), 1);
    const auto cards = alerts_of(run, "payment_card");
    ASSERT_EQ(cards.size(), 1U);
    const auto& a = cards[0];
    EXPECT_EQ(a["src_ip"], "10.20.1.15");
    EXPECT_EQ(a["dest_ip"], "203.0.113.80");
    EXPECT_EQ(a["dest_port"], 80);
    EXPECT_EQ(a["proto"], "TCP");
    EXPECT_EQ(a["event_type"], "alert");
    EXPECT_EQ(a["exfil"]["sample"], "************5715");
    EXPECT_EQ(a["exfil"]["sample_hmac"], sample_hmac(run.dir + "/state", "4857083934735715"));
    EXPECT_EQ(a["community_id"].get<std::string>().substr(0, 2), "1:");
}

TEST(CasesTest, PanInOneByteSegmentsIsFoundOnce) {
    EXFILTAP_SHARED_OR_SKIP(pcap, "cases/c01b_pan_1byte_segments.pcap");
    const RunOutput run = run_exfiltap(pcap);
    ASSERT_EQ(run.exit_code, 0) << run.out;
    EXPECT_EQ(findings(run, "payment_card"), 1);
    EXPECT_THAT(sample_tails(alerts_of(run, "payment_card")), UnorderedElementsAre("5715"));
}

TEST(CasesTest, AckBeforeDataDeclaresNoGap) {
    EXFILTAP_SHARED_OR_SKIP(pcap, "cases/c02_ack_before_data.pcap");
    const RunOutput run = run_exfiltap(pcap);
    ASSERT_EQ(run.exit_code, 0) << run.out;
    EXPECT_EQ(findings(run, "us_ssn"), 1);
    EXPECT_THAT(sample_tails(alerts_of(run, "us_ssn")), UnorderedElementsAre("5870"));
    EXPECT_EQ(run.summary["counters"]["stream_gaps"], 0);
}

TEST(CasesTest, Ipv6ExtensionChainIsWalkedAndDecoyIgnored) {
    EXFILTAP_SHARED_OR_SKIP(pcap, "cases/c04_ipv6_ext_chain.pcap");
    const RunOutput run = run_exfiltap(pcap);
    ASSERT_EQ(run.exit_code, 0) << run.out;
    EXPECT_EQ(findings(run, "payment_card"), 1);
    EXPECT_THAT(sample_tails(alerts_of(run, "payment_card")), UnorderedElementsAre("5504"));
}

TEST(CasesTest, QinqSsnIsFoundWithBothVlanIds) {
    EXFILTAP_SHARED_OR_SKIP(pcap, "cases/c06_qinq_88a8_ssn.pcap");
    const RunOutput run = run_exfiltap(pcap);
    ASSERT_EQ(run.exit_code, 0) << run.out;
    EXPECT_EQ(findings(run, "us_ssn"), 1);
    const auto ssns = alerts_of(run, "us_ssn");
    ASSERT_EQ(ssns.size(), 1U);
    EXPECT_EQ(ssns[0]["exfil"]["sample"], "*****0275");
    EXPECT_EQ(ssns[0]["vlan"], nlohmann::json::array({300, 42}));
}

TEST(CasesTest, PanCutByFragmentBoundaryIsFoundAfterReassembly) {
    EXFILTAP_SHARED_OR_SKIP(pcap, "cases/c09_ipv4_frag_ooo_pan.pcap");
    const RunOutput run = run_exfiltap(pcap, {"--workers", "2"});
    ASSERT_EQ(run.exit_code, 0) << run.out;
    EXPECT_EQ(findings(run, "payment_card"), 1);
    EXPECT_THAT(sample_tails(alerts_of(run, "payment_card")), UnorderedElementsAre("1371"));
    EXPECT_EQ(run.summary["counters"]["fragments"], 3);
    EXPECT_EQ(run.summary["counters"]["fragments_reassembled"], 1);
    // The fragments themselves are forwarded as they came.
    EXPECT_EQ(run.summary["packets_written"], run.summary["packets"]);
}

TEST(CasesTest, JumboFramesInChainedMbufsAreScannedAcrossSegments) {
    EXFILTAP_SHARED_OR_SKIP(pcap, "cases/c16_jumbo_9000_mtu.pcap");
    const RunOutput run = run_exfiltap(pcap);
    ASSERT_EQ(run.exit_code, 0) << run.out;
    EXPECT_EQ(findings(run, "payment_card"), 1);
    EXPECT_EQ(findings(run, "us_ssn"), 1);
    EXPECT_THAT(sample_tails(alerts_of(run, "payment_card")), UnorderedElementsAre("1711"));
    EXPECT_THAT(sample_tails(alerts_of(run, "us_ssn")), UnorderedElementsAre("8460"));
}

TEST(CasesTest, TwoPansOnOneConnectionAreBothFound) {
    EXFILTAP_SHARED_OR_SKIP(pcap, "cases/c11_two_pans_one_connection.pcap");
    const RunOutput run = run_exfiltap(pcap);
    ASSERT_EQ(run.exit_code, 0) << run.out;
    EXPECT_EQ(findings(run, "payment_card"), 2);
    EXPECT_THAT(sample_tails(alerts_of(run, "payment_card")), UnorderedElementsAre("7661", "6813"));
}

TEST(CasesTest, PanLookalikesRaiseNothing) {
    EXFILTAP_SHARED_OR_SKIP(pcap, "cases/c12_pan_lookalikes.pcap");
    const RunOutput run = run_exfiltap(pcap);
    ASSERT_EQ(run.exit_code, 0) << run.out;
    EXPECT_EQ(findings(run, "payment_card"), 0);
    EXPECT_TRUE(run.alerts.empty());
}

TEST(CasesTest, SmtpPanFormatsAreFoundAndLuhnInvalidIsNot) {
    EXFILTAP_SHARED_OR_SKIP(pcap, "cases/c14_pan_formats_smtp.pcap");
    // No suppression: one record per finding, so every value can be checked.
    const RunOutput run = run_exfiltap(pcap, {"--set", "outputs.alert_suppression_s=0"});
    ASSERT_EQ(run.exit_code, 0) << run.out;
    // 4 MUST values; the Diners 14-digit (5511) SHOULD be found too.
    EXPECT_THAT(sample_tails(alerts_of(run, "payment_card")),
            UnorderedElementsAre("8551", "7371", "8379", "1459", "5511"));
    for (const auto& a : alerts_of(run, "payment_card")) {
        EXPECT_EQ(a["src_ip"], "10.20.14.15");
        EXPECT_EQ(a["dest_port"], 25);
        EXPECT_EQ(a["exfil"]["count"], 1);
        EXPECT_NE(a["exfil"]["sample_hmac"], sample_hmac(run.dir + "/state", "4912048809700551"));
    }
}

TEST(CasesTest, SuppressionFoldsLaterFindingsIntoAFinalRecord) {
    EXFILTAP_SHARED_OR_SKIP(pcap, "cases/c14_pan_formats_smtp.pcap");
    const RunOutput run = run_exfiltap(pcap);
    ASSERT_EQ(run.exit_code, 0) << run.out;
    EXPECT_EQ(findings(run, "payment_card"), 5);
    const auto cards = alerts_of(run, "payment_card");
    // The first finding alerts at once; the other four arrive within the interval and are
    // flushed in one record when the flow ends.
    ASSERT_EQ(cards.size(), 2U);
    EXPECT_EQ(cards[0]["exfil"]["count"], 1);
    EXPECT_EQ(cards[1]["exfil"]["count"], 4);
    EXPECT_EQ(cards[0]["flow_id"], cards[1]["flow_id"]);
    EXPECT_EQ(run.summary["alerts"]["payment_card"], 2);
}

TEST(CasesTest, IpOptionsAndLongTcpOptionsKeepPortsAndFindSsn) {
    EXFILTAP_SHARED_OR_SKIP(pcap, "cases/c19_ipv4_and_tcp_options.pcap");
    const RunOutput run = run_exfiltap(pcap);
    ASSERT_EQ(run.exit_code, 0) << run.out;
    EXPECT_EQ(findings(run, "us_ssn"), 1);
    const auto ssns = alerts_of(run, "us_ssn");
    ASSERT_EQ(ssns.size(), 1U);
    EXPECT_EQ(ssns[0]["src_port"], 53900);
    EXPECT_EQ(ssns[0]["dest_port"], 80);
    EXPECT_EQ(ssns[0]["exfil"]["sample"], "*****8826");
    EXPECT_EQ(run.summary["counters"]["malformed_total"], 0);
}

}  // namespace
}  // namespace exfiltap::testing
