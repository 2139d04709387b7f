// The control socket's JSON protocol (DESIGN.md "Control socket"): one JSON object per line
// each way, in the shape Suricata's socket uses.
//   request: {"command": "block", "arguments": {"address": "192.0.2.7", "ttl_s": 600}}
//   reply:   {"return": "OK", "message": <any JSON>} or {"return": "NOK", "message": "why"}
// This file only checks shapes and turns a line into a typed Request; the daemon's
// CommandHandler (control_server.h) does the work. Pure functions, no I/O, thread-safe.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "control/prefix.h"

#include <nlohmann/json.hpp>

namespace exfiltap::control {

enum class Command : uint8_t {
    Block,
    Unblock,
    Allow,
    Unallow,
    List,
    Stats,
    Flows,
    Alerts,
    Incidents,
    Evidence,
    Reload,
    ReopenLogFiles,
    Version,
    CommandList,
};
inline constexpr size_t kCommandCount = 14;

/// The wire names, indexed by Command ("reopen-log-files", "command-list", ...).
inline constexpr std::array<std::string_view, kCommandCount> kCommandNames = {"block", "unblock",
        "allow", "unallow", "list", "stats", "flows", "alerts", "incidents", "evidence", "reload",
        "reopen-log-files", "version", "command-list"};

constexpr std::string_view command_name(Command command) {
    return kCommandNames[static_cast<size_t>(command)];
}

/// `list` {kind}: which table to show.
enum class ListKind : uint8_t {
    All,
    Block,
    Allow,
};

/// Bounds on arguments, so one request cannot ask for unbounded work or audit-log text.
inline constexpr size_t kMaxReasonBytes = 256;
inline constexpr size_t kMaxIncidentIdBytes = 64;
inline constexpr uint32_t kMaxFlowsTop = 1000;
inline constexpr uint32_t kMaxAlertsCount = 10000;
inline constexpr size_t kMaxEvidenceFlowIds = 256;
inline constexpr uint32_t kDefaultFlowsTop = 10;
inline constexpr uint32_t kDefaultAlertsCount = 20;

/// A validated request. Only the fields of its command are meaningful; the others keep the
/// defaults below.
struct Request {
    Command command = Command::Version;
    /// block, unblock, allow, unallow: the address or prefix (host bits refused).
    Prefix address;
    /// block: seconds until the block expires (1..2^32-1); absent: the handler's default.
    std::optional<uint32_t> ttl_s;
    /// block, allow: the operator's reason for the audit log (printable UTF-8, may be empty).
    std::string reason;
    /// list
    ListKind kind = ListKind::All;
    /// flows: how many top talkers (1..kMaxFlowsTop).
    uint32_t top = kDefaultFlowsTop;
    /// alerts: how many recent alerts (0..kMaxAlertsCount) and whether to keep streaming.
    uint32_t count = kDefaultAlertsCount;
    bool follow = false;
    /// incidents: one incident's id; empty lists all open incidents. evidence: what the
    /// evidence is for (the file's comment and name; empty: "operator").
    std::string incident_id;
    /// evidence: the flows whose recorded packets go into one pcapng file
    /// (1..kMaxEvidenceFlowIds flow ids as alerts give them).
    std::vector<uint64_t> flow_ids;
};

/// Parses one request line (without its newline). The error is the NOK message, precise
/// and safe to send back: malformed JSON, a non-object, duplicate keys, a missing or unknown
/// command, unknown argument keys, wrong types, out-of-range numbers, bad addresses.
/// `command`, when given, receives the command even when its arguments are refused (for
/// counting refusals per command).
Result<Request> parse_request(std::string_view line, std::optional<Command>* command = nullptr);

/// The request as a JSON object (for tests and for clients that build requests).
nlohmann::json request_to_json(const Request& request);

/// A reply. `message` is any JSON for OK and a string for NOK.
struct Reply {
    bool ok = true;
    nlohmann::json message;

    static Reply success(nlohmann::json message) { return Reply{true, std::move(message)}; }
    static Reply failure(std::string why) { return Reply{false, std::move(why)}; }
};

/// One reply line, newline included. Invalid UTF-8 in strings is replaced, never thrown on.
std::string reply_line(const Reply& reply);

/// The `command-list` message: {"count": N, "commands": [...]}, as Suricata answers.
nlohmann::json command_list_message();

/// Human name of a list kind ("block", "allow", "all").
std::string_view list_kind_name(ListKind kind);

// How exfiltapctl renders an OK message, so handlers know what reads well: a string as is;
// an array of objects as an aligned table (columns in first-seen key order, numbers right-
// aligned, keys named bytes/*_bytes/bytes_* in KiB/MiB, integer added/expires/opened/updated/
// *_at as UTC times); an array of scalars one per line; an object as aligned "key value"
// pairs (nested objects flattened to dotted keys) followed by a titled table for each array.
// `alerts` replies are EVE records, oldest first, shown one alert per row; with follow, each
// later alert is one EVE record per line, and {"dropped": N} says N alerts were lost for a
// slow reader.

}  // namespace exfiltap::control
