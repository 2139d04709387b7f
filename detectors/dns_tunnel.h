// DNS tunnel detection (DESIGN.md "Detection", behaviour): DNS queries grouped by registered
// domain over a window, scored on distinct subdomains, label length, the entropy of the
// subdomain characters and the share of TXT/NULL/CNAME/MX queries. Part of the behaviour
// engine; usable alone.
//
// Grouping: by the registered domain of the public suffix list. Names under a top-level
// label the list does not know (dnscat2 in direct mode invents one per query, iodine and
// lab setups use private ones) are grouped per client instead, under "(unlisted TLD)", so a
// tunnel cannot spread itself over invented domains.
//
// Threads: control thread; allocates (domain table bounded by max_domains, LRU).
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "detectors/behaviour_config.h"
#include "detectors/lru_map.h"
#include "detectors/public_suffix.h"

namespace exfiltap::detectors {

/// What a window looked like when it crossed the thresholds.
struct DnsTunnelHit {
    /// The registered domain; for unlisted-TLD groups the last two labels when every query
    /// of the window ends in them, else "(unlisted TLD)".
    std::string domain;
    std::string sample;  // the query that completed the finding (cut to 80 characters)
    uint32_t queries = 0;
    uint32_t distinct = 0;
    uint32_t mean_label_len_tenths = 0;
    uint32_t entropy_milli = 0;
    uint32_t type_share_percent = 0;
    uint32_t score = 0;
    uint64_t bytes = 0;      // DNS message bytes of the window's queries
    uint64_t window_ns = 0;  // time from the window's first query to this one
};

class DnsTunnelDetector {
public:
    /// Loads the public suffix list of `config` (a missing list is not an error: see
    /// suffix_warning()).
    DnsTunnelDetector(const DnsTunnelConfig& config, uint32_t max_domains);

    /// New thresholds; open windows are kept; the list is reloaded when its path changed.
    void reconfigure(const DnsTunnelConfig& config, uint32_t max_domains);

    /// One query; a hit when it completes a finding (once per domain and window).
    std::optional<DnsTunnelHit> on_query(uint8_t ip_version, const std::array<uint8_t, 16>& client,
            std::string_view name, uint16_t qtype, uint64_t bytes, uint64_t time_ns);

    size_t domains() const noexcept { return windows_.size(); }
    uint64_t evictions() const noexcept { return windows_.evictions(); }
    size_t suffix_rules() const noexcept { return suffixes_.rules(); }
    /// Empty when the list loaded; otherwise why not and what is used instead.
    const std::string& suffix_warning() const noexcept { return suffix_warning_; }

private:
    struct Key {
        std::string domain;
        uint8_t ip_version = 0;  // unlisted-TLD groups: the client; 0 otherwise
        std::array<uint8_t, 16> client{};
        bool operator==(const Key&) const = default;
    };
    struct KeyHash {
        size_t operator()(const Key& key) const noexcept;
    };
    struct Window {
        uint64_t start_ns = 0;
        uint32_t queries = 0;
        uint32_t odd_type = 0;
        uint64_t labels = 0;
        uint64_t label_chars = 0;
        uint64_t bytes = 0;
        bool fired = false;
        /// Unlisted-TLD groups: the last two labels of the first query, while every query
        /// of the window shares them (then they name the finding's domain).
        bool one_parent = true;
        std::string parent;
        /// Distinct subdomain hashes, counted up to kMaxDistinct.
        std::array<uint64_t, 64> distinct{};
        uint32_t distinct_count = 0;
        std::array<uint32_t, 256> chars{};
    };
    static constexpr uint32_t kMaxDistinct = 64;

    void load_suffixes();
    static void reset(Window& window, uint64_t time_ns);

    DnsTunnelConfig config_;
    PublicSuffixList suffixes_;
    std::string suffix_warning_;
    LruMap<Key, Window, KeyHash> windows_;
};

/// Shannon entropy in bits per symbol * 1000 of a byte histogram.
uint32_t entropy_milli(const std::array<uint32_t, 256>& histogram);

}  // namespace exfiltap::detectors
