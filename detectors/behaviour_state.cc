// The behaviour engine's saved state (the state directory's baselines.txt): per-host
// baselines of baseline_deviation, lateral_fanout and staging, and first_access's memory of
// (host, asset) pairs with the time its warm-up began, so a restart neither learns for a
// week again nor alerts on pairs it knew.
//
// Format (version 2), one record a line, words separated by one space:
//   exfiltap-baselines 2
//   windows_s BASELINE FANOUT STAGING      window lengths the baselines were made with
//   start_ns T                             first_access's warm-up start (0: none yet)
//   host V ADDR WINDOWS MEAN VARIANCE      baseline_deviation
//   fanout V ADDR W M V W M V              lateral_fanout: hosts, then services
//   staging V ADDR WINDOWS MEAN VARIANCE   staging
//   access V ADDR FIRST_NS NAME            first_access; NAME with %XX for space, % and controls
//   end RECORDS
//   checksum FNV1A64-OF-THE-LINES-ABOVE
// Version 1 (window_s N, host lines) is still read. Records are written from the most to
// the least recently used and loaded back in that order.
#include <arpa/inet.h>
#include <sys/socket.h>

#include <algorithm>
#include <charconv>
#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <optional>
#include <string>
#include <vector>

#include "detectors/behaviour.h"
#include "detectors/behaviour_impl.h"

