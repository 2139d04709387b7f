#include "detectors/ftp_parser.h"

#include <array>
#include <cstdint>
#include <map>
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

// A scripted session: each step is one direction's bytes.
struct Step {
    AppDir dir;
    std::string_view text;
};

std::vector<AppEvent> run(const std::vector<Step>& steps, bool end = true) {
    FtpParser parser;
    RecordingSink sink;
    for (const Step& step : steps) {
        parser.on_data(step.dir, bytes_of(step.text), sink, nullptr);
    }
    if (end) {
        parser.on_end(sink, nullptr);
    }
    return sink.events;
}

constexpr AppDir kC = AppDir::ToServer;
constexpr AppDir kS = AppDir::ToClient;

std::vector<AppEvent> of_kind(const std::vector<AppEvent>& events, AppEventKind kind) {
    std::vector<AppEvent> out;
    for (const AppEvent& event : events) {
        if (event.kind == kind) {
            out.push_back(event);
        }
    }
    return out;
}

// The events of each FTP control flow (server port 21) of a shared capture, in flow order.
struct FlowEvents {
    test::CaptureFlow flow;
    std::vector<AppEvent> events;
};

bool load_control_flows(const std::string& rel, std::vector<FlowEvents>& out, std::string& why) {
    const std::filesystem::path path = test::shared_capture_dir() / rel;
    std::vector<test::CaptureFlow> flows;
    if (!test::read_capture_flows(path, flows, why)) {
        why = path.string() + ": " + why;
        return false;
    }
    for (const test::CaptureFlow& flow : flows) {
        if (flow.proto != 6 || flow.server_port != 21) {
            continue;
        }
        FtpParser parser;
        RecordingSink sink;
        for (const test::PayloadChunk& chunk : flow.chunks) {
            parser.on_data(chunk.to_server ? kC : kS, chunk.bytes, sink, nullptr);
        }
        parser.on_end(sink, nullptr);
        out.push_back({flow, sink.events});
    }
    return true;
}

#define LOAD_OR_SKIP(rel, flows)                                                           \
    std::vector<FlowEvents> flows;                                                         \
    {                                                                                      \
        std::string why;                                                                   \
        if (!load_control_flows(rel, flows, why)) {                                        \
            if (test::shared_captures_required()) {                                        \
                FAIL() << why;                                                             \
            }                                                                              \
            GTEST_SKIP() << "shared capture not found (" << why                            \
                         << "); set EXFILTAP_SHARED_DIR to the shared folder to run this"; \
        }                                                                                  \
    }

TEST(FtpParserTest, ReportsSuccessfulLoginWithUser) {
    const auto events = run({{kC, "USER alice\r\n"}, {kS, "331 Password please\r\n"},
            {kC, "PASS s3cret\r\n"}, {kS, "230 Login successful.\r\n"}});
    ASSERT_EQ(events.size(), 1U);
    EXPECT_EQ(events[0].kind, AppEventKind::Login);
    EXPECT_EQ(events[0].proto, AppProto::Ftp);
    EXPECT_EQ(events[0].outcome, LoginOutcome::Success);
    EXPECT_EQ(events[0].user_view(), "alice");
}

TEST(FtpParserTest, ReportsFailedLogin) {
    const auto events = run({{kC, "USER bob\r\n"}, {kS, "331 Password required\r\n"},
            {kC, "PASS nope\r\n"}, {kS, "530 Login incorrect.\r\n"}});
    ASSERT_EQ(events.size(), 1U);
    EXPECT_EQ(events[0].outcome, LoginOutcome::Failure);
    EXPECT_EQ(events[0].user_view(), "bob");
}

TEST(FtpParserTest, UserRejectedWithoutPasswordIsFailure) {
    const auto events = run({{kC, "USER root\r\n"}, {kS, "530 Not allowed\r\n"}});
    ASSERT_EQ(events.size(), 1U);
    EXPECT_EQ(events[0].outcome, LoginOutcome::Failure);
    EXPECT_EQ(events[0].user_view(), "root");
}

