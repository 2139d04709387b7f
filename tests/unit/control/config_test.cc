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

TEST(ConfigTest, ReservedTopLevelKeyIsRejected) {
    EXPECT_EQ(parse_error("workers:\n  count: 1\nedm:\n  tables: []\n"),
            "test.yaml:3: edm: not supported yet in this version (reserved)");
}

TEST(ConfigTest, ReservedOutputKeyIsRejected) {
    EXPECT_EQ(parse_error("outputs:\n  syslog:\n    host: 127.0.0.1\n"),
            "test.yaml:2: outputs.syslog: not supported yet in this version (reserved)");
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
            "password_assignment, classification_marker, custom");
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

    EXPECT_EQ(apply_override(config, "outputs.redis.host=localhost").error(),
            "--set outputs.redis: not supported yet in this version (reserved)");
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
    EXPECT_EQ(config->response.policies.size(), 3U);
    EXPECT_EQ(config->metrics.listen, "127.0.0.1:9477");
}

}  // namespace
}  // namespace exfiltap::control
