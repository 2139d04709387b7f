// The authoritative block list (DESIGN.md "Response"): block and allow entries with their
// source, reason, TTL and catch-and-release history. Control thread only, no locking. The
// data path's table is reached only through BlockTableSink, persistence only through
// BlockJournal, so both can be faked in tests and neither is a link dependency.
#pragma once

#include <cstdint>
#include <functional>
#include <list>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "common/result.h"
#include "control/audit_log.h"
#include "control/policy.h"
#include "control/prefix.h"

namespace exfiltap::control {

/// Where the data path holds the list. exact = a /32 or /128 block entry (hash table, slot
/// per entry); everything else, and every allow entry, is a prefix (staged, then committed
/// as one rebuilt table). Slots index the table's per-entry hit counters.
class BlockTableSink {
public:
    BlockTableSink() = default;
    BlockTableSink(const BlockTableSink&) = delete;
    BlockTableSink& operator=(const BlockTableSink&) = delete;
    BlockTableSink(BlockTableSink&&) = delete;
    BlockTableSink& operator=(BlockTableSink&&) = delete;
    virtual ~BlockTableSink() = default;
    virtual Result<uint32_t> add_exact(const Prefix& prefix) = 0;
    virtual bool remove_exact(const Prefix& prefix) = 0;
    virtual Result<uint32_t> stage_prefix(const Prefix& prefix, bool allow) = 0;
    virtual bool unstage_prefix(const Prefix& prefix, bool allow) = 0;
    virtual Status commit_prefixes() = 0;
    virtual uint64_t hits(bool exact, uint32_t slot) const = 0;
};

enum class EntryKind : uint8_t {
    Block,
    Allow,
};

enum class EntrySource : uint8_t {
    Operator,  // the control socket; `who` names the user
    Detector,  // a policy decision on an alert; `detail` names the signature and flow
    Config,    // response.allowlist; never persisted, never removed by an operator
};

std::string_view entry_kind_name(EntryKind kind) noexcept;        // "block", "allow"
std::string_view entry_source_name(EntrySource source) noexcept;  // "operator", ...

/// "operator:alice(uid 1000)".
std::string operator_who(const std::string& user, uint32_t uid);
/// "detector:content".
std::string detector_who(std::string_view detector);

struct BlockEntry {
    Prefix prefix;
    EntryKind kind = EntryKind::Block;
    EntrySource source = EntrySource::Operator;
    std::string who;
    /// Detector blocks: the alert's signature and flow ("signature 2100001 flow 42").
    std::string detail;
    std::string reason;
    /// Wall clock, seconds since the epoch.
    int64_t created_s = 0;
    /// 0 = no expiry (then expires_s is 0).
    uint32_t ttl_s = 0;
    int64_t expires_s = 0;
    /// Catch and release: how many times in a row this peer came back within the window.
    uint32_t repeat = 0;
    /// The sink's slot (hit counter index); `exact` tells which table.
    bool exact = false;
    uint32_t slot = 0;
};

/// One durable change. Replay is idempotent: add replaces an entry of the same kind and
/// prefix, remove of an absent entry does nothing.
struct JournalChange {
    enum class Op : uint8_t {
        Add,
        Remove,
    };
    Op op = Op::Add;
    BlockEntry entry;  // Remove: only prefix and kind matter
};

/// Makes a change durable before the block list acknowledges it (BlockStore).
class BlockJournal {
public:
    BlockJournal() = default;
    BlockJournal(const BlockJournal&) = delete;
    BlockJournal& operator=(const BlockJournal&) = delete;
    BlockJournal(BlockJournal&&) = delete;
    BlockJournal& operator=(BlockJournal&&) = delete;
    virtual ~BlockJournal() = default;
    virtual Status record(const JournalChange& change) = 0;
};

struct BlockRequest {
    Prefix prefix;
    /// Operator or Detector.
    EntrySource source = EntrySource::Operator;
    std::string who;
    std::string detail;
    std::string reason;
    /// 0 = no expiry. Detector blocks may be lengthened by catch and release.
    uint32_t ttl_s = 0;
};

/// The automatic block a policy decision asks for: a Detector request for its target with
/// its TTL, who "detector:<detector>". None for decisions without a block target and for
/// shadowed ones (those only count would_drop).
std::optional<BlockRequest> block_request(const Decision& decision, std::string_view detector,
        std::string detail, std::string reason);

struct BlockOutcome {
    /// False for an automatic block inside the allowlist: skipped, `message` says why (for
    /// the alert).
    bool added = false;
    std::string message;
    uint32_t ttl_s = 0;
    int64_t expires_s = 0;
    uint32_t repeat = 0;
};

struct AllowOutcome {
    std::string message;
    /// Block entries inside (or equal to) the new allow entry: they stay in the list but
    /// no longer drop anything.
    std::vector<Prefix> shadowed;
};

using WallClock = std::function<int64_t()>;
/// time(nullptr).
WallClock system_wall_clock();

inline constexpr size_t kDefaultReleaseHistory = 100000;

/// Call order at start: construct, apply_config() (config allow entries), restore() (the
/// BlockStore's load), set_journal(). After that every change is journaled first.
class BlockList {
public:
    BlockList(BlockTableSink& sink, ResponseConfig config, WallClock clock = system_wall_clock(),
            size_t release_history = kDefaultReleaseHistory);

