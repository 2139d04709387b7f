#include "detectors/inflate_pool.h"

#include <zlib.h>

#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "detectors/app_event.h"

namespace exfiltap::detectors {
namespace {

using Bytes = std::vector<uint8_t>;

// Compresses with zlib: window_bits 15 + 16 gzip, 15 zlib, -15 raw deflate.
Bytes compress(const Bytes& in, int window_bits) {
    z_stream z{};
    EXPECT_EQ(
            deflateInit2(&z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, window_bits, 8, Z_DEFAULT_STRATEGY),
            Z_OK);
    Bytes out(deflateBound(&z, in.size()) + 64);
    z.next_in = const_cast<Bytef*>(in.data());
    z.avail_in = static_cast<uInt>(in.size());
    z.next_out = out.data();
    z.avail_out = static_cast<uInt>(out.size());
    EXPECT_EQ(deflate(&z, Z_FINISH), Z_STREAM_END);
    out.resize(z.total_out);
    deflateEnd(&z);
    return out;
}

Bytes text_bytes(std::string_view s) {
    return Bytes(s.begin(), s.end());
}

// Lorem-like text with a compression ratio far below 100:1.
Bytes varied_text(size_t size) {
    Bytes out;
    out.reserve(size);
    uint32_t x = 12345;
    static constexpr std::string_view kWords[] = {"alpha ", "bravo ", "charlie ", "delta ", "echo ",
            "foxtrot ", "golf ", "hotel ", "india ", "juliet ", "kilo ", "lima "};
    while (out.size() < size) {
        x = x * 1103515245U + 12345U;
        const std::string_view w = kWords[(x >> 16) % 12];
        out.insert(out.end(), w.begin(), w.end());
        if ((x >> 8) % 7 == 0) {
            const std::string n = std::to_string(x % 100000);
            out.insert(out.end(), n.begin(), n.end());
        }
    }
    out.resize(size);
    return out;
}

struct Collector {
    Bytes data;
    size_t calls = 0;
    size_t largest = 0;
    static void take(void* context, std::span<const uint8_t> piece) noexcept {
        auto* self = static_cast<Collector*>(context);
        self->data.insert(self->data.end(), piece.begin(), piece.end());
        ++self->calls;
        self->largest = std::max(self->largest, piece.size());
    }
};

class CollectingSink : public ObjectSink {
public:
    void object_begin(ObjectKind, AppDir) noexcept override {}
    void object_data(std::span<const uint8_t> d) noexcept override {
        data.insert(data.end(), d.begin(), d.end());
    }
    void object_end() noexcept override {}
    Bytes data;
};

TEST(InflatePoolTest, GzipDecodesExactly) {
    InflatePool pool(1);
    Inflater inflater;
    ASSERT_TRUE(inflater.begin(&pool, InflateCoding::Gzip));
    Collector out;
    const Bytes gz = compress(text_bytes("name=john dauny mladshiy"), 15 + 16);
    EXPECT_EQ(inflater.feed(gz, &Collector::take, &out), InflateStatus::Finished);
    EXPECT_EQ(std::string(out.data.begin(), out.data.end()), "name=john dauny mladshiy");
    EXPECT_EQ(inflater.output_bytes(), 24U);
    EXPECT_EQ(inflater.input_bytes(), gz.size());
}

TEST(InflatePoolTest, DeflateAcceptsZlibWrappedStream) {
    InflatePool pool(1);
    Inflater inflater;
    ASSERT_TRUE(inflater.begin(&pool, InflateCoding::Deflate));
    CollectingSink sink;
    EXPECT_EQ(inflater.feed(compress(text_bytes("zlib wrapped body"), 15), sink),
            InflateStatus::Finished);
    EXPECT_EQ(std::string(sink.data.begin(), sink.data.end()), "zlib wrapped body");
}

TEST(InflatePoolTest, DeflateAcceptsRawStream) {
    InflatePool pool(1);
    Inflater inflater;
    ASSERT_TRUE(inflater.begin(&pool, InflateCoding::Deflate));
    CollectingSink sink;
    EXPECT_EQ(inflater.feed(compress(text_bytes("raw deflate body"), -15), sink),
            InflateStatus::Finished);
    EXPECT_EQ(std::string(sink.data.begin(), sink.data.end()), "raw deflate body");
}

TEST(InflatePoolTest, OneByteFeedingGivesSameOutput) {
    const Bytes plain = varied_text(20000);
    const Bytes zz = compress(plain, 15);
    InflatePool pool(1);
    Inflater inflater;
    ASSERT_TRUE(inflater.begin(&pool, InflateCoding::Deflate));
    Collector out;
    InflateStatus status = InflateStatus::Ok;
    for (uint8_t b : zz) {
        status = inflater.feed(std::span<const uint8_t>(&b, 1), &Collector::take, &out);
    }
    EXPECT_EQ(status, InflateStatus::Finished);
    EXPECT_EQ(out.data, plain);
}

TEST(InflatePoolTest, OutputComesInPiecesOfAtMostChunkBytes) {
    const Bytes plain = varied_text(100000);
    InflatePool pool(1);
    Inflater inflater;
    ASSERT_TRUE(inflater.begin(&pool, InflateCoding::Gzip));
    Collector out;
    EXPECT_EQ(inflater.feed(compress(plain, 31), &Collector::take, &out), InflateStatus::Finished);
    EXPECT_EQ(out.data, plain);
    EXPECT_EQ(out.largest, kInflateChunkBytes);
    EXPECT_GE(out.calls, 100000 / kInflateChunkBytes);
}

TEST(InflatePoolTest, ExhaustedPoolRefusesAndCounts) {
    InflatePool pool(2);
    Inflater a;
    Inflater b;
    Inflater c;
    EXPECT_TRUE(a.begin(&pool, InflateCoding::Gzip));
    EXPECT_TRUE(b.begin(&pool, InflateCoding::Deflate));
    EXPECT_FALSE(c.begin(&pool, InflateCoding::Gzip));
    EXPECT_EQ(pool.exhausted(), 1U);
    EXPECT_EQ(pool.in_use(), 2U);
    a.end();
    EXPECT_TRUE(c.begin(&pool, InflateCoding::Gzip));
    EXPECT_EQ(pool.in_use(), 2U);
}

TEST(InflatePoolTest, NullPoolRefuses) {
    Inflater inflater;
    EXPECT_FALSE(inflater.begin(nullptr, InflateCoding::Gzip));
    EXPECT_FALSE(inflater.active());
}

TEST(InflatePoolTest, HandleIsOnePointer) {
    EXPECT_EQ(sizeof(Inflater), sizeof(void*));
}

TEST(InflatePoolTest, DestructorReturnsSlot) {
    InflatePool pool(1);
    {
        Inflater inflater;
        ASSERT_TRUE(inflater.begin(&pool, InflateCoding::Gzip));
        EXPECT_EQ(pool.in_use(), 1U);
    }
    EXPECT_EQ(pool.in_use(), 0U);
}

TEST(InflatePoolTest, ArenaHoldsStateAndFullWindow) {
    // 200 KB of varied text fills the 32 KiB window; zlib's allocations all come from the
    // slot's arena (a zlib that called malloc would leave the high-water mark at 0).
    InflatePool pool(1);
    Inflater inflater;
    ASSERT_TRUE(inflater.begin(&pool, InflateCoding::Gzip));
    Collector out;
    const Bytes plain = varied_text(200000);
    EXPECT_EQ(inflater.feed(compress(plain, 31), &Collector::take, &out), InflateStatus::Finished);
    EXPECT_EQ(out.data, plain);
    EXPECT_GT(pool.arena_high_water(), 32768U + 7000U);
    EXPECT_LE(pool.arena_high_water(), InflatePool::kArenaBytes);
    std::printf("[ measured ] arena high water %zu of %zu bytes, slot %zu bytes\n",
            pool.arena_high_water(), InflatePool::kArenaBytes, InflatePool::slot_bytes());
}

TEST(InflatePoolTest, SlotIsReusableAfterEnd) {
    InflatePool pool(1);
    for (int round = 0; round < 3; ++round) {
        Inflater inflater;
        ASSERT_TRUE(inflater.begin(&pool, InflateCoding::Deflate));
        CollectingSink sink;
        EXPECT_EQ(inflater.feed(compress(text_bytes("again"), round == 1 ? -15 : 15), sink),
                InflateStatus::Finished);
        EXPECT_EQ(std::string(sink.data.begin(), sink.data.end()), "again");
    }
}

TEST(InflatePoolTest, OutputCapStopsAtOneMebibyte) {
    const Bytes plain = varied_text(3 << 20);
    const Bytes gz = compress(plain, 31);
    ASSERT_LT(plain.size() / gz.size(), kInflateMaxRatio);
    InflatePool pool(1);
    Inflater inflater;
    ASSERT_TRUE(inflater.begin(&pool, InflateCoding::Gzip));
    Collector out;
    EXPECT_EQ(inflater.feed(gz, &Collector::take, &out), InflateStatus::Capped);
    EXPECT_EQ(out.data.size(), kInflateMaxOutputBytes);
    EXPECT_TRUE(std::equal(out.data.begin(), out.data.end(), plain.begin()));
    EXPECT_EQ(pool.capped(), 1U);
    // Later input is ignored.
    EXPECT_EQ(inflater.feed(gz, &Collector::take, &out), InflateStatus::Capped);
    EXPECT_EQ(out.data.size(), kInflateMaxOutputBytes);
}

TEST(InflatePoolTest, RatioCapStopsZeroBomb) {
    const Bytes zeros(50U << 20, 0);
    const Bytes gz = compress(zeros, 31);
    InflatePool pool(1);
    Inflater inflater;
    ASSERT_TRUE(inflater.begin(&pool, InflateCoding::Gzip));
    Collector out;
    EXPECT_EQ(inflater.feed(gz, &Collector::take, &out), InflateStatus::Capped);
    EXPECT_GT(out.data.size(), kInflateRatioFloorBytes);
    EXPECT_LE(out.data.size(), kInflateRatioFloorBytes + kInflateChunkBytes);
    EXPECT_EQ(pool.capped(), 1U);
}

TEST(InflatePoolTest, CorruptStreamFails) {
    InflatePool pool(1);
    Inflater inflater;
    ASSERT_TRUE(inflater.begin(&pool, InflateCoding::Gzip));
    Collector out;
    // A valid gzip header, then a deflate block of the reserved type 3.
    const Bytes junk = {0x1f, 0x8b, 0x08, 0x00, 0, 0, 0, 0, 0x00, 0x03, 0x07, 0xff, 0xff};
    EXPECT_EQ(inflater.feed(junk, &Collector::take, &out), InflateStatus::Failed);
    EXPECT_EQ(pool.failed(), 1U);
}

TEST(InflatePoolTest, ThroughputIsMeasured) {
    const Bytes plain = varied_text(1000000);
    const Bytes gz = compress(plain, 31);
    InflatePool pool(1);
    Collector sizes;
    uint64_t total = 0;
    const auto start = std::chrono::steady_clock::now();
    constexpr int kRounds = 40;
    for (int i = 0; i < kRounds; ++i) {
        Inflater inflater;
        ASSERT_TRUE(inflater.begin(&pool, InflateCoding::Gzip));
        ASSERT_EQ(inflater.feed(
                          gz, [](void*, std::span<const uint8_t>) noexcept {}, nullptr),
                InflateStatus::Finished);
        total += inflater.output_bytes();
    }
    const double seconds =
            std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    EXPECT_EQ(total, uint64_t{kRounds} * plain.size());
    std::printf("[ measured ] inflate %.1f MB/s of output (%.1f:1, %d x %zu bytes)\n",
            static_cast<double>(total) / seconds / 1e6,
            static_cast<double>(plain.size()) / static_cast<double>(gz.size()), kRounds,
            plain.size());
}

}  // namespace
}  // namespace exfiltap::detectors
