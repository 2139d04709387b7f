#include "dataplane/flow_table.h"

#include <algorithm>
#include <iterator>
#include <list>
#include <random>
#include <set>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "tests/eal/eal_env.h"

namespace exfiltap::dataplane {
namespace {

constexpr uint64_t kSecond = 1000000000ULL;

class Recorder final : public FlowEndHandler {
public:
    void on_flow_end(Flow& flow, EvictReason reason) noexcept override {
        ended.push_back(flow.key.port_hi);
        reasons.push_back(reason);
    }
    std::vector<uint16_t> ended;
    std::vector<EvictReason> reasons;
};

PacketInfo tcp_packet(uint8_t src_last, uint16_t sport, uint8_t dst_last, uint16_t dport) {
    PacketInfo info;
    info.ip_version = 4;
    info.l4_proto = kProtoTcp;
    info.src = {10, 0, 0, src_last};
    info.dst = {198, 51, 100, dst_last};
    info.src_port = sport;
    info.dst_port = dport;
    return info;
}

FlowKey key_for_port(uint16_t port) {
    bool lo = false;
    return make_flow_key(tcp_packet(1, 1000, 2, port), true, lo);
}

std::unique_ptr<FlowTable> make_table(Recorder& rec, uint32_t capacity, const char* name) {
    FlowTableConfig config;
    config.capacity = capacity;
    config.timeout_ns = {60 * kSecond, 5 * kSecond, 30 * kSecond, 30 * kSecond};
    const char* error = nullptr;
    auto table = FlowTable::create(name, config, rec, &error);
    EXPECT_NE(table, nullptr) << (error != nullptr ? error : "");
    return table;
}

TEST(FlowKeyTest, BothDirectionsGiveTheSameKey) {
    bool fwd_lo = false;
    bool rev_lo = false;
    const FlowKey fwd = make_flow_key(tcp_packet(7, 40000, 9, 443), true, fwd_lo);
    PacketInfo reverse = tcp_packet(7, 40000, 9, 443);
    std::swap(reverse.src, reverse.dst);
    std::swap(reverse.src_port, reverse.dst_port);
    const FlowKey rev = make_flow_key(reverse, true, rev_lo);
    EXPECT_EQ(0, memcmp(&fwd, &rev, sizeof(FlowKey)));
    EXPECT_NE(fwd_lo, rev_lo);
}

TEST(FlowKeyTest, VlanIsPartOfTheKeyUnlessConfiguredOut) {
    PacketInfo a = tcp_packet(1, 1, 2, 2);
    PacketInfo b = a;
    b.vlan_count = 1;
    b.vlan[0] = 42;
    bool lo = false;
    const FlowKey with_a = make_flow_key(a, true, lo);
    const FlowKey with_b = make_flow_key(b, true, lo);
    EXPECT_NE(0, memcmp(&with_a, &with_b, sizeof(FlowKey)));
    const FlowKey without_a = make_flow_key(a, false, lo);
    const FlowKey without_b = make_flow_key(b, false, lo);
    EXPECT_EQ(0, memcmp(&without_a, &without_b, sizeof(FlowKey)));
}

TEST(FlowTableTest, FindsTheFlowItCreated) {
    Recorder rec;
    auto table = make_table(rec, 64, "ft_find");
    bool created = false;
    const uint32_t a = table->lookup_or_create(key_for_port(80), kSecond, created);
    EXPECT_TRUE(created);
    const uint32_t b = table->lookup_or_create(key_for_port(80), 2 * kSecond, created);
    EXPECT_FALSE(created);
    EXPECT_EQ(a, b);
    EXPECT_EQ(table->active(), 1U);
}

TEST(FlowTableTest, EvictsOldestWhenFull) {
    Recorder rec;
    auto table = make_table(rec, 8, "ft_full");
    bool created = false;
    for (uint16_t port = 1; port <= 8; ++port) {
        const uint32_t idx = table->lookup_or_create(key_for_port(port), port * kSecond, created);
        table->touch(idx, port * kSecond, TimeoutClass::TcpOpen);
    }
    // Port 1 becomes the most recent; port 2 is now the oldest.
    const uint32_t one = table->lookup_or_create(key_for_port(1), 20 * kSecond, created);
    table->touch(one, 20 * kSecond, TimeoutClass::TcpOpen);
    table->lookup_or_create(key_for_port(100), 21 * kSecond, created);
    EXPECT_TRUE(created);
    ASSERT_EQ(rec.ended.size(), 1U);
    EXPECT_EQ(rec.ended[0], 2);
    EXPECT_EQ(rec.reasons[0], EvictReason::TableFull);
    EXPECT_EQ(table->active(), 8U);
    EXPECT_EQ(table->evicted_full(), 1U);
}

TEST(FlowTableTest, ClosedFlowsAreEvictedFirst) {
    Recorder rec;
    auto table = make_table(rec, 4, "ft_closed");
    bool created = false;
    for (uint16_t port = 1; port <= 4; ++port) {
        const uint32_t idx = table->lookup_or_create(key_for_port(port), port * kSecond, created);
        table->touch(
                idx, port * kSecond, port == 3 ? TimeoutClass::TcpClosed : TimeoutClass::TcpOpen);
    }
    table->lookup_or_create(key_for_port(9), 10 * kSecond, created);
    ASSERT_EQ(rec.ended.size(), 1U);
    EXPECT_EQ(rec.ended[0], 3);
}

TEST(FlowTableTest, ExpiresIdleFlowsByTheirClassTimeout) {
    Recorder rec;
    auto table = make_table(rec, 64, "ft_expire");
    bool created = false;
    const uint32_t open = table->lookup_or_create(key_for_port(1), 0, created);
    table->touch(open, 0, TimeoutClass::TcpOpen);
    const uint32_t closed = table->lookup_or_create(key_for_port(2), 0, created);
    table->touch(closed, 0, TimeoutClass::TcpClosed);
    EXPECT_EQ(table->expire(6 * kSecond, 100), 1U);
    ASSERT_EQ(rec.ended.size(), 1U);
    EXPECT_EQ(rec.ended[0], 2);
    EXPECT_EQ(table->expire(59 * kSecond, 100), 0U);
    EXPECT_EQ(table->expire(61 * kSecond, 100), 1U);
    EXPECT_EQ(table->active(), 0U);
    EXPECT_EQ(rec.reasons[1], EvictReason::Timeout);
}

TEST(FlowTableTest, ExpiryIsBoundedPerCall) {
    Recorder rec;
    auto table = make_table(rec, 256, "ft_bound");
    bool created = false;
    for (uint16_t port = 1; port <= 100; ++port) {
        const uint32_t idx = table->lookup_or_create(key_for_port(port), 0, created);
        table->touch(idx, 0, TimeoutClass::Udp);
    }
    EXPECT_EQ(table->expire(1000 * kSecond, 64), 64U);
    EXPECT_EQ(table->expire(1000 * kSecond, 64), 36U);
}

TEST(FlowTableTest, ClearEndsEveryFlow) {
    Recorder rec;
    auto table = make_table(rec, 64, "ft_clear");
    bool created = false;
    for (uint16_t port = 1; port <= 10; ++port) {
        table->lookup_or_create(key_for_port(port), 0, created);
    }
    table->clear(EvictReason::Shutdown);
    EXPECT_EQ(rec.ended.size(), 10U);
    EXPECT_EQ(table->active(), 0U);
    // Slots are reusable after a clear.
    table->lookup_or_create(key_for_port(1), 0, created);
    EXPECT_TRUE(created);
}

// Distinct IPv4 TCP keys, numbered.
FlowKey numbered_key(uint32_t i) {
    FlowKey k;
    k.addr_lo = {10, static_cast<uint8_t>(i >> 16), static_cast<uint8_t>(i >> 8),
            static_cast<uint8_t>(i)};
    k.addr_hi = {203, 0, 113, 7};
    k.port_lo = static_cast<uint16_t>(1024 + (i >> 24));
    k.port_hi = 443;
    k.proto = kProtoTcp;
    k.ip_version = 4;
    return k;
}

// The number back from a numbered key.
uint32_t number_of(const FlowKey& k) {
    return (uint32_t{k.addr_lo[1]} << 16) | (uint32_t{k.addr_lo[2]} << 8) | k.addr_lo[3]
            | (uint32_t{static_cast<uint16_t>(k.port_lo - 1024)} << 24);
}

// Remembers which numbered keys left the table.
class KeyTracker final : public FlowEndHandler {
public:
    void on_flow_end(Flow& flow, EvictReason reason) noexcept override {
        ended.insert(number_of(flow.key));
        if (reason == EvictReason::TableFull) {
            ++evicted;
        }
    }
    std::set<uint32_t> ended;
    uint64_t evicted = 0;
};

std::unique_ptr<FlowTable> make_tracked_table(KeyTracker& tracker, uint32_t capacity) {
    FlowTableConfig config;
    config.capacity = capacity;
    config.timeout_ns.fill(UINT64_MAX / 4);
    const char* error = nullptr;
    auto table = FlowTable::create(
            ("ft_idx_" + std::to_string(capacity)).c_str(), config, tracker, &error);
    EXPECT_NE(table, nullptr) << (error != nullptr ? error : "");
    return table;
}

// Looks every numbered key of `live` up in bursts: each must be at its index; and every key
// of `absent` must be missing.
void expect_index_matches(FlowTable& table, const std::unordered_map<uint32_t, uint32_t>& live,
        const std::vector<uint32_t>& absent) {
    std::vector<std::pair<uint32_t, int32_t>> wanted;
    for (const auto& [number, index] : live) {
        wanted.emplace_back(number, static_cast<int32_t>(index));
    }
    for (const uint32_t number : absent) {
        if (live.count(number) == 0) {
            wanted.emplace_back(number, -1);
        }
    }
    constexpr uint32_t kBurst = FlowTable::kBurstKeys;
    for (size_t start = 0; start < wanted.size(); start += kBurst) {
        const auto n = static_cast<uint32_t>(std::min<size_t>(kBurst, wanted.size() - start));
        std::array<FlowKey, kBurst> keys{};
        std::array<const FlowKey*, kBurst> ptrs{};
        std::array<uint32_t, kBurst> sigs{};
        std::array<int32_t, kBurst> positions{};
        for (uint32_t k = 0; k < n; ++k) {
            keys[k] = numbered_key(wanted[start + k].first);
            ptrs[k] = &keys[k];
        }
        table.lookup_bulk(ptrs.data(), n, sigs.data(), positions.data());
        for (uint32_t k = 0; k < n; ++k) {
            const int32_t expected = wanted[start + k].second;
            if (expected >= 0) {
                ASSERT_EQ(positions[k], expected) << "key " << wanted[start + k].first;
            } else {
                ASSERT_LT(positions[k], 0) << "key " << wanted[start + k].first;
            }
        }
    }
}

TEST(FlowTableIndexTest, EveryLiveKeyStaysFindableUnderChurn) {
    KeyTracker tracker;
    constexpr uint32_t kCapacity = 1000;  // not a power of two
    auto table = make_tracked_table(tracker, kCapacity);
    std::mt19937 rng(6);
    std::unordered_map<uint32_t, uint32_t> live;
    std::vector<uint32_t> universe;
    for (uint32_t i = 0; i < 3000; ++i) {
        universe.push_back(i);
    }
    bool created = false;
    uint64_t now = 1;
    for (uint32_t round = 0; round < 100; ++round) {
        for (uint32_t op = 0; op < 2000; ++op) {
            const uint32_t number = universe[rng() % universe.size()];
            if (rng() % 3 == 0 && live.count(number) != 0) {
                table->end(live[number], EvictReason::Timeout);
            } else {
                const uint32_t index =
                        table->lookup_or_create(numbered_key(number), ++now, created);
                ASSERT_NE(index, kNoFlow);
                if (!created) {
                    ASSERT_EQ(index, live.at(number));
                }
                live[number] = index;
            }
            for (const uint32_t gone : tracker.ended) {
                live.erase(gone);
            }
            tracker.ended.clear();
        }
        ASSERT_EQ(table->active(), live.size());
        expect_index_matches(*table, live, universe);
    }
    EXPECT_GT(tracker.evicted, 0U);
    EXPECT_EQ(tracker.evicted, table->evicted_full());
    // Churn left no tombstones behind: probes stay a few buckets long.
    EXPECT_LE(table->max_probe(), 16U);
}

TEST(FlowTableIndexTest, KeysWithTheSameTagAreAllFound) {
    // 64 keys whose hashes share their low 16 bits (the tag) fill a table of 64 flows
    // (11 buckets of 10): buckets overflow into their neighbours, and every lookup of a
    // bucket meets tag matches that are other keys.
    KeyTracker tracker;
    auto table = make_tracked_table(tracker, 64);
    std::vector<uint32_t> same_tag;
    for (uint32_t i = 0; same_tag.size() < 64; ++i) {
        if ((table->hash(numbered_key(i)) & 0xffffU) == 0x1234U) {
            same_tag.push_back(i);
        }
    }
    std::unordered_map<uint32_t, uint32_t> live;
    bool created = false;
    for (const uint32_t number : same_tag) {
        live[number] = table->lookup_or_create(numbered_key(number), 1, created);
        ASSERT_TRUE(created);
    }
    expect_index_matches(*table, live, {});
    // Every other key ends; the rest stay findable, and the ended ones come back.
    std::vector<uint32_t> ended;
    for (size_t i = 0; i < same_tag.size(); i += 2) {
        table->end(live.at(same_tag[i]), EvictReason::Timeout);
        live.erase(same_tag[i]);
        ended.push_back(same_tag[i]);
    }
    expect_index_matches(*table, live, ended);
    for (const uint32_t number : ended) {
        live[number] = table->lookup_or_create(numbered_key(number), 2, created);
        ASSERT_TRUE(created);
    }
    expect_index_matches(*table, live, {});
    EXPECT_EQ(table->evicted_full(), 0U);
}

TEST(FlowTableIndexTest, TableOfOneFlowEvictsForEachNewKey) {
    KeyTracker tracker;
    auto table = make_tracked_table(tracker, 1);
    bool created = false;
    EXPECT_EQ(table->lookup_or_create(numbered_key(1), 1, created), 0U);
    EXPECT_EQ(table->lookup_or_create(numbered_key(2), 2, created), 0U);
    EXPECT_TRUE(created);
    EXPECT_EQ(table->lookup_or_create(numbered_key(2), 3, created), 0U);
    EXPECT_FALSE(created);
    EXPECT_EQ(table->evicted_full(), 1U);
    EXPECT_EQ(tracker.ended, std::set<uint32_t>{1});
    EXPECT_EQ(table->active(), 1U);
}

TEST(FlowTableIndexTest, LargeTableHoldsItsCapacityAndThenEvicts) {
    KeyTracker tracker;
    constexpr uint32_t kCapacity = 300001;
    auto table = make_tracked_table(tracker, kCapacity);
    // One 64-byte bucket per 6 flows: the flow array and the index, nothing else.
    EXPECT_EQ(table->buckets(), (kCapacity + 5) / 6);
    EXPECT_EQ(table->memory_bytes(), uint64_t{kCapacity} * sizeof(Flow) + 64ULL * table->buckets());
    std::unordered_map<uint32_t, uint32_t> live;
    bool created = false;
    for (uint32_t i = 0; i < kCapacity; ++i) {
        const uint32_t index = table->lookup_or_create(numbered_key(i), i, created);
        ASSERT_TRUE(created);
        ASSERT_LT(index, kCapacity);
        live[i] = index;
    }
    EXPECT_EQ(table->evicted_full(), 0U);
    expect_index_matches(*table, live, {kCapacity, kCapacity + 1});
    // Full: the next key takes the oldest flow's place.
    const uint32_t index = table->lookup_or_create(numbered_key(kCapacity), kCapacity, created);
    EXPECT_TRUE(created);
    EXPECT_EQ(index, live.at(0));
    EXPECT_EQ(tracker.ended, std::set<uint32_t>{0});
    EXPECT_EQ(table->active(), kCapacity);
}

TEST(FlowTableIndexTest, BulkPositionIsAHintCheckedAgainstTheKey) {
    KeyTracker tracker;
    auto table = make_tracked_table(tracker, 16);
    bool created = false;
    const uint32_t a = table->lookup_or_create(numbered_key(1), 1, created);
    const FlowKey key_a = numbered_key(1);
    const FlowKey key_b = numbered_key(2);
    std::array<const FlowKey*, 2> ptrs{&key_a, &key_b};
    std::array<uint32_t, 2> sigs{};
    std::array<int32_t, 2> positions{};
    table->lookup_bulk(ptrs.data(), 2, sigs.data(), positions.data());
    EXPECT_EQ(positions[0], static_cast<int32_t>(a));
    EXPECT_LT(positions[1], 0);
    // Flow a ends and key b takes its index: a's stale hint must not find b's flow.
    table->end(a, EvictReason::Timeout);
    const uint32_t b = table->lookup_or_create(key_b, sigs[1], positions[1], 2, created);
    EXPECT_TRUE(created);
    EXPECT_EQ(b, a);
    const uint32_t a2 = table->lookup_or_create(key_a, sigs[0], positions[0], 3, created);
    EXPECT_TRUE(created);
    EXPECT_NE(a2, b);
    EXPECT_EQ(table->lookup_or_create(key_b, sigs[1], static_cast<int32_t>(b), 4, created), b);
    EXPECT_FALSE(created);
}

// Remembers which numbered keys left the table, in order, with their reasons.
class EndLog final : public FlowEndHandler {
public:
    void on_flow_end(Flow& flow, EvictReason reason) noexcept override {
        ended.emplace_back(number_of(flow.key), reason);
    }
    std::vector<std::pair<uint32_t, EvictReason>> ended;
};

// The LRU lists the table should hold, kept with std::list: which flow each eviction and
// each expiry must take (closed first, then embryonic, then the least recently active).
class LruModel {
public:
    void add(uint32_t number, uint64_t now) { place(number, TimeoutClass::Other, now); }
    void touch(uint32_t number, uint64_t now, TimeoutClass cls) {
        const uint64_t last = std::max(last_[number], now);
        drop(number);
        place(number, cls, last);
    }
    void drop(uint32_t number) {
        lists_[static_cast<size_t>(cls_.at(number))].erase(pos_.at(number));
        pos_.erase(number);
        cls_.erase(number);
        last_.erase(number);
    }
    bool has(uint32_t number) const { return pos_.count(number) != 0; }
    size_t size() const { return pos_.size(); }
    const std::list<uint32_t>& list(TimeoutClass cls) const {
        return lists_[static_cast<size_t>(cls)];
    }
    uint64_t last(uint32_t number) const { return last_.at(number); }
    uint32_t victim() const {
        for (const TimeoutClass first : {TimeoutClass::TcpClosed, TimeoutClass::TcpEmbryonic}) {
            if (!list(first).empty()) {
                return list(first).front();
            }
        }
        uint32_t victim = UINT32_MAX;
        uint64_t oldest = UINT64_MAX;
        for (const auto& l : lists_) {
            if (!l.empty() && last_.at(l.front()) < oldest) {
                oldest = last_.at(l.front());
                victim = l.front();
            }
        }
        return victim;
    }

private:
    void place(uint32_t number, TimeoutClass cls, uint64_t last) {
        auto& l = lists_[static_cast<size_t>(cls)];
        pos_[number] = l.insert(l.end(), number);
        cls_[number] = cls;
        last_[number] = last;
    }
    std::array<std::list<uint32_t>, kTimeoutClassCount> lists_;
    std::unordered_map<uint32_t, std::list<uint32_t>::iterator> pos_;
    std::unordered_map<uint32_t, TimeoutClass> cls_;
    std::unordered_map<uint32_t, uint64_t> last_;
};

// Ending a list's head prefetches the next ones along the list; touches, ends and expiry of
// those flows in between reorder the lists under it. Whatever happens, every eviction and
// expiry takes the flow the lists say, and every live flow stays findable.
TEST(FlowTableIndexTest, EvictionLookAheadSurvivesTouchesEndsAndExpiry) {
    EndLog log;
    FlowTableConfig config;
    config.capacity = 64;
    config.timeout_ns.fill(UINT64_MAX / 4);
    constexpr uint64_t kUdpTimeout = 40;
    config.timeout_ns[static_cast<size_t>(TimeoutClass::Udp)] = kUdpTimeout;
    const char* error = nullptr;
    auto table = FlowTable::create("ft_ahead", config, log, &error);
    ASSERT_NE(table, nullptr) << error;
    LruModel model;
    std::unordered_map<uint32_t, uint32_t> live;
    std::vector<std::pair<uint32_t, EvictReason>> expected;
    std::mt19937 rng(66);
    const auto random_class = [&] {
        return static_cast<TimeoutClass>(rng() % kTimeoutClassCount);
    };
    // A flow near the head of a list: one the look-ahead has prefetched.
    const auto near_head = [&](uint32_t& number) {
        const auto& l = model.list(random_class());
        if (l.empty()) {
            return false;
        }
        auto it = l.begin();
        std::advance(it, std::min<size_t>(rng() % 3, l.size() - 1));
        number = *it;
        return true;
    };
    bool created = false;
    uint64_t now = 1;
    uint64_t evictions = 0;
    for (uint32_t op = 0; op < 20000; ++op) {
        ++now;
        const uint32_t pick = rng() % 100;
        uint32_t number = 0;
        if (pick < 55) {
            number = rng() % 400;
            if (!model.has(number) && model.size() == config.capacity) {
                const uint32_t victim = model.victim();
                expected.emplace_back(victim, EvictReason::TableFull);
                model.drop(victim);
                live.erase(victim);
                ++evictions;
            }
            const uint32_t index = table->lookup_or_create(numbered_key(number), now, created);
            ASSERT_NE(index, kNoFlow);
            ASSERT_EQ(created, !model.has(number));
            if (created) {
                model.add(number, now);
                live[number] = index;
            }
            ASSERT_EQ(index, live.at(number));
            if (rng() % 5 != 0) {
                const TimeoutClass cls = random_class();
                table->touch(index, now, cls);
                model.touch(number, now, cls);
            }
        } else if (pick < 75 && near_head(number)) {
            const TimeoutClass cls = random_class();
            table->touch(live.at(number), now, cls);
            model.touch(number, now, cls);
        } else if (pick < 92 && near_head(number)) {
            table->end(live.at(number), EvictReason::Reused);
            expected.emplace_back(number, EvictReason::Reused);
            model.drop(number);
            live.erase(number);
        } else {
            constexpr uint32_t kBudget = 3;
            uint32_t due = 0;
            const auto& udp = model.list(TimeoutClass::Udp);
            while (due < kBudget && !udp.empty() && model.last(udp.front()) + kUdpTimeout <= now) {
                const uint32_t gone = udp.front();
                expected.emplace_back(gone, EvictReason::Timeout);
                model.drop(gone);
                live.erase(gone);
                ++due;
            }
            ASSERT_EQ(table->expire(now, kBudget), due);
        }
        ASSERT_EQ(log.ended, expected) << "operation " << op;
        ASSERT_EQ(table->active(), model.size());
        if (op % 500 == 0) {
            expect_index_matches(*table, live, {400, 401});
        }
    }
    expect_index_matches(*table, live, {400, 401});
    EXPECT_EQ(table->evicted_full(), evictions);
    EXPECT_GT(evictions, 1000U);
}

TEST(FlowTableIndexTest, CapacityZeroIsRefusedWithAReason) {
    KeyTracker tracker;
    FlowTableConfig config;
    config.capacity = 0;
    const char* error = nullptr;
    EXPECT_EQ(FlowTable::create("ft_zero", config, tracker, &error), nullptr);
    ASSERT_NE(error, nullptr);
    EXPECT_NE(std::string(error).find("between 1 and"), std::string::npos);
}

// The hash is keyed per table: a fixed seed gives the same hashes, two random keys give
// different ones, so keys aimed at one bucket of one table are spread in another.
TEST(FlowTableIndexTest, HashIsKeyedPerTable) {
    KeyTracker tracker;
    FlowTableConfig config;
    config.capacity = 64;
    config.hash_seed = 42;
    const char* error = nullptr;
    auto fixed_a = FlowTable::create("ft_key_a", config, tracker, &error);
    auto fixed_b = FlowTable::create("ft_key_b", config, tracker, &error);
    config.hash_seed = 0;
    auto random_a = FlowTable::create("ft_key_c", config, tracker, &error);
    auto random_b = FlowTable::create("ft_key_d", config, tracker, &error);
    ASSERT_TRUE(fixed_a && fixed_b && random_a && random_b) << error;
    size_t same_random = 0;
    for (uint32_t i = 0; i < 1000; ++i) {
        const FlowKey k = numbered_key(i);
        EXPECT_EQ(fixed_a->hash(k), fixed_b->hash(k));
        same_random += random_a->hash(k) == random_b->hash(k) ? 1 : 0;
    }
    EXPECT_LE(same_random, 1U);
    // 100,000 numbered keys over 65,536 tags, about 1.5 a tag: none holds more than 12.
    std::unordered_map<uint32_t, uint32_t> tags;
    uint32_t most = 0;
    for (uint32_t i = 0; i < 100000; ++i) {
        most = std::max(most, ++tags[random_a->hash(numbered_key(i)) & 0xffffU]);
    }
    EXPECT_LE(most, 12U);
}

}  // namespace
}  // namespace exfiltap::dataplane

int main(int argc, char** argv) {
    ::testing::InitGoogleTest(&argc, argv);
    ::testing::AddGlobalTestEnvironment(new exfiltap::testing::EalEnvironment());
    return RUN_ALL_TESTS();
}
