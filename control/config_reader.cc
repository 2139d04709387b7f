#include "control/config_reader.h"

#include <algorithm>
#include <charconv>
#include <system_error>

namespace exfiltap::control::config_reader {
namespace {
constexpr size_t kMaxShownScalar = 60;
}  // namespace

void Problems::add(const Where& where, const std::string& what) {
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
    case YAML::NodeType::Scalar: {
        std::string text = node.Scalar();
        if (text.size() > kMaxShownScalar) {
            text = text.substr(0, kMaxShownScalar) + "...";
        }
        return "'" + text + "'";
    }
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
    for (size_t i = 0; i < entry.value.size(); ++i) {
        const YAML::Node item = entry.value[i];
        const int line = line_of(item, entry.where.line);
        items.push_back(Entry{std::to_string(i), item,
                {entry.where.path + "[" + std::to_string(i) + "]", line}, line});
    }
    return items;
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
