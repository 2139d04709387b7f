#include "control/config_reader.h"

#include <algorithm>
#include <array>
#include <charconv>
#include <exception>
#include <limits>
#include <sstream>
#include <string_view>
#include <system_error>

#include <yaml-cpp/eventhandler.h>

namespace exfiltap::control::config_reader {
namespace {
constexpr size_t kMaxShownScalar = 60;

std::string shown(const std::string& text) {
    return text.size() > kMaxShownScalar ? text.substr(0, kMaxShownScalar) + "..." : text;
}

/// Thrown by ShapeCheck to end the parse at a limit (already reported); never leaves
/// check_yaml().
struct StopScan : std::exception {
    const char* what() const noexcept override { return "config YAML limit reached"; }
};

/// Follows the parser's events with a stack of open collections, so a problem names the
/// dotted key it sits under, as the section readers do.
class ShapeCheck : public YAML::EventHandler {
public:
    explicit ShapeCheck(Problems& problems) : problems_(problems) {}
    bool ok() const { return ok_; }

    void OnDocumentStart(const YAML::Mark& mark) override {
        if (++documents_ > 1) {
            problems_.add(
                    {"", mark.line}, "more than one YAML document; the whole config goes in one");
            throw StopScan();
        }
    }
    void OnDocumentEnd() override {}
    void OnNull(const YAML::Mark& mark, YAML::anchor_t /*anchor*/) override {
        count(mark);
        finished("");
    }
    void OnAlias(const YAML::Mark& mark, YAML::anchor_t /*anchor*/) override {
        problems_.add({path_here(), mark.line},
                "YAML aliases (*name) are not supported in the config; write the value out");
        ok_ = false;
        finished("?");
    }
    void OnScalar(const YAML::Mark& mark, const std::string& /*tag*/, YAML::anchor_t /*anchor*/,
            const std::string& value) override {
        count(mark);
        finished(value);
    }
    void OnSequenceStart(const YAML::Mark& mark, const std::string& /*tag*/,
            YAML::anchor_t /*anchor*/, YAML::EmitterStyle::value /*style*/) override {
        open(mark, false);
    }
    void OnSequenceEnd() override { close(); }
    void OnMapStart(const YAML::Mark& mark, const std::string& /*tag*/, YAML::anchor_t /*anchor*/,
            YAML::EmitterStyle::value /*style*/) override {
        open(mark, true);
    }
    void OnMapEnd() override { close(); }

private:
    struct Frame {
        bool map = false;
        bool expect_key = true;
        size_t index = 0;
        std::string key;
        std::string path;
    };

    /// The dotted path of the node that starts now.
    std::string path_here() const {
        if (frames_.empty()) {
            return "";
        }
        const Frame& frame = frames_.back();
        if (!frame.map) {
            return frame.path + "[" + std::to_string(frame.index) + "]";
        }
        if (frame.expect_key) {
            return frame.path;
        }
        return frame.path.empty() ? frame.key : frame.path + "." + frame.key;
    }

    void count(const YAML::Mark& mark) {
        if (++nodes_ > kMaxYamlNodes) {
            problems_.add({"", mark.line},
                    "more than " + std::to_string(kMaxYamlNodes)
                            + " YAML values; a config has hundreds (is this the config file?)");
            throw StopScan();
        }
    }

    /// A node is complete: a map's key (its text names what follows), a map's value or a
    /// list item.
    void finished(const std::string& scalar) {
        if (frames_.empty()) {
            return;
        }
        Frame& frame = frames_.back();
        if (!frame.map) {
            ++frame.index;
        } else if (frame.expect_key) {
            frame.key = shown(scalar.empty() ? "?" : scalar);
            frame.expect_key = false;
        } else {
            frame.expect_key = true;
        }
    }

    void open(const YAML::Mark& mark, bool map) {
        count(mark);
        // Before yaml-cpp recurses further: its own guard allows thousands of levels.
        if (frames_.size() >= kMaxYamlDepth) {
            problems_.add({path_here(), mark.line},
                    "nested deeper than " + std::to_string(kMaxYamlDepth) + " levels");
            throw StopScan();
        }
        Frame frame;
        frame.map = map;
        frame.path = path_here();
        frames_.push_back(std::move(frame));
    }

