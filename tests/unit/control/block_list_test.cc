#include "control/block_list.h"

#include <sys/stat.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <string>

#include <gtest/gtest.h>

#include "control/block_store.h"

#include <nlohmann/json.hpp>

namespace exfiltap::control {
namespace {

Prefix prefix(const std::string& text) {
    auto parsed = Prefix::parse(text);
    EXPECT_TRUE(parsed.ok()) << text;
    return parsed.ok() ? *parsed : Prefix{};
}

/// Records what the block list asks of the data path's table.
class FakeSink : public BlockTableSink {
public:
    Result<uint32_t> add_exact(const Prefix& p) override {
        if (fail_next) {
            fail_next = false;
            return make_error("table refused");
        }
        exact[p.to_string()] = next_slot;
        return next_slot++;
    }
    bool remove_exact(const Prefix& p) override { return exact.erase(p.to_string()) == 1; }
    Result<uint32_t> stage_prefix(const Prefix& p, bool allow) override {
        staged[p.to_string()] = allow;
        return next_slot++;
    }
    bool unstage_prefix(const Prefix& p, bool /*allow*/) override {
        return staged.erase(p.to_string()) == 1;
    }
    Status commit_prefixes() override {
        committed = staged;
        ++commits;
        return Ok{};
    }
    uint64_t hits(bool is_exact, uint32_t slot) const override {
        return is_exact ? slot * 10U : slot * 100U;
    }

    std::map<std::string, uint32_t> exact;
    std::map<std::string, bool> staged;
    std::map<std::string, bool> committed;  // prefix -> allow
    int commits = 0;
    uint32_t next_slot = 1;
    bool fail_next = false;
};

class FakeJournal : public BlockJournal {
public:
    Status record(const JournalChange& change) override {
        if (fail) {
            return make_error("disk full");
        }
        changes.push_back(change);
        return Ok{};
    }
    std::vector<JournalChange> changes;
    bool fail = false;
};

constexpr int64_t kStart = 1'800'000'000;

class BlockListTest : public ::testing::Test {
protected:
    void SetUp() override {
        config_.allowlist = {prefix("10.0.0.0/8"), prefix("192.0.2.53")};
        list_ = std::make_unique<BlockList>(
                sink_, config_, [this] { return now_; }, 3);
        EXPECT_TRUE(list_->apply_config(config_).empty());
        list_->set_journal(&journal_);
    }

    BlockRequest detector_block(const std::string& text, uint32_t ttl_s = 3600) {
        return BlockRequest{prefix(text), EntrySource::Detector, detector_who("content"),
                "signature 2100001 flow 7", "payment_card to outside", ttl_s};
    }
    BlockRequest operator_block(const std::string& text, uint32_t ttl_s = 0) {
        return BlockRequest{prefix(text), EntrySource::Operator, operator_who("alice", 1000), "",
                "ticket 42", ttl_s};
    }