// Found by the fuzzer under UBSan: a command without an argument copied from an empty view
// whose pointer is null (memcpy must not be given one; the unit suite runs under UBSan in CI).
TEST(FtpParserTest, CommandsWithoutAnArgument) {
    const auto login = run({{kC, "USER\r\n"}, {kS, "530 Not allowed\r\n"}});
    ASSERT_EQ(login.size(), 1U);
    EXPECT_EQ(login[0].outcome, LoginOutcome::Failure);
    EXPECT_EQ(login[0].user_view(), "");
    const auto store = run({{kC, "STOR\r\n"}, {kS, "150 Ok\r\n"}, {kS, "226 Done\r\n"}});
    for (const AppEvent& event : store) {
        EXPECT_EQ(event.name_view(), "") << static_cast<int>(event.kind);
    }
}

TEST(FtpParserTest, CommandsAreCaseInsensitive) {
    const auto events =
            run({{kC, "user Carol\r\n"}, {kS, "331 ok\r\n"}, {kC, "pAsS x\r\n"}, {kS, "230 ok\r\n"},
                    {kC, "stor Report.TXT\r\n"}, {kS, "150 go\r\n"}, {kS, "226 done\r\n"}});
    ASSERT_EQ(events.size(), 3U);
    EXPECT_EQ(events[0].user_view(), "Carol");
    EXPECT_EQ(events[2].kind, AppEventKind::FileTransfer);
    EXPECT_EQ(events[2].name_view(), "Report.TXT");
    EXPECT_TRUE(events[2].upload);
}

TEST(FtpParserTest, MultiLineReplyCountsOnce) {
    const auto events = run({{kC, "USER anonymous\r\n"}, {kS, "331 Guest ok\r\n"},
            {kC, "PASS guest\r\n"},
            {kS, "230-Welcome\r\n230-  more text\r\n530 inside the text\r\n  free text\r\n"},
            {kS, "230 Guest login ok.\r\n"}});
    ASSERT_EQ(events.size(), 1U);
    EXPECT_EQ(events[0].outcome, LoginOutcome::Success);
    EXPECT_EQ(events[0].user_view(), "anonymous");
}

TEST(FtpParserTest, NeverReportsThePassword) {
    const auto events = run({{kC, "USER dave\r\nPASS Hunter2Secret\r\n"},
            {kS, "331 ok\r\n530 no\r\n"}, {kC, "PASS Hunter2Secret\r\n"}});
    for (const AppEvent& event : events) {
        const std::string all = std::string(event.user_view()) + std::string(event.name_view())
                + std::string(event.host_view()) + std::string(event.method_view());
        EXPECT_EQ(all.find("Hunter2"), std::string::npos);
    }
    ASSERT_EQ(events.size(), 2U);
    EXPECT_EQ(events[0].outcome, LoginOutcome::Failure);
    EXPECT_EQ(events[1].outcome, LoginOutcome::Attempt);  // the second PASS was not answered
}

// Break-test regression: "USER name password" must not carry the password into the event.
TEST(FtpParserTest, UserWithSeveralWordsReportsOnlyTheFirst) {
    const auto events =
            run({{kS, "220 hi\r\n"}, {kC, "USER alice PWXftpuserpw0\r\n"}, {kS, "530 no\r\n"}});
    ASSERT_EQ(events.size(), 1U);
    EXPECT_EQ(events[0].kind, AppEventKind::Login);
    EXPECT_EQ(events[0].outcome, LoginOutcome::Failure);
    EXPECT_EQ(events[0].user_view(), "alice");
    EXPECT_FALSE(events[0].truncated);
    for (const AppEvent& event : events) {
        const std::string_view raw(reinterpret_cast<const char*>(&event), sizeof(AppEvent));
        EXPECT_EQ(raw.find("PWX"), std::string_view::npos);
    }
}

TEST(FtpParserTest, UnansweredPassAtEndIsAttempt) {
    const auto events = run({{kC, "USER erin\r\n"}, {kS, "331 ok\r\n"}, {kC, "PASS x\r\n"}});
    ASSERT_EQ(events.size(), 1U);
    EXPECT_EQ(events[0].outcome, LoginOutcome::Attempt);
    EXPECT_EQ(events[0].user_view(), "erin");
}

