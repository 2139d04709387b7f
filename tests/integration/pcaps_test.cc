// Real public captures of ../shared/pcaps with the outcomes of MANIFEST.md, and the rule
// that offline runs forward every packet, in order, with its original timestamp.
#include <set>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "tests/integration/harness.h"

namespace exfiltap::testing {
namespace {

// Every packet that came in left again, in capture order, bytes, lengths and timestamps
// unchanged (nothing is dropped in these runs).
void expect_forwarded_unchanged(const std::string& in, const RunOutput& run) {
    const auto input = read_pcap(in);
    const auto output = read_pcap(run.dir + "/out.pcap");
    ASSERT_EQ(output.size(), input.size());
    for (size_t i = 0; i < input.size(); ++i) {
        ASSERT_EQ(output[i].sec, input[i].sec) << "packet " << i;
        ASSERT_EQ(output[i].frac, input[i].frac) << "packet " << i;
        ASSERT_EQ(output[i].len, input[i].len) << "packet " << i;
        ASSERT_EQ(output[i].data, input[i].data) << "packet " << i;
    }
    EXPECT_EQ(run.summary["packets"], input.size());
    EXPECT_EQ(run.summary["packets_written"], input.size());
}

class EveryCaptureTest : public ::testing::TestWithParam<std::string> {};

// MANIFEST.md's "tap should report" under the default networks: the two DNS tunnels, and
// nothing else (protocol events are not alerts).
std::multiset<std::string> expected_behaviour(const std::string& capture) {
    if (capture == "ndpi_dns-tunnel-iodine.pcap" || capture == "ndpi_dns-tunnel-dnscat2.pcap") {
        return {"dns_tunnel"};
    }
    return {};
}

TEST_P(EveryCaptureTest, ForwardsEveryPacketUnchangedAndRaisesOnlyTheManifestsAlerts) {
    EXFILTAP_SHARED_OR_SKIP(pcap, "pcaps/" + GetParam());
    const RunOutput run = run_exfiltap(pcap, {"--workers", "2"});
    ASSERT_EQ(run.exit_code, 0) << run.out;
    expect_forwarded_unchanged(pcap, run);
    // MANIFEST.md: no capture of the corpus holds a card number or SSN to report.
    std::multiset<std::string> behaviour;
    for (const auto& a : run.alerts) {
        EXPECT_NE(a["exfil"]["detector"], "content") << a.dump();
        if (a["exfil"]["detector"] != "content") {
            behaviour.insert(a["exfil"]["detector"].get<std::string>());
        }
    }
    EXPECT_EQ(behaviour, expected_behaviour(GetParam()))
            << run.alerts.size()
            << " alerts, first: " << (run.alerts.empty() ? "" : run.alerts[0].dump());
}

INSTANTIATE_TEST_SUITE_P(Corpus, EveryCaptureTest,
        ::testing::Values("ndpi_badpackets-snaplen.pcap", "ndpi_dns-exf-gzip-label.pcap",
                "ndpi_dns-tunnel-dnscat2.pcap", "ndpi_dns-tunnel-iodine.pcap",
                "ndpi_fuzz-bigendian.pcap", "ndpi_http-basic-auth.pcap", "ndpi_imap-login.pcap",
                "ndpi_ipv4-frag-garbage.pcap", "ndpi_mixed-1kxun.pcap",
                "ndpi_tls-upload-signal.pcap", "sv_ftp-active-stor-exe-pdf.pcap",
                "sv_ftp-upload-passive.pcap", "sv_http-multipart-post-ipv6.pcap",
                "sv_http-post-gzip-body.pcap", "sv_ipv4-truncated-udp.pcap",
                "sv_ipv6-ah-flood.pcap", "sv_ipv6-dstopts-covert.pcap",
                "sv_smb1-write-eicar-segmented.pcap", "sv_smtp-text-attachment.pcap",
                "sv_smtp-zip-attachment.pcap", "sv_tcp-overlap-good-evil.pcap",
                "sv_vlan-ipv4-frag-tcp-syn.pcap", "sv_vlan-ipv6-frag-tcp.pcap",
                "zeek_dns-ipv6-fragmented-txt.pcap", "zeek_dns-txt-benign.pcap",
                "zeek_ftp-bruteforce.pcap", "zeek_ftp-ipv6.pcap",
                "zeek_http-deeply-nested-mime.pcap", "zeek_http-post-large.pcap",
                "zeek_http-putty-upload.pcap", "zeek_http-qinq-vid0.pcap",
                "zeek_http-to-ssh-port-nsec.pcap", "zeek_http-to-ssh-port-usec.pcap",
                "zeek_http-vlan-qinqinq.pcap", "zeek_http-zip-download.pcap",
                "zeek_ipv4-frags-incomplete.pcap", "zeek_mysql-ccn-lookalike.pcap",
                "zeek_pop3-auth-plain.pcap", "zeek_rdp-to-tls.pcap", "zeek_smb2-write-1.5MB.pcap",
                "zeek_smb2-write-small.pcap", "zeek_smtp-attachment-msg-ipv6.pcap",
                "zeek_ssh-guessing.pcap", "zeek_tcp-handshake-reorder.pcap",
                "zeek_tls-sni-small.pcap"),
        [](const ::testing::TestParamInfo<std::string>& info) {
            std::string name;
            for (char c : info.param.substr(0, info.param.size() - 5)) {
                name += std::isalnum(static_cast<unsigned char>(c)) != 0 ? c : '_';
            }
            return name;
        });

TEST(PcapsTest, ThreeStackedVlanTagsDecodeWithoutMalformed) {
    EXFILTAP_SHARED_OR_SKIP(pcap, "pcaps/zeek_http-vlan-qinqinq.pcap");
    const RunOutput run = run_exfiltap(pcap);
    ASSERT_EQ(run.exit_code, 0) << run.out;
    EXPECT_EQ(run.summary["packets"], 14);
    EXPECT_EQ(run.summary["counters"]["malformed_total"], 0);
    EXPECT_EQ(run.summary["counters"]["non_ip"], 0);
    EXPECT_EQ(run.summary["flows"], 1);
}

TEST(PcapsTest, TwoPriorityTagsWithVidZeroDecode) {
    EXFILTAP_SHARED_OR_SKIP(pcap, "pcaps/zeek_http-qinq-vid0.pcap");
    const RunOutput run = run_exfiltap(pcap);
    ASSERT_EQ(run.exit_code, 0) << run.out;
    EXPECT_EQ(run.summary["counters"]["malformed_total"], 0);
    EXPECT_EQ(run.summary["flows"], 1);
}

TEST(PcapsTest, LongDestinationOptionsAreWalkedToIcmpv6) {
    EXFILTAP_SHARED_OR_SKIP(pcap, "pcaps/sv_ipv6-dstopts-covert.pcap");
    const RunOutput run = run_exfiltap(pcap);
    ASSERT_EQ(run.exit_code, 0) << run.out;
    EXPECT_EQ(run.summary["packets"], 37);
    EXPECT_EQ(run.summary["counters"]["malformed_total"], 0);
}

TEST(PcapsTest, AuthenticationHeaderFloodParsesEveryPacket) {
    EXFILTAP_SHARED_OR_SKIP(pcap, "pcaps/sv_ipv6-ah-flood.pcap");
    const RunOutput run = run_exfiltap(pcap);
    ASSERT_EQ(run.exit_code, 0) << run.out;
    EXPECT_EQ(run.summary["packets"], 35720);
    EXPECT_EQ(run.summary["packets_written"], 35720);
    EXPECT_EQ(run.summary["counters"]["malformed_total"], 0);
}

TEST(PcapsTest, TinyIpv4FragmentsBehindVlanRebuildTheSyn) {
    EXFILTAP_SHARED_OR_SKIP(pcap, "pcaps/sv_vlan-ipv4-frag-tcp-syn.pcap");
    const RunOutput run = run_exfiltap(pcap);
    ASSERT_EQ(run.exit_code, 0) << run.out;
    EXPECT_EQ(run.summary["counters"]["fragments"], 3);
    EXPECT_EQ(run.summary["counters"]["fragments_reassembled"], 1);
    EXPECT_EQ(run.summary["flows"], 1);
}

TEST(PcapsTest, Ipv6FragmentsBehindVlanAreReassembledAndScanned) {
    EXFILTAP_SHARED_OR_SKIP(pcap, "pcaps/sv_vlan-ipv6-frag-tcp.pcap");
    const RunOutput run = run_exfiltap(pcap, {"--set", "networks.internal=[\"::1/128\"]"});
    ASSERT_EQ(run.exit_code, 0) << run.out;
    EXPECT_EQ(run.summary["counters"]["fragments_reassembled"], 1);
    EXPECT_EQ(run.summary["flows"], 1);
}

TEST(PcapsTest, FragmentGarbageIsBoundedAndCounted) {
    EXFILTAP_SHARED_OR_SKIP(pcap, "pcaps/ndpi_ipv4-frag-garbage.pcap");
    const RunOutput run = run_exfiltap(pcap);
    ASSERT_EQ(run.exit_code, 0) << run.out;
    EXPECT_EQ(run.summary["counters"]["fragments"], 1252);
    EXPECT_EQ(run.summary["counters"]["fragments_reassembled"], 0);
    EXPECT_EQ(run.summary["fragment_anomalies"]["too_many_fragments"], 1);
    EXPECT_EQ(run.summary["packets_written"], 1252);
}

TEST(PcapsTest, IncompleteFragmentsExpireWithoutDelivery) {
    EXFILTAP_SHARED_OR_SKIP(pcap, "pcaps/zeek_ipv4-frags-incomplete.pcap");
    const RunOutput run = run_exfiltap(pcap);
    ASSERT_EQ(run.exit_code, 0) << run.out;
    EXPECT_EQ(run.summary["counters"]["fragments"], 5);
    EXPECT_EQ(run.summary["counters"]["fragments_reassembled"], 0);
    EXPECT_EQ(run.summary["flows"], 0);
}

TEST(PcapsTest, TruncatedIpv4IsCountedNotReadPast) {
    EXFILTAP_SHARED_OR_SKIP(pcap, "pcaps/sv_ipv4-truncated-udp.pcap");
    const RunOutput run = run_exfiltap(pcap);
    ASSERT_EQ(run.exit_code, 0) << run.out;
    EXPECT_EQ(run.summary["packets"], 1);
    EXPECT_EQ(run.summary["packets_written"], 1);
    EXPECT_EQ(run.summary["malformed"]["ipv4_truncated"], 1);
}

TEST(PcapsTest, UndecodableFramesAreDroppedWhenPolicySaysSo) {
    EXFILTAP_SHARED_OR_SKIP(pcap, "pcaps/sv_ipv4-truncated-udp.pcap");
    const RunOutput run = run_exfiltap(pcap, {"--set", "exceptions.undecodable=drop"});
    ASSERT_EQ(run.exit_code, 0) << run.out;
    EXPECT_EQ(run.summary["packets"], 1);
    EXPECT_EQ(run.summary["packets_dropped"], 1);
    EXPECT_EQ(run.summary["packets_written"], 0);
    EXPECT_TRUE(read_pcap(run.dir + "/out.pcap").empty());
}

TEST(PcapsTest, NanosecondCaptureKeepsNanosecondTimestamps) {
    EXFILTAP_SHARED_OR_SKIP(nsec, "pcaps/zeek_http-to-ssh-port-nsec.pcap");
    EXFILTAP_SHARED_OR_SKIP(usec, "pcaps/zeek_http-to-ssh-port-usec.pcap");
    const RunOutput ns_run = run_exfiltap(nsec);
    const RunOutput us_run = run_exfiltap(usec);
    ASSERT_EQ(ns_run.exit_code, 0) << ns_run.out;
    ASSERT_EQ(us_run.exit_code, 0) << us_run.out;
    const auto ns_out = read_pcap(ns_run.dir + "/out.pcap");
    const auto us_out = read_pcap(us_run.dir + "/out.pcap");
    ASSERT_EQ(ns_out.size(), 9U);
    ASSERT_EQ(us_out.size(), 9U);
    for (size_t i = 0; i < ns_out.size(); ++i) {
        EXPECT_EQ(ns_out[i].sec, us_out[i].sec);
        EXPECT_EQ(ns_out[i].frac / 1000, us_out[i].frac);
    }
    EXPECT_EQ(ns_run.summary["flows"], us_run.summary["flows"]);
}

TEST(PcapsTest, MixedCaptureWithTimeJumpTracksFlowsAndRaisesNothing) {
    EXFILTAP_SHARED_OR_SKIP(pcap, "pcaps/ndpi_mixed-1kxun.pcap");
    const RunOutput run = run_exfiltap(pcap);
    ASSERT_EQ(run.exit_code, 0) << run.out;
    EXPECT_EQ(run.summary["packets"], 1723);
    EXPECT_GT(run.summary["flows"].get<int>(), 50);
    // The 5.8-year jump expires the first capture's flows by timeout.
    EXPECT_GT(run.summary["counters"]["flows_timed_out"].get<int>(), 0);
    EXPECT_TRUE(run.alerts.empty());
}

TEST(PcapsTest, Ipv6MultipartUploadIsScannedWhenItsClientIsInternal) {
    EXFILTAP_SHARED_OR_SKIP(pcap, "pcaps/sv_http-multipart-post-ipv6.pcap");
    const RunOutput run =
            run_exfiltap(pcap, {"--set", "networks.internal=[\"2a01:e0a:b2e:ca60::/64\"]"});
    ASSERT_EQ(run.exit_code, 0) << run.out;
    // The request (headers and a ~400-byte multipart body) leaves; the 90 KB page comes in.
    const auto scanned = run.summary["counters"]["scanned_bytes"].get<uint64_t>();
    EXPECT_GT(scanned, 400U);
    EXPECT_LT(scanned, 5000U);
    EXPECT_TRUE(run.alerts.empty());
}

}  // namespace
}  // namespace exfiltap::testing
