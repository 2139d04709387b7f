#include "control/policy.h"

#include <arpa/inet.h>

#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace exfiltap::control {
namespace {

using detectors::ContentClass;
using detectors::Severity;

struct Parsed {
    ResponseConfig config;
    std::string problems;
};

Parsed parse_response(const std::string& yaml) {
    config_reader::Problems problems("test.yaml", true);
    Parsed out;
    const YAML::Node root = YAML::Load(yaml);
    for (const auto& section : config_reader::entries_of(problems, root, {}, {"response"})) {
        apply_response(problems, section, out.config);
    }
    out.problems = problems.joined();
    return out;
}

ResponseConfig parse_ok(const std::string& yaml) {
    Parsed parsed = parse_response(yaml);
    EXPECT_EQ(parsed.problems, "");
    return parsed.config;
}

PolicyEndpoint end(const char* text, bool internal) {
    PolicyEndpoint out;
    if (inet_pton(AF_INET, text, out.addr.data()) != 1) {
        out.ip_version = 6;
        EXPECT_EQ(inet_pton(AF_INET6, text, out.addr.data()), 1) << text;
    }
    out.internal = internal;
    return out;
}

PolicyInput content_input(std::string_view cls, Severity severity) {
    PolicyInput input;
    input.detector = kDetectorContent;
    input.class_name = cls;
    input.severity = severity;
    input.source = end("10.1.2.3", true);
    input.destination = end("203.0.113.7", false);
    return input;
}

const char* const kRules = R"(
response:
  default_ttl_s: 600
  policies:
    - name: keys-out
      detector: content
      class: private_key
      action: block-remote
      reset: true
      ttl_s: 7200
    - name: cards-high
      detector: content
      class: payment_card
      min_severity: high
      action: drop-flow
    - name: overlap
      detector: tcp_overlap
      action: drop-flow
      shadow: true
    - name: my-rule
      detector: content
      class: Project X
      action: block-source
      drop_flow: false
    - name: catch-all
      detector: any
      min_severity: critical
      action: alert
)";

TEST(PolicyConfigTest, DefaultsMatchDesign) {
    const ResponseConfig config;
    EXPECT_FALSE(config.shadow);
    EXPECT_EQ(config.default_ttl_s, 3600U);
    EXPECT_EQ(config.min_prefix_v4, 32);
    EXPECT_EQ(config.min_prefix_v6, 128);
    EXPECT_EQ(config.catch_and_release.window_s, 86400U);
    EXPECT_EQ(config.catch_and_release.multiplier, 4U);
    EXPECT_EQ(config.catch_and_release.max_ttl_s, 604800U);
    EXPECT_EQ(config.exact_capacity, 1048576U);
    EXPECT_EQ(config.prefix_capacity, 16384U);
    EXPECT_TRUE(config.policies.empty());
}

TEST(PolicyConfigTest, ReadsEveryKey) {
    const ResponseConfig config = parse_ok(R"(
response:
  shadow: yes
  default_ttl_s: 0
  min_prefix_v4: 24
  min_prefix_v6: 64
  catch_and_release: { window_s: 3600, multiplier: 2, max_ttl_s: 86400 }
  allowlist: [ "10.0.0.53", "192.168.0.0/16", "fd00::/8" ]
  block_table: { exact_capacity: 1000, prefix_capacity: 100 }
  journal: { snapshot_every_changes: 10, snapshot_every_s: 60 }
  policies:
    - name: cards-out
      detector: content
      class: payment_card
      min_severity: high
      action: block-remote
      reset: true
      drop_flow: false
      ttl_s: 120
      shadow: true
)");
    EXPECT_TRUE(config.shadow);
    EXPECT_EQ(config.default_ttl_s, 0U);
    EXPECT_EQ(config.min_prefix_v4, 24);
    EXPECT_EQ(config.min_prefix_v6, 64);
    EXPECT_EQ(config.catch_and_release.window_s, 3600U);
    EXPECT_EQ(config.catch_and_release.multiplier, 2U);
    EXPECT_EQ(config.catch_and_release.max_ttl_s, 86400U);
    ASSERT_EQ(config.allowlist.size(), 3U);
    EXPECT_EQ(config.allowlist[0].to_string(), "10.0.0.53/32");
    EXPECT_EQ(config.allowlist[1].to_string(), "192.168.0.0/16");
    EXPECT_EQ(config.allowlist[2].to_string(), "fd00::/8");
    EXPECT_EQ(config.exact_capacity, 1000U);
    EXPECT_EQ(config.prefix_capacity, 100U);
    EXPECT_EQ(config.snapshot_every_changes, 10U);
    EXPECT_EQ(config.snapshot_every_s, 60U);
    ASSERT_EQ(config.policies.size(), 1U);
    const PolicyRule& rule = config.policies[0];
    EXPECT_EQ(rule.name, "cards-out");
    EXPECT_EQ(rule.detector, "content");
    EXPECT_EQ(rule.class_name, "payment_card");
    EXPECT_EQ(rule.min_severity, Severity::High);
    EXPECT_EQ(rule.action, PolicyAction::BlockRemote);
    EXPECT_TRUE(rule.reset);
    EXPECT_FALSE(rule.drop_flow);
    EXPECT_EQ(rule.ttl_s, 120U);
    EXPECT_TRUE(rule.shadow);
    EXPECT_EQ(rule.source, "test.yaml:12");
}

