// Inputs that once broke exfiltap, each with the outcome it must give now
// (tests/data/regress/README.md says how they were made).
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tests/integration/harness.h"

namespace exfiltap::testing {
namespace {

std::string regress(const std::string& name) {
    return std::string(EXFILTAP_SOURCE_ROOT) + "/tests/data/regress/" + name;
}

int findings(const RunOutput& run, const std::string& cls) {
    return run.summary["findings"].value(cls, -1);
}

TEST(RegressTest, GroSegmentOf40KilobytesIsScanned) {
    const RunOutput run = run_exfiltap(regress("b1_gro_segment_40k.pcap"));
    ASSERT_EQ(run.exit_code, 0) << run.out;
    EXPECT_EQ(findings(run, "payment_card"), 2);
    EXPECT_EQ(run.summary["counters"]["malformed_total"], 0);
}

TEST(RegressTest, RstOutsideTheWindowDoesNotBlindTheTap) {
    const RunOutput run = run_exfiltap(regress("e2_rst_out_of_window.pcap"));
    ASSERT_EQ(run.exit_code, 0) << run.out;
    EXPECT_EQ(findings(run, "payment_card"), 1);
}

TEST(RegressTest, BadTcpChecksumDecoyIsNotTakenAsTheStream) {
    const RunOutput run = run_exfiltap(regress("e3_badsum_decoy.pcap"));
    ASSERT_EQ(run.exit_code, 0) << run.out;
    EXPECT_EQ(findings(run, "payment_card"), 1);
    EXPECT_EQ(run.summary["counters"]["checksum_bad"], 1);
}

TEST(RegressTest, BadIpHeaderChecksumDecoyIsNotTakenAsTheStream) {
    const RunOutput run = run_exfiltap(
            regress("e3b_bad_ip_hdr_csum_decoy.pcap"), {"--set", "flows.checksum_validation=yes"});
    ASSERT_EQ(run.exit_code, 0) << run.out;
    EXPECT_EQ(findings(run, "payment_card"), 1);
}

TEST(RegressTest, NewConnectionAfterRstOnTheSamePortsIsInspected) {
    const RunOutput run = run_exfiltap(regress("e4_port_reuse_after_rst.pcap"));
    ASSERT_EQ(run.exit_code, 0) << run.out;
    EXPECT_EQ(findings(run, "payment_card"), 1);
    EXPECT_EQ(run.summary["flows"], 2);
}

TEST(RegressTest, NewConnectionAfterFinWithLowerIsnIsInspected) {
    const RunOutput run = run_exfiltap(regress("e4b_port_reuse_after_fin.pcap"));
    ASSERT_EQ(run.exit_code, 0) << run.out;
    EXPECT_EQ(findings(run, "payment_card"), 1);
    EXPECT_EQ(run.summary["flows"], 2);
}

TEST(RegressTest, JunkFarAheadCannotPushRealDataOutOfTheStream) {
    const RunOutput run = run_exfiltap(regress("e5_reorder_budget_jump.pcap"));
    ASSERT_EQ(run.exit_code, 0) << run.out;
    EXPECT_EQ(findings(run, "payment_card"), 1);
    EXPECT_GT(run.summary["counters"]["stream_memory_exhausted"].get<int>(), 0);
}

TEST(RegressTest, ConflictingOverlapIsAlertedAndDropped) {
    const RunOutput run = run_exfiltap(regress("e6_overlap_first_wins.pcap"));
    ASSERT_EQ(run.exit_code, 0) << run.out;
    const auto overlaps = alerts_of(run, "conflicting_overlap");
    ASSERT_EQ(overlaps.size(), 1U);
    EXPECT_EQ(overlaps[0]["alert"]["action"], "blocked");
    EXPECT_EQ(overlaps[0]["exfil"]["detector"], "tcp_overlap");
    EXPECT_EQ(overlaps[0]["alert"]["category"], "Evasion");
    // Inline (and offline, which writes what inline forwards) the conflicting copy is
    // dropped: the receiver gets only the first copy, which is what was inspected.
    EXPECT_EQ(run.summary["packets_dropped"], 1);
    EXPECT_EQ(run.summary["packets_written"].get<int>() + 1, run.summary["packets"].get<int>());
}

TEST(RegressTest, ConflictingOverlapIsForwardedWhenPolicySaysSo) {
    const RunOutput run = run_exfiltap(regress("e6_overlap_first_wins.pcap"),
            {"--set", "exceptions.conflicting_overlap=forward"});
    ASSERT_EQ(run.exit_code, 0) << run.out;
    const auto overlaps = alerts_of(run, "conflicting_overlap");
    ASSERT_EQ(overlaps.size(), 1U);
    EXPECT_EQ(overlaps[0]["alert"]["action"], "allowed");
    EXPECT_EQ(run.summary["packets_dropped"], 0);
}

TEST(RegressTest, FragmentsResentWithOtherBytesAreAlertedAndDropped) {
    // IPv4 and IPv6 datagrams whose fragments overlap with different data, decoy first or
    // real data first (gen_fragovl.py).
    const RunOutput run = run_exfiltap(regress("fragovl.pcap"));
    ASSERT_EQ(run.exit_code, 0) << run.out;
    const auto overlaps = alerts_of(run, "conflicting_overlap");
    ASSERT_EQ(overlaps.size(), 5U);
    for (const auto& a : overlaps) {
        EXPECT_EQ(a["exfil"]["detector"], "ip_fragment");
        EXPECT_EQ(a["alert"]["action"], "blocked");
        EXPECT_EQ(a["alert"]["signature_id"], 2100201);
    }
    EXPECT_EQ(run.summary["exceptions"]["dropped"]["conflicting_overlap"], 5);
    EXPECT_EQ(run.summary["packets_dropped"], 5);
}

TEST(RegressTest, ValuesAtTheVeryEndOfStreamsAreFound) {
    const RunOutput run = run_exfiltap(regress("e8_value_at_end.pcap"));
    ASSERT_EQ(run.exit_code, 0) << run.out;
    EXPECT_EQ(findings(run, "payment_card"), 2);
    EXPECT_EQ(findings(run, "us_ssn"), 1);
}

TEST(RegressTest, CardSplitAtEveryPositionIsFoundInEveryFlow) {
    const RunOutput run = run_exfiltap(regress("e9_split_every_way.pcap"));
    ASSERT_EQ(run.exit_code, 0) << run.out;
    const int flows = run.summary["flows"];
    EXPECT_GT(flows, 20);
    EXPECT_EQ(findings(run, "payment_card"), flows);
}

TEST(RegressTest, DamagedCaptureIsSummarisedAndReported) {
    const RunOutput run = run_exfiltap(regress("f05_truncated_record.pcap"));
    EXPECT_EQ(run.exit_code, 1);
    EXPECT_NE(run.out.find("damaged"), std::string::npos) << run.out;
    EXPECT_NE(run.out.find("offline summary"), std::string::npos) << run.out;
    EXPECT_TRUE(run.summary.contains("packets")) << run.out;
}

TEST(RegressTest, FramesLargerThan64KilobytesAreWrittenWhole) {
    const std::string in = regress("f08_big_frames.pcap");
    const RunOutput run = run_exfiltap(in);
    ASSERT_EQ(run.exit_code, 0) << run.out;
    const auto input = read_pcap(in);
    const auto output = read_pcap(run.dir + "/out.pcap");
    ASSERT_EQ(input.size(), output.size());
    for (size_t i = 0; i < input.size(); ++i) {
        EXPECT_EQ(input[i].data, output[i].data) << i;
        EXPECT_EQ(input[i].len, output[i].len) << i;
    }
}

TEST(RegressTest, SynFloodDoesNotEvictTheFlowCarryingData) {
    const RunOutput run =
            run_exfiltap(regress("fl1_synflood_2k.pcap"), {"--set", "flows.table_size=64"});
    ASSERT_EQ(run.exit_code, 0) << run.out;
    EXPECT_EQ(findings(run, "payment_card"), 1);
    EXPECT_GT(run.summary["counters"]["flows_evicted_full"].get<int>(), 0);
}

TEST(RegressTest, WritingOverTheInputIsRefused) {
    const std::string dir = ::testing::TempDir() + "exfiltap_same_file";
    std::filesystem::create_directories(dir);
    const std::string copy = dir + "/in.pcap";
    std::filesystem::copy_file(regress("e8_value_at_end.pcap"), copy,
            std::filesystem::copy_options::overwrite_existing);
    const auto size = std::filesystem::file_size(copy);
    const RunOutput run = run_exfiltap_raw({"--pcap", copy, "--write", copy});
    EXPECT_EQ(run.exit_code, 2) << run.out;
    EXPECT_NE(run.out.find("refusing"), std::string::npos) << run.out;
    EXPECT_EQ(std::filesystem::file_size(copy), size);
}

TEST(RegressTest, CaptureFromAPipeReadsWholeAndKeepsNanoseconds) {
    EXFILTAP_SHARED_OR_SKIP(pcap, "pcaps/zeek_http-to-ssh-port-nsec.pcap");
    const std::string dir = ::testing::TempDir() + "exfiltap_pipe";
    std::filesystem::create_directories(dir);
    const std::string cmd = "cat '" + pcap + "' | '" + EXFILTAP_BINARY + "' --pcap - --write " + dir
            + "/out.pcap --set state_dir=" + dir + "/state >/dev/null 2>&1";
    ASSERT_EQ(std::system(cmd.c_str()), 0);
    const auto input = read_pcap(pcap);
    const auto output = read_pcap(dir + "/out.pcap");
    ASSERT_EQ(output.size(), input.size());
    for (size_t i = 0; i < input.size(); ++i) {
        EXPECT_EQ(output[i].frac, input[i].frac) << i;  // nanoseconds, as in the file
        EXPECT_EQ(output[i].data, input[i].data) << i;
    }
}

TEST(RegressTest, AlertsOnStdoutStayPureJsonLines) {
    const RunOutput run = run_exfiltap_raw({"--pcap", regress("e8_value_at_end.pcap"), "--alerts",
            "-", "--set", "state_dir=" + ::testing::TempDir() + "exfiltap_stdout"});
    ASSERT_EQ(run.exit_code, 0) << run.out;
    // stdout and stderr are merged here; every line that starts with '{' must parse.
    int records = 0;
    std::istringstream lines(run.out);
    std::string line;
    while (std::getline(lines, line)) {
        if (!line.empty() && line[0] == '{') {
            EXPECT_TRUE(nlohmann::json::accept(line)) << line;
            ++records;
        }
    }
    EXPECT_EQ(records, 3);
}

// The unexpected_file_write alerts of an FTP regression capture whose client is inside
// 10.0.0.0/8 and whose server is outside, with no minimum size for writes to outside.
std::vector<nlohmann::json> ftp_writes(const std::string& capture) {
    const RunOutput run = run_exfiltap(regress(capture),
            {"--set", "behaviour.unexpected_file_write.external_min_bytes=1", "--set",
                    "networks.internal=[\"10.0.0.0/8\"]"});
    EXPECT_EQ(run.exit_code, 0) << run.out;
    std::vector<nlohmann::json> writes;
    for (const auto& a : run.alerts) {
        if (a["exfil"]["detector"] == "unexpected_file_write") {
            writes.push_back(a);
        }
    }
    return writes;
}

TEST(RegressTest, FtpUploadIsReportedOnceWhenItsDataConnectionCloses) {
    // Once reported only when the closed data flow timed out (here 99 s late, when the next
    // packet came); closing before the 226 must not report it twice either.
    const auto writes = ftp_writes("l1_ftp_stor_reported_at_close.pcap");
    ASSERT_EQ(writes.size(), 1U);
    EXPECT_EQ(writes[0]["timestamp"], "2023-11-14T22:13:21.000100+0000");  // the data FIN
    EXPECT_EQ(writes[0]["exfil"]["file_name"], "q3-report.txt");
    EXPECT_EQ(writes[0]["exfil"]["bytes"], 20000);
    EXPECT_EQ(writes[0]["exfil"]["user"], "alice");
    EXPECT_EQ(writes[0]["dest_port"], 21);
}

TEST(RegressTest, ForgedRstDoesNotHideTheRestOfAnFtpUpload) {
    // An RST far outside the window closed the data connection on the tap's books half-way
    // through; the upload was reported with the bytes so far and the rest never. Now the
    // close reports what was seen and the real end reports the whole file again, with the
    // segment sent twice counted once.
    const auto writes = ftp_writes("l2_ftp_forged_rst.pcap");
    ASSERT_EQ(writes.size(), 2U);
    EXPECT_EQ(writes[0]["exfil"]["bytes"], 11200);  // at the forged RST
    EXPECT_EQ(writes[1]["exfil"]["bytes"], 20000);  // the whole file, at the real close
    EXPECT_EQ(writes[1]["timestamp"], "2023-11-14T22:13:21.000000+0000");  // its FIN
    EXPECT_EQ(writes[1]["exfil"]["file_name"], "q3-report.txt");
}

}  // namespace
}  // namespace exfiltap::testing
