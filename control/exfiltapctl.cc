// exfiltapctl: the operator's client for the daemon's control socket (DESIGN.md "Control
// socket"). One request line, one reply line (plus the alert stream of `alerts --follow`).
// Human output by default, the raw reply with --json.
// Exit codes: 0 OK, 1 the daemon answered NOK, 2 usage error, 3 cannot connect, timeout or a
// reply that is not the protocol's.
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <iostream>
#include <optional>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

namespace {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

constexpr int kExitOk = 0;
constexpr int kExitNok = 1;
constexpr int kExitUsage = 2;
constexpr int kExitTransport = 3;
constexpr const char* kDefaultSocket = "/run/exfiltap/control.sock";
/// A reply longer than this is not one the daemon would send.
constexpr size_t kMaxReplyBytes = 64U << 20;

struct Options {
    std::string socket = kDefaultSocket;
    bool json = false;
    double timeout_s = 5.0;
};

/// A transport failure: exits with kExitTransport.
struct TransportError {
    std::string what;
};

class Client {
public:
    Client(const std::string& path, double timeout_s) : timeout_s_(timeout_s) {
        if (path.size() >= sizeof(sockaddr_un::sun_path)) {
            throw TransportError{"socket path too long: " + path};
        }
        fd_ = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd_ < 0) {
            throw TransportError{std::string("socket: ") + std::strerror(errno)};
        }
        // connect() on a Unix socket waits at most the send timeout for a full backlog.
        timeval tv{};
        tv.tv_sec = static_cast<time_t>(timeout_s);
        tv.tv_usec = static_cast<suseconds_t>((timeout_s - std::floor(timeout_s)) * 1e6);
        setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
        sockaddr_un addr{};
        addr.sun_family = AF_UNIX;
        std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
        if (connect(fd_, reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) != 0) {
            const int err = errno;
            close(fd_);
            throw TransportError{"cannot connect to " + path + ": " + std::strerror(err)
                    + (err == ENOENT || err == ECONNREFUSED ? " (is exfiltap running?)" : "")};
        }
    }
    ~Client() { close(fd_); }
    Client(const Client&) = delete;
    Client& operator=(const Client&) = delete;

    void send_line(const std::string& line) {
        size_t done = 0;
        while (done < line.size()) {
            const ssize_t n = send(fd_, line.data() + done, line.size() - done, MSG_NOSIGNAL);
            if (n < 0 && errno == EINTR) {
                continue;
            }
            if (n <= 0) {
                throw TransportError{std::string("cannot send the request: ")
                        + (n < 0 ? std::strerror(errno) : "connection closed")};
            }
            done += static_cast<size_t>(n);
        }
    }

    /// The next line; with `bounded`, within the timeout. nullopt at end of stream.
    std::optional<std::string> read_line(bool bounded) {
        const auto deadline = Clock::now()
                + std::chrono::duration_cast<Clock::duration>(
                        std::chrono::duration<double>(timeout_s_));
        for (;;) {
            const size_t newline = buffer_.find('\n');
            if (newline != std::string::npos) {
                std::string line = buffer_.substr(0, newline);
                buffer_.erase(0, newline + 1);
                return line;
            }
            if (buffer_.size() > kMaxReplyBytes) {
                throw TransportError{
                        "reply longer than " + std::to_string(kMaxReplyBytes) + " bytes"};
            }
            int wait_ms = -1;
            if (bounded) {
                const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                        deadline - Clock::now());
                if (left.count() <= 0) {
                    throw TransportError{
                            "no reply within " + format_seconds(timeout_s_) + " s (--timeout)"};
                }
                wait_ms = static_cast<int>(left.count());
            }
            pollfd pfd{fd_, POLLIN, 0};
            const int ready = poll(&pfd, 1, wait_ms);
            if (ready < 0 && errno != EINTR) {
                throw TransportError{std::string("poll: ") + std::strerror(errno)};
            }
            if (ready <= 0) {
                continue;
            }
            std::array<char, 16384> chunk{};
            const ssize_t n = recv(fd_, chunk.data(), chunk.size(), 0);
            if (n < 0 && errno == EINTR) {
                continue;
            }
            if (n < 0 && errno != ECONNRESET) {
                throw TransportError{std::string("read: ") + std::strerror(errno)};
            }
            if (n <= 0) {
                if (buffer_.empty()) {
                    return std::nullopt;
                }
                std::string line;
                line.swap(buffer_);
                return line;
            }
            buffer_.append(chunk.data(), static_cast<size_t>(n));
        }
    }

    static std::string format_seconds(double s) {
        char text[32];
        std::snprintf(text, sizeof(text), "%g", s);
        return text;
    }

