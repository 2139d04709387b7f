#include "control/block_store.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdio>
#include <map>
#include <stdexcept>
#include <system_error>
#include <utility>

#include <nlohmann/json.hpp>

namespace exfiltap::control {
namespace {

using Json = nlohmann::ordered_json;

constexpr int kSnapshotVersion = 1;
constexpr std::string_view kJournalField = "change";
constexpr std::string_view kSnapshotField = "snapshot";

constexpr std::array<uint32_t, 256> make_crc_table() {
    std::array<uint32_t, 256> table{};
    for (uint32_t i = 0; i < table.size(); ++i) {
        uint32_t value = i;
        for (int bit = 0; bit < 8; ++bit) {
            value = (value & 1U) != 0 ? 0xEDB88320U ^ (value >> 1) : value >> 1;
        }
        table[i] = value;
    }
    return table;
}
constexpr std::array<uint32_t, 256> kCrcTable = make_crc_table();

std::string errno_text(int error) {
    return std::generic_category().message(error);
}

/// {"crc32":"<hex>","<field>":<payload>}: the CRC covers the payload bytes as written, so
/// checking needs no re-serialisation.
std::string envelope(std::string_view field, const std::string& payload) {
    std::array<char, 16> crc{};
    snprintf(crc.data(), crc.size(), "%08x", crc32_of(payload));
    return R"({"crc32":")" + std::string(crc.data()) + R"(",")" + std::string(field) + R"(":)"
            + payload + "}";
}

/// The payload of an envelope line (no newline); "" and `why` set when it does not check.
std::string unwrap(std::string_view field, std::string_view line, std::string& why) {
    const std::string head = R"({"crc32":")";
    const std::string middle = R"(",")" + std::string(field) + R"(":)";
    const size_t payload_at = head.size() + 8 + middle.size();
    if (line.size() <= payload_at || line.substr(0, head.size()) != head
            || line.substr(head.size() + 8, middle.size()) != middle || line.back() != '}') {
        why = "not a checksummed record";
        return {};
    }
    uint32_t stored = 0;
    for (const char c : line.substr(head.size(), 8)) {
        const int digit = (c >= '0' && c <= '9') ? c - '0'
                : (c >= 'a' && c <= 'f')         ? c - 'a' + 10
                                                 : -1;
        if (digit < 0) {
            why = "bad checksum field";
            return {};
        }
        stored = (stored << 4) | static_cast<uint32_t>(digit);
    }
    std::string_view payload = line.substr(payload_at, line.size() - payload_at - 1);
    if (crc32_of(payload) != stored) {
        why = "checksum mismatch";
        return {};
    }
    return std::string(payload);
}

Json entry_to_json(const BlockEntry& entry) {
    Json json;
    json["prefix"] = entry.prefix.to_string();
    json["kind"] = entry_kind_name(entry.kind);
    json["source"] = entry_source_name(entry.source);
    json["who"] = entry.who;
    json["detail"] = entry.detail;
    json["reason"] = entry.reason;
    json["created_s"] = entry.created_s;
    json["ttl_s"] = entry.ttl_s;
    json["expires_s"] = entry.expires_s;
    json["repeat"] = entry.repeat;
    return json;
}

bool kind_from(const Json& json, EntryKind& out) {
    const std::string text = json.at("kind").get<std::string>();
    out = text == "allow" ? EntryKind::Allow : EntryKind::Block;
    return text == "allow" || text == "block";
}

Prefix prefix_from(const Json& json) {
    auto prefix = Prefix::parse(json.at("prefix").get<std::string>());
    if (!prefix) {
        throw std::invalid_argument(prefix.error());
    }
    return *prefix;
}

/// Throws (nlohmann or std::invalid_argument) on anything missing or of the wrong type.
BlockEntry entry_from_json(const Json& json) {
    BlockEntry entry;
    entry.prefix = prefix_from(json);
    if (!kind_from(json, entry.kind)) {
        throw std::invalid_argument("unknown kind");
    }
    const std::string source = json.at("source").get<std::string>();
    if (source == "operator") {
        entry.source = EntrySource::Operator;
    } else if (source == "detector") {
        entry.source = EntrySource::Detector;
    } else {
        throw std::invalid_argument("unknown source '" + source + "'");
    }
    entry.who = json.at("who").get<std::string>();
    entry.detail = json.at("detail").get<std::string>();
    entry.reason = json.at("reason").get<std::string>();
    entry.created_s = json.at("created_s").get<int64_t>();
    entry.ttl_s = json.at("ttl_s").get<uint32_t>();
    entry.expires_s = json.at("expires_s").get<int64_t>();
    entry.repeat = json.at("repeat").get<uint32_t>();
    return entry;
}