TEST(FtpParserTest, PasvReplyAnnouncesServerChannel) {
    const auto events =
            run({{kC, "PASV\r\n"}, {kS, "227 Entering Passive Mode (10,1,2,3,200,21).\r\n"}});
    ASSERT_EQ(events.size(), 1U);
    EXPECT_EQ(events[0].kind, AppEventKind::FtpDataChannel);
    EXPECT_EQ(events[0].data_addr_len, 4);
    EXPECT_EQ(events[0].data_addr[0], 10);
    EXPECT_EQ(events[0].data_addr[3], 3);
    EXPECT_EQ(events[0].data_port, 200 * 256 + 21);
    EXPECT_FALSE(events[0].upload);
}

TEST(FtpParserTest, PasvReplyWithoutParenthesesParses) {
    const auto events = run({{kS, "227 Passive 192,168,1,9,4,1\r\n"}});
    ASSERT_EQ(events.size(), 1U);
    EXPECT_EQ(events[0].data_addr[0], 192);
    EXPECT_EQ(events[0].data_port, 1025);
}

TEST(FtpParserTest, EpsvReplyLeavesAddressToTheControlFlow) {
    const auto events = run({{kS, "229 Entering Extended Passive Mode (|||6446|)\r\n"}});
    ASSERT_EQ(events.size(), 1U);
    EXPECT_EQ(events[0].kind, AppEventKind::FtpDataChannel);
    EXPECT_EQ(events[0].data_addr_len, 0);
    EXPECT_EQ(events[0].data_port, 6446);
}

TEST(FtpParserTest, PortCommandAnnouncesClientChannel) {
    const auto events = run({{kC, "PORT 192,168,100,16,225,229\r\n"}});
    ASSERT_EQ(events.size(), 1U);
    EXPECT_EQ(events[0].data_addr_len, 4);
    EXPECT_EQ(events[0].data_addr[0], 192);
    EXPECT_EQ(events[0].data_addr[3], 16);
    EXPECT_EQ(events[0].data_port, 225 * 256 + 229);
}

TEST(FtpParserTest, EprtIpv4Parses) {
    const auto events = run({{kC, "EPRT |1|132.235.1.2|6275|\r\n"}});
    ASSERT_EQ(events.size(), 1U);
    EXPECT_EQ(events[0].data_addr_len, 4);
    EXPECT_EQ(events[0].data_addr[0], 132);
    EXPECT_EQ(events[0].data_addr[3], 2);
    EXPECT_EQ(events[0].data_port, 6275);
}

TEST(FtpParserTest, EprtIpv6CompressedParses) {
    const auto events = run({{kC, "EPRT !2!fe80::1:2!5282!\r\n"}});
    ASSERT_EQ(events.size(), 1U);
    EXPECT_EQ(events[0].data_addr_len, 16);
    const std::array<uint8_t, 16> want{0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 2};
    EXPECT_EQ(events[0].data_addr, want);
    EXPECT_EQ(events[0].data_port, 5282);
}

TEST(FtpParserTest, MalformedChannelsAreCountedNotReported) {
    FtpParser parser;
    RecordingSink sink;
    parser.on_data(kC,
            bytes_of("PORT 1,2,3\r\nPORT 1,2,3,4,5,666\r\nEPRT |2|1::2::3|80|\r\n"
                     "EPRT |1|1.2.3.4|70000|\r\n"),
            sink, nullptr);
    parser.on_data(kS, bytes_of("227 nothing here\r\n229 (|x|5|)\r\n"), sink, nullptr);
    EXPECT_TRUE(sink.events.empty());
    EXPECT_EQ(parser.malformed(), 6U);
}

TEST(FtpParserTest, RetrReportsStatedSize) {
    const auto events = run({{kC, "RETR big.iso\r\n"},
            {kS, "150 Opening BINARY mode data connection for big.iso (4294967302 bytes).\r\n"},
            {kS, "226 Transfer complete.\r\n"}});
    ASSERT_EQ(events.size(), 2U);
    EXPECT_FALSE(events[0].final);
    EXPECT_TRUE(events[1].final);
    EXPECT_FALSE(events[1].upload);
    EXPECT_EQ(events[1].name_view(), "big.iso");
    EXPECT_EQ(events[1].bytes, 4294967302ULL);
}

