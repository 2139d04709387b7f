#include "detectors/dns_parser.h"

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include <gtest/gtest.h>

#include "tests/unit/detectors/capture_payloads.h"

namespace exfiltap::detectors {
namespace {

using Bytes = std::vector<uint8_t>;

// A DNS message: header, one question (name given as its labels), nothing else.
Bytes make_message(uint16_t id, uint8_t flags_hi, uint8_t flags_lo,
        const std::vector<std::string>& labels, uint16_t qtype, uint16_t ancount = 0) {
    Bytes m = {static_cast<uint8_t>(id >> 8), static_cast<uint8_t>(id), flags_hi, flags_lo, 0, 1,
            static_cast<uint8_t>(ancount >> 8), static_cast<uint8_t>(ancount), 0, 0, 0, 0};
    for (const std::string& label : labels) {
        m.push_back(static_cast<uint8_t>(label.size()));
        m.insert(m.end(), label.begin(), label.end());
    }
    m.push_back(0);
    m.push_back(static_cast<uint8_t>(qtype >> 8));
    m.push_back(static_cast<uint8_t>(qtype));
    m.push_back(0);
    m.push_back(1);
    return m;
}

Bytes make_query(const std::vector<std::string>& labels, uint16_t qtype) {
    return make_message(0x1234, 0x01, 0x00, labels, qtype);
}

Bytes tcp_framed(const Bytes& msg) {
    Bytes out = {static_cast<uint8_t>(msg.size() >> 8), static_cast<uint8_t>(msg.size())};
    out.insert(out.end(), msg.begin(), msg.end());
    return out;
}

struct EventLog : AppEventSink {
    void on_app_event(const AppEvent& event) noexcept override { events.push_back(event); }
    std::vector<AppEvent> events;
};

TEST(DnsParserTest, ReadsHeaderFields) {
    const Bytes msg = make_message(0xbeef, 0x81, 0x83, {"example", "com"}, 1, 2);
    DnsMessage m;
    ASSERT_TRUE(parse_dns(msg, m));
    EXPECT_EQ(m.id, 0xbeef);
    EXPECT_TRUE(m.is_response);
    EXPECT_EQ(m.opcode, 0);
    EXPECT_EQ(m.rcode, 3);
    EXPECT_EQ(m.qdcount, 1);
    EXPECT_EQ(m.ancount, 2);
    EXPECT_FALSE(m.tc);
}

TEST(DnsParserTest, ReadsOpcodeAndTruncatedBit) {
    const Bytes msg = make_message(1, 0x2b, 0x00, {"a"}, 1);  // opcode 5 (UPDATE), TC, RD
    DnsMessage m;
    ASSERT_TRUE(parse_dns(msg, m));
    EXPECT_EQ(m.opcode, 5);
    EXPECT_TRUE(m.tc);
    EXPECT_FALSE(m.is_response);
}

TEST(DnsParserTest, ReadsQuestion) {
    const Bytes msg = make_query({"www", "Example", "COM"}, 28);
    DnsMessage m;
    ASSERT_TRUE(parse_dns(msg, m));
    EXPECT_TRUE(m.has_question);
    EXPECT_EQ(m.name_view(), "www.example.com");
    EXPECT_EQ(m.qtype, 28);
    EXPECT_EQ(m.qclass, 1);
    EXPECT_EQ(m.label_count, 3);
    EXPECT_EQ(m.longest_label, 7);
    EXPECT_FALSE(m.name_truncated);
}

TEST(DnsParserTest, KeepsStarAndEqualsInLabels) {
    const Bytes msg = make_query({"H4sI*2Q", "AAAA==-", "test"}, 1);
    DnsMessage m;
    ASSERT_TRUE(parse_dns(msg, m));
    EXPECT_EQ(m.name_view(), "h4si*2q.aaaa==-.test");
}

TEST(DnsParserTest, ReplacesNonPrintableAndDotInsideLabel) {
    const Bytes msg = make_query({std::string("a\x01.b\xff", 5), "net"}, 1);
    DnsMessage m;
    ASSERT_TRUE(parse_dns(msg, m));
    EXPECT_EQ(m.name_view(), "a??b?.net");
    EXPECT_EQ(m.label_count, 2);
}

TEST(DnsParserTest, RootNameIsEmpty) {
    const Bytes msg = make_query({}, 2);
    DnsMessage m;
    ASSERT_TRUE(parse_dns(msg, m));
    EXPECT_TRUE(m.has_question);
    EXPECT_EQ(m.name_view(), "");
    EXPECT_EQ(m.label_count, 0);
    EXPECT_EQ(m.qtype, 2);
}

TEST(DnsParserTest, CutsNameLongerThan253) {
    const std::string label(63, 'x');
    const Bytes msg = make_query({label, label, label, label, label}, 16);
    DnsMessage m;
    ASSERT_TRUE(parse_dns(msg, m));
    EXPECT_TRUE(m.name_truncated);
    EXPECT_EQ(m.name_view().size(), 253U);
    EXPECT_EQ(m.label_count, 5);
    EXPECT_EQ(m.longest_label, 63);
    EXPECT_EQ(m.qtype, 16);
}

TEST(DnsParserTest, FollowsBackwardPointer) {
    // Flags 01 61 read as a label "a" and qdcount's high byte 00 ends it: a pointer to
    // offset 2 names "a".
    Bytes msg = {0, 7, 0x01, 'a', 0, 1, 0, 0, 0, 0, 0, 0, 0xc0, 0x02, 0, 15, 0, 1};
    DnsMessage m;
    ASSERT_TRUE(parse_dns(msg, m));
    EXPECT_EQ(m.name_view(), "a");
    EXPECT_EQ(m.qtype, 15);
}

TEST(DnsParserTest, RejectsPointerToItself) {
    const Bytes msg = {0, 7, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xc0, 12, 0, 1, 0, 1};
    DnsMessage m;
    EXPECT_FALSE(parse_dns(msg, m));
}

TEST(DnsParserTest, RejectsForwardPointer) {
    const Bytes msg = {0, 7, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xc0, 16, 0, 1, 0, 1, 1, 'a', 0};
    DnsMessage m;
    EXPECT_FALSE(parse_dns(msg, m));
}

TEST(DnsParserTest, RejectsReservedLabelType) {
    const Bytes msg = {0, 7, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0x41, 'a', 0, 0, 1, 0, 1};
    DnsMessage m;
    EXPECT_FALSE(parse_dns(msg, m));
}

TEST(DnsParserTest, RejectsLabelPastEnd) {
    const Bytes msg = {0, 7, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 5, 'a', 'b'};
    DnsMessage m;
    EXPECT_FALSE(parse_dns(msg, m));
}

TEST(DnsParserTest, RejectsMissingQtype) {
    Bytes msg = make_query({"a"}, 1);
    msg.pop_back();  // the class and half the type: the question ends short
    msg.pop_back();
    DnsMessage m;
    EXPECT_FALSE(parse_dns(msg, m));
}

TEST(DnsParserTest, RejectsShortHeader) {
    const Bytes msg = {0, 7, 1, 0, 0, 1, 0, 0, 0, 0, 0};
    DnsMessage m;
    EXPECT_FALSE(parse_dns(msg, m));
}

TEST(DnsParserTest, AcceptsMessageWithoutQuestion) {
    const Bytes msg = {0, 7, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0};
    DnsMessage m;
    ASSERT_TRUE(parse_dns(msg, m));
    EXPECT_FALSE(m.has_question);
    EXPECT_EQ(m.name_view(), "");
}

TEST(DnsEventTest, QueryGivesDnsQuery) {
    const Bytes msg = make_query({"cdn-sync", "example"}, 16);
    DnsMessage m;
    ASSERT_TRUE(parse_dns(msg, m));
    AppEvent e;
    dns_event(m, 77, e);
    EXPECT_EQ(e.kind, AppEventKind::DnsQuery);
    EXPECT_EQ(e.proto, AppProto::Dns);
    EXPECT_EQ(e.name_view(), "cdn-sync.example");
    EXPECT_EQ(e.qtype, 16);
    EXPECT_EQ(e.bytes, 77U);
    EXPECT_EQ(e.count, 0U);
    EXPECT_FALSE(e.truncated);
}

TEST(DnsEventTest, ResponseGivesDnsAnswer) {
    const Bytes msg = make_message(9, 0x81, 0x80, {"a", "example"}, 1, 4);
    DnsMessage m;
    ASSERT_TRUE(parse_dns(msg, m));
    AppEvent e;
    dns_event(m, 300, e);
    EXPECT_EQ(e.kind, AppEventKind::DnsAnswer);
    EXPECT_EQ(e.rcode, 0);
    EXPECT_EQ(e.count, 4U);
    EXPECT_EQ(e.bytes, 300U);
    EXPECT_EQ(e.name_view(), "a.example");
}

TEST(DnsEventTest, LongNameSetsTruncated) {
    const std::string label(63, 'y');
    const Bytes msg = make_query({label, label, label, label, label}, 10);
    DnsMessage m;
    ASSERT_TRUE(parse_dns(msg, m));
    AppEvent e;
    dns_event(m, msg.size(), e);
    EXPECT_TRUE(e.truncated);
    EXPECT_EQ(e.name_view().size(), 253U);
}

TEST(DnsTcpParserTest, ReportsTwoMessagesOfOneSegment) {
    Bytes stream = tcp_framed(make_query({"one", "example"}, 1));
    const Bytes second = tcp_framed(make_query({"two", "example"}, 28));
    stream.insert(stream.end(), second.begin(), second.end());
    DnsTcpParser parser;
    EventLog log;
    parser.on_data(AppDir::ToServer, stream, log, nullptr);
    ASSERT_EQ(log.events.size(), 2U);
    EXPECT_EQ(log.events[0].name_view(), "one.example");
    EXPECT_EQ(log.events[1].name_view(), "two.example");
    EXPECT_EQ(log.events[1].qtype, 28);
    EXPECT_EQ(parser.messages(), 2U);
}

TEST(DnsTcpParserTest, ReassemblesOneByteChunks) {
    const Bytes query = make_query({"split", "example", "org"}, 16);
    const Bytes stream = tcp_framed(query);
    DnsTcpParser parser;
    EventLog log;
    for (const uint8_t b : stream) {
        parser.on_data(AppDir::ToServer, {&b, 1}, log, nullptr);
    }
    ASSERT_EQ(log.events.size(), 1U);
    EXPECT_EQ(log.events[0].name_view(), "split.example.org");
    EXPECT_EQ(log.events[0].bytes, query.size());
}

TEST(DnsTcpParserTest, SkipsBytesPastKeepLimitByCount) {
    Bytes answer = make_message(5, 0x81, 0x80, {"big", "example"}, 16, 1);
    answer.resize(3000, 0xab);  // answer records the parser does not read
    Bytes stream = tcp_framed(answer);
    const Bytes next = tcp_framed(make_message(6, 0x81, 0x80, {"next", "example"}, 1, 1));
    stream.insert(stream.end(), next.begin(), next.end());
    DnsTcpParser parser;
    EventLog log;
    parser.on_data(AppDir::ToClient, {stream.data(), 1000}, log, nullptr);
    parser.on_data(AppDir::ToClient, {stream.data() + 1000, stream.size() - 1000}, log, nullptr);
    ASSERT_EQ(log.events.size(), 2U);
    EXPECT_EQ(log.events[0].kind, AppEventKind::DnsAnswer);
    EXPECT_EQ(log.events[0].bytes, 3000U);
    EXPECT_EQ(log.events[1].name_view(), "next.example");
}

TEST(DnsTcpParserTest, GapEndsDirection) {
    DnsTcpParser parser;
    EventLog log;
    parser.on_gap(AppDir::ToServer);
    parser.on_data(AppDir::ToServer, tcp_framed(make_query({"lost"}, 1)), log, nullptr);
    EXPECT_TRUE(log.events.empty());
    EXPECT_FALSE(parser.done());
    parser.on_gap(AppDir::ToClient);
    EXPECT_TRUE(parser.done());
}

TEST(DnsTcpParserTest, GivesUpAfterMalformedRun) {
    const Bytes junk = {0, 3, 'a', 'b', 'c'};
    Bytes stream;
    for (int i = 0; i < 3; ++i) {
        stream.insert(stream.end(), junk.begin(), junk.end());
    }
    const Bytes good = tcp_framed(make_query({"late"}, 1));
    stream.insert(stream.end(), good.begin(), good.end());
    DnsTcpParser parser;
    EventLog log;
    parser.on_data(AppDir::ToServer, stream, log, nullptr);
    EXPECT_TRUE(log.events.empty());
    EXPECT_EQ(parser.malformed(), 3U);
    parser.on_data(AppDir::ToClient, {junk.data(), 2}, log, nullptr);
    EXPECT_FALSE(parser.done());
}

TEST(DnsTcpParserTest, OneMalformedMessageIsSkipped) {
    Bytes stream = {0, 3, 'a', 'b', 'c'};
    const Bytes good = tcp_framed(make_query({"after"}, 1));
    stream.insert(stream.end(), good.begin(), good.end());
    DnsTcpParser parser;
    EventLog log;
    parser.on_data(AppDir::ToServer, stream, log, nullptr);
    ASSERT_EQ(log.events.size(), 1U);
    EXPECT_EQ(log.events[0].name_view(), "after");
    EXPECT_EQ(parser.malformed(), 1U);
}

TEST(DnsTcpParserTest, PartialMessageAtEndIsNotReported) {
    const Bytes stream = tcp_framed(make_query({"cut", "example"}, 1));
    DnsTcpParser parser;
    EventLog log;
    parser.on_data(AppDir::ToServer, {stream.data(), stream.size() - 1}, log, nullptr);
    parser.on_end(log, nullptr);
    EXPECT_TRUE(log.events.empty());
    EXPECT_TRUE(parser.done());
}

// Captures: every UDP datagram to or from port 53 of a file, parsed.
struct CaptureDns {
    std::vector<DnsMessage> queries;
    std::vector<DnsMessage> responses;
    size_t malformed = 0;
};

bool parse_capture(const std::filesystem::path& path, CaptureDns& out, std::string& error) {
    std::vector<test::CaptureFlow> flows;
    if (!test::read_capture_flows(path, flows, error)) {
        return false;
    }
    for (const test::CaptureFlow& flow : flows) {
        if (flow.proto != 17 || (flow.server_port != 53 && flow.client_port != 53)) {
            continue;
        }
        for (const test::PayloadChunk& chunk : flow.chunks) {
            DnsMessage m;
            if (!parse_dns(chunk.bytes, m)) {
                ++out.malformed;
            } else if (m.is_response) {
                out.responses.push_back(m);
            } else {
                out.queries.push_back(m);
            }
        }
    }
    return true;
}

class DnsCaptureTest : public ::testing::Test {
protected:
    void load(const std::string& relative) {
        const std::filesystem::path path = test::shared_capture_dir() / relative;
        if (!std::filesystem::exists(path)) {
            if (test::shared_captures_required()) {
                FAIL() << "EXFILTAP_REQUIRE_SHARED=1 but " << path << " is missing";
            }
            GTEST_SKIP() << "shared capture " << path
                         << " not found; set EXFILTAP_SHARED_DIR to the shared folder";
        }
        std::string error;
        ASSERT_TRUE(parse_capture(path, dns_, error)) << path << ": " << error;
    }

