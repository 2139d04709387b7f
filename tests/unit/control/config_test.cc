#include "control/config.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include <gtest/gtest.h>

namespace exfiltap::control {
namespace {

using detectors::ContentClass;
using detectors::Severity;

std::array<uint8_t, 16> ip(const char* text) {
    std::array<uint8_t, 16> out{};
    if (inet_pton(AF_INET, text, out.data()) != 1) {
        EXPECT_EQ(inet_pton(AF_INET6, text, out.data()), 1) << text;
    }
    return out;
}

Config parse_ok(const std::string& text) {
    auto config = parse_config(text, "test.yaml");
    EXPECT_TRUE(config.ok()) << config.error();
    return config.ok() ? *config : default_config();
}

std::string parse_error(const std::string& text) {
    auto config = parse_config(text, "test.yaml");
    EXPECT_FALSE(config.ok());
    return config.ok() ? std::string() : config.error();
}

const detectors::ClassConfig& class_config(const Config& config, ContentClass cls) {
    return config.content.classes[static_cast<size_t>(cls)];
}

/// A directory of its own per test, removed afterwards.
class ConfigFileTest : public ::testing::Test {
protected:
    void SetUp() override {
        std::string pattern = ::testing::TempDir() + "exfiltap_config_XXXXXX";
        ASSERT_NE(mkdtemp(pattern.data()), nullptr);
        dir_ = pattern;
    }
    void TearDown() override { std::filesystem::remove_all(dir_); }

    std::string write_file(const std::string& name, const std::string& text) {
        std::string path = dir_ + "/" + name;
        std::ofstream(path) << text;
        return path;
    }

