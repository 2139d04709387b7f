#include "control/edm_config.h"

#include <sys/stat.h>

#include <algorithm>
#include <set>
#include <utility>

#include "common/log.h"
#include "detectors/edm_index.h"

namespace exfiltap::control {
namespace {

using namespace config_reader;  // NOLINT(google-build-using-namespace): this file's vocabulary

constexpr uint32_t kMaxWindowBytes = 1U << 20;
constexpr uint32_t kMaxThreshold = 1000000;

bool read_table(Problems& problems, const Entry& item, detectors::EdmTableRules& table) {
    bool ok = true;
    bool has_index = false;
    const auto entries = entries_of(problems, item.value, item.where,
            {"index", "min_matches", "window_bytes", "severity", "threshold"});
    for (const auto& entry : entries) {
        if (entry.name == "index") {
            has_index = true;
            if (!read_string(problems, entry, table.path)) {
                ok = false;
            } else if (table.path.empty()) {
                problems.add(entry.where, "give the .edm file that `exfiltap-edm index` wrote");
                ok = false;
            }
        } else if (entry.name == "min_matches") {
            ok = read_u32(problems, entry, 0, detectors::kEdmMaxColumns - 1, table.min_matches)
                    && ok;
        } else if (entry.name == "window_bytes") {
            ok = read_u32(problems, entry, 16, kMaxWindowBytes, table.window_bytes) && ok;
        } else if (entry.name == "severity") {
            detectors::Severity severity{};
            if (read_severity(problems, entry, severity)) {
                table.severity = severity;
            } else {
                ok = false;
            }
        } else if (entry.name == "threshold") {
            uint32_t threshold = 1;
            if (read_u32(problems, entry, 1, kMaxThreshold, threshold)) {
                table.threshold = threshold;
            } else {
                ok = false;
            }
        }
    }
    if (item.value.IsMap() && entries.size() != item.value.size()) {
        ok = false;  // unknown keys were reported
    }
    if (!has_index && item.value.IsMap()) {
        problems.add(item.where, "a table needs its index file (index: FILE.edm)");
        ok = false;
    }
    return ok;
}

}  // namespace

void apply_edm(Problems& problems, const Entry& section, EdmSettings& settings,
        std::vector<detectors::EdmTableRules>& tables) {
    const auto entries = entries_of(
            problems, section.value, section.where, {"tables", "key_file", "state_slots"});
    for (const auto& entry : entries) {
        if (entry.name == "key_file") {
            read_string(problems, entry, settings.key_file);
        } else if (entry.name == "state_slots") {
            read_u32(problems, entry, 16, 1U << 22, settings.state_slots);
        } else if (entry.name == "tables") {
            const auto items = items_of(problems, entry);
            if (items.size() > detectors::kMaxEdmTables) {
                problems.add(entry.where,
                        std::to_string(items.size()) + " tables, at most "
                                + std::to_string(detectors::kMaxEdmTables) + " are supported");
                continue;
            }
            std::vector<detectors::EdmTableRules> read;
            bool ok = true;
            for (const auto& item : items) {
                detectors::EdmTableRules table;
                table.source = problems.location(item.where.line);
                if (!read_table(problems, item, table)) {
                    ok = false;
                    continue;
                }
                read.push_back(std::move(table));
            }
            if (ok) {
                tables = std::move(read);
            }
        }
    }
}

Status load_edm(const std::string& state_dir, const EdmSettings& settings,
        std::vector<detectors::EdmTableRules>& tables) {
    if (tables.empty()) {
        return Ok{};
    }
    const std::string key_file =
            settings.key_file.empty() ? state_dir + "/edm.key" : settings.key_file;
    auto key = detectors::edm_read_key(key_file);
    struct stat info {};
    if (key && stat(key_file.c_str(), &info) == 0 && (info.st_mode & 077) != 0) {
        log_warning("config", key_file
                        + " (the EDM key) can be read by other users: chmod 600 it; with the "
                          "key and an index, guessed values can be confirmed");
    }
    if (!key) {
        return make_error("edm: " + key.error()
                + " (`exfiltap-edm index` creates the key in the state directory; the daemon "
                  "needs the key the indexes were built with)");
    }
    std::string problems;
    std::set<std::string> names;
    for (size_t i = 0; i < tables.size(); ++i) {
        detectors::EdmTableRules& table = tables[i];
        const std::string where = (table.source.empty() ? std::string() : table.source + ": ")
                + "edm.tables[" + std::to_string(i) + "].index: ";
        auto index = detectors::EdmIndex::load(table.path, *key);
        if (!index) {
            problems += (problems.empty() ? "" : "\n") + where + index.error();
            continue;
        }
        table.index = std::move(*index);
        const uint32_t others = table.index->other_columns();
        if (table.min_matches > others) {
            problems += (problems.empty() ? "" : "\n") + where.substr(0, where.size() - 7)
                    + "min_matches: " + std::to_string(table.min_matches) + ", but table '"
                    + table.index->schema().table + "' has " + std::to_string(others)
                    + " columns besides its primary one; no record could ever match";
        }
        const std::string& name = table.index->schema().table;
        if (!names.insert(name).second) {
            problems += (problems.empty() ? "" : "\n") + where + "table '" + name
                    + "' is configured twice; each table once";
        }
    }
    if (!problems.empty()) {
        for (auto& table : tables) {
            table.index.reset();
        }
        return make_error(problems);
    }
    return Ok{};
}

}  // namespace exfiltap::control
