#include "dataplane/flight_recorder.h"

#include <algorithm>
#include <cstdint>
#include <vector>

#include <gtest/gtest.h>

namespace exfiltap::dataplane {
namespace {

std::vector<uint8_t> frame_of(uint32_t len, uint8_t fill) {
    return std::vector<uint8_t>(len, fill);
}

struct Copied {
    std::vector<RecordHeader> headers;
    std::vector<std::vector<uint8_t>> frames;
};

Copied read_all(std::span<const uint8_t> bytes) {
    Copied copied;
    RecordReader reader(bytes);
    RecordHeader header;
    std::span<const uint8_t> frame;
    while (reader.next(header, frame)) {
        copied.headers.push_back(header);
        copied.frames.emplace_back(frame.begin(), frame.end());
    }
    return copied;
}

TEST(FlightRecorderTest, RefusesSizesOutOfRange) {
    EXPECT_EQ(FlightRecorder::create(1024, 1600), nullptr);
    EXPECT_EQ(FlightRecorder::create(1 << 20, 0), nullptr);
    EXPECT_EQ(FlightRecorder::create(1 << 20, 70000), nullptr);
}

TEST(FlightRecorderTest, RoundsCapacityDownToPowerOfTwo) {
    const auto recorder = FlightRecorder::create(300 * 1024, 1600);
    ASSERT_NE(recorder, nullptr);
    EXPECT_EQ(recorder->capacity(), 256U * 1024);
}

TEST(FlightRecorderTest, CopiesOnlyTheAskedFlowsOldestFirst) {
    auto recorder = FlightRecorder::create(128 * 1024, 1600);
    ASSERT_NE(recorder, nullptr);
    for (uint32_t i = 0; i < 10; ++i) {
        const auto frame = frame_of(60 + i, static_cast<uint8_t>(i));
        recorder->record(i % 3, 1000 + i, frame.data(), static_cast<uint32_t>(frame.size()));
    }
    std::vector<uint8_t> out(64 * 1024);
    const std::vector<uint64_t> flows = {0, 2};
    const CopyResult result = recorder->copy_flows(flows, out);
    EXPECT_EQ(result.records, 7U);  // flow 0: 0,3,6,9; flow 2: 2,5,8
    EXPECT_EQ(result.truncated, 0U);
    const Copied copied = read_all({out.data(), static_cast<size_t>(result.bytes)});
    ASSERT_EQ(copied.headers.size(), 7U);
    const std::vector<uint64_t> times = {1000, 1002, 1003, 1005, 1006, 1008, 1009};
    for (size_t i = 0; i < times.size(); ++i) {
        const uint32_t n = static_cast<uint32_t>(times[i] - 1000);
        EXPECT_EQ(copied.headers[i].time_ns, times[i]);
        EXPECT_EQ(copied.headers[i].flow_id, n % 3);
        EXPECT_EQ(copied.headers[i].original_len, 60 + n);
        EXPECT_EQ(copied.headers[i].captured_len, 60 + n);
        EXPECT_EQ(copied.frames[i], frame_of(60 + n, static_cast<uint8_t>(n)));
    }
}

TEST(FlightRecorderTest, CutsFramesAtSnapLengthKeepingOriginalLength) {
    auto recorder = FlightRecorder::create(128 * 1024, 100);
    ASSERT_NE(recorder, nullptr);
    const auto frame = frame_of(1514, 0xab);
    recorder->record(7, 5, frame.data(), 1514);
    std::vector<uint8_t> out(4096);
    const std::vector<uint64_t> flows = {7};
    const CopyResult result = recorder->copy_flows(flows, out);
    const Copied copied = read_all({out.data(), static_cast<size_t>(result.bytes)});
    ASSERT_EQ(copied.headers.size(), 1U);
    EXPECT_EQ(copied.headers[0].original_len, 1514U);
    EXPECT_EQ(copied.headers[0].captured_len, 100U);
    EXPECT_EQ(copied.frames[0], frame_of(100, 0xab));
    EXPECT_EQ(recorder->stats().recorded_bytes, 100U);
}

TEST(FlightRecorderTest, WrapsAndOverwritesOldestRecords) {
    auto recorder = FlightRecorder::create(128 * 1024, 1600);
    ASSERT_NE(recorder, nullptr);
    // 1000 records of 1000 bytes (1024 in the ring) through a 128 KiB ring: 128 fit.
    for (uint32_t i = 0; i < 1000; ++i) {
        auto frame = frame_of(1000, static_cast<uint8_t>(i));
        frame[0] = static_cast<uint8_t>(i >> 8);
        recorder->record(i % 2, i, frame.data(), 1000);
    }
    EXPECT_EQ(recorder->stats().recorded_packets, 1000U);
    EXPECT_EQ(recorder->stats().overwritten, 1000U - 128U);
    EXPECT_EQ(recorder->held_bytes(), 128U * 1024U);
    std::vector<uint8_t> out(1 << 20);
    const std::vector<uint64_t> flows = {0, 1};
    const CopyResult result = recorder->copy_flows(flows, out);
    ASSERT_EQ(result.records, 128U);
    const Copied copied = read_all({out.data(), static_cast<size_t>(result.bytes)});
    for (uint32_t k = 0; k < 128; ++k) {
        const uint32_t i = 1000 - 128 + k;
        ASSERT_EQ(copied.headers[k].time_ns, i);
        EXPECT_EQ(copied.frames[k][0], static_cast<uint8_t>(i >> 8));
        EXPECT_EQ(copied.frames[k][999], static_cast<uint8_t>(i));
    }
}

TEST(FlightRecorderTest, RecordsOfMixedSizesStayIntactAcrossTheEnd) {
    auto recorder = FlightRecorder::create(128 * 1024, 1600);
    ASSERT_NE(recorder, nullptr);
    for (uint32_t i = 0; i < 5000; ++i) {
        const uint32_t len = 40 + (i * 37) % 1561;
        const auto frame = frame_of(len, static_cast<uint8_t>(i));
        recorder->record(i, i, frame.data(), len);
    }
    std::vector<uint8_t> out(1 << 20);
    std::vector<uint64_t> flows(5000);
    for (uint32_t i = 0; i < 5000; ++i) {
        flows[i] = i;
    }
    const CopyResult result = recorder->copy_flows(flows, out);
    EXPECT_EQ(result.records + recorder->stats().overwritten, 5000U);
    const Copied copied = read_all({out.data(), static_cast<size_t>(result.bytes)});
    ASSERT_EQ(copied.headers.size(), result.records);
    for (size_t k = 0; k < copied.headers.size(); ++k) {
        const uint64_t i = copied.headers[k].flow_id;
        EXPECT_EQ(copied.headers[k].time_ns, i);
        EXPECT_EQ(copied.frames[k], frame_of(40 + (i * 37) % 1561, static_cast<uint8_t>(i)));
    }
    EXPECT_EQ(copied.headers.back().flow_id, 4999U);
}

TEST(FlightRecorderTest, CountsRecordsThatDoNotFitTheBuffer) {
    auto recorder = FlightRecorder::create(128 * 1024, 1600);
    ASSERT_NE(recorder, nullptr);
    const auto frame = frame_of(100, 1);
    for (uint32_t i = 0; i < 10; ++i) {
        recorder->record(4, i, frame.data(), 100);
    }
    std::vector<uint8_t> out(3 * record_size(100) + 10);
    const std::vector<uint64_t> flows = {4};
    const CopyResult result = recorder->copy_flows(flows, out);
    EXPECT_EQ(result.records, 3U);
    EXPECT_EQ(result.truncated, 7U);
    EXPECT_EQ(result.bytes, 3 * record_size(100));
}

TEST(FlightRecorderTest, EmptyFlowListCopiesNothing) {
    auto recorder = FlightRecorder::create(128 * 1024, 1600);
    ASSERT_NE(recorder, nullptr);
    const auto frame = frame_of(100, 1);
    recorder->record(4, 1, frame.data(), 100);
    std::vector<uint8_t> out(4096);
    const CopyResult result = recorder->copy_flows({}, out);
    EXPECT_EQ(result.records, 0U);
    EXPECT_EQ(result.bytes, 0U);
}

// In steps the copy gives what one call gives, whatever the step; packets recorded after
// its first step are left out.
TEST(FlightRecorderTest, CopyInStepsMatchesOneCopy) {
    auto recorder = FlightRecorder::create(128 * 1024, 1600);
    ASSERT_NE(recorder, nullptr);
    for (uint64_t t = 1; t <= 120; ++t) {  // about 90 KB: the ring is not full
        const auto frame = frame_of(static_cast<uint32_t>(60 + (t * 37) % 1400), uint8_t(t));
        recorder->record(t % 3, t, frame.data(), static_cast<uint32_t>(frame.size()));
    }
    const std::vector<uint64_t> flows = {0, 2};
    uint32_t expected_records = 80;
    for (const size_t step : {size_t{1}, size_t{1000}, size_t{8192}}) {
        std::vector<uint8_t> whole(1 << 20);
        const CopyResult once = recorder->copy_flows(flows, whole);
        ASSERT_EQ(once.records, expected_records);
        std::vector<uint8_t> out(1 << 20);
        CopyCursor cursor;
        CopyResult result;
        int calls = 1;
        while (!recorder->copy_flows_step(flows, out, cursor, result, step)) {
            if (calls == 1) {
                const auto late = frame_of(80, 9);
                recorder->record(2, 1000, late.data(), 80);  // after the copy began
            }
            ++calls;
        }
        expected_records += 1;  // the late record, for the next copy
        EXPECT_GE(calls, static_cast<int>(recorder->held_bytes() / std::max(step, size_t{1600})))
                << step;
        EXPECT_EQ(result.records, once.records) << step;
        EXPECT_EQ(result.overrun_bytes, 0U);
        ASSERT_EQ(result.bytes, once.bytes);
        EXPECT_TRUE(std::equal(
                out.begin(), out.begin() + static_cast<long>(result.bytes), whole.begin()))
                << step;
    }
    EXPECT_EQ(recorder->stats().overwritten, 0U);
}

// Packets recorded between steps can overwrite records the copy has not reached: those are
// counted as overrun, the walk goes on from the oldest record held, and what it copies is
// intact.
TEST(FlightRecorderTest, CopyInStepsSkipsAndCountsWhatNewerPacketsOverwrote) {
    auto recorder = FlightRecorder::create(128 * 1024, 1600);
    ASSERT_NE(recorder, nullptr);
    const auto frame = frame_of(1000, 5);
    for (uint64_t t = 1; t <= 130; ++t) {  // a full ring: 130 x 1024 bytes
        recorder->record(7, t, frame.data(), 1000);
    }
    std::vector<uint8_t> out(1 << 20);
    CopyCursor cursor;
    CopyResult result;
    ASSERT_FALSE(recorder->copy_flows_step({std::vector<uint64_t>{7}}, out, cursor, result, 4096));
    for (uint64_t t = 131; t <= 150; ++t) {  // 20 newer records take the oldest 20 places
        recorder->record(8, t, frame.data(), 1000);
    }
    while (!recorder->copy_flows_step({std::vector<uint64_t>{7}}, out, cursor, result, 4096)) {
    }
    // The ring holds 128 records of 1024 bytes: t 3..130 at the first step, which copies
    // 3..6; the 20 newer records push the oldest kept to 23, so 7..22 are lost.
    EXPECT_EQ(result.overrun_bytes, 16U * 1024);
    const Copied copied = read_all({out.data(), static_cast<size_t>(result.bytes)});
    ASSERT_EQ(copied.headers.size(), result.records);
    uint64_t previous = 0;
    for (const RecordHeader& h : copied.headers) {
        EXPECT_EQ(h.flow_id, 7U);
        EXPECT_GT(h.time_ns, previous);  // oldest first, no record twice
        previous = h.time_ns;
    }
    ASSERT_EQ(result.records, 4U + 108U);
    EXPECT_EQ(copied.headers[0].time_ns, 3U);
    EXPECT_EQ(copied.headers[3].time_ns, 6U);
    EXPECT_EQ(copied.headers[4].time_ns, 23U);
    EXPECT_EQ(copied.headers.back().time_ns, 130U);
}

}  // namespace
}  // namespace exfiltap::dataplane