    void close() {
        if (!frames_.empty()) {
            frames_.pop_back();
        }
        finished("?");
    }

    Problems& problems_;
    std::vector<Frame> frames_;
    size_t nodes_ = 0;
    size_t documents_ = 0;
    bool ok_ = true;
};

}  // namespace

bool check_yaml(Problems& problems, const std::string& text) {
    std::istringstream in(text);
    YAML::Parser parser(in);
    ShapeCheck check(problems);
    try {
        while (parser.HandleNextDocument(check)) {
        }
    } catch (const StopScan&) {
        return false;
    }
    return check.ok();
}

void Problems::add(const Where& where, const std::string& what) {
    if (lines_.size() >= kMaxProblems) {
        ++dropped_;
        return;
    }
    std::string line = origin_;
    if (with_lines_) {
        if (where.line >= 0) {
            line += ":" + std::to_string(where.line + 1);
        }
        line += ":";
    }
    line += " ";
    if (!where.path.empty()) {
        line += where.path + ": ";
    }
    line += what;
    if (line.size() > kMaxProblemLen) {
        line.resize(kMaxProblemLen - 3);
        line += "...";
    }
    lines_.push_back(std::move(line));
}

std::string Problems::location(int line) const {
    return with_lines_ && line >= 0 ? origin_ + ":" + std::to_string(line + 1) : origin_;
}

std::string Problems::joined() const {
    std::string out;
    for (const auto& line : lines_) {
        if (!out.empty()) {
            out += '\n';
        }
        out += line;
    }
    if (dropped_ > 0) {
        out += "\n... and " + std::to_string(dropped_) + " more problem"
                + (dropped_ == 1 ? "" : "s");
    }
    return out;
}

int line_of(const YAML::Node& node, int fallback) {
    const YAML::Mark mark = node.Mark();
    return mark.is_null() ? fallback : mark.line;
}

std::string join_names(std::span<const std::string_view> names) {
    std::string out;
    for (const auto name : names) {
        if (!out.empty()) {
            out += ", ";
        }
        out += name;
    }
    return out;
}

/// What a node holds, for "expected X, got Y".
std::string describe(const YAML::Node& node) {
    switch (node.Type()) {
    case YAML::NodeType::Scalar:
        return "'" + shown(node.Scalar()) + "'";
    case YAML::NodeType::Sequence:
        return "a list";
    case YAML::NodeType::Map:
        return "a map";
    case YAML::NodeType::Null:
    case YAML::NodeType::Undefined:
        break;
    }
    return "nothing";
}

/// The entries of a map section, with unknown, reserved and duplicate keys reported. A null
/// section (a key with everything under it commented out) is an empty map.
std::vector<Entry> entries_of(Problems& problems, const YAML::Node& node, const Where& where,
        std::span<const std::string_view> known, std::span<const std::string_view> reserved,
        std::string_view unknown_what) {
    std::vector<Entry> entries;
    if (node.IsNull() || !node.IsDefined()) {
        return entries;
    }
    if (!node.IsMap()) {
        problems.add(where, "expected a map of keys, got " + describe(node));
        return entries;
    }
    for (auto it = node.begin(); it != node.end(); ++it) {
        const YAML::Node key = it->first;
        const int line = line_of(key, where.line);
        if (!key.IsScalar()) {
            problems.add({where.path, line}, "keys must be plain names, got " + describe(key));
            continue;
        }
        Entry entry{key.Scalar(), it->second, {}, line};
        entry.where.path = where.path.empty() ? entry.name : where.path + "." + entry.name;
        entry.where.line = line;
        if (std::find(reserved.begin(), reserved.end(), entry.name) != reserved.end()) {
            problems.add(entry.where, "not supported yet in this version (reserved)");
            continue;
        }
        if (std::find(known.begin(), known.end(), entry.name) == known.end()) {
            problems.add(entry.where,
                    std::string(unknown_what) + ", expected one of " + join_names(known));
            continue;
        }
        const auto first = std::find_if(entries.begin(), entries.end(),
                [&](const Entry& other) { return other.name == entry.name; });
        if (first != entries.end()) {
            problems.add(entry.where,
                    "duplicate key (first on line " + std::to_string(first->key_line + 1) + ")");
            continue;
        }
        // Type errors point at the value, except an empty one: its mark is the next token.
        if (!entry.value.IsNull()) {
            entry.where.line = line_of(entry.value, line);
        }
        entries.push_back(std::move(entry));
    }
    return entries;
}

std::vector<Entry> entries_of(Problems& problems, const YAML::Node& node, const Where& where,
        Names known, Names reserved) {
    return entries_of(problems, node, where, std::span(known.begin(), known.size()),
            std::span(reserved.begin(), reserved.size()));
}

bool read_bytes(Problems& problems, const Entry& entry, uint64_t min, uint64_t max, uint64_t& out) {
    static constexpr std::array<std::pair<std::string_view, uint64_t>, 10> kUnits = {{
            {"b", 1},
            {"kb", 1000ULL},
            {"mb", 1000ULL * 1000},
            {"gb", 1000ULL * 1000 * 1000},
            {"tb", 1000ULL * 1000 * 1000 * 1000},
            {"kib", 1ULL << 10},
            {"mib", 1ULL << 20},
            {"gib", 1ULL << 30},
            {"tib", 1ULL << 40},
            {"", 1},
    }};
    const std::string text = entry.value.IsScalar() ? lower(entry.value.Scalar()) : std::string();
    uint64_t number = 0;
    const char* end = text.data() + text.size();
    const auto [ptr, ec] = std::from_chars(text.data(), end, number);
    std::string_view unit(ptr, static_cast<size_t>(end - ptr));
    while (!unit.empty() && unit.front() == ' ') {
        unit.remove_prefix(1);
    }
    uint64_t scale = 0;
    for (const auto& [name, value] : kUnits) {
        if (unit == name) {
            scale = value;
        }
    }
    if (!entry.value.IsScalar() || ec != std::errc() || ptr == text.data() || scale == 0) {
        problems.add(entry.where,
                "expected a byte count: an integer, optionally with KB, MB, GB, TB (powers of "
                "1000) or KiB, MiB, GiB, TiB (powers of 1024), got "
                        + describe(entry.value));
        return false;
    }
    if (number > std::numeric_limits<uint64_t>::max() / 2 / scale) {
        problems.add(entry.where, text + " is too large");
        return false;
    }
    const uint64_t value = number * scale;
    if (value < min || value > max) {
        problems.add(entry.where,
                "expected from " + std::to_string(min) + " to " + std::to_string(max)
                        + " bytes, got " + describe(entry.value));
        return false;
    }
    out = value;
    return true;
}

bool read_bytes(Problems& problems, const Entry& entry, uint64_t& out) {
    return read_bytes(problems, entry, 0, std::numeric_limits<uint64_t>::max(), out);
}

bool read_u32(Problems& problems, const Entry& entry, uint32_t min, uint32_t max, uint32_t& out) {
    const YAML::Node& node = entry.value;
    const std::string text = node.IsScalar() ? node.Scalar() : std::string();
    uint64_t value = 0;
    const char* end = text.data() + text.size();
    const auto [ptr, ec] = std::from_chars(text.data(), end, value);
    const bool digits_only = !text.empty()
            && std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; });
    if (!node.IsScalar() || !digits_only
            || (ec != std::errc() && ec != std::errc::result_out_of_range) || ptr != end) {
        problems.add(entry.where, "expected an unsigned integer, got " + describe(node));
        return false;
    }
    if (ec == std::errc::result_out_of_range || value < min || value > max) {
        problems.add(entry.where,
                text + " is out of range " + std::to_string(min) + ".." + std::to_string(max));
        return false;
    }
    out = static_cast<uint32_t>(value);
    return true;
}

