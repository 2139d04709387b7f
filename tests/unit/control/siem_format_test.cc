#include "control/siem_format.h"

#include <arpa/inet.h>

#include <string>

#include <gtest/gtest.h>

#include "control/config.h"

namespace exfiltap::control {
namespace {

using detectors::Severity;

std::array<uint8_t, 16> ip4(const char* text) {
    std::array<uint8_t, 16> out{};
    EXPECT_EQ(inet_pton(AF_INET, text, out.data()), 1) << text;
    return out;
}

AlertRecord card_record() {
    AlertRecord r;
    r.timestamp_s = 1700000000.25;
    r.flow_id = 42;
    r.src = ip4("10.0.0.5");
    r.dst = ip4("203.0.113.9");
    r.src_port = 40000;
    r.dst_port = 443;
    r.proto = 6;
    r.signature_id = 2100001;
    r.signature = "EXFIL payment card number sent to an external network";
    r.severity = Severity::High;
    r.cls = "payment_card";
    r.confidence = detectors::Confidence::High;
    r.bytes = 1200;
    r.count = 2;
    r.sample = "************1111";
    return r;
}

SyslogHeader header() {
    SyslogHeader h;
    h.hostname = "tap1";
    h.procid = "77";
    return h;
}

std::string parse_error(const std::string& text) {
    auto config = parse_config(text, "test.yaml");
    EXPECT_FALSE(config.ok());
    return config.ok() ? std::string() : config.error();
}

TEST(SyslogFormatTest, Rfc5424LineHasPriVersionTimeAndNilStructuredData) {
    const std::string line = format_rfc5424(
            header(), syslog_severity(Severity::High), 1700000000.5, R"({"event_type":"alert"})");

    // local5 (21) * 8 + err (3) = 171
    EXPECT_EQ(line,
            R"(<171>1 2023-11-14T22:13:20.500000Z tap1 exfiltap 77 alert - {"event_type":"alert"})");
}

TEST(SyslogFormatTest, SeveritiesMapToSyslogLevels) {
    EXPECT_EQ(syslog_severity(Severity::Critical), 2);
    EXPECT_EQ(syslog_severity(Severity::High), 3);
    EXPECT_EQ(syslog_severity(Severity::Medium), 4);
    EXPECT_EQ(syslog_severity(Severity::Low), 5);
}

TEST(SyslogFormatTest, PriUsesConfiguredFacility) {
    SyslogHeader h = header();
    h.facility = 4;  // auth

    const std::string line = format_rfc5424(h, syslog_severity(Severity::Critical), 0, "m");

    EXPECT_EQ(line.substr(0, 7), "<34>1 1");
}

TEST(SyslogFormatTest, HeaderFieldsKeepToPrintableAscii) {
    SyslogHeader h = header();
    h.hostname = "my host";
    h.procid = "";

    const std::string line = format_rfc5424(h, 3, 1.0, "x");

    EXPECT_EQ(line, "<171>1 1970-01-01T00:00:01.000000Z my_host exfiltap - alert - x");
}

TEST(SyslogFormatTest, TimestampRoundsToMicroseconds) {
    EXPECT_EQ(rfc5424_timestamp(1700000000.9999999), "2023-11-14T22:13:21.000000Z");
}

TEST(SyslogFormatTest, OctetCountingPrefixesByteLength) {
    EXPECT_EQ(octet_counted("hello"), "5 hello");
    EXPECT_EQ(octet_counted("\xc3\xa9"), "2 \xc3\xa9");  // bytes, not characters
    EXPECT_EQ(octet_counted(""), "0 ");
}

TEST(CefFormatTest, HeaderEscapesBackslashAndPipe) {
    EXPECT_EQ(cef_escape_header(R"(a|b\c=d)"), R"(a\|b\\c=d)");
    EXPECT_EQ(cef_escape_header("line\none\r"), "line one ");
}

TEST(CefFormatTest, ExtensionEscapesBackslashEqualsAndNewlines) {
    EXPECT_EQ(cef_escape_value("a=b\\c\nd\re|f"), R"(a\=b\\c\nd\re|f)");
}

TEST(CefFormatTest, AlertBecomesCefLine) {
    const std::string line = alert_to_cef(card_record(), "0.1.0");

    EXPECT_EQ(line,
            "CEF:0|exfiltap|exfiltap|0.1.0|2100001|EXFIL payment card number sent to an "
            "external network|8|rt=1700000000250 src=10.0.0.5 dst=203.0.113.9 spt=40000 "
            "dpt=443 proto=TCP act=allowed cat=Data Exfiltration externalId=42 cnt=2 "
            "cs1=payment_card cs1Label=class cs2=content cs2Label=detector cs3=high "
            "cs3Label=confidence cs4=************1111 cs4Label=sample cn1=1200 cn1Label=bytes");
}

TEST(CefFormatTest, CustomRuleNameIsEscapedInHeaderAndExtension) {
    AlertRecord r = card_record();
    r.signature = "EXFIL custom rule 'a|b' matched";
    r.cls = "custom=a|b";
    r.reason = "line1\nline2";

    const std::string line = alert_to_cef(r, "0.1.0");

    EXPECT_NE(line.find(R"(|EXFIL custom rule 'a\|b' matched|)"), std::string::npos) << line;
    EXPECT_NE(line.find(R"(cs1=custom\=a|b )"), std::string::npos) << line;
    EXPECT_NE(line.find(R"(msg=line1\nline2)"), std::string::npos) << line;
    EXPECT_EQ(line.find('\n'), std::string::npos);
}

TEST(CefFormatTest, IcmpHasNoPorts) {
    AlertRecord r = card_record();
    r.proto = 1;

    const std::string line = alert_to_cef(r, "0.1.0");

    EXPECT_EQ(line.find(" spt="), std::string::npos);
    EXPECT_NE(line.find(" proto=ICMP "), std::string::npos);
}

TEST(CefFormatTest, SeverityScale) {
    EXPECT_EQ(cef_severity(Severity::Low), 3);
    EXPECT_EQ(cef_severity(Severity::Medium), 5);
    EXPECT_EQ(cef_severity(Severity::High), 8);
    EXPECT_EQ(cef_severity(Severity::Critical), 10);
}

TEST(SiemConfigTest, DefaultsAreOff) {
    const Config config = default_config();

    EXPECT_FALSE(config.outputs.syslog.enabled);
    EXPECT_FALSE(config.outputs.redis.enabled);
    EXPECT_EQ(config.outputs.syslog.facility, 21);
    EXPECT_EQ(config.outputs.syslog.effective_address(), "127.0.0.1:514");
    EXPECT_EQ(config.outputs.syslog.queue_records, 10000U);
    EXPECT_EQ(config.outputs.redis.address, "127.0.0.1:6379");
    EXPECT_EQ(config.outputs.redis.key, "exfiltap");
}

TEST(SiemConfigTest, FullSectionsAreRead) {
    auto config = parse_config(
            "outputs:\n"
            "  syslog:\n"
            "    enabled: yes\n"
            "    transport: tcp\n"
            "    address: \"[::1]:6514\"\n"
            "    facility: local2\n"
            "    app_name: tap-east\n"
            "    format: cef\n"
            "    queue_records: 50\n"
            "  redis:\n"
            "    enabled: true\n"
            "    address: 127.0.0.1:7000\n"
            "    mode: channel\n"
            "    key: alerts\n"
            "    queue_records: 7\n",
            "test.yaml");
    ASSERT_TRUE(config.ok()) << config.error();

    const SyslogOutputConfig& s = config->outputs.syslog;
    EXPECT_TRUE(s.enabled);
    EXPECT_EQ(s.transport, SyslogTransport::Tcp);
    EXPECT_EQ(s.address, "[::1]:6514");
    EXPECT_EQ(s.facility, 18);
    EXPECT_EQ(s.app_name, "tap-east");
    EXPECT_EQ(s.format, SyslogFormat::Cef);
    EXPECT_EQ(s.queue_records, 50U);
    const RedisOutputConfig& r = config->outputs.redis;
    EXPECT_TRUE(r.enabled);
    EXPECT_EQ(r.address, "127.0.0.1:7000");
    EXPECT_EQ(r.mode, RedisMode::Channel);
    EXPECT_EQ(r.key, "alerts");
    EXPECT_EQ(r.queue_records, 7U);
}

TEST(SiemConfigTest, UnixTransportDefaultsToDevLog) {
    auto config = parse_config("outputs:\n  syslog:\n    transport: unix\n", "test.yaml");
    ASSERT_TRUE(config.ok()) << config.error();

    EXPECT_EQ(config->outputs.syslog.effective_address(), "/dev/log");
}

TEST(SiemConfigTest, BadValuesNameFileLineAndKey) {
    const std::string error = parse_error(
            "outputs:\n"
            "  syslog:\n"
            "    transport: tls\n"
            "    facility: local9\n"
            "    app_name: two words\n"
            "    format: leef\n"
            "    queue_records: 0\n"
            "  redis:\n"
            "    address: localhost:6379\n"
            "    mode: stream\n");

    EXPECT_NE(error.find("test.yaml:3: outputs.syslog.transport: expected one of udp, tcp, unix"),
            std::string::npos)
            << error;
    EXPECT_NE(error.find("test.yaml:4: outputs.syslog.facility: expected a facility name"),
            std::string::npos)
            << error;
    EXPECT_NE(
            error.find("test.yaml:5: outputs.syslog.app_name: expected 1 to 48"), std::string::npos)
            << error;
    EXPECT_NE(error.find("test.yaml:6: outputs.syslog.format: expected one of json, cef"),
            std::string::npos)
            << error;
    EXPECT_NE(error.find("test.yaml:7: outputs.syslog.queue_records:"), std::string::npos) << error;
    EXPECT_NE(
            error.find("test.yaml:9: outputs.redis.address: expected host:port"), std::string::npos)
            << error;
    EXPECT_NE(error.find("test.yaml:10: outputs.redis.mode: expected one of list, channel"),
            std::string::npos)
            << error;
}

TEST(SiemConfigTest, AddressMustSuitTransport) {
    EXPECT_EQ(parse_error("outputs:\n  syslog:\n    transport: unix\n    address: "
                          "127.0.0.1:514\n"),
            "test.yaml:4: outputs.syslog.address: transport unix needs an absolute socket path "
            "shorter than 108 characters");
    EXPECT_NE(parse_error("outputs:\n  syslog:\n    address: /dev/log\n")
                      .find("test.yaml:3: outputs.syslog.address: expected host:port"),
            std::string::npos);
}

TEST(SiemConfigTest, OverrideSetsOneKey) {
    Config config = default_config();

    ASSERT_TRUE(apply_override(config, "outputs.redis.mode=channel").ok());

    EXPECT_EQ(config.outputs.redis.mode, RedisMode::Channel);
    EXPECT_EQ(apply_override(config, "outputs.syslog.port=514").error().substr(0, 38),
            "--set outputs.syslog.port: unknown key");
}

TEST(SiemConfigTest, HostPortParsing) {
    EXPECT_EQ(parse_host_port("127.0.0.1:514")->port, 514);
    EXPECT_EQ(parse_host_port("[::1]:6379")->host, "::1");
    EXPECT_FALSE(parse_host_port("127.0.0.1").ok());
    EXPECT_FALSE(parse_host_port("127.0.0.1:0").ok());
    EXPECT_FALSE(parse_host_port("127.0.0.1:65536").ok());
    EXPECT_FALSE(parse_host_port("::1:514").ok());
    EXPECT_FALSE(parse_host_port("[::1]514").ok());
}

}  // namespace
}  // namespace exfiltap::control