TEST(FtpParserTest, ErrorReplyCancelsTransfer) {
    const auto events =
            run({{kC, "STOR x.bin\r\n"}, {kS, "553 Not allowed\r\n"}, {kC, "RETR y.bin\r\n"},
                    {kS, "150 ok\r\n"}, {kS, "426 Connection closed\r\n"}, {kS, "226 stray\r\n"}});
    ASSERT_EQ(events.size(), 1U);  // only y.bin's acceptance
    EXPECT_EQ(events[0].name_view(), "y.bin");
    EXPECT_FALSE(events[0].final);
}

TEST(FtpParserTest, ListingRepliesDoNotCompleteTransfers) {
    const auto events = run({{kC, "NLST\r\n"}, {kS, "150 listing\r\n226 done\r\n"}});
    EXPECT_TRUE(events.empty());
}

TEST(FtpParserTest, AcceptedTransferEndsWithFlow) {
    const auto events = run({{kC, "APPE log.txt\r\n"}, {kS, "150 ok\r\n"}});
    ASSERT_EQ(events.size(), 2U);
    EXPECT_TRUE(events[1].final);
    EXPECT_TRUE(events[1].upload);
    EXPECT_EQ(events[1].name_view(), "log.txt");
}

TEST(FtpParserTest, AuthTlsAcceptedIsDone) {
    FtpParser parser;
    RecordingSink sink;
    parser.on_data(kC, bytes_of("AUTH TLS\r\n"), sink, nullptr);
    EXPECT_FALSE(parser.done());
    parser.on_data(kS, bytes_of("234 Proceed with negotiation.\r\n"), sink, nullptr);
    EXPECT_TRUE(parser.done());
}

TEST(FtpParserTest, AuthRejectedIsNotDone) {
    FtpParser parser;
    RecordingSink sink;
    parser.on_data(kC, bytes_of("AUTH SSL\r\n"), sink, nullptr);
    parser.on_data(kS, bytes_of("504 Unknown\r\n234 stray\r\n"), sink, nullptr);
    EXPECT_FALSE(parser.done());
}

TEST(FtpParserTest, LongLineIsCountedAndNextLineParses) {
    FtpParser parser;
    RecordingSink sink;
    const std::string stor = "STOR " + std::string(700, 'n') + "\r\nRETR short\r\n";
    parser.on_data(kC, bytes_of(stor), sink, nullptr);
    parser.on_data(kS, bytes_of("150 ok\r\n226 ok\r\n"), sink, nullptr);
    EXPECT_EQ(parser.lines_cut(), 1U);
    ASSERT_EQ(sink.events.size(), 2U);  // the cut STOR was replaced by the RETR
    EXPECT_EQ(sink.events[1].name_view(), "short");
}

TEST(FtpParserTest, LongFileNameIsCutToFieldCapacity) {
    const std::string stor = "STOR " + std::string(400, 'n') + "\r\n";
    const auto events = run({{kC, stor}, {kS, "150 ok\r\n226 ok\r\n"}});
    ASSERT_EQ(events.size(), 2U);
    EXPECT_TRUE(events[1].truncated);
    EXPECT_EQ(events[1].name_view(), std::string(AppEvent::kNameCap - 1, 'n'));
}

TEST(FtpParserTest, GapDropsPartialLineAndResyncs) {
    FtpParser parser;
    RecordingSink sink;
    parser.on_data(kC, bytes_of("USER mal"), sink, nullptr);
    parser.on_gap(kC);
    parser.on_data(kC, bytes_of("lory\r\nUSER frank\r\n"), sink, nullptr);
    parser.on_data(kS, bytes_of("230 ok\r\n"), sink, nullptr);
    ASSERT_EQ(sink.events.size(), 1U);
    EXPECT_EQ(sink.events[0].user_view(), "frank");
}

