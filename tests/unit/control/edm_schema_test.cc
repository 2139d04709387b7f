// The exfiltap-edm side of exact data match: the schema file, the streaming CSV reader, the
// header mapping and row loop, and the built tool run end to end.
#include "control/edm_schema.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "control/edm_csv.h"
#include "detectors/edm_index.h"
#include "tests/temp_dir.h"

namespace exfiltap::control {
namespace {

using detectors::EdmColumnType;
using detectors::EdmIndex;
using detectors::EdmIndexBuilder;
using detectors::EdmSchema;
using detectors::SipKey;
using test_support::TempDir;

const SipKey kKey{0x1111222233334444ULL, 0x5555666677778888ULL};

const char* const kSchema = R"(table: customers
primary: account_number
columns:
  - {name: account_number, type: number}
  - {name: full_name, type: name}
  - {name: email, type: email}
  - {name: street_address, type: address}
)";

std::string schema_error(const std::string& text) {
    auto schema = parse_edm_schema(text, "s.yaml");
    return schema.ok() ? std::string("<ok>") : schema.error();
}

// ---------------------------------------------------------------------------------------
// Schema

TEST(EdmSchemaTest, ReadsExample) {
    auto schema = parse_edm_schema(kSchema, "s.yaml");
    ASSERT_TRUE(schema.ok()) << schema.error();
    EXPECT_EQ(schema->table, "customers");
    ASSERT_EQ(schema->columns.size(), 4U);
    EXPECT_EQ(schema->columns[0].name, "account_number");
    EXPECT_EQ(schema->columns[0].type, EdmColumnType::Number);
    EXPECT_EQ(schema->columns[1].type, EdmColumnType::Name);
    EXPECT_EQ(schema->columns[2].type, EdmColumnType::Email);
    EXPECT_EQ(schema->columns[3].type, EdmColumnType::Address);
    EXPECT_EQ(schema->primary, 0U);
}

TEST(EdmSchemaTest, PrimaryMayBeAnyColumn) {
    std::string text = kSchema;
    text.replace(text.find("primary: account_number"), 23, "primary: email");
    auto schema = parse_edm_schema(text, "s.yaml");
    ASSERT_TRUE(schema.ok()) << schema.error();
    EXPECT_EQ(schema->primary, 2U);
}

TEST(EdmSchemaTest, UnknownKeyNamesFileLineAndKey) {
    EXPECT_EQ(
            schema_error("table: t\nprimary: a\nrows: 3\ncolumns:\n  - {name: a, type: number}\n"),
            "s.yaml:3: rows: unknown key, expected one of table, primary, columns");
}

TEST(EdmSchemaTest, UnknownColumnKeyNamesIt) {
    EXPECT_EQ(schema_error("table: t\nprimary: a\ncolumns:\n  - {name: a, type: number, min: 3}\n"),
            "s.yaml:4: columns[0].min: unknown key, expected one of name, type");
}

TEST(EdmSchemaTest, UnknownTypeNamesChoices) {
    EXPECT_EQ(schema_error("table: t\nprimary: a\ncolumns:\n  - {name: a, type: number}\n"
                           "  - name: b\n    type: phone\n"),
            "s.yaml:6: columns[1].type: expected one of number, email, name, address, text, "
            "got 'phone'");
}

TEST(EdmSchemaTest, DuplicateColumnNameNamesFirstLine) {
    EXPECT_EQ(schema_error("table: t\nprimary: a\ncolumns:\n  - {name: a, type: number}\n"
                           "  - {name: a, type: name}\n"),
            "s.yaml:5: columns[1].name: duplicate column name 'a' (first on line 4)");
}

TEST(EdmSchemaTest, MissingPrimaryIsAnError) {
    EXPECT_EQ(schema_error("table: t\ncolumns:\n  - {name: a, type: number}\n"),
            "s.yaml:1: primary: missing (the name of the primary column)");
}

TEST(EdmSchemaTest, PrimaryNotAColumnIsAnError) {
    EXPECT_EQ(schema_error("table: t\nprimary: b\ncolumns:\n  - {name: a, type: number}\n"),
            "s.yaml:2: primary: 'b' is not one of the columns");
}

TEST(EdmSchemaTest, MissingTableAndColumnsAreErrors) {
    EXPECT_EQ(schema_error("primary: a\n"),
            "s.yaml:1: table: missing (the table's name, shown in alerts)\n"
            "s.yaml:1: columns: missing (a list of {name, type})");
}

TEST(EdmSchemaTest, MissingColumnTypeIsAnError) {
    EXPECT_EQ(schema_error("table: t\nprimary: a\ncolumns:\n  - {name: a}\n"),
            "s.yaml:4: columns[0]: type: missing (one of number, email, name, address, text)");
}

TEST(EdmSchemaTest, TooManyColumnsIsAnError) {
    std::string text = "table: t\nprimary: c0\ncolumns:\n";
    for (int i = 0; i < 33; ++i) {
        text += "  - {name: c" + std::to_string(i) + ", type: text}\n";
    }
    EXPECT_EQ(schema_error(text), "s.yaml:4: columns: 33 columns, at most 32");
}

TEST(EdmSchemaTest, ThirtyTwoColumnsAreAccepted) {
    std::string text = "table: t\nprimary: c0\ncolumns:\n";
    for (int i = 0; i < 32; ++i) {
        text += "  - {name: c" + std::to_string(i) + ", type: text}\n";
    }
    EXPECT_EQ(schema_error(text), "<ok>");
}

TEST(EdmSchemaTest, SyntaxErrorNamesLine) {
    EXPECT_NE(schema_error("table: [t\nprimary: a\n").find("s.yaml:"), std::string::npos);
    EXPECT_NE(schema_error("table: [t\nprimary: a\n").find("YAML syntax error"), std::string::npos);
}

TEST(EdmSchemaTest, MissingFileNamesIt) {
    auto schema = load_edm_schema("/nonexistent/s.yaml");
    ASSERT_FALSE(schema.ok());
    EXPECT_EQ(schema.error().rfind("/nonexistent/s.yaml: cannot open schema file", 0), 0U);
}

// ---------------------------------------------------------------------------------------
// CSV reader

/// Every record of `text` as strings, "!BAD@line" for a bad one.
std::vector<std::vector<std::string>> records(std::string_view text) {
    CsvReader csv(text, "t.csv");
    std::vector<std::vector<std::string>> out;
    for (;;) {
        const auto status = csv.next();
        if (status == CsvReader::Status::End || status == CsvReader::Status::Error) {
            break;
        }
        if (status == CsvReader::Status::Bad) {
            out.push_back({"!BAD@" + std::to_string(csv.line())});
            continue;
        }
        out.emplace_back(csv.fields().begin(), csv.fields().end());
    }
    return out;
}

using Records = std::vector<std::vector<std::string>>;

TEST(CsvReaderTest, SplitsPlainFields) {
    EXPECT_EQ(records("a,b,c\n1,2,3\n"), (Records{{"a", "b", "c"}, {"1", "2", "3"}}));
}

TEST(CsvReaderTest, KeepsEmptyFields) {
    EXPECT_EQ(records(",x,\n"), (Records{{"", "x", ""}}));
}

TEST(CsvReaderTest, LastLineWithoutNewline) {
    EXPECT_EQ(records("a,b\n1,2"), (Records{{"a", "b"}, {"1", "2"}}));
}

TEST(CsvReaderTest, QuotedFieldsHoldSeparators) {
    EXPECT_EQ(records("\"a,b\",\"\",c\n"), (Records{{"a,b", "", "c"}}));
}

TEST(CsvReaderTest, DoubledQuoteIsOneQuote) {
    EXPECT_EQ(records("\"say \"\"hi\"\"\",\"\"\"\"\n"), (Records{{"say \"hi\"", "\""}}));
}

TEST(CsvReaderTest, CrlfEndsRecords) {
    EXPECT_EQ(records("a,b\r\n1,2\r\n"), (Records{{"a", "b"}, {"1", "2"}}));
}

TEST(CsvReaderTest, EmbeddedNewlineStaysInField) {
    CsvReader csv("a,\"line1\r\nline2\nline3\"\nnext,x\n", "t.csv");
    ASSERT_EQ(csv.next(), CsvReader::Status::Record);
    EXPECT_EQ(csv.fields()[1], "line1\r\nline2\nline3");
    EXPECT_EQ(csv.line(), 1U);
    ASSERT_EQ(csv.next(), CsvReader::Status::Record);
    EXPECT_EQ(csv.fields()[0], "next");
    EXPECT_EQ(csv.line(), 4U);
}

TEST(CsvReaderTest, SkipsByteOrderMark) {
    EXPECT_EQ(records("\xEF\xBB\xBF"
                      "id,name\n1,x\n"),
            (Records{{"id", "name"}, {"1", "x"}}));
}

TEST(CsvReaderTest, SkipsEmptyLines) {
    CsvReader csv("a\n\n\r\nb\n", "t.csv");
    ASSERT_EQ(csv.next(), CsvReader::Status::Record);
    ASSERT_EQ(csv.next(), CsvReader::Status::Record);
    EXPECT_EQ(csv.fields()[0], "b");
    EXPECT_EQ(csv.line(), 4U);
    EXPECT_EQ(csv.next(), CsvReader::Status::End);
}

TEST(CsvReaderTest, LoneCarriageReturnIsData) {
    EXPECT_EQ(records("a\rb,c\n"), (Records{{"a\rb", "c"}}));
}

TEST(CsvReaderTest, StrayQuoteIsBadAndSkipped) {
    EXPECT_EQ(records("a,b\nx,y\"z\nc,d\n"), (Records{{"a", "b"}, {"!BAD@2"}, {"c", "d"}}));
}

TEST(CsvReaderTest, TextAfterClosingQuoteIsBad) {
    CsvReader csv("\"ab\"c,d\n", "t.csv");
    ASSERT_EQ(csv.next(), CsvReader::Status::Bad);
    EXPECT_EQ(csv.problem(), "t.csv:1: text after the closing quote of field 1");
}

TEST(CsvReaderTest, UnclosedQuoteIsBadAtItsLine) {
    CsvReader csv("a\nb,\"open\nmore\n", "t.csv");
    ASSERT_EQ(csv.next(), CsvReader::Status::Record);
    ASSERT_EQ(csv.next(), CsvReader::Status::Bad);
    EXPECT_EQ(csv.problem(), "t.csv:2: quoted field opened on line 2 is never closed");
    EXPECT_EQ(csv.next(), CsvReader::Status::End);
}

TEST(CsvReaderTest, OverlongRecordIsBad) {
    std::string text = "a\n" + std::string(CsvReader::kMaxRecordBytes + 1, 'x') + "\nb\n";
    EXPECT_EQ(records(text), (Records{{"a"}, {"!BAD@2"}, {"b"}}));
}

TEST(CsvReaderTest, ReadsFileAcrossBufferBoundaries) {
    const std::string path = "/tmp/exfiltap_edm_csv_" + std::to_string(getpid()) + ".csv";
    {
        std::ofstream out(path, std::ios::binary);
        out << "\xEF\xBB\xBF"
               "id,text\r\n";
        for (int i = 0; i < 60000; ++i) {
            out << i << ",\"quoted, \"\"text\"\"\nwith a newline " << i << "\"\r\n";
        }
    }
    auto csv = CsvReader::open(path);
    ASSERT_TRUE(csv.ok()) << csv.error();
    ASSERT_EQ(csv.value()->next(), CsvReader::Status::Record);
    EXPECT_EQ(csv.value()->fields()[0], "id");
    int rows = 0;
    bool all_match = true;
    while (csv.value()->next() == CsvReader::Status::Record) {
        const auto fields = csv.value()->fields();
        all_match = all_match && fields.size() == 2 && fields[0] == std::to_string(rows)
                && fields[1] == "quoted, \"text\"\nwith a newline " + std::to_string(rows)
                && csv.value()->line() == static_cast<uint64_t>(2 + 2 * rows);
        ++rows;
    }
    std::filesystem::remove(path);
    EXPECT_EQ(rows, 60000);
    EXPECT_TRUE(all_match);
}

TEST(CsvReaderTest, MissingFileNamesIt) {
    auto csv = CsvReader::open("/nonexistent/t.csv");
    ASSERT_FALSE(csv.ok());
    EXPECT_EQ(csv.error().rfind("/nonexistent/t.csv: cannot open table", 0), 0U);
}

// ---------------------------------------------------------------------------------------
// Header mapping and rows

EdmSchema schema() {
    return parse_edm_schema(kSchema, "s.yaml").value();
}

TEST(EdmCsvTest, MapsHeaderByName) {
    const std::vector<std::string_view> header = {
            "notes", " email ", "street_address", "account_number", "full_name"};
    auto map = edm_map_header(schema(), header, "t.csv");
    ASSERT_TRUE(map.ok()) << map.error();
    EXPECT_EQ(map.value(), (std::vector<uint32_t>{3, 4, 1, 2}));
}

TEST(EdmCsvTest, MissingColumnIsNamed) {
    const std::vector<std::string_view> header = {"account_number", "name", "email"};
    auto map = edm_map_header(schema(), header, "t.csv");
    ASSERT_FALSE(map.ok());
    EXPECT_EQ(map.error(),
            "t.csv:1: the header lacks the schema's columns 'full_name', "
            "'street_address' (the first line must name the columns)");
}

TEST(EdmCsvTest, RepeatedHeaderNameIsAnError) {
    const std::vector<std::string_view> header = {
            "account_number", "full_name", "email", "street_address", "email"};
    auto map = edm_map_header(schema(), header, "t.csv");
    ASSERT_FALSE(map.ok());
    EXPECT_NE(map.error().find("'email' appears twice"), std::string::npos);
}

uint64_t hash_of(EdmColumnType type, std::string_view value) {
    return detectors::edm_value_hash(kKey, type, *detectors::edm_normalise(type, value));
}

TEST(EdmCsvTest, FeedsRowsInSchemaOrder) {
    const std::string text =
            "email,account_number,full_name,street_address\n"
            "ann@example.org,100001,Ann Berg,1 Elm Street\n"
            "bob@example.org,100002,Bob Stone,2 Elm Street\n";
    CsvReader csv(text, "t.csv");
    EdmIndexBuilder builder(schema(), kKey, false);
    auto fed = edm_feed_csv(csv, schema(), builder);
    ASSERT_TRUE(fed.ok()) << fed.error();
    EXPECT_EQ(fed->records, 2U);
    EXPECT_EQ(builder.report().rows, 2U);
    const std::string path = "/tmp/exfiltap_edm_feed_" + std::to_string(getpid()) + ".edm";
    ASSERT_TRUE(builder.write(path).ok());
    auto index = EdmIndex::load(path, kKey);
    std::filesystem::remove(path);
    ASSERT_TRUE(index.ok()) << index.error();
    const uint32_t row = index.value()->find_primary(hash_of(EdmColumnType::Number, "100002"));
    ASSERT_EQ(row, 1U);
    EXPECT_EQ(index.value()->fingerprint(row, 1),
            EdmIndex::fingerprint_of(hash_of(EdmColumnType::Email, "bob@example.org")));
}

TEST(EdmCsvTest, WrongFieldCountRowsAreCountedWithLines) {
    const std::string text =
            "account_number,full_name,email,street_address\n"
            "100001,Ann Berg,ann@example.org,1 Elm Street\n"
            "100002,Bob Stone,bob@example.org\n"
            "100003,\"Cy\nDee\",cy@example.org,3 Elm Street\n"
            "100004,Di Fox,di@example.org,4 Elm Street,extra\n"
            "100005,Ed \"Q\" Gray,ed@example.org,5 Elm Street\n";
    CsvReader csv(text, "t.csv");
    EdmIndexBuilder builder(schema(), kKey, false);
    auto fed = edm_feed_csv(csv, schema(), builder);
    ASSERT_TRUE(fed.ok()) << fed.error();
    EXPECT_EQ(fed->records, 5U);
    EXPECT_EQ(fed->bad_rows, 3U);
    EXPECT_EQ(fed->bad_samples,
            (std::vector<std::string>{"t.csv:3: 3 fields, the header has 4; row skipped",
                    "t.csv:6: 5 fields, the header has 4; row skipped",
                    "t.csv:7: a quote inside unquoted field 2; row skipped"}));
    EXPECT_EQ(builder.report().rows, 2U);
}

TEST(EdmCsvTest, BadRowMessagesHoldNoValue) {
    const std::string text =
            "account_number,full_name,email,street_address\n"
            "987654321,Secret Person\n";
    CsvReader csv(text, "t.csv");
    EdmIndexBuilder builder(schema(), kKey, false);
    auto fed = edm_feed_csv(csv, schema(), builder);
    ASSERT_TRUE(fed.ok());
    ASSERT_EQ(fed->bad_samples.size(), 1U);
    EXPECT_EQ(fed->bad_samples[0].find("987654321"), std::string::npos);
    EXPECT_EQ(fed->bad_samples[0].find("Secret"), std::string::npos);
}

TEST(EdmCsvTest, EmptyTableIsAnError) {
    CsvReader csv("", "t.csv");
    EdmIndexBuilder builder(schema(), kKey, false);
    auto fed = edm_feed_csv(csv, schema(), builder);
    ASSERT_FALSE(fed.ok());
    EXPECT_EQ(fed.error(), "t.csv: empty: expected a header line naming the columns");
}

TEST(EdmCsvTest, MissingColumnStopsFeed) {
    CsvReader csv("account_number,full_name\n1,2\n", "t.csv");
    EdmIndexBuilder builder(schema(), kKey, false);
    auto fed = edm_feed_csv(csv, schema(), builder);
    ASSERT_FALSE(fed.ok());
    EXPECT_NE(fed.error().find("'email', 'street_address'"), std::string::npos);
}

// ---------------------------------------------------------------------------------------
// The tool, end to end

struct ToolRun {
    int exit_code = -1;
    std::string out;
    std::string err;
};

std::string slurp(int fd) {
    std::string text;
    std::array<char, 4096> buf{};
    for (;;) {
        const ssize_t n = read(fd, buf.data(), buf.size());
        if (n <= 0) {
            break;
        }
        text.append(buf.data(), static_cast<size_t>(n));
    }
    close(fd);
    return text;
}

/// Runs the built exfiltap-edm; stdout and stderr go to files so neither pipe can fill.
ToolRun run_tool(const TempDir& dir, std::vector<std::string> args) {
    args.insert(args.begin(), EXFILTAP_EDM_BINARY);
    std::vector<char*> argv;
    for (auto& a : args) {
        argv.push_back(a.data());
    }
    argv.push_back(nullptr);
    const std::string out_path = dir.file("stdout");
    const std::string err_path = dir.file("stderr");
    const pid_t pid = fork();
    if (pid == 0) {
        const int out = ::open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
        const int err = ::open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
        dup2(out, STDOUT_FILENO);
        dup2(err, STDERR_FILENO);
        execv(argv[0], argv.data());
        _exit(127);
    }
    ToolRun run;
    int status = 0;
    waitpid(pid, &status, 0);
    run.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    run.out = slurp(::open(out_path.c_str(), O_RDONLY));
    run.err = slurp(::open(err_path.c_str(), O_RDONLY));
    return run;
}

/// 1,000 rows: 3 with a short name, 2 repeating an earlier account, 1 with a field missing.
void write_table(const std::string& path) {
    std::ofstream out(path, std::ios::binary);
    out << "account_number,full_name,email,street_address,notes\r\n";
    for (int i = 0; i < 997; ++i) {
        const std::string name = i < 3 ? "Al" : "Person" + std::to_string(i) + " Example";
        out << 5000000 + i << "," << name << ",p" << i << "@example.com,\"" << i
            << " Mill Lane, Flat 2\",ok\r\n";
    }
    out << "5000001,Dup One,d1@example.com,1 Dup Road,x\r\n";
    out << "5000002,Dup Two,d2@example.com,2 Dup Road,x\r\n";
    out << "5009999,Cut Row,c@example.com\r\n";
}

std::string report_value(const std::string& out, const std::string& key) {
    const size_t at = out.find("\n" + key + ": ");
    const size_t start =
            at == std::string::npos ? (out.rfind(key + ": ", 0) == 0 ? 0 : at) : at + 1;
    if (start == std::string::npos) {
        return "<missing>";
    }
    const size_t value = start + key.size() + 2;
    return out.substr(value, out.find('\n', value) - value);
}

TEST(EdmToolTest, IndexesTableAndReports) {
    TempDir dir{"exfiltap_edm_tool"};
    write_table(dir.file("t.csv"));
    std::ofstream(dir.file("s.yaml")) << kSchema;
    const auto run = run_tool(dir,
            {"index", "--table", dir.file("t.csv"), "--schema", dir.file("s.yaml"), "--out",
                    dir.file("t.edm"), "--state-dir", dir.file("")});
    ASSERT_EQ(run.exit_code, 0) << run.err;
    EXPECT_NE(
            run.out.find("created key " + dir.file("") + "/edm.key (mode 0600)"), std::string::npos)
            << run.out;
    EXPECT_EQ(report_value(run.out, "csv records"), "1000");
    EXPECT_EQ(report_value(run.out, "rows indexed"), "997");
    EXPECT_EQ(report_value(run.out, "duplicate primaries"), "2");
    EXPECT_EQ(report_value(run.out, "short values"), "3");
    EXPECT_EQ(report_value(run.out, "  full_name"), "3");
    EXPECT_EQ(report_value(run.out, "values stored"), "3985");  // 997 x 4 - 3
    // Words of the text values: person3..person996 and "example" (995), p0..p996@example.com
    // (997), house numbers 0..996 (997; "2" of "Flat 2" is one of them), mill lane flat (3).
    EXPECT_EQ(report_value(run.out, "distinct words"), "2992");
    EXPECT_EQ(report_value(run.out, "word filter bytes"), "8192");  // 2^16 bits, the least
    EXPECT_EQ(report_value(run.out, "bad csv rows"), "1");
    EXPECT_EQ(report_value(run.out, "unusable values"), "0");
    struct stat info {};
    ASSERT_EQ(stat(dir.file("t.edm").c_str(), &info), 0);
    EXPECT_EQ(report_value(run.out, "index bytes"), std::to_string(info.st_size));
    EXPECT_NE(run.err.find("WARN: 3 values too short to protect were skipped (full_name 3)"),
            std::string::npos)
            << run.err;
    EXPECT_NE(
            run.err.find("t.csv:1001: 3 fields, the header has 5; row skipped"), std::string::npos)
            << run.err;
}

TEST(EdmToolTest, KeyFileIsMode0600AndIndexLoadsWithIt) {
    TempDir dir{"exfiltap_edm_tool"};
    write_table(dir.file("t.csv"));
    std::ofstream(dir.file("s.yaml")) << kSchema;
    const auto run = run_tool(dir,
            {"index", "--table", dir.file("t.csv"), "--schema", dir.file("s.yaml"), "--out",
                    dir.file("t.edm"), "--state-dir", dir.file("")});
    ASSERT_EQ(run.exit_code, 0) << run.err;
    struct stat info {};
    ASSERT_EQ(stat(dir.file("edm.key").c_str(), &info), 0);
    EXPECT_EQ(info.st_mode & 0777, 0600U);
    auto key = detectors::edm_read_key(dir.file("edm.key"));
    ASSERT_TRUE(key.ok()) << key.error();
    auto index = EdmIndex::load(dir.file("t.edm"), key.value());
    ASSERT_TRUE(index.ok()) << index.error();
    EXPECT_EQ(index.value()->rows(), 997U);
    const auto account = detectors::edm_normalise(EdmColumnType::Number, "5000500");
    EXPECT_EQ(index.value()->find_primary(
                      detectors::edm_value_hash(key.value(), EdmColumnType::Number, *account)),
            500U);
}

TEST(EdmToolTest, ForceKeepsShortValues) {
    TempDir dir{"exfiltap_edm_tool"};
    write_table(dir.file("t.csv"));
    std::ofstream(dir.file("s.yaml")) << kSchema;
    const auto run = run_tool(dir,
            {"index", "--table", dir.file("t.csv"), "--schema", dir.file("s.yaml"), "--out",
                    dir.file("t.edm"), "--key", dir.file("k"), "--force"});
    ASSERT_EQ(run.exit_code, 0) << run.err;
    EXPECT_EQ(report_value(run.out, "values stored"), "3988");
    EXPECT_EQ(report_value(run.out, "short values"), "0 (kept: --force)");
    EXPECT_EQ(run.err.find("too short"), std::string::npos);
}

TEST(EdmToolTest, ReportHoldsNoTableValue) {
    TempDir dir{"exfiltap_edm_tool"};
    write_table(dir.file("t.csv"));
    std::ofstream(dir.file("s.yaml")) << kSchema;
    const auto run = run_tool(dir,
            {"index", "--table", dir.file("t.csv"), "--schema", dir.file("s.yaml"), "--out",
                    dir.file("t.edm"), "--key", dir.file("k")});
    ASSERT_EQ(run.exit_code, 0) << run.err;
    for (const auto* value :
            {"5009999", "Cut Row", "c@example.com", "Al,", "5000001", "Mill Lane"}) {
        EXPECT_EQ(run.out.find(value), std::string::npos) << value;
        EXPECT_EQ(run.err.find(value), std::string::npos) << value;
    }
}

TEST(EdmToolTest, InfoShowsSchemaWithoutKey) {
    TempDir dir{"exfiltap_edm_tool"};
    write_table(dir.file("t.csv"));
    std::ofstream(dir.file("s.yaml")) << kSchema;
    ASSERT_EQ(run_tool(dir,
                      {"index", "--table", dir.file("t.csv"), "--schema", dir.file("s.yaml"),
                              "--out", dir.file("t.edm"), "--key", dir.file("k")})
                      .exit_code,
            0);
    std::filesystem::remove(dir.file("k"));
    const auto run = run_tool(dir, {"info", dir.file("t.edm")});
    ASSERT_EQ(run.exit_code, 0) << run.err;
    EXPECT_EQ(report_value(run.out, "table"), "customers");
    EXPECT_EQ(report_value(run.out, "rows"), "997");
    EXPECT_EQ(report_value(run.out, "max words"), "5");  // "996 mill lane flat 2"
    EXPECT_EQ(report_value(run.out, "distinct words"), "2992");
    EXPECT_EQ(report_value(run.out, "word filter bytes"), "8192");
    EXPECT_NE(run.out.find("  account_number number (primary)\n"), std::string::npos) << run.out;
    EXPECT_NE(run.out.find("  street_address address\n"), std::string::npos);
}

TEST(EdmToolTest, InfoRefusesDamagedFile) {
    TempDir dir{"exfiltap_edm_tool"};
    std::ofstream(dir.file("bad.edm")) << "EXFEDM";
    const auto run = run_tool(dir, {"info", dir.file("bad.edm")});
    EXPECT_EQ(run.exit_code, 1);
    EXPECT_NE(run.err.find(dir.file("bad.edm") + ": not an exfiltap EDM index"), std::string::npos)
            << run.err;
}

TEST(EdmToolTest, BadSchemaExitsOneNamingLine) {
    TempDir dir{"exfiltap_edm_tool"};
    write_table(dir.file("t.csv"));
    std::ofstream(dir.file("s.yaml"))
            << "table: t\nprimary: a\ncolumns:\n  - {name: a, type: bogus}\n";
    const auto run = run_tool(dir,
            {"index", "--table", dir.file("t.csv"), "--schema", dir.file("s.yaml"), "--out",
                    dir.file("t.edm"), "--key", dir.file("k")});
    EXPECT_EQ(run.exit_code, 1);
    EXPECT_NE(run.err.find(dir.file("s.yaml") + ":4: columns[0].type"), std::string::npos)
            << run.err;
    EXPECT_FALSE(std::filesystem::exists(dir.file("t.edm")));
}

TEST(EdmToolTest, MissingStateDirIsAnError) {
    TempDir dir{"exfiltap_edm_tool"};
    write_table(dir.file("t.csv"));
    std::ofstream(dir.file("s.yaml")) << kSchema;
    const auto run = run_tool(dir,
            {"index", "--table", dir.file("t.csv"), "--schema", dir.file("s.yaml"), "--out",
                    dir.file("t.edm"), "--state-dir", dir.file("nope")});
    EXPECT_EQ(run.exit_code, 1);
    EXPECT_NE(run.err.find("state directory " + dir.file("nope") + " does not exist"),
            std::string::npos)
            << run.err;
}

TEST(EdmToolTest, MissingArgumentIsUsageError) {
    TempDir dir{"exfiltap_edm_tool"};
    EXPECT_EQ(run_tool(dir, {"index", "--table", "x.csv"}).exit_code, 2);
}

}  // namespace
}  // namespace exfiltap::control