TEST(PolicyConfigTest, MisspeltDetectorIsRefused) {
    const std::string text = parse_response(
            "response:\n  policies:\n    - {name: t, detector: dns_tunel, action: alert}\n")
                                     .problems;
    EXPECT_NE(text.find("response.policies[0].detector: unknown detector 'dns_tunel'"),
            std::string::npos)
            << text;
}

TEST(PolicyConfigTest, BehaviourDetectorCannotDropTheFlowOrNameAClass) {
    const std::string text = parse_response(
            "response:\n  policies:\n"
            "    - {name: a, detector: archive_out, action: drop-flow}\n"
            "    - {name: b, detector: archive_out, class: payment_card, action: alert}\n")
                                     .problems;
    EXPECT_NE(text.find("detector 'archive_out' is decided on the control thread: drop-flow "
                        "cannot act on it"),
            std::string::npos)
            << text;
    EXPECT_NE(text.find("detector 'archive_out' has no content classes"), std::string::npos)
            << text;
}

PolicyInput incident_input(uint32_t score) {
    PolicyInput input;
    input.detector = kDetectorIncident;
    input.severity = Severity::High;
    input.incident_score = score;
    input.source = end("10.1.2.3", true);
    input.destination = input.source;
    return input;
}

const char* const kIncidentRules = R"(
response:
  policies:
    - {name: everything, detector: any, action: block-source}
    - {name: incident-high, incident_score: 120, action: block-source, ttl_s: 60}
    - {name: incident-low, detector: incident, incident_score: 60, action: block-remote}
)";

TEST(PolicyIncidentTest, ReadsIncidentScore) {
    const ResponseConfig config = parse_ok(kIncidentRules);
    ASSERT_EQ(config.policies.size(), 3U);
    EXPECT_FALSE(config.policies[0].incident_score.has_value());
    EXPECT_EQ(config.policies[1].incident_score, 120U);
    EXPECT_EQ(config.policies[2].incident_score, 60U);
}

TEST(PolicyIncidentTest, IncidentBelowEveryScoreMatchesNothing) {
    const ResponseConfig config = parse_ok(kIncidentRules);
    const Decision decision = decide(config, incident_input(59));
    EXPECT_EQ(decision.rule, "");
    EXPECT_EQ(decision.action, PolicyAction::Alert);
}

TEST(PolicyIncidentTest, FirstRuleWhoseScoreIsReachedActs) {
    const ResponseConfig config = parse_ok(kIncidentRules);
    EXPECT_EQ(decide(config, incident_input(60)).rule, "incident-low");
    EXPECT_EQ(decide(config, incident_input(60)).action, PolicyAction::BlockRemote);
    const Decision high = decide(config, incident_input(120));
    EXPECT_EQ(high.rule, "incident-high");
    EXPECT_EQ(high.action, PolicyAction::BlockSource);
    EXPECT_EQ(high.ttl_s, 60U);
}

TEST(PolicyIncidentTest, AlertsNeverMatchIncidentRules) {
    ResponseConfig config = parse_ok(kIncidentRules);
    config.policies.erase(config.policies.begin());  // the catch-all
    const Decision decision = decide(config, content_input("payment_card", Severity::Critical));
    EXPECT_EQ(decision.rule, "");
}

