// The YAML reading toolkit every config section uses: a problem list that names file, line
// and dotted key, map entries with unknown/reserved/duplicate keys reported, typed readers.
// config.cc composes the sections; modules with their own section (response, control,
// metrics, ...) parse it with these and report the same way.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "detectors/content_types.h"

#include <yaml-cpp/yaml.h>

namespace exfiltap::control::config_reader {

using Names = std::initializer_list<std::string_view>;

/// Where a value sits: its dotted key and its 0-based line (-1: unknown).
struct Where {
    std::string path;
    int line = -1;
};

/// Collects every problem of one load, so the operator sees them all at once. Bounded: the
/// first kMaxProblems lines are kept (each at most kMaxProblemLen characters), the rest only
/// counted, so a hostile or broken file cannot make the message list grow without limit.
class Problems {
public:
    /// `origin` starts each message: the file name, or "--set" for overrides, whose
    /// synthetic YAML tree has no useful line numbers.
    Problems(std::string origin, bool with_lines)
        : origin_(std::move(origin)), with_lines_(with_lines) {}

    static constexpr size_t kMaxProblems = 100;
    static constexpr size_t kMaxProblemLen = 1000;

    void add(const Where& where, const std::string& what);
    bool empty() const { return lines_.empty(); }
    /// Every problem added, kept or not.
    size_t count() const { return lines_.size() + dropped_; }
    /// "FILE:LINE" of a 0-based line (just the origin without lines or a line).
    std::string location(int line) const;
    /// The kept lines, one per line, then "... and N more problems" when some were dropped.
    std::string joined() const;

private:
    std::string origin_;
    bool with_lines_;
    std::vector<std::string> lines_;
    size_t dropped_ = 0;
};

/// Limits of a config's YAML text, checked by check_yaml() before a tree is built.
inline constexpr size_t kMaxYamlNodes = 200000;
inline constexpr size_t kMaxYamlDepth = 64;
/// Items of one list (items_of, read_string_list); sections with a natural limit check less.
inline constexpr size_t kMaxListItems = 65536;

/// Checks the YAML text as a stream of events, before YAML::Load builds a tree of it, and
/// reports what a config never needs and what would make loading costly: aliases (`*name`,
/// which let a few bytes stand for a huge tree: "billion laughs"), more than one document,
/// nesting deeper than kMaxYamlDepth and more than kMaxYamlNodes values. Stops at the first
/// limit, so the cost is linear in the text. True when the text may be loaded. Throws
/// YAML::ParserException on a syntax error, as YAML::Load would.
bool check_yaml(Problems& problems, const std::string& text);

struct Entry {
    std::string name;
    YAML::Node value;
    Where where;
    int key_line = -1;
};

int line_of(const YAML::Node& node, int fallback);
std::string join_names(std::span<const std::string_view> names);
/// What a node holds, for "expected X, got Y".
std::string describe(const YAML::Node& node);
std::string lower(std::string text);

/// The entries of a map section, with unknown, reserved and duplicate keys reported. A null
/// section (a key with everything under it commented out) is an empty map.
std::vector<Entry> entries_of(Problems& problems, const YAML::Node& node, const Where& where,
        std::span<const std::string_view> known, std::span<const std::string_view> reserved = {},
        std::string_view unknown_what = "unknown key");
std::vector<Entry> entries_of(Problems& problems, const YAML::Node& node, const Where& where,
        Names known, Names reserved = {});

/// The items of a list value, each with its own Where ("key[3]", its line). A null value is
/// an empty list; anything but a list, or a list of more than kMaxListItems, is reported.
std::vector<Entry> items_of(Problems& problems, const Entry& entry);

bool read_u32(Problems& problems, const Entry& entry, uint32_t min, uint32_t max, uint32_t& out);
/// A byte size: "1000000", "500MB", "2 GiB" (KB, MB, GB, TB powers of 1000; KiB, MiB, GiB,
/// TiB powers of 1024; case-insensitive), optionally within [min, max].
bool read_bytes(Problems& problems, const Entry& entry, uint64_t min, uint64_t max, uint64_t& out);
bool read_bytes(Problems& problems, const Entry& entry, uint64_t& out);
bool read_bool(Problems& problems, const Entry& entry, bool& out);
/// A string value; an empty value (`key:`) reads as "".
bool read_string(Problems& problems, const Entry& entry, std::string& out);
/// A list of non-empty strings (at most kMaxListItems); each item is reported on its own line.
bool read_string_list(
        Problems& problems, const Entry& entry, size_t max_len, std::vector<std::string>& out);
/// low, medium, high or critical (case-insensitive).
bool read_severity(Problems& problems, const Entry& entry, detectors::Severity& out);
/// One of `choices` (case-insensitive); returns its index or -1 after reporting.
int read_choice(Problems& problems, const Entry& entry, Names choices);

}  // namespace exfiltap::control::config_reader