private:
    int fd_ = -1;
    double timeout_s_;
    std::string buffer_;
};

// ---- human output ----

/// Terminal-safe text: control characters (escape sequences) become '?'.
std::string printable(std::string text) {
    for (char& c : text) {
        const auto byte = static_cast<unsigned char>(c);
        if (byte < 0x20 || byte == 0x7f) {
            c = '?';
        }
    }
    return text;
}

std::string human_bytes(double bytes) {
    static constexpr std::array<const char*, 6> kUnits = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
    size_t unit = 0;
    while (bytes >= 1024.0 && unit + 1 < kUnits.size()) {
        bytes /= 1024.0;
        ++unit;
    }
    char text[32];
    std::snprintf(text, sizeof(text), unit == 0 ? "%.0f %s" : "%.1f %s", bytes, kUnits[unit]);
    return text;
}

bool is_bytes_key(const std::string& key) {
    return key == "bytes" || key.starts_with("bytes_") || key.ends_with("_bytes");
}

bool is_time_key(const std::string& key) {
    return key == "added" || key == "expires" || key == "opened" || key == "updated"
            || key == "time" || key.ends_with("_at");
}

std::string epoch_text(int64_t seconds) {
    const time_t t = static_cast<time_t>(seconds);
    tm utc{};
    gmtime_r(&t, &utc);
    char text[32];
    std::strftime(text, sizeof(text), "%Y-%m-%d %H:%M:%SZ", &utc);
    return text;
}

std::string cell_text(const std::string& key, const json& value) {
    if (value.is_null()) {
        return "-";
    }
    if (value.is_string()) {
        return printable(value.get<std::string>());
    }
    if (value.is_number() && is_bytes_key(key)) {
        return human_bytes(value.get<double>());
    }
    if (value.is_number_integer() && is_time_key(key) && value.get<int64_t>() > 0) {
        return epoch_text(value.get<int64_t>());
    }
    if (value.is_boolean()) {
        return value.get<bool>() ? "yes" : "no";
    }
    return printable(value.dump(-1, ' ', false, json::error_handler_t::replace));
}

std::string upper(std::string text) {
    for (char& c : text) {
        c = (c >= 'a' && c <= 'z') ? static_cast<char>(c - 'a' + 'A') : (c == '_' ? ' ' : c);
    }
    return text;
}

void print_padded(std::ostream& out, const std::string& text, size_t width, bool right) {
    const std::string pad(width > text.size() ? width - text.size() : 0, ' ');
    out << (right ? pad + text : text + pad);
}

/// An aligned table of an array of objects: columns in first-seen key order, numbers right.
void print_table(std::ostream& out, const json& rows) {
    if (rows.empty()) {
        out << "(none)\n";
        return;
    }
    std::vector<std::string> columns;
    for (const auto& row : rows) {
        for (const auto& [key, value] : row.items()) {
            if (std::find(columns.begin(), columns.end(), key) == columns.end()) {
                columns.push_back(key);
            }
        }
    }
    std::vector<std::vector<std::string>> cells;
    std::vector<size_t> widths;
    std::vector<bool> numeric(columns.size(), true);
    for (const auto& column : columns) {
        widths.push_back(upper(column).size());
    }
    for (const auto& row : rows) {
        auto& line = cells.emplace_back();
        for (size_t c = 0; c < columns.size(); ++c) {
            const auto it = row.find(columns[c]);
            const json value = it == row.end() ? json() : *it;
            line.push_back(cell_text(columns[c], value));
            widths[c] = std::max(widths[c], line.back().size());
            numeric[c] = numeric[c] && (value.is_number() || value.is_null());
        }
    }
    for (size_t c = 0; c < columns.size(); ++c) {
        print_padded(out, upper(columns[c]), c + 1 < columns.size() ? widths[c] : 0, numeric[c]);
        out << (c + 1 < columns.size() ? "  " : "\n");
    }
    for (const auto& line : cells) {
        for (size_t c = 0; c < columns.size(); ++c) {
            const bool last = c + 1 == columns.size();
            print_padded(out, line[c], last && !numeric[c] ? 0 : widths[c], numeric[c]);
            out << (last ? "\n" : "  ");
        }
    }
}

