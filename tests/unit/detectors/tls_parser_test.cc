#include "detectors/tls_parser.h"

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include <gtest/gtest.h>

#include "tests/unit/detectors/capture_payloads.h"

namespace exfiltap::detectors {
namespace {

using Bytes = std::vector<uint8_t>;

void put16(Bytes& b, size_t v) {
    b.push_back(static_cast<uint8_t>(v >> 8));
    b.push_back(static_cast<uint8_t>(v));
}

Bytes extension(uint16_t type, const Bytes& data) {
    Bytes e;
    put16(e, type);
    put16(e, data.size());
    e.insert(e.end(), data.begin(), data.end());
    return e;
}

Bytes server_name_ext(std::string_view host, uint8_t name_type = 0) {
    Bytes list;
    list.push_back(name_type);
    put16(list, host.size());
    list.insert(list.end(), host.begin(), host.end());
    Bytes data;
    put16(data, list.size());
    data.insert(data.end(), list.begin(), list.end());
    return extension(0, data);
}

// A ClientHello handshake message (header included) with the given extensions.
Bytes client_hello(const std::vector<Bytes>& extensions) {
    Bytes body = {0x03, 0x03};
    body.insert(body.end(), 32, 0x5a);  // random
    body.push_back(32);                 // session id
    body.insert(body.end(), 32, 0x11);
    put16(body, 4);  // two cipher suites
    body.insert(body.end(), {0x13, 0x01, 0x13, 0x02});
    body.push_back(1);  // compression methods: null
    body.push_back(0);
    Bytes exts;
    for (const Bytes& e : extensions) {
        exts.insert(exts.end(), e.begin(), e.end());
    }
    put16(body, exts.size());
    body.insert(body.end(), exts.begin(), exts.end());
    Bytes hs = {1, static_cast<uint8_t>(body.size() >> 16), static_cast<uint8_t>(body.size() >> 8),
            static_cast<uint8_t>(body.size())};
    hs.insert(hs.end(), body.begin(), body.end());
    return hs;
}

// `hs` in TLS handshake records of at most `fragment` bytes each.
Bytes records(const Bytes& hs, size_t fragment = 16384) {
    Bytes out;
    for (size_t at = 0; at < hs.size(); at += fragment) {
        const size_t n = std::min(fragment, hs.size() - at);
        out.insert(out.end(), {0x16, 0x03, 0x01});
        put16(out, n);
        out.insert(out.end(), hs.begin() + static_cast<ptrdiff_t>(at),
                hs.begin() + static_cast<ptrdiff_t>(at + n));
    }
    return out;
}

Bytes padding_ext(size_t n) {
    return extension(21, Bytes(n, 0));
}

struct EventLog : AppEventSink {
    void on_app_event(const AppEvent& event) noexcept override { events.push_back(event); }
    std::vector<AppEvent> events;
};

TEST(TlsParserTest, ReportsSniOnce) {
    const Bytes stream = records(client_hello({padding_ext(10), server_name_ext("Example.COM")}));
    TlsParser parser;
    EventLog log;
    parser.on_data(AppDir::ToServer, stream, log, nullptr);
    ASSERT_EQ(log.events.size(), 1U);
    EXPECT_EQ(log.events[0].kind, AppEventKind::ProtocolSeen);
    EXPECT_EQ(log.events[0].proto, AppProto::Tls);
    EXPECT_EQ(log.events[0].name_view(), "example.com");
    EXPECT_TRUE(parser.done());
    parser.on_end(log, nullptr);
    EXPECT_EQ(log.events.size(), 1U);
}

TEST(TlsParserTest, OneByteChunksGiveSameSni) {
    const Bytes stream = records(client_hello({server_name_ext("cdn.signal.org")}));
    TlsParser parser;
    EventLog log;
    for (const uint8_t b : stream) {
        parser.on_data(AppDir::ToServer, {&b, 1}, log, nullptr);
    }
    ASSERT_EQ(log.events.size(), 1U);
    EXPECT_EQ(log.events[0].name_view(), "cdn.signal.org");
}

TEST(TlsParserTest, ReassemblesHelloAcrossRecords) {
    const Bytes stream =
            records(client_hello({padding_ext(300), server_name_ext("split.example")}), 50);
    TlsParser parser;
    EventLog log;
    parser.on_data(AppDir::ToServer, stream, log, nullptr);
    ASSERT_EQ(log.events.size(), 1U);
    EXPECT_EQ(log.events[0].name_view(), "split.example");
}

TEST(TlsParserTest, HelloWithoutSniReportsEmptyName) {
    const Bytes stream = records(client_hello({padding_ext(4)}));
    TlsParser parser;
    EventLog log;
    parser.on_data(AppDir::ToServer, stream, log, nullptr);
    ASSERT_EQ(log.events.size(), 1U);
    EXPECT_EQ(log.events[0].proto, AppProto::Tls);
    EXPECT_EQ(log.events[0].name_view(), "");
}

TEST(TlsParserTest, SkipsNonHostNameEntries) {
    const Bytes stream = records(client_hello({server_name_ext("other", 7)}));
    TlsParser parser;
    EventLog log;
    parser.on_data(AppDir::ToServer, stream, log, nullptr);
    ASSERT_EQ(log.events.size(), 1U);
    EXPECT_EQ(log.events[0].name_view(), "");
}

TEST(TlsParserTest, IgnoresServerDirection) {
    const Bytes stream = records(client_hello({server_name_ext("a.example")}));
    TlsParser parser;
    EventLog log;
    parser.on_data(AppDir::ToClient, stream, log, nullptr);
    EXPECT_TRUE(log.events.empty());
    EXPECT_FALSE(parser.done());
}

TEST(TlsParserTest, GarbageEndsWithoutEvent) {
    const std::string text = "GET / HTTP/1.1\r\n\r\n";
    TlsParser parser;
    EventLog log;
    parser.on_data(AppDir::ToServer, {reinterpret_cast<const uint8_t*>(text.data()), text.size()},
            log, nullptr);
    EXPECT_TRUE(parser.done());
    EXPECT_TRUE(parser.malformed());
    parser.on_end(log, nullptr);
    EXPECT_TRUE(log.events.empty());
}

TEST(TlsParserTest, ServerHelloFromClientIsMalformed) {
    Bytes hs = client_hello({});
    hs[0] = 2;
    TlsParser parser;
    EventLog log;
    parser.on_data(AppDir::ToServer, records(hs), log, nullptr);
    EXPECT_TRUE(parser.done());
    EXPECT_TRUE(log.events.empty());
}

TEST(TlsParserTest, GapBeforeHelloEndsParser) {
    const Bytes stream = records(client_hello({server_name_ext("late.example")}));
    TlsParser parser;
    EventLog log;
    parser.on_data(AppDir::ToServer, {stream.data(), 20}, log, nullptr);
    parser.on_gap(AppDir::ToServer);
    EXPECT_TRUE(parser.done());
    parser.on_data(AppDir::ToServer, {stream.data() + 20, stream.size() - 20}, log, nullptr);
    EXPECT_TRUE(log.events.empty());
}

TEST(TlsParserTest, FlowEndReportsStartedHello) {
    const Bytes stream = records(client_hello({server_name_ext("cut.example"), padding_ext(200)}));
    TlsParser parser;
    EventLog log;
    parser.on_data(AppDir::ToServer, {stream.data(), stream.size() - 100}, log, nullptr);
    EXPECT_TRUE(log.events.empty());
    parser.on_end(log, nullptr);
    ASSERT_EQ(log.events.size(), 1U);
    EXPECT_EQ(log.events[0].name_view(), "cut.example");
}

TEST(TlsParserTest, HelloLargerThanBufferIsSearchedAsKept) {
    const Bytes stream = records(
            client_hello({padding_ext(1000), server_name_ext("big.example"), padding_ext(6000)}));
    TlsParser parser;
    EventLog log;
    parser.on_data(AppDir::ToServer, stream, log, nullptr);
    ASSERT_EQ(log.events.size(), 1U);
    EXPECT_EQ(log.events[0].name_view(), "big.example");
}

TEST(TlsParserTest, SniPastBufferIsNotFound) {
    const Bytes stream = records(client_hello({padding_ext(5000), server_name_ext("far.example")}));
    TlsParser parser;
    EventLog log;
    parser.on_data(AppDir::ToServer, stream, log, nullptr);
    ASSERT_EQ(log.events.size(), 1U);
    EXPECT_EQ(log.events[0].name_view(), "");
}

TEST(TlsParserTest, SniLengthPastExtensionIsRejected) {
    Bytes ext = server_name_ext("abc.example");
    ext[8] = 0x40;  // host name length 0x40xx, past the extension
    const Bytes stream = records(client_hello({ext}));
    TlsParser parser;
    EventLog log;
    parser.on_data(AppDir::ToServer, stream, log, nullptr);
    ASSERT_EQ(log.events.size(), 1U);
    EXPECT_EQ(log.events[0].name_view(), "");
}

TEST(TlsParserTest, ZeroLengthRecordIsMalformed) {
    const Bytes stream = {0x16, 0x03, 0x01, 0x00, 0x00};
    TlsParser parser;
    EventLog log;
    parser.on_data(AppDir::ToServer, stream, log, nullptr);
    EXPECT_TRUE(parser.done());
    EXPECT_TRUE(parser.malformed());
}

TEST(ClientHelloSniTest, FindsHostName) {
    const Bytes hs = client_hello({server_name_ext("direct.example")});
    std::string_view sni;
    ASSERT_TRUE(client_hello_sni(hs, sni));
    EXPECT_EQ(sni, "direct.example");
}

TEST(ClientHelloSniTest, RejectsCutBeforeExtensions) {
    const Bytes hs = client_hello({server_name_ext("direct.example")});
    std::string_view sni;
    EXPECT_FALSE(client_hello_sni({hs.data(), 40}, sni));
}

// Captures: the SNI of every client flow to port 443, in order of first appearance.
class TlsCaptureTest : public ::testing::Test {
protected:
    std::vector<std::string> snis(const std::string& relative) {
        std::vector<std::string> out;
        const std::filesystem::path path = test::shared_capture_dir() / relative;
        if (!std::filesystem::exists(path)) {
            if (test::shared_captures_required()) {
                ADD_FAILURE() << "EXFILTAP_REQUIRE_SHARED=1 but " << path << " is missing";
            }
            missing_ = true;
            return out;
        }
        std::vector<test::CaptureFlow> flows;
        std::string error;
        EXPECT_TRUE(test::read_capture_flows(path, flows, error)) << path << ": " << error;
        for (const test::CaptureFlow& flow : flows) {
            if (flow.proto != 6 || flow.server_port != 443) {
                continue;
            }
            TlsParser parser;
            EventLog log;
            for (const test::PayloadChunk& chunk : flow.chunks) {
                if (parser.done()) {
                    break;
                }
                parser.on_data(chunk.to_server ? AppDir::ToServer : AppDir::ToClient, chunk.bytes,
                        log, nullptr);
            }
            parser.on_end(log, nullptr);
            out.push_back(log.events.empty() ? "<none>" : std::string(log.events[0].name_view()));
        }
        return out;
    }

