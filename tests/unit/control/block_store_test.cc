#include "control/block_store.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include <gtest/gtest.h>

namespace exfiltap::control {
namespace {

constexpr int64_t kNow = 1'800'000'000;

BlockEntry entry(const std::string& text, int64_t expires_s = 0) {
    BlockEntry out;
    out.prefix = *Prefix::parse(text);
    out.kind = EntryKind::Block;
    out.source = EntrySource::Operator;
    out.who = "operator:alice(uid 1000)";
    out.reason = "reason for " + text;
    out.created_s = kNow - 100;
    out.expires_s = expires_s;
    out.ttl_s = expires_s == 0 ? 0 : static_cast<uint32_t>(expires_s - out.created_s);
    return out;
}

JournalChange add(const BlockEntry& e) {
    return JournalChange{JournalChange::Op::Add, e};
}

std::string read_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
}

void write_file(const std::string& path, const std::string& data) {
    std::ofstream(path, std::ios::binary | std::ios::trunc) << data;
}

std::vector<std::string> prefixes_of(const StoreLoad& load) {
    std::vector<std::string> out;
    for (const auto& e : load.entries) {
        out.push_back(e.prefix.to_string());
    }
    return out;
}

unsigned mode_of(const std::string& path) {
    struct stat info {};
    EXPECT_EQ(stat(path.c_str(), &info), 0) << path;
    return info.st_mode & 0777;
}

/// A state directory of its own per test, removed afterwards.
class BlockStoreTest : public ::testing::Test {
protected:
    void SetUp() override {
        std::string pattern = ::testing::TempDir() + "exfiltap_store_XXXXXX";
        ASSERT_NE(mkdtemp(pattern.data()), nullptr);
        root_ = pattern;
        dir_ = root_ + "/state";
    }
    void TearDown() override { std::filesystem::remove_all(root_); }

    BlockStoreSettings settings() const { return {dir_, 1000, 300}; }

    /// Writes the three entries through a store's journal.
    void write_three() {
        BlockStore store(settings());
        ASSERT_TRUE(store.load(kNow).ok());
        ASSERT_TRUE(store.record(add(entry("203.0.113.1"))).ok());
        ASSERT_TRUE(store.record(add(entry("203.0.113.2"))).ok());
        ASSERT_TRUE(store.record(add(entry("203.0.113.3"))).ok());
    }

    StoreLoad reload(int64_t now_s = kNow) {
        BlockStore store(settings());
        auto loaded = store.load(now_s);
        EXPECT_TRUE(loaded.ok()) << loaded.error();
        return loaded.ok() ? *loaded : StoreLoad{};
    }

    std::string journal() const { return dir_ + "/blocklist.journal"; }
    std::string snapshot() const { return dir_ + "/blocklist.snapshot"; }