    /// Limits, catch and release and the config allow entries (replaced by the new list:
    /// added and removed entries are audited as who "config"). Returns warnings.
    std::vector<std::string> apply_config(const ResponseConfig& config);
    /// Installs entries loaded from the store, without journaling. Expired and config
    /// entries are dropped; duplicates and sink errors are warnings.
    std::vector<std::string> restore(std::vector<BlockEntry> entries);
    void set_journal(BlockJournal* journal) { journal_ = journal; }
    void set_audit(AuditLog* audit) { audit_ = audit; }

    /// Errors: duplicate, operator block inside or equal to an allow entry ("refused: ..."),
    /// automatic block wider than the minimum prefix, capacity, sink or journal failure.
    /// An automatic block inside the allowlist is not an error: added=false, message says.
    Result<BlockOutcome> block(const BlockRequest& request);
    /// Removes an operator or detector block entry.
    Result<std::string> unblock(const Prefix& prefix, const std::string& who);
    Result<AllowOutcome> allow(
            const Prefix& prefix, const std::string& who, const std::string& reason);
    /// Refuses config entries.
    Result<std::string> unallow(const Prefix& prefix, const std::string& who);
    /// Removes entries whose expiry is at or before `now_s` and returns them. Expiries are
    /// not journaled: a load drops expired entries by the same wall clock.
    std::vector<BlockEntry> expire(int64_t now_s);

    const BlockEntry* find(const Prefix& prefix, EntryKind kind) const;
    /// The allow entry that contains a block entry (inside or equal), if any.
    const BlockEntry* shadowed_by(const BlockEntry& entry) const;
    /// Every entry, allow entries first, each group in prefix order.
    std::vector<BlockEntry> entries() const;
    /// Entries to persist (config entries left out).
    std::vector<BlockEntry> persistent_entries() const;
    uint64_t hits(const BlockEntry& entry) const;
    size_t exact_count() const { return exact_count_; }
    size_t prefix_count() const { return prefix_count_; }
    size_t size() const { return entries_.size(); }
    size_t release_history_size() const { return history_.size(); }

private:
    struct Release {
        int64_t ended_s = 0;
        uint32_t repeat = 0;
    };
    using HistoryList = std::list<std::pair<std::string, Release>>;

    static std::string key_of(const Prefix& prefix, EntryKind kind);
    /// Capacity check, then into the sink (prefixes staged, not committed).
    Status install(BlockEntry& entry);
    /// install(), commit, journal; undone on any failure.
    Status add_entry(BlockEntry& entry);
    /// Journal, then out of the sink and the list; audited.
    Result<BlockEntry> remove_entry(
            const std::string& key, const std::string& who, std::string_view action);
    void uninstall(const BlockEntry& entry);
    Status capacity_for(const BlockEntry& entry) const;
    Status journal(JournalChange::Op op, const BlockEntry& entry);
    void insert(BlockEntry entry);
    void erase(const std::string& key);
    const BlockEntry* allow_containing(const Prefix& prefix) const;
    uint32_t released_ttl(const std::string& key, uint32_t ttl_s, int64_t now_s, uint32_t& repeat);
    void remember_release(const std::string& key, const BlockEntry& entry, int64_t now_s);
    void audit(const std::string& who, std::string_view action, const Prefix& target,
            const std::string& reason, const std::string& result);

    BlockTableSink& sink_;
    ResponseConfig config_;
    WallClock clock_;
    size_t history_capacity_;
    BlockJournal* journal_ = nullptr;
    AuditLog* audit_ = nullptr;
    std::unordered_map<std::string, BlockEntry> entries_;
    /// (expires_s, key) of entries with a TTL, soonest first.
    std::set<std::pair<int64_t, std::string>> expiries_;
    /// Keys of the allow entries, checked on every block.
    std::set<std::string> allow_keys_;
    size_t exact_count_ = 0;
    size_t prefix_count_ = 0;
    /// Catch and release: most recently released first, bounded by history_capacity_.
    HistoryList history_order_;
    std::unordered_map<std::string, HistoryList::iterator> history_;
};

}  // namespace exfiltap::control