TEST(FtpParserTest, SplitsAtEveryByteGiveSameEvents) {
    const std::string client = "USER gina\r\nPASS pw\r\nPASV\r\nSTOR a.txt\r\n";
    const std::string server =
            "220 hi\r\n331 pw\r\n230-ok\r\n 230 no\r\n230 ok\r\n"
            "227 Entering Passive Mode (1,2,3,4,5,6)\r\n"
            "150 Ok (12 bytes)\r\n226 done\r\n";
    const std::vector<AppEvent> whole = run({{kC, client}, {kS, server}});
    ASSERT_EQ(whole.size(), 4U);
    for (size_t split = 1; split < server.size(); ++split) {
        FtpParser parser;
        RecordingSink sink;
        for (size_t i = 0; i < client.size(); ++i) {
            parser.on_data(kC, bytes_of(std::string_view(client).substr(i, 1)), sink, nullptr);
        }
        parser.on_data(kS, bytes_of(std::string_view(server).substr(0, split)), sink, nullptr);
        parser.on_data(kS, bytes_of(std::string_view(server).substr(split)), sink, nullptr);
        parser.on_end(sink, nullptr);
        ASSERT_EQ(sink.events.size(), whole.size()) << "split at " << split;
        for (size_t i = 0; i < whole.size(); ++i) {
            EXPECT_EQ(sink.events[i].kind, whole[i].kind);
            EXPECT_EQ(sink.events[i].name_view(), whole[i].name_view());
            EXPECT_EQ(sink.events[i].bytes, whole[i].bytes);
            EXPECT_EQ(sink.events[i].data_port, whole[i].data_port);
        }
    }
    EXPECT_EQ(whole[3].bytes, 12U);
}

TEST(FtpParserTest, PassiveUploadCapture) {
    LOAD_OR_SKIP("pcaps/sv_ftp-upload-passive.pcap", flows);
    ASSERT_EQ(flows.size(), 1U);
    const auto& events = flows[0].events;
    const auto logins = of_kind(events, AppEventKind::Login);
    ASSERT_EQ(logins.size(), 1U);
    EXPECT_EQ(logins[0].user_view(), "alice");
    EXPECT_EQ(logins[0].outcome, LoginOutcome::Success);
    const auto channels = of_kind(events, AppEventKind::FtpDataChannel);
    ASSERT_EQ(channels.size(), 3U);
    const std::array<uint8_t, 4> server{172, 23, 0, 2};
    for (const AppEvent& channel : channels) {
        EXPECT_EQ(channel.data_addr_len, 4);
        EXPECT_TRUE(std::equal(server.begin(), server.end(), channel.data_addr.begin()));
    }
    EXPECT_EQ(channels[0].data_port, 21003);
    EXPECT_EQ(channels[1].data_port, 21003);
    EXPECT_EQ(channels[2].data_port, 21001);
    const auto transfers = of_kind(events, AppEventKind::FileTransfer);
    ASSERT_EQ(transfers.size(), 2U);
    EXPECT_EQ(transfers[0].name_view(), "index.html");
    EXPECT_FALSE(transfers[0].final);
    EXPECT_EQ(transfers[1].name_view(), "index.html");
    EXPECT_TRUE(transfers[1].final);
    EXPECT_TRUE(transfers[1].upload);
    EXPECT_EQ(transfers[1].bytes, 0U);
}

TEST(FtpParserTest, ActiveCaptureReportsTransfersInOrder) {
    LOAD_OR_SKIP("pcaps/sv_ftp-active-stor-exe-pdf.pcap", flows);
    ASSERT_EQ(flows.size(), 1U);
    const auto& events = flows[0].events;
    const auto logins = of_kind(events, AppEventKind::Login);
    ASSERT_EQ(logins.size(), 1U);
    EXPECT_EQ(logins[0].user_view(), "anonymous");
    EXPECT_EQ(logins[0].outcome, LoginOutcome::Success);
    const auto channels = of_kind(events, AppEventKind::FtpDataChannel);
    const std::array<uint16_t, 4> ports{
            225 * 256 + 229, 191 * 256 + 6, 167 * 256 + 235, 204 * 256 + 183};
    ASSERT_EQ(channels.size(), ports.size());
    for (size_t i = 0; i < ports.size(); ++i) {
        EXPECT_EQ(channels[i].data_port, ports[i]);
        EXPECT_EQ(channels[i].data_addr[0], 192);
        EXPECT_EQ(channels[i].data_addr[3], 16);
    }
    std::vector<AppEvent> finals;
    for (const AppEvent& event : of_kind(events, AppEventKind::FileTransfer)) {
        if (event.final) {
            finals.push_back(event);
        }
    }
    ASSERT_EQ(finals.size(), 4U);
    EXPECT_EQ(finals[0].name_view(), "notepad.exe");
    EXPECT_TRUE(finals[0].upload);
    EXPECT_EQ(finals[1].name_view(), "notepad.exe");
    EXPECT_FALSE(finals[1].upload);
    EXPECT_EQ(finals[1].bytes, 69120U);
    EXPECT_EQ(finals[2].name_view(), "test.pdf");
    EXPECT_TRUE(finals[2].upload);
    EXPECT_EQ(finals[3].name_view(), "test.pdf");
    EXPECT_FALSE(finals[3].upload);
    EXPECT_EQ(finals[3].bytes, 118196U);
}