std::string lower(std::string text) {
    std::transform(text.begin(), text.end(), text.begin(),
            [](char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; });
    return text;
}

bool read_bool(Problems& problems, const Entry& entry, bool& out) {
    if (entry.value.IsScalar()) {
        const std::string text = lower(entry.value.Scalar());
        if (text == "true" || text == "yes" || text == "on") {
            out = true;
            return true;
        }
        if (text == "false" || text == "no" || text == "off") {
            out = false;
            return true;
        }
    }
    problems.add(entry.where, "expected true or false, got " + describe(entry.value));
    return false;
}

/// A string value; an empty value (`key:`) reads as "".
bool read_string(Problems& problems, const Entry& entry, std::string& out) {
    if (entry.value.IsNull()) {
        out.clear();
        return true;
    }
    if (!entry.value.IsScalar()) {
        problems.add(entry.where, "expected a string, got " + describe(entry.value));
        return false;
    }
    out = entry.value.Scalar();
    return true;
}

/// A list of non-empty strings; each item is reported on its own line.
bool read_string_list(
        Problems& problems, const Entry& entry, size_t max_len, std::vector<std::string>& out) {
    if (entry.value.IsNull()) {
        out.clear();
        return true;
    }
    if (!entry.value.IsSequence()) {
        problems.add(entry.where, "expected a list of strings, got " + describe(entry.value));
        return false;
    }
    if (entry.value.size() > kMaxListItems) {
        problems.add(entry.where,
                std::to_string(entry.value.size()) + " items, at most "
                        + std::to_string(kMaxListItems));
        return false;
    }
    std::vector<std::string> items;
    bool ok = true;
    for (size_t i = 0; i < entry.value.size(); ++i) {
        const YAML::Node item = entry.value[i];
        const Where where{
                entry.where.path + "[" + std::to_string(i) + "]", line_of(item, entry.where.line)};
        if (!item.IsScalar() || item.Scalar().empty()) {
            problems.add(where, "expected a non-empty string, got " + describe(item));
            ok = false;
            continue;
        }
        if (item.Scalar().size() > max_len) {
            problems.add(where, "longer than " + std::to_string(max_len) + " characters");
            ok = false;
            continue;
        }
        items.push_back(item.Scalar());
    }
    if (ok) {
        out = std::move(items);
    }
    return ok;
}

