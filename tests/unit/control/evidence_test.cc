#include "control/evidence.h"

#include <sys/stat.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "control/config.h"
#include "control/evidence_file.h"
#include "tests/temp_dir.h"

namespace exfiltap::control {
namespace {

using test_support::TempDir;

/// One block of a pcapng file as the test reads it back.
struct Block {
    uint32_t type = 0;
    uint32_t length = 0;
    std::vector<uint8_t> body;  // between the leading length and the trailing one
};

uint32_t u32_at(const std::vector<uint8_t>& bytes, size_t at) {
    uint32_t v = 0;
    std::memcpy(&v, bytes.data() + at, sizeof(v));
    return v;
}

uint16_t u16_at(const std::vector<uint8_t>& bytes, size_t at) {
    uint16_t v = 0;
    std::memcpy(&v, bytes.data() + at, sizeof(v));
    return v;
}

std::vector<uint8_t> read_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

/// Splits a pcapng image into blocks; checks each block's two lengths agree.
std::vector<Block> parse_blocks(const std::vector<uint8_t>& bytes) {
    std::vector<Block> blocks;
    size_t at = 0;
    while (at + 12 <= bytes.size()) {
        Block block;
        block.type = u32_at(bytes, at);
        block.length = u32_at(bytes, at + 4);
        EXPECT_EQ(block.length % 4, 0U);
        EXPECT_LE(at + block.length, bytes.size());
        if (block.length < 12 || at + block.length > bytes.size()) {
            break;
        }
        EXPECT_EQ(u32_at(bytes, at + block.length - 4), block.length);
        block.body.assign(bytes.begin() + static_cast<long>(at + 8),
                bytes.begin() + static_cast<long>(at + block.length - 4));
        blocks.push_back(std::move(block));
        at += block.length;
    }
    EXPECT_EQ(at, bytes.size());
    return blocks;
}

/// Options from `at` in a block body: code -> value.
std::vector<std::pair<uint16_t, std::string>> parse_options(
        const std::vector<uint8_t>& body, size_t at) {
    std::vector<std::pair<uint16_t, std::string>> options;
    while (at + 4 <= body.size()) {
        const uint16_t code = u16_at(body, at);
        const uint16_t len = u16_at(body, at + 2);
        if (code == 0) {
            break;
        }
        options.emplace_back(code,
                std::string(body.begin() + static_cast<long>(at + 4),
                        body.begin() + static_cast<long>(at + 4 + len)));
        at += 4 + ((len + 3U) & ~3U);
    }
    return options;
}

std::vector<uint8_t> frame_of(uint32_t len, uint8_t fill) {
    return std::vector<uint8_t>(len, fill);
}

TEST(EvidenceFileTest, WritesSectionInterfaceAndPacketBlocks) {
    const auto a = frame_of(60, 0xaa);
    const auto b = frame_of(101, 0xbb);
    const std::vector<EvidencePacket> packets = {
            {1700000000123456789ULL, 60, a}, {1700000001000000001ULL, 1514, b}};
    size_t written = 0;
    const auto image =
            render_pcapng("exfiltap evidence for inc-1; flows 5", 1600, packets, 1 << 20, written);
    EXPECT_EQ(written, 2U);

    const std::vector<Block> blocks = parse_blocks(image);
    ASSERT_EQ(blocks.size(), 4U);
    EXPECT_EQ(blocks[0].type, 0x0A0D0D0AU);
    EXPECT_EQ(u32_at(blocks[0].body, 0), 0x1A2B3C4DU);
    EXPECT_EQ(u16_at(blocks[0].body, 4), 1U);
    const auto shb_options = parse_options(blocks[0].body, 16);
    ASSERT_EQ(shb_options.size(), 2U);
    EXPECT_EQ(shb_options[0].first, 1U);
    EXPECT_EQ(shb_options[0].second, "exfiltap evidence for inc-1; flows 5");

    EXPECT_EQ(blocks[1].type, 1U);
    EXPECT_EQ(u16_at(blocks[1].body, 0), 1U);  // LINKTYPE_ETHERNET
    EXPECT_EQ(u32_at(blocks[1].body, 4), 1600U);
    const auto idb_options = parse_options(blocks[1].body, 8);
    ASSERT_EQ(idb_options.size(), 1U);
    EXPECT_EQ(idb_options[0].first, 9U);
    EXPECT_EQ(idb_options[0].second, std::string(1, '\x09'));

    for (size_t i = 0; i < 2; ++i) {
        const Block& epb = blocks[2 + i];
        EXPECT_EQ(epb.type, 6U);
        const uint64_t time = (uint64_t{u32_at(epb.body, 4)} << 32) | u32_at(epb.body, 8);
        EXPECT_EQ(time, packets[i].time_ns);
        EXPECT_EQ(u32_at(epb.body, 12), packets[i].frame.size());
        EXPECT_EQ(u32_at(epb.body, 16), packets[i].original_len);
        EXPECT_EQ(epb.length, 32 + ((packets[i].frame.size() + 3) & ~size_t{3}));
        EXPECT_EQ(
                std::memcmp(epb.body.data() + 20, packets[i].frame.data(), packets[i].frame.size()),
                0);
    }
}

TEST(EvidenceFileTest, LeavesOutPacketsPastMaxFileBytes) {
    const auto a = frame_of(1000, 1);
    const std::vector<EvidencePacket> packets(10, EvidencePacket{1, 1000, a});
    size_t written = 0;
    const auto image = render_pcapng("c", 1600, packets, 3500, written);
    EXPECT_EQ(written, 3U);  // headers ~70 bytes, each packet 1032
    EXPECT_LE(image.size(), 3500U);
    EXPECT_EQ(parse_blocks(image).size(), 5U);
}

TEST(EvidenceFileTest, WritesFileAndFolderWithRestrictedModes) {
    TempDir tmp("evidence_test");
    const std::string dir = tmp.path() + "/evidence";
    const auto a = frame_of(60, 1);
    const std::vector<EvidencePacket> packets = {{5, 60, a}};
    const auto outcome = write_evidence_file(
            dir, evidence_file_name(0, 1, "inc/1 x"), "c", 1600, packets, EvidenceLimits{});
    ASSERT_TRUE(outcome.ok()) << outcome.error();
    EXPECT_EQ(outcome->path, dir + "/evidence-19700101T000000-1-inc_1_x.pcapng");
    EXPECT_EQ(outcome->packets, 1U);
    struct stat st {};
    ASSERT_EQ(stat(outcome->path.c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0640U);
    EXPECT_EQ(static_cast<uint64_t>(st.st_size), outcome->bytes);
    ASSERT_EQ(stat(dir.c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0750U);
    EXPECT_EQ(read_file(outcome->path).size(), outcome->bytes);
}

TEST(EvidenceFileTest, RemovesOldestFilesBeyondMaxFiles) {
    TempDir tmp("evidence_test");
    const auto a = frame_of(100, 1);
    const std::vector<EvidencePacket> packets = {{5, 100, a}};
    EvidenceLimits limits;
    limits.max_files = 2;
    uint32_t removed = 0;
    for (uint64_t i = 1; i <= 4; ++i) {
        const auto outcome = write_evidence_file(
                tmp.path(), evidence_file_name(0, i, "x"), "c", 1600, packets, limits);
        ASSERT_TRUE(outcome.ok()) << outcome.error();
        removed += outcome->files_removed;
    }
    EXPECT_EQ(removed, 2U);
    std::vector<std::string> names;
    for (const auto& item : std::filesystem::directory_iterator(tmp.path())) {
        names.push_back(item.path().filename().string());
    }
    std::sort(names.begin(), names.end());
    EXPECT_EQ(names,
            (std::vector<std::string>{
                    "evidence-19700101T000000-3-x.pcapng", "evidence-19700101T000000-4-x.pcapng"}));
}

TEST(EvidenceFileTest, RemovesOldestFilesBeyondMaxTotalBytes) {
    TempDir tmp("evidence_test");
    const auto a = frame_of(1000, 1);
    const std::vector<EvidencePacket> packets = {{5, 1000, a}};
    EvidenceLimits limits;
    limits.max_total_bytes = 2500;  // two files of ~1.1 KB
    uint64_t removed_bytes = 0;
    for (uint64_t i = 1; i <= 3; ++i) {
        const auto outcome = write_evidence_file(
                tmp.path(), evidence_file_name(0, i, "x"), "c", 1600, packets, limits);
        ASSERT_TRUE(outcome.ok()) << outcome.error();
        removed_bytes += outcome->bytes_removed;
    }
    EXPECT_GT(removed_bytes, 1000U);
    EXPECT_FALSE(std::filesystem::exists(tmp.path() + "/evidence-19700101T000000-1-x.pcapng"));
    EXPECT_TRUE(std::filesystem::exists(tmp.path() + "/evidence-19700101T000000-2-x.pcapng"));
    EXPECT_TRUE(std::filesystem::exists(tmp.path() + "/evidence-19700101T000000-3-x.pcapng"));
}

TEST(EvidenceFileTest, ReportsAFolderThatCannotBeCreated) {
    const std::vector<EvidencePacket> packets;
    const auto outcome = write_evidence_file("/nonexistent-exfiltap-dir/sub",
            evidence_file_name(0, 1, "x"), "c", 1600, packets, EvidenceLimits{});
    ASSERT_FALSE(outcome.ok());
    EXPECT_NE(outcome.error().find("/nonexistent-exfiltap-dir/sub"), std::string::npos);
}

/// A worker stand-in: a recorder whose requests are answered when the source is called,
/// or kept unanswered.
struct FakeWorker {
    std::unique_ptr<dataplane::FlightRecorder> recorder =
            dataplane::FlightRecorder::create(256 * 1024, 1600);
    bool answers = true;
    std::vector<dataplane::RecorderRequest*> held;

    RecordSource source() {
        return [this](dataplane::RecorderRequest* request) {
            if (!answers) {
                held.push_back(request);
                return true;
            }
            request->result = recorder->copy_flows(
                    request->flow_ids, {request->buffer.get(), request->buffer_bytes});
            request->done.store(true, std::memory_order_release);
            return true;
        };
    }
};

EvidenceCounters wait_written(const EvidenceCollector& collector, uint64_t files) {
    for (int i = 0; i < 2000 && collector.counters().files_written < files; ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return collector.counters();
}

TEST(EvidenceCollectorTest, MergesWorkersPacketsOfAskedFlowsInTimeOrder) {
    TempDir tmp("evidence_test");
    FakeWorker w0;
    FakeWorker w1;
    const auto f = frame_of(80, 3);
    w0.recorder->record(10, 100, f.data(), 80);
    w1.recorder->record(11, 150, f.data(), 80);
    w0.recorder->record(12, 175, f.data(), 80);  // not asked for
    w0.recorder->record(10, 200, f.data(), 80);
    const auto full = frame_of(1514, 4);  // the frame is as long as its length says
    w1.recorder->record(11, 250, full.data(), 1514);
    EvidenceCollector collector(EvidenceConfig{}, tmp.path(), {w0.source(), w1.source()}, 1 << 20);
    ASSERT_TRUE(collector.start(start_std_thread).ok());

    const auto ticket = collector.request("inc-7", {11, 10});
    ASSERT_TRUE(ticket.ok()) << ticket.error();
    const EvidenceCounters counters = wait_written(collector, 1);
    collector.stop();

    EXPECT_EQ(counters.files_written, 1U);
    EXPECT_EQ(counters.packets_written, 4U);
    const std::vector<Block> blocks = parse_blocks(read_file(ticket->path));
    ASSERT_EQ(blocks.size(), 6U);
    EXPECT_EQ(parse_options(blocks[0].body, 16)[0].second,
            "exfiltap evidence for inc-7; flows 10,11");
    const std::vector<uint64_t> times = {100, 150, 200, 250};
    for (size_t i = 0; i < times.size(); ++i) {
        EXPECT_EQ(u32_at(blocks[2 + i].body, 8), times[i]);
    }
    EXPECT_EQ(u32_at(blocks[5].body, 16), 1514U);
}

TEST(EvidenceCollectorTest, AbandonsAWorkerThatNeverAnswers) {
    TempDir tmp("evidence_test");
    FakeWorker w0;
    FakeWorker stopped;
    stopped.answers = false;
    const auto f = frame_of(80, 3);
    w0.recorder->record(10, 100, f.data(), 80);
    EvidenceConfig config;
    config.request_timeout_ms = 100;
    EvidenceCollector collector(config, tmp.path(), {w0.source(), stopped.source()}, 1 << 20);
    ASSERT_TRUE(collector.start(start_std_thread).ok());
    const auto start = std::chrono::steady_clock::now();
    const auto ticket = collector.request("inc-8", {10}, start);
    ASSERT_TRUE(ticket.ok());

    collector.poll(start + std::chrono::milliseconds(50));
    EXPECT_EQ(collector.counters().abandoned, 0U);
    collector.poll(start + std::chrono::milliseconds(101));
    const EvidenceCounters counters = wait_written(collector, 1);

    EXPECT_EQ(counters.abandoned, 1U);
    EXPECT_EQ(counters.packets_written, 1U);
    const std::vector<Block> blocks = parse_blocks(read_file(ticket->path));
    EXPECT_NE(parse_options(blocks[0].body, 16)[0].second.find("1 workers not answering"),
            std::string::npos);
    // The late answer still lands in memory the collector keeps until then.
    ASSERT_EQ(stopped.held.size(), 1U);
    stopped.held[0]->done.store(true, std::memory_order_release);
    collector.poll(start + std::chrono::milliseconds(200));
}

// A reload moves the files: a request made before it is written where it was promised, one
// made after it in the new folder.
TEST(EvidenceCollectorTest, ReconfigureAppliesToRequestsMadeAfterIt) {
    TempDir old_dir("evidence_test");
    TempDir new_dir("evidence_test");
    FakeWorker w0;
    w0.answers = false;
    const auto f = frame_of(80, 3);
    w0.recorder->record(10, 100, f.data(), 80);
    EvidenceCollector collector(EvidenceConfig{}, old_dir.path(), {w0.source()}, 1 << 20);
    ASSERT_TRUE(collector.start(start_std_thread).ok());
    const auto before = collector.request("inc-1", {10});
    ASSERT_TRUE(before.ok());

    EvidenceConfig changed;
    changed.limits.max_files = 3;
    collector.reconfigure(changed, new_dir.path(), 1 << 20);
    EXPECT_EQ(collector.dir(), new_dir.path());
    w0.answers = true;
    const auto after = collector.request("inc-2", {10});
    ASSERT_TRUE(after.ok());
    ASSERT_EQ(w0.held.size(), 1U);
    w0.held[0]->result = w0.recorder->copy_flows(
            w0.held[0]->flow_ids, {w0.held[0]->buffer.get(), w0.held[0]->buffer_bytes});
    w0.held[0]->done.store(true, std::memory_order_release);
    collector.poll();
    const EvidenceCounters counters = wait_written(collector, 2);
    collector.stop();

    EXPECT_EQ(counters.files_written, 2U);
    EXPECT_EQ(before->path.rfind(old_dir.path() + "/", 0), 0U) << before->path;
    EXPECT_EQ(after->path.rfind(new_dir.path() + "/", 0), 0U) << after->path;
    EXPECT_EQ(parse_blocks(read_file(before->path)).size(), 3U);
    EXPECT_EQ(parse_blocks(read_file(after->path)).size(), 3U);
}

TEST(EvidenceCollectorTest, RefusesAnEmptyFlowList) {
    TempDir tmp("evidence_test");
    EvidenceCollector collector(EvidenceConfig{}, tmp.path(), {}, 4096);
    const auto ticket = collector.request("x", {});
    ASSERT_FALSE(ticket.ok());
    EXPECT_EQ(collector.counters().refused, 1U);
}

TEST(EvidenceCollectorTest, CountsPacketsOverTheCopyBuffer) {
    TempDir tmp("evidence_test");
    FakeWorker w0;
    const auto f = frame_of(1000, 3);
    for (uint64_t t = 1; t <= 10; ++t) {
        w0.recorder->record(10, t, f.data(), 1000);
    }
    EvidenceCollector collector(
            EvidenceConfig{}, tmp.path(), {w0.source()}, 4 * dataplane::record_size(1000));
    ASSERT_TRUE(collector.start(start_std_thread).ok());
    ASSERT_TRUE(collector.request("x", {10}).ok());
    const EvidenceCounters counters = wait_written(collector, 1);
    EXPECT_EQ(counters.packets_written, 4U);
    EXPECT_EQ(counters.packets_truncated, 6U);
}

TEST(EvidenceConfigTest, ReadsEveryKey) {
    const auto config = parse_config(
            "outputs:\n  evidence:\n    enabled: yes\n    dir: /srv/ev\n    recorder_bytes: "
            "1048576\n"
            "    snap_bytes: 256\n    max_file_bytes: 100000\n    max_files: 7\n"
            "    max_total_bytes: 500000\n    request_timeout_ms: 900\n",
            "test.yaml");
    ASSERT_TRUE(config.ok()) << config.error();
    const EvidenceConfig& ev = config->outputs.evidence;
    EXPECT_TRUE(ev.enabled);
    EXPECT_EQ(ev.effective_dir("/var/lib/x"), "/srv/ev");
    EXPECT_EQ(ev.recorder_bytes, 1048576U);
    EXPECT_EQ(ev.snap_bytes, 256U);
    EXPECT_EQ(ev.limits.max_file_bytes, 100000U);
    EXPECT_EQ(ev.limits.max_files, 7U);
    EXPECT_EQ(ev.limits.max_total_bytes, 500000U);
    EXPECT_EQ(ev.request_timeout_ms, 900U);
}

TEST(EvidenceConfigTest, DefaultsToAFolderUnderTheStateDir) {
    const auto config = parse_config("state_dir: /var/lib/x\n", "test.yaml");
    ASSERT_TRUE(config.ok());
    EXPECT_FALSE(config->outputs.evidence.enabled);
    EXPECT_EQ(config->outputs.evidence.effective_dir(config->state_dir), "/var/lib/x/evidence");
}

TEST(EvidenceConfigTest, BadValueNamesFileLineAndKey) {
    const auto config = parse_config(
            "outputs:\n  evidence:\n    enabled: yes\n    recorder_bytes: 12k\n", "test.yaml");
    ASSERT_FALSE(config.ok());
    EXPECT_NE(config.error().find("test.yaml:4: outputs.evidence.recorder_bytes: expected a byte "
                                  "count"),
            std::string::npos)
            << config.error();
}

TEST(EvidenceConfigTest, ReadsSizesWithUnits) {
    const auto config = parse_config(
            "outputs:\n  evidence:\n    recorder_bytes: 8 MiB\n    max_file_bytes: 64MB\n"
            "    max_total_bytes: 1 GiB\n",
            "test.yaml");
    ASSERT_TRUE(config.ok()) << config.error();
    const EvidenceConfig& ev = config->outputs.evidence;
    EXPECT_EQ(ev.recorder_bytes, 8U << 20);
    EXPECT_EQ(ev.limits.max_file_bytes, 64000000U);
    EXPECT_EQ(ev.limits.max_total_bytes, 1ULL << 30);
    EXPECT_EQ(ev.buffer_bytes(), 8U << 20);  // the ring is the smaller
}

TEST(EvidenceConfigTest, SizeOutOfRangeNamesTheRange) {
    const auto config =
            parse_config("outputs:\n  evidence:\n    max_file_bytes: 1 KiB\n", "test.yaml");
    ASSERT_FALSE(config.ok());
    EXPECT_NE(config.error().find("test.yaml:3: outputs.evidence.max_file_bytes: expected from "
                                  "4096 to 17179869184 bytes, got '1 KiB'"),
            std::string::npos)
            << config.error();
}

}  // namespace
}  // namespace exfiltap::control
