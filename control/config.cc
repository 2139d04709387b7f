#include "control/config.h"

#include <arpa/inet.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <initializer_list>
#include <limits>
#include <span>
#include <string_view>
#include <system_error>
#include <utility>

#include "control/assets_config.h"
#include "control/behaviour_config.h"
#include "control/config_reader.h"
#include "control/edm_config.h"

#include <yaml-cpp/yaml.h>

namespace exfiltap::control {
namespace {

using namespace config_reader;  // NOLINT(google-build-using-namespace): the toolkit is this file's
                                // vocabulary

constexpr uint32_t kMaxTimeoutS = 7 * 24 * 3600;
// A config is a few kilobytes; anything this large is the wrong file.
constexpr long kMaxConfigBytes = 16L * 1024 * 1024;
constexpr size_t kMaxKeywordLen = 256;
constexpr size_t kMaxRegexLen = 4096;
constexpr size_t kMaxRuleNameLen = 64;
constexpr uint32_t kMaxThreshold = 1000000;
// DPDK's RTE_MAX_ETHPORTS as Debian builds it.
constexpr size_t kMaxPorts = 32;

constexpr std::array<std::string_view, 9> kDefaultInternalNetworks = {
        "10.0.0.0/8",
        "172.16.0.0/12",
        "192.168.0.0/16",
        "100.64.0.0/10",
        "169.254.0.0/16",
        "127.0.0.0/8",
        "fc00::/7",
        "fe80::/10",
        "::1/128",
};

void apply_dpdk(Problems& problems, const Entry& section, DpdkConfig& dpdk) {
    for (const auto& entry :
            entries_of(problems, section.value, section.where, {"eal_args", "memory_mb"})) {
        if (entry.name == "eal_args") {
            read_string_list(problems, entry, 4096, dpdk.eal_args);
        } else if (entry.name == "memory_mb") {
            read_u32(problems, entry, 16, 1024 * 1024, dpdk.memory_mb);
        }
    }
}

bool read_device(Problems& problems, const Entry& entry, std::string& out) {
    if (!read_string(problems, entry, out)) {
        return false;
    }
    if (out.empty() || out.size() > 1024) {
        problems.add(entry.where,
                "expected a device: a virtual device with its arguments "
                "(net_af_packet0,iface=eth1) or a PCI address (0000:03:00.0)");
        return false;
    }
    return true;
}

void apply_ports(Problems& problems, const Entry& section, PortsConfig& ports) {
    const auto entries = entries_of(problems, section.value, section.where,
            {"mode", "pairs", "passive", "rx_descriptors", "tx_descriptors", "mbufs", "rss_l4"});
    int mode_line = -1;
    for (const auto& entry : entries) {
        if (entry.name == "mode") {
            const int choice = read_choice(problems, entry, {"passive", "inline"});
            if (choice >= 0) {
                ports.inline_mode = choice == 1;
            }
            mode_line = entry.where.line;
        } else if (entry.name == "pairs") {
            ports.pairs.clear();
            for (const auto& item : items_of(problems, entry)) {
                PortsConfig::Pair pair;
                bool inside = false;
                bool outside = false;
                for (const auto& side :
                        entries_of(problems, item.value, item.where, {"inside", "outside"})) {
                    if (side.name == "inside") {
                        inside = read_device(problems, side, pair.inside);
                    } else {
                        outside = read_device(problems, side, pair.outside);
                    }
                }
                if (!inside || !outside) {
                    problems.add(item.where, "a pair needs both inside and outside devices");
                    continue;
                }
                ports.pairs.push_back(pair);
            }
        } else if (entry.name == "passive") {
            read_string_list(problems, entry, 1024, ports.passive);
        } else if (entry.name == "rx_descriptors") {
            read_u32(problems, entry, 32, 32768, ports.rx_descriptors);
        } else if (entry.name == "tx_descriptors") {
            read_u32(problems, entry, 32, 32768, ports.tx_descriptors);
        } else if (entry.name == "mbufs") {
            read_u32(problems, entry, 1023, 16 * 1024 * 1024, ports.mbufs);
        } else if (entry.name == "rss_l4") {
            read_bool(problems, entry, ports.rss_l4);
        }
    }
    if (ports.inline_mode && !ports.passive.empty()) {
        problems.add({section.where.path + ".passive", mode_line},
                "inline mode takes pairs; passive ports need mode: passive");
    }
    if (!ports.inline_mode && !ports.pairs.empty()) {
        problems.add({section.where.path + ".pairs", mode_line},
                "pairs need mode: inline (passive mode takes a passive list)");
    }
    const size_t port_count = ports.pairs.size() * 2 + ports.passive.size();
    if (port_count > kMaxPorts) {
        problems.add(section.where,
                std::to_string(port_count) + " ports, at most " + std::to_string(kMaxPorts));
        return;
    }
    std::vector<std::string> seen;
    auto check_unique = [&](const std::string& device) {
        const std::string name = device.substr(0, device.find(','));
        if (std::find(seen.begin(), seen.end(), name) != seen.end()) {
            problems.add(section.where, "device " + name + " is used twice");
        }
        seen.push_back(name);
    };
    for (const auto& pair : ports.pairs) {
        check_unique(pair.inside);
        check_unique(pair.outside);
    }
    for (const auto& device : ports.passive) {
        check_unique(device);
    }
}

void apply_workers(Problems& problems, const Entry& section, WorkersConfig& workers) {
    for (const auto& entry : entries_of(problems, section.value, section.where, {"count"})) {
        read_u32(problems, entry, 1, 64, workers.count);
    }
}

void apply_networks(Problems& problems, const Entry& section, std::vector<Prefix>& internal) {
    for (const auto& entry : entries_of(problems, section.value, section.where, {"internal"})) {
        std::vector<Prefix> prefixes;
        bool ok = entry.value.IsNull() || entry.value.IsSequence();
        for (const auto& item : items_of(problems, entry)) {
            Prefix prefix;
            if (read_prefix(problems, item, prefix)) {
                prefixes.push_back(prefix);
            } else {
                ok = false;
            }
        }
        if (ok) {
            internal = std::move(prefixes);
        }
    }
}

void apply_flows(Problems& problems, const Entry& section, FlowsConfig& flows) {
    const auto entries = entries_of(problems, section.value, section.where,
            {"table_size", "tcp_timeout_s", "tcp_closed_timeout_s", "tcp_embryonic_timeout_s",
                    "udp_timeout_s", "other_timeout_s", "vlan_in_key", "reorder_flow_bytes",
                    "reorder_worker_bytes", "checksum_validation", "parsers", "parser_slots",
                    "body_decoders"});
    for (const auto& entry : entries) {
        const std::string& name = entry.name;
        if (name == "table_size") {
            read_u32(problems, entry, 64, 1U << 26, flows.table_size);
        } else if (name == "tcp_timeout_s") {
            read_u32(problems, entry, 1, kMaxTimeoutS, flows.tcp_timeout_s);
        } else if (name == "tcp_closed_timeout_s") {
            read_u32(problems, entry, 1, kMaxTimeoutS, flows.tcp_closed_timeout_s);
        } else if (name == "tcp_embryonic_timeout_s") {
            read_u32(problems, entry, 1, kMaxTimeoutS, flows.tcp_embryonic_timeout_s);
        } else if (name == "udp_timeout_s") {
            read_u32(problems, entry, 1, kMaxTimeoutS, flows.udp_timeout_s);
        } else if (name == "other_timeout_s") {
            read_u32(problems, entry, 1, kMaxTimeoutS, flows.other_timeout_s);
        } else if (name == "vlan_in_key") {
            read_bool(problems, entry, flows.vlan_in_key);
        } else if (name == "parsers") {
            read_bool(problems, entry, flows.parsers);
        } else if (name == "parser_slots") {
            read_u32(problems, entry, 16, 1U << 22, flows.parser_slots);
        } else if (name == "body_decoders") {
            read_u32(problems, entry, 0, 1U << 16, flows.body_decoders);
        } else if (name == "reorder_flow_bytes") {
            read_u32(problems, entry, 0, 1U << 30, flows.reorder_flow_bytes);
        } else if (name == "reorder_worker_bytes") {
            read_u32(problems, entry, 0, std::numeric_limits<uint32_t>::max(),
                    flows.reorder_worker_bytes);
        } else if (name == "checksum_validation") {
            // YAML 1.1 readers turn yes/no into booleans, so accept true/false as well.
            const std::string text = entry.value.IsScalar() ? lower(entry.value.Scalar()) : "";
            if (text == "yes" || text == "true") {
                flows.checksum_validation = ChecksumValidation::Yes;
            } else if (text == "no" || text == "false") {
                flows.checksum_validation = ChecksumValidation::No;
            } else if (text == "auto") {
                flows.checksum_validation = ChecksumValidation::Auto;
            } else {
                problems.add(
                        entry.where, "expected one of yes, no, auto, got " + describe(entry.value));
            }
        }
    }
    // Checked on the merged values, so an override of one side is checked against the other.
    if (flows.reorder_flow_bytes > flows.reorder_worker_bytes) {
        problems.add({section.where.path + ".reorder_flow_bytes", section.where.line},
                std::to_string(flows.reorder_flow_bytes) + " is more than reorder_worker_bytes ("
                        + std::to_string(flows.reorder_worker_bytes) + ")");
    }
}

void apply_class(Problems& problems, const Entry& section, detectors::ContentClass id,
        detectors::ClassConfig& cls) {
    const auto entries = entries_of(problems, section.value, section.where,
            {"enabled", "threshold", "severity", "keywords"});
    for (const auto& entry : entries) {
        if (entry.name == "enabled") {
            read_bool(problems, entry, cls.enabled);
        } else if (entry.name == "threshold") {
            read_u32(problems, entry, 1, kMaxThreshold, cls.threshold);
        } else if (entry.name == "severity") {
            read_severity(problems, entry, cls.severity);
        } else if (entry.name == "keywords") {
            if (id == detectors::ContentClass::Custom) {
                problems.add(entry.where,
                        "custom rules have no proximity keywords; give a rule's match words in "
                        "content.custom[].keywords");
                continue;
            }
            read_string_list(problems, entry, kMaxKeywordLen, cls.keywords);
        }
    }
}

bool is_rule_name_char(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_'
            || c == '-' || c == '.' || c == ' ';
}

/// One key of a `content.custom` item; false when it has a problem (reported).
bool read_custom_key(Problems& problems, const Entry& entry, detectors::CustomRule& rule) {
    if (entry.name == "name") {
        return read_string(problems, entry, rule.name);
    }
    if (entry.name == "keywords") {
        if (!read_string_list(problems, entry, kMaxKeywordLen, rule.keywords)) {
            return false;
        }
        if (rule.keywords.empty()) {
            problems.add(entry.where, "must list at least one keyword");
            return false;
        }
        return true;
    }
    if (entry.name == "regex") {
        if (!read_string(problems, entry, rule.regex)) {
            return false;
        }
        if (rule.regex.empty() || rule.regex.size() > kMaxRegexLen) {
            problems.add(entry.where,
                    "must be a regex of 1.." + std::to_string(kMaxRegexLen) + " characters");
            return false;
        }
        return true;
    }
    if (entry.name == "severity") {
        detectors::Severity severity{};
        if (!read_severity(problems, entry, severity)) {
            return false;
        }
        rule.severity = severity;
        return true;
    }
    if (entry.name == "threshold") {
        uint32_t threshold = 1;
        if (!read_u32(problems, entry, 1, kMaxThreshold, threshold)) {
            return false;
        }
        rule.threshold = threshold;
        return true;
    }
    return read_bool(problems, entry, rule.enabled);  // "enabled"
}

/// One `content.custom` item; false when it has a problem (reported).
bool read_custom_rule(Problems& problems, const YAML::Node& item, const Where& where,
        detectors::CustomRule& rule) {
    if (!item.IsMap()) {
        problems.add(
                where, "expected a map with name and keywords or regex, got " + describe(item));
        return false;
    }
    bool ok = true;
    bool has_keywords = false;
    bool has_regex = false;
    const auto entries = entries_of(problems, item, where,
            {"name", "keywords", "regex", "severity", "threshold", "enabled"});
    for (const auto& entry : entries) {
        has_keywords = has_keywords || entry.name == "keywords";
        has_regex = has_regex || entry.name == "regex";
        ok = read_custom_key(problems, entry, rule) && ok;
    }
    ok = ok && entries.size() == static_cast<size_t>(item.size());  // unknown keys reported
    if (rule.name.empty()) {
        problems.add(where, "a custom rule needs a non-empty name");
        ok = false;
    } else if (rule.name.size() > kMaxRuleNameLen
            || !std::all_of(rule.name.begin(), rule.name.end(), is_rule_name_char)) {
        problems.add({where.path + ".name", where.line},
                "'" + rule.name + "': use up to " + std::to_string(kMaxRuleNameLen)
                        + " letters, digits, spaces and _ - .");
        ok = false;
    }
    if (has_keywords == has_regex) {
        problems.add(where,
                has_keywords ? "give either keywords or regex, not both"
                             : "give the rule's keywords (a list) or a regex");
        ok = false;
    }
    return ok;
}

void apply_custom(Problems& problems, const Entry& entry, std::vector<detectors::CustomRule>& out) {
    if (entry.value.IsNull()) {
        out.clear();
        return;
    }
    if (!entry.value.IsSequence()) {
        problems.add(entry.where, "expected a list of rules, got " + describe(entry.value));
        return;
    }
    if (entry.value.size() > detectors::kMaxCustomRules) {
        problems.add(entry.where,
                std::to_string(entry.value.size()) + " rules, at most "
                        + std::to_string(detectors::kMaxCustomRules)
                        + " are supported; a rule takes several keywords");
        return;
    }
    std::vector<detectors::CustomRule> rules;
    bool ok = true;
    for (size_t i = 0; i < entry.value.size(); ++i) {
        const YAML::Node item = entry.value[i];
        const Where where{
                entry.where.path + "[" + std::to_string(i) + "]", line_of(item, entry.where.line)};
        detectors::CustomRule rule;
        rule.source = problems.location(where.line);
        if (!read_custom_rule(problems, item, where, rule)) {
            ok = false;
            continue;
        }
        const auto same = std::find_if(rules.begin(), rules.end(),
                [&](const detectors::CustomRule& other) { return other.name == rule.name; });
        if (same != rules.end()) {
            problems.add({where.path + ".name", where.line},
                    "duplicate rule name '" + rule.name + "' (first at " + same->source + ")");
            ok = false;
            continue;
        }
        rules.push_back(std::move(rule));
    }
    if (ok) {
        out = std::move(rules);
    }
}

// content.source_code: the organisation's names for licence headers, project code names
// (one line each, as written), and the code-token count and density.
void apply_source_code(
        Problems& problems, const Entry& section, detectors::SourceCodeConfig& source_code) {
    const auto entries = entries_of(problems, section.value, section.where,
            {"organisations", "project_names", "min_tokens", "min_tokens_per_kib"});
    for (const auto& entry : entries) {
        if (entry.name == "organisations" || entry.name == "project_names") {
            std::vector<std::string> names;
            if (!read_string_list(problems, entry, kMaxKeywordLen, names)) {
                continue;
            }
            const auto bad = std::find_if(names.begin(), names.end(), [](const std::string& n) {
                return n.empty() || n.find_first_of("\r\n") != std::string::npos;
            });
            if (bad != names.end()) {
                problems.add(entry.where, "a name is one non-empty line of text");
                continue;
            }
            (entry.name == "organisations" ? source_code.organisations
                                           : source_code.project_names) = std::move(names);
        } else if (entry.name == "min_tokens") {
            read_u32(problems, entry, 1, 100000, source_code.min_tokens);
        } else if (entry.name == "min_tokens_per_kib") {
            read_u32(problems, entry, 0, 1024, source_code.min_tokens_per_kib);
        }
    }
}

void apply_content(Problems& problems, const Entry& section, detectors::ContentConfig& content) {
    const auto entries = entries_of(problems, section.value, section.where,
            {"classes", "reject_test_numbers", "keyword_window_bytes", "classification_markers",
                    "custom", "source_code"});
    for (const auto& entry : entries) {
        if (entry.name == "classes") {
            std::array<std::string_view, detectors::kContentClassCount> names{};
            for (size_t i = 0; i < names.size(); ++i) {
                names[i] = detectors::content_class_name(static_cast<detectors::ContentClass>(i));
            }
            for (const auto& cls : entries_of(
                         problems, entry.value, entry.where, names, {}, "unknown content class")) {
                detectors::ContentClass id{};
                if (detectors::content_class_from_name(cls.name, id)) {
                    apply_class(problems, cls, id, content.classes[static_cast<size_t>(id)]);
                }
            }
        } else if (entry.name == "reject_test_numbers") {
            read_bool(problems, entry, content.reject_test_numbers);
        } else if (entry.name == "keyword_window_bytes") {
            read_u32(problems, entry, 0, 65536, content.keyword_window_bytes);
        } else if (entry.name == "classification_markers") {
            std::vector<std::string> markers;
            if (!read_string_list(problems, entry, kMaxKeywordLen, markers)) {
                continue;
            }
            const auto multi_line = std::find_if(markers.begin(), markers.end(),
                    [](const std::string& m) { return m.find('\n') != std::string::npos; });
            if (multi_line != markers.end()) {
                problems.add(entry.where, "a marker is one line of text");
                continue;
            }
            content.classification_markers = std::move(markers);
        } else if (entry.name == "custom") {
            apply_custom(problems, entry, content.custom);
        } else if (entry.name == "source_code") {
            apply_source_code(problems, entry, content.source_code);
        }
    }
}

void apply_exceptions(
        Problems& problems, const Entry& section, dataplane::ExceptionPolicy& policy) {
    const auto entries = entries_of(problems, section.value, section.where,
            std::span(dataplane::kExceptionReasonNames.begin(),
                    dataplane::kExceptionReasonNames.size()));
    for (const auto& entry : entries) {
        const auto* it = std::find(dataplane::kExceptionReasonNames.begin(),
                dataplane::kExceptionReasonNames.end(), entry.name);
        const auto index = static_cast<size_t>(it - dataplane::kExceptionReasonNames.begin());
        const std::string text = entry.value.IsScalar() ? lower(entry.value.Scalar()) : "";
        if (text == "forward") {
            policy.drop[index] = false;
        } else if (text == "drop") {
            policy.drop[index] = true;
        } else {
            problems.add(entry.where, "expected forward or drop, got " + describe(entry.value));
        }
    }
}

void apply_outputs(Problems& problems, const Entry& section, OutputsConfig& outputs) {
    const auto entries = entries_of(problems, section.value, section.where,
            {"alerts_file", "alert_suppression_s", "syslog", "redis", "evidence"},
            {"flow_records"});
    for (const auto& entry : entries) {
        if (entry.name == "alerts_file") {
            read_string(problems, entry, outputs.alerts_file);
        } else if (entry.name == "alert_suppression_s") {
            read_u32(problems, entry, 0, kMaxTimeoutS, outputs.alert_suppression_s);
        } else if (entry.name == "syslog") {
            apply_syslog_output(problems, entry, outputs.syslog);
        } else if (entry.name == "redis") {
            apply_redis_output(problems, entry, outputs.redis);
        } else if (entry.name == "evidence") {
            apply_evidence_output(problems, entry, outputs.evidence);
        }
    }
}

/// Applies the keys present in `root` onto `config`; absent keys keep their values. Used for
/// whole files (onto the defaults) and for --set (onto the loaded config).
void apply_root(Problems& problems, const YAML::Node& root, Config& config) {
    const auto entries = entries_of(problems, root, {"", 0},
            {"dpdk", "ports", "workers", "networks", "assets", "flows", "content", "behaviour",
                    "exceptions", "outputs", "response", "control", "metrics", "state_dir", "edm",
                    "incidents"});
    for (const auto& entry : entries) {
        const std::string& name = entry.name;
        if (name == "dpdk") {
            apply_dpdk(problems, entry, config.dpdk);
        } else if (name == "ports") {
            apply_ports(problems, entry, config.ports);
        } else if (name == "response") {
            apply_response(problems, entry, config.response);
        } else if (name == "control") {
            apply_control(problems, entry, config.control);
        } else if (name == "metrics") {
            apply_metrics(problems, entry, config.metrics);
        } else if (name == "workers") {
            apply_workers(problems, entry, config.workers);
        } else if (name == "networks") {
            apply_networks(problems, entry, config.internal_networks);
        } else if (name == "assets") {
            apply_assets(problems, entry, config.assets);
        } else if (name == "flows") {
            apply_flows(problems, entry, config.flows);
        } else if (name == "content") {
            apply_content(problems, entry, config.content);
        } else if (name == "behaviour") {
            apply_behaviour(problems, entry, config.behaviour);
        } else if (name == "edm") {
            apply_edm(problems, entry, config.edm, config.content.edm_tables);
        } else if (name == "exceptions") {
            apply_exceptions(problems, entry, config.exceptions);
        } else if (name == "outputs") {
            apply_outputs(problems, entry, config.outputs);
        } else if (name == "incidents") {
            apply_incidents(problems, entry, config.incidents);
        } else if (name == "state_dir") {
            std::string dir;
            if (read_string(problems, entry, dir)) {
                if (dir.empty()) {
                    problems.add(entry.where, "must not be empty");
                } else {
                    config.state_dir = dir;
                }
            }
        }
    }
}

bool is_key_segment(std::string_view segment) {
    return !segment.empty() && std::all_of(segment.begin(), segment.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
    });
}

}  // namespace

