// The public suffix list (publicsuffix.org, as Debian's `publicsuffix` package ships it):
// which part of a DNS name an organisation registered. The DNS tunnel detector groups
// queries by that registered domain ("a1b2.t.cdn-sync.example" and "c3d4.t.cdn-sync.example"
// both under "cdn-sync.example"; "x.y.blogspot.com" under "y.blogspot.com").
//
// Threads: loaded once on the control thread (allocates); lookups are const and allocate
// only a temporary key, so they also stay on the control thread.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <unordered_set>

#include "common/result.h"

namespace exfiltap::detectors {

class PublicSuffixList {
public:
    /// Reads the list at `path` (UTF-8 text, one rule per line, `//` comments, `*.` wildcard
    /// and `!` exception rules). An unreadable file or one without rules is an error.
    static Result<PublicSuffixList> load_file(const std::string& path);
    /// Parses list text (tests); rules with characters outside printable ASCII are kept as
    /// they are (DNS names on the wire use their punycode forms, so they never match).
    static PublicSuffixList parse(std::string_view text);

    size_t rules() const noexcept { return exact_.size() + wildcard_.size() + exception_.size(); }
    bool empty() const noexcept { return rules() == 0; }

    /// The registered domain of `name` (lower case, no trailing dot): its public suffix and
    /// one more label. A name that is itself a public suffix (or a single label) gives the
    /// whole name. An empty list gives the last two labels. `listed` (optional) is set to
    /// whether a rule of the list covers the name's top-level label (always true for an
    /// empty list, which cannot tell).
    std::string_view registered_domain(std::string_view name, bool* listed = nullptr) const;

private:
    std::unordered_set<std::string> exact_;      // "co.uk"
    std::unordered_set<std::string> wildcard_;   // "*.ck" kept as "ck"
    std::unordered_set<std::string> exception_;  // "!www.ck" kept as "www.ck"
    std::unordered_set<std::string> tlds_;       // last labels of every rule
};

}  // namespace exfiltap::detectors