    std::string dir_;
};

TEST(ConfigTest, EmptyTextGivesDefaults) {
    const Config config = parse_ok("");

    EXPECT_EQ(config.source_file, "test.yaml");
    EXPECT_EQ(config.workers.count, 1U);
    EXPECT_EQ(config.dpdk.memory_mb, 1024U);
    EXPECT_TRUE(config.dpdk.eal_args.empty());
    EXPECT_EQ(config.flows.table_size, 65536U);
    EXPECT_EQ(config.flows.checksum_validation, ChecksumValidation::Auto);
    EXPECT_TRUE(config.flows.vlan_in_key);
    EXPECT_EQ(config.state_dir, "/var/lib/exfiltap");
    EXPECT_TRUE(config.outputs.alerts_file.empty());
    EXPECT_TRUE(config.content.reject_test_numbers);
    EXPECT_EQ(config.content.keyword_window_bytes, 300U);
    EXPECT_EQ(config.internal_networks.size(), 9U);
}

TEST(ConfigTest, CommentsOnlyGiveDefaults) {
    const Config config = parse_ok("# nothing set\n\n# still nothing\n");

    EXPECT_EQ(config.flows.table_size, 65536U);
    EXPECT_EQ(config.internal_networks.size(), 9U);
}

TEST(ConfigTest, DefaultNetworksAreInternal) {
    const Config config = default_config();

    EXPECT_TRUE(config.is_internal(4, ip("10.1.2.3")));
    EXPECT_TRUE(config.is_internal(4, ip("172.31.255.255")));
    EXPECT_TRUE(config.is_internal(4, ip("100.127.0.1")));
    EXPECT_TRUE(config.is_internal(6, ip("::1")));
    EXPECT_TRUE(config.is_internal(6, ip("fd12::5")));
    EXPECT_TRUE(config.is_internal(6, ip("fe80::1")));
    EXPECT_FALSE(config.is_internal(4, ip("172.32.0.1")));
    EXPECT_FALSE(config.is_internal(4, ip("8.8.8.8")));
    EXPECT_FALSE(config.is_internal(6, ip("2001:db8::1")));
}

TEST(ConfigTest, ParsesDpdkSection) {
    const Config config = parse_ok("dpdk:\n  eal_args: [--no-huge, -l, 0-1]\n  memory_mb: 256\n");

    EXPECT_EQ(config.dpdk.eal_args, (std::vector<std::string>{"--no-huge", "-l", "0-1"}));
    EXPECT_EQ(config.dpdk.memory_mb, 256U);
}

TEST(ConfigTest, ParsesWorkersCount) {
    EXPECT_EQ(parse_ok("workers:\n  count: 4\n").workers.count, 4U);
}

TEST(ConfigTest, ParsesInternalNetworksReplacingDefaults) {
    const Config config = parse_ok("networks:\n  internal:\n    - 10.0.0.0/8\n    - fd00::/8\n");

    ASSERT_EQ(config.internal_networks.size(), 2U);
    EXPECT_EQ(config.internal_networks[1].to_string(), "fd00::/8");
    EXPECT_FALSE(config.is_internal(4, ip("192.168.1.1")));
}

TEST(ConfigTest, ParsesFlowsSection) {
    const Config config = parse_ok(
            "flows:\n"
            "  table_size: 1024\n"
            "  tcp_timeout_s: 600\n"
            "  tcp_closed_timeout_s: 5\n"
            "  udp_timeout_s: 30\n"
            "  other_timeout_s: 20\n"
            "  vlan_in_key: false\n"
            "  reorder_flow_bytes: 4096\n"
            "  reorder_worker_bytes: 1048576\n"
            "  checksum_validation: no\n");

    EXPECT_EQ(config.flows.table_size, 1024U);
    EXPECT_EQ(config.flows.tcp_timeout_s, 600U);
    EXPECT_EQ(config.flows.tcp_closed_timeout_s, 5U);
    EXPECT_EQ(config.flows.udp_timeout_s, 30U);
    EXPECT_EQ(config.flows.other_timeout_s, 20U);
    EXPECT_FALSE(config.flows.vlan_in_key);
    EXPECT_EQ(config.flows.reorder_flow_bytes, 4096U);
    EXPECT_EQ(config.flows.reorder_worker_bytes, 1048576U);
    EXPECT_EQ(config.flows.checksum_validation, ChecksumValidation::No);
}

TEST(ConfigTest, ParsesChecksumValidationYes) {
    EXPECT_EQ(parse_ok("flows:\n  checksum_validation: yes\n").flows.checksum_validation,
            ChecksumValidation::Yes);
}

TEST(ConfigTest, ParsesContentClasses) {
    const Config config = parse_ok(
            "content:\n"
            "  reject_test_numbers: false\n"
            "  keyword_window_bytes: 100\n"
            "  classes:\n"
            "    us_ssn:\n"
            "      enabled: false\n"
            "      threshold: 3\n"
            "      severity: critical\n"
            "      keywords: [ssn, social security]\n");

    EXPECT_FALSE(config.content.reject_test_numbers);
    EXPECT_EQ(config.content.keyword_window_bytes, 100U);
    const auto& ssn = class_config(config, ContentClass::UsSsn);
    EXPECT_FALSE(ssn.enabled);
    EXPECT_EQ(ssn.threshold, 3U);
    EXPECT_EQ(ssn.severity, Severity::Critical);
    EXPECT_EQ(ssn.keywords, (std::vector<std::string>{"ssn", "social security"}));
    EXPECT_TRUE(class_config(config, ContentClass::PaymentCard).enabled);
}

TEST(ConfigTest, DefaultsGiveEveryClassItsSeverity) {
    const Config config = parse_ok("");

    EXPECT_EQ(class_config(config, ContentClass::PrivateKey).severity, Severity::Critical);
    EXPECT_EQ(class_config(config, ContentClass::CloudToken).severity, Severity::High);
    EXPECT_EQ(class_config(config, ContentClass::PasswordAssignment).severity, Severity::Medium);
    EXPECT_TRUE(config.content.custom.empty());
}

TEST(ConfigTest, ParsesEveryClassName) {
    const Config config = parse_ok(
            "content:\n"
            "  classes:\n"
            "    iban: {threshold: 2, severity: critical}\n"
            "    private_key: {severity: high}\n"
            "    cloud_token: {enabled: false}\n"
            "    vcs_token: {threshold: 3}\n"
            "    jwt: {keywords: [bearer]}\n"
            "    password_assignment: {severity: low}\n"
            "    classification_marker: {threshold: 4}\n"
            "    custom: {threshold: 5, severity: critical}\n");

    EXPECT_EQ(class_config(config, ContentClass::Iban).threshold, 2U);
    EXPECT_EQ(class_config(config, ContentClass::PrivateKey).severity, Severity::High);
    EXPECT_FALSE(class_config(config, ContentClass::CloudToken).enabled);
    EXPECT_EQ(class_config(config, ContentClass::VcsToken).threshold, 3U);
    EXPECT_EQ(class_config(config, ContentClass::Jwt).keywords, std::vector<std::string>{"bearer"});
    EXPECT_EQ(class_config(config, ContentClass::PasswordAssignment).severity, Severity::Low);
    EXPECT_EQ(class_config(config, ContentClass::ClassificationMarker).threshold, 4U);
    EXPECT_EQ(class_config(config, ContentClass::Custom).threshold, 5U);
}

TEST(ConfigTest, ParsesClassificationMarkers) {
    const Config config = parse_ok(
            "content:\n  classification_markers: [ACME-PROPRIETARY, \"Acme Eyes Only\"]\n");

    EXPECT_EQ(config.content.classification_markers,
            (std::vector<std::string>{"ACME-PROPRIETARY", "Acme Eyes Only"}));
}

TEST(ConfigTest, ParsesSourceCodeSettings) {
    const Config config = parse_ok(
            "content:\n"
            "  source_code:\n"
            "    organisations: [Example Corp, \"Example Corporation\"]\n"
            "    project_names: [BLUEBIRD]\n"
            "    min_tokens: 25\n"
            "    min_tokens_per_kib: 3\n"
            "  classes:\n"
            "    document: {severity: high}\n");
    const auto& sc = config.content.source_code;
    EXPECT_EQ(sc.organisations, (std::vector<std::string>{"Example Corp", "Example Corporation"}));
    EXPECT_EQ(sc.project_names, (std::vector<std::string>{"BLUEBIRD"}));
    EXPECT_EQ(sc.min_tokens, 25U);
    EXPECT_EQ(sc.min_tokens_per_kib, 3U);
    EXPECT_EQ(class_config(config, ContentClass::Document).severity, detectors::Severity::High);
    EXPECT_EQ(class_config(config, ContentClass::SourceCode).severity, detectors::Severity::Medium);
}

TEST(ConfigTest, RefusesBadSourceCodeSettingsNamingLineAndKey) {
    std::string error = parse_error("content:\n  source_code:\n    min_tokens: 0\n");
    EXPECT_NE(error.find("test.yaml:3: content.source_code.min_tokens"), std::string::npos)
            << error;
    error = parse_error("content:\n  source_code:\n    project_names: [\"\"]\n");
    EXPECT_NE(error.find("test.yaml:3: content.source_code.project_names"), std::string::npos)
            << error;
    error = parse_error("content:\n  source_code:\n    licence: [x]\n");
    EXPECT_NE(error.find("test.yaml:3: content.source_code.licence"), std::string::npos) << error;
}

TEST(ConfigTest, ParsesCustomRulesWithTheirSource) {
    const Config config = parse_ok(
            "content:\n"
            "  custom:\n"
            "    - name: project-falcon\n"
            "      keywords: [falcon, blue harbor]\n"
            "      severity: high\n"
            "    - {name: orders, regex: 'ORD-[0-9]{6}', threshold: 3, enabled: false}\n");

    const auto& rules = config.content.custom;
    ASSERT_EQ(rules.size(), 2U);
    EXPECT_EQ(rules[0].name, "project-falcon");
    EXPECT_EQ(rules[0].keywords, (std::vector<std::string>{"falcon", "blue harbor"}));
    EXPECT_EQ(rules[0].severity, Severity::High);
    EXPECT_FALSE(rules[0].threshold.has_value());
    EXPECT_TRUE(rules[0].enabled);
    EXPECT_EQ(rules[0].source, "test.yaml:3");
    EXPECT_EQ(rules[1].regex, "ORD-[0-9]{6}");
    EXPECT_EQ(rules[1].threshold, 3U);
    EXPECT_FALSE(rules[1].severity.has_value());
    EXPECT_FALSE(rules[1].enabled);
    EXPECT_EQ(rules[1].source, "test.yaml:6");
    EXPECT_EQ(config.content.severity_of(ContentClass::Custom, 2), Severity::Medium);
}

struct CustomErrorCase {
    const char* rule;     // YAML of one list item, after "- "
    const char* message;  // part of the expected error
};

class CustomRuleErrorTest : public ::testing::TestWithParam<CustomErrorCase> {};

TEST_P(CustomRuleErrorTest, NamesFileLineAndKey) {
    const std::string error =
            parse_error(std::string("content:\n  custom:\n    - ") + GetParam().rule + "\n");

    EXPECT_NE(error.find("test.yaml:3: content.custom[0]"), std::string::npos) << error;
    EXPECT_NE(error.find(GetParam().message), std::string::npos) << error;
}

INSTANTIATE_TEST_SUITE_P(Rules, CustomRuleErrorTest,
        ::testing::Values(CustomErrorCase{"{keywords: [x]}", "needs a non-empty name"},
                CustomErrorCase{"{name: '', keywords: [x]}", "needs a non-empty name"},
                CustomErrorCase{"{name: a}", "keywords (a list) or a regex"},
                CustomErrorCase{"{name: a, keywords: [x], regex: y}", "not both"},
                CustomErrorCase{"{name: a, keywords: []}", "at least one keyword"},
                CustomErrorCase{"{name: a, keywords: x}", "expected a list of strings"},
                CustomErrorCase{"{name: a, regex: ''}", "must be a regex"},
                CustomErrorCase{"{name: a, regex: [x]}", "expected a string"},
                CustomErrorCase{"{name: a, regex: x, colour: red}", "unknown key"},
                CustomErrorCase{"{name: a, regex: x, severity: urgent}", "expected one of low"},
                CustomErrorCase{"{name: a, regex: x, threshold: 0}", "out of range"},
                CustomErrorCase{"{name: a, regex: x, enabled: maybe}", "expected true or false"},
                CustomErrorCase{"{name: \"a'b\", regex: x}", "letters, digits"},
                CustomErrorCase{"just-a-string", "expected a map"}));

TEST(ConfigTest, DuplicateCustomRuleNameIsRejected) {
    const std::string error = parse_error(
            "content:\n  custom:\n    - {name: a, regex: x}\n    - {name: a, regex: y}\n");

    EXPECT_NE(error.find("test.yaml:4: content.custom[1].name: duplicate rule name 'a' (first at "
                         "test.yaml:3)"),
            std::string::npos)
            << error;
}

TEST(ConfigTest, CustomClassTakesNoKeywords) {
    const std::string error = parse_error("content:\n  classes:\n    custom: {keywords: [x]}\n");

    EXPECT_NE(error.find("content.classes.custom.keywords"), std::string::npos) << error;
}

TEST(ConfigTest, CustomMustBeAList) {
    const std::string error = parse_error("content:\n  custom: {name: a}\n");

    EXPECT_NE(error.find("content.custom: expected a list of rules"), std::string::npos) << error;
}

TEST(ConfigOverrideTest, SetsCustomRules) {
    Config config = default_config();

    const Status status = apply_override(config, "content.custom=[{name: x, regex: 'X-[0-9]+'}]");

    ASSERT_TRUE(status.ok()) << status.error();
    ASSERT_EQ(config.content.custom.size(), 1U);
    EXPECT_EQ(config.content.custom[0].source, "--set");
}

TEST(ConfigTest, ParsesOutputsAndStateDir) {
    const Config config = parse_ok("outputs:\n  alerts_file: /tmp/a.json\nstate_dir: /srv/x\n");

    EXPECT_EQ(config.outputs.alerts_file, "/tmp/a.json");
    EXPECT_EQ(config.state_dir, "/srv/x");
}

TEST(ConfigTest, EmptySectionKeepsDefaults) {
    EXPECT_EQ(parse_ok("flows:\n  # table_size: 1\n").flows.table_size, 65536U);
}

TEST(ConfigTest, WrongTypeNamesFileLineAndKey) {
    const std::string error = parse_error("workers:\n  count: 2\nflows:\n  table_size: abc\n");

    EXPECT_EQ(error, "test.yaml:4: flows.table_size: expected an unsigned integer, got 'abc'");
}

TEST(ConfigTest, NegativeNumberIsRejected) {
    EXPECT_NE(parse_error("workers:\n  count: -1\n").find("workers.count: expected an unsigned"),
            std::string::npos);
}

TEST(ConfigTest, OutOfRangeNamesLimits) {
    EXPECT_EQ(parse_error("workers:\n  count: 65\n"),
            "test.yaml:2: workers.count: 65 is out of range 1..64");
}

TEST(ConfigTest, UnknownKeyListsExpectedKeys) {
    const std::string error = parse_error("flows:\n  tabel_size: 10\n");

    EXPECT_NE(error.find("test.yaml:2: flows.tabel_size: unknown key, expected one of table_size"),
            std::string::npos)
            << error;
}

TEST(ConfigTest, EdmTablesAreRead) {
    auto config = parse_config(
            "edm:\n  key_file: /tmp/k\n  state_slots: 128\n  tables:\n"
            "    - index: /tmp/customers.edm\n      min_matches: 3\n"
            "      window_bytes: 512\n      severity: critical\n"
            "      threshold: 5\n    - index: /tmp/staff.edm\n",
            "test.yaml");

    ASSERT_TRUE(config.ok()) << config.error();
    EXPECT_EQ(config->edm.key_file, "/tmp/k");
    EXPECT_EQ(config->edm.state_slots, 128U);
    const auto& tables = config->content.edm_tables;
    ASSERT_EQ(tables.size(), 2U);
    EXPECT_EQ(tables[0].path, "/tmp/customers.edm");
    EXPECT_EQ(tables[0].min_matches, 3U);
    EXPECT_EQ(tables[0].window_bytes, 512U);
    EXPECT_EQ(tables[0].severity, Severity::Critical);
    EXPECT_EQ(tables[0].threshold, 5U);
    EXPECT_EQ(tables[0].source, "test.yaml:5");
    EXPECT_EQ(tables[1].min_matches, 2U);  // defaults
    EXPECT_EQ(tables[1].window_bytes, 1024U);
    EXPECT_FALSE(tables[1].severity.has_value());
    EXPECT_EQ(tables[1].index, nullptr);  // loaded by load_edm(), not by the parser
}

TEST(ConfigTest, EdmTableWithoutIndexIsNamed) {
    EXPECT_EQ(parse_error("edm:\n  tables:\n    - min_matches: 2\n"),
            "test.yaml:3: edm.tables[0]: a table needs its index file (index: FILE.edm)");
}

TEST(ConfigTest, EdmUnknownKeyIsNamed) {
    const std::string error =
            parse_error("edm:\n  tables:\n    - index: /x.edm\n      min_match: 2\n");

    EXPECT_NE(error.find("test.yaml:4: edm.tables[0].min_match: unknown key"), std::string::npos)
            << error;
}

TEST(ConfigTest, EdmWindowOutOfRangeIsNamed) {
    const std::string error =
            parse_error("edm:\n  tables:\n    - index: /x.edm\n      window_bytes: 4\n");

    EXPECT_NE(error.find("test.yaml:4: edm.tables[0].window_bytes:"), std::string::npos) << error;
}

TEST(ConfigTest, EdmMissingKeyFileFailsLoad) {
    auto config = parse_config(
            "state_dir: /nonexistent-exfiltap-dir\nedm:\n  tables:\n"
            "    - index: /nonexistent-exfiltap-dir/c.edm\n",
            "test.yaml");
    ASSERT_TRUE(config.ok()) << config.error();

    const auto loaded = load_edm(*config);

    ASSERT_FALSE(loaded.ok());
    EXPECT_NE(loaded.error().find("/nonexistent-exfiltap-dir/edm.key"), std::string::npos)
            << loaded.error();
}

TEST(ConfigTest, ReservedOutputKeyIsRejected) {
    EXPECT_EQ(parse_error("outputs:\n  flow_records: yes\n"),
            "test.yaml:2: outputs.flow_records: not supported yet in this version (reserved)");
}

TEST(ConfigTest, BadPrefixNamesItem) {
    const std::string error =
            parse_error("networks:\n  internal:\n    - 10.0.0.0/8\n    - 10.0.0.0/33\n");

    EXPECT_NE(error.find("test.yaml:4: networks.internal[1]: bad prefix:"), std::string::npos)
            << error;
    EXPECT_NE(error.find("10.0.0.0/33"), std::string::npos) << error;
}

TEST(ConfigTest, BadClassNameListsClasses) {
    const std::string error =
            parse_error("content:\n  classes:\n    credit_card:\n      threshold: 2\n");

    EXPECT_EQ(error,
            "test.yaml:3: content.classes.credit_card: unknown content class, expected one of "
            "payment_card, us_ssn, iban, private_key, cloud_token, vcs_token, jwt, "
            "password_assignment, classification_marker, custom, edm, source_code, document");
}

TEST(ConfigTest, BadSeverityListsNames) {
    const std::string error =
            parse_error("content:\n  classes:\n    payment_card:\n      severity: urgent\n");

    EXPECT_EQ(error,
            "test.yaml:4: content.classes.payment_card.severity: expected one of low, medium, "
            "high, critical, got 'urgent'");
}

TEST(ConfigTest, YamlSyntaxErrorHasFileAndLine) {
    const std::string error = parse_error("workers:\n  count: 1\nflows:\n  table_size: [1, 2\n");

    EXPECT_EQ(error.rfind("test.yaml:4: YAML syntax error:", 0), 0U) << error;
}

TEST(ConfigTest, TabIndentIsSyntaxErrorOnItsLine) {
    const std::string error = parse_error("workers:\n  count: 1\nflows:\n\ttable_size: 1\n");

    EXPECT_EQ(error.rfind("test.yaml:4: YAML syntax error:", 0), 0U) << error;
}

TEST(ConfigTest, EmptyValueIsReportedOnItsKeyLine) {
    EXPECT_EQ(parse_error("flows:\n  table_size:\n  udp_timeout_s: 5\n"),
            "test.yaml:2: flows.table_size: expected an unsigned integer, got nothing");
}

TEST(ConfigTest, SeveralErrorsAreReportedTogether) {
    const std::string error = parse_error(
            "workers:\n"
            "  count: many\n"
            "flows:\n"
            "  bogus: 1\n"
            "metrics:\n"
            "  listen: 127.0.0.1\n");

    EXPECT_EQ(std::count(error.begin(), error.end(), '\n'), 2) << error;
    EXPECT_NE(error.find("test.yaml:2: workers.count:"), std::string::npos) << error;
    EXPECT_NE(error.find("test.yaml:4: flows.bogus:"), std::string::npos) << error;
    EXPECT_NE(error.find("test.yaml:6: metrics.listen:"), std::string::npos) << error;
}

TEST(ConfigTest, DuplicateKeyIsRejected) {
    EXPECT_EQ(parse_error("workers:\n  count: 1\n  count: 2\n"),
            "test.yaml:3: workers.count: duplicate key (first on line 2)");
}

TEST(ConfigTest, DuplicateSectionNamesFirstKeyLine) {
    EXPECT_EQ(parse_error("flows:\n  table_size: 128\nflows:\n  table_size: 256\n"),
            "test.yaml:3: flows: duplicate key (first on line 1)");
}

TEST(ConfigTest, TopLevelMustBeMap) {
    EXPECT_EQ(parse_error("- a\n- b\n"), "test.yaml:1: expected a map of keys, got a list");
}

TEST(ConfigTest, FlowReorderBudgetAboveWorkerBudgetIsRejected) {
    const std::string error =
            parse_error("flows:\n  reorder_flow_bytes: 2048\n  reorder_worker_bytes: 1024\n");

    EXPECT_NE(error.find("flows.reorder_flow_bytes: 2048 is more than reorder_worker_bytes"),
            std::string::npos)
            << error;
}

TEST(ConfigTest, SecondDocumentIsRejected) {
    EXPECT_NE(parse_error("workers:\n  count: 1\n---\nworkers:\n  count: 2\n")
                      .find("more than one YAML document"),
            std::string::npos);
}

TEST_F(ConfigFileTest, LoadConfigReadsFile) {
    const std::string path = write_file("exfiltap.yaml", "workers:\n  count: 3\n");

    auto config = load_config(path);

    ASSERT_TRUE(config.ok()) << config.error();
    EXPECT_EQ(config->workers.count, 3U);
    EXPECT_EQ(config->source_file, path);
}

TEST_F(ConfigFileTest, LoadConfigErrorsNameThePath) {
    const std::string path = write_file("bad.yaml", "workers:\n  count: x\n");

    auto config = load_config(path);

    ASSERT_FALSE(config.ok());
    EXPECT_EQ(config.error().rfind(path + ":2: workers.count:", 0), 0U) << config.error();
}

TEST_F(ConfigFileTest, EmptyFileGivesDefaults) {
    auto config = load_config(write_file("empty.yaml", ""));

    ASSERT_TRUE(config.ok()) << config.error();
    EXPECT_EQ(config->workers.count, 1U);
}

TEST_F(ConfigFileTest, MissingFileIsClearError) {
    const std::string path = dir_ + "/absent.yaml";

    auto config = load_config(path);

    ASSERT_FALSE(config.ok());
    EXPECT_EQ(config.error(), path + ": cannot open config file: No such file or directory");
}

TEST(ConfigOverrideTest, SetsScalar) {
    Config config = default_config();

    const Status status = apply_override(config, "flows.table_size=1024");

    ASSERT_TRUE(status.ok()) << status.error();
    EXPECT_EQ(config.flows.table_size, 1024U);
    EXPECT_EQ(config.flows.udp_timeout_s, 120U);
}

TEST(ConfigOverrideTest, SetsListAndNestedKeys) {
    Config config = default_config();

    ASSERT_TRUE(apply_override(config, "networks.internal=[192.0.2.0/24]").ok());
    ASSERT_TRUE(apply_override(config, "content.classes.payment_card.severity=low").ok());

    ASSERT_EQ(config.internal_networks.size(), 1U);
    EXPECT_EQ(config.internal_networks[0].to_string(), "192.0.2.0/24");
    EXPECT_EQ(class_config(config, ContentClass::PaymentCard).severity, Severity::Low);
}

TEST(ConfigOverrideTest, KeepsValuesLoadedBefore) {
    Config config = parse_ok("flows:\n  tcp_timeout_s: 10\n");

    ASSERT_TRUE(apply_override(config, "flows.udp_timeout_s=5").ok());

    EXPECT_EQ(config.flows.tcp_timeout_s, 10U);
    EXPECT_EQ(config.flows.udp_timeout_s, 5U);
}

TEST(ConfigOverrideTest, BadValueNamesKeyAndLeavesConfig) {
    Config config = default_config();

    const Status status = apply_override(config, "flows.table_size=abc");

    ASSERT_FALSE(status.ok());
    EXPECT_EQ(status.error(), "--set flows.table_size: expected an unsigned integer, got 'abc'");
    EXPECT_EQ(config.flows.table_size, 65536U);
}

TEST(ConfigOverrideTest, UnknownKeyIsNamed) {
    Config config = default_config();

    const Status status = apply_override(config, "flows.tabel_size=1");

    ASSERT_FALSE(status.ok());
    EXPECT_NE(status.error().find("--set flows.tabel_size: unknown key"), std::string::npos)
            << status.error();
}

TEST(ConfigOverrideTest, ReservedKeyIsNamed) {
    Config config = default_config();

    EXPECT_EQ(apply_override(config, "outputs.flow_records.enabled=true").error(),
            "--set outputs.flow_records: not supported yet in this version (reserved)");
}

TEST(ConfigOverrideTest, MissingEqualsIsRejected) {
    Config config = default_config();

    EXPECT_NE(apply_override(config, "flows.table_size").error().find("expected KEY=VALUE"),
            std::string::npos);
}

TEST(ConfigOverrideTest, MalformedKeyIsRejected) {
    Config config = default_config();

    EXPECT_FALSE(apply_override(config, "flows..table_size=1").ok());
}

TEST(PrefixTest, ParsesIpv4Prefix) {
    auto prefix = Prefix::parse("172.16.0.0/12");

    ASSERT_TRUE(prefix.ok()) << prefix.error();
    EXPECT_EQ(prefix->ip_version, 4);
    EXPECT_EQ(prefix->length, 12);
    EXPECT_EQ(prefix->to_string(), "172.16.0.0/12");
}

TEST(PrefixTest, ParsesIpv6Prefix) {
    auto prefix = Prefix::parse("2001:DB8:0:0::/32");

    ASSERT_TRUE(prefix.ok()) << prefix.error();
    EXPECT_EQ(prefix->ip_version, 6);
    EXPECT_EQ(prefix->to_string(), "2001:db8::/32");
}

TEST(PrefixTest, PlainAddressHasFullLength) {
    EXPECT_EQ(Prefix::parse("192.0.2.7")->length, 32);
    EXPECT_EQ(Prefix::parse("::1")->length, 128);
}

TEST(PrefixTest, RejectsLengthOutOfRange) {
    EXPECT_NE(Prefix::parse("10.0.0.0/33").error().find("out of range 0..32"), std::string::npos);
    EXPECT_NE(Prefix::parse("::/129").error().find("out of range 0..128"), std::string::npos);
}

TEST(PrefixTest, RejectsMalformedText) {
    for (const char* text : {"", "10.0.0", "10.0.0.0/", "10.0.0.0/x", "10.0.0.0/-1", "10.0.0.0/8/8",
                 "300.0.0.0/8", "fe80:::1", " 10.0.0.0/8"}) {
        EXPECT_FALSE(Prefix::parse(text).ok()) << text;
    }
}

TEST(PrefixTest, RejectsHostBitsWithSuggestion) {
    auto prefix = Prefix::parse("10.1.2.3/8");

    ASSERT_FALSE(prefix.ok());
    EXPECT_NE(prefix.error().find("did you mean 10.0.0.0/8?"), std::string::npos) << prefix.error();
}

TEST(PrefixTest, ContainsComparesOnlyPrefixBits) {
    const Prefix prefix = *Prefix::parse("100.64.0.0/10");

    EXPECT_TRUE(prefix.contains(4, ip("100.64.0.0")));
    EXPECT_TRUE(prefix.contains(4, ip("100.127.255.255")));
    EXPECT_FALSE(prefix.contains(4, ip("100.128.0.0")));
    EXPECT_FALSE(prefix.contains(6, ip("100.64.0.0")));
}

TEST(PrefixTest, ZeroLengthContainsEverythingOfItsVersion) {
    const Prefix prefix = *Prefix::parse("::/0");

    EXPECT_TRUE(prefix.contains(6, ip("2001:db8::1")));
    EXPECT_FALSE(prefix.contains(4, ip("1.2.3.4")));
}

TEST(ConfigTest, InlinePortPairsAreRead) {
    const Config config = parse_ok(
            "ports:\n"
            "  mode: inline\n"
            "  pairs:\n"
            "    - inside: \"net_af_packet0,iface=eth1\"\n"
            "      outside: \"0000:03:00.1\"\n"
            "  rx_descriptors: 512\n"
            "  rss_l4: true\n");
    EXPECT_TRUE(config.ports.inline_mode);
    ASSERT_EQ(config.ports.pairs.size(), 1U);
    EXPECT_EQ(config.ports.pairs[0].inside, "net_af_packet0,iface=eth1");
    EXPECT_EQ(config.ports.pairs[0].outside, "0000:03:00.1");
    EXPECT_EQ(config.ports.rx_descriptors, 512U);
    EXPECT_EQ(config.ports.tx_descriptors, 1024U);
    EXPECT_TRUE(config.ports.rss_l4);
    EXPECT_FALSE(config.ports.empty());
}

TEST(ConfigTest, PortErrorsNameTheKey) {
    EXPECT_EQ(parse_error("ports:\n  mode: bridge\n"),
            "test.yaml:2: ports.mode: expected one of passive, inline, got 'bridge'");
    const std::string half =
            parse_error("ports:\n  mode: inline\n  pairs:\n    - inside: net_null0\n");
    EXPECT_NE(half.find("test.yaml:4: ports.pairs[0]: a pair needs both inside and outside"),
            std::string::npos)
            << half;
    const std::string mixed = parse_error("ports:\n  mode: inline\n  passive: [net_null0]\n");
    EXPECT_NE(mixed.find("inline mode takes pairs"), std::string::npos) << mixed;
    const std::string twice = parse_error(
            "ports:\n  mode: passive\n  passive: [\"net_null0\", \"net_null0,size=64\"]\n");
    EXPECT_NE(twice.find("device net_null0 is used twice"), std::string::npos) << twice;
}

TEST(ConfigTest, ResponseControlAndMetricsSectionsAreRead) {
    const Config config = parse_ok(
            "response:\n"
            "  shadow: true\n"
            "  allowlist: [\"10.0.0.53\"]\n"
            "control:\n"
            "  socket: /tmp/x.sock\n"
            "metrics:\n"
            "  listen: \"127.0.0.1:9555\"\n");
    EXPECT_TRUE(config.response.shadow);
    ASSERT_EQ(config.response.allowlist.size(), 1U);
    EXPECT_EQ(config.response.allowlist[0].to_string(), "10.0.0.53/32");
    EXPECT_EQ(config.control.socket, "/tmp/x.sock");
    EXPECT_EQ(config.metrics.listen, "127.0.0.1:9555");
}

TEST(ConfigTest, ShippedExampleConfigIsValid) {
    auto config = load_config(std::string(EXFILTAP_SOURCE_ROOT) + "/deploy/exfiltap.yaml");
    ASSERT_TRUE(config) << config.error();
    EXPECT_TRUE(config->ports.inline_mode);
    ASSERT_EQ(config->response.policies.size(), 6U);
    EXPECT_EQ(config->response.policies[3].detector, "dns_tunnel");
    EXPECT_EQ(config->response.policies[4].detector, "external_login");
    EXPECT_EQ(config->response.policies[5].incident_score, 100U);
    EXPECT_EQ(config->incidents.open_score, 50U);
    EXPECT_EQ(config->incidents.idle_s, 14400U);
    EXPECT_EQ(config->metrics.listen, "127.0.0.1:9477");
}

TEST(ConfigTest, ShippedExampleConfigListsAssetsAndSanctioned) {
    auto config = load_config(std::string(EXFILTAP_SOURCE_ROOT) + "/deploy/exfiltap.yaml");
    ASSERT_TRUE(config) << config.error();

    ASSERT_EQ(config->assets.assets().size(), 4U);
    const detectors::Asset* db = config->assets.find(4, ip("10.1.2.20"));
    ASSERT_NE(db, nullptr);
    EXPECT_EQ(db->name, "hr-db");
    EXPECT_EQ(db->classification, detectors::Classification::Restricted);
    EXPECT_TRUE(db->has_role(detectors::AssetRole::Database));
    ASSERT_EQ(config->response.sanctioned.size(), 2U);
    EXPECT_EQ(config->response.sanctioned[0].name, "apple");
    EXPECT_EQ(config->response.sanctioned[1].name, "offsite-backup");
    EXPECT_EQ(config->response.sanctioned[1].prefix.to_string(), "203.0.113.0/24");
}

// The asset inventory (`assets`).

const char* const kAssets = R"(assets:
  - name: hr-db
    prefixes: [10.1.2.0/24, "fd00:1::/64"]
    classification: restricted
    roles: [database, backup]
  - name: servers
    prefixes: [10.1.0.0/16]
  - name: hr-db-primary
    prefixes: [10.1.2.10]
    classification: Confidential
)";

std::string asset_of(const Config& config, const char* address) {
    const auto bytes = ip(address);
    const uint8_t version = std::string(address).find(':') == std::string::npos ? 4 : 6;
    const detectors::Asset* asset = config.assets.find(version, bytes);
    return asset == nullptr ? "(none)" : asset->name;
}

TEST(ConfigAssetsTest, EmptyConfigHasNoAssets) {
    EXPECT_TRUE(parse_ok("").assets.empty());
}

TEST(ConfigAssetsTest, AssetsAreReadInOrder) {
    const Config config = parse_ok(kAssets);

    const auto& assets = config.assets.assets();
    ASSERT_EQ(assets.size(), 3U);
    EXPECT_EQ(assets[0].name, "hr-db");
    EXPECT_EQ(assets[0].classification, detectors::Classification::Restricted);
    EXPECT_EQ(assets[0].roles,
            (1U << static_cast<unsigned>(detectors::AssetRole::Database))
                    | (1U << static_cast<unsigned>(detectors::AssetRole::Backup)));
    ASSERT_EQ(assets[0].prefixes.size(), 2U);
    EXPECT_EQ(assets[0].prefixes[0].ip_version, 4);
    EXPECT_EQ(assets[0].prefixes[0].length, 24);
    EXPECT_EQ(assets[0].prefixes[0].addr, ip("10.1.2.0"));
    EXPECT_EQ(assets[0].prefixes[1].ip_version, 6);
    EXPECT_EQ(assets[0].prefixes[1].length, 64);
    EXPECT_EQ(assets[0].prefixes[1].addr, ip("fd00:1::"));
    EXPECT_EQ(assets[1].name, "servers");
    EXPECT_EQ(assets[1].classification, detectors::Classification::Internal);
    EXPECT_EQ(assets[1].roles, 0U);
    EXPECT_EQ(assets[2].classification, detectors::Classification::Confidential);
    EXPECT_EQ(assets[2].prefixes[0].length, 32);
}

TEST(ConfigAssetsTest, LookupTakesLongestPrefix) {
    const Config config = parse_ok(kAssets);

    EXPECT_EQ(asset_of(config, "10.1.2.10"), "hr-db-primary");
    EXPECT_EQ(asset_of(config, "10.1.2.11"), "hr-db");
    EXPECT_EQ(asset_of(config, "10.1.200.1"), "servers");
    EXPECT_EQ(asset_of(config, "fd00:1::abcd"), "hr-db");
    EXPECT_EQ(asset_of(config, "10.2.0.1"), "(none)");
}

TEST(ConfigAssetsTest, NullSectionIsEmpty) {
    EXPECT_TRUE(parse_ok("assets:\n").assets.empty());
}

TEST(ConfigAssetsTest, DuplicateNameNamesFirst) {
    EXPECT_EQ(parse_error("assets:\n"
                          "  - name: db\n"
                          "    prefixes: [10.0.0.1]\n"
                          "  - prefixes: [10.0.0.2]\n"
                          "    name: db\n"),
            "test.yaml:5: assets[1].name: duplicate asset name 'db' (first at test.yaml:2)");
}

TEST(ConfigAssetsTest, BadPrefixesAreEachReported) {
    EXPECT_EQ(parse_error("assets:\n"
                          "  - name: db\n"
                          "    prefixes:\n"
                          "      - 10.1.2.3/24\n"
                          "      - 10.0.0.0/33\n"
                          "      - nope\n"
                          "      - [10.0.0.1]\n"
                          "      - fd00::/64\n"
                          "      - fd00::/64\n"),
            "test.yaml:4: assets[0].prefixes[0]: bad prefix: '10.1.2.3/24' has host bits set "
            "beyond /24 (did you mean 10.1.2.0/24?)\n"
            "test.yaml:5: assets[0].prefixes[1]: bad prefix: '10.0.0.0/33': prefix length 33 "
            "is out of range 0..32\n"
            "test.yaml:6: assets[0].prefixes[2]: bad prefix: 'nope' is not an IPv4 or IPv6 "
            "address or prefix\n"
            "test.yaml:7: assets[0].prefixes[3]: expected an address or prefix, got a list\n"
            "test.yaml:9: assets[0].prefixes[5]: fd00::/64 is listed twice");
}

TEST(ConfigAssetsTest, EmptyPrefixesAreRefused) {
    EXPECT_EQ(parse_error("assets:\n  - name: db\n    prefixes: []\n"),
            "test.yaml:3: assets[0].prefixes: must list at least one address or prefix");
}

TEST(ConfigAssetsTest, ScalarPrefixesAreRefused) {
    EXPECT_EQ(parse_error("assets:\n  - name: db\n    prefixes: 10.0.0.0/8\n"),
            "test.yaml:3: assets[0].prefixes: expected a list of addresses or prefixes, got "
            "'10.0.0.0/8'");
}

TEST(ConfigAssetsTest, MissingNameAndPrefixesAreReported) {
    EXPECT_EQ(parse_error("assets:\n  - classification: public\n"),
            "test.yaml:2: assets[0]: an asset needs a name\n"
            "test.yaml:2: assets[0]: an asset needs prefixes, e.g. [10.1.2.0/24, "
            "\"fd00:1::/64\"]");
}

TEST(ConfigAssetsTest, UnknownRoleListsRoles) {
    EXPECT_EQ(parse_error("assets:\n"
                          "  - name: web\n"
                          "    prefixes: [10.0.0.80]\n"
                          "    roles: [web-server, database, database]\n"),
            "test.yaml:4: assets[0].roles[0]: unknown role 'web-server', expected one of "
            "file-server, mail-server, dns-resolver, backup, jump-host, code-repository, "
            "database\n"
            "test.yaml:4: assets[0].roles[2]: 'database' is listed twice");
}

TEST(ConfigAssetsTest, UnknownClassificationListsChoices) {
    EXPECT_EQ(parse_error("assets:\n"
                          "  - name: vault\n"
                          "    prefixes: [10.0.0.9]\n"
                          "    classification: secret\n"),
            "test.yaml:4: assets[0].classification: expected one of public, internal, "
            "confidential, restricted, got 'secret'");
}

TEST(ConfigAssetsTest, UnknownKeyIsReported) {
    EXPECT_EQ(parse_error("assets:\n"
                          "  - name: vault\n"
                          "    prefixes: [10.0.0.9]\n"
                          "    owner: hr\n"),
            "test.yaml:4: assets[0].owner: unknown key, expected one of name, prefixes, "
            "classification, roles");
}

TEST(ConfigAssetsTest, BadNameIsReported) {
    EXPECT_EQ(parse_error("assets:\n  - name: \"hr db/1\"\n    prefixes: [10.0.0.9]\n"),
            "test.yaml:2: assets[0].name: 'hr db/1': use 1..64 letters, digits and _ - .");
}

TEST(ConfigAssetsTest, SectionMustBeList) {
    EXPECT_EQ(parse_error("assets:\n  hr-db: 10.0.0.0/8\n"),
            "test.yaml:2: assets: expected a list of assets (- name: ..., prefixes: [...]), got "
            "a map");
}

TEST(ConfigAssetsTest, ItemMustBeMap) {
    EXPECT_EQ(parse_error("assets:\n  - 10.0.0.0/8\n"),
            "test.yaml:2: assets[0]: expected a map with name, prefixes, classification and "
            "roles, got '10.0.0.0/8'");
}

TEST(ConfigAssetsTest, TooManyAssetsAreRefused) {
    std::string text = "assets:\n";
    for (int i = 0; i < 4097; ++i) {
        text += "  - {name: a" + std::to_string(i) + ", prefixes: [10.0.0.1]}\n";
    }
    EXPECT_EQ(parse_error(text),
            "test.yaml:2: assets: 4097 assets, at most 4096; group hosts of one kind into one "
            "asset");
}

TEST(ConfigAssetsTest, OverrideReplacesAssets) {
    Config config = parse_ok(kAssets);

    ASSERT_TRUE(apply_override(config, "assets=[{name: lab, prefixes: [192.0.2.0/24]}]").ok());

    ASSERT_EQ(config.assets.assets().size(), 1U);
    EXPECT_EQ(asset_of(config, "192.0.2.7"), "lab");
    EXPECT_EQ(asset_of(config, "10.1.2.10"), "(none)");
}

TEST(ConfigAssetsTest, SanctionedAreReadFromResponse) {
    const Config config = parse_ok(
            "response:\n"
            "  sanctioned:\n"
            "    defaults: false\n"
            "    prefixes: [{name: offsite-backup, prefix: 203.0.113.0/24}]\n");

    ASSERT_EQ(config.response.sanctioned.size(), 1U);
    EXPECT_EQ(config.response.sanctioned[0].name, "offsite-backup");
    EXPECT_EQ(config.response.sanctioned[0].prefix.to_string(), "203.0.113.0/24");
}

TEST(ConfigAssetsTest, OverrideOfSanctionedDefaultsKeepsAddedPrefixes) {
    Config config = parse_ok(
            "response:\n"
            "  sanctioned:\n"
            "    prefixes: [{name: offsite-backup, prefix: 203.0.113.0/24}]\n");
    ASSERT_EQ(config.response.sanctioned.size(), 2U);

    ASSERT_TRUE(apply_override(config, "response.sanctioned.defaults=false").ok());

    ASSERT_EQ(config.response.sanctioned.size(), 1U);
    EXPECT_EQ(config.response.sanctioned[0].name, "offsite-backup");
}

// Inputs that made the config fuzzer run out of memory, and their relatives: each must be
// refused quickly with one clear, bounded message.

size_t line_count(const std::string& text) {
    return static_cast<size_t>(std::count(text.begin(), text.end(), '\n')) + 1;
}

std::string first_line(const std::string& text) {
    return text.substr(0, text.find('\n'));
}

std::string last_line(const std::string& text) {
    return text.substr(text.rfind('\n') + 1);
}

TEST(ConfigYamlLimitsTest, AliasesOfLargeMapAreRefused) {
    // The fuzzer's find: 600 aliases of one map of 300 unknown keys made 180,000 problem
    // messages (over 500 MB) before any limit applied.
    std::string keys;
    for (int i = 0; i < 300; ++i) {
        keys += (i == 0 ? "" : ", ") + std::string("k") + std::to_string(i) + ": 0";
    }
    std::string items;
    for (int i = 0; i < 600; ++i) {
        items += (i == 0 ? "" : ",") + std::string("*r");
    }
    const std::string error =
            parse_error("x: &r {" + keys + "}\nresponse:\n  policies: [" + items + "]\n");

    EXPECT_EQ(first_line(error),
            "test.yaml:3: response.policies[0]: YAML aliases (*name) are not supported in the "
            "config; write the value out");
    EXPECT_EQ(line_count(error), 101U);
    EXPECT_EQ(last_line(error), "... and 500 more problems");
}

TEST(ConfigYamlLimitsTest, BillionLaughsIsRefusedAtFirstAlias) {
    std::string text = "a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n";
    for (char level = 'b'; level <= 'i'; ++level) {
        const char previous = static_cast<char>(level - 1);
        text += std::string(1, level) + ": &" + std::string(1, level) + " [";
        for (int i = 0; i < 9; ++i) {
            text += std::string(i == 0 ? "" : ", ") + "*" + std::string(1, previous);
        }
        text += "]\n";
    }
    text += "networks:\n  internal: *i\n";

    const std::string error = parse_error(text);

    EXPECT_EQ(first_line(error),
            "test.yaml:2: b[0]: YAML aliases (*name) are not supported in the config; write the "
            "value out");
    EXPECT_EQ(line_count(error), 73U);  // 8 levels of 9 aliases, and networks.internal
    EXPECT_EQ(last_line(error),
            "test.yaml:11: networks.internal: YAML aliases (*name) are not supported in the "
            "config; write the value out");
}

TEST(ConfigYamlLimitsTest, AnchorWithoutAliasIsAccepted) {
    const Config config = parse_ok("workers:\n  count: &n 3\n");

    EXPECT_EQ(config.workers.count, 3U);
}

TEST(ConfigYamlLimitsTest, DeepFlowNestingStopsAtLimit) {
    const std::string error = parse_error(std::string(100000, '['));

    // yaml-cpp reads each '[' here as the key of a one-pair map still waiting for its ':'
    // (map, list, map, list, ...), so 64 levels are 32 lists in the path.
    std::string path;
    for (int i = 0; i < 32; ++i) {
        path += "[0]";
    }
    EXPECT_EQ(error, "test.yaml:1: " + path + ": nested deeper than 64 levels");
}

TEST(ConfigYamlLimitsTest, DeepBlockNestingStopsAtLimit) {
    std::string text;
    for (int i = 0; i < 70; ++i) {
        text += std::string(static_cast<size_t>(i), ' ') + "k:\n";
    }
    const std::string error = parse_error(text);

    std::string path = "k";
    for (int i = 1; i < 64; ++i) {
        path += ".k";
    }
    EXPECT_EQ(error, "test.yaml:65: " + path + ": nested deeper than 64 levels");
}

TEST(ConfigYamlLimitsTest, HugeFlatListIsRefusedBeforeLoading) {
    std::string text = "networks:\n  internal: [";
    for (int i = 0; i < 200001; ++i) {
        text += "0,";
    }
    text += "]\n";

    EXPECT_EQ(parse_error(text),
            "test.yaml:2: more than 200000 YAML values; a config has hundreds (is this the config "
            "file?)");
}

TEST(ConfigYamlLimitsTest, LongListIsRefused) {
    std::string text = "response:\n  allowlist: [";
    for (int i = 0; i < 70000; ++i) {
        text += "1,";
    }
    text += "]\n";

    EXPECT_EQ(parse_error(text), "test.yaml:2: response.allowlist: 70000 items, at most 65536");
}

TEST(ConfigYamlLimitsTest, ManyDocumentsGiveOneProblem) {
    std::string text;
    for (int i = 0; i < 100000; ++i) {
        text += "---\n";
    }

    EXPECT_EQ(parse_error(text),
            "test.yaml:2: more than one YAML document; the whole config goes in one");
}

TEST(ConfigYamlLimitsTest, ProblemsAreCappedWithCount) {
    std::string text = "flows:\n";
    for (int i = 0; i < 250; ++i) {
        text += "  unknown" + std::to_string(i) + ": 1\n";
    }
    const std::string error = parse_error(text);

    EXPECT_EQ(line_count(error), 101U);
    EXPECT_EQ(first_line(error).rfind("test.yaml:2: flows.unknown0: unknown key", 0), 0U);
    EXPECT_EQ(last_line(error), "... and 150 more problems");
}

TEST(ConfigYamlLimitsTest, LongKeyIsShortenedInMessage) {
    // An explicit key: yaml-cpp refuses plain keys over 1024 characters itself.
    const std::string error = parse_error("? " + std::string(5000, 'k') + "\n: 1\n");

    EXPECT_EQ(error.size(), 1000U);
    EXPECT_EQ(error.rfind("test.yaml:1: kkkk", 0), 0U);
    EXPECT_EQ(error.substr(997), "...");
}

TEST(ConfigYamlLimitsTest, TooManyPortsAreRefused) {
    std::string text = "ports:\n  mode: passive\n  passive:\n";
    for (int i = 0; i < 33; ++i) {
        text += "    - net_null" + std::to_string(i) + "\n";
    }

    EXPECT_EQ(parse_error(text), "test.yaml:2: ports: 33 ports, at most 32");
}

TEST(ConfigYamlLimitsTest, LargeAllowlistLoadsQuickly) {
    // Duplicates are found with a set: 60,000 entries used to take billions of comparisons.
    std::string text = "response:\n  allowlist:\n";
    for (int i = 0; i < 60000; ++i) {
        text += "    - 10." + std::to_string(i / 256) + "." + std::to_string(i % 256) + ".1\n";
    }
    text += "    - 10.0.0.1\n";

    EXPECT_EQ(parse_error(text),
            "test.yaml:60003: response.allowlist[60000]: 10.0.0.1/32 is listed twice");
}

TEST(ConfigYamlLimitsTest, OverrideRefusesAliases) {
    Config config = default_config();

    const Status status = apply_override(config, "networks.internal=[&a 10.0.0.0/8, *a]");

    ASSERT_FALSE(status.ok());
    EXPECT_EQ(status.error(),
            "--set networks.internal: [1]: YAML aliases (*name) are not supported in the config; "
            "write the value out");
    EXPECT_EQ(config.internal_networks.size(), 9U);
}

}  // namespace
}  // namespace exfiltap::control