TEST(PolicyIncidentTest, ShadowModeShadowsIncidentRules) {
    ResponseConfig config = parse_ok(kIncidentRules);
    config.shadow = true;
    const Decision decision = decide(config, incident_input(200));
    EXPECT_EQ(decision.rule, "incident-high");
    EXPECT_TRUE(decision.shadow);
}

TEST(PolicyIncidentTest, BadIncidentRulesAreReported) {
    const std::string text = parse_response(
            "response:\n  policies:\n"
            "    - {name: a, incident_score: 50, action: drop-flow}\n"
            "    - {name: b, incident_score: 50, detector: content, action: alert}\n"
            "    - {name: c, incident_score: 50, class: payment_card, action: alert}\n"
            "    - {name: d, detector: incident, action: alert}\n"
            "    - {name: e, incident_score: 0, action: alert}\n")
                                     .problems;
    EXPECT_NE(text.find("test.yaml:3: response.policies[0]: an incident is no flow"),
            std::string::npos)
            << text;
    EXPECT_NE(text.find("test.yaml:4: response.policies[1]: incident_score acts on incidents"),
            std::string::npos)
            << text;
    EXPECT_NE(text.find("test.yaml:5: response.policies[2]: incident_score cannot be combined"),
            std::string::npos)
            << text;
    EXPECT_NE(text.find("test.yaml:6: response.policies[3]: detector 'incident' needs "
                        "incident_score"),
            std::string::npos)
            << text;
    EXPECT_NE(text.find("test.yaml:7: response.policies[4].incident_score:"), std::string::npos)
            << text;
}

TEST(PolicyConfigTest, SanctionedPrefixWiderThanASlashEightIsRefused) {
    const std::string text = parse_response(
            "response:\n  sanctioned:\n    prefixes: [{name: all, prefix: 0.0.0.0/0}]\n")
                                     .problems;
    EXPECT_NE(text.find("0.0.0.0/0 is wider than /8"), std::string::npos) << text;
}

TEST(PolicyConfigTest, ReportsEveryBadValueWithFileLineAndKey) {
    const Parsed parsed = parse_response(R"(
response:
  min_prefix_v4: 33
  allowlist: [ "10.1.2.3/8", "nonsense" ]
  policies:
    - name: a
      detector: content
      action: quarantine
    - name: a
      action: alert
    - name: b
      detector: Bad-Name
      action: alert
      reset: true
    - detector: content
    - name: c
      action: drop-flow
      colour: red
  bogus: 1
)");
    const std::string& text = parsed.problems;
    EXPECT_NE(text.find("test.yaml:3: response.min_prefix_v4: 33 is out of range 1..32"),
            std::string::npos)
            << text;
    EXPECT_NE(text.find("test.yaml:4: response.allowlist[0]: bad prefix: '10.1.2.3/8' has host "
                        "bits set "
                        "beyond /8 (did you mean 10.0.0.0/8?)"),
            std::string::npos)
            << text;
    EXPECT_NE(
            text.find("test.yaml:4: response.allowlist[1]: bad prefix: 'nonsense' is not an IPv4"),
            std::string::npos)
            << text;
    EXPECT_NE(text.find("test.yaml:8: response.policies[0].action: expected one of alert, "
                        "drop-flow, block-remote, block-source, got 'quarantine'"),
            std::string::npos)
            << text;
    EXPECT_NE(text.find("response.policies[1].name: duplicate policy name 'a' (first at "
                        "test.yaml:6)"),
            std::string::npos)
            << text;
    EXPECT_NE(text.find("test.yaml:12: response.policies[2].detector: unknown detector "
                        "'Bad-Name'; known: any, content, tcp_overlap"),
            std::string::npos)
            << text;
    EXPECT_NE(text.find("test.yaml:14: response.policies[2].reset: reset needs action"),
            std::string::npos)
            << text;
    EXPECT_NE(text.find("response.policies[3]: a policy needs a name"), std::string::npos) << text;
    EXPECT_NE(text.find("response.policies[3]: a policy needs an action"), std::string::npos)
            << text;
    EXPECT_NE(
            text.find("test.yaml:18: response.policies[4].colour: unknown key"), std::string::npos)
            << text;
    EXPECT_NE(text.find("test.yaml:19: response.bogus: unknown key"), std::string::npos) << text;
}