    std::string root_;
    std::string dir_;
};

TEST(Crc32Test, MatchesTheStandardCheckValue) {
    EXPECT_EQ(crc32_of("123456789"), 0xCBF43926U);
    EXPECT_EQ(crc32_of(""), 0U);
}

TEST(JournalLineTest, IsOneSelfCheckingJsonLine) {
    const std::string line =
            journal_line(JournalChange{JournalChange::Op::Remove, entry("198.51.100.0/24")});
    EXPECT_EQ(line.substr(0, 10), "{\"crc32\":\"");
    const std::string payload = R"({"op":"remove","kind":"block","prefix":"198.51.100.0/24"})";
    EXPECT_EQ(line.substr(29), payload + "}\n");
    std::array<char, 9> hex{};
    snprintf(hex.data(), hex.size(), "%08x", crc32_of(payload));
    EXPECT_EQ(line.substr(10, 8), hex.data());
}

TEST_F(BlockStoreTest, NewStateDirectoryIsCreatedWithPrivateFiles) {
    BlockStore store(settings());
    auto loaded = store.load(kNow);
    ASSERT_TRUE(loaded.ok()) << loaded.error();
    EXPECT_TRUE(loaded->entries.empty());
    EXPECT_TRUE(loaded->warnings.empty());
    EXPECT_EQ(mode_of(dir_), 0700U);
    EXPECT_EQ(mode_of(journal()), 0600U);
    ASSERT_TRUE(store.write_snapshot({entry("203.0.113.1")}, kNow).ok());
    EXPECT_EQ(mode_of(snapshot()), 0600U);
}

TEST_F(BlockStoreTest, RecordBeforeLoadFails) {
    BlockStore store(settings());
    EXPECT_FALSE(store.record(add(entry("203.0.113.1"))).ok());
}

TEST_F(BlockStoreTest, JournalRoundTripKeepsEveryField) {
    BlockEntry full = entry("2001:db8::7", kNow + 500);
    full.kind = EntryKind::Block;
    full.source = EntrySource::Detector;
    full.who = "detector:content";
    full.detail = "signature 2100001 flow 99";
    full.reason = "card \"numbers\" to outside \xff";
    full.repeat = 2;
    {
        BlockStore store(settings());
        ASSERT_TRUE(store.load(kNow).ok());
        ASSERT_TRUE(store.record(add(full)).ok());
        EXPECT_EQ(store.changes_since_snapshot(), 1U);
    }
    const StoreLoad load = reload();
    ASSERT_EQ(load.entries.size(), 1U);
    const BlockEntry& got = load.entries[0];
    EXPECT_EQ(got.prefix.to_string(), "2001:db8::7/128");
    EXPECT_EQ(got.kind, EntryKind::Block);
    EXPECT_EQ(got.source, EntrySource::Detector);
    EXPECT_EQ(got.who, "detector:content");
    EXPECT_EQ(got.detail, "signature 2100001 flow 99");
    EXPECT_EQ(got.reason, "card \"numbers\" to outside \xef\xbf\xbd");  // not UTF-8: replaced
    EXPECT_EQ(got.created_s, kNow - 100);
    EXPECT_EQ(got.ttl_s, 600U);
    EXPECT_EQ(got.expires_s, kNow + 500);
    EXPECT_EQ(got.repeat, 2U);
}

TEST_F(BlockStoreTest, RemovesAndReAddsReplayInOrder) {
    {
        BlockStore store(settings());
        ASSERT_TRUE(store.load(kNow).ok());
        ASSERT_TRUE(store.record(add(entry("203.0.113.1"))).ok());
        ASSERT_TRUE(store.record(add(entry("203.0.113.2"))).ok());
        ASSERT_TRUE(store.record({JournalChange::Op::Remove, entry("203.0.113.1")}).ok());
        BlockEntry allow = entry("203.0.113.2");
        allow.kind = EntryKind::Allow;
        ASSERT_TRUE(store.record(add(allow)).ok());
        BlockEntry again = entry("203.0.113.2");
        again.reason = "second reason";
        ASSERT_TRUE(store.record(add(again)).ok());
    }
    const StoreLoad load = reload();
    ASSERT_EQ(load.entries.size(), 2U);
    EXPECT_EQ(load.entries[0].kind, EntryKind::Block);
    EXPECT_EQ(load.entries[0].reason, "second reason");
    EXPECT_EQ(load.entries[1].kind, EntryKind::Allow);
}

TEST_F(BlockStoreTest, SnapshotTruncatesJournalAndLoadCombinesBoth) {
    {
        BlockStore store(settings());
        ASSERT_TRUE(store.load(kNow).ok());
        ASSERT_TRUE(store.record(add(entry("203.0.113.1"))).ok());
        ASSERT_TRUE(store.write_snapshot({entry("203.0.113.1"), entry("203.0.113.2")}, kNow).ok());
        EXPECT_EQ(read_file(journal()), "");
        EXPECT_EQ(store.changes_since_snapshot(), 0U);
        ASSERT_TRUE(store.record({JournalChange::Op::Remove, entry("203.0.113.2")}).ok());
        ASSERT_TRUE(store.record(add(entry("203.0.113.3"))).ok());
    }
    const StoreLoad load = reload();
    EXPECT_TRUE(load.warnings.empty());
    EXPECT_EQ(prefixes_of(load), (std::vector<std::string>{"203.0.113.1/32", "203.0.113.3/32"}));
    EXPECT_FALSE(std::filesystem::exists(snapshot() + ".tmp"));
}

TEST_F(BlockStoreTest, TornLastLineIsCutAndReported) {
    write_three();
    const std::string good = read_file(journal());
    const std::string torn = journal_line(add(entry("203.0.113.4")));
    write_file(journal(), good + torn.substr(0, 40));

    const StoreLoad load = reload();
    EXPECT_EQ(prefixes_of(load),
            (std::vector<std::string>{"203.0.113.1/32", "203.0.113.2/32", "203.0.113.3/32"}));
    ASSERT_EQ(load.warnings.size(), 1U);
    EXPECT_NE(load.warnings[0].find("blocklist.journal: line 4 is corrupt (last line has no end "
                                    "(torn write)); cut 40 bytes (1 lines) after the last good "
                                    "line 3; the cut bytes are in "),
            std::string::npos)
            << load.warnings[0];
    EXPECT_EQ(read_file(journal()), good);
    EXPECT_EQ(read_file(journal() + ".corrupt-" + std::to_string(kNow)), torn.substr(0, 40));
}

TEST_F(BlockStoreTest, GarbageInTheMiddleIsCutThereAndReported) {
    write_three();
    std::string data = read_file(journal());
    const size_t second = data.find('\n') + 1;
    data[second + 45] = data[second + 45] == 'x' ? 'y' : 'x';  // inside line 2's payload
    write_file(journal(), data);

    const StoreLoad load = reload();
    EXPECT_EQ(prefixes_of(load), (std::vector<std::string>{"203.0.113.1/32"}));
    ASSERT_EQ(load.warnings.size(), 1U);
    EXPECT_NE(load.warnings[0].find("line 2 is corrupt (checksum mismatch); cut "
                      + std::to_string(data.size() - second)
                      + " bytes (2 lines) after the last good line 1"),
            std::string::npos)
            << load.warnings[0];
    EXPECT_EQ(read_file(journal()).size(), second);
    // The store appends after the cut.
    {
        BlockStore store(settings());
        ASSERT_TRUE(store.load(kNow).ok());
        ASSERT_TRUE(store.record(add(entry("203.0.113.9"))).ok());
    }
    const StoreLoad after = reload();
    EXPECT_TRUE(after.warnings.empty());
    EXPECT_EQ(prefixes_of(after), (std::vector<std::string>{"203.0.113.1/32", "203.0.113.9/32"}));
}

TEST_F(BlockStoreTest, CorruptSnapshotIsMovedAsideAndJournalStillReplayed) {
    {
        BlockStore store(settings());
        ASSERT_TRUE(store.load(kNow).ok());
        ASSERT_TRUE(store.write_snapshot({entry("203.0.113.1")}, kNow).ok());
        ASSERT_TRUE(store.record(add(entry("203.0.113.2"))).ok());
    }
    std::string data = read_file(snapshot());
    data[data.size() / 2] ^= 0x01;
    write_file(snapshot(), data);

    const StoreLoad load = reload(kNow + 7);
    EXPECT_EQ(prefixes_of(load), (std::vector<std::string>{"203.0.113.2/32"}));
    ASSERT_EQ(load.warnings.size(), 1U);
    const std::string aside = snapshot() + ".corrupt-" + std::to_string(kNow + 7);
    EXPECT_EQ(load.warnings[0],
            snapshot() + " is corrupt (checksum mismatch); moved to " + aside
                    + "; only the journal's changes are loaded");
    EXPECT_EQ(read_file(aside), data);
    EXPECT_FALSE(std::filesystem::exists(snapshot()));
}

TEST_F(BlockStoreTest, EmptySnapshotFileIsCorruptToo) {
    ASSERT_TRUE(reload().entries.empty());
    write_file(snapshot(), "");
    const StoreLoad load = reload();
    ASSERT_EQ(load.warnings.size(), 1U);
    EXPECT_NE(load.warnings[0].find("is corrupt (incomplete file)"), std::string::npos);
}

TEST_F(BlockStoreTest, EntriesExpiredWhileStoppedAreDropped) {
    {
        BlockStore store(settings());
        ASSERT_TRUE(store.load(kNow).ok());
        ASSERT_TRUE(store.write_snapshot({entry("203.0.113.1", kNow + 100)}, kNow).ok());
        ASSERT_TRUE(store.record(add(entry("203.0.113.2", kNow + 200))).ok());
        ASSERT_TRUE(store.record(add(entry("203.0.113.3"))).ok());
    }
    EXPECT_EQ(reload(kNow + 99).entries.size(), 3U);
    const StoreLoad later = reload(kNow + 150);
    EXPECT_EQ(prefixes_of(later), (std::vector<std::string>{"203.0.113.2/32", "203.0.113.3/32"}));
    ASSERT_EQ(later.warnings.size(), 1U);
    EXPECT_EQ(
            later.warnings[0], "1 saved block list entries expired while stopped and were dropped");
    EXPECT_EQ(prefixes_of(reload(kNow + 200)), (std::vector<std::string>{"203.0.113.3/32"}));
}

TEST_F(BlockStoreTest, LeftoverTemporarySnapshotIsRemoved) {
    ASSERT_TRUE(reload().warnings.empty());
    write_file(snapshot() + ".tmp", "half");
    const StoreLoad load = reload();
    ASSERT_EQ(load.warnings.size(), 1U);
    EXPECT_NE(load.warnings[0].find("removed an unfinished snapshot"), std::string::npos);
    EXPECT_FALSE(std::filesystem::exists(snapshot() + ".tmp"));
}

TEST_F(BlockStoreTest, SnapshotIsDueAfterChangesOrTime) {
    BlockStore store({dir_, 2, 300});
    ASSERT_TRUE(store.load(kNow).ok());
    EXPECT_FALSE(store.snapshot_due(kNow + 10000));  // nothing changed
    ASSERT_TRUE(store.record(add(entry("203.0.113.1"))).ok());
    EXPECT_FALSE(store.snapshot_due(kNow + 299));
    EXPECT_TRUE(store.snapshot_due(kNow + 300));
    ASSERT_TRUE(store.record(add(entry("203.0.113.2"))).ok());
    EXPECT_TRUE(store.snapshot_due(kNow));
    ASSERT_TRUE(store.write_snapshot({}, kNow + 1).ok());
    EXPECT_FALSE(store.snapshot_due(kNow + 1000));
}

TEST_F(BlockStoreTest, ConfigEntriesAreNeverSaved) {
    {
        BlockStore store(settings());
        ASSERT_TRUE(store.load(kNow).ok());
        BlockEntry config = entry("10.0.0.0/8");
        config.kind = EntryKind::Allow;
        config.source = EntrySource::Config;
        ASSERT_TRUE(store.write_snapshot({config, entry("203.0.113.1")}, kNow).ok());
    }
    EXPECT_EQ(prefixes_of(reload()), (std::vector<std::string>{"203.0.113.1/32"}));
}

}  // namespace
}  // namespace exfiltap::control
