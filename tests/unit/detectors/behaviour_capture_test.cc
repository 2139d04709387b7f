// The behaviour engine on real captures (../shared/pcaps, ../shared/cases): DNS queries
// parsed with parse_dns() and fed as DnsQuery events in capture order; FTP logins of the
// login-guessing case read from the control channel by a tiny reply reader. Also the public
// suffix list and hand-made DNS patterns.
#include <arpa/inet.h>

#include <algorithm>
#include <filesystem>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "detectors/behaviour.h"
#include "detectors/dns_parser.h"
#include "detectors/public_suffix.h"
#include "tests/unit/detectors/behaviour_test_support.h"
#include "tests/unit/detectors/capture_payloads.h"

namespace exfiltap::detectors {
namespace {

constexpr const char* kDebianList = "/usr/share/publicsuffix/public_suffix_list.dat";

std::vector<AddressPrefix> default_internal() {
    return {prefix("10.0.0.0", 8), prefix("172.16.0.0", 12), prefix("192.168.0.0", 16),
            prefix("fc00::", 7)};
}

BehaviourConfig only_dns() {
    BehaviourConfig c = quiet_config();
    c.dns_tunnel = DnsTunnelConfig{};
    return c;
}

FlowTuple tuple_of(const test::CaptureFlow& flow, uint64_t id) {
    FlowTuple t;
    t.ip_version = flow.ip_version;
    t.proto = flow.proto;
    t.client = flow.client;
    t.server = flow.server;
    t.client_port = flow.client_port;
    t.server_port = flow.server_port;
    t.flow_id = id;
    return t;
}

struct TimedEvent {
    uint64_t time_ns = 0;
    FlowTuple flow;
    AppEvent event;
};

std::filesystem::path shared(const std::string& relative) {
    return test::shared_capture_dir() / relative;
}

#define SKIP_WITHOUT(path)                                                              \
    do {                                                                                \
        if (!std::filesystem::exists(path)) {                                           \
            if (test::shared_captures_required()) {                                     \
                FAIL() << "EXFILTAP_REQUIRE_SHARED=1 but " << (path) << " is missing";  \
            }                                                                           \
            GTEST_SKIP() << "shared capture " << (path)                                 \
                         << " not found; set EXFILTAP_SHARED_DIR to the shared folder"; \
        }                                                                               \
    } while (false)

/// Every DNS query (UDP, to port 53) of a capture as a DnsQuery event, in capture order.
std::vector<TimedEvent> dns_queries(const std::filesystem::path& path) {
    std::vector<test::CaptureFlow> flows;
    std::string error;
    EXPECT_TRUE(test::read_capture_flows(path, flows, error)) << path << ": " << error;
    std::vector<TimedEvent> out;
    for (size_t i = 0; i < flows.size(); ++i) {
        const test::CaptureFlow& flow = flows[i];
        if (flow.proto != 17 || flow.server_port != 53) {
            continue;
        }
        for (const test::PayloadChunk& chunk : flow.chunks) {
            DnsMessage m;
            if (!chunk.to_server || !parse_dns(chunk.bytes, m) || m.is_response
                    || !m.has_question) {
                continue;
            }
            TimedEvent e;
            e.time_ns = chunk.time_ns;
            e.flow = tuple_of(flow, i + 1);
            dns_event(m, chunk.bytes.size(), e.event);
            out.push_back(e);
        }
    }
    std::stable_sort(out.begin(), out.end(),
            [](const TimedEvent& a, const TimedEvent& b) { return a.time_ns < b.time_ns; });
    return out;
}

std::vector<BehaviourFinding> run(BehaviourEngine& engine, const std::vector<TimedEvent>& events) {
    for (const TimedEvent& e : events) {
        engine.on_app_event(e.flow, e.time_ns, e.event);
    }
    return engine.take_findings();
}

// ---- public suffix list ----

TEST(PublicSuffixTest, RegisteredDomainFollowsRules) {
    const PublicSuffixList list =
            PublicSuffixList::parse("// comment\ncom\nuk\nco.uk\n*.ck\n!www.ck\nblogspot.com\n\n");
    EXPECT_EQ(list.rules(), 6U);
    EXPECT_EQ(list.registered_domain("a.b.example.com"), "example.com");
    EXPECT_EQ(list.registered_domain("x.y.co.uk"), "y.co.uk");
    EXPECT_EQ(list.registered_domain("a.b.foo.ck"), "b.foo.ck");
    EXPECT_EQ(list.registered_domain("a.www.ck"), "www.ck");
    EXPECT_EQ(list.registered_domain("x.y.blogspot.com"), "y.blogspot.com");
    EXPECT_EQ(list.registered_domain("co.uk"), "co.uk");
    EXPECT_EQ(list.registered_domain("localhost"), "localhost");
}

TEST(PublicSuffixTest, UnlistedTopLevelLabelIsReported) {
    const PublicSuffixList list = PublicSuffixList::parse("com\n");
    bool listed = true;
    EXPECT_EQ(list.registered_domain("a.pirate.sea", &listed), "pirate.sea");
    EXPECT_FALSE(listed);
    EXPECT_EQ(list.registered_domain("a.example.com", &listed), "example.com");
    EXPECT_TRUE(listed);
}

TEST(PublicSuffixTest, EmptyListUsesLastTwoLabels) {
    const PublicSuffixList list;
    EXPECT_EQ(list.registered_domain("www.bbc.co.uk"), "co.uk");
}

TEST(PublicSuffixTest, LoadsDebianList) {
    if (!std::filesystem::exists(kDebianList)) {
        GTEST_SKIP() << kDebianList << " not installed (Debian package publicsuffix)";
    }
    auto list = PublicSuffixList::load_file(kDebianList);
    ASSERT_TRUE(list.ok()) << list.error();
    EXPECT_GT(list->rules(), 5000U);
    EXPECT_EQ(list->registered_domain("www.bbc.co.uk"), "bbc.co.uk");
    // "*.kawasaki.jp" with the exception "!city.kawasaki.jp".
    EXPECT_EQ(list->registered_domain("www.city.kawasaki.jp"), "city.kawasaki.jp");
    EXPECT_EQ(list->registered_domain("a.b.c.kawasaki.jp"), "b.c.kawasaki.jp");
}

TEST(PublicSuffixTest, MissingFileIsAnError) {
    auto list = PublicSuffixList::load_file("/nonexistent/psl.dat");
    ASSERT_FALSE(list.ok());
    EXPECT_EQ(
            list.error().rfind("/nonexistent/psl.dat: cannot open the public suffix list", 0), 0U);
}

TEST(DnsTunnelConfigTest, MissingListIsAWarningInStats) {
    BehaviourConfig c = only_dns();
    c.dns_tunnel.public_suffix_list = "/nonexistent/psl.dat";
    BehaviourEngine engine(c, nullptr, default_internal(), {});
    const BehaviourStats stats = engine.stats();
    EXPECT_EQ(stats.public_suffix_rules, 0U);
    EXPECT_NE(stats.public_suffix_warning.find("registered domains are the last two labels"),
            std::string::npos)
            << stats.public_suffix_warning;
}

// ---- hand-made DNS patterns ----

AppEvent query(const std::string& name, uint16_t qtype) {
    AppEvent e;
    e.kind = AppEventKind::DnsQuery;
    e.proto = AppProto::Dns;
    e.qtype = qtype;
    e.bytes = 30 + name.size();
    e.set(e.name, name);
    return e;
}

FlowTuple dns_flow(uint16_t port) {
    FlowTuple f;
    f.proto = 17;
    f.client = ip("10.0.0.5");
    f.server = ip("10.0.0.53");
    f.client_port = port;
    f.server_port = 53;
    f.flow_id = port;
    return f;
}

TEST(DnsTunnelTest, NormalBrowsingIsQuiet) {
    BehaviourEngine engine(only_dns(), nullptr, default_internal(), {});
    const std::array<const char*, 12> names = {"www.google.com", "fonts.googleapis.com",
            "www.gstatic.com", "ajax.googleapis.com", "www.wikipedia.org", "upload.wikimedia.org",
            "github.com", "avatars.githubusercontent.com", "api.github.com",
            "e3891.dscx.akamaiedge.net", "outlook.office365.com", "login.microsoftonline.com"};
    uint64_t t = kT0;
    for (int round = 0; round < 10; ++round) {
        for (const char* name : names) {
            engine.on_app_event(dns_flow(40000), t, query(name, 1));
            engine.on_app_event(dns_flow(40000), t, query(name, 28));
            t += 200000000ULL;
        }
    }
    EXPECT_TRUE(engine.take_findings().empty());
}

TEST(DnsTunnelTest, LongTxtQueriesUnderOneDomainAlert) {
    BehaviourEngine engine(only_dns(), nullptr, default_internal(), {});
    for (int i = 0; i < 30; ++i) {
        std::string label;
        for (int j = 0; j < 40; ++j) {
            label += "abcdefghijklmnopqrstuvwxyz234567"[(i * 7 + j * 13 + j * j) % 32];
        }
        engine.on_app_event(dns_flow(40000), kT0 + i * 100000000ULL,
                query(label + "." + std::to_string(i) + ".x.exfil.example.com", 16));
    }
    const auto findings = engine.take_findings();
    ASSERT_EQ(findings.size(), 1U);
    EXPECT_EQ(findings[0].detector, "dns_tunnel");
    EXPECT_EQ(findings[0].domain, "example.com");
    EXPECT_EQ(findings[0].count, 30U);
    EXPECT_EQ(findings[0].window_s, 60U);
    EXPECT_EQ(findings[0].threshold, 30U);
}

TEST(DnsTunnelTest, TwentyNineQueriesStayUnderTheGate) {
    BehaviourEngine engine(only_dns(), nullptr, default_internal(), {});
    for (int i = 0; i < 29; ++i) {
        std::string label;
        for (int j = 0; j < 40; ++j) {
            label += "abcdefghijklmnopqrstuvwxyz234567"[(i * 7 + j * 13 + j * j) % 32];
        }
        engine.on_app_event(dns_flow(40000), kT0 + i * 100000000ULL,
                query(label + "." + std::to_string(i) + ".x.exfil.example.com", 16));
    }
    EXPECT_TRUE(engine.take_findings().empty());
}

TEST(DnsTunnelTest, QueriesSpreadOverWindowsDoNotAdd) {
    BehaviourEngine engine(only_dns(), nullptr, default_internal(), {});
    for (int i = 0; i < 40; ++i) {
        std::string label(40, static_cast<char>('a' + i % 26));
        label += std::to_string(i);
        // One query every 3 s: 20 per 60 s window.
        engine.on_app_event(
                dns_flow(40000), kT0 + i * 3 * kS, query(label + ".exfil.example.com", 16));
    }
    EXPECT_TRUE(engine.take_findings().empty());
}

// ---- captures ----

TEST(DnsTunnelCaptureTest, IodineNullQueriesAlert) {
    const auto path = shared("pcaps/ndpi_dns-tunnel-iodine.pcap");
    SKIP_WITHOUT(path);
    const auto events = dns_queries(path);
    ASSERT_EQ(events.size(), 222U);
    BehaviourEngine engine(only_dns(), nullptr, default_internal(), {});
    const auto findings = run(engine, events);
    ASSERT_EQ(findings.size(), 1U);
    const BehaviourFinding& f = findings[0];
    EXPECT_EQ(f.detector, "dns_tunnel");
    EXPECT_EQ(f.severity, Severity::High);
    EXPECT_EQ(f.domain, "pirate.sea");
    EXPECT_EQ(f.flow.client, ip("10.0.2.30"));
    EXPECT_EQ(f.flow.server, ip("10.0.2.20"));
    EXPECT_EQ(f.count, 30U);
    EXPECT_EQ(f.reason,
            "10.0.2.30 sent 30 DNS queries under pirate.sea in 13.0 s: 30 distinct subdomains, "
            "mean label length 43.8, entropy 3.47 bits/char, 100% TXT/NULL/CNAME/MX (score 2 "
            "of 3, needs 2; window 60 s, at least 30 queries and 20 distinct); latest query name "
            "80 characters long");
}

TEST(DnsTunnelCaptureTest, Dnscat2Alerts) {
    const auto path = shared("pcaps/ndpi_dns-tunnel-dnscat2.pcap");
    SKIP_WITHOUT(path);
    const auto events = dns_queries(path);
    ASSERT_EQ(events.size(), 150U);
    BehaviourEngine engine(only_dns(), nullptr, default_internal(), {});
    const auto findings = run(engine, events);
    ASSERT_EQ(findings.size(), 1U);
    const BehaviourFinding& f = findings[0];
    EXPECT_EQ(f.domain, "(unlisted TLD)");
    EXPECT_EQ(f.flow.client, ip("192.168.220.56"));
    EXPECT_EQ(f.count, 30U);
    EXPECT_EQ(f.reason,
            "192.168.220.56 sent 30 DNS queries under (unlisted TLD) in 28.2 s: 29 distinct "
            "subdomains, mean label length 19.9, entropy 4.02 bits/char, 100% "
            "TXT/NULL/CNAME/MX (score 2 of 3, needs 2; window 60 s, at least 30 queries and 20 "
            "distinct); latest query name 41 characters long");
}

TEST(DnsTunnelCaptureTest, CaseC21aTxtTunnelAlerts) {
    const auto path = shared("cases/c21a_dns_tunnel_txt.pcap");
    SKIP_WITHOUT(path);
    const auto events = dns_queries(path);
    ASSERT_EQ(events.size(), 64U);
    BehaviourEngine engine(only_dns(), nullptr, default_internal(), {});
    const auto findings = run(engine, events);
    ASSERT_EQ(findings.size(), 1U);
    const BehaviourFinding& f = findings[0];
    EXPECT_EQ(f.domain, "cdn-sync.example");
    EXPECT_EQ(f.flow.client, ip("10.20.21.15"));
    EXPECT_EQ(f.flow.server, ip("198.51.100.53"));
    EXPECT_EQ(f.count, 30U);
    EXPECT_EQ(f.reason,
            "10.20.21.15 sent 30 DNS queries under cdn-sync.example in 8.7 s: 30 distinct "
            "subdomains, mean label length 26.2, entropy 5.06 bits/char, 100% "
            "TXT/NULL/CNAME/MX (score 3 of 3, needs 2; window 60 s, at least 30 queries and 20 "
            "distinct); latest query name 80 characters long");
}

TEST(DnsTunnelCaptureTest, CaseC21bBenignBurstIsQuiet) {
    const auto path = shared("cases/c21b_dns_benign_burst.pcap");
    SKIP_WITHOUT(path);
    const auto events = dns_queries(path);
    ASSERT_EQ(events.size(), 54U);
    BehaviourEngine engine(only_dns(), nullptr, default_internal(), {});
    EXPECT_TRUE(run(engine, events).empty());
}

TEST(DnsTunnelCaptureTest, BenignTxtLookupIsQuiet) {
    const auto path = shared("pcaps/zeek_dns-txt-benign.pcap");
    SKIP_WITHOUT(path);
    const auto events = dns_queries(path);
    ASSERT_EQ(events.size(), 1U);
    BehaviourEngine engine(only_dns(), nullptr, default_internal(), {});
    EXPECT_TRUE(run(engine, events).empty());
}

TEST(DnsTunnelCaptureTest, MixedBrowsingCaptureIsQuiet) {
    const auto path = shared("pcaps/ndpi_mixed-1kxun.pcap");
    SKIP_WITHOUT(path);
    const auto events = dns_queries(path);
    ASSERT_FALSE(events.empty());
    BehaviourEngine engine(only_dns(), nullptr, default_internal(), {});
    EXPECT_TRUE(run(engine, events).empty());
}

TEST(DnsTunnelCaptureTest, SingleGzipLabelQueryIsQuiet) {
    const auto path = shared("pcaps/ndpi_dns-exf-gzip-label.pcap");
    SKIP_WITHOUT(path);
    const auto events = dns_queries(path);
    ASSERT_EQ(events.size(), 1U);
    BehaviourEngine engine(only_dns(), nullptr, default_internal(), {});
    EXPECT_TRUE(run(engine, events).empty());
}

// ---- external_login on the FTP guessing case ----

/// Login events of the FTP control flows of a capture: USER names the user; a 230 reply is
/// a success, a 530 reply a failure (passwords are never read).
std::vector<TimedEvent> ftp_logins(const std::filesystem::path& path) {
    std::vector<test::CaptureFlow> flows;
    std::string error;
    EXPECT_TRUE(test::read_capture_flows(path, flows, error)) << path << ": " << error;
    std::vector<TimedEvent> out;
    for (size_t i = 0; i < flows.size(); ++i) {
        const test::CaptureFlow& flow = flows[i];
        if (flow.proto != 6 || flow.server_port != 21) {
            continue;
        }
        std::string user;
        for (const test::PayloadChunk& chunk : flow.chunks) {
            const std::string text(chunk.bytes.begin(), chunk.bytes.end());
            if (chunk.to_server) {
                if (text.rfind("USER ", 0) == 0) {
                    user = text.substr(5, text.find_first_of("\r\n") - 5);
                }
                continue;
            }
            const bool success = text.rfind("230", 0) == 0;
            if (!success && text.rfind("530", 0) != 0) {
                continue;
            }
            TimedEvent e;
            e.time_ns = chunk.time_ns;
            e.flow = tuple_of(flow, i + 1);
            e.event.kind = AppEventKind::Login;
            e.event.proto = AppProto::Ftp;
            e.event.outcome = success ? LoginOutcome::Success : LoginOutcome::Failure;
            e.event.set(e.event.user, user);
            out.push_back(e);
        }
    }
    std::stable_sort(out.begin(), out.end(),
            [](const TimedEvent& a, const TimedEvent& b) { return a.time_ns < b.time_ns; });
    return out;
}

TEST(ExternalLoginCaptureTest, CaseC22GuessingFromOutsideAlerts) {
    const auto path = shared("cases/c22a_ftp_guessing_external.pcap");
    SKIP_WITHOUT(path);
    const auto events = ftp_logins(path);
    ASSERT_EQ(events.size(), 11U);
    BehaviourConfig c = only_dns();
    c.dns_tunnel.enabled = false;
    c.external_login.enabled = true;
    BehaviourEngine engine(c, nullptr, default_internal(), {});
    const auto findings = run(engine, events);
    std::vector<std::string> reasons;
    for (const BehaviourFinding& f : findings) {
        EXPECT_EQ(f.detector, "external_login");
        EXPECT_EQ(f.user, "admin");
        EXPECT_EQ(f.flow.server, ip("10.20.22.21"));
        reasons.push_back(f.reason);
    }
    EXPECT_EQ(reasons,
            (std::vector<std::string>{
                    "203.0.113.10 failed 3 logins to internal services in 600 s (threshold 3); "
                    "latest over ftp to 10.20.22.21:21 as user 'admin'",
                    "203.0.113.11 failed 3 logins to internal services in 600 s (threshold 3); "
                    "latest over ftp to 10.20.22.21:21 as user 'admin'",
                    "user 'admin' tried logins from 3 external sources in 600 s (threshold 3); "
                    "latest 203.0.113.12 over ftp to 10.20.22.21:21",
                    "203.0.113.12 failed 3 logins to internal services in 600 s (threshold 3); "
                    "latest over ftp to 10.20.22.21:21 as user 'admin'",
                    "203.0.113.12 logged in over ftp to 10.20.22.21:21 as user 'admin' after 3 "
                    "failed logins in 600 s (threshold 2)",
            }));
    ASSERT_EQ(findings.size(), 5U);
    EXPECT_EQ(findings[4].flow.client, ip("203.0.113.12"));
    EXPECT_EQ(findings[4].count, 3U);
    EXPECT_EQ(findings[4].threshold, 2U);
}

TEST(ExternalLoginCaptureTest, BruteForceBetweenPrivateHostsIsQuiet) {
    const auto path = shared("pcaps/zeek_ftp-bruteforce.pcap");
    SKIP_WITHOUT(path);
    const auto events = ftp_logins(path);
    ASSERT_EQ(events.size(), 30U);
    BehaviourConfig c = only_dns();
    c.dns_tunnel.enabled = false;
    c.external_login.enabled = true;
    BehaviourEngine engine(c, nullptr, default_internal(), {});
    EXPECT_TRUE(run(engine, events).empty());
}

TEST(ExternalLoginCaptureTest, BruteForceAlertsWhenOnlyTheServerIsInternal) {
    const auto path = shared("pcaps/zeek_ftp-bruteforce.pcap");
    SKIP_WITHOUT(path);
    BehaviourConfig c = only_dns();
    c.dns_tunnel.enabled = false;
    c.external_login.enabled = true;
    BehaviourEngine engine(c, nullptr, {prefix("192.168.56.101", 32)}, {});
    const auto findings = run(engine, ftp_logins(path));
    ASSERT_EQ(findings.size(), 1U);
    EXPECT_EQ(findings[0].flow.client, ip("192.168.56.1"));
    EXPECT_EQ(findings[0].count, 3U);
    EXPECT_EQ(findings[0].user, "bro");
}

/// One outcome-less SSH login per connection to port 22 that carried bytes both ways (the
/// session start parser reports one Attempt per connection start).
std::vector<TimedEvent> ssh_attempts(const std::filesystem::path& path) {
    std::vector<test::CaptureFlow> flows;
    std::string error;
    EXPECT_TRUE(test::read_capture_flows(path, flows, error)) << path << ": " << error;
    std::vector<TimedEvent> out;
    for (size_t i = 0; i < flows.size(); ++i) {
        const test::CaptureFlow& flow = flows[i];
        const bool both = !flow.joined(true).empty() && !flow.joined(false).empty();
        if (flow.proto != 6 || flow.server_port != 22 || !both) {
            continue;
        }
        TimedEvent e;
        e.time_ns = flow.chunks.front().time_ns;
        e.flow = tuple_of(flow, i + 1);
        e.event.kind = AppEventKind::Login;
        e.event.proto = AppProto::Ssh;
        e.event.outcome = LoginOutcome::Attempt;
        out.push_back(e);
    }
    std::stable_sort(out.begin(), out.end(),
            [](const TimedEvent& a, const TimedEvent& b) { return a.time_ns < b.time_ns; });
    return out;
}

TEST(ExternalLoginCaptureTest, SshGuessingAlertsWhenOnlyTheServerIsInternal) {
    const auto path = shared("pcaps/zeek_ssh-guessing.pcap");
    SKIP_WITHOUT(path);
    const auto events = ssh_attempts(path);
    ASSERT_EQ(events.size(), 11U);
    BehaviourConfig c = only_dns();
    c.dns_tunnel.enabled = false;
    c.external_login.enabled = true;
    BehaviourEngine engine(c, nullptr, {prefix("192.168.56.103", 32)}, {});
    const auto findings = run(engine, events);
    ASSERT_EQ(findings.size(), 1U);
    EXPECT_EQ(findings[0].flow.client, ip("192.168.56.1"));
    EXPECT_EQ(findings[0].count, 10U);
    EXPECT_EQ(findings[0].app_proto, "ssh");
}

TEST(ExternalLoginCaptureTest, SshGuessingBetweenPrivateHostsIsQuiet) {
    const auto path = shared("pcaps/zeek_ssh-guessing.pcap");
    SKIP_WITHOUT(path);
    BehaviourConfig c = only_dns();
    c.dns_tunnel.enabled = false;
    c.external_login.enabled = true;
    BehaviourEngine engine(c, nullptr, default_internal(), {});
    EXPECT_TRUE(run(engine, ssh_attempts(path)).empty());
}

}  // namespace
}  // namespace exfiltap::detectors
