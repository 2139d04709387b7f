#include "detectors/session_start_parser.h"

#include <string>
#include <string_view>
#include <vector>

#include <gtest/gtest.h>

#include "tests/unit/detectors/capture_payloads.h"

namespace exfiltap::detectors {
namespace {

class RecordingSink final : public AppEventSink {
public:
    void on_app_event(const AppEvent& event) noexcept override { events.push_back(event); }
    std::vector<AppEvent> events;
};

std::span<const uint8_t> bytes_of(std::string_view text) {
    return {reinterpret_cast<const uint8_t*>(text.data()), text.size()};
}

constexpr AppDir kC = AppDir::ToServer;
constexpr AppDir kS = AppDir::ToClient;

// The first bytes of a KEXINIT packet: length 0x634, padding 6, message 20.
const std::string kKexinit(
        "\x00\x00\x06\x34\x06\x14"
        "cookie",
        12);

// X.224 Connection Request with "Cookie: mstshash=NAME\r\n" and an RDP negotiation request.
std::string rdp_request(std::string_view cookie) {
    std::string variable = std::string(cookie) + std::string("\x01\x00\x08\x00\x03\x00\x00\x00", 8);
    std::string x224 = std::string(1, static_cast<char>(6 + variable.size()));
    x224 += std::string("\xe0\x00\x00\x00\x00\x00", 6) + variable;
    const size_t total = 4 + x224.size();
    std::string tpkt("\x03\x00", 2);
    tpkt += static_cast<char>(total >> 8);
    tpkt += static_cast<char>(total & 0xff);
    return tpkt + x224;
}

template <typename Parser>
std::vector<std::vector<AppEvent>> events_per_flow(
        const std::string& rel, uint16_t port, std::string& why, bool& ok) {
    std::vector<std::vector<AppEvent>> out;
    std::vector<test::CaptureFlow> flows;
    ok = test::read_capture_flows(test::shared_capture_dir() / rel, flows, why);
    for (const test::CaptureFlow& flow : flows) {
        if (flow.proto != 6 || flow.server_port != port) {
            continue;
        }
        Parser parser;
        RecordingSink sink;
        for (const test::PayloadChunk& chunk : flow.chunks) {
            if (parser.done()) {
                break;
            }
            parser.on_data(chunk.to_server ? kC : kS, chunk.bytes, sink, nullptr);
        }
        parser.on_end(sink, nullptr);
        out.push_back(sink.events);
    }
    return out;
}

#define SKIP_UNLESS_LOADED(ok, why)                                                    \
    if (!(ok)) {                                                                       \
        if (test::shared_captures_required()) {                                        \
            FAIL() << (why);                                                           \
        }                                                                              \
        GTEST_SKIP() << "shared capture not found (" << (why)                          \
                     << "); set EXFILTAP_SHARED_DIR to the shared folder to run this"; \
    }

TEST(SshParserTest, BannersAndKexinitGiveOneAttempt) {
    SshParser parser;
    RecordingSink sink;
    parser.on_data(kC, bytes_of("SSH-2.0-OpenSSH_8.7 extra words\r\n"), sink, nullptr);
    parser.on_data(kS, bytes_of("SSH-2.0-OpenSSH_9.0\r\n"), sink, nullptr);
    EXPECT_TRUE(sink.events.empty());
    parser.on_data(kC, bytes_of(kKexinit), sink, nullptr);
    ASSERT_EQ(sink.events.size(), 1U);
    EXPECT_EQ(sink.events[0].kind, AppEventKind::Login);
    EXPECT_EQ(sink.events[0].proto, AppProto::Ssh);
    EXPECT_EQ(sink.events[0].outcome, LoginOutcome::Attempt);
    EXPECT_EQ(sink.events[0].user_view(), "");
    EXPECT_EQ(sink.events[0].name_view(), "SSH-2.0-OpenSSH_8.7");
    EXPECT_TRUE(parser.done());
}

TEST(SshParserTest, ServerBannerMayComeLast) {
    SshParser parser;
    RecordingSink sink;
    parser.on_data(kC, bytes_of("SSH-2.0-PuTTY_Release_0.78\r\n" + kKexinit), sink, nullptr);
    EXPECT_TRUE(sink.events.empty());
    parser.on_data(kS, bytes_of("Hello there\r\nSSH-2.0-dropbear\r\n"), sink, nullptr);
    ASSERT_EQ(sink.events.size(), 1U);
    EXPECT_EQ(sink.events[0].name_view(), "SSH-2.0-PuTTY_Release_0.78");
}

TEST(SshParserTest, SplitsAtEveryByteGiveTheSameEvent) {
    const std::string client = "SSH-2.0-libssh_0.9.6\r\n" + kKexinit;
    const std::string server = "SSH-2.0-OpenSSH_8.9p1 Ubuntu-3\r\n";
    for (size_t split = 1; split < client.size(); ++split) {
        SshParser parser;
        RecordingSink sink;
        parser.on_data(kC, bytes_of(std::string_view(client).substr(0, split)), sink, nullptr);
        parser.on_data(kS, bytes_of(server), sink, nullptr);
        parser.on_data(kC, bytes_of(std::string_view(client).substr(split)), sink, nullptr);
        ASSERT_EQ(sink.events.size(), 1U) << "split at " << split;
        EXPECT_EQ(sink.events[0].name_view(), "SSH-2.0-libssh_0.9.6");
    }
}

TEST(SshParserTest, HttpClientGivesNothing) {
    SshParser parser;
    RecordingSink sink;
    parser.on_data(kS, bytes_of("SSH-2.0-OpenSSH_8.7\r\n"), sink, nullptr);
    parser.on_data(kC, bytes_of("GET / HTTP/1.1\r\nHost: x\r\n\r\n"), sink, nullptr);
    EXPECT_TRUE(sink.events.empty());
    EXPECT_TRUE(parser.done());
    EXPECT_TRUE(parser.gave_up());
}

TEST(SshParserTest, FirstPacketOtherThanKexinitGivesNothing) {
    SshParser parser;
    RecordingSink sink;
    parser.on_data(kS, bytes_of("SSH-2.0-x\r\n"), sink, nullptr);
    parser.on_data(kC, bytes_of("SSH-2.0-y\r\n"), sink, nullptr);
    parser.on_data(kC, bytes_of(std::string("\x00\x00\x00\x0c\x04\x15zzzzzz", 12)), sink, nullptr);
    EXPECT_TRUE(sink.events.empty());
    EXPECT_TRUE(parser.gave_up());
}

TEST(SshParserTest, SshVersionOneClientGivesNothing) {
    SshParser parser;
    RecordingSink sink;
    parser.on_data(kC, bytes_of("SSH-1.5-OldClient\r\n"), sink, nullptr);
    EXPECT_TRUE(parser.gave_up());
}

TEST(SshParserTest, OverlongBannerGivesNothing) {
    SshParser parser;
    RecordingSink sink;
    parser.on_data(kC, bytes_of("SSH-2.0-" + std::string(300, 'a') + "\r\n"), sink, nullptr);
    EXPECT_TRUE(parser.gave_up());
}

TEST(SshParserTest, GapBeforeKexinitGivesUp) {
    SshParser parser;
    RecordingSink sink;
    parser.on_data(kC, bytes_of("SSH-2.0-x\r\n"), sink, nullptr);
    parser.on_gap(kC);
    parser.on_data(kS, bytes_of("SSH-2.0-y\r\n"), sink, nullptr);
    parser.on_data(kC, bytes_of(kKexinit), sink, nullptr);
    EXPECT_TRUE(sink.events.empty());
    EXPECT_TRUE(parser.done());
}

TEST(SshParserTest, GuessingCaptureGivesOneEventPerConnection) {
    std::string why;
    bool ok = false;
    const auto flows = events_per_flow<SshParser>("pcaps/zeek_ssh-guessing.pcap", 22, why, ok);
    SKIP_UNLESS_LOADED(ok, why);
    ASSERT_EQ(flows.size(), 11U);
    for (const auto& events : flows) {
        ASSERT_EQ(events.size(), 1U);
        EXPECT_EQ(events[0].name_view(), "SSH-2.0-OpenSSH_6.2");
        EXPECT_EQ(events[0].outcome, LoginOutcome::Attempt);
    }
}

TEST(SshParserTest, HttpToSshPortCaptureGivesNothing) {
    std::string why;
    bool ok = false;
    const auto flows =
            events_per_flow<SshParser>("pcaps/zeek_http-to-ssh-port-usec.pcap", 22, why, ok);
    SKIP_UNLESS_LOADED(ok, why);
    ASSERT_EQ(flows.size(), 1U);
    EXPECT_TRUE(flows[0].empty());
}

TEST(RdpParserTest, CookieGivesAttemptWithUser) {
    RdpParser parser;
    RecordingSink sink;
    parser.on_data(kC, bytes_of(rdp_request("Cookie: mstshash=jdoe\r\n")), sink, nullptr);
    ASSERT_EQ(sink.events.size(), 1U);
    EXPECT_EQ(sink.events[0].kind, AppEventKind::Login);
    EXPECT_EQ(sink.events[0].proto, AppProto::Rdp);
    EXPECT_EQ(sink.events[0].outcome, LoginOutcome::Attempt);
    EXPECT_EQ(sink.events[0].user_view(), "jdoe");
    EXPECT_FALSE(sink.events[0].truncated);
    EXPECT_TRUE(parser.done());
}

TEST(RdpParserTest, RequestWithoutCookieGivesAttemptWithoutUser) {
    RdpParser parser;
    RecordingSink sink;
    parser.on_data(kC, bytes_of(rdp_request("")), sink, nullptr);
    ASSERT_EQ(sink.events.size(), 1U);
    EXPECT_EQ(sink.events[0].user_view(), "");
}

TEST(RdpParserTest, RoutingTokenIsNotAUser) {
    RdpParser parser;
    RecordingSink sink;
    parser.on_data(
            kC, bytes_of(rdp_request("Cookie: msts=3640205228.15629.0000\r\n")), sink, nullptr);
    ASSERT_EQ(sink.events.size(), 1U);
    EXPECT_EQ(sink.events[0].user_view(), "");
}

TEST(RdpParserTest, SplitsAtEveryByteGiveTheSameEvent) {
    const std::string pdu = rdp_request("Cookie: mstshash=ADMINISTRATOR\r\n");
    for (size_t split = 1; split < pdu.size(); ++split) {
        RdpParser parser;
        RecordingSink sink;
        parser.on_data(kC, bytes_of(std::string_view(pdu).substr(0, split)), sink, nullptr);
        parser.on_data(kC, bytes_of(std::string_view(pdu).substr(split)), sink, nullptr);
        ASSERT_EQ(sink.events.size(), 1U) << "split at " << split;
        EXPECT_EQ(sink.events[0].user_view(), "ADMINISTRATOR");
    }
}

TEST(RdpParserTest, NotTpktGivesNothing) {
    RdpParser parser;
    RecordingSink sink;
    parser.on_data(kC, bytes_of("GET / HTTP/1.1\r\n\r\n"), sink, nullptr);
    EXPECT_TRUE(sink.events.empty());
    EXPECT_TRUE(parser.gave_up());
}

TEST(RdpParserTest, TpktWithoutConnectionRequestGivesNothing) {
    RdpParser parser;
    RecordingSink sink;
    std::string pdu = rdp_request("Cookie: mstshash=x\r\n");
    pdu[5] = static_cast<char>(0xf0);  // X.224 Data, not CR
    parser.on_data(kC, bytes_of(pdu), sink, nullptr);
    EXPECT_TRUE(sink.events.empty());
    EXPECT_TRUE(parser.gave_up());
}

TEST(RdpParserTest, LongCookieIsCutAndFlagged) {
    RdpParser parser;
    RecordingSink sink;
    parser.on_data(kC, bytes_of(rdp_request("Cookie: mstshash=" + std::string(200, 'u') + "\r\n")),
            sink, nullptr);
    ASSERT_EQ(sink.events.size(), 1U);
    EXPECT_TRUE(sink.events[0].truncated);
    EXPECT_EQ(sink.events[0].user_view(), std::string(AppEvent::kUserCap - 1, 'u'));
}

TEST(RdpParserTest, ServerBytesAreIgnored) {
    RdpParser parser;
    RecordingSink sink;
    parser.on_data(kS, bytes_of("\x03\x00\x00\x13garbage"), sink, nullptr);
    EXPECT_FALSE(parser.done());
}

TEST(RdpParserTest, RdpToTlsCaptureGivesUserOnBothConnections) {
    std::string why;
    bool ok = false;
    const auto flows = events_per_flow<RdpParser>("pcaps/zeek_rdp-to-tls.pcap", 3389, why, ok);
    SKIP_UNLESS_LOADED(ok, why);
    ASSERT_EQ(flows.size(), 2U);
    for (const auto& events : flows) {
        ASSERT_EQ(events.size(), 1U);
        EXPECT_EQ(events[0].user_view(), "AWAKECODI");
        EXPECT_EQ(events[0].outcome, LoginOutcome::Attempt);
    }
}

}  // namespace
}  // namespace exfiltap::detectors