    ResponseConfig config_;
    FakeSink sink_;
    FakeJournal journal_;
    int64_t now_ = kStart;
    std::unique_ptr<BlockList> list_;
};

TEST_F(BlockListTest, ConfigAllowEntriesAreStagedAsAllowPrefixes) {
    EXPECT_EQ(sink_.committed.at("10.0.0.0/8"), true);
    EXPECT_EQ(sink_.committed.at("192.0.2.53/32"), true);
    EXPECT_EQ(list_->prefix_count(), 2U);
    const BlockEntry* entry = list_->find(prefix("10.0.0.0/8"), EntryKind::Allow);
    ASSERT_NE(entry, nullptr);
    EXPECT_EQ(entry->source, EntrySource::Config);
    EXPECT_TRUE(list_->persistent_entries().empty());
}

TEST_F(BlockListTest, OperatorBlockOfAnAddressIsExactAndJournaled) {
    auto outcome = list_->block(operator_block("203.0.113.7"));
    ASSERT_TRUE(outcome.ok()) << outcome.error();
    EXPECT_TRUE(outcome->added);
    EXPECT_EQ(outcome->message, "blocked 203.0.113.7");
    EXPECT_EQ(outcome->expires_s, 0);
    EXPECT_EQ(sink_.exact.count("203.0.113.7/32"), 1U);
    ASSERT_EQ(journal_.changes.size(), 1U);
    EXPECT_EQ(journal_.changes[0].op, JournalChange::Op::Add);
    EXPECT_EQ(journal_.changes[0].entry.who, "operator:alice(uid 1000)");
    const BlockEntry* entry = list_->find(prefix("203.0.113.7"), EntryKind::Block);
    ASSERT_NE(entry, nullptr);
    EXPECT_TRUE(entry->exact);
    EXPECT_EQ(entry->created_s, kStart);
    EXPECT_EQ(entry->reason, "ticket 42");
    EXPECT_EQ(list_->hits(*entry), entry->slot * 10U);
}

TEST_F(BlockListTest, OperatorPrefixBlockIsStagedAndCommitted) {
    const int commits = sink_.commits;
    ASSERT_TRUE(list_->block(operator_block("198.51.100.0/24")).ok());
    EXPECT_EQ(sink_.committed.at("198.51.100.0/24"), false);
    EXPECT_EQ(sink_.commits, commits + 1);
    EXPECT_EQ(list_->prefix_count(), 3U);
    EXPECT_EQ(list_->exact_count(), 0U);
}

TEST_F(BlockListTest, DuplicateBlockIsRefused) {
    ASSERT_TRUE(list_->block(operator_block("203.0.113.7")).ok());
    auto again = list_->block(operator_block("203.0.113.7"));
    ASSERT_FALSE(again.ok());
    EXPECT_EQ(again.error(),
            "refused: 203.0.113.7 is already blocked by operator:alice(uid 1000), reason: "
            "ticket 42");
    EXPECT_EQ(journal_.changes.size(), 1U);
}

TEST_F(BlockListTest, OperatorBlockInsideAllowlistIsRefusedWithReason) {
    auto inside = list_->block(operator_block("10.0.0.5"));
    ASSERT_FALSE(inside.ok());
    EXPECT_EQ(inside.error(),
            "refused: 10.0.0.5 is inside allowlisted 10.0.0.0/8 (by config, reason: "
            "response.allowlist)");
    auto equal = list_->block(operator_block("10.0.0.0/8"));
    ASSERT_FALSE(equal.ok());
    EXPECT_NE(equal.error().find("refused: 10.0.0.0/8 is inside allowlisted 10.0.0.0/8"),
            std::string::npos);
    EXPECT_TRUE(sink_.exact.empty());
    EXPECT_TRUE(journal_.changes.empty());
}

TEST_F(BlockListTest, WiderOperatorBlockAroundAnAllowEntryIsAccepted) {
    // The allow entry is looked up first, so 192.0.2.53 still passes.
    EXPECT_TRUE(list_->block(operator_block("192.0.2.0/24")).ok());
}

TEST_F(BlockListTest, AutomaticBlockInsideAllowlistIsSkippedNotAnError) {
    auto outcome = list_->block(detector_block("192.0.2.53"));
    ASSERT_TRUE(outcome.ok()) << outcome.error();
    EXPECT_FALSE(outcome->added);
    EXPECT_EQ(outcome->message,
            "skipped: 192.0.2.53 is inside allowlisted 192.0.2.53/32 (by config, reason: "
            "response.allowlist)");
    EXPECT_EQ(list_->find(prefix("192.0.2.53"), EntryKind::Block), nullptr);
    EXPECT_TRUE(journal_.changes.empty());
}

TEST_F(BlockListTest, AutomaticBlockWiderThanMinimumPrefixIsRefused) {
    auto v4 = list_->block(detector_block("198.51.100.0/24"));
    ASSERT_FALSE(v4.ok());
    EXPECT_EQ(v4.error(),
            "refused: automatic block of 198.51.100.0/24 is wider than /32 "
            "(response.min_prefix_v4)");
    auto v6 = list_->block(detector_block("2001:db8::/64"));
    ASSERT_FALSE(v6.ok());
    EXPECT_NE(v6.error().find("wider than /128 (response.min_prefix_v6)"), std::string::npos);
    EXPECT_TRUE(sink_.staged.size() == 2U);  // only the config allow entries
}

TEST_F(BlockListTest, AllowOverExistingBlocksReportsThemShadowed) {
    ASSERT_TRUE(list_->block(operator_block("203.0.113.7")).ok());
    ASSERT_TRUE(list_->block(detector_block("203.0.113.9")).ok());
    ASSERT_TRUE(list_->block(operator_block("198.51.100.1")).ok());
    auto outcome = list_->allow(prefix("203.0.113.0/24"), operator_who("bob", 1001), "partner");
    ASSERT_TRUE(outcome.ok()) << outcome.error();
    ASSERT_EQ(outcome->shadowed.size(), 2U);
    EXPECT_EQ(outcome->shadowed[0].to_string(), "203.0.113.7/32");
    EXPECT_EQ(outcome->shadowed[1].to_string(), "203.0.113.9/32");
    EXPECT_EQ(outcome->message,
            "allowlisted 203.0.113.0/24; 2 block entries inside it stay listed but no longer "
            "drop (first: 203.0.113.7/32)");
    // The blocks stay; the table holds both, and the allow entry is looked up first.
    const BlockEntry* block = list_->find(prefix("203.0.113.7"), EntryKind::Block);
    ASSERT_NE(block, nullptr);
    const BlockEntry* by = list_->shadowed_by(*block);
    ASSERT_NE(by, nullptr);
    EXPECT_EQ(by->prefix.to_string(), "203.0.113.0/24");
    EXPECT_EQ(list_->shadowed_by(*list_->find(prefix("198.51.100.1"), EntryKind::Block)), nullptr);
    EXPECT_EQ(sink_.exact.size(), 3U);
    EXPECT_EQ(sink_.committed.at("203.0.113.0/24"), true);
}

TEST_F(BlockListTest, UnallowRefusesConfigEntriesAndRemovesOperatorOnes) {
    auto config_entry = list_->unallow(prefix("10.0.0.0/8"), operator_who("bob", 1001));
    ASSERT_FALSE(config_entry.ok());
    EXPECT_EQ(config_entry.error(),
            "refused: 10.0.0.0/8 is allowlisted by the config file (response.allowlist); remove "
            "it there and reload");
    ASSERT_TRUE(list_->allow(prefix("198.51.100.0/24"), operator_who("bob", 1001), "cdn").ok());
    auto removed = list_->unallow(prefix("198.51.100.0/24"), operator_who("bob", 1001));
    ASSERT_TRUE(removed.ok()) << removed.error();
    EXPECT_EQ(sink_.committed.count("198.51.100.0/24"), 0U);
    ASSERT_EQ(journal_.changes.size(), 2U);
    EXPECT_EQ(journal_.changes[1].op, JournalChange::Op::Remove);
    EXPECT_FALSE(list_->unallow(prefix("198.51.100.0/24"), "x").ok());
}

TEST_F(BlockListTest, UnblockRemovesFromTableAndJournals) {
    ASSERT_TRUE(list_->block(operator_block("203.0.113.7")).ok());
    auto removed = list_->unblock(prefix("203.0.113.7"), operator_who("bob", 1001));
    ASSERT_TRUE(removed.ok()) << removed.error();
    EXPECT_EQ(*removed,
            "unblocked 203.0.113.7 (was blocked by operator:alice(uid 1000), reason: ticket 42)");
    EXPECT_TRUE(sink_.exact.empty());
    EXPECT_EQ(list_->size(), 2U);
    auto missing = list_->unblock(prefix("203.0.113.7"), operator_who("bob", 1001));
    ASSERT_FALSE(missing.ok());
    EXPECT_EQ(missing.error(), "refused: 203.0.113.7 is not in the block list");
}

TEST_F(BlockListTest, ExpireRemovesEntriesPastTheirTtl) {
    ASSERT_TRUE(list_->block(detector_block("203.0.113.7", 60)).ok());
    ASSERT_TRUE(list_->block(operator_block("198.51.100.0/24", 120)).ok());
    ASSERT_TRUE(list_->block(operator_block("198.51.100.200")).ok());  // no TTL
    EXPECT_TRUE(list_->expire(kStart + 59).empty());
    auto first = list_->expire(kStart + 60);
    ASSERT_EQ(first.size(), 1U);
    EXPECT_EQ(first[0].prefix.to_string(), "203.0.113.7/32");
    EXPECT_EQ(sink_.exact.count("203.0.113.7/32"), 0U);
    auto second = list_->expire(kStart + 1000);
    ASSERT_EQ(second.size(), 1U);
    EXPECT_EQ(sink_.committed.count("198.51.100.0/24"), 0U);
    EXPECT_NE(list_->find(prefix("198.51.100.200"), EntryKind::Block), nullptr);
    EXPECT_TRUE(list_->expire(kStart + 100000000).empty());
}

TEST_F(BlockListTest, CatchAndReleaseMultipliesTtlWithinWindowUpToCap) {
    ResponseConfig config = config_;
    config.catch_and_release = {86400, 4, 50000};
    list_->apply_config(config);

    auto first = list_->block(detector_block("203.0.113.7", 3600));
    ASSERT_TRUE(first.ok());
    EXPECT_EQ(first->ttl_s, 3600U);
    EXPECT_EQ(first->repeat, 0U);
    now_ += 3600;
    ASSERT_EQ(list_->expire(now_).size(), 1U);

    now_ += 1000;  // back within the window
    auto second = list_->block(detector_block("203.0.113.7", 3600));
    ASSERT_TRUE(second.ok());
    EXPECT_EQ(second->ttl_s, 14400U);  // 4x
    EXPECT_EQ(second->repeat, 1U);
    EXPECT_EQ(second->expires_s, now_ + 14400);
    now_ += 14400;
    ASSERT_EQ(list_->expire(now_).size(), 1U);

    auto third = list_->block(detector_block("203.0.113.7", 3600));
    ASSERT_TRUE(third.ok());
    EXPECT_EQ(third->ttl_s, 50000U);  // 16x = 57600, capped
    EXPECT_EQ(third->repeat, 2U);
    now_ += 50000;
    ASSERT_EQ(list_->expire(now_).size(), 1U);

    now_ += 86401;  // outside the window: starts afresh
    auto later = list_->block(detector_block("203.0.113.7", 3600));
    ASSERT_TRUE(later.ok());
    EXPECT_EQ(later->ttl_s, 3600U);
    EXPECT_EQ(later->repeat, 0U);
}

TEST_F(BlockListTest, OperatorBlocksAndUnblocksDoNotEscalate) {
    ASSERT_TRUE(list_->block(detector_block("203.0.113.7", 100)).ok());
    ASSERT_TRUE(list_->unblock(prefix("203.0.113.7"), operator_who("bob", 1001)).ok());
    auto again = list_->block(detector_block("203.0.113.7", 100));
    ASSERT_TRUE(again.ok());
    EXPECT_EQ(again->ttl_s, 100U);  // an operator's release clears the history
    now_ += 100;
    list_->expire(now_);
    auto by_operator = list_->block(operator_block("203.0.113.7", 100));
    ASSERT_TRUE(by_operator.ok());
    EXPECT_EQ(by_operator->ttl_s, 100U);  // operators get the TTL they ask for
}

TEST_F(BlockListTest, ReleaseHistoryIsBoundedLeastRecentFirst) {
    for (const char* address : {"203.0.113.1", "203.0.113.2", "203.0.113.3", "203.0.113.4"}) {
        ASSERT_TRUE(list_->block(detector_block(address, 10)).ok());
        now_ += 10;
        ASSERT_EQ(list_->expire(now_).size(), 1U);
    }
    EXPECT_EQ(list_->release_history_size(), 3U);  // capacity 3 in this fixture
    EXPECT_EQ(list_->block(detector_block("203.0.113.1", 10))->ttl_s, 10U);  // forgotten
    EXPECT_EQ(list_->block(detector_block("203.0.113.4", 10))->ttl_s, 40U);
}

TEST_F(BlockListTest, CapacityIsEnforcedPerTable) {
    ResponseConfig config = config_;
    config.exact_capacity = 1;
    config.prefix_capacity = 3;
    list_->apply_config(config);
    ASSERT_TRUE(list_->block(operator_block("203.0.113.1")).ok());
    auto full = list_->block(operator_block("203.0.113.2"));
    ASSERT_FALSE(full.ok());
    EXPECT_EQ(full.error(),
            "block table full: 1 exact entries (response.block_table.exact_capacity)");
    ASSERT_TRUE(list_->block(operator_block("198.51.100.0/24")).ok());
    auto prefixes = list_->allow(prefix("198.51.101.0/24"), "x", "y");
    ASSERT_FALSE(prefixes.ok());
    EXPECT_EQ(prefixes.error(),
            "block table full: 3 prefix entries (response.block_table.prefix_capacity)");
}

TEST_F(BlockListTest, JournalOrTableFailureLeavesNothingBehind) {
    journal_.fail = true;
    auto unsaved = list_->block(operator_block("203.0.113.7"));
    ASSERT_FALSE(unsaved.ok());
    EXPECT_EQ(unsaved.error(), "not saved to the block list journal, change not made: disk full");
    EXPECT_TRUE(sink_.exact.empty());
    EXPECT_EQ(list_->find(prefix("203.0.113.7"), EntryKind::Block), nullptr);
    journal_.fail = false;
    sink_.fail_next = true;
    auto refused = list_->block(operator_block("203.0.113.7"));
    ASSERT_FALSE(refused.ok());
    EXPECT_EQ(refused.error(), "block table: table refused");
    EXPECT_TRUE(journal_.changes.empty());
    EXPECT_EQ(list_->exact_count(), 0U);
}

TEST_F(BlockListTest, ApplyConfigReplacesConfigAllowEntriesOnly) {
    ASSERT_TRUE(list_->allow(prefix("198.51.100.0/24"), operator_who("bob", 1001), "cdn").ok());
    ResponseConfig config = config_;
    config.allowlist = {prefix("172.16.0.0/12"), prefix("198.51.100.0/24")};
    auto warnings = list_->apply_config(config);
    ASSERT_EQ(warnings.size(), 1U);
    EXPECT_EQ(warnings[0],
            "response.allowlist: 198.51.100.0/24 is already allowlisted by "
            "operator:bob(uid 1001), reason: cdn; kept as that entry");
    EXPECT_EQ(list_->find(prefix("10.0.0.0/8"), EntryKind::Allow), nullptr);
    EXPECT_EQ(sink_.committed.count("10.0.0.0/8"), 0U);
    EXPECT_EQ(sink_.committed.at("172.16.0.0/12"), true);
    EXPECT_EQ(list_->find(prefix("198.51.100.0/24"), EntryKind::Allow)->source,
            EntrySource::Operator);
    EXPECT_TRUE(list_->block(operator_block("10.0.0.5")).ok());
}

TEST_F(BlockListTest, RestoreInstallsSavedEntriesAndDropsExpiredOnes) {
    BlockEntry kept{prefix("203.0.113.7"), EntryKind::Block, EntrySource::Detector,
            "detector:content", "", "r", kStart - 10, 100, kStart + 90};
    BlockEntry expired = kept;
    expired.prefix = prefix("203.0.113.8");
    expired.expires_s = kStart;
    BlockEntry allow{prefix("198.51.100.0/24"), EntryKind::Allow, EntrySource::Operator, "op", "",
            "cdn", kStart - 10};
    auto warnings = list_->restore({kept, expired, allow, allow});
    ASSERT_EQ(warnings.size(), 2U);
    EXPECT_NE(warnings[0].find("allow entry 198.51.100.0/24 dropped: already present"),
            std::string::npos);
    EXPECT_EQ(warnings[1], "1 saved entries expired while stopped");
    EXPECT_EQ(sink_.exact.count("203.0.113.7/32"), 1U);
    EXPECT_EQ(sink_.committed.at("198.51.100.0/24"), true);
    EXPECT_TRUE(journal_.changes.empty());
    EXPECT_EQ(list_->persistent_entries().size(), 2U);
    ASSERT_EQ(list_->expire(kStart + 90).size(), 1U);
}

TEST(BlockRequestTest, FollowsTheDecisionUnlessShadowedOrNotABlock) {
    Decision decision;
    decision.action = PolicyAction::BlockRemote;
    decision.block_target = prefix("203.0.113.7");
    decision.ttl_s = 600;
    auto request = block_request(decision, "content", "signature 2100001 flow 3", "cards");
    ASSERT_TRUE(request.has_value());
    EXPECT_EQ(request->prefix.to_string(), "203.0.113.7/32");
    EXPECT_EQ(request->source, EntrySource::Detector);
    EXPECT_EQ(request->who, "detector:content");
    EXPECT_EQ(request->detail, "signature 2100001 flow 3");
    EXPECT_EQ(request->reason, "cards");
    EXPECT_EQ(request->ttl_s, 600U);
    decision.shadow = true;
    EXPECT_FALSE(block_request(decision, "content", "", "").has_value());
    EXPECT_FALSE(block_request(Decision{}, "content", "", "").has_value());
}

TEST_F(BlockListTest, EntriesListAllowFirstInPrefixOrder) {
    ASSERT_TRUE(list_->block(operator_block("203.0.113.7")).ok());
    ASSERT_TRUE(list_->block(operator_block("198.51.100.1")).ok());
    const auto entries = list_->entries();
    ASSERT_EQ(entries.size(), 4U);
    EXPECT_EQ(entries[0].prefix.to_string(), "10.0.0.0/8");
    EXPECT_EQ(entries[1].prefix.to_string(), "192.0.2.53/32");
    EXPECT_EQ(entries[2].prefix.to_string(), "198.51.100.1/32");
    EXPECT_EQ(entries[3].prefix.to_string(), "203.0.113.7/32");
}

/// A directory of its own per test, removed afterwards.
class BlockListFilesTest : public BlockListTest {
protected:
    void SetUp() override {
        BlockListTest::SetUp();
        std::string pattern = ::testing::TempDir() + "exfiltap_blocklist_XXXXXX";
        ASSERT_NE(mkdtemp(pattern.data()), nullptr);
        dir_ = pattern;
    }
    void TearDown() override { std::filesystem::remove_all(dir_); }