bool Config::is_internal(uint8_t version, const std::array<uint8_t, 16>& address) const noexcept {
    return std::any_of(internal_networks.begin(), internal_networks.end(),
            [&](const Prefix& prefix) { return prefix.contains(version, address); });
}

Config default_config() {
    Config config;
    for (const auto text : kDefaultInternalNetworks) {
        auto prefix = Prefix::parse(std::string(text));
        if (prefix) {
            config.internal_networks.push_back(*prefix);
        }
    }
    return config;
}

Result<Config> parse_config(const std::string& text, const std::string& name) {
    Config config = default_config();
    config.source_file = name;
    Problems problems(name, true);
    try {
        // The event check first: aliases, extra documents, depth and size are refused before
        // a tree exists, so the readers below walk a plain tree of bounded size.
        if (check_yaml(problems, text)) {
            apply_root(problems, YAML::Load(text), config);
        }
    } catch (const YAML::ParserException& e) {
        // An unclosed bracket or quote is found at the end of the text; name the last line.
        const auto lines = static_cast<int>(std::count(text.begin(), text.end(), '\n'));
        const int last = (text.empty() || text.back() == '\n') ? lines - 1 : lines;
        const int line = e.mark.is_null() ? -1 : std::min(e.mark.line, std::max(last, 0));
        problems.add({"", line}, "YAML syntax error: " + e.msg);
    } catch (const YAML::Exception& e) {
        problems.add({"", e.mark.is_null() ? -1 : e.mark.line}, "cannot read YAML: " + e.msg);
    }
    if (!problems.empty()) {
        return make_error(problems.joined());
    }
    return config;
}