namespace exfiltap::detectors {
namespace {

constexpr std::string_view kMagic = "exfiltap-baselines";
constexpr int kVersion = 2;

std::string hex64(uint64_t value) {
    std::array<char, 17> buf{};
    std::snprintf(buf.data(), buf.size(), "%016" PRIx64, value);
    return std::string(buf.data(), 16);
}

std::vector<std::string_view> split_words(std::string_view line) {
    std::vector<std::string_view> words;
    size_t at = 0;
    while (at < line.size()) {
        const size_t end = std::min(line.find(' ', at), line.size());
        if (end > at) {
            words.push_back(line.substr(at, end - at));
        }
        at = end + 1;
    }
    return words;
}

template <typename T>
bool parse_number(std::string_view text, T& out) {
    const auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
    return ec == std::errc() && ptr == text.data() + text.size();
}

// An asset name as one word: space, '%', controls and bytes above 0x7e as %XX.
std::string escape_name(std::string_view name) {
    std::string out;
    for (const char ch : name) {
        const auto byte = static_cast<unsigned char>(ch);
        if (byte <= 0x20 || byte >= 0x7f || byte == '%') {
            std::array<char, 4> buf{};
            std::snprintf(buf.data(), buf.size(), "%%%02X", byte);
            out += buf.data();
        } else {
            out += ch;
        }
    }
    return out;
}

std::optional<std::string> unescape_name(std::string_view word) {
    std::string out;
    for (size_t i = 0; i < word.size(); ++i) {
        if (word[i] != '%') {
            out += word[i];
            continue;
        }
        unsigned value = 0;
        if (i + 2 >= word.size()) {
            return std::nullopt;
        }
        const std::string_view hex = word.substr(i + 1, 2);
        const auto [ptr, ec] = std::from_chars(hex.data(), hex.data() + 2, value, 16);
        if (ec != std::errc() || ptr != hex.data() + 2) {
            return std::nullopt;
        }
        out += static_cast<char>(value);
        i += 2;
    }
    if (out.empty()) {
        return std::nullopt;
    }
    return out;
}

std::string baseline_words(uint32_t windows, double mean, double var) {
    return std::to_string(windows) + " " + double_text(mean) + " " + double_text(var);
}

std::string host_words(const HostKey& key) {
    return std::to_string(key.ip_version) + " " + address_text(key.ip_version, key.addr);
}

struct Figures {
    uint32_t windows = 0;
    double mean = 0;
    double var = 0;
};

bool parse_figures(const std::vector<std::string_view>& w, size_t at, Figures& out) {
    return parse_number(w[at], out.windows) && parse_number(w[at + 1], out.mean)
            && parse_number(w[at + 2], out.var) && std::isfinite(out.mean) && std::isfinite(out.var)
            && out.mean >= 0 && out.var >= 0;
}

bool parse_host(std::string_view version_word, std::string_view addr_word, HostKey& key) {
    int version = 0;
    if (!parse_number(version_word, version) || (version != 4 && version != 6)) {
        return false;
    }
    key.ip_version = static_cast<uint8_t>(version);
    key.addr = {};
    const std::string addr(addr_word);
    return inet_pton(version == 6 ? AF_INET6 : AF_INET, addr.c_str(), key.addr.data()) == 1;
}

WindowBaseline loaded(const Figures& f) {
    // Not started: the first event after the restart opens the window it falls in, and the
    // time the engine was down is not folded in as silent windows.
    WindowBaseline b;
    b.windows = f.windows;
    b.mean = f.mean;
    b.var = f.var;
    return b;
}

enum class RecordKind : uint8_t {
    Host,
    Fanout,
    Staging,
    Access
};

struct Record {
    RecordKind kind = RecordKind::Host;
    HostKey key;
    std::array<Figures, 2> figures{};
    uint64_t first_ns = 0;
    std::string asset;
};

}  // namespace

std::string BehaviourEngine::save_baselines() const {
    const Impl& i = *impl_;
    std::string text = std::string(kMagic) + " " + std::to_string(kVersion) + "\nwindows_s "
            + std::to_string(i.config.baseline_deviation.window_s) + " "
            + std::to_string(i.config.lateral_fanout.window_s) + " "
            + std::to_string(i.config.staging.window_s) + "\nstart_ns "
            + std::to_string(i.have_time ? i.start_ns : i.saved_start_ns) + "\n";
    size_t count = 0;
    i.hosts.for_each([&](const HostKey& key, const HostState& host) {
        const Baseline& b = host.baseline;
        if (b.started && b.windows > 0) {
            text += "host " + host_words(key) + " " + baseline_words(b.windows, b.mean, b.var)
                    + "\n";
            ++count;
        }
        if (!host.lateral) {
            return;
        }
        const LateralState& l = *host.lateral;
        if (l.hosts_baseline.windows > 0 || l.services_baseline.windows > 0) {
            text += "fanout " + host_words(key) + " "
                    + baseline_words(
                            l.hosts_baseline.windows, l.hosts_baseline.mean, l.hosts_baseline.var)
                    + " "
                    + baseline_words(l.services_baseline.windows, l.services_baseline.mean,
                            l.services_baseline.var)
                    + "\n";
            ++count;
        }
        if (l.staged_baseline.windows > 0) {
            text += "staging " + host_words(key) + " "
                    + baseline_words(l.staged_baseline.windows, l.staged_baseline.mean,
                            l.staged_baseline.var)
                    + "\n";
            ++count;
        }
    });
    i.accesses.for_each([&](const AccessKey& key, uint64_t first_ns) {
        text += "access " + host_words(key.host) + " " + std::to_string(first_ns) + " "
                + escape_name(key.asset) + "\n";
        ++count;
    });
    text += "end " + std::to_string(count) + "\n";
    text += "checksum " + hex64(fnv1a(text.data(), text.size())) + "\n";
    return text;
}

Status BehaviourEngine::load_baselines(std::string_view text) {
    Impl& i = *impl_;
    auto fail = [](size_t line, const std::string& what) {
        return make_error("baselines line " + std::to_string(line) + ": " + what);
    };
    const size_t sum_at = text.rfind("checksum ");
    if (sum_at == std::string_view::npos || (sum_at != 0 && text[sum_at - 1] != '\n')) {
        return make_error("baselines: no checksum line (the file was cut short)");
    }
    std::string_view sum_text = text.substr(sum_at + 9);
    while (!sum_text.empty() && (sum_text.back() == '\n' || sum_text.back() == '\r')) {
        sum_text.remove_suffix(1);
    }
    const std::string_view body = text.substr(0, sum_at);
    if (sum_text != hex64(fnv1a(body.data(), body.size()))) {
        return make_error("baselines: checksum mismatch (the file is corrupt or was edited)");
    }
    int version = 0;
    // Window lengths of the file: baseline_deviation, lateral_fanout, staging.
    std::array<uint32_t, 3> windows_s{};
    uint64_t start_ns = 0;
    std::vector<Record> records;
    size_t line_no = 0;
    bool ended = false;
    size_t at = 0;
    while (at < body.size()) {
        const size_t end = std::min(body.find('\n', at), body.size());
        const std::string_view line = body.substr(at, end - at);
        at = end + 1;
        ++line_no;
        const std::vector<std::string_view> w = split_words(line);
        if (line_no == 1) {
            if (w.size() != 2 || w[0] != kMagic || !parse_number(w[1], version)) {
                return fail(line_no, "not an exfiltap baselines file");
            }
            if (version != 1 && version != kVersion) {
                return fail(line_no,
                        "version " + std::string(w[1]) + ", this build reads 1 and "
                                + std::to_string(kVersion));
            }
            continue;
        }
        if (ended) {
            return fail(line_no, "text after the end line");
        }
        if (line_no == 2) {
            const bool good = version == 1
                    ? w.size() == 2 && w[0] == "window_s" && parse_number(w[1], windows_s[0])
                    : w.size() == 4 && w[0] == "windows_s" && parse_number(w[1], windows_s[0])
                            && parse_number(w[2], windows_s[1]) && parse_number(w[3], windows_s[2]);
            if (!good) {
                return fail(
                        line_no, version == 1 ? "expected window_s N" : "expected windows_s N N N");
            }
            continue;
        }
        if (line_no == 3 && version >= 2) {
            if (w.size() != 2 || w[0] != "start_ns" || !parse_number(w[1], start_ns)) {
                return fail(line_no, "expected start_ns N");
            }
            continue;
        }
        if (w.size() == 2 && w[0] == "end") {
            size_t count = 0;
            if (!parse_number(w[1], count) || count != records.size()) {
                return fail(line_no, "the end line does not match the record count");
            }
            ended = true;
            continue;
        }
        Record r;
        if (w.size() == 6 && w[0] == "host") {
            r.kind = RecordKind::Host;
        } else if (version >= 2 && w.size() == 9 && w[0] == "fanout") {
            r.kind = RecordKind::Fanout;
        } else if (version >= 2 && w.size() == 6 && w[0] == "staging") {
            r.kind = RecordKind::Staging;
        } else if (version >= 2 && w.size() == 5 && w[0] == "access") {
            r.kind = RecordKind::Access;
        } else {
            return fail(line_no,
                    version == 1 ? "expected host VERSION ADDRESS WINDOWS MEAN VARIANCE"
                                 : "expected a host, fanout, staging, access or end line");
        }
        if (!parse_host(w[1], w[2], r.key)) {
            return fail(line_no, "bad address " + std::string(w[2]));
        }
        bool good = true;
        if (r.kind == RecordKind::Access) {
            std::optional<std::string> name = unescape_name(w[4]);
            good = parse_number(w[3], r.first_ns) && name.has_value();
            r.asset = name.value_or("");
        } else {
            good = parse_figures(w, 3, r.figures[0])
                    && (r.kind != RecordKind::Fanout || parse_figures(w, 6, r.figures[1]));
        }
        if (!good) {
            return fail(line_no, "bad values in this " + std::string(w[0]) + " line");
        }
        records.push_back(std::move(r));
    }
    if (!ended) {
        return fail(line_no, "no end line");
    }

    // A window length changed since the file was written: that detector's baselines start
    // over (counted in baseline_resets), the rest is loaded.
    const bool keep_host = windows_s[0] == i.config.baseline_deviation.window_s;
    const bool keep_fanout = windows_s[1] == i.config.lateral_fanout.window_s;
    const bool keep_staging = windows_s[2] == i.config.staging.window_s;
    i.hosts.for_each([](const HostKey&, HostState& host) {
        host.baseline = Baseline{};
        if (host.lateral) {
            host.lateral->hosts_baseline = WindowBaseline{};
            host.lateral->services_baseline = WindowBaseline{};
            host.lateral->staged_baseline = WindowBaseline{};
        }
    });
    i.accesses.clear();
    i.saved_start_ns = start_ns;
    if (i.have_time && start_ns != 0) {
        i.start_ns = std::min(i.start_ns, start_ns);
    }
    // Least recently used first, so the saved recency order comes back.
    for (auto it = records.rbegin(); it != records.rend(); ++it) {
        const Record& r = *it;
        switch (r.kind) {
        case RecordKind::Host: {
            if (!keep_host) {
                ++i.baseline_resets;
                break;
            }
            Baseline& b = i.host(r.key.ip_version, r.key.addr).baseline;
            b = Baseline{};
            b.started = true;
            b.window = i.baseline_window;
            b.windows = r.figures[0].windows;
            b.mean = r.figures[0].mean;
            b.var = r.figures[0].var;
            // The window running now began before the restart: its bytes are partial, so
            // the first close after loading drops them instead of folding them in.
            b.partial = true;
            break;
        }
        case RecordKind::Fanout:
        case RecordKind::Staging: {
            if (!(r.kind == RecordKind::Fanout ? keep_fanout : keep_staging)) {
                ++i.baseline_resets;
                break;
            }
            HostState& h = i.host(r.key.ip_version, r.key.addr);
            if (!h.lateral) {
                h.lateral = std::make_unique<LateralState>();
            }
            if (r.kind == RecordKind::Fanout) {
                h.lateral->hosts_baseline = loaded(r.figures[0]);
                h.lateral->services_baseline = loaded(r.figures[1]);
            } else {
                h.lateral->staged_baseline = loaded(r.figures[0]);
            }
            break;
        }
        case RecordKind::Access:
            i.accesses.touch(AccessKey{r.key, r.asset}) = r.first_ns;
            break;
        }
    }
    return Ok{};
}

}  // namespace exfiltap::detectors