    std::string dir_;
};

TEST_F(BlockListFilesTest, AuditLogRecordsChangesAndRefusals) {
    auto audit = AuditLog::open(dir_ + "/audit.log");
    ASSERT_TRUE(audit.ok()) << audit.error();
    list_->set_audit(&*audit);
    ASSERT_TRUE(list_->block(operator_block("203.0.113.7", 60)).ok());
    ASSERT_FALSE(list_->block(operator_block("10.1.1.1")).ok());
    ASSERT_TRUE(list_->block(detector_block("10.2.2.2")).ok());  // skipped
    now_ += 60;
    ASSERT_EQ(list_->expire(now_).size(), 1U);
    EXPECT_EQ(audit->written(), 4U);

    std::ifstream in(dir_ + "/audit.log");
    std::vector<nlohmann::json> lines;
    for (std::string line; std::getline(in, line);) {
        lines.push_back(nlohmann::json::parse(line));
    }
    ASSERT_EQ(lines.size(), 4U);
    EXPECT_EQ(lines[0].dump(),
            R"j({"action":"block","reason":"ticket 42","result":"ok: blocked 203.0.113.7 for 60 s",)j"
            R"j("target":"203.0.113.7/32","time":"2027-01-15T08:00:00Z",)j"
            R"j("who":"operator:alice(uid 1000)"})j");
    EXPECT_EQ(lines[1]["result"],
            "refused: 10.1.1.1 is inside allowlisted 10.0.0.0/8 (by config, reason: "
            "response.allowlist)");
    EXPECT_EQ(lines[2]["who"], "detector:content");
    EXPECT_EQ(lines[2]["result"].get<std::string>().rfind("skipped: ", 0), 0U);
    EXPECT_EQ(lines[3]["action"], "expire");
    EXPECT_EQ(lines[3]["who"], "system");
    EXPECT_EQ(lines[3]["time"], "2027-01-15T08:01:00Z");

    struct stat info {};
    ASSERT_EQ(stat((dir_ + "/audit.log").c_str(), &info), 0);
    EXPECT_EQ(info.st_mode & 0777, 0640U & ~static_cast<unsigned>(umask(umask(0))));
}

TEST_F(BlockListFilesTest, RestartWithStoreRestoresTheSameList) {
    {
        BlockStore store({dir_ + "/state", 1000, 300});
        auto loaded = store.load(now_);
        ASSERT_TRUE(loaded.ok()) << loaded.error();
        list_->set_journal(&store);
        ASSERT_TRUE(list_->block(operator_block("203.0.113.7")).ok());
        ASSERT_TRUE(list_->block(detector_block("203.0.113.9", 600)).ok());
        ASSERT_TRUE(list_->allow(prefix("198.51.100.0/24"), operator_who("bob", 1001), "cdn").ok());
        ASSERT_TRUE(list_->unblock(prefix("203.0.113.7"), operator_who("bob", 1001)).ok());
        ASSERT_TRUE(list_->block(operator_block("2001:db8::/48", 900)).ok());
        list_->set_journal(nullptr);
    }
    FakeSink sink;
    BlockList restarted(sink, config_, [this] { return now_ + 5; });
    restarted.apply_config(config_);
    BlockStore store({dir_ + "/state", 1000, 300});
    auto loaded = store.load(now_ + 5);
    ASSERT_TRUE(loaded.ok()) << loaded.error();
    EXPECT_TRUE(loaded->warnings.empty());
    EXPECT_TRUE(restarted.restore(loaded->entries).empty());

    const auto before = list_->entries();
    const auto after = restarted.entries();
    ASSERT_EQ(after.size(), before.size());
    for (size_t i = 0; i < before.size(); ++i) {
        EXPECT_EQ(after[i].prefix.to_string(), before[i].prefix.to_string());
        EXPECT_EQ(after[i].kind, before[i].kind);
        EXPECT_EQ(after[i].who, before[i].who);
        EXPECT_EQ(after[i].reason, before[i].reason);
        EXPECT_EQ(after[i].expires_s, before[i].expires_s);
    }
    EXPECT_EQ(sink.exact.count("203.0.113.9/32"), 1U);
    EXPECT_EQ(sink.committed.at("2001:db8::/48"), false);
}

}  // namespace
}  // namespace exfiltap::control
