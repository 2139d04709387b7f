// Exact data match end to end: exfiltap-edm indexes the generated one-million-row customer
// table (exfiltap-gen --scenario edm), and exfiltap runs the generated captures with that
// index: 50 CSV rows (in order, and in small reordered segments) and a 5-row JSON export
// raise the alert with the record count; names without the primary column, values of
// different rows mixed, and ordinary traffic raise nothing. The index file holds no value
// of the table, and an index with a key not its own is refused.
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <set>
#include <sstream>
#include <string>
#include <unordered_map>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tests/gen/scenarios.h"
#include "tests/integration/harness.h"
#include "tests/schema_validator.h"

namespace exfiltap::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::IsEmpty;

const std::vector<std::string> kColumns = {
        "account_number", "full_name", "email", "street_address", "city"};

std::string read_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

class EdmTest : public ::testing::Test {
protected:
    static void SetUpTestSuite() {
        const char* prefix = getenv("EXFILTAP_EDM_PREFIX");  // NOLINT: no threads yet
        if (prefix == nullptr) {
            return;
        }
        prefix_ = new std::string(prefix);
        dir_ = new std::string(::testing::TempDir() + "/edm_test_" + std::to_string(getpid()));
        std::filesystem::create_directories(*dir_);
        // The real tool on the real table: one million rows.
        RunOutput built = run_tool({"index", "--table", *prefix_ + "-customers.csv", "--schema",
                *prefix_ + "-customers.yaml", "--out", *dir_ + "/customers.edm", "--state-dir",
                *dir_});
        build_ = new RunOutput(built);
        std::ofstream(*dir_ + "/exfiltap.yaml")
                << "edm:\n  key_file: " << *dir_ << "/edm.key\n  tables:\n    - index: " << *dir_
                << "/customers.edm\n";
    }

    static void TearDownTestSuite() {
        if (dir_ != nullptr) {
            std::filesystem::remove_all(*dir_);
        }
        delete prefix_;
        delete dir_;
        delete build_;
        prefix_ = dir_ = nullptr;
        build_ = nullptr;
    }

    void SetUp() override {
        ASSERT_NE(prefix_, nullptr) << "EXFILTAP_EDM_PREFIX not set (meson test sets it)";
        ASSERT_EQ(build_->exit_code, 0) << build_->out;
    }

    static RunOutput run_tool(const std::vector<std::string>& args) {
        RunOutput out;
        std::string command = EXFILTAP_EDM_BINARY;
        for (const std::string& a : args) {
            command += " '" + a + "'";
        }
        command += " 2>&1";
        FILE* pipe = popen(command.c_str(), "r");
        if (pipe == nullptr) {
            return out;
        }
        char buffer[4096];
        size_t n = 0;
        while ((n = fread(buffer, 1, sizeof(buffer), pipe)) > 0) {
            out.out.append(buffer, n);
        }
        const int status = pclose(pipe);
        out.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
        return out;
    }

    RunOutput run_case(const std::string& capture, const std::string& config) {
        return run_checked(*prefix_ + "-" + capture + ".pcap", config);
    }

    static std::string config() { return *dir_ + "/exfiltap.yaml"; }

    static std::string* prefix_;
    static std::string* dir_;
    static RunOutput* build_;
};

std::string* EdmTest::prefix_ = nullptr;
std::string* EdmTest::dir_ = nullptr;
RunOutput* EdmTest::build_ = nullptr;

