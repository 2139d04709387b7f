// The SIEM output sections of the config (`outputs.syslog`, `outputs.redis`, DESIGN.md
// "Outputs"): where the records go, in which form, and how many may wait. Control thread,
// at load and reload.
#pragma once

#include <cstdint>
#include <string>

#include "common/result.h"
#include "control/config_reader.h"

namespace exfiltap::control {

enum class SyslogTransport : uint8_t {
    Udp,
    Tcp,
    Unix,
};

enum class SyslogFormat : uint8_t {
    Json,  // MSG is the alert's JSON line
    Cef,   // MSG is a CEF line
};

enum class RedisMode : uint8_t {
    List,     // RPUSH key record
    Channel,  // PUBLISH key record
};

/// Records a queue holds at most; enqueueing beyond drops and counts.
inline constexpr uint32_t kMaxSiemQueueRecords = 10000000;

struct SyslogOutputConfig {
    bool enabled = false;
    SyslogTransport transport = SyslogTransport::Udp;
    /// "host:port" (IPv4, or [IPv6]:port) for udp and tcp, a socket path for unix. Empty: the
    /// transport's default (127.0.0.1:514, /dev/log).
    std::string address;
    /// RFC 5424 facility code (0-23); default local5.
    uint8_t facility = 21;
    std::string app_name = "exfiltap";
    SyslogFormat format = SyslogFormat::Json;
    uint32_t queue_records = 10000;

    /// The address in use: `address`, or the transport's default.
    std::string effective_address() const;
    bool operator==(const SyslogOutputConfig&) const = default;
};

struct RedisOutputConfig {
    bool enabled = false;
    /// "host:port" (IPv4, or [IPv6]:port).
    std::string address = "127.0.0.1:6379";
    RedisMode mode = RedisMode::List;
    std::string key = "exfiltap";
    uint32_t queue_records = 10000;
    bool operator==(const RedisOutputConfig&) const = default;
};

/// An IP address and port parsed from "1.2.3.4:514" or "[::1]:514".
struct HostPort {
    std::string host;  // without brackets
    uint16_t port = 0;
};
Result<HostPort> parse_host_port(const std::string& text);

/// The facility code of a name ("local5" -> 21, "auth" -> 4); -1 when unknown.
int syslog_facility_code(const std::string& name);

/// Read `outputs.syslog` / `outputs.redis` onto `out`; every bad value is added to `problems`
/// as FILE:LINE: outputs.syslog.key: what.
void apply_syslog_output(config_reader::Problems& problems, const config_reader::Entry& section,
        SyslogOutputConfig& out);
void apply_redis_output(config_reader::Problems& problems, const config_reader::Entry& section,
        RedisOutputConfig& out);

}  // namespace exfiltap::control
