// exfiltap-edm: builds exact data match indexes from the operator's tables and shows what an
// index holds (DESIGN.md "Exact data match").
//
//     exfiltap-edm index --table FILE.csv --schema SCHEMA.yaml --out FILE.edm
//                        [--state-dir DIR | --key FILE] [--force]
//     exfiltap-edm info FILE.edm
//
// The key lives apart from the index (DIR/edm.key, created on first use, mode 0600). The
// table is read as a stream and never printed: messages name file, line and column only.
// Exit codes: 0 done, 1 an error (message on stderr), 2 usage error.
#include <sys/stat.h>

#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <string>
#include <utility>

#include "control/edm_csv.h"
#include "control/edm_schema.h"
#include "detectors/edm_index.h"

#include <CLI/CLI.hpp>

namespace {

using exfiltap::control::CsvReader;
using exfiltap::detectors::EdmIndex;
using exfiltap::detectors::EdmIndexBuilder;
using exfiltap::detectors::SipKey;

constexpr int kExitOk = 0;
constexpr int kExitError = 1;
constexpr int kExitUsage = 2;
constexpr const char* kDefaultStateDir = "/var/lib/exfiltap";

struct IndexOptions {
    std::string table;
    std::string schema;
    std::string out;
    std::string state_dir = kDefaultStateDir;
    std::string key;
    bool force = false;
};

int fail(const std::string& message) {
    std::cerr << "exfiltap-edm: " << message << "\n";
    return kExitError;
}

std::string fixed(double value, int decimals) {
    std::array<char, 64> text{};
    std::snprintf(text.data(), text.size(), "%.*f", decimals, value);
    return text.data();
}

int run_index(const IndexOptions& opt) {
    const auto started = std::chrono::steady_clock::now();
    auto schema = exfiltap::control::load_edm_schema(opt.schema);
    if (!schema.ok()) {
        return fail("bad schema:\n" + schema.error());
    }

    // The key: given, or the state folder's (made on first use).
    std::string key_path = opt.key;
    if (key_path.empty()) {
        struct stat dir {};
        if (stat(opt.state_dir.c_str(), &dir) != 0 || !S_ISDIR(dir.st_mode)) {
            return fail("state directory " + opt.state_dir
                    + " does not exist: create it, or pass --state-dir DIR or --key FILE");
        }
        key_path = opt.state_dir + "/edm.key";
    }
    // The index must not replace what it is built from, nor the key.
    for (const auto& [what, path] :
            {std::pair<const char*, const std::string*>{"table", &opt.table},
                    {"schema", &opt.schema}, {"key", &key_path}}) {
        std::error_code ec;
        if (std::filesystem::equivalent(opt.out, *path, ec)) {
            return fail("--out " + opt.out + " is the " + what + " file; refusing to overwrite it");
        }
    }
    bool created = false;
    auto key = exfiltap::detectors::edm_load_or_create_key(key_path, &created);
    if (!key.ok()) {
        return fail(key.error());
    }
    if (created) {
        std::cout << "created key " << key_path
                  << " (mode 0600): keep it; the daemon needs it, and every index of this "
                     "installation is built with it\n";
    } else {
        struct stat info {};
        if (stat(key_path.c_str(), &info) == 0 && (info.st_mode & 077) != 0) {
            std::cerr << "WARN: " << key_path
                      << " can be read by other users; chmod 600 it: with the key and an "
                         "index, values can be confirmed by guessing\n";
        }
    }

    auto csv = CsvReader::open(opt.table);
    if (!csv.ok()) {
        return fail(csv.error());
    }
    EdmIndexBuilder builder(schema.value(), key.value(), opt.force);
    auto fed = exfiltap::control::edm_feed_csv(*csv.value(), schema.value(), builder);
    if (!fed.ok()) {
        return fail(fed.error());
    }
    const auto& rep = builder.report();
    const auto& csv_rep = fed.value();
    if (rep.rows == 0) {
        return fail(opt.table + ": no row could be indexed (" + std::to_string(csv_rep.records)
                + " records read); nothing written");
    }
    const auto written = builder.write(opt.out);
    if (!written.ok()) {
        return fail(written.error());
    }
    const auto elapsed = std::chrono::steady_clock::now() - started;
    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(elapsed).count();
    const double seconds = std::chrono::duration<double>(elapsed).count();

    const auto& columns = schema.value().columns;
    std::cout << "table: " << schema.value().table << "\n";
    std::cout << "columns: " << columns.size() << " (primary "
              << columns[schema.value().primary].name << ")\n";
    std::cout << "csv records: " << csv_rep.records << "\n";
    std::cout << "rows indexed: " << rep.rows << "\n";
    std::cout << "rows without usable primary: " << rep.rows_without_primary << "\n";
    std::cout << "duplicate primaries: " << rep.duplicate_primaries << "\n";
    std::cout << "values stored: " << rep.values << "\n";
    std::cout << "duplicate values: " << rep.duplicate_values << "\n";
    std::cout << "distinct words: " << rep.distinct_words << "\n";
    std::cout << "short values: " << rep.short_values << (opt.force ? " (kept: --force)" : "")
              << "\n";
    for (size_t i = 0; i < columns.size(); ++i) {
        if (rep.short_per_column[i] > 0) {
            std::cout << "  " << columns[i].name << ": " << rep.short_per_column[i] << "\n";
        }
    }
    std::cout << "unusable values: " << rep.unusable_values << "\n";
    std::cout << "bad csv rows: " << csv_rep.bad_rows << "\n";
    std::cout << "index file: " << opt.out << "\n";
    std::cout << "index bytes: " << builder.file_bytes() << "\n";
    std::cout << "word filter bytes: " << builder.word_filter_bytes() << "\n";
    std::cout << "bytes per stored value: "
              << fixed(static_cast<double>(builder.file_bytes())
                                 / static_cast<double>(std::max<uint64_t>(rep.values, 1)),
                         1)
              << "\n";
    std::cout << "build time ms: " << ms << "\n";
    std::cout << "rows per second: "
              << fixed(static_cast<double>(csv_rep.records) / std::max(seconds, 1e-6), 0) << "\n";

    if (rep.short_values > 0 && !opt.force) {
        std::string per_column;
        for (size_t i = 0; i < columns.size(); ++i) {
            if (rep.short_per_column[i] > 0) {
                per_column += (per_column.empty() ? "" : ", ") + columns[i].name + " "
                        + std::to_string(rep.short_per_column[i]);
            }
        }
        std::cerr << "WARN: " << rep.short_values << " values too short to protect were skipped ("
                  << per_column << "): they would match everywhere; --force stores them\n";
    }
    if (rep.unusable_values > 0) {
        std::cerr << "WARN: " << rep.unusable_values
                  << " values could not be stored: nothing left after normalising, more than "
                  << exfiltap::detectors::kEdmMaxValueWords << " words, a word over "
                  << exfiltap::detectors::kEdmMaxWordBytes << " bytes, or a number of more than "
                  << exfiltap::detectors::kEdmMaxNumberDigits
                  << " digits; split long columns (a street line, a city) in the table\n";
    }
    if (csv_rep.bad_rows > 0) {
        std::cerr << "WARN: " << csv_rep.bad_rows << " bad CSV rows skipped:\n";
        for (const auto& line : csv_rep.bad_samples) {
            std::cerr << "  " << line << "\n";
        }
        if (csv_rep.bad_rows > csv_rep.bad_samples.size()) {
            std::cerr << "  ... and " << (csv_rep.bad_rows - csv_rep.bad_samples.size())
                      << " more\n";
        }
    }
    return kExitOk;
}

int run_info(const std::string& path) {
    auto loaded = EdmIndex::load_without_key(path);
    if (!loaded.ok()) {
        return fail(loaded.error());
    }
    const EdmIndex& index = *loaded.value();
    struct stat info {};
    stat(path.c_str(), &info);
    const auto& schema = index.schema();
    std::cout << "file: " << path << "\n";
    std::cout << "table: " << schema.table << "\n";
    std::cout << "columns: " << schema.columns.size() << "\n";
    for (size_t i = 0; i < schema.columns.size(); ++i) {
        std::cout << "  " << schema.columns[i].name << " "
                  << exfiltap::detectors::edm_column_type_name(schema.columns[i].type)
                  << (i == schema.primary ? " (primary)" : "") << "\n";
    }
    std::cout << "rows: " << index.rows() << "\n";
    std::cout << "max words: " << index.max_words() << "\n";
    std::cout << "distinct other values: " << index.filter_values() << "\n";
    std::cout << "primary slots: " << index.primary_capacity() << "\n";
    std::cout << "filter slots: " << index.filter_capacity() << "\n";
    std::cout << "distinct words: " << index.word_count() << "\n";
    std::cout << "word filter bytes: " << index.word_filter_bytes() << "\n";
    std::cout << "file bytes: " << info.st_size << "\n";
    std::cout << "memory bytes: " << index.memory_bytes() << "\n";
    std::cout << "checksum: ok (key not checked: info needs no key)\n";
    return kExitOk;
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"exfiltap-edm: build and inspect exact data match indexes"};
    app.require_subcommand(1, 1);

    IndexOptions opt;
    auto* index = app.add_subcommand("index", "build an index from a CSV table");
    index->add_option("--table", opt.table, "the table (CSV with a header line)")->required();
    index->add_option("--schema", opt.schema, "the table's schema (YAML)")->required();
    index->add_option("--out", opt.out, "the index file to write")->required();
    auto* state_dir = index->add_option("--state-dir", opt.state_dir,
                                   "folder of the key file edm.key (made on first use)")
                              ->capture_default_str();
    auto* key = index->add_option("--key", opt.key, "the key file (instead of --state-dir)");
    key->excludes(state_dir);
    index->add_flag("--force", opt.force, "store values too short to protect as well");

    std::string info_path;
    auto* info = app.add_subcommand("info", "show what an index holds (no key needed)");
    info->add_option("file", info_path, "the index file")->required();

    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        const int rc = app.exit(e);
        return rc == 0 ? kExitOk : kExitUsage;
    }
    try {
        if (index->parsed()) {
            return run_index(opt);
        }
        return run_info(info_path);
    } catch (const std::exception& e) {
        return fail(std::string("unexpected error: ") + e.what());
    }
}