TEST_F(EdmTest, ToolIndexesTheMillionRowTable) {
    const std::string& out = build_->out;

    EXPECT_THAT(out, HasSubstr("rows indexed: 1000000\n"));
    EXPECT_THAT(out, HasSubstr("duplicate primaries: 0\n"));
    EXPECT_THAT(out, HasSubstr("bad csv rows: 0\n"));
    EXPECT_THAT(out, HasSubstr("values stored: 5000000\n"));
    const auto mode = std::filesystem::status(*dir_ + "/edm.key").permissions();
    EXPECT_EQ(mode, std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
}

TEST_F(EdmTest, EachCaptureGivesItsRecordCount) {
    for (const gen::EdmCase& c : gen::kEdmCases) {
        SCOPED_TRACE(std::string(c.capture));
        const RunOutput run = run_case(std::string(c.capture), config());
        const std::vector<nlohmann::json> alerts = alerts_of(run, "edm");
        if (c.records == 0) {
            EXPECT_THAT(alerts, IsEmpty()) << (alerts.empty() ? "" : alerts[0].dump());
            continue;
        }
        ASSERT_FALSE(alerts.empty()) << run.out;
        uint64_t count = 0;
        for (const auto& alert : alerts) {
            const auto& exfil = alert["exfil"];
            count += exfil["count"].get<uint64_t>();
            EXPECT_EQ(exfil["detector"], "content");
            EXPECT_EQ(exfil["edm"]["table"], "customers");
            EXPECT_FALSE(exfil.contains("sample")) << alert.dump();
            EXPECT_FALSE(exfil.contains("sample_hmac")) << alert.dump();
            EXPECT_EQ(alert["alert"]["signature_id"], 2100301);
            EXPECT_THAT(alert["alert"]["signature"].get<std::string>(), HasSubstr("'customers'"));
            EXPECT_EQ(alert["dest_port"], 80);
            EXPECT_THAT(alert["src_ip"].get<std::string>(), ::testing::StartsWith("10.20.4."));
        }
        const auto& last = alerts.back()["exfil"];
        // Each record counts once in some record's count, though a body is matched in the
        // raw bytes and again as a decoded or plain-body object.
        EXPECT_EQ(count, c.records);
        EXPECT_EQ(last["edm"]["records"], c.records);
        if (c.capture == "form-keepalive") {
            // Three fields of five: the record counts, with low confidence.
            const std::vector<std::string> three = {"account_number", "full_name", "email"};
            EXPECT_EQ(last["edm"]["columns"].get<std::vector<std::string>>(), three);
            EXPECT_EQ(last["confidence"], "low");
        } else {
            EXPECT_EQ(last["edm"]["columns"].get<std::vector<std::string>>(), kColumns);
            EXPECT_EQ(last["confidence"], "high");
        }
        EXPECT_EQ(run.summary["alerts"]["edm"], alerts.size()) << run.summary.dump();
    }
}

TEST_F(EdmTest, TableThresholdCountsRecords) {
    const std::string above = *dir_ + "/threshold51.yaml";
    std::ofstream(above) << read_file(config()) << "      threshold: 51\n";
    const std::string at = *dir_ + "/threshold50.yaml";
    std::ofstream(at) << read_file(config()) << "      threshold: 50\n";

    EXPECT_THAT(alerts_of(run_case("csv50", above), "edm"), IsEmpty());
    const auto alerts = alerts_of(run_case("csv50", at), "edm");
    ASSERT_EQ(alerts.size(), 1U);
    EXPECT_EQ(alerts[0]["exfil"]["count"], 50);
    EXPECT_EQ(alerts[0]["exfil"]["edm"]["records"], 50);
}

TEST_F(EdmTest, DisabledClassMatchesNothing) {
    const std::string off = *dir_ + "/off.yaml";
    std::ofstream(off) << read_file(config())
                       << "content:\n  classes:\n    edm:\n"
                          "      enabled: false\n";

    EXPECT_THAT(alerts_of(run_case("csv50", off), "edm"), IsEmpty());
}

TEST_F(EdmTest, IndexWithAnotherKeyIsRefused) {
    const std::string other = *dir_ + "/other";
    std::filesystem::create_directories(other);
    std::ofstream(other + "/edm.key") << "00112233445566778899aabbccddeeff\n";
    std::filesystem::permissions(other + "/edm.key",
            std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
    const std::string path = *dir_ + "/other.yaml";
    std::ofstream(path) << "edm:\n  key_file: " << other << "/edm.key\n  tables:\n"
                        << "    - index: " << *dir_ << "/customers.edm\n";

    const RunOutput run = run_exfiltap(*prefix_ + "-csv50.pcap", {"--config", path});

    EXPECT_EQ(run.exit_code, 2) << run.out;
    EXPECT_THAT(run.out, HasSubstr("edm.tables[0].index"));
    EXPECT_THAT(run.out, HasSubstr("key"));
}

TEST_F(EdmTest, IndexHoldsNoValueOfTheTable) {
    // Every value of 8 bytes or more (as written and in lower case) of the first 2,000 rows,
    // looked for at every offset of the index file by its first four bytes. Shorter values
    // are left out: the index is 60 MB of keyed hashes, in which a given 4-byte string turns
    // up by chance about once in 70 tables (a city name did, in a CI run), while a given
    // 8-byte one is not expected in 10^11.
    const std::string index = read_file(*dir_ + "/customers.edm");
    std::ifstream csv(*prefix_ + "-customers.csv");
    std::string line;
    std::getline(csv, line);  // header
    std::unordered_map<uint32_t, std::set<std::string>> by_head;
    size_t values = 0;
    for (int row = 0; row < 2000 && std::getline(csv, line); ++row) {
        std::stringstream fields(line);
        std::string field;
        while (std::getline(fields, field, ',')) {
            if (field.size() < 8 || field.front() == '"') {
                continue;
            }
            std::string lower = field;
            for (char& ch : lower) {
                ch = static_cast<char>(tolower(static_cast<unsigned char>(ch)));
            }
            for (const std::string& v : {field, lower}) {
                uint32_t head = 0;
                std::memcpy(&head, v.data(), sizeof(head));
                by_head[head].insert(v);
            }
            ++values;
        }
    }
    ASSERT_GT(values, 7000U);
    size_t found = 0;
    for (size_t at = 0; at + 4 <= index.size(); ++at) {
        uint32_t head = 0;
        std::memcpy(&head, index.data() + at, sizeof(head));
        const auto it = by_head.find(head);
        if (it == by_head.end()) {
            continue;
        }
        for (const std::string& v : it->second) {
            if (index.compare(at, v.size(), v) == 0) {
                ++found;
                ADD_FAILURE() << "a table value of " << v.size() << " bytes at offset " << at;
            }
        }
    }
    EXPECT_EQ(found, 0U);
}

}  // namespace
}  // namespace exfiltap::testing
