// What the SIEM outputs send (DESIGN.md "Outputs"): RFC 5424 syslog messages, their RFC 6587
// octet-counting frames, and CEF lines with the CEF spec's escaping. Pure functions; the
// control thread calls them per record before it queues the result.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "control/alert_writer.h"
#include "detectors/content_types.h"

namespace exfiltap::control {

/// RFC 5424 severity of ours: critical 2 (crit), high 3 (err), medium 4 (warning), low 5
/// (notice).
uint8_t syslog_severity(detectors::Severity severity) noexcept;

/// CEF severity 0-10 of ours: low 3, medium 5, high 8, critical 10.
uint8_t cef_severity(detectors::Severity severity) noexcept;

/// RFC 3339 time as RFC 5424 wants it: UTC, microseconds ("2026-12-05T08:43:43.123456Z").
std::string rfc5424_timestamp(double timestamp_s);

/// The parts of an RFC 5424 header that do not come from the record.
struct SyslogHeader {
    uint8_t facility = 21;       // local5
    std::string hostname = "-";  // 1-255 printable ASCII, "-" when unknown
    std::string app_name = "exfiltap";
    std::string procid = "-";
    std::string msgid = "alert";  // the EVE event_type
};

/// "<PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID - MSG" with PRI = facility * 8 +
/// severity and no structured data. Header fields with characters RFC 5424 forbids there
/// (outside 33-126) have them replaced by '_', empty ones become "-".
std::string format_rfc5424(
        const SyslogHeader& header, uint8_t severity, double timestamp_s, std::string_view msg);

/// RFC 6587 octet counting: "LEN SP MESSAGE".
std::string octet_counted(std::string_view message);

/// CEF header field escaping: '\' and '|' get a backslash; CR and LF (not allowed in the
/// header) become spaces.
std::string cef_escape_header(std::string_view text);
/// CEF extension value escaping: '\' and '=' get a backslash, LF becomes "\n", CR "\r".
std::string cef_escape_value(std::string_view text);

/// "CEF:0|exfiltap|exfiltap|VERSION|signature_id|signature|severity|extension": the
/// extension holds rt (ms), src, dst, spt/dpt (protocols with ports), proto, act, cat,
/// externalId (flow id), cnt, cs1 class, cs2 detector, cs3 confidence, cs4 sample (masked),
/// cs5/cs6 source and destination asset, cn1 bytes, and suser, fname, dhost, msg when set.
std::string alert_to_cef(const AlertRecord& record, std::string_view version);

}  // namespace exfiltap::control
