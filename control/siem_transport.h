// Connections to a SIEM (DESIGN.md "Outputs"): syslog over UDP, TCP or a Unix socket (RFC
// 5426 datagrams, RFC 6587 octet counting on streams) and Redis through hiredis (RPUSH or
// PUBLISH). Each transport belongs to one output thread (control/siem_output.h) and is only
// ever called from it; every call is bounded by the connect and send timeouts, so a stalled
// peer costs that thread time, never anyone else's.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>

#include "common/result.h"
#include "control/siem_config.h"

namespace exfiltap::control {

struct TransportTimeouts {
    uint32_t connect_ms = 1000;
    /// A send (or Redis reply) that makes no progress for this long fails the connection.
    uint32_t send_ms = 1000;
};

/// What one send() did with a batch: of its first `delivered + lost` messages, `delivered`
/// went out and `lost` could not be sent (or it is unknown whether they arrived, so they are
/// not sent again); the rest were not tried and may be offered again.
struct SendOutcome {
    size_t delivered = 0;
    size_t lost = 0;
    std::string error;  // why it stopped early; empty when all were delivered
};

class SiemTransport {
public:
    SiemTransport() = default;
    virtual ~SiemTransport() = default;
    SiemTransport(const SiemTransport&) = delete;
    SiemTransport& operator=(const SiemTransport&) = delete;
    SiemTransport(SiemTransport&&) = delete;
    SiemTransport& operator=(SiemTransport&&) = delete;
    /// "syslog tcp 127.0.0.1:514": for operators' messages.
    virtual std::string describe() const = 0;
    virtual Status connect() = 0;
    virtual bool connected() const = 0;
    /// Sends in order. A failure that breaks the connection closes it (connected() false).
    virtual SendOutcome send(std::span<const std::string> messages) = 0;
    virtual void close() = 0;
};

/// Syslog messages (complete RFC 5424 lines, framing added here). Nothing connects yet.
std::unique_ptr<SiemTransport> make_syslog_transport(
        const SyslogOutputConfig& config, TransportTimeouts timeouts);

/// Redis: each message is one RPUSH or PUBLISH of `config.key`. Nothing connects yet.
std::unique_ptr<SiemTransport> make_redis_transport(
        const RedisOutputConfig& config, TransportTimeouts timeouts);

}  // namespace exfiltap::control