std::array<uint8_t, 16> address(const char* text) {
    return end(text, false).addr;
}

std::vector<std::string> sanctioned_names(const ResponseConfig& config) {
    std::vector<std::string> names;
    for (const auto& s : config.sanctioned) {
        names.push_back(s.name + "=" + s.prefix.to_string());
    }
    return names;
}

TEST(SanctionedTest, ShippedListParsesAndIsNamed) {
    const std::vector<SanctionedPrefix> shipped = default_sanctioned();

    ASSERT_EQ(shipped.size(), 1U);
    EXPECT_EQ(shipped[0].name, "apple");
    EXPECT_EQ(shipped[0].prefix.to_string(), "17.0.0.0/8");
}

TEST(SanctionedTest, DefaultConfigUsesShippedList) {
    const ResponseConfig config = parse_ok("response:\n  shadow: false\n");

    EXPECT_TRUE(config.sanctioned_defaults);
    EXPECT_TRUE(config.sanctioned_added.empty());
    EXPECT_EQ(sanctioned_names(config), std::vector<std::string>{"apple=17.0.0.0/8"});
}

TEST(SanctionedTest, PrefixesAddToShippedList) {
    const ResponseConfig config = parse_ok(
            "response:\n"
            "  sanctioned:\n"
            "    prefixes:\n"
            "      - {name: offsite-backup, prefix: 203.0.113.0/24}\n"
            "      - {name: v6-backup, prefix: \"2001:db8:5::/48\"}\n");

    EXPECT_EQ(sanctioned_names(config),
            (std::vector<std::string>{"apple=17.0.0.0/8", "offsite-backup=203.0.113.0/24",
                    "v6-backup=2001:db8:5::/48"}));
}

TEST(SanctionedTest, DefaultsFalseReplacesShippedList) {
    const ResponseConfig config = parse_ok(
            "response:\n"
            "  sanctioned:\n"
            "    defaults: false\n"
            "    prefixes:\n"
            "      - {name: offsite-backup, prefix: 203.0.113.0/24}\n");

    EXPECT_FALSE(config.sanctioned_defaults);
    EXPECT_EQ(sanctioned_names(config), std::vector<std::string>{"offsite-backup=203.0.113.0/24"});
}

TEST(SanctionedTest, DefaultsFalseAloneEmptiesList) {
    const ResponseConfig config = parse_ok("response:\n  sanctioned:\n    defaults: false\n");

    EXPECT_TRUE(config.sanctioned.empty());
}

TEST(SanctionedTest, NullSectionKeepsShippedList) {
    const ResponseConfig config = parse_ok("response:\n  sanctioned:\n");

    EXPECT_EQ(sanctioned_names(config), std::vector<std::string>{"apple=17.0.0.0/8"});
}

TEST(SanctionedTest, FindReturnsEntryHoldingAddress) {
    const ResponseConfig config = parse_ok(
            "response:\n"
            "  sanctioned:\n"
            "    prefixes: [{name: offsite-backup, prefix: 203.0.113.0/24}]\n");

    const SanctionedPrefix* backup = find_sanctioned(config, 4, address("203.0.113.200"));
    ASSERT_NE(backup, nullptr);
    EXPECT_EQ(backup->name, "offsite-backup");
    const SanctionedPrefix* apple = find_sanctioned(config, 4, address("17.253.144.10"));
    ASSERT_NE(apple, nullptr);
    EXPECT_EQ(apple->name, "apple");
    EXPECT_EQ(find_sanctioned(config, 4, address("203.0.114.1")), nullptr);
    EXPECT_EQ(find_sanctioned(config, 6, address("2001:db8::1")), nullptr);
}

TEST(SanctionedTest, ServerNameKeyIsUnknown) {
    const Parsed parsed = parse_response(
            "response:\n"
            "  sanctioned:\n"
            "    sni: [updates.example.com]\n");

    EXPECT_EQ(parsed.problems,
            "test.yaml:3: response.sanctioned.sni: unknown key, expected one of defaults, "
            "prefixes");
    EXPECT_EQ(sanctioned_names(parsed.config), std::vector<std::string>{"apple=17.0.0.0/8"});
}

