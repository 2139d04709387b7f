// Persistence of the block list (DESIGN.md "Response"): STATE_DIR/blocklist.journal, one
// self-checking line per change, fsync'd before the change is acknowledged; and
// STATE_DIR/blocklist.snapshot, the whole list, written to a temporary name, fsync'd and
// renamed (then the directory fsync'd), after which the journal is truncated. Control
// thread only. Both files are created 0600.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "control/block_list.h"

namespace exfiltap::control {

/// CRC-32 (IEEE 802.3, as zlib's crc32) of `data`.
uint32_t crc32_of(std::string_view data) noexcept;

/// One journal line (with its newline): {"crc32":"<8 hex>","change":<payload>} where the
/// CRC covers the payload's bytes exactly as written.
std::string journal_line(const JournalChange& change);

struct StoreLoad {
    /// The list as last saved, expired entries already dropped.
    std::vector<BlockEntry> entries;
    /// Everything the operator should know: corrupt snapshot moved aside, journal tail cut,
    /// entries expired while stopped. The daemon logs each as a warning.
    std::vector<std::string> warnings;
};

struct BlockStoreSettings {
    std::string state_dir;
    /// A snapshot is due after this many journaled changes...
    uint32_t snapshot_every_changes = 1000;
    /// ...or this long after the last one when anything changed.
    uint32_t snapshot_every_s = 300;
};

class BlockStore final : public BlockJournal {
public:
    static constexpr std::string_view kJournalName = "blocklist.journal";
    static constexpr std::string_view kSnapshotName = "blocklist.snapshot";

    explicit BlockStore(BlockStoreSettings settings);
    BlockStore(const BlockStore&) = delete;
    BlockStore& operator=(const BlockStore&) = delete;
    BlockStore(BlockStore&&) = delete;
    BlockStore& operator=(BlockStore&&) = delete;
    ~BlockStore() override;

    /// Reads the snapshot, replays the journal, cuts a corrupt journal tail (the cut bytes
    /// are kept in blocklist.journal.corrupt-<time>), moves a corrupt snapshot aside to
    /// blocklist.snapshot.corrupt-<time>, and opens the journal for appending. Creates the
    /// state directory (0700) when missing. Errors only when the files cannot be read or
    /// written at all.
    Result<StoreLoad> load(int64_t now_s);

    /// Appends one line and fdatasyncs it (BlockJournal). Fails before load().
    Status record(const JournalChange& change) override;

    bool snapshot_due(int64_t now_s) const;
    /// Writes `entries` (config entries are skipped) as the new snapshot and truncates the
    /// journal. Also at clean shutdown.
    Status write_snapshot(const std::vector<BlockEntry>& entries, int64_t now_s);
    /// write_snapshot() when snapshot_due().
    Status maybe_snapshot(const BlockList& list, int64_t now_s);

    uint64_t changes_since_snapshot() const { return changes_since_snapshot_; }
    std::string journal_path() const;
    std::string snapshot_path() const;

private:
    Status load_snapshot(int64_t now_s, std::vector<BlockEntry>& entries, StoreLoad& out);
    Status replay_journal(int64_t now_s, std::vector<BlockEntry>& entries, StoreLoad& out);
    Status sync_dir() const;

    BlockStoreSettings settings_;
    int journal_fd_ = -1;
    uint64_t changes_since_snapshot_ = 0;
    int64_t last_snapshot_s_ = 0;
};

}  // namespace exfiltap::control
