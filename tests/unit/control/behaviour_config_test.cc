// The `behaviour` config section: defaults, every detector's keys, byte units, and problems
// named FILE:LINE: key.
#include <array>
#include <string>

#include <gtest/gtest.h>

#include "control/config.h"

namespace exfiltap::control {
namespace {

using detectors::Classification;
using detectors::Severity;

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

TEST(BehaviourConfigTest, EmptyConfigGivesDocumentedDefaults) {
    const Config config = parse_ok("");
    const detectors::BehaviourConfig& b = config.behaviour;
    EXPECT_TRUE(b.external_upload.enabled);
    EXPECT_EQ(b.external_upload.window_s, 3600U);
    EXPECT_EQ(b.external_upload.host_bytes[static_cast<size_t>(Classification::Public)],
            1000000000ULL);
    EXPECT_EQ(b.external_upload.host_bytes[static_cast<size_t>(Classification::Restricted)],
            50000000ULL);
    EXPECT_EQ(b.external_upload.flow_bytes, 100000000ULL);
    EXPECT_EQ(b.internal_transfer.flow_bytes, 1000000000ULL);
    EXPECT_EQ(b.baseline_deviation.warmup_windows, 24U);
    EXPECT_DOUBLE_EQ(b.baseline_deviation.alpha, 0.1);
    EXPECT_EQ(b.encrypted_asymmetry.ratio, 10U);
    EXPECT_EQ(b.external_login.window_s, 600U);
    EXPECT_EQ(b.external_login.service_sources, 5U);
    EXPECT_EQ(b.dns_tunnel.window_s, 60U);
    EXPECT_EQ(b.dns_tunnel.public_suffix_list, "/usr/share/publicsuffix/public_suffix_list.dat");
    EXPECT_EQ(b.limits.max_hosts, 65536U);
}

TEST(BehaviourConfigTest, ReadsEveryDetector) {
    const Config config = parse_ok(R"(behaviour:
  external_upload:
    enabled: true
    severity: critical
    window_s: 1800
    flow_bytes: 50MB
    include_served: true
    host_bytes: {public: 2GB, internal: 400MB, confidential: 100MB, restricted: 1MiB}
  internal_transfer: {enabled: false, window_s: 600, flow_bytes: 2GB, host_bytes: 0}
  baseline_deviation: {window_s: 900, alpha: 0.25, k: 3.5, warmup_windows: 4, floor_bytes: 1KiB}
  encrypted_asymmetry: {severity: low, min_bytes: 5000000, ratio: 20}
  archive_out: {min_entropy: 7.5}
  unexpected_file_write: {min_bytes: 100}
  external_login: {window_s: 300, service_sources: 4, user_sources: 2, source_failures: 5, source_attempts: 7,
                   success_after_failures: 0}
  mail_attachment_out: {count: 3, bytes: 10 MB, internal_domains: ["Corp.Example", "@lab.example"]}
  dns_tunnel: {window_s: 30, min_queries: 10, min_distinct: 8, min_mean_label_len: 15,
               min_entropy: 3.25, min_type_share_percent: 40, min_score: 1,
               public_suffix_list: /tmp/psl.dat}
  limits: {max_hosts: 1000, max_flows: 2000, max_domains: 300, max_login_keys: 400,
           max_sources_per_key: 8}
)");
    const detectors::BehaviourConfig& b = config.behaviour;
    EXPECT_EQ(b.external_upload.severity, Severity::Critical);
    EXPECT_EQ(b.external_upload.window_s, 1800U);
    EXPECT_EQ(b.external_upload.flow_bytes, 50000000ULL);
    EXPECT_EQ(b.external_upload.host_bytes[0], 2000000000ULL);
    EXPECT_EQ(b.external_upload.host_bytes[1], 400000000ULL);
    EXPECT_EQ(b.external_upload.host_bytes[2], 100000000ULL);
    EXPECT_EQ(b.external_upload.host_bytes[3], 1048576ULL);
    EXPECT_FALSE(b.internal_transfer.enabled);
    EXPECT_EQ(b.internal_transfer.host_bytes, 0ULL);
    EXPECT_EQ(b.internal_transfer.flow_bytes, 2000000000ULL);
    EXPECT_EQ(b.baseline_deviation.window_s, 900U);
    EXPECT_DOUBLE_EQ(b.baseline_deviation.alpha, 0.25);
    EXPECT_DOUBLE_EQ(b.baseline_deviation.k, 3.5);
    EXPECT_EQ(b.baseline_deviation.floor_bytes, 1024ULL);
    EXPECT_EQ(b.encrypted_asymmetry.severity, Severity::Low);
    EXPECT_EQ(b.encrypted_asymmetry.ratio, 20U);
    EXPECT_EQ(b.archive_out.min_entropy_milli, 7500U);
    EXPECT_EQ(b.unexpected_file_write.min_bytes, 100ULL);
    EXPECT_EQ(b.external_login.source_failures, 5U);
    EXPECT_EQ(b.external_login.source_attempts, 7U);
    EXPECT_TRUE(b.external_upload.include_served);
    EXPECT_EQ(b.external_login.success_after_failures, 0U);
    EXPECT_EQ(b.mail_attachment_out.bytes, 10000000ULL);
    EXPECT_EQ(b.mail_attachment_out.internal_domains,
            (std::vector<std::string>{"corp.example", "lab.example"}));
    EXPECT_EQ(b.dns_tunnel.min_entropy_milli, 3250U);
    EXPECT_EQ(b.dns_tunnel.min_score, 1U);
    EXPECT_EQ(b.dns_tunnel.public_suffix_list, "/tmp/psl.dat");
    EXPECT_EQ(b.limits.max_sources_per_key, 8U);
}

TEST(BehaviourConfigTest, PublicSuffixListThatIsADeviceIsRefused) {
    // /dev/zero was read forever (the break test's hang); a device or folder is refused.
    const std::string error =
            parse_error("behaviour:\n  dns_tunnel:\n    public_suffix_list: /dev/zero\n");
    EXPECT_NE(error.find("test.yaml:3: behaviour.dns_tunnel.public_suffix_list: '/dev/zero' is "
                         "not a regular file"),
            std::string::npos)
            << error;
}

TEST(BehaviourConfigTest, BadByteSizeNamesFileLineAndKey) {
    const std::string error =
            parse_error("behaviour:\n  external_upload:\n    flow_bytes: 1.5GB\n");
    EXPECT_EQ(
            error.rfind(
                    "test.yaml:3: behaviour.external_upload.flow_bytes: expected a byte count", 0),
            0U)
            << error;
}

TEST(BehaviourConfigTest, UnknownDetectorIsReported) {
    const std::string error = parse_error("behaviour:\n  dns_tunel: {}\n");
    EXPECT_NE(error.find("test.yaml:2: behaviour.dns_tunel: unknown key"), std::string::npos)
            << error;
}

TEST(BehaviourConfigTest, UnknownClassificationIsReported) {
    const std::string error =
            parse_error("behaviour:\n  external_upload:\n    host_bytes: {secret: 1MB}\n");
    EXPECT_NE(error.find("test.yaml:3: behaviour.external_upload.host_bytes.secret: unknown "
                         "classification"),
            std::string::npos)
            << error;
}

TEST(BehaviourConfigTest, AlphaZeroIsOutOfRange) {
    const std::string error = parse_error("behaviour:\n  baseline_deviation:\n    alpha: 0\n");
    EXPECT_NE(error.find("test.yaml:3: behaviour.baseline_deviation.alpha: 0 is out of range"),
            std::string::npos)
            << error;
}

TEST(BehaviourConfigTest, BadSeverityIsReported) {
    const std::string error = parse_error("behaviour:\n  archive_out: {severity: urgent}\n");
    EXPECT_NE(error.find("behaviour.archive_out.severity: expected one of low, medium, high, "
                         "critical"),
            std::string::npos)
            << error;
}

TEST(BehaviourConfigTest, MinDistinctAbove64IsRefused) {
    const std::string error = parse_error("behaviour:\n  dns_tunnel: {min_distinct: 65}\n");
    EXPECT_NE(error.find("behaviour.dns_tunnel.min_distinct: 65 is out of range 1..64"),
            std::string::npos)
            << error;
}

TEST(BehaviourConfigTest, SetOverridesOneThreshold) {
    Config config = parse_ok("");
    const Status status = apply_override(config, "behaviour.external_login.window_s=120");
    ASSERT_TRUE(status.ok()) << status.error();
    EXPECT_EQ(config.behaviour.external_login.window_s, 120U);
    EXPECT_EQ(config.behaviour.external_login.service_sources, 5U);
}

TEST(BehaviourConfigTest, ShippedExampleStatesTheDefaults) {
    auto config = load_config(std::string(EXFILTAP_SOURCE_ROOT) + "/deploy/exfiltap.yaml");
    ASSERT_TRUE(config) << config.error();
    detectors::BehaviourConfig expected;
    expected.mail_attachment_out.internal_domains = {"example.com"};
    const detectors::BehaviourConfig& got = config->behaviour;
    EXPECT_EQ(got.external_upload.host_bytes, expected.external_upload.host_bytes);
    EXPECT_EQ(got.external_upload.flow_bytes, expected.external_upload.flow_bytes);
    EXPECT_EQ(got.internal_transfer.host_bytes, expected.internal_transfer.host_bytes);
    EXPECT_EQ(got.internal_transfer.flow_bytes, expected.internal_transfer.flow_bytes);
    EXPECT_DOUBLE_EQ(got.baseline_deviation.alpha, expected.baseline_deviation.alpha);
    EXPECT_DOUBLE_EQ(got.baseline_deviation.k, expected.baseline_deviation.k);
    EXPECT_EQ(got.baseline_deviation.floor_bytes, expected.baseline_deviation.floor_bytes);
    EXPECT_EQ(got.baseline_deviation.warmup_windows, expected.baseline_deviation.warmup_windows);
    EXPECT_EQ(got.encrypted_asymmetry.min_bytes, expected.encrypted_asymmetry.min_bytes);
    EXPECT_EQ(got.archive_out.min_entropy_milli, expected.archive_out.min_entropy_milli);
    EXPECT_EQ(got.external_upload.include_served, expected.external_upload.include_served);
    EXPECT_EQ(got.external_login.source_attempts, expected.external_login.source_attempts);
    EXPECT_EQ(got.external_login.success_after_failures,
            expected.external_login.success_after_failures);
    EXPECT_EQ(got.mail_attachment_out.bytes, expected.mail_attachment_out.bytes);
    EXPECT_EQ(got.mail_attachment_out.internal_domains,
            expected.mail_attachment_out.internal_domains);
    EXPECT_EQ(got.dns_tunnel.min_entropy_milli, expected.dns_tunnel.min_entropy_milli);
    EXPECT_EQ(got.dns_tunnel.min_score, expected.dns_tunnel.min_score);
    EXPECT_EQ(got.limits.max_domains, expected.limits.max_domains);
    EXPECT_EQ(got.lateral_fanout.window_s, expected.lateral_fanout.window_s);
    EXPECT_EQ(got.lateral_fanout.warmup_windows, expected.lateral_fanout.warmup_windows);
    EXPECT_EQ(got.lateral_fanout.floor_hosts, expected.lateral_fanout.floor_hosts);
    EXPECT_EQ(got.lateral_fanout.floor_services, expected.lateral_fanout.floor_services);
    EXPECT_EQ(got.lateral_fanout.scan_hosts, expected.lateral_fanout.scan_hosts);
    EXPECT_EQ(got.lateral_fanout.scan_services, expected.lateral_fanout.scan_services);
    EXPECT_EQ(got.share_enumeration.window_s, expected.share_enumeration.window_s);
    EXPECT_EQ(got.share_enumeration.shares, expected.share_enumeration.shares);
    EXPECT_EQ(got.first_access.warmup_s, expected.first_access.warmup_s);
    EXPECT_EQ(got.first_access.classifications, expected.first_access.classifications);
    EXPECT_EQ(got.staging.severity, expected.staging.severity);
    EXPECT_EQ(got.staging.host_bytes, expected.staging.host_bytes);
    EXPECT_EQ(got.staging.floor_bytes, expected.staging.floor_bytes);
    EXPECT_EQ(got.staging.warmup_windows, expected.staging.warmup_windows);
    EXPECT_EQ(got.limits.max_distinct_per_host, expected.limits.max_distinct_per_host);
    EXPECT_EQ(got.limits.max_shares_per_host, expected.limits.max_shares_per_host);
    EXPECT_EQ(got.limits.max_first_access_pairs, expected.limits.max_first_access_pairs);
}

TEST(BehaviourConfigTest, ReadsLateralMovementAndStagingDetectors) {
    const Config config = parse_ok(R"(behaviour:
  lateral_fanout: {severity: high, window_s: 300, alpha: 0.2, k: 3, warmup_windows: 6,
                   floor_hosts: 8, floor_services: 12, scan_hosts: 30, scan_services: 0}
  share_enumeration: {enabled: false, window_s: 120, shares: 6}
  first_access: {warmup_s: 3600, classifications: [restricted]}
  staging: {window_s: 1800, host_bytes: {public: 0, internal: 2MB, confidential: 1MB,
            restricted: 500KB}, alpha: 0.3, k: 2.5, warmup_windows: 3, floor_bytes: 10MB}
  limits: {max_distinct_per_host: 100, max_shares_per_host: 20, max_first_access_pairs: 1000}
)");
    const detectors::BehaviourConfig& b = config.behaviour;
    EXPECT_EQ(b.lateral_fanout.severity, Severity::High);
    EXPECT_EQ(b.lateral_fanout.window_s, 300U);
    EXPECT_DOUBLE_EQ(b.lateral_fanout.alpha, 0.2);
    EXPECT_DOUBLE_EQ(b.lateral_fanout.k, 3.0);
    EXPECT_EQ(b.lateral_fanout.warmup_windows, 6U);
    EXPECT_EQ(b.lateral_fanout.floor_hosts, 8U);
    EXPECT_EQ(b.lateral_fanout.floor_services, 12U);
    EXPECT_EQ(b.lateral_fanout.scan_hosts, 30U);
    EXPECT_EQ(b.lateral_fanout.scan_services, 0U);
    EXPECT_FALSE(b.share_enumeration.enabled);
    EXPECT_EQ(b.share_enumeration.window_s, 120U);
    EXPECT_EQ(b.share_enumeration.shares, 6U);
    EXPECT_EQ(b.first_access.warmup_s, 3600U);
    EXPECT_EQ(b.first_access.classifications,
            1U << static_cast<unsigned>(Classification::Restricted));
    EXPECT_EQ(b.staging.window_s, 1800U);
    EXPECT_EQ(
            b.staging.host_bytes, (std::array<uint64_t, 4>{0, 2000000ULL, 1000000ULL, 500000ULL}));
    EXPECT_DOUBLE_EQ(b.staging.alpha, 0.3);
    EXPECT_DOUBLE_EQ(b.staging.k, 2.5);
    EXPECT_EQ(b.staging.warmup_windows, 3U);
    EXPECT_EQ(b.staging.floor_bytes, 10000000ULL);
    EXPECT_EQ(b.limits.max_distinct_per_host, 100U);
    EXPECT_EQ(b.limits.max_shares_per_host, 20U);
    EXPECT_EQ(b.limits.max_first_access_pairs, 1000U);
}

TEST(BehaviourConfigTest, LateralDefaultsAreOnWithDocumentedValues) {
    const detectors::BehaviourConfig b = parse_ok("").behaviour;
    EXPECT_TRUE(b.lateral_fanout.enabled);
    EXPECT_TRUE(b.share_enumeration.enabled);
    EXPECT_TRUE(b.first_access.enabled);
    EXPECT_TRUE(b.staging.enabled);
    EXPECT_EQ(b.first_access.warmup_s, 604800U);
    EXPECT_EQ(b.staging.host_bytes[static_cast<size_t>(Classification::Restricted)], 500000000ULL);
}

TEST(BehaviourConfigTest, UnknownFirstAccessClassificationNamesLineAndKey) {
    const std::string error =
            parse_error("behaviour:\n  first_access:\n    classifications: [restricted, secret]\n");
    EXPECT_NE(error.find("test.yaml:3: behaviour.first_access.classifications: unknown "
                         "classification 'secret'"),
            std::string::npos)
            << error;
}

TEST(BehaviourConfigTest, FanoutWindowUnderAMinuteIsRefused) {
    const std::string error = parse_error("behaviour:\n  lateral_fanout: {window_s: 10}\n");
    EXPECT_NE(error.find("behaviour.lateral_fanout.window_s"), std::string::npos) << error;
}

}  // namespace
}  // namespace exfiltap::control