TEST(SanctionedTest, BadItemsAreEachReported) {
    const Parsed parsed = parse_response(
            "response:\n"
            "  sanctioned:\n"
            "    prefixes:\n"
            "      - {name: a, prefix: 203.0.113.1/24}\n"
            "      - {name: b}\n"
            "      - {name: c, prefix: 198.51.100.0/24, sni: x.example}\n"
            "      - \"198.51.100.0/24\"\n"
            "      - {name: \"bad/name\", prefix: 198.51.100.0/24}\n");

    EXPECT_EQ(parsed.problems,
            "test.yaml:4: response.sanctioned.prefixes[0].prefix: bad prefix: '203.0.113.1/24' "
            "has host bits set beyond /24 (did you mean 203.0.113.0/24?)\n"
            "test.yaml:5: response.sanctioned.prefixes[1]: a sanctioned destination needs a "
            "prefix\n"
            "test.yaml:6: response.sanctioned.prefixes[2].sni: unknown key, expected one of "
            "name, prefix\n"
            "test.yaml:7: response.sanctioned.prefixes[3]: expected a map with name and prefix, "
            "e.g. {name: offsite-backup, prefix: 203.0.113.0/24}, got '198.51.100.0/24'\n"
            "test.yaml:8: response.sanctioned.prefixes[4].name: 'bad/name': use 1..64 letters, "
            "digits, spaces and _ - .");
}

TEST(SanctionedTest, DuplicateNameAndPrefixAreReported) {
    const Parsed parsed = parse_response(
            "response:\n"
            "  sanctioned:\n"
            "    prefixes:\n"
            "      - {name: backup, prefix: 203.0.113.0/24}\n"
            "      - {name: backup, prefix: 198.51.100.0/24}\n"
            "      - {name: other, prefix: 203.0.113.0/24}\n"
            "      - {name: apple, prefix: 192.0.2.0/24}\n"
            "      - {name: mine, prefix: 17.0.0.0/8}\n");

    EXPECT_EQ(parsed.problems,
            "test.yaml:5: response.sanctioned.prefixes[1].name: 'backup' is listed twice (the "
            "shipped list counts with defaults: true)\n"
            "test.yaml:6: response.sanctioned.prefixes[2].prefix: 203.0.113.0/24 is listed "
            "twice (the shipped list counts with defaults: true)\n"
            "test.yaml:7: response.sanctioned.prefixes[3].name: 'apple' is listed twice (the "
            "shipped list counts with defaults: true)\n"
            "test.yaml:8: response.sanctioned.prefixes[4].prefix: 17.0.0.0/8 is listed twice "
            "(the shipped list counts with defaults: true)");
}

TEST(SanctionedTest, ShippedNameIsFreeWithDefaultsFalse) {
    const ResponseConfig config = parse_ok(
            "response:\n"
            "  sanctioned:\n"
            "    defaults: false\n"
            "    prefixes: [{name: apple, prefix: 17.0.0.0/8}]\n");

    EXPECT_EQ(sanctioned_names(config), std::vector<std::string>{"apple=17.0.0.0/8"});
}

TEST(SanctionedTest, TooManyDestinationsAreRefused) {
    std::string yaml = "response:\n  sanctioned:\n    prefixes:\n";
    for (int i = 0; i < 4097; ++i) {
        yaml += "      - {name: n" + std::to_string(i) + ", prefix: 10.0.0.1}\n";
    }
    const Parsed parsed = parse_response(yaml);

    EXPECT_EQ(parsed.problems,
            "test.yaml:4: response.sanctioned.prefixes: 4097 destinations, at most 4096; give "
            "covering prefixes");
}

TEST(SanctionedTest, ProblemsLeaveListUnchanged) {
    const Parsed parsed = parse_response(
            "response:\n"
            "  sanctioned:\n"
            "    prefixes: [{name: a, prefix: 203.0.113.0/24}, {name: b, prefix: nope}]\n");

    EXPECT_NE(parsed.problems, "");
    EXPECT_EQ(sanctioned_names(parsed.config), std::vector<std::string>{"apple=17.0.0.0/8"});
}

