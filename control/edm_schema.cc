#include "control/edm_schema.h"

#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <system_error>

#include "control/config_reader.h"

namespace exfiltap::control {
namespace {

using config_reader::Entry;
using config_reader::Problems;
using config_reader::Where;
using detectors::EdmColumn;
using detectors::EdmColumnType;
using detectors::EdmSchema;

constexpr std::array<EdmColumnType, 5> kTypes = {EdmColumnType::Number, EdmColumnType::Email,
        EdmColumnType::Name, EdmColumnType::Address, EdmColumnType::Text};

bool read_name(Problems& problems, const Entry& entry, std::string& out) {
    if (!entry.value.IsScalar() || entry.value.Scalar().empty()) {
        problems.add(entry.where, "expected a name, got " + config_reader::describe(entry.value));
        return false;
    }
    if (!detectors::edm_valid_name(entry.value.Scalar())) {
        problems.add(entry.where,
                "a name is 1.." + std::to_string(detectors::kEdmMaxNameBytes)
                        + " printable characters");
        return false;
    }
    out = entry.value.Scalar();
    return true;
}

void apply_root(Problems& problems, const YAML::Node& root, EdmSchema& schema) {
    if (!root.IsMap()) {
        problems.add({"", config_reader::line_of(root, 0)},
                "expected a map with table, primary and columns, got "
                        + config_reader::describe(root));
        return;
    }
    const int root_line = config_reader::line_of(root, 0);
    const auto entries = config_reader::entries_of(
            problems, root, {"", root_line}, {"table", "primary", "columns"});
    std::string primary;
    Where primary_where;
    bool have_table = false;
    bool have_primary = false;
    bool have_columns = false;
    bool columns_read = false;  // the list itself was usable (so "not a column" is meaningful)
    // Line of each column's name, for "first on line N".
    std::vector<int> name_lines;
    // Every column name read, typed or not, so a bad type is not also "not a column".
    std::vector<std::string> all_names;
    for (const auto& entry : entries) {
        if (entry.name == "table") {
            have_table = true;
            read_name(problems, entry, schema.table);
        } else if (entry.name == "primary") {
            have_primary = true;
            primary_where = entry.where;
            read_name(problems, entry, primary);
        } else {
            have_columns = true;
            const auto items = config_reader::items_of(problems, entry);
            columns_read =
                    entry.value.IsSequence() && entry.value.size() <= detectors::kEdmMaxColumns;
            if (items.empty() && entry.value.IsSequence()) {
                problems.add(entry.where, "no columns");
            }
            if (items.size() > detectors::kEdmMaxColumns) {
                problems.add(entry.where,
                        std::to_string(items.size()) + " columns, at most "
                                + std::to_string(detectors::kEdmMaxColumns));
                continue;
            }
            for (const auto& item : items) {
                const auto fields = config_reader::entries_of(
                        problems, item.value, item.where, {"name", "type"});
                EdmColumn column;
                bool named = false;
                bool typed = false;
                int name_line = item.where.line;
                for (const auto& field : fields) {
                    if (field.name == "name") {
                        named = read_name(problems, field, column.name);
                        name_line = field.where.line;
                        if (named) {
                            all_names.push_back(column.name);
                            const auto same = std::find_if(schema.columns.begin(),
                                    schema.columns.end(),
                                    [&](const EdmColumn& c) { return c.name == column.name; });
                            if (same != schema.columns.end()) {
                                const auto first =
                                        static_cast<size_t>(same - schema.columns.begin());
                                problems.add(field.where,
                                        "duplicate column name '" + column.name
                                                + "' (first on line "
                                                + std::to_string(name_lines[first] + 1) + ")");
                                named = false;
                            }
                        }
                    } else {
                        const int choice = config_reader::read_choice(
                                problems, field, {"number", "email", "name", "address", "text"});
                        if (choice >= 0) {
                            column.type = kTypes[static_cast<size_t>(choice)];
                            typed = true;
                        }
                    }
                }
                if (!item.value.IsMap()) {
                    continue;  // reported by entries_of
                }
                if (std::none_of(fields.begin(), fields.end(),
                            [](const Entry& f) { return f.name == "name"; })) {
                    problems.add(item.where, "name: missing");
                }
                if (std::none_of(fields.begin(), fields.end(),
                            [](const Entry& f) { return f.name == "type"; })) {
                    problems.add(item.where,
                            "type: missing (one of number, email, name, "
                            "address, text)");
                }
                if (named && typed) {
                    schema.columns.push_back(std::move(column));
                    name_lines.push_back(name_line);
                }
            }
        }
    }
    if (!have_table) {
        problems.add({"table", root_line}, "missing (the table's name, shown in alerts)");
    }
    if (!have_columns) {
        problems.add({"columns", root_line}, "missing (a list of {name, type})");
    }
    if (!have_primary) {
        problems.add({"primary", root_line}, "missing (the name of the primary column)");
        return;
    }
    if (primary.empty() || !columns_read) {
        return;
    }
    const auto it = std::find_if(schema.columns.begin(), schema.columns.end(),
            [&](const EdmColumn& c) { return c.name == primary; });
    if (it == schema.columns.end()) {
        if (std::find(all_names.begin(), all_names.end(), primary) == all_names.end()) {
            problems.add(primary_where, "'" + primary + "' is not one of the columns");
        }
        return;
    }
    schema.primary = static_cast<uint32_t>(it - schema.columns.begin());
}

}  // namespace

Result<EdmSchema> parse_edm_schema(const std::string& text, const std::string& name) {
    EdmSchema schema;
    Problems problems(name, true);
    try {
        if (config_reader::check_yaml(problems, text)) {
            apply_root(problems, YAML::Load(text), schema);
        }
    } catch (const YAML::ParserException& e) {
        problems.add({"", e.mark.is_null() ? -1 : e.mark.line}, "YAML syntax error: " + e.msg);
    } catch (const YAML::Exception& e) {
        problems.add({"", e.mark.is_null() ? -1 : e.mark.line}, "cannot read YAML: " + e.msg);
    }
    if (!problems.empty()) {
        return make_error(problems.joined());
    }
    return schema;
}

Result<EdmSchema> load_edm_schema(const std::string& path) {
    FILE* file = fopen(path.c_str(), "rbe");
    if (file == nullptr) {
        return make_error(
                path + ": cannot open schema file: " + std::generic_category().message(errno));
    }
    struct stat info {};
    if (fstat(fileno(file), &info) != 0 || !S_ISREG(info.st_mode)) {
        fclose(file);
        return make_error(path + ": not a regular file");
    }
    if (info.st_size > static_cast<off_t>(kMaxEdmSchemaBytes)) {
        fclose(file);
        return make_error(path + ": larger than " + std::to_string(kMaxEdmSchemaBytes)
                + " bytes; is this the schema file?");
    }
    std::string text(static_cast<size_t>(info.st_size), '\0');
    const size_t got = fread(text.data(), 1, text.size(), file);
    const bool failed = ferror(file) != 0;
    fclose(file);
    if (failed) {
        return make_error(path + ": cannot read schema file");
    }
    text.resize(got);
    return parse_edm_schema(text, path);
}

}  // namespace exfiltap::control
