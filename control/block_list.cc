#include "control/block_list.h"

#include <algorithm>
#include <ctime>
#include <string_view>
#include <tuple>

namespace exfiltap::control {
namespace {

uint8_t full_length(const Prefix& prefix) {
    return prefix.ip_version == 6 ? 128 : 32;
}

/// True when every address of `inner` is in `outer`.
bool inside_or_equal(const Prefix& inner, const Prefix& outer) {
    return outer.ip_version == inner.ip_version && outer.length <= inner.length
            && outer.contains(inner.ip_version, inner.addr);
}

/// An address alone ("10.0.0.5"), a real prefix with its length.
std::string shown(const Prefix& prefix) {
    std::string text = prefix.to_string();
    if (prefix.length == full_length(prefix)) {
        text.resize(text.rfind('/'));
    }
    return text;
}

std::string describe_owner(const BlockEntry& entry) {
    std::string text = "by " + entry.who;
    if (!entry.reason.empty()) {
        text += ", reason: " + entry.reason;
    }
    return text;
}

bool prefix_less(const Prefix& a, const Prefix& b) {
    return std::tie(a.ip_version, a.addr, a.length) < std::tie(b.ip_version, b.addr, b.length);
}

/// ttl × multiplier^repeat, saturating at `cap` (never below ttl itself).
uint32_t lengthened_ttl(uint32_t ttl_s, uint32_t repeat, const CatchAndRelease& rules) {
    const uint64_t cap = std::max<uint64_t>(rules.max_ttl_s, ttl_s);
    uint64_t ttl = ttl_s;
    for (uint32_t i = 0; i < repeat && ttl < cap; ++i) {
        ttl *= rules.multiplier;
    }
    return static_cast<uint32_t>(std::min(ttl, cap));
}

}  // namespace

std::string_view entry_kind_name(EntryKind kind) noexcept {
    return kind == EntryKind::Allow ? "allow" : "block";
}

std::string_view entry_source_name(EntrySource source) noexcept {
    switch (source) {
    case EntrySource::Operator:
        return "operator";
    case EntrySource::Detector:
        return "detector";
    case EntrySource::Config:
        return "config";
    }
    return "operator";
}

std::string operator_who(const std::string& user, uint32_t uid) {
    return "operator:" + user + "(uid " + std::to_string(uid) + ")";
}

std::string detector_who(std::string_view detector) {
    return "detector:" + std::string(detector);
}

std::optional<BlockRequest> block_request(const Decision& decision, std::string_view detector,
        std::string detail, std::string reason) {
    if (!decision.block_target || decision.shadow) {
        return std::nullopt;
    }
    return BlockRequest{*decision.block_target, EntrySource::Detector, detector_who(detector),
            std::move(detail), std::move(reason), decision.ttl_s};
}

WallClock system_wall_clock() {
    return [] {
        return static_cast<int64_t>(time(nullptr));
    };
}

BlockList::BlockList(
        BlockTableSink& sink, ResponseConfig config, WallClock clock, size_t release_history)
    : sink_(sink),
      config_(std::move(config)),
      clock_(std::move(clock)),
      history_capacity_(std::max<size_t>(release_history, 1)) {
    config_.allowlist.clear();  // installed by apply_config()
}

std::string BlockList::key_of(const Prefix& prefix, EntryKind kind) {
    std::string key;
    key.reserve(3 + prefix.addr.size());
    key.push_back(static_cast<char>(kind));
    key.push_back(static_cast<char>(prefix.ip_version));
    key.push_back(static_cast<char>(prefix.length));
    key.append(prefix.addr.begin(), prefix.addr.end());
    return key;
}

Status BlockList::capacity_for(const BlockEntry& entry) const {
    const bool exact =
            entry.kind == EntryKind::Block && entry.prefix.length == full_length(entry.prefix);
    if (exact && exact_count_ >= config_.exact_capacity) {
        return make_error("block table full: " + std::to_string(exact_count_)
                + " exact entries (response.block_table.exact_capacity)");
    }
    if (!exact && prefix_count_ >= config_.prefix_capacity) {
        return make_error("block table full: " + std::to_string(prefix_count_)
                + " prefix entries (response.block_table.prefix_capacity)");
    }
    return Ok{};
}

/// Puts the entry into the data path's table; prefixes are committed by the caller when
/// `commit` is false (restores stage many, then rebuild once).
Status BlockList::install(BlockEntry& entry) {
    auto room = capacity_for(entry);
    if (!room) {
        return room;
    }
    const bool allow = entry.kind == EntryKind::Allow;
    entry.exact = !allow && entry.prefix.length == full_length(entry.prefix);
    if (entry.exact) {
        auto slot = sink_.add_exact(entry.prefix);
        if (!slot) {
            return make_error("block table: " + slot.error());
        }
        entry.slot = *slot;
        ++exact_count_;
        return Ok{};
    }
    auto slot = sink_.stage_prefix(entry.prefix, allow);
    if (!slot) {
        return make_error("block table: " + slot.error());
    }
    entry.slot = *slot;
    ++prefix_count_;
    return Ok{};
}

void BlockList::uninstall(const BlockEntry& entry) {
    if (entry.exact) {
        sink_.remove_exact(entry.prefix);
        --exact_count_;
        return;
    }
    sink_.unstage_prefix(entry.prefix, entry.kind == EntryKind::Allow);
    --prefix_count_;
}

Status BlockList::journal(JournalChange::Op op, const BlockEntry& entry) {
    if (journal_ == nullptr || entry.source == EntrySource::Config) {
        return Ok{};
    }
    auto status = journal_->record(JournalChange{op, entry});
    if (!status) {
        return make_error(
                "not saved to the block list journal, change not made: " + status.error());
    }
    return Ok{};
}

void BlockList::insert(BlockEntry entry) {
    std::string key = key_of(entry.prefix, entry.kind);
    if (entry.expires_s != 0) {
        expiries_.emplace(entry.expires_s, key);
    }
    if (entry.kind == EntryKind::Allow) {
        allow_keys_.insert(key);
    }
    entries_.insert_or_assign(std::move(key), std::move(entry));
}

void BlockList::erase(const std::string& key) {
    const auto it = entries_.find(key);
    if (it == entries_.end()) {
        return;
    }
    if (it->second.expires_s != 0) {
        expiries_.erase({it->second.expires_s, key});
    }
    allow_keys_.erase(key);
    entries_.erase(it);
}

const BlockEntry* BlockList::allow_containing(const Prefix& prefix) const {
    // Allow entries are prefix-table entries, so there are at most prefix_capacity of them;
    // the exact block entries (millions) are never walked here.
    const BlockEntry* found = nullptr;
    for (const auto& key : allow_keys_) {
        const BlockEntry& entry = entries_.at(key);
        if (inside_or_equal(prefix, entry.prefix)
                && (found == nullptr || entry.prefix.length > found->prefix.length)) {
            found = &entry;
        }
    }
    return found;
}

uint32_t BlockList::released_ttl(
        const std::string& key, uint32_t ttl_s, int64_t now_s, uint32_t& repeat) {
    repeat = 0;
    const auto it = history_.find(key);
    if (ttl_s == 0 || it == history_.end()) {
        return ttl_s;
    }
    const Release& last = it->second->second;
    if (now_s - last.ended_s > static_cast<int64_t>(config_.catch_and_release.window_s)) {
        return ttl_s;
    }
    repeat = last.repeat + 1;
    return lengthened_ttl(ttl_s, repeat, config_.catch_and_release);
}

void BlockList::remember_release(const std::string& key, const BlockEntry& entry, int64_t now_s) {
    const auto it = history_.find(key);
    if (it != history_.end()) {
        history_order_.erase(it->second);
        history_.erase(it);
    }
    history_order_.emplace_front(key, Release{now_s, entry.repeat});
    history_.emplace(key, history_order_.begin());
    while (history_.size() > history_capacity_) {
        history_.erase(history_order_.back().first);
        history_order_.pop_back();
    }
}

void BlockList::audit(const std::string& who, std::string_view action, const Prefix& target,
        const std::string& reason, const std::string& result) {
    if (audit_ != nullptr) {
        audit_->write(AuditRecord{
                clock_(), who, std::string(action), target.to_string(), reason, result});
    }
}

Status BlockList::add_entry(BlockEntry& entry) {
    auto status = install(entry);
    if (!status) {
        return status;
    }
    if (!entry.exact) {
        status = sink_.commit_prefixes();
    }
    if (status) {
        status = journal(JournalChange::Op::Add, entry);
    }
    if (!status) {
        uninstall(entry);
        if (!entry.exact) {
            (void)sink_.commit_prefixes();
        }
    }
    return status;
}

Result<BlockEntry> BlockList::remove_entry(
        const std::string& key, const std::string& who, std::string_view action) {
    const BlockEntry entry = entries_.at(key);
    auto status = journal(JournalChange::Op::Remove, entry);
    if (!status) {
        audit(who, action, entry.prefix, "", "error: " + status.error());
        return make_error(status.error());
    }
    uninstall(entry);
    if (!entry.exact) {
        (void)sink_.commit_prefixes();
    }
    erase(key);
    audit(who, action, entry.prefix, entry.reason, "ok");
    return entry;
}

std::vector<std::string> BlockList::apply_config(const ResponseConfig& config) {
    std::vector<std::string> warnings;
    std::vector<Prefix> wanted = config.allowlist;
    config_ = config;
    config_.allowlist.clear();
    bool staged = false;

    std::vector<std::string> gone;
    for (const auto& key : allow_keys_) {
        const bool kept = std::any_of(wanted.begin(), wanted.end(),
                [&](const Prefix& prefix) { return key_of(prefix, EntryKind::Allow) == key; });
        if (entries_.at(key).source == EntrySource::Config && !kept) {
            gone.push_back(key);
        }
    }
    for (const auto& key : gone) {
        const BlockEntry entry = entries_.at(key);
        uninstall(entry);
        staged = true;
        erase(key);
        audit("config", "unallow", entry.prefix, "removed from response.allowlist", "ok");
    }

    for (const auto& prefix : wanted) {
        const auto existing = entries_.find(key_of(prefix, EntryKind::Allow));
        if (existing != entries_.end()) {
            if (existing->second.source != EntrySource::Config) {
                warnings.push_back("response.allowlist: " + prefix.to_string()
                        + " is already allowlisted " + describe_owner(existing->second)
                        + "; kept as that entry");
            }
            continue;
        }
        BlockEntry entry{prefix, EntryKind::Allow, EntrySource::Config, "config", "",
                "response.allowlist", clock_()};
        const Status status = install(entry);
        if (!status) {
            warnings.push_back("response.allowlist: " + prefix.to_string()
                    + " not installed: " + status.error());
            continue;
        }
        staged = true;
        audit("config", "allow", prefix, entry.reason, "ok");
        insert(std::move(entry));
    }
    if (staged) {
        auto status = sink_.commit_prefixes();
        if (!status) {
            warnings.push_back("block table: allowlist not active: " + status.error());
        }
    }
    return warnings;
}

std::vector<std::string> BlockList::restore(std::vector<BlockEntry> entries) {
    std::vector<std::string> warnings;
    const int64_t now = clock_();
    size_t expired = 0;
    bool staged = false;
    for (auto& entry : entries) {
        if (entry.source == EntrySource::Config) {
            continue;
        }
        if (entry.expires_s != 0 && entry.expires_s <= now) {
            ++expired;
            continue;
        }
        const auto existing = entries_.find(key_of(entry.prefix, entry.kind));
        if (existing != entries_.end()) {
            warnings.push_back("saved " + std::string(entry_kind_name(entry.kind)) + " entry "
                    + entry.prefix.to_string() + " dropped: already present "
                    + describe_owner(existing->second));
            continue;
        }
        const Status status = install(entry);
        if (!status) {
            warnings.push_back("saved " + std::string(entry_kind_name(entry.kind)) + " entry "
                    + entry.prefix.to_string() + " not restored: " + status.error());
            continue;
        }
        staged = staged || !entry.exact;
        insert(std::move(entry));
    }
    if (expired != 0) {
        warnings.push_back(std::to_string(expired) + " saved entries expired while stopped");
    }
    if (staged) {
        auto status = sink_.commit_prefixes();
        if (!status) {
            warnings.push_back("block table: restored prefixes not active: " + status.error());
        }
    }
    return warnings;
}

Result<BlockOutcome> BlockList::block(const BlockRequest& request) {
    const int64_t now = clock_();
    const Prefix& prefix = request.prefix;
    const bool automatic = request.source == EntrySource::Detector;
    const std::string_view action = "block";
    auto refuse = [&](const std::string& why) -> Result<BlockOutcome> {
        audit(request.who, action, prefix, request.reason, "refused: " + why);
        return make_error("refused: " + why);
    };
    if (request.source == EntrySource::Config) {
        return make_error("refused: block entries do not come from the config");
    }

    const uint8_t min_length =
            prefix.ip_version == 6 ? config_.min_prefix_v6 : config_.min_prefix_v4;
    if (automatic && prefix.length < min_length) {
        return refuse("automatic block of " + prefix.to_string() + " is wider than /"
                + std::to_string(min_length) + " (response.min_prefix_v"
                + std::to_string(prefix.ip_version) + ")");
    }
    if (const BlockEntry* allowed = allow_containing(prefix)) {
        const std::string why = shown(prefix) + " is inside allowlisted "
                + allowed->prefix.to_string() + " (" + describe_owner(*allowed) + ")";
        if (!automatic) {
            return refuse(why);
        }
        audit(request.who, action, prefix, request.reason, "skipped: " + why);
        return BlockOutcome{false, "skipped: " + why};
    }
    const std::string key = key_of(prefix, EntryKind::Block);
    if (const auto existing = entries_.find(key); existing != entries_.end()) {
        const std::string why =
                shown(prefix) + " is already blocked " + describe_owner(existing->second);
        if (automatic) {
            return make_error(why);  // a repeat alert, not an operator's act: not audited
        }
        return refuse(why);
    }

    BlockEntry entry{prefix, EntryKind::Block, request.source, request.who, request.detail,
            request.reason, now};
    entry.ttl_s = automatic ? released_ttl(key, request.ttl_s, now, entry.repeat) : request.ttl_s;
    entry.expires_s = entry.ttl_s == 0 ? 0 : now + entry.ttl_s;
    const Status status = add_entry(entry);
    if (!status) {
        audit(request.who, action, prefix, request.reason, "error: " + status.error());
        return make_error(status.error());
    }

    BlockOutcome outcome{
            true, "blocked " + shown(prefix), entry.ttl_s, entry.expires_s, entry.repeat};
    if (entry.ttl_s != 0) {
        outcome.message += " for " + std::to_string(entry.ttl_s) + " s";
    }
    if (entry.repeat != 0) {
        outcome.message += " (blocked again within "
                + std::to_string(config_.catch_and_release.window_s) + " s of release, repeat "
                + std::to_string(entry.repeat) + ")";
    }
    audit(request.who, action, prefix, request.reason, "ok: " + outcome.message);
    insert(std::move(entry));
    return outcome;
}

Result<std::string> BlockList::unblock(const Prefix& prefix, const std::string& who) {
    const std::string key = key_of(prefix, EntryKind::Block);
    if (!entries_.contains(key)) {
        const std::string why = shown(prefix) + " is not in the block list";
        audit(who, "unblock", prefix, "", "refused: " + why);
        return make_error("refused: " + why);
    }
    auto removed = remove_entry(key, who, "unblock");
    if (!removed) {
        return make_error(removed.error());
    }
    // An operator's release says the block was a mistake: the peer starts afresh.
    if (const auto past = history_.find(key); past != history_.end()) {
        history_order_.erase(past->second);
        history_.erase(past);
    }
    return "unblocked " + shown(prefix) + " (was blocked " + describe_owner(*removed) + ")";
}

Result<AllowOutcome> BlockList::allow(
        const Prefix& prefix, const std::string& who, const std::string& reason) {
    const std::string key = key_of(prefix, EntryKind::Allow);
    if (const auto existing = entries_.find(key); existing != entries_.end()) {
        const std::string why =
                prefix.to_string() + " is already allowlisted " + describe_owner(existing->second);
        audit(who, "allow", prefix, reason, "refused: " + why);
        return make_error("refused: " + why);
    }
    BlockEntry entry{prefix, EntryKind::Allow, EntrySource::Operator, who, "", reason, clock_()};
    const Status status = add_entry(entry);
    if (!status) {
        audit(who, "allow", prefix, reason, "refused: " + status.error());
        return make_error(status.error());
    }

    AllowOutcome outcome;
    for (const auto& [other_key, other] : entries_) {
        if (other.kind == EntryKind::Block && inside_or_equal(other.prefix, prefix)) {
            outcome.shadowed.push_back(other.prefix);
        }
    }
    std::sort(outcome.shadowed.begin(), outcome.shadowed.end(), prefix_less);
    outcome.message = "allowlisted " + prefix.to_string();
    if (!outcome.shadowed.empty()) {
        outcome.message += "; " + std::to_string(outcome.shadowed.size())
                + " block entries inside it stay listed but no longer drop (first: "
                + outcome.shadowed.front().to_string() + ")";
    }
    audit(who, "allow", prefix, reason, "ok: " + outcome.message);
    insert(std::move(entry));
    return outcome;
}

Result<std::string> BlockList::unallow(const Prefix& prefix, const std::string& who) {
    const std::string key = key_of(prefix, EntryKind::Allow);
    const auto it = entries_.find(key);
    std::string why;
    if (it == entries_.end()) {
        why = prefix.to_string() + " is not in the allowlist";
    } else if (it->second.source == EntrySource::Config) {
        why = prefix.to_string()
                + " is allowlisted by the config file (response.allowlist); remove it there and "
                  "reload";
    }
    if (!why.empty()) {
        audit(who, "unallow", prefix, "", "refused: " + why);
        return make_error("refused: " + why);
    }
    auto removed = remove_entry(key, who, "unallow");
    if (!removed) {
        return make_error(removed.error());
    }
    return "removed " + prefix.to_string() + " from the allowlist (was " + describe_owner(*removed)
            + ")";
}

std::vector<BlockEntry> BlockList::expire(int64_t now_s) {
    std::vector<BlockEntry> expired;
    bool staged = false;
    while (!expiries_.empty() && expiries_.begin()->first <= now_s) {
        const std::string key = expiries_.begin()->second;
        const auto it = entries_.find(key);
        if (it == entries_.end()) {
            expiries_.erase(expiries_.begin());
            continue;
        }
        BlockEntry entry = it->second;
        uninstall(entry);
        staged = staged || !entry.exact;
        if (entry.kind == EntryKind::Block) {
            remember_release(key, entry, now_s);
        }
        erase(key);
        audit("system", "expire", entry.prefix, entry.reason,
                "ok: TTL of " + std::to_string(entry.ttl_s) + " s ended (" + entry.who + ")");
        expired.push_back(std::move(entry));
    }
    if (staged) {
        (void)sink_.commit_prefixes();
    }
    return expired;
}

const BlockEntry* BlockList::find(const Prefix& prefix, EntryKind kind) const {
    const auto it = entries_.find(key_of(prefix, kind));
    return it == entries_.end() ? nullptr : &it->second;
}

const BlockEntry* BlockList::shadowed_by(const BlockEntry& entry) const {
    return entry.kind == EntryKind::Block ? allow_containing(entry.prefix) : nullptr;
}

std::vector<BlockEntry> BlockList::entries() const {
    std::vector<BlockEntry> out;
    out.reserve(entries_.size());
    for (const auto& [key, entry] : entries_) {
        out.push_back(entry);
    }
    std::sort(out.begin(), out.end(), [](const BlockEntry& a, const BlockEntry& b) {
        if (a.kind != b.kind) {
            return a.kind == EntryKind::Allow;
        }
        return prefix_less(a.prefix, b.prefix);
    });
    return out;
}

std::vector<BlockEntry> BlockList::persistent_entries() const {
    std::vector<BlockEntry> out = entries();
    std::erase_if(out, [](const BlockEntry& entry) { return entry.source == EntrySource::Config; });
    return out;
}

uint64_t BlockList::hits(const BlockEntry& entry) const {
    return sink_.hits(entry.exact, entry.slot);
}

}  // namespace exfiltap::control
