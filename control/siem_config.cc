#include "control/siem_config.h"

#include <arpa/inet.h>
#include <sys/un.h>

#include <array>
#include <charconv>
#include <string_view>

namespace exfiltap::control {
namespace {

using namespace config_reader;  // NOLINT(google-build-using-namespace): the toolkit is this file's
                                // vocabulary

// RFC 5424 section 6.2.1, codes 0-23 in order.
constexpr std::array<std::string_view, 24> kFacilities = {"kern", "user", "mail", "daemon", "auth",
        "syslog", "lpr", "news", "uucp", "cron", "authpriv", "ftp", "ntp", "audit", "alert",
        "clock", "local0", "local1", "local2", "local3", "local4", "local5", "local6", "local7"};

// RFC 5424 APP-NAME: 1*48 PRINTUSASCII (33-126).
constexpr size_t kMaxAppName = 48;
// A Redis key is binary safe; a config key of this size is a mistake.
constexpr size_t kMaxRedisKey = 1024;

bool printable_ascii(std::string_view text) {
    for (const char c : text) {
        if (c < 33 || c > 126) {
            return false;
        }
    }
    return true;
}

bool read_queue(Problems& problems, const Entry& entry, uint32_t& out) {
    return read_u32(problems, entry, 1, kMaxSiemQueueRecords, out);
}

void read_facility(Problems& problems, const Entry& entry, uint8_t& out) {
    std::string name;
    if (!read_string(problems, entry, name)) {
        return;
    }
    const int code = syslog_facility_code(lower(name));
    if (code < 0) {
        problems.add(entry.where,
                "expected a facility name (" + join_names(kFacilities) + "), got "
                        + describe(entry.value));
        return;
    }
    out = static_cast<uint8_t>(code);
}

void read_app_name(Problems& problems, const Entry& entry, std::string& out) {
    std::string name;
    if (!read_string(problems, entry, name)) {
        return;
    }
    if (name.empty() || name.size() > kMaxAppName || !printable_ascii(name)) {
        problems.add(entry.where,
                "expected 1 to 48 printable ASCII characters without spaces (RFC 5424 "
                "APP-NAME)");
        return;
    }
    out = name;
}

/// host:port with an IP address.
void read_address(Problems& problems, const Entry& entry, std::string& out) {
    std::string address;
    if (!read_string(problems, entry, address)) {
        return;
    }
    if (Result<HostPort> hp = parse_host_port(address); !hp) {
        problems.add(entry.where, hp.error());
        return;
    }
    out = address;
}

void read_redis_key(Problems& problems, const Entry& entry, std::string& out) {
    std::string key;
    if (!read_string(problems, entry, key)) {
        return;
    }
    if (key.empty() || key.size() > kMaxRedisKey) {
        problems.add(entry.where, "expected a key of 1 to 1024 characters");
        return;
    }
    out = key;
}

/// The address must suit the transport, whichever of the two was given last.
void check_syslog_address(Problems& problems, const Where& where, const SyslogOutputConfig& out) {
    if (out.address.empty()) {
        return;
    }
    if (out.transport == SyslogTransport::Unix) {
        if (out.address.front() != '/' || out.address.size() >= sizeof(sockaddr_un{}.sun_path)) {
            problems.add(where,
                    "transport unix needs an absolute socket path shorter than "
                            + std::to_string(sizeof(sockaddr_un{}.sun_path)) + " characters");
        }
    } else if (Result<HostPort> hp = parse_host_port(out.address); !hp) {
        problems.add(where, hp.error());
    }
}

}  // namespace

std::string SyslogOutputConfig::effective_address() const {
    if (!address.empty()) {
        return address;
    }
    return transport == SyslogTransport::Unix ? "/dev/log" : "127.0.0.1:514";
}

Result<HostPort> parse_host_port(const std::string& text) {
    const std::string expected =
            "expected host:port with an IP address (127.0.0.1:514 or "
            "[::1]:514), got \""
            + text + "\"";
    HostPort out;
    std::string_view port_text;
    if (!text.empty() && text.front() == '[') {
        const size_t close = text.find(']');
        if (close == std::string::npos || close + 1 >= text.size() || text[close + 1] != ':') {
            return make_error(expected);
        }
        out.host = text.substr(1, close - 1);
        port_text = std::string_view(text).substr(close + 2);
        in6_addr a6{};
        if (inet_pton(AF_INET6, out.host.c_str(), &a6) != 1) {
            return make_error(expected);
        }
    } else {
        const size_t colon = text.rfind(':');
        if (colon == std::string::npos) {
            return make_error(expected);
        }
        out.host = text.substr(0, colon);
        port_text = std::string_view(text).substr(colon + 1);
        in_addr a4{};
        if (inet_pton(AF_INET, out.host.c_str(), &a4) != 1) {
            return make_error(expected);
        }
    }
    uint32_t port = 0;
    const auto [end, ec] =
            std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
    if (port_text.empty() || ec != std::errc() || end != port_text.data() + port_text.size()
            || port == 0 || port > 65535) {
        return make_error(expected);
    }
    out.port = static_cast<uint16_t>(port);
    return out;
}

int syslog_facility_code(const std::string& name) {
    for (size_t i = 0; i < kFacilities.size(); ++i) {
        if (kFacilities[i] == name) {
            return static_cast<int>(i);
        }
    }
    return -1;
}

void apply_syslog_output(Problems& problems, const Entry& section, SyslogOutputConfig& out) {
    Where address_where = section.where;
    for (const auto& entry : entries_of(problems, section.value, section.where,
                 {"enabled", "transport", "address", "facility", "app_name", "format",
                         "queue_records"})) {
        if (entry.name == "enabled") {
            read_bool(problems, entry, out.enabled);
        } else if (entry.name == "transport") {
            const int choice = read_choice(problems, entry, {"udp", "tcp", "unix"});
            if (choice >= 0) {
                out.transport = static_cast<SyslogTransport>(choice);
            }
        } else if (entry.name == "address") {
            read_string(problems, entry, out.address);
            address_where = entry.where;
        } else if (entry.name == "facility") {
            read_facility(problems, entry, out.facility);
        } else if (entry.name == "app_name") {
            read_app_name(problems, entry, out.app_name);
        } else if (entry.name == "format") {
            const int choice = read_choice(problems, entry, {"json", "cef"});
            if (choice >= 0) {
                out.format = static_cast<SyslogFormat>(choice);
            }
        } else if (entry.name == "queue_records") {
            read_queue(problems, entry, out.queue_records);
        }
    }
    check_syslog_address(problems, address_where, out);
}

void apply_redis_output(Problems& problems, const Entry& section, RedisOutputConfig& out) {
    for (const auto& entry : entries_of(problems, section.value, section.where,
                 {"enabled", "address", "mode", "key", "queue_records"})) {
        if (entry.name == "enabled") {
            read_bool(problems, entry, out.enabled);
        } else if (entry.name == "address") {
            read_address(problems, entry, out.address);
        } else if (entry.name == "mode") {
            const int choice = read_choice(problems, entry, {"list", "channel"});
            if (choice >= 0) {
                out.mode = static_cast<RedisMode>(choice);
            }
        } else if (entry.name == "key") {
            read_redis_key(problems, entry, out.key);
        } else if (entry.name == "queue_records") {
            read_queue(problems, entry, out.queue_records);
        }
    }
}

}  // namespace exfiltap::control