TEST(FtpParserTest, BruteforceCaptureGivesOneFailurePerConnection) {
    LOAD_OR_SKIP("pcaps/zeek_ftp-bruteforce.pcap", flows);
    ASSERT_EQ(flows.size(), 30U);
    for (const FlowEvents& flow : flows) {
        ASSERT_EQ(flow.events.size(), 1U);
        EXPECT_EQ(flow.events[0].kind, AppEventKind::Login);
        EXPECT_EQ(flow.events[0].outcome, LoginOutcome::Failure);
        EXPECT_EQ(flow.events[0].user_view(), "bro");
    }
}

TEST(FtpParserTest, Ipv6CaptureFollowsEpsvAndEprt) {
    LOAD_OR_SKIP("pcaps/zeek_ftp-ipv6.pcap", flows);
    ASSERT_EQ(flows.size(), 1U);
    const auto& events = flows[0].events;
    const auto logins = of_kind(events, AppEventKind::Login);
    ASSERT_EQ(logins.size(), 1U);
    EXPECT_EQ(logins[0].user_view(), "anonymous");
    EXPECT_EQ(logins[0].outcome, LoginOutcome::Success);
    const auto channels = of_kind(events, AppEventKind::FtpDataChannel);
    ASSERT_EQ(channels.size(), 5U);
    const std::array<uint16_t, 5> ports{57086, 57087, 57088, 49189, 49190};
    for (size_t i = 0; i < ports.size(); ++i) {
        EXPECT_EQ(channels[i].data_port, ports[i]);
        EXPECT_EQ(channels[i].data_addr_len, i < 3 ? 0 : 16);
    }
    // EPRT names the client's address.
    EXPECT_EQ(channels[3].data_addr, flows[0].flow.client);
    const auto transfers = of_kind(events, AppEventKind::FileTransfer);
    ASSERT_EQ(transfers.size(), 4U);
    for (const AppEvent& transfer : transfers) {
        EXPECT_EQ(transfer.name_view(), "robots.txt");
        EXPECT_FALSE(transfer.upload);
        EXPECT_EQ(transfer.bytes, 77U);
    }
    EXPECT_TRUE(transfers[1].final);
    EXPECT_TRUE(transfers[3].final);
}

TEST(FtpParserTest, GuessingCaseMatchesExpectedCounts) {
    LOAD_OR_SKIP("cases/c22a_ftp_guessing_external.pcap", flows);
    std::map<std::string, int> failures;
    std::vector<std::string> successes;
    for (const FlowEvents& flow : flows) {
        const auto& c = flow.flow.client;
        const std::string src = std::to_string(c[0]) + "." + std::to_string(c[1]) + "."
                + std::to_string(c[2]) + "." + std::to_string(c[3]);
        for (const AppEvent& event : of_kind(flow.events, AppEventKind::Login)) {
            EXPECT_EQ(event.user_view(), "admin");
            if (event.outcome == LoginOutcome::Failure) {
                ++failures[src];
            } else if (event.outcome == LoginOutcome::Success) {
                successes.push_back(src);
            }
        }
    }
    const std::map<std::string, int> want{
            {"203.0.113.10", 4}, {"203.0.113.11", 3}, {"203.0.113.12", 3}};
    EXPECT_EQ(failures, want);
    EXPECT_EQ(successes, std::vector<std::string>{"203.0.113.12"});
}

}  // namespace
}  // namespace exfiltap::detectors