bool is_table(const json& value) {
    return value.is_array() && !value.empty()
            && std::all_of(value.begin(), value.end(), [](const json& v) { return v.is_object(); });
}

/// Scalars of a (nested) object as "dotted.key value" pairs.
void flatten(const json& object, const std::string& prefix,
        std::vector<std::pair<std::string, std::string>>& out) {
    for (const auto& [key, value] : object.items()) {
        const std::string name = prefix.empty() ? key : prefix + "." + key;
        if (value.is_object() && !value.empty()) {
            flatten(value, name, out);
        } else {
            out.emplace_back(name, cell_text(key, value));
        }
    }
}

void print_pairs(std::ostream& out, const std::vector<std::pair<std::string, std::string>>& pairs) {
    size_t width = 0;
    for (const auto& [key, value] : pairs) {
        width = std::max(width, key.size());
    }
    for (const auto& [key, value] : pairs) {
        print_padded(out, printable(key), width, false);
        out << "  " << value << '\n';
    }
}

/// Any message: text as is, arrays of objects as tables, objects as aligned pairs with a
/// titled table for each array of objects inside.
void print_generic(std::ostream& out, const json& message) {
    if (message.is_string()) {
        out << printable(message.get<std::string>()) << '\n';
    } else if (message.is_array()) {
        if (message.empty() || is_table(message)) {
            print_table(out, message);
        } else {
            for (const auto& item : message) {
                out << cell_text("", item) << '\n';
            }
        }
    } else if (message.is_object()) {
        std::vector<std::pair<std::string, std::string>> pairs;
        std::vector<std::pair<std::string, const json*>> tables;
        for (const auto& [key, value] : message.items()) {
            if (value.is_array()) {
                tables.emplace_back(key, &value);
            } else if (value.is_object()) {
                flatten(value, key, pairs);
            } else {
                pairs.emplace_back(key, cell_text(key, value));
            }
        }
        print_pairs(out, pairs);
        bool first = pairs.empty();
        for (const auto& [key, value] : tables) {
            out << (first ? "" : "\n") << printable(key) << " (" << value->size() << ")\n";
            first = false;
            print_generic(out, *value);
        }
    } else if (!message.is_null()) {
        out << cell_text("", message) << '\n';
    }
}

// Alerts have a fixed layout, so streamed lines line up under the header.
constexpr std::array<size_t, 6> kAlertWidths = {20, 3, 8, 24, 23, 23};

std::string endpoint(const json& alert, const char* ip_key, const char* port_key) {
    std::string text = alert.contains(ip_key) ? cell_text("", alert[ip_key]) : "-";
    if (alert.contains(port_key)) {
        const bool v6 = text.find(':') != std::string::npos;
        text = (v6 ? "[" + text + "]" : text) + ":" + cell_text("", alert[port_key]);
    }
    return text;
}

void print_alert_row(std::ostream& out, const std::array<std::string, 7>& cells) {
    for (size_t i = 0; i < kAlertWidths.size(); ++i) {
        print_padded(out, cells[i], kAlertWidths[i], false);
        out << ' ';
    }
    out << cells[6] << '\n';
}

void print_alert_header(std::ostream& out) {
    print_alert_row(
            out, {"TIME", "SEV", "ACTION", "DETECTOR/CLASS", "SOURCE", "DESTINATION", "SIGNATURE"});
}

void print_alert(std::ostream& out, const json& alert) {
    if (!alert.is_object()) {
        out << cell_text("", alert) << '\n';
        return;
    }
    const json empty = json::object();
    const json& head = alert.contains("alert") ? alert["alert"] : empty;
    const json& exfil = alert.contains("exfil") ? alert["exfil"] : empty;
    const auto field = [](const json& object, const char* key) {
        return object.is_object() && object.contains(key) ? cell_text("", object[key])
                                                          : std::string("-");
    };
    std::string time = field(alert, "timestamp");
    time = time.substr(0, 19);
    std::string what = field(exfil, "detector");
    if (exfil.is_object() && exfil.contains("class")) {
        what += "/" + field(exfil, "class");
    }
    print_alert_row(out,
            {time, field(head, "severity"), field(head, "action"), what,
                    endpoint(alert, "src_ip", "src_port"), endpoint(alert, "dest_ip", "dest_port"),
                    field(head, "signature")});
}

