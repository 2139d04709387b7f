#include "control/siem_format.h"

#include <array>
#include <cmath>
#include <cstdio>
#include <ctime>

namespace exfiltap::control {
namespace {

constexpr uint8_t kProtoIcmp = 1;
constexpr uint8_t kProtoTcp = 6;
constexpr uint8_t kProtoUdp = 17;
constexpr uint8_t kProtoSctp = 132;
constexpr uint8_t kProtoIcmp6 = 58;

// RFC 5424 header field lengths (HOSTNAME 255, APP-NAME 48, PROCID 128, MSGID 32).
constexpr size_t kMaxHostname = 255;
constexpr size_t kMaxAppName = 48;
constexpr size_t kMaxProcid = 128;
constexpr size_t kMaxMsgid = 32;

/// A header field as RFC 5424 allows it: PRINTUSASCII only, bounded, "-" for nothing.
std::string header_field(std::string_view text, size_t max_len) {
    if (text.empty()) {
        return "-";
    }
    std::string out(text.substr(0, max_len));
    for (char& c : out) {
        if (c < 33 || c > 126) {
            c = '_';
        }
    }
    return out;
}

std::string cef_proto(uint8_t proto) {
    switch (proto) {
    case kProtoTcp:
        return "TCP";
    case kProtoUdp:
        return "UDP";
    case kProtoSctp:
        return "SCTP";
    case kProtoIcmp:
        return "ICMP";
    case kProtoIcmp6:
        return "ICMPv6";
    default:
        break;
    }
    return std::to_string(proto);
}

/// Appends " key=value" (escaped); nothing for an empty value.
void add(std::string& out, std::string_view key, std::string_view value) {
    if (value.empty()) {
        return;
    }
    if (!out.empty()) {
        out.push_back(' ');
    }
    out.append(key);
    out.push_back('=');
    out.append(cef_escape_value(value));
}

/// A custom string field with its label ("cs1=... cs1Label=class").
void add_labelled(
        std::string& out, std::string_view key, std::string_view label, std::string_view value) {
    if (value.empty()) {
        return;
    }
    add(out, key, value);
    add(out, std::string(key) + "Label", label);
}

}  // namespace

uint8_t syslog_severity(detectors::Severity severity) noexcept {
    switch (severity) {
    case detectors::Severity::Critical:
        return 2;
    case detectors::Severity::High:
        return 3;
    case detectors::Severity::Medium:
        return 4;
    case detectors::Severity::Low:
        return 5;
    }
    return 4;
}

uint8_t cef_severity(detectors::Severity severity) noexcept {
    switch (severity) {
    case detectors::Severity::Critical:
        return 10;
    case detectors::Severity::High:
        return 8;
    case detectors::Severity::Medium:
        return 5;
    case detectors::Severity::Low:
        return 3;
    }
    return 5;
}

std::string rfc5424_timestamp(double timestamp_s) {
    // Rounded to the microsecond as a whole, so 0.9999999 s never prints as ".1000000".
    const double clamped = std::isfinite(timestamp_s) && timestamp_s > 0 ? timestamp_s : 0;
    auto micros = static_cast<uint64_t>(std::llround(clamped * 1e6));
    const auto whole = static_cast<time_t>(micros / 1000000);
    micros %= 1000000;
    tm parts{};
    gmtime_r(&whole, &parts);
    std::array<char, 128> text{};  // roomy enough for any int, as -Wformat-truncation wants
    snprintf(text.data(), text.size(), "%04d-%02d-%02dT%02d:%02d:%02d.%06dZ", parts.tm_year + 1900,
            parts.tm_mon + 1, parts.tm_mday, parts.tm_hour, parts.tm_min, parts.tm_sec,
            static_cast<int>(micros));
    return text.data();
}

std::string format_rfc5424(
        const SyslogHeader& header, uint8_t severity, double timestamp_s, std::string_view msg) {
    const unsigned pri = unsigned{header.facility} * 8U + (severity & 7U);
    std::string out;
    out.reserve(msg.size() + 96);
    out.push_back('<');
    out.append(std::to_string(pri));
    out.append(">1 ");
    out.append(rfc5424_timestamp(timestamp_s));
    out.push_back(' ');
    out.append(header_field(header.hostname, kMaxHostname));
    out.push_back(' ');
    out.append(header_field(header.app_name, kMaxAppName));
    out.push_back(' ');
    out.append(header_field(header.procid, kMaxProcid));
    out.push_back(' ');
    out.append(header_field(header.msgid, kMaxMsgid));
    out.append(" - ");
    out.append(msg);
    return out;
}

std::string octet_counted(std::string_view message) {
    std::string out = std::to_string(message.size());
    out.push_back(' ');
    out.append(message);
    return out;
}

std::string cef_escape_header(std::string_view text) {
    std::string out;
    out.reserve(text.size());
    for (const char c : text) {
        if (c == '\\' || c == '|') {
            out.push_back('\\');
            out.push_back(c);
        } else if (c == '\r' || c == '\n') {
            out.push_back(' ');
        } else {
            out.push_back(c);
        }
    }
    return out;
}

std::string cef_escape_value(std::string_view text) {
    std::string out;
    out.reserve(text.size());
    for (const char c : text) {
        if (c == '\\' || c == '=') {
            out.push_back('\\');
            out.push_back(c);
        } else if (c == '\n') {
            out.append("\\n");
        } else if (c == '\r') {
            out.append("\\r");
        } else {
            out.push_back(c);
        }
    }
    return out;
}

std::string alert_to_cef(const AlertRecord& record, std::string_view version) {
    std::string ext;
    const double ms = std::isfinite(record.timestamp_s) && record.timestamp_s > 0
            ? std::floor(record.timestamp_s * 1000.0)
            : 0.0;
    add(ext, "rt", std::to_string(static_cast<uint64_t>(ms)));
    add(ext, "src", format_ip(record.ip_version, record.src));
    add(ext, "dst", format_ip(record.ip_version, record.dst));
    if (record.proto == kProtoTcp || record.proto == kProtoUdp || record.proto == kProtoSctp) {
        add(ext, "spt", std::to_string(record.src_port));
        add(ext, "dpt", std::to_string(record.dst_port));
    }
    add(ext, "proto", cef_proto(record.proto));
    add(ext, "act", record.action);
    add(ext, "cat", record.category);
    add(ext, "externalId", std::to_string(record.flow_id));
    add(ext, "cnt", std::to_string(record.count));
    add_labelled(ext, "cs1", "class", record.cls);
    add_labelled(ext, "cs2", "detector", record.detector);
    add_labelled(ext, "cs3", "confidence", detectors::confidence_name(record.confidence));
    add_labelled(ext, "cs4", "sample", record.sample);  // masked: last four only
    add_labelled(ext, "cs5", "srcAsset", record.src_asset);
    add_labelled(ext, "cs6", "dstAsset", record.dst_asset);
    add(ext, "cn1", std::to_string(record.bytes));
    add(ext, "cn1Label", "bytes");
    add(ext, "suser", record.user);
    add(ext, "fname", record.file_name);
    add(ext, "dhost", !record.server_name.empty() ? record.server_name : record.domain);
    add(ext, "msg", !record.reason.empty() ? record.reason : record.response);

    std::string out = "CEF:0|exfiltap|exfiltap|";
    out.append(cef_escape_header(version));
    out.push_back('|');
    out.append(std::to_string(record.signature_id));
    out.push_back('|');
    out.append(cef_escape_header(record.signature));
    out.push_back('|');
    out.append(std::to_string(cef_severity(record.severity)));
    out.push_back('|');
    out.append(ext);
    return out;
}

}  // namespace exfiltap::control
