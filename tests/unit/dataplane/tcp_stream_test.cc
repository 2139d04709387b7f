#include "dataplane/tcp_stream.h"

#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace exfiltap::dataplane {
namespace {

class Collect final : public StreamSink {
public:
    void deliver(std::span<const uint8_t> bytes, bool gap_before) noexcept override {
        if (gap_before) {
            text += '|';
            ++gaps;
        }
        text.append(reinterpret_cast<const char*>(bytes.data()), bytes.size());
        delivered.append(reinterpret_cast<const char*>(bytes.data()), bytes.size());
    }
    bool same_as_delivered(uint32_t back, std::span<const uint8_t> bytes) noexcept override {
        if (back > delivered.size()) {
            return true;
        }
        const std::string old = delivered.substr(delivered.size() - back, bytes.size());
        return old == std::string(reinterpret_cast<const char*>(bytes.data()), old.size());
    }
    std::string text;
    std::string delivered;
    int gaps = 0;
};

std::span<const uint8_t> bytes(const std::string& s) {
    return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

class TcpStreamTest : public ::testing::Test {
protected:
    SegmentPool pool_{64};
    TcpReassembler reassembler_{pool_, 64 * 1024};
    TcpDirection dir_;
    Collect sink_;
    TcpStreamStats stats_;

    void segment(uint32_t seq, const std::string& data) {
        reassembler_.on_segment(dir_, seq, bytes(data), sink_, stats_);
    }
};

TEST_F(TcpStreamTest, DeliversInOrderBytesAtOnce) {
    TcpReassembler::on_syn(dir_, 999);
    segment(1000, "hello ");
    segment(1006, "world");
    EXPECT_EQ(sink_.text, "hello world");
    EXPECT_EQ(stats_.in_order_bytes, 11U);
    EXPECT_EQ(pool_.in_use(), 0U);
}

TEST_F(TcpStreamTest, HoldsOutOfOrderSegmentUntilTheHoleFills) {
    TcpReassembler::on_syn(dir_, 0);
    segment(7, "world");
    EXPECT_EQ(sink_.text, "");
    EXPECT_EQ(pool_.in_use(), 1U);
    segment(1, "hello ");
    EXPECT_EQ(sink_.text, "hello world");
    EXPECT_EQ(pool_.in_use(), 0U);
    EXPECT_EQ(dir_.held_bytes, 0U);
}

TEST_F(TcpStreamTest, ReordersThreeSegmentsReceivedLastFirst) {
    TcpReassembler::on_syn(dir_, 100);
    segment(108, "ghi");
    segment(105, "def");
    segment(101, "abcd");
    EXPECT_EQ(sink_.text, "abcddefghi");
}

TEST_F(TcpStreamTest, DropsRetransmittedBytes) {
    TcpReassembler::on_syn(dir_, 0);
    segment(1, "abcdef");
    segment(1, "abcdef");
    segment(4, "defghi");
    EXPECT_EQ(sink_.text, "abcdefghi");
    EXPECT_EQ(stats_.retransmitted_bytes, 9U);
}

TEST_F(TcpStreamTest, KeepsFirstCopyOnOverlapAndCountsConflict) {
    TcpReassembler::on_syn(dir_, 0);
    segment(5, "GOOD");
    segment(5, "EVIL");
    segment(1, "1234");
    EXPECT_EQ(sink_.text, "1234GOOD");
    EXPECT_EQ(stats_.conflicting_overlaps, 1U);
}

TEST_F(TcpStreamTest, RetransmissionWithOtherBytesThanDeliveredIsAConflict) {
    TcpReassembler::on_syn(dir_, 0);
    segment(1, "GOOD");
    segment(1, "EVIL");
    EXPECT_EQ(sink_.text, "GOOD");
    EXPECT_EQ(stats_.conflicting_overlaps, 1U);
    EXPECT_EQ(stats_.retransmitted_bytes, 4U);
}

TEST_F(TcpStreamTest, KeepAliveProbeWithAGarbageByteIsNotAConflict) {
    TcpReassembler::on_syn(dir_, 0);
    segment(1, "GET / HTTP/1.1");
    segment(14, std::string(1, '\0'));
    EXPECT_EQ(stats_.conflicting_overlaps, 0U);
    EXPECT_EQ(sink_.text, "GET / HTTP/1.1");
}

TEST_F(TcpStreamTest, PartlyNewRetransmissionComparesOnlyTheOldPart) {
    TcpReassembler::on_syn(dir_, 0);
    segment(1, "abcd");
    segment(3, "cdef");
    EXPECT_EQ(sink_.text, "abcdef");
    EXPECT_EQ(stats_.conflicting_overlaps, 0U);
}

TEST_F(TcpStreamTest, IdenticalOverlapIsNotAConflict) {
    TcpReassembler::on_syn(dir_, 0);
    segment(5, "GOOD");
    segment(3, "xxGOOD!!");
    segment(1, "ab");
    EXPECT_EQ(sink_.text, "abxxGOOD!!");
    EXPECT_EQ(stats_.conflicting_overlaps, 0U);
}

TEST_F(TcpStreamTest, FlushMarksAndCountsAGap) {
    TcpReassembler::on_syn(dir_, 0);
    segment(1, "abc");
    segment(10, "xyz");
    reassembler_.flush(dir_, sink_, stats_);
    EXPECT_EQ(sink_.text, "abc|xyz");
    EXPECT_EQ(stats_.gaps, 1U);
    EXPECT_EQ(stats_.gap_bytes, 6U);
    EXPECT_EQ(pool_.in_use(), 0U);
}

TEST_F(TcpStreamTest, PicksUpMidStreamWithoutSyn) {
    segment(5000, "late ");
    segment(5005, "start");
    EXPECT_EQ(sink_.text, "late start");
}

TEST_F(TcpStreamTest, HandlesSequenceWrapAround) {
    TcpReassembler::on_syn(dir_, 0xfffffffc);
    segment(0x00000001, "world");
    segment(0xfffffffd, "hell");
    EXPECT_EQ(sink_.text, "hellworld");
}

TEST_F(TcpStreamTest, HoldsSegmentsLargerThanOneBlock) {
    TcpReassembler::on_syn(dir_, 0);
    const std::string big(9000, 'J');
    segment(11, big);
    EXPECT_GE(pool_.in_use(), 5U);
    segment(1, "0123456789");
    EXPECT_EQ(sink_.text, "0123456789" + big);
    EXPECT_EQ(pool_.in_use(), 0U);
}

TEST(TcpStreamBudgetTest, ExhaustedBudgetEvictsDataFarthestAhead) {
    SegmentPool pool(64);
    TcpReassembler reassembler(pool, 10);
    TcpDirection dir;
    Collect sink;
    TcpStreamStats stats;
    TcpReassembler::on_syn(dir, 0);
    // Junk far ahead fills the budget; the bytes that close the hole still arrive in order.
    reassembler.on_segment(dir, 1000001, bytes("JUNKJUNK"), sink, stats);
    reassembler.on_segment(dir, 11, bytes("AAAAAAAA"), sink, stats);
    EXPECT_EQ(stats.memory_exhausted, 1U);
    EXPECT_EQ(stats.evicted_bytes, 8U);
    EXPECT_EQ(dir.held_bytes, 8U);
    reassembler.on_segment(dir, 1, bytes("0123456789"), sink, stats);
    EXPECT_EQ(sink.text, "0123456789AAAAAAAA");
    EXPECT_EQ(pool.in_use(), 0U);
}

TEST(TcpStreamBudgetTest, SegmentFarthestAheadIsTheOneGivenUp) {
    SegmentPool pool(64);
    TcpReassembler reassembler(pool, 10);
    TcpDirection dir;
    Collect sink;
    TcpStreamStats stats;
    TcpReassembler::on_syn(dir, 0);
    reassembler.on_segment(dir, 11, bytes("AAAAAAAA"), sink, stats);
    reassembler.on_segment(dir, 31, bytes("BBBBBBBB"), sink, stats);
    EXPECT_EQ(stats.evicted_bytes, 8U);
    reassembler.on_segment(dir, 1, bytes("0123456789"), sink, stats);
    EXPECT_EQ(sink.text, "0123456789AAAAAAAA");
}

TEST(TcpStreamBudgetTest, AcknowledgedHoleIsSkippedWhenMemoryRunsOut) {
    SegmentPool pool(64);
    TcpReassembler reassembler(pool, 10);
    TcpDirection dir;
    Collect sink;
    TcpStreamStats stats;
    TcpReassembler::on_syn(dir, 0);
    reassembler.on_segment(dir, 11, bytes("AAAAAAAA"), sink, stats);
    // The receiver acknowledged past the hole: the tap missed bytes the receiver has.
    TcpReassembler::on_ack(dir, 19);
    reassembler.on_segment(dir, 19, bytes("BBBBBBBB"), sink, stats);
    EXPECT_EQ(stats.memory_exhausted, 1U);
    EXPECT_EQ(sink.text, "|AAAAAAAABBBBBBBB");
    EXPECT_EQ(stats.gaps, 1U);
    EXPECT_EQ(stats.gap_bytes, 10U);
    EXPECT_EQ(pool.in_use(), 0U);
}

TEST(TcpStreamBudgetTest, EmptyPoolNeverLosesInOrderData) {
    SegmentPool pool(1);
    TcpReassembler reassembler(pool, 1 << 20);
    TcpDirection dir;
    Collect sink;
    TcpStreamStats stats;
    TcpReassembler::on_syn(dir, 0);
    reassembler.on_segment(dir, 5, bytes("bb"), sink, stats);
    reassembler.on_segment(dir, 9, bytes("cc"), sink, stats);
    EXPECT_EQ(stats.memory_exhausted, 1U);
    EXPECT_EQ(stats.evicted_bytes, 2U);
    reassembler.on_segment(dir, 1, bytes("aaaa"), sink, stats);
    reassembler.flush(dir, sink, stats);
    EXPECT_EQ(sink.text, "aaaabb");
    EXPECT_EQ(pool.in_use(), 0U);
}

TEST(TcpStreamDiscardTest, DiscardFreesHeldBlocks) {
    SegmentPool pool(8);
    TcpReassembler reassembler(pool, 1 << 20);
    TcpDirection dir;
    Collect sink;
    TcpStreamStats stats;
    TcpReassembler::on_syn(dir, 0);
    reassembler.on_segment(dir, 100, bytes("held"), sink, stats);
    reassembler.discard(dir);
    EXPECT_EQ(pool.in_use(), 0U);
    EXPECT_EQ(dir.held_head, kNoBlock);
}

}  // namespace
}  // namespace exfiltap::dataplane