void print_human(const std::string& command, const json& message) {
    if (command == "alerts" && message.is_array()) {
        if (message.empty()) {
            std::cout << "(no recent alerts)\n";
            return;
        }
        print_alert_header(std::cout);
        for (const auto& alert : message) {
            print_alert(std::cout, alert);
        }
    } else if (command == "command-list" && message.is_object() && message.contains("commands")) {
        print_generic(std::cout, message["commands"]);
    } else {
        print_generic(std::cout, message);
    }
}

// ---- the exchange ----

/// The parsed reply, or a TransportError when it is not {"return": "OK"|"NOK", ...}.
/// Flow ids from words like "12" or "12,13"; nullopt when one is not an unsigned integer.
std::optional<json> parse_flow_ids(const std::vector<std::string>& words) {
    json ids = json::array();
    for (const std::string& word : words) {
        size_t start = 0;
        while (start <= word.size()) {
            const size_t comma = std::min(word.find(',', start), word.size());
            const std::string item = word.substr(start, comma - start);
            uint64_t value = 0;
            const auto [end, error] =
                    std::from_chars(item.data(), item.data() + item.size(), value);
            if (item.empty() || error != std::errc() || end != item.data() + item.size()) {
                return std::nullopt;
            }
            ids.push_back(value);
            start = comma + 1;
        }
    }
    return ids;
}

json parse_reply(const std::string& line) {
    json reply = json::parse(line, nullptr, false);
    if (reply.is_discarded() || !reply.is_object() || !reply.contains("return")
            || !reply["return"].is_string()
            || (reply["return"] != "OK" && reply["return"] != "NOK")) {
        throw TransportError{"broken reply from the daemon: " + printable(line.substr(0, 200))
                + (line.size() > 200 ? "..." : "")};
    }
    return reply;
}

int run(const Options& opt, const std::string& command, const json& arguments, bool follow) {
    Client client(opt.socket, opt.timeout_s);
    json request = {{"command", command}, {"arguments", arguments}};
    client.send_line(request.dump() + "\n");
    const auto line = client.read_line(true);
    if (!line) {
        throw TransportError{"the daemon closed the connection without a reply"};
    }
    const json reply = parse_reply(*line);
    const json message = reply.contains("message") ? reply["message"] : json();
    if (reply["return"] == "NOK") {
        if (opt.json) {
            std::cout << *line << std::endl;
        } else {
            std::cerr << "exfiltapctl: " << command << ": "
                      << (message.is_string() ? printable(message.get<std::string>())
                                              : cell_text("", message))
                      << '\n';
        }
        return kExitNok;
    }
    if (opt.json) {
        std::cout << *line << std::endl;
    } else {
        print_human(command, message);
        std::cout.flush();
    }
    if (!follow) {
        return kExitOk;
    }
    if (!opt.json && (!message.is_array() || message.empty())) {
        print_alert_header(std::cout);
    }
    std::cout.flush();
    while (const auto next = client.read_line(false)) {
        if (opt.json) {
            std::cout << *next << std::endl;
            continue;
        }
        const json alert = json::parse(*next, nullptr, false);
        if (alert.is_object() && alert.size() == 1 && alert.contains("dropped")) {
            std::cerr << "exfiltapctl: " << cell_text("", alert["dropped"])
                      << " alerts dropped (this client read too slowly)\n";
        } else if (alert.is_discarded()) {
            std::cerr << "exfiltapctl: unreadable alert line skipped\n";
        } else {
            print_alert(std::cout, alert);
            std::cout.flush();
        }
    }
    return kExitOk;
}

}  // namespace