std::string change_payload(const JournalChange& change) {
    Json json;
    if (change.op == JournalChange::Op::Add) {
        json["op"] = "add";
        json["entry"] = entry_to_json(change.entry);
    } else {
        json["op"] = "remove";
        json["kind"] = entry_kind_name(change.entry.kind);
        json["prefix"] = change.entry.prefix.to_string();
    }
    return json.dump(-1, ' ', false, Json::error_handler_t::replace);
}

/// Entries keyed by kind and prefix: the order a replay applies changes in does not depend
/// on anything but the journal.
using EntryMap = std::map<std::pair<EntryKind, std::string>, BlockEntry>;

void apply_change(const Json& change, EntryMap& entries) {
    const std::string op = change.at("op").get<std::string>();
    if (op == "add") {
        BlockEntry entry = entry_from_json(change.at("entry"));
        entries.insert_or_assign({entry.kind, entry.prefix.to_string()}, std::move(entry));
    } else if (op == "remove") {
        EntryKind kind{};
        if (!kind_from(change, kind)) {
            throw std::invalid_argument("unknown kind");
        }
        entries.erase({kind, prefix_from(change).to_string()});
    } else {
        throw std::invalid_argument("unknown op '" + op + "'");
    }
}

Result<std::string> read_all(int fd, const std::string& path) {
    std::string data;
    std::array<char, 65536> buffer{};
    for (;;) {
        const ssize_t got = ::read(fd, buffer.data(), buffer.size());
        if (got < 0 && errno == EINTR) {
            continue;
        }
        if (got < 0) {
            return make_error(path + ": cannot read: " + errno_text(errno));
        }
        if (got == 0) {
            return data;
        }
        data.append(buffer.data(), static_cast<size_t>(got));
    }
}

bool write_all(int fd, std::string_view data) {
    while (!data.empty()) {
        const ssize_t done = ::write(fd, data.data(), data.size());
        if (done < 0 && errno == EINTR) {
            continue;
        }
        if (done <= 0) {
            return false;
        }
        data.remove_prefix(static_cast<size_t>(done));
    }
    return true;
}

/// "<path>.corrupt-<now>", with "-2", "-3", ... when that exists already.
std::string aside_name(const std::string& path, int64_t now_s) {
    const std::string base = path + ".corrupt-" + std::to_string(now_s);
    std::string name = base;
    for (int n = 2; access(name.c_str(), F_OK) == 0; ++n) {
        name = base + "-" + std::to_string(n);
    }
    return name;
}

Status write_file(const std::string& path, std::string_view data) {
    const int fd =
            ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) {
        return make_error(path + ": cannot create: " + errno_text(errno));
    }
    const bool ok = fchmod(fd, 0600) == 0 && write_all(fd, data) && fsync(fd) == 0;
    const int saved = errno;
    ::close(fd);
    if (!ok) {
        return make_error(path + ": cannot write: " + errno_text(saved));
    }
    return Ok{};
}

}  // namespace

uint32_t crc32_of(std::string_view data) noexcept {
    uint32_t crc = 0xFFFFFFFFU;
    for (const char c : data) {
        crc = kCrcTable[(crc ^ static_cast<uint8_t>(c)) & 0xFFU] ^ (crc >> 8);
    }
    return crc ^ 0xFFFFFFFFU;
}

std::string journal_line(const JournalChange& change) {
    return envelope(kJournalField, change_payload(change)) + "\n";
}

BlockStore::BlockStore(BlockStoreSettings settings) : settings_(std::move(settings)) {}

BlockStore::~BlockStore() {
    if (journal_fd_ >= 0) {
        ::close(journal_fd_);
    }
}

std::string BlockStore::journal_path() const {
    return settings_.state_dir + "/" + std::string(kJournalName);
}

std::string BlockStore::snapshot_path() const {
    return settings_.state_dir + "/" + std::string(kSnapshotName);
}