    static bool under(const DnsMessage& m, std::string_view domain) {
        const std::string_view name = m.name_view();
        return name.size() > domain.size() && name.substr(name.size() - domain.size()) == domain
                && name[name.size() - domain.size() - 1] == '.';
    }

    CaptureDns dns_;
};

TEST_F(DnsCaptureTest, IodineSends222NullQueriesUnderPirateSea) {
    load("pcaps/ndpi_dns-tunnel-iodine.pcap");
    if (HasFatalFailure() || IsSkipped()) {
        return;
    }
    EXPECT_EQ(dns_.malformed, 0U);
    ASSERT_EQ(dns_.queries.size(), 222U);
    size_t longest = 0;
    for (const DnsMessage& m : dns_.queries) {
        EXPECT_EQ(m.qtype, 10) << m.name_view();
        EXPECT_TRUE(under(m, "pirate.sea")) << m.name_view();
        longest = std::max<size_t>(longest, m.name_view().size());
    }
    EXPECT_EQ(longest, 252U);
    EXPECT_EQ(dns_.responses.size(), 212U);
}

TEST_F(DnsCaptureTest, IodineQueriesFramedOverTcpGiveSameNames) {
    load("pcaps/ndpi_dns-tunnel-iodine.pcap");
    if (HasFatalFailure() || IsSkipped()) {
        return;
    }
    // The capture's UDP queries as one TCP stream, fed in 7-byte pieces.
    const std::filesystem::path path =
            test::shared_capture_dir() / "pcaps/ndpi_dns-tunnel-iodine.pcap";
    std::vector<test::CaptureFlow> flows;
    std::string error;
    ASSERT_TRUE(test::read_capture_flows(path, flows, error)) << error;
    Bytes stream;
    for (const test::CaptureFlow& flow : flows) {
        for (const test::PayloadChunk& chunk : flow.chunks) {
            if (flow.proto == 17 && flow.server_port == 53 && chunk.to_server) {
                const Bytes framed = tcp_framed(chunk.bytes);
                stream.insert(stream.end(), framed.begin(), framed.end());
            }
        }
    }
    DnsTcpParser parser;
    EventLog log;
    for (size_t at = 0; at < stream.size(); at += 7) {
        parser.on_data(AppDir::ToServer,
                {stream.data() + at, std::min<size_t>(7, stream.size() - at)}, log, nullptr);
    }
    ASSERT_EQ(log.events.size(), dns_.queries.size());
    for (size_t i = 0; i < log.events.size(); ++i) {
        EXPECT_EQ(log.events[i].kind, AppEventKind::DnsQuery);
        EXPECT_EQ(log.events[i].qtype, 10);
        EXPECT_EQ(log.events[i].name_view(), dns_.queries[i].name_view());
    }
    EXPECT_EQ(parser.malformed(), 0U);
}

TEST_F(DnsCaptureTest, Dnscat2QueriesByType) {
    load("pcaps/ndpi_dns-tunnel-dnscat2.pcap");
    if (HasFatalFailure() || IsSkipped()) {
        return;
    }
    std::map<uint16_t, size_t> by_type;
    size_t longest = 0;
    for (const DnsMessage& m : dns_.queries) {
        ++by_type[m.qtype];
        longest = std::max<size_t>(longest, m.name_view().size());
        EXPECT_EQ(m.name_view().substr(0, 7), "dnscat.") << m.name_view();
    }
    EXPECT_EQ(dns_.queries.size(), 150U);
    EXPECT_EQ(by_type[15], 52U);
    EXPECT_EQ(by_type[5], 47U);
    EXPECT_EQ(by_type[16], 51U);
    EXPECT_EQ(longest, 240U);
    EXPECT_EQ(dns_.responses.size(), 150U);
}

TEST_F(DnsCaptureTest, GzipLabelQueryKeepsStarAndEquals) {
    load("pcaps/ndpi_dns-exf-gzip-label.pcap");
    if (HasFatalFailure() || IsSkipped()) {
        return;
    }
    ASSERT_EQ(dns_.queries.size(), 1U);
    const DnsMessage& q = dns_.queries[0];
    EXPECT_EQ(q.name_view(),
            "h4sicn03*2qaa3rlc3qudhh0aavjycxwakjehelu5klueow0zjxulgage-.4s2fgaaaa==-.test.txt");
    EXPECT_EQ(q.qtype, 1);
    EXPECT_EQ(q.label_count, 4);
    EXPECT_EQ(q.longest_label, 58);
    ASSERT_EQ(dns_.responses.size(), 1U);
    EXPECT_EQ(dns_.responses[0].rcode, 0);
    EXPECT_EQ(dns_.responses[0].ancount, 1);
}

TEST_F(DnsCaptureTest, BenignTxtQueryAndLargeAnswer) {
    load("pcaps/zeek_dns-txt-benign.pcap");
    if (HasFatalFailure() || IsSkipped()) {
        return;
    }
    ASSERT_EQ(dns_.queries.size(), 1U);
    EXPECT_EQ(dns_.queries[0].name_view(), "flkr._domainkey.flickr.com");
    EXPECT_EQ(dns_.queries[0].qtype, 16);
    ASSERT_EQ(dns_.responses.size(), 1U);
    EXPECT_EQ(dns_.responses[0].ancount, 3);
    EXPECT_EQ(dns_.responses[0].name_view(), "flkr._domainkey.flickr.com");
}

TEST_F(DnsCaptureTest, CaseC21aSends64TxtQueriesUnderCdnSync) {
    load("cases/c21a_dns_tunnel_txt.pcap");
    if (HasFatalFailure() || IsSkipped()) {
        return;
    }
    ASSERT_EQ(dns_.queries.size(), 64U);
    EXPECT_EQ(dns_.queries[0].name_view(),
            "frx4wws2vgjf5wa53vbaz4g3vxthktfrlxodxjdy3l5f3jjz2m."
            "fuvk7lxo7airifqtnbqtlpl4bgtqdf7q7qmxdymfuv2cnzydfc.0000.t.cdn-sync.example");
    for (const DnsMessage& m : dns_.queries) {
        EXPECT_EQ(m.qtype, 16) << m.name_view();
        EXPECT_TRUE(under(m, "t.cdn-sync.example")) << m.name_view();
        EXPECT_EQ(m.label_count, 6) << m.name_view();  // 2 data labels, sequence, t, domain
        EXPECT_LE(m.longest_label, 50) << m.name_view();
    }
    EXPECT_EQ(dns_.responses.size(), 64U);
}

TEST_F(DnsCaptureTest, CaseC21bHas54OrdinaryQueries) {
    load("cases/c21b_dns_benign_burst.pcap");
    if (HasFatalFailure() || IsSkipped()) {
        return;
    }
    std::map<uint16_t, size_t> by_type;
    for (const DnsMessage& m : dns_.queries) {
        ++by_type[m.qtype];
    }
    EXPECT_EQ(dns_.queries.size(), 54U);
    EXPECT_EQ(by_type[1], 51U);
    EXPECT_EQ(by_type[16], 2U);
    EXPECT_EQ(by_type[28], 1U);
    EXPECT_EQ(dns_.responses.size(), 54U);
}

}  // namespace
}  // namespace exfiltap::detectors
