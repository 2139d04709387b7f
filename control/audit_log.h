// The audit log of block-list changes (DESIGN.md "Response"): who did what to which entry,
// why, and what came of it, one JSON object per line. Control thread only; not thread safe.
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>

#include "common/result.h"

namespace exfiltap::control {

struct AuditRecord {
    /// Wall time, seconds since the epoch.
    int64_t time_s = 0;
    /// "operator:alice(uid 1000)", "detector:content", "config", "system".
    std::string who;
    /// block, unblock, allow, unallow, expire, restore, ...
    std::string action;
    /// The entry's prefix ("203.0.113.7/32").
    std::string target;
    std::string reason;
    /// "ok", "refused: ...", "skipped: ...", "error: ...".
    std::string result;
};

/// {"time":"2026-12-04T20:07:25Z","who":...,"action":...,"target":...,"reason":...,
/// "result":...}: fields in that order, bytes that are not UTF-8 replaced.
std::string audit_to_json(const AuditRecord& record);

/// An append-only JSON-lines file, mode 0640 (before umask). Each record is one write of a
/// whole line followed by a flush, so a reader never sees half a record; no fsync (the block
/// list's own journal is the durable record).
class AuditLog {
public:
    static Result<AuditLog> open(const std::string& path);
    AuditLog() = default;
    AuditLog(AuditLog&& other) noexcept;
    AuditLog& operator=(AuditLog&& other) noexcept;
    AuditLog(const AuditLog&) = delete;
    AuditLog& operator=(const AuditLog&) = delete;
    ~AuditLog();

    void write(const AuditRecord& record);
    /// Closes and opens the path again (log rotation on SIGHUP); keeps the old file on error.
    Status reopen();
    const std::string& path() const { return path_; }
    uint64_t written() const { return written_; }
    /// Records that could not be written (disk full, ...).
    uint64_t failed() const { return failed_; }

private:
    std::string path_;
    FILE* file_ = nullptr;
    uint64_t written_ = 0;
    uint64_t failed_ = 0;
};

}  // namespace exfiltap::control