Status BlockStore::sync_dir() const {
    const int fd = ::open(settings_.state_dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        return make_error(settings_.state_dir + ": cannot open: " + errno_text(errno));
    }
    const bool ok = fsync(fd) == 0;
    const int saved = errno;
    ::close(fd);
    if (!ok) {
        return make_error(settings_.state_dir + ": cannot fsync: " + errno_text(saved));
    }
    return Ok{};
}

Result<StoreLoad> BlockStore::load(int64_t now_s) {
    if (journal_fd_ >= 0) {
        return make_error(journal_path() + ": already loaded");
    }
    if (mkdir(settings_.state_dir.c_str(), 0700) != 0 && errno != EEXIST) {
        return make_error(
                settings_.state_dir + ": cannot create state directory: " + errno_text(errno));
    }
    StoreLoad out;
    const std::string temp = snapshot_path() + ".tmp";
    if (unlink(temp.c_str()) == 0) {
        out.warnings.push_back(temp + ": removed an unfinished snapshot (the journal still "
                                      "holds its changes)");
    }
    std::vector<BlockEntry> snapshot;
    auto status = load_snapshot(now_s, snapshot, out);
    if (status) {
        status = replay_journal(now_s, snapshot, out);
    }
    if (!status) {
        return make_error(status.error());
    }
    size_t expired = 0;
    for (auto& entry : snapshot) {
        if (entry.expires_s != 0 && entry.expires_s <= now_s) {
            ++expired;
        } else {
            out.entries.push_back(std::move(entry));
        }
    }
    if (expired != 0) {
        out.warnings.push_back(std::to_string(expired)
                + " saved block list entries expired while stopped and were dropped");
    }
    last_snapshot_s_ = now_s;
    return out;
}

Status BlockStore::load_snapshot(int64_t now_s, std::vector<BlockEntry>& entries, StoreLoad& out) {
    const std::string path = snapshot_path();
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) {
        return errno == ENOENT ? Status(Ok{})
                               : make_error(path + ": cannot open: " + errno_text(errno));
    }
    auto data = read_all(fd, path);
    ::close(fd);
    if (!data) {
        return make_error(data.error());
    }

    std::string why;
    std::string payload;
    if (data->empty() || data->back() != '\n') {
        why = "incomplete file";
    } else {
        data->pop_back();
        payload = unwrap(kSnapshotField, *data, why);
    }
    if (why.empty()) {
        const Json json = Json::parse(payload, nullptr, false);
        if (json.is_discarded() || !json.is_object() || !json.contains("entries")
                || !json["entries"].is_array() || json.value("version", 0) != kSnapshotVersion) {
            why = "checksum good but not a version " + std::to_string(kSnapshotVersion)
                    + " snapshot";
        } else {
            size_t bad = 0;
            for (const auto& item : json["entries"]) {
                try {
                    entries.push_back(entry_from_json(item));
                } catch (const std::exception&) {
                    ++bad;
                }
            }
            if (bad != 0) {
                out.warnings.push_back(path + ": " + std::to_string(bad)
                        + " entries could not be read and were skipped");
            }
            return Ok{};
        }
    }

    const std::string aside = aside_name(path, now_s);
    if (rename(path.c_str(), aside.c_str()) != 0) {
        return make_error(
                path + " is corrupt (" + why + ") and cannot be moved aside: " + errno_text(errno));
    }
    (void)sync_dir();
    out.warnings.push_back(path + " is corrupt (" + why + "); moved to " + aside
            + "; only the journal's changes are loaded");
    return Ok{};
}