std::vector<Entry> items_of(Problems& problems, const Entry& entry) {
    std::vector<Entry> items;
    if (entry.value.IsNull()) {
        return items;
    }
    if (!entry.value.IsSequence()) {
        problems.add(entry.where, "expected a list, got " + describe(entry.value));
        return items;
    }
    if (entry.value.size() > kMaxListItems) {
        problems.add(entry.where,
                std::to_string(entry.value.size()) + " items, at most "
                        + std::to_string(kMaxListItems));
        return items;
    }
    for (size_t i = 0; i < entry.value.size(); ++i) {
        const YAML::Node item = entry.value[i];
        const int line = line_of(item, entry.where.line);
        items.push_back(Entry{std::to_string(i), item,
                {entry.where.path + "[" + std::to_string(i) + "]", line}, line});
    }
    return items;
}

bool read_severity(Problems& problems, const Entry& entry, detectors::Severity& out) {
    detectors::Severity severity{};
    if (entry.value.IsScalar()
            && detectors::severity_from_name(lower(entry.value.Scalar()), severity)) {
        out = severity;
        return true;
    }
    problems.add(entry.where,
            "expected one of low, medium, high, critical, got " + describe(entry.value));
    return false;
}

int read_choice(Problems& problems, const Entry& entry, Names choices) {
    if (entry.value.IsScalar()) {
        const std::string text = lower(entry.value.Scalar());
        int index = 0;
        for (const auto choice : choices) {
            if (text == choice) {
                return index;
            }
            ++index;
        }
    }
    problems.add(entry.where,
            "expected one of " + join_names(std::span(choices.begin(), choices.size())) + ", got "
                    + describe(entry.value));
    return -1;
}

}  // namespace exfiltap::control::config_reader