int main(int argc, char** argv) {
    Options opt;
    if (const char* env = std::getenv("EXFILTAP_SOCKET"); env != nullptr && *env != '\0') {
        opt.socket = env;
    }
    CLI::App app{"exfiltapctl: control a running exfiltap daemon through its control socket"};
    app.require_subcommand(1, 1);
    app.add_option("--socket", opt.socket, "control socket (env EXFILTAP_SOCKET)")
            ->capture_default_str();
    app.add_flag("--json", opt.json, "print the daemon's reply as raw JSON");
    app.add_option("--timeout", opt.timeout_s, "seconds to wait for the daemon")
            ->check(CLI::Range(0.001, 3600.0))
            ->capture_default_str();

    std::string address;
    std::string reason;
    uint32_t ttl_s = 0;
    std::string kind = "all";
    uint32_t top = 10;
    uint32_t count = 20;
    bool follow = false;
    std::string incident;
    std::vector<std::string> flow_texts;
    std::string evidence_id;

    const auto add_address = [&](const char* name, const char* help) {
        auto* sub = app.add_subcommand(name, help);
        sub->add_option("address", address, "IP address or prefix (IP/len)")->required();
        return sub;
    };
    auto* block = add_address("block", "block an address or prefix");
    auto* ttl_opt = block->add_option("--ttl", ttl_s, "seconds until the block expires")
                            ->check(CLI::Range(1U, UINT32_MAX));
    block->add_option("--reason", reason, "why (goes to the audit log)");
    add_address("unblock", "remove a block");
    auto* allow = add_address("allow", "never drop an address or prefix");
    allow->add_option("--reason", reason, "why (goes to the audit log)");
    add_address("unallow", "remove an allow entry");
    app.add_subcommand("list", "show blocked and allowed addresses")
            ->add_option("--kind", kind, "block, allow or all")
            ->check(CLI::IsMember({"block", "allow", "all"}))
            ->capture_default_str();
    app.add_subcommand("stats", "show counters");
    app.add_subcommand("flows", "show the top talkers")
            ->add_option("--top", top, "how many")
            ->check(CLI::Range(1U, 1000U))
            ->capture_default_str();
    auto* alerts = app.add_subcommand("alerts", "show recent alerts");
    alerts->add_option("--count", count, "how many recent alerts")
            ->check(CLI::Range(0U, 10000U))
            ->capture_default_str();
    alerts->add_flag("--follow,-f", follow, "then print new alerts until interrupted");
    app.add_subcommand("incidents",
               "list open and recently closed incidents, or show one with its timeline")
            ->add_option("id", incident, "incident id");
    auto* evidence = app.add_subcommand("evidence",
            "write the recorded packets of flows to a pcapng file (the reply names it; the file "
            "appears once the workers have answered)");
    evidence->add_option("flow_ids", flow_texts, "flow ids as alerts give them (or a,b,c)")
            ->required();
    evidence->add_option("--id", evidence_id, "what the evidence is for (default: operator)");
    app.add_subcommand("reload", "reload the configuration");
    app.add_subcommand("reopen-log-files", "reopen output files (after rotation)");
    app.add_subcommand("version", "show the daemon's version");
    app.add_subcommand("command-list", "list the daemon's commands");

    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        const int rc = app.exit(e);
        return rc == 0 ? kExitOk : kExitUsage;
    }

    const std::string command = app.get_subcommands().front()->get_name();
    json arguments = json::object();
    if (command == "block" || command == "unblock" || command == "allow" || command == "unallow") {
        arguments["address"] = address;
        if (!reason.empty()) {
            arguments["reason"] = reason;
        }
        if (command == "block" && ttl_opt->count() > 0) {
            arguments["ttl_s"] = ttl_s;
        }
    } else if (command == "list") {
        arguments["kind"] = kind;
    } else if (command == "flows") {
        arguments["top"] = top;
    } else if (command == "alerts") {
        arguments["count"] = count;
        if (follow) {
            arguments["follow"] = true;
        }
    } else if (command == "incidents" && !incident.empty()) {
        arguments["id"] = incident;
    } else if (command == "evidence") {
        std::optional<json> ids = parse_flow_ids(flow_texts);
        if (!ids) {
            std::cerr << "exfiltapctl: evidence: flow ids are unsigned integers, separated by "
                         "spaces or commas\n";
            return kExitUsage;
        }
        arguments["flow_ids"] = std::move(*ids);
        if (!evidence_id.empty()) {
            arguments["id"] = evidence_id;
        }
    }

    // Arguments that are not UTF-8 cannot travel in JSON: a usage error, not a crash.
    try {
        (void)arguments.dump();
    } catch (const json::exception&) {
        std::cerr << "exfiltapctl: arguments must be UTF-8 text\n";
        return kExitUsage;
    }
    try {
        return run(opt, command, arguments, follow);
    } catch (const TransportError& e) {
        std::cerr << "exfiltapctl: " << e.what << '\n';
        return kExitTransport;
    }
}