TEST(PolicyConfigTest, UnknownPolicyClassIsReported) {
    ResponseConfig config = parse_ok(kRules);
    detectors::ContentConfig content;
    auto messages = unknown_policy_classes(config, content);
    ASSERT_EQ(messages.size(), 1U);
    EXPECT_NE(messages[0].find("test.yaml:20: response.policies 'my-rule': class 'Project X'"),
            std::string::npos)
            << messages[0];
    content.custom.push_back(detectors::CustomRule{"Project X", {"projectx"}});
    EXPECT_TRUE(unknown_policy_classes(config, content).empty());
}

TEST(PolicyDecideTest, NoMatchingRuleIsAlertOnly) {
    const ResponseConfig config = parse_ok(kRules);
    const Decision decision = decide(config, content_input("iban", Severity::High));
    EXPECT_EQ(decision.rule, "");
    EXPECT_EQ(decision.action, PolicyAction::Alert);
    EXPECT_FALSE(decision.drop_flow);
    EXPECT_FALSE(decision.reset);
    EXPECT_FALSE(decision.block_target.has_value());
    EXPECT_EQ(decision.ttl_s, 0U);
    EXPECT_FALSE(decision.shadow);
}

TEST(PolicyDecideTest, BlockRemoteTakesRuleTtlAndReset) {
    const ResponseConfig config = parse_ok(kRules);
    const Decision decision = decide(config, content_input("private_key", Severity::Critical));
    EXPECT_EQ(decision.rule, "keys-out");
    EXPECT_EQ(decision.action, PolicyAction::BlockRemote);
    EXPECT_TRUE(decision.drop_flow);
    EXPECT_TRUE(decision.reset);
    ASSERT_TRUE(decision.block_target.has_value());
    EXPECT_EQ(decision.block_target->to_string(), "203.0.113.7/32");
    EXPECT_EQ(decision.ttl_s, 7200U);
}

TEST(PolicyDecideTest, MinSeverityGatesTheRule) {
    const ResponseConfig config = parse_ok(kRules);
    const Decision high = decide(config, content_input("payment_card", Severity::High));
    EXPECT_EQ(high.rule, "cards-high");
    EXPECT_EQ(high.action, PolicyAction::DropFlow);
    EXPECT_TRUE(high.drop_flow);
    EXPECT_FALSE(high.reset);
    EXPECT_EQ(high.ttl_s, 0U);
    EXPECT_FALSE(high.block_target.has_value());
    const Decision medium = decide(config, content_input("payment_card", Severity::Medium));
    EXPECT_EQ(medium.rule, "");
}

TEST(PolicyDecideTest, FirstMatchingRuleWins) {
    const ResponseConfig config = parse_ok(kRules);
    // private_key at critical matches keys-out and catch-all; keys-out comes first.
    EXPECT_EQ(decide(config, content_input("private_key", Severity::Critical)).rule, "keys-out");
    // jwt at critical matches only the catch-all.
    const Decision decision = decide(config, content_input("jwt", Severity::Critical));
    EXPECT_EQ(decision.rule, "catch-all");
    EXPECT_EQ(decision.action, PolicyAction::Alert);
    EXPECT_FALSE(decision.drop_flow);
}

TEST(PolicyDecideTest, ShadowRuleAndGlobalShadow) {
    ResponseConfig config = parse_ok(kRules);
    PolicyInput input;
    input.detector = kDetectorTcpOverlap;
    const Decision overlap = decide(config, input);
    EXPECT_EQ(overlap.rule, "overlap");
    EXPECT_TRUE(overlap.drop_flow);
    EXPECT_TRUE(overlap.shadow);
    EXPECT_FALSE(decide(config, content_input("payment_card", Severity::High)).shadow);
    config.shadow = true;
    EXPECT_TRUE(decide(config, content_input("payment_card", Severity::High)).shadow);
    EXPECT_TRUE(decide(config, content_input("iban", Severity::Low)).shadow);
}

TEST(PolicyDecideTest, CustomRuleNameMatchesClassAndBlockSourceKeepsFlow) {
    const ResponseConfig config = parse_ok(kRules);
    PolicyInput input = content_input("custom", Severity::Medium);
    input.rule_name = "Project X";
    const Decision decision = decide(config, input);
    EXPECT_EQ(decision.rule, "my-rule");
    EXPECT_EQ(decision.action, PolicyAction::BlockSource);
    EXPECT_FALSE(decision.drop_flow);
    ASSERT_TRUE(decision.block_target.has_value());
    EXPECT_EQ(decision.block_target->to_string(), "10.1.2.3/32");
    EXPECT_EQ(decision.ttl_s, 600U);  // default_ttl_s
    input.rule_name = "other";
    EXPECT_EQ(decide(config, input).rule, "");
}

