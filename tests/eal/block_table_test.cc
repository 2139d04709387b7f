#include "dataplane/block_table.h"

#include <arpa/inet.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <rte_eal.h>
#include <rte_lcore.h>
#include <rte_malloc.h>

namespace exfiltap::dataplane {
namespace {

using Addr = std::array<uint8_t, 16>;

Addr v4(uint8_t a, uint8_t b, uint8_t c, uint8_t d) {
    return Addr{a, b, c, d};
}

Addr v6(const char* text) {
    Addr addr{};
    EXPECT_EQ(1, inet_pton(AF_INET6, text, addr.data())) << text;
    return addr;
}

std::unique_ptr<BlockTable> make_table(
        const char* name, uint32_t exact = 1024, uint32_t prefixes = 64, unsigned readers = 1) {
    BlockTableConfig config;
    config.exact_capacity = exact;
    config.prefix_capacity = prefixes;
    config.readers = readers;
    config.name = name;
    std::string error;
    auto table = BlockTable::create(config, &error);
    EXPECT_NE(table, nullptr) << error;
    return table;
}

uint32_t stage(BlockTable& table, uint8_t version, const Addr& addr, uint8_t len, bool allow) {
    Result<uint32_t> slot = table.stage_prefix(version, addr, len, allow);
    EXPECT_TRUE(slot.ok()) << slot.error();
    return slot.ok() ? *slot : UINT32_MAX;
}

uint32_t add(BlockTable& table, uint8_t version, const Addr& addr) {
    Result<uint32_t> slot = table.add_exact(version, addr);
    EXPECT_TRUE(slot.ok()) << slot.error();
    return slot.ok() ? *slot : UINT32_MAX;
}

PrefixCommitStats commit(BlockTable& table) {
    Result<PrefixCommitStats> stats = table.commit_prefixes();
    EXPECT_TRUE(stats.ok()) << stats.error();
    return stats.ok() ? *stats : PrefixCommitStats{};
}

BlockVerdict check(
        BlockTable& table, uint8_t version, const Addr& src, const Addr& dst, unsigned reader = 0) {
    return table.check(reader, version, src.data(), dst.data());
}

size_t heap_allocated() {
    rte_malloc_socket_stats stats{};
    size_t total = 0;
    for (unsigned i = 0; i < rte_socket_count(); ++i) {
        if (rte_malloc_get_socket_stats(rte_socket_id_by_idx(i), &stats) == 0) {
            total += stats.heap_allocsz_bytes;
        }
    }
    return total;
}

constexpr size_t kMiB = 1024 * 1024;
const Addr kOutside = v4(203, 0, 113, 9);

TEST(BlockTableTest, EmptyTablePassesEverything) {
    auto table = make_table("bt_empty");
    ASSERT_NE(table, nullptr);
    EXPECT_TRUE(table->empty());
    EXPECT_EQ(BlockVerdict::Pass, check(*table, 4, v4(10, 0, 0, 1), kOutside));
}

Addr parse(uint8_t version, const char* text) {
    Addr addr{};
    EXPECT_EQ(1, inet_pton(version == 4 ? AF_INET : AF_INET6, text, addr.data())) << text;
    return addr;
}

// Three nested block prefixes; addresses in the narrow one, at the host, in the wide one only,
// and outside all three.
struct LpmCase {
    const char* name;
    uint8_t version;
    const char* wide;
    uint8_t wide_len;
    const char* narrow;
    uint8_t narrow_len;
    const char* host;
    const char* in_narrow;
    const char* in_wide;
    const char* outside;
};

class LongestPrefixTest : public ::testing::TestWithParam<LpmCase> {};

TEST_P(LongestPrefixTest, MostSpecificPrefixCountsTheHit) {
    const LpmCase& c = GetParam();
    auto table = make_table(c.name);
    ASSERT_NE(table, nullptr);
    const uint8_t host_len = c.version == 4 ? 32 : 128;
    const uint32_t wide = stage(*table, c.version, parse(c.version, c.wide), c.wide_len, false);
    const uint32_t narrow =
            stage(*table, c.version, parse(c.version, c.narrow), c.narrow_len, false);
    const uint32_t host = stage(*table, c.version, parse(c.version, c.host), host_len, false);
    commit(*table);

    const Addr outside = parse(c.version, c.outside);
    EXPECT_EQ(BlockVerdict::BlockedPrefix,
            check(*table, c.version, parse(c.version, c.in_narrow), outside));
    EXPECT_EQ(BlockVerdict::BlockedPrefix,
            check(*table, c.version, outside, parse(c.version, c.host)));
    EXPECT_EQ(BlockVerdict::BlockedPrefix,
            check(*table, c.version, parse(c.version, c.in_wide), outside));
    EXPECT_EQ(BlockVerdict::Pass, check(*table, c.version, outside, outside));
    EXPECT_EQ(1u, table->prefix_hits(wide));
    EXPECT_EQ(1u, table->prefix_hits(narrow));
    EXPECT_EQ(1u, table->prefix_hits(host));
}

INSTANTIATE_TEST_SUITE_P(Families, LongestPrefixTest,
        ::testing::Values(LpmCase{"bt_lpm4", 4, "10.0.0.0", 8, "10.20.0.0", 16, "10.20.30.40",
                                  "10.20.1.1", "10.1.1.1", "11.20.1.1"},
                LpmCase{"bt_lpm6", 6, "2001:db8::", 32, "2001:db8:1::", 48, "2001:db8:1::99",
                        "2001:db8:1::5", "2001:db8:2::5", "2001:db9::5"}));

TEST(BlockTableTest, ExactEntriesBlockBothFamilies) {
    auto table = make_table("bt_exact");
    ASSERT_NE(table, nullptr);
    const uint32_t s4 = add(*table, 4, v4(198, 51, 100, 7));
    const uint32_t s6 = add(*table, 6, v6("2001:db8::7"));
    EXPECT_NE(s4, s6);
    EXPECT_EQ(2u, table->exact_count());
    EXPECT_FALSE(table->empty());

    EXPECT_EQ(BlockVerdict::BlockedExact, check(*table, 4, kOutside, v4(198, 51, 100, 7)));
    EXPECT_EQ(BlockVerdict::Pass, check(*table, 4, kOutside, v4(198, 51, 100, 8)));
    EXPECT_EQ(BlockVerdict::BlockedExact, check(*table, 6, v6("2001:db8::7"), v6("2001:db8::1")));
    EXPECT_EQ(BlockVerdict::Pass, check(*table, 6, v6("2001:db8::8"), v6("2001:db8::1")));
    EXPECT_EQ(1u, table->exact_hits(s4));
    EXPECT_EQ(1u, table->exact_hits(s6));
    // Adding again is idempotent.
    EXPECT_EQ(s4, add(*table, 4, v4(198, 51, 100, 7)));
    EXPECT_EQ(2u, table->exact_count());
}

TEST(BlockTableTest, ExactEntryInsideBlockPrefixCountsAsExact) {
    auto table = make_table("bt_xinp");
    ASSERT_NE(table, nullptr);
    const uint32_t prefix = stage(*table, 4, v4(198, 51, 100, 0), 24, false);
    commit(*table);
    const uint32_t exact = add(*table, 4, v4(198, 51, 100, 7));

    EXPECT_EQ(BlockVerdict::BlockedExact, check(*table, 4, v4(198, 51, 100, 7), kOutside));
    EXPECT_EQ(BlockVerdict::BlockedPrefix, check(*table, 4, v4(198, 51, 100, 8), kOutside));
    EXPECT_EQ(1u, table->exact_hits(exact));
    EXPECT_EQ(1u, table->prefix_hits(prefix));
}

TEST(BlockTableTest, AllowedSourceWinsOverBlockedDestination) {
    auto table = make_table("bt_allsrc");
    ASSERT_NE(table, nullptr);
    const uint32_t allow = stage(*table, 4, v4(10, 0, 0, 5), 32, true);
    commit(*table);
    add(*table, 4, kOutside);

    EXPECT_EQ(BlockVerdict::Allowed, check(*table, 4, v4(10, 0, 0, 5), kOutside));
    EXPECT_EQ(BlockVerdict::Allowed, check(*table, 4, kOutside, v4(10, 0, 0, 5)));
    EXPECT_EQ(BlockVerdict::BlockedExact, check(*table, 4, v4(10, 0, 0, 6), kOutside));
    EXPECT_EQ(2u, table->prefix_hits(allow));
}

TEST(BlockTableTest, AllowPrefixOverridesExactBlock) {
    auto table = make_table("bt_allx");
    ASSERT_NE(table, nullptr);
    stage(*table, 6, v6("2001:db8::"), 32, true);
    commit(*table);
    const uint32_t exact = add(*table, 6, v6("2001:db8::66"));

    EXPECT_EQ(BlockVerdict::Allowed, check(*table, 6, v6("2001:db8::66"), v6("2001:db9::1")));
    EXPECT_EQ(0u, table->exact_hits(exact));
}

TEST(BlockTableTest, BlockPrefixInsideAllowPrefixIsShadowed) {
    auto table = make_table("bt_shadow");
    ASSERT_NE(table, nullptr);
    stage(*table, 4, v4(10, 0, 0, 0), 8, true);
    const uint32_t inner = stage(*table, 4, v4(10, 1, 0, 0), 16, false);
    stage(*table, 4, v4(10, 0, 0, 0), 8, false);  // the same prefix as block: shadowed too
    stage(*table, 4, v4(192, 0, 2, 0), 24, false);
    const PrefixCommitStats stats = commit(*table);

    ASSERT_EQ(2u, stats.shadowed.size());
    EXPECT_EQ(2u, stats.v4_routes);
    EXPECT_EQ(BlockVerdict::Allowed, check(*table, 4, v4(10, 1, 2, 3), kOutside));
    EXPECT_EQ(BlockVerdict::BlockedPrefix, check(*table, 4, v4(192, 0, 2, 3), kOutside));
    EXPECT_EQ(0u, table->prefix_hits(inner));
    EXPECT_EQ("10.1.0.0/16 (block)", to_string(stats.shadowed[1]));
}

TEST(BlockTableTest, AllowInsideBlockPrefixWins) {
    auto table = make_table("bt_ainb");
    ASSERT_NE(table, nullptr);
    stage(*table, 4, v4(10, 0, 0, 0), 8, false);
    stage(*table, 4, v4(10, 1, 1, 1), 32, true);
    const PrefixCommitStats stats = commit(*table);

    EXPECT_TRUE(stats.shadowed.empty());
    EXPECT_EQ(BlockVerdict::Allowed, check(*table, 4, v4(10, 1, 1, 1), kOutside));
    EXPECT_EQ(BlockVerdict::BlockedPrefix, check(*table, 4, v4(10, 1, 1, 2), kOutside));
}

TEST(BlockTableTest, MappedIpv6AddressIsTheIpv4Address) {
    auto table = make_table("bt_mapped");
    ASSERT_NE(table, nullptr);
    add(*table, 4, v4(198, 51, 100, 7));
    stage(*table, 4, v4(192, 0, 2, 0), 24, false);
    commit(*table);

    const Addr peer = v6("2001:db8::1");
    EXPECT_EQ(BlockVerdict::BlockedExact, check(*table, 6, v6("::ffff:198.51.100.7"), peer));
    EXPECT_EQ(BlockVerdict::BlockedPrefix, check(*table, 6, v6("::ffff:192.0.2.9"), peer));
    EXPECT_EQ(BlockVerdict::Pass, check(*table, 6, v6("::ffff:192.0.3.9"), peer));
}

TEST(BlockTableTest, RemovedEntriesPass) {
    auto table = make_table("bt_remove");
    ASSERT_NE(table, nullptr);
    add(*table, 4, v4(198, 51, 100, 7));
    stage(*table, 6, v6("2001:db8::"), 32, false);
    commit(*table);

    EXPECT_TRUE(table->remove_exact(4, v4(198, 51, 100, 7)));
    EXPECT_FALSE(table->remove_exact(4, v4(198, 51, 100, 7)));
    EXPECT_TRUE(table->unstage_prefix(6, v6("2001:db8::"), 32, false));
    EXPECT_FALSE(table->unstage_prefix(6, v6("2001:db8::"), 32, true));
    commit(*table);

    EXPECT_EQ(BlockVerdict::Pass, check(*table, 4, v4(198, 51, 100, 7), kOutside));
    EXPECT_EQ(BlockVerdict::Pass, check(*table, 6, v6("2001:db8::1"), v6("2001:db9::1")));
    EXPECT_EQ(0u, table->exact_count());
    EXPECT_EQ(0u, table->prefix_count());
    EXPECT_TRUE(table->empty());
}

TEST(BlockTableTest, ReusedExactSlotStartsAtZeroAfterGracePeriod) {
    auto table = make_table("bt_xreuse", 8);
    ASSERT_NE(table, nullptr);
    std::vector<uint32_t> slots;
    for (uint8_t i = 0; i < 8; ++i) {
        slots.push_back(add(*table, 4, v4(198, 51, 100, i)));
    }
    check(*table, 4, v4(198, 51, 100, 3), kOutside);
    check(*table, 4, v4(198, 51, 100, 3), kOutside);
    EXPECT_EQ(2u, table->exact_hits(slots[3]));

    // A reader that has not passed a quiescent state holds the removed slot.
    table->reader_online(0);
    EXPECT_TRUE(table->remove_exact(4, v4(198, 51, 100, 3)));
    EXPECT_EQ(2u, table->exact_hits(slots[3]));
    EXPECT_FALSE(table->add_exact(4, v4(198, 51, 100, 200)).ok());

    table->quiescent(0);
    const uint32_t reused = add(*table, 4, v4(198, 51, 100, 200));
    table->reader_offline(0);
    EXPECT_EQ(slots[3], reused);
    EXPECT_EQ(0u, table->exact_hits(reused));
}

TEST(BlockTableTest, ReusedPrefixSlotStartsAtZero) {
    auto table = make_table("bt_preuse");
    ASSERT_NE(table, nullptr);
    const uint32_t first = stage(*table, 4, v4(192, 0, 2, 0), 24, false);
    commit(*table);
    check(*table, 4, v4(192, 0, 2, 1), kOutside);
    EXPECT_EQ(1u, table->prefix_hits(first));

    table->unstage_prefix(4, v4(192, 0, 2, 0), 24, false);
    commit(*table);
    const uint32_t second = stage(*table, 4, v4(198, 51, 100, 0), 24, false);
    EXPECT_EQ(first, second);
    EXPECT_EQ(0u, table->prefix_hits(second));
}

TEST(BlockTableTest, HitsAreSummedOverReaders) {
    auto table = make_table("bt_readers", 1024, 64, 3);
    ASSERT_NE(table, nullptr);
    const uint32_t exact = add(*table, 4, v4(198, 51, 100, 7));
    const uint32_t prefix = stage(*table, 6, v6("2001:db8::"), 32, false);
    commit(*table);
    for (unsigned reader = 0; reader < 3; ++reader) {
        for (unsigned i = 0; i <= reader; ++i) {
            check(*table, 4, v4(198, 51, 100, 7), kOutside, reader);
            check(*table, 6, v6("2001:db8::1"), v6("2001:db9::1"), reader);
        }
    }
    EXPECT_EQ(6u, table->exact_hits(exact));
    EXPECT_EQ(6u, table->prefix_hits(prefix));
}

TEST(BlockTableTest, FullTablesReturnErrors) {
    auto table = make_table("bt_full", 8, 2);
    ASSERT_NE(table, nullptr);
    for (uint8_t i = 0; i < 8; ++i) {
        add(*table, 4, v4(198, 51, 100, i));
    }
    Result<uint32_t> extra = table->add_exact(4, v4(198, 51, 100, 100));
    ASSERT_FALSE(extra.ok());
    EXPECT_NE(std::string::npos, extra.error().find("full"));
    EXPECT_TRUE(table->add_exact(4, v4(198, 51, 100, 1)).ok());  // present: still fine

    stage(*table, 4, v4(192, 0, 2, 0), 24, false);
    stage(*table, 4, v4(192, 0, 3, 0), 24, true);
    Result<uint32_t> third = table->stage_prefix(4, v4(192, 0, 4, 0), 24, false);
    ASSERT_FALSE(third.ok());
    EXPECT_NE(std::string::npos, third.error().find("full"));
}

TEST(BlockTableTest, PrefixWithHostBitsIsRefused) {
    auto table = make_table("bt_hostbits");
    ASSERT_NE(table, nullptr);
    Result<uint32_t> slot = table->stage_prefix(4, v4(10, 1, 2, 3), 8, false);
    ASSERT_FALSE(slot.ok());
    EXPECT_NE(std::string::npos, slot.error().find("10.0.0.0/8")) << slot.error();
    EXPECT_FALSE(table->stage_prefix(4, v4(10, 0, 0, 0), 33, false).ok());
    EXPECT_FALSE(table->stage_prefix(5, v4(10, 0, 0, 0), 8, false).ok());
}

TEST(BlockTableTest, BurstGivesTheSameVerdictsAsSingleChecks) {
    auto table = make_table("bt_burst", 1024, 64, 2);
    ASSERT_NE(table, nullptr);
    add(*table, 4, v4(198, 51, 100, 7));
    add(*table, 6, v6("2001:db8::7"));
    stage(*table, 4, v4(10, 0, 0, 0), 8, false);
    stage(*table, 4, v4(10, 1, 0, 0), 16, true);
    stage(*table, 6, v6("2001:db8:1::"), 48, false);
    commit(*table);

    const std::vector<std::pair<Addr, Addr>> v4_pairs = {{v4(198, 51, 100, 7), kOutside},
            {v4(10, 2, 0, 1), kOutside}, {v4(10, 1, 0, 1), v4(198, 51, 100, 7)},
            {kOutside, kOutside}};
    const std::vector<std::pair<Addr, Addr>> v6_pairs = {{v6("2001:db8::7"), v6("::1")},
            {v6("2001:db8:1::1"), v6("::1")}, {v6("::ffff:10.2.0.1"), v6("::1")},
            {v6("2001:db8::8"), v6("::1")}};
    std::vector<uint8_t> versions;
    std::vector<const uint8_t*> srcs;
    std::vector<const uint8_t*> dsts;
    std::vector<BlockVerdict> expected;
    for (const auto& [src, dst] : v4_pairs) {
        versions.push_back(4);
        srcs.push_back(src.data());
        dsts.push_back(dst.data());
        expected.push_back(check(*table, 4, src, dst, 1));
    }
    for (const auto& [src, dst] : v6_pairs) {
        versions.push_back(6);
        srcs.push_back(src.data());
        dsts.push_back(dst.data());
        expected.push_back(check(*table, 6, src, dst, 1));
    }
    versions.push_back(0);  // not IP
    srcs.push_back(kOutside.data());
    dsts.push_back(kOutside.data());
    expected.push_back(BlockVerdict::Pass);

    std::vector<BlockVerdict> got(versions.size());
    table->check_burst(0, static_cast<unsigned>(versions.size()), versions.data(), srcs.data(),
            dsts.data(), got.data());
    EXPECT_EQ(expected, got);
    const std::vector<BlockVerdict> kinds = {BlockVerdict::BlockedExact,
            BlockVerdict::BlockedPrefix, BlockVerdict::Allowed, BlockVerdict::Pass,
            BlockVerdict::BlockedExact, BlockVerdict::BlockedPrefix, BlockVerdict::BlockedPrefix,
            BlockVerdict::Pass, BlockVerdict::Pass};
    EXPECT_EQ(kinds, got);
}

TEST(BlockTableTest, CommitWithoutPrefixesFreesTheFibs) {
    auto table = make_table("bt_free");
    ASSERT_NE(table, nullptr);
    const size_t base = heap_allocated();

    stage(*table, 4, v4(192, 0, 2, 0), 24, false);
    commit(*table);
    const size_t with_v4 = heap_allocated();
    EXPECT_GE(with_v4, base + 32 * kMiB);  // DIR24_8 with 2-byte next hops
    EXPECT_LT(with_v4, base + 40 * kMiB);  // and no IPv6 fib for no IPv6 prefix

    stage(*table, 6, v6("2001:db8::"), 32, false);
    commit(*table);
    EXPECT_GE(heap_allocated(), with_v4 + 32 * kMiB);

    table->unstage_prefix(4, v4(192, 0, 2, 0), 24, false);
    table->unstage_prefix(6, v6("2001:db8::"), 32, false);
    commit(*table);
    EXPECT_LT(heap_allocated(), base + kMiB);
    EXPECT_TRUE(table->empty());
}

TEST(BlockTableTest, ReaderRunsWhileEntriesChange) {
    auto table = make_table("bt_conc", 1u << 15, 64, 2);
    ASSERT_NE(table, nullptr);
    const Addr always = v4(198, 51, 100, 1);
    const Addr never = v4(203, 0, 113, 1);
    add(*table, 4, always);

    std::atomic<bool> stop{false};
    std::atomic<uint64_t> wrong{0};
    std::atomic<uint64_t> loops{0};
    std::thread reader([&] {
        table->reader_online(1);
        uint64_t n = 0;
        uint64_t bad = 0;
        while (!stop.load(std::memory_order_relaxed)) {
            const Addr churn = v4(10, static_cast<uint8_t>(n >> 8), static_cast<uint8_t>(n), 1);
            bad += check(*table, 4, always, never, 1) != BlockVerdict::BlockedExact ? 1 : 0;
            bad += check(*table, 4, never, never, 1) != BlockVerdict::Pass ? 1 : 0;
            check(*table, 4, churn, never, 1);
            table->quiescent(1);
            ++n;
        }
        table->reader_offline(1);
        wrong.store(bad);
        loops.store(n);
    });

    uint64_t invisible = 0;
    for (unsigned round = 0; round < 4; ++round) {
        for (unsigned i = 0; i < 5000; ++i) {
            const Addr addr = v4(10, static_cast<uint8_t>(i >> 8), static_cast<uint8_t>(i), 1);
            add(*table, 4, addr);
            invisible += check(*table, 4, addr, never, 0) != BlockVerdict::BlockedExact ? 1 : 0;
        }
        // A prefix swap while the reader runs: the grace period needs its quiescent reports.
        stage(*table, 4, v4(172, 16, static_cast<uint8_t>(round), 0), 24, false);
        commit(*table);
        for (unsigned i = 0; i < 5000; ++i) {
            table->remove_exact(
                    4, v4(10, static_cast<uint8_t>(i >> 8), static_cast<uint8_t>(i), 1));
        }
    }
    stop.store(true);
    reader.join();

    EXPECT_EQ(0u, invisible);
    EXPECT_EQ(0u, wrong.load());
    EXPECT_GT(loops.load(), 0u);
    EXPECT_EQ(1u, table->exact_count());
    EXPECT_EQ(BlockVerdict::BlockedPrefix, check(*table, 4, v4(172, 16, 3, 9), never));
}

// The EAL with room for two generations of both fibs (32 MiB each) and the counters.
class BlockTableEal : public ::testing::Environment {
public:
    void SetUp() override {
        std::string prefix = "exfiltap_bt_" + std::to_string(getpid());
        std::vector<std::string> args = {"block_table_test", "--no-huge", "--no-pci", "--no-shconf",
                "--no-telemetry", "-m", "512", "-l", "0", "--log-level", "lib.eal:error",
                "--file-prefix", prefix};
        std::vector<char*> argv;
        std::transform(args.begin(), args.end(), std::back_inserter(argv),
                [](std::string& s) { return s.data(); });
        ASSERT_GE(rte_eal_init(static_cast<int>(argv.size()), argv.data()), 0);
    }
    void TearDown() override { rte_eal_cleanup(); }
};

// gtest_main runs the tests; the EAL comes up before the first one.
[[maybe_unused]] ::testing::Environment* const kEal =
        ::testing::AddGlobalTestEnvironment(new BlockTableEal());

}  // namespace
}  // namespace exfiltap::dataplane