Status BlockStore::replay_journal(int64_t now_s, std::vector<BlockEntry>& entries, StoreLoad& out) {
    const std::string path = journal_path();
    const bool existed = access(path.c_str(), F_OK) == 0;
    journal_fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (journal_fd_ < 0) {
        return make_error(path + ": cannot open: " + errno_text(errno));
    }
    if (!existed) {
        (void)sync_dir();
    }
    auto data = read_all(journal_fd_, path);
    if (!data) {
        return make_error(data.error());
    }

    EntryMap map;
    for (auto& entry : entries) {
        map.insert_or_assign({entry.kind, entry.prefix.to_string()}, std::move(entry));
    }
    size_t pos = 0;
    size_t good_lines = 0;
    size_t skipped = 0;
    std::string why;
    while (pos < data->size()) {
        const size_t end = data->find('\n', pos);
        if (end == std::string::npos) {
            why = "last line has no end (torn write)";
            break;
        }
        const std::string payload =
                unwrap(kJournalField, std::string_view(*data).substr(pos, end - pos), why);
        if (!why.empty()) {
            break;
        }
        try {
            apply_change(Json::parse(payload), map);
        } catch (const std::exception&) {
            ++skipped;  // written by another version: the checksum is good, the content not ours
        }
        pos = end + 1;
        ++good_lines;
        ++changes_since_snapshot_;
    }
    if (skipped != 0) {
        out.warnings.push_back(path + ": " + std::to_string(skipped)
                + " changes with a good checksum could not be read and were skipped");
    }

    if (pos < data->size()) {
        const std::string_view rest = std::string_view(*data).substr(pos);
        size_t lines = static_cast<size_t>(std::count(rest.begin(), rest.end(), '\n'));
        lines += rest.back() != '\n' ? 1 : 0;
        const std::string aside = aside_name(path, now_s);
        std::string kept = "; the cut bytes are in " + aside;
        if (!write_file(aside, rest)) {
            kept = "; the cut bytes could not be kept";
        }
        if (ftruncate(journal_fd_, static_cast<off_t>(pos)) != 0 || fsync(journal_fd_) != 0) {
            return make_error(path + ": cannot cut the corrupt tail: " + errno_text(errno));
        }
        out.warnings.push_back(path + ": line " + std::to_string(good_lines + 1) + " is corrupt ("
                + why + "); cut " + std::to_string(rest.size()) + " bytes (" + std::to_string(lines)
                + " lines) after the last good line " + std::to_string(good_lines) + kept);
    }

    entries.clear();
    for (auto& [key, entry] : map) {
        entries.push_back(std::move(entry));
    }
    return Ok{};
}

Status BlockStore::record(const JournalChange& change) {
    if (journal_fd_ < 0) {
        return make_error(journal_path() + ": journal not open (load() first)");
    }
    struct stat before {};
    if (fstat(journal_fd_, &before) != 0) {
        return make_error(journal_path() + ": " + errno_text(errno));
    }
    const std::string line = journal_line(change);
    if (!write_all(journal_fd_, line) || fdatasync(journal_fd_) != 0) {
        const int saved = errno;
        // A half-written line would make every later line unreachable on load.
        (void)ftruncate(journal_fd_, before.st_size);
        return make_error(journal_path() + ": cannot write: " + errno_text(saved));
    }
    ++changes_since_snapshot_;
    return Ok{};
}

bool BlockStore::snapshot_due(int64_t now_s) const {
    return changes_since_snapshot_ >= settings_.snapshot_every_changes
            || (changes_since_snapshot_ != 0
                    && now_s - last_snapshot_s_
                            >= static_cast<int64_t>(settings_.snapshot_every_s));
}

Status BlockStore::write_snapshot(const std::vector<BlockEntry>& entries, int64_t now_s) {
    Json json;
    json["version"] = kSnapshotVersion;
    json["written_s"] = now_s;
    json["entries"] = Json::array();
    for (const auto& entry : entries) {
        if (entry.source != EntrySource::Config) {
            json["entries"].push_back(entry_to_json(entry));
        }
    }
    const std::string data =
            envelope(kSnapshotField, json.dump(-1, ' ', false, Json::error_handler_t::replace))
            + "\n";
    const std::string temp = snapshot_path() + ".tmp";
    auto status = write_file(temp, data);
    if (!status) {
        (void)unlink(temp.c_str());
        return status;
    }
    if (rename(temp.c_str(), snapshot_path().c_str()) != 0) {
        const int saved = errno;
        (void)unlink(temp.c_str());
        return make_error(snapshot_path() + ": cannot rename into place: " + errno_text(saved));
    }
    status = sync_dir();
    if (!status) {
        return status;
    }
    // Only now is the snapshot durable, so only now may the journal forget its changes.
    if (journal_fd_ >= 0 && (ftruncate(journal_fd_, 0) != 0 || fsync(journal_fd_) != 0)) {
        return make_error(
                journal_path() + ": cannot truncate after snapshot: " + errno_text(errno));
    }
    changes_since_snapshot_ = 0;
    last_snapshot_s_ = now_s;
    return Ok{};
}

Status BlockStore::maybe_snapshot(const BlockList& list, int64_t now_s) {
    if (!snapshot_due(now_s)) {
        return Ok{};
    }
    return write_snapshot(list.persistent_entries(), now_s);
}

}  // namespace exfiltap::control
