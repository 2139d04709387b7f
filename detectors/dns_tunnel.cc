#include "detectors/dns_tunnel.h"

#include <algorithm>
#include <cmath>

namespace exfiltap::detectors {
namespace {

constexpr std::string_view kUnlisted = "(unlisted TLD)";
constexpr size_t kSampleLen = 80;

bool tunnel_type(uint16_t qtype) {
    // NULL, TXT, CNAME and MX carry arbitrary data back in their answers.
    return qtype == 10 || qtype == 16 || qtype == 5 || qtype == 15;
}

/// Everything of `name` before ".domain" ("" when the name is the domain).
std::string_view subdomain_of(std::string_view name, std::string_view domain) {
    if (name.size() <= domain.size() + 1) {
        return {};
    }
    return name.substr(0, name.size() - domain.size() - 1);
}

/// The last two labels of `name` (or all of it).
std::string_view last_two_labels(std::string_view name) {
    const size_t last = name.rfind('.');
    if (last == std::string_view::npos || last == 0) {
        return name;
    }
    const size_t before = name.rfind('.', last - 1);
    return before == std::string_view::npos ? name : name.substr(before + 1);
}

}  // namespace

uint32_t entropy_milli(const std::array<uint32_t, 256>& histogram) {
    uint64_t total = 0;
    for (const uint32_t n : histogram) {
        total += n;
    }
    if (total == 0) {
        return 0;
    }
    double bits = 0.0;
    for (const uint32_t n : histogram) {
        if (n != 0) {
            const double p = static_cast<double>(n) / static_cast<double>(total);
            bits -= p * std::log2(p);
        }
    }
    return static_cast<uint32_t>(bits * 1000.0 + 0.5);
}

size_t DnsTunnelDetector::KeyHash::operator()(const Key& key) const noexcept {
    uint64_t h = fnv1a(key.domain.data(), key.domain.size());
    h = fnv1a(&key.ip_version, 1, h);
    return static_cast<size_t>(fnv1a(key.client.data(), key.client.size(), h));
}

DnsTunnelDetector::DnsTunnelDetector(const DnsTunnelConfig& config, uint32_t max_domains)
    : config_(config), windows_(max_domains) {
    load_suffixes();
}

void DnsTunnelDetector::reconfigure(const DnsTunnelConfig& config, uint32_t max_domains) {
    const bool reload = config.public_suffix_list != config_.public_suffix_list;
    config_ = config;
    windows_.set_capacity(max_domains);
    if (reload) {
        load_suffixes();
    }
}

void DnsTunnelDetector::load_suffixes() {
    suffixes_ = PublicSuffixList();
    suffix_warning_.clear();
    if (config_.public_suffix_list.empty()) {
        suffix_warning_ =
                "no public suffix list configured; registered domains are the last two "
                "labels of a name";
        return;
    }
    auto loaded = PublicSuffixList::load_file(config_.public_suffix_list);
    if (!loaded) {
        suffix_warning_ = loaded.error()
                + "; registered domains are the last two labels of a name (install Debian's "
                  "publicsuffix package or set behaviour.dns_tunnel.public_suffix_list)";
        return;
    }
    suffixes_ = std::move(*loaded);
}

void DnsTunnelDetector::reset(Window& window, uint64_t time_ns) {
    window = Window{};
    window.start_ns = time_ns;
}

std::optional<DnsTunnelHit> DnsTunnelDetector::on_query(uint8_t ip_version,
        const std::array<uint8_t, 16>& client, std::string_view name, uint16_t qtype,
        uint64_t bytes, uint64_t time_ns) {
    while (!name.empty() && name.back() == '.') {
        name.remove_suffix(1);
    }
    if (name.empty()) {
        return std::nullopt;
    }
    bool listed = true;
    std::string_view domain = suffixes_.registered_domain(name, &listed);
    Key key;
    std::string_view sub;
    if (listed) {
        key.domain = std::string(domain);
        sub = subdomain_of(name, domain);
    } else {
        key.domain = std::string(kUnlisted);
        key.ip_version = ip_version;
        key.client = client;
        sub = subdomain_of(name, last_two_labels(name));
        if (sub.empty()) {
            // Two labels under an invented top level (dnscat2's "dnscat.<hex>"): the whole
            // name is the payload.
            sub = name;
        }
    }

    bool created = false;
    Window& w = windows_.touch(key, created);
    const uint64_t window_ns = static_cast<uint64_t>(config_.window_s) * 1000000000ULL;
    if (created || time_ns >= w.start_ns + window_ns) {
        reset(w, time_ns);
    }
    if (!listed) {
        const std::string_view parent = last_two_labels(name);
        if (w.queries == 0) {
            w.parent = std::string(parent);
        } else if (w.parent != parent) {
            w.one_parent = false;
        }
    }
    ++w.queries;
    w.bytes += bytes;
    if (tunnel_type(qtype)) {
        ++w.odd_type;
    }
    if (!sub.empty()) {
        size_t start = 0;
        while (start <= sub.size()) {
            size_t dot = sub.find('.', start);
            if (dot == std::string_view::npos) {
                dot = sub.size();
            }
            if (dot > start) {
                ++w.labels;
                w.label_chars += dot - start;
            }
            start = dot + 1;
        }
        for (const char c : sub) {
            if (c != '.') {
                ++w.chars[static_cast<unsigned char>(c)];
            }
        }
    }
    const uint64_t h = fnv1a(sub.data(), sub.size());
    const auto end = w.distinct.begin() + std::min(w.distinct_count, kMaxDistinct);
    if (std::find(w.distinct.begin(), end, h) == end) {
        if (w.distinct_count < kMaxDistinct) {
            w.distinct[w.distinct_count] = h;
        }
        // Past the table every new-looking name counts: a tunnel beyond 64 distinct names
        // is well over any sensible gate.
        ++w.distinct_count;
    }

    if (!config_.enabled || w.fired || w.queries < config_.min_queries
            || w.distinct_count < config_.min_distinct) {
        return std::nullopt;
    }
    DnsTunnelHit hit;
    hit.queries = w.queries;
    hit.distinct = w.distinct_count;
    hit.mean_label_len_tenths =
            w.labels == 0 ? 0 : static_cast<uint32_t>(w.label_chars * 10 / w.labels);
    hit.entropy_milli = entropy_milli(w.chars);
    hit.type_share_percent = w.odd_type * 100 / w.queries;
    hit.score = (hit.mean_label_len_tenths >= config_.min_mean_label_len * 10 ? 1U : 0U)
            + (hit.entropy_milli >= config_.min_entropy_milli ? 1U : 0U)
            + (hit.type_share_percent >= config_.min_type_share_percent ? 1U : 0U);
    if (hit.score < config_.min_score) {
        return std::nullopt;
    }
    w.fired = true;
    hit.domain = (!listed && w.one_parent) ? w.parent : key.domain;
    hit.sample = std::string(name.substr(0, kSampleLen));
    hit.bytes = w.bytes;
    hit.window_ns = time_ns > w.start_ns ? time_ns - w.start_ns : 0;
    return hit;
}

}  // namespace exfiltap::detectors