    bool missing_ = false;
};

TEST_F(TlsCaptureTest, SmallSessionSni) {
    const std::vector<std::string> got = snis("pcaps/zeek_tls-sni-small.pcap");
    if (missing_) {
        GTEST_SKIP() << "shared captures not found; set EXFILTAP_SHARED_DIR";
    }
    EXPECT_EQ(got, std::vector<std::string>{"ssl.gstatic.com"});
}

TEST_F(TlsCaptureTest, SignalFlowsSni) {
    const std::vector<std::string> got = snis("pcaps/ndpi_tls-upload-signal.pcap");
    if (missing_) {
        GTEST_SKIP() << "shared captures not found; set EXFILTAP_SHARED_DIR";
    }
    const std::vector<std::string> want = {
            "textsecure-service.whispersystems.org",
            "itunes.apple.com",
            "textsecure-service.whispersystems.org",
            "textsecure-service.whispersystems.org",
            "textsecure-service.whispersystems.org",
            "<none>",
            "<none>",
            "textsecure-service.whispersystems.org",
            "itunes.apple.com",
            "textsecure-service.whispersystems.org",
            "textsecure-service.whispersystems.org",
            "textsecure-service.whispersystems.org",
            "textsecure-service.whispersystems.org",
            "cdn.signal.org",
    };
    EXPECT_EQ(got, want);
}

}  // namespace
}  // namespace exfiltap::detectors