Status load_edm(Config& config) {
    return load_edm(config.state_dir, config.edm, config.content.edm_tables);
}

Result<Config> load_config(const std::string& path) {
    FILE* file = fopen(path.c_str(), "rbe");
    if (file == nullptr) {
        return make_error(
                path + ": cannot open config file: " + std::generic_category().message(errno));
    }
    struct stat info {};
    if (fstat(fileno(file), &info) != 0 || !S_ISREG(info.st_mode)) {
        fclose(file);
        return make_error(path + ": not a regular file");
    }
    if (info.st_size > kMaxConfigBytes) {
        fclose(file);
        return make_error(path + ": larger than " + std::to_string(kMaxConfigBytes)
                + " bytes; is this the config file?");
    }
    std::string text(static_cast<size_t>(info.st_size), '\0');
    const size_t got = fread(text.data(), 1, text.size(), file);
    const bool failed = ferror(file) != 0;
    fclose(file);
    if (failed) {
        return make_error(path + ": cannot read config file");
    }
    text.resize(got);
    return parse_config(text, path);
}

Status apply_override(Config& config, const std::string& assignment) {
    const size_t equals = assignment.find('=');
    if (equals == std::string::npos) {
        return make_error(
                "--set " + assignment + ": expected KEY=VALUE, e.g. flows.table_size=1024");
    }
    const std::string key = assignment.substr(0, equals);
    std::vector<std::string> segments;
    for (size_t start = 0;;) {
        const size_t dot = key.find('.', start);
        segments.push_back(key.substr(start, dot - start));
        if (dot == std::string::npos) {
            break;
        }
        start = dot + 1;
    }
    for (const auto& segment : segments) {
        if (!is_key_segment(segment)) {
            return make_error("--set " + assignment
                    + ": expected KEY=VALUE, KEY in dotted lower-case names, e.g. "
                      "flows.table_size=1024");
        }
    }

    // The value becomes a one-path YAML tree that goes through the same checks as a file.
    YAML::Node tree;
    try {
        const std::string value = assignment.substr(equals + 1);
        Problems shape("--set " + key + ":", false);
        if (!check_yaml(shape, value)) {
            return make_error(shape.joined());
        }
        tree = YAML::Load(value);
    } catch (const YAML::Exception& e) {
        return make_error("--set " + key + ": cannot read the value as YAML: " + e.msg);
    }
    for (size_t i = segments.size(); i-- > 0;) {
        YAML::Node parent(YAML::NodeType::Map);
        parent[segments[i]] = tree;
        tree.reset(parent);  // rebinds; plain assignment would write through the old reference
    }

    Config updated = config;
    Problems problems("--set", false);
    try {
        apply_root(problems, tree, updated);
    } catch (const YAML::Exception& e) {
        problems.add({key, -1}, "cannot read the value: " + e.msg);
    }
    if (!problems.empty()) {
        return make_error(problems.joined());
    }
    config = std::move(updated);
    return Ok{};
}

}  // namespace exfiltap::control