TEST(PolicyDecideTest, BlockRemoteChoosesTheExternalPeer) {
    ResponseConfig config;
    PolicyRule rule;
    rule.name = "r";
    rule.action = PolicyAction::BlockRemote;
    config.policies.push_back(rule);
    PolicyInput input;
    input.detector = "volume";

    input.source = end("10.0.0.1", true);
    input.destination = end("198.51.100.1", false);
    EXPECT_EQ(decide(config, input).block_target->to_string(), "198.51.100.1/32");

    input.source = end("198.51.100.2", false);
    input.destination = end("10.0.0.2", true);
    EXPECT_EQ(decide(config, input).block_target->to_string(), "198.51.100.2/32");

    input.source = end("10.0.0.3", true);
    input.destination = end("10.0.0.4", true);
    EXPECT_EQ(decide(config, input).block_target->to_string(), "10.0.0.4/32");

    input.source = end("2001:db8::1", false);
    input.destination = end("2001:db8::2", false);
    EXPECT_EQ(decide(config, input).block_target->to_string(), "2001:db8::2/128");
    EXPECT_EQ(decide(config, input).ttl_s, 3600U);
}

using dataplane::FlowAction;

const dataplane::FlowVerdictPolicy::Entry& verdict_for(
        const dataplane::FlowVerdictPolicy& table, ContentClass cls, uint16_t rule) {
    detectors::Finding finding;
    finding.cls = cls;
    finding.rule = rule;
    return table.for_finding(finding);
}

TEST(FlowVerdictTableTest, CompilesFirstMatchPerClassRuleAndAnomaly) {
    const ResponseConfig config = parse_ok(kRules);
    detectors::ContentConfig content;
    content.custom.push_back(detectors::CustomRule{"other", {"x"}});
    content.custom.push_back(detectors::CustomRule{"Project X", {"projectx"}});
    const dataplane::FlowVerdictPolicy table = build_flow_verdicts(config, content);

    const auto& key = verdict_for(table, ContentClass::PrivateKey, 0);
    EXPECT_EQ(key.action, FlowAction::Drop);
    EXPECT_TRUE(key.reset);
    // payment_card is high by default: cards-high drops without reset.
    EXPECT_EQ(verdict_for(table, ContentClass::PaymentCard, 0).action, FlowAction::Drop);
    EXPECT_FALSE(verdict_for(table, ContentClass::PaymentCard, 0).reset);
    EXPECT_EQ(verdict_for(table, ContentClass::Iban, 0).action, FlowAction::None);
    // "other": no rule; "Project X": block-source with drop_flow off.
    EXPECT_EQ(verdict_for(table, ContentClass::Custom, 1).action, FlowAction::None);
    EXPECT_EQ(verdict_for(table, ContentClass::Custom, 2).action, FlowAction::None);
    EXPECT_EQ(table.tcp_overlap.action, FlowAction::ShadowDrop);
    EXPECT_FALSE(table.tcp_overlap.reset);  // shadow policies never reset
    EXPECT_EQ(table.ip_fragment.action, FlowAction::None);
}

TEST(FlowVerdictTableTest, VerdictWaitsForTheClassThreshold) {
    const ResponseConfig config = parse_ok(kRules);
    detectors::ContentConfig content;
    content.classes[static_cast<size_t>(ContentClass::PaymentCard)].threshold = 3;
    const auto table = build_flow_verdicts(config, content);
    EXPECT_EQ(verdict_for(table, ContentClass::PaymentCard, 0).min_distinct, 3U);
    EXPECT_EQ(verdict_for(table, ContentClass::PrivateKey, 0).min_distinct, 1U);
}

TEST(FlowVerdictTableTest, ClassSeverityDecidesMinSeverityRules) {
    ResponseConfig config = parse_ok(kRules);
    detectors::ContentConfig content;
    content.classes[static_cast<size_t>(ContentClass::PaymentCard)].severity = Severity::Low;
    EXPECT_EQ(
            verdict_for(build_flow_verdicts(config, content), ContentClass::PaymentCard, 0).action,
            FlowAction::None);
}

}  // namespace
}  // namespace exfiltap::control
