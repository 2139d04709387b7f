#include "control/behaviour_config.h"

#include <array>
#include <charconv>
#include <cmath>
#include <filesystem>
#include <limits>
#include <string>
#include <string_view>

namespace exfiltap::control {
namespace {

using namespace config_reader;  // NOLINT(google-build-using-namespace): this file's vocabulary

constexpr uint32_t kMaxWindowS = 7 * 24 * 3600;
constexpr uint32_t kMaxCount = 1000000;
constexpr uint32_t kMaxTableSize = 16 * 1024 * 1024;

bool read_double(Problems& problems, const Entry& entry, double min, double max, bool min_open,
        double& out) {
    const std::string text = entry.value.IsScalar() ? entry.value.Scalar() : std::string();
    double value = 0;
    const char* end = text.data() + text.size();
    const auto [ptr, ec] = std::from_chars(text.data(), end, value);
    if (!entry.value.IsScalar() || ec != std::errc() || ptr != end || !std::isfinite(value)) {
        problems.add(entry.where, "expected a number, got " + describe(entry.value));
        return false;
    }
    if (value > max || value < min || (min_open && value == min)) {
        problems.add(entry.where,
                text + " is out of range " + (min_open ? "(" : "[") + std::to_string(min) + ", "
                        + std::to_string(max) + "]");
        return false;
    }
    out = value;
    return true;
}

/// enabled and severity, common to every detector; true when `entry` was one of them.
template <typename Detector>
bool read_common(Problems& problems, const Entry& entry, Detector& out) {
    if (entry.name == "enabled") {
        read_bool(problems, entry, out.enabled);
        return true;
    }
    if (entry.name == "severity") {
        read_severity(problems, entry, out.severity);
        return true;
    }
    return false;
}

void apply_host_bytes(Problems& problems, const Entry& section,
        std::array<uint64_t, detectors::kClassificationCount>& out) {
    std::array<std::string_view, detectors::kClassificationCount> names{};
    for (size_t i = 0; i < names.size(); ++i) {
        names[i] = detectors::classification_name(static_cast<detectors::Classification>(i));
    }
    for (const auto& entry : entries_of(
                 problems, section.value, section.where, names, {}, "unknown classification")) {
        detectors::Classification cls{};
        if (detectors::classification_from_name(entry.name, cls)) {
            read_bytes(problems, entry, out[static_cast<size_t>(cls)]);
        }
    }
}

void apply_external_upload(
        Problems& problems, const Entry& section, detectors::ExternalUploadConfig& c) {
    for (const auto& e : entries_of(problems, section.value, section.where,
                 {"enabled", "severity", "window_s", "host_bytes", "flow_bytes",
                         "include_served"})) {
        if (read_common(problems, e, c)) {
            continue;
        }
        if (e.name == "window_s") {
            read_u32(problems, e, 60, kMaxWindowS, c.window_s);
        } else if (e.name == "host_bytes") {
            apply_host_bytes(problems, e, c.host_bytes);
        } else if (e.name == "include_served") {
            read_bool(problems, e, c.include_served);
        } else {
            read_bytes(problems, e, c.flow_bytes);
        }
    }
}

void apply_internal_transfer(
        Problems& problems, const Entry& section, detectors::InternalTransferConfig& c) {
    for (const auto& e : entries_of(problems, section.value, section.where,
                 {"enabled", "severity", "window_s", "host_bytes", "flow_bytes"})) {
        if (read_common(problems, e, c)) {
            continue;
        }
        if (e.name == "window_s") {
            read_u32(problems, e, 60, kMaxWindowS, c.window_s);
        } else if (e.name == "host_bytes") {
            read_bytes(problems, e, c.host_bytes);
        } else {
            read_bytes(problems, e, c.flow_bytes);
        }
    }
}

/// alpha, k and warmup_windows, common to the baselines; true when `e` was one of them.
template <typename Detector>
bool read_baseline(Problems& problems, const Entry& e, Detector& c) {
    if (e.name == "alpha") {
        read_double(problems, e, 0.0, 1.0, true, c.alpha);
    } else if (e.name == "k") {
        read_double(problems, e, 0.0, 100.0, false, c.k);
    } else if (e.name == "warmup_windows") {
        read_u32(problems, e, 0, 100000, c.warmup_windows);
    } else {
        return false;
    }
    return true;
}

void apply_baseline(
        Problems& problems, const Entry& section, detectors::BaselineDeviationConfig& c) {
    for (const auto& e : entries_of(problems, section.value, section.where,
                 {"enabled", "severity", "window_s", "alpha", "k", "warmup_windows",
                         "floor_bytes"})) {
        if (read_common(problems, e, c) || read_baseline(problems, e, c)) {
            continue;
        }
        if (e.name == "window_s") {
            read_u32(problems, e, 60, kMaxWindowS, c.window_s);
        } else {
            read_bytes(problems, e, c.floor_bytes);
        }
    }
}

void apply_asymmetry(
        Problems& problems, const Entry& section, detectors::EncryptedAsymmetryConfig& c) {
    for (const auto& e : entries_of(problems, section.value, section.where,
                 {"enabled", "severity", "min_bytes", "ratio"})) {
        if (read_common(problems, e, c)) {
            continue;
        }
        if (e.name == "min_bytes") {
            read_bytes(problems, e, c.min_bytes);
        } else {
            read_u32(problems, e, 1, kMaxCount, c.ratio);
        }
    }
}

bool read_entropy(Problems& problems, const Entry& entry, uint32_t& milli) {
    double bits = 0;
    if (!read_double(problems, entry, 0.0, 8.0, false, bits)) {
        return false;
    }
    milli = static_cast<uint32_t>(std::lround(bits * 1000.0));
    return true;
}

void apply_archive(Problems& problems, const Entry& section, detectors::ArchiveOutConfig& c) {
    for (const auto& e : entries_of(
                 problems, section.value, section.where, {"enabled", "severity", "min_entropy"})) {
        if (!read_common(problems, e, c)) {
            read_entropy(problems, e, c.min_entropy_milli);
        }
    }
}

void apply_file_write(
        Problems& problems, const Entry& section, detectors::UnexpectedFileWriteConfig& c) {
    for (const auto& e : entries_of(problems, section.value, section.where,
                 {"enabled", "severity", "min_bytes", "external", "external_min_bytes",
                         "unlisted_internal"})) {
        if (read_common(problems, e, c)) {
            continue;
        }
        if (e.name == "min_bytes") {
            read_bytes(problems, e, c.min_bytes);
        } else if (e.name == "external") {
            read_bool(problems, e, c.external);
        } else if (e.name == "external_min_bytes") {
            read_bytes(problems, e, c.external_min_bytes);
        } else if (e.name == "unlisted_internal") {
            read_bool(problems, e, c.unlisted_internal);
        }
    }
}

void apply_login(Problems& problems, const Entry& section, detectors::ExternalLoginConfig& c) {
    for (const auto& e : entries_of(problems, section.value, section.where,
                 {"enabled", "severity", "window_s", "service_sources", "user_sources",
                         "source_failures", "source_attempts", "success_after_failures"})) {
        if (read_common(problems, e, c)) {
            continue;
        }
        if (e.name == "window_s") {
            read_u32(problems, e, 1, kMaxWindowS, c.window_s);
        } else if (e.name == "service_sources") {
            read_u32(problems, e, 0, kMaxCount, c.service_sources);
        } else if (e.name == "user_sources") {
            read_u32(problems, e, 0, kMaxCount, c.user_sources);
        } else if (e.name == "source_failures") {
            read_u32(problems, e, 0, kMaxCount, c.source_failures);
        } else if (e.name == "source_attempts") {
            read_u32(problems, e, 0, kMaxCount, c.source_attempts);
        } else {
            read_u32(problems, e, 0, kMaxCount, c.success_after_failures);
        }
    }
}

void apply_mail(Problems& problems, const Entry& section, detectors::MailAttachmentOutConfig& c) {
    for (const auto& e : entries_of(problems, section.value, section.where,
                 {"enabled", "severity", "window_s", "count", "bytes", "internal_domains"})) {
        if (read_common(problems, e, c)) {
            continue;
        }
        if (e.name == "window_s") {
            read_u32(problems, e, 60, kMaxWindowS, c.window_s);
        } else if (e.name == "count") {
            read_u32(problems, e, 0, kMaxCount, c.count);
        } else if (e.name == "bytes") {
            read_bytes(problems, e, c.bytes);
        } else {
            std::vector<std::string> domains;
            if (!read_string_list(problems, e, 253, domains)) {
                continue;
            }
            for (std::string& d : domains) {
                d = lower(d);
                while (!d.empty() && (d.front() == '@' || d.front() == '.')) {
                    d.erase(0, 1);
                }
                if (d.empty() || d.find_first_of(" @/") != std::string::npos) {
                    problems.add(e.where, "'" + d + "' is not a mail domain (example.com)");
                }
            }
            c.internal_domains = std::move(domains);
        }
    }
}

void apply_dns_tunnel(Problems& problems, const Entry& section, detectors::DnsTunnelConfig& c) {
    for (const auto& e : entries_of(problems, section.value, section.where,
                 {"enabled", "severity", "window_s", "min_queries", "min_distinct",
                         "min_mean_label_len", "min_entropy", "min_type_share_percent", "min_score",
                         "public_suffix_list"})) {
        if (read_common(problems, e, c)) {
            continue;
        }
        if (e.name == "window_s") {
            read_u32(problems, e, 1, 3600, c.window_s);
        } else if (e.name == "min_queries") {
            read_u32(problems, e, 1, kMaxCount, c.min_queries);
        } else if (e.name == "min_distinct") {
            // The detector tells distinct names apart exactly up to 64.
            read_u32(problems, e, 1, 64, c.min_distinct);
        } else if (e.name == "min_mean_label_len") {
            read_u32(problems, e, 1, 63, c.min_mean_label_len);
        } else if (e.name == "min_entropy") {
            read_entropy(problems, e, c.min_entropy_milli);
        } else if (e.name == "min_type_share_percent") {
            read_u32(problems, e, 0, 100, c.min_type_share_percent);
        } else if (e.name == "min_score") {
            read_u32(problems, e, 0, 3, c.min_score);
        } else {
            // Checked here so that --test-config refuses a device or a directory (the
            // engine would only fall back to the last two labels, silently).
            if (read_string(problems, e, c.public_suffix_list) && !c.public_suffix_list.empty()) {
                // A missing file falls back with a warning at start (the package may come
                // later); something that exists and is not a file is a mistake.
                std::error_code ec;
                const auto status = std::filesystem::status(c.public_suffix_list, ec);
                if (std::filesystem::exists(status) && !std::filesystem::is_regular_file(status)) {
                    problems.add(e.where, "'" + c.public_suffix_list
                                    + "' is not a regular file (Debian's list is "
                                      "/usr/share/publicsuffix/public_suffix_list.dat)");
                }
            }
        }
    }
}

void apply_fanout(Problems& problems, const Entry& section, detectors::LateralFanoutConfig& c) {
    for (const auto& e : entries_of(problems, section.value, section.where,
                 {"enabled", "severity", "window_s", "alpha", "k", "warmup_windows", "floor_hosts",
                         "floor_services", "scan_hosts", "scan_services"})) {
        if (read_common(problems, e, c) || read_baseline(problems, e, c)) {
            continue;
        }
        if (e.name == "window_s") {
            read_u32(problems, e, 60, kMaxWindowS, c.window_s);
        } else if (e.name == "floor_hosts") {
            read_u32(problems, e, 1, kMaxCount, c.floor_hosts);
        } else if (e.name == "floor_services") {
            read_u32(problems, e, 1, kMaxCount, c.floor_services);
        } else if (e.name == "scan_hosts") {
            read_u32(problems, e, 0, kMaxCount, c.scan_hosts);
        } else {
            read_u32(problems, e, 0, kMaxCount, c.scan_services);
        }
    }
}

void apply_shares(Problems& problems, const Entry& section, detectors::ShareEnumerationConfig& c) {
    for (const auto& e : entries_of(problems, section.value, section.where,
                 {"enabled", "severity", "window_s", "shares"})) {
        if (read_common(problems, e, c)) {
            continue;
        }
        if (e.name == "window_s") {
            read_u32(problems, e, 1, kMaxWindowS, c.window_s);
        } else {
            read_u32(problems, e, 1, kMaxCount, c.shares);
        }
    }
}

void apply_first_access(Problems& problems, const Entry& section, detectors::FirstAccessConfig& c) {
    for (const auto& e : entries_of(problems, section.value, section.where,
                 {"enabled", "severity", "warmup_s", "classifications"})) {
        if (read_common(problems, e, c)) {
            continue;
        }
        if (e.name == "warmup_s") {
            read_u32(problems, e, 0, 365 * 24 * 3600, c.warmup_s);
            continue;
        }
        std::vector<std::string> names;
        if (!read_string_list(problems, e, 32, names)) {
            continue;
        }
        uint32_t bits = 0;
        for (const std::string& name : names) {
            detectors::Classification cls{};
            if (!detectors::classification_from_name(name, cls)) {
                problems.add(e.where,
                        "unknown classification '" + name
                                + "' (public, internal, confidential, restricted)");
                continue;
            }
            bits |= 1U << static_cast<unsigned>(cls);
        }
        c.classifications = bits;
    }
}

void apply_staging(Problems& problems, const Entry& section, detectors::StagingConfig& c) {
    for (const auto& e : entries_of(problems, section.value, section.where,
                 {"enabled", "severity", "window_s", "host_bytes", "alpha", "k", "warmup_windows",
                         "floor_bytes"})) {
        if (read_common(problems, e, c) || read_baseline(problems, e, c)) {
            continue;
        }
        if (e.name == "window_s") {
            read_u32(problems, e, 60, kMaxWindowS, c.window_s);
        } else if (e.name == "host_bytes") {
            apply_host_bytes(problems, e, c.host_bytes);
        } else {
            read_bytes(problems, e, c.floor_bytes);
        }
    }
}

void apply_limits(Problems& problems, const Entry& section, detectors::BehaviourLimits& c) {
    for (const auto& e : entries_of(problems, section.value, section.where,
                 {"max_hosts", "max_flows", "max_domains", "max_login_keys", "max_sources_per_key",
                         "max_distinct_per_host", "max_shares_per_host",
                         "max_first_access_pairs"})) {
        if (e.name == "max_hosts") {
            read_u32(problems, e, 16, kMaxTableSize, c.max_hosts);
        } else if (e.name == "max_flows") {
            read_u32(problems, e, 16, kMaxTableSize, c.max_flows);
        } else if (e.name == "max_domains") {
            read_u32(problems, e, 16, kMaxTableSize, c.max_domains);
        } else if (e.name == "max_login_keys") {
            read_u32(problems, e, 16, kMaxTableSize, c.max_login_keys);
        } else if (e.name == "max_sources_per_key") {
            read_u32(problems, e, 1, 4096, c.max_sources_per_key);
        } else if (e.name == "max_distinct_per_host") {
            read_u32(problems, e, 1, 65536, c.max_distinct_per_host);
        } else if (e.name == "max_shares_per_host") {
            read_u32(problems, e, 1, 4096, c.max_shares_per_host);
        } else {
            read_u32(problems, e, 16, kMaxTableSize, c.max_first_access_pairs);
        }
    }
}

}  // namespace

void apply_behaviour(Problems& problems, const Entry& section, detectors::BehaviourConfig& out) {
    for (const auto& e : entries_of(problems, section.value, section.where,
                 {"external_upload", "internal_transfer", "baseline_deviation",
                         "encrypted_asymmetry", "archive_out", "unexpected_file_write",
                         "external_login", "mail_attachment_out", "dns_tunnel", "lateral_fanout",
                         "share_enumeration", "first_access", "staging", "limits"})) {
        if (e.name == "external_upload") {
            apply_external_upload(problems, e, out.external_upload);
        } else if (e.name == "internal_transfer") {
            apply_internal_transfer(problems, e, out.internal_transfer);
        } else if (e.name == "baseline_deviation") {
            apply_baseline(problems, e, out.baseline_deviation);
        } else if (e.name == "encrypted_asymmetry") {
            apply_asymmetry(problems, e, out.encrypted_asymmetry);
        } else if (e.name == "archive_out") {
            apply_archive(problems, e, out.archive_out);
        } else if (e.name == "unexpected_file_write") {
            apply_file_write(problems, e, out.unexpected_file_write);
        } else if (e.name == "external_login") {
            apply_login(problems, e, out.external_login);
        } else if (e.name == "mail_attachment_out") {
            apply_mail(problems, e, out.mail_attachment_out);
        } else if (e.name == "dns_tunnel") {
            apply_dns_tunnel(problems, e, out.dns_tunnel);
        } else if (e.name == "lateral_fanout") {
            apply_fanout(problems, e, out.lateral_fanout);
        } else if (e.name == "share_enumeration") {
            apply_shares(problems, e, out.share_enumeration);
        } else if (e.name == "first_access") {
            apply_first_access(problems, e, out.first_access);
        } else if (e.name == "staging") {
            apply_staging(problems, e, out.staging);
        } else {
            apply_limits(problems, e, out.limits);
        }
    }
}

}  // namespace exfiltap::control
