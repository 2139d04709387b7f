#include "detectors/smtp_parser.h"

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <gtest/gtest.h>

#include "tests/unit/detectors/capture_payloads.h"

namespace exfiltap::detectors {
namespace {

namespace fs = std::filesystem;

static_assert(sizeof(SmtpParser) <= 4096);

class EventRecorder final : public AppEventSink {
public:
    void on_app_event(const AppEvent& event) noexcept override { events.push_back(event); }

    std::vector<AppEvent> of(AppEventKind kind) const {
        std::vector<AppEvent> out;
        for (const AppEvent& e : events) {
            if (e.kind == kind) {
                out.push_back(e);
            }
        }
        return out;
    }

    std::vector<AppEvent> events;
};

class ObjectRecorder final : public ObjectSink {
public:
    void object_begin(ObjectKind kind, AppDir dir) noexcept override {
        EXPECT_FALSE(open) << "objects must not nest";
        EXPECT_EQ(kind, ObjectKind::MimePart);
        EXPECT_EQ(dir, AppDir::ToServer);
        objects.emplace_back();
        open = true;
    }
    void object_data(std::span<const uint8_t> data) noexcept override {
        EXPECT_TRUE(open);
        objects.back().append(reinterpret_cast<const char*>(data.data()), data.size());
    }
    void object_end() noexcept override {
        EXPECT_TRUE(open);
        open = false;
    }

    std::vector<std::string> objects;
    bool open = false;
};

std::span<const uint8_t> bytes(std::string_view s) {
    return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

// A conversation: client and server turns in order.
struct Turn {
    AppDir dir;
    std::string_view text;
};

struct Result {
    std::vector<AppEvent> events;
    std::vector<std::string> objects;
    bool done = false;
    uint32_t rejected = 0;
};

Result run(const std::vector<Turn>& turns, size_t piece = 0) {
    auto parser = std::make_unique<SmtpParser>();
    EventRecorder events;
    ObjectRecorder objects;
    for (const Turn& t : turns) {
        const size_t step = piece == 0 ? t.text.size() + 1 : piece;
        for (size_t at = 0; at < t.text.size(); at += step) {
            parser->on_data(t.dir, bytes(t.text.substr(at, step)), events, &objects);
        }
    }
    parser->on_end(events, &objects);
    EXPECT_FALSE(objects.open);
    return {events.events, objects.objects, parser->done(), parser->messages_rejected()};
}

constexpr AppDir kC = AppDir::ToServer;
constexpr AppDir kS = AppDir::ToClient;

// --- captures --------------------------------------------------------------------------------

fs::path shared_dir() {
    if (const char* env = std::getenv("EXFILTAP_SHARED_DIR"); env != nullptr && *env != '\0') {
        return env;
    }
    return fs::path(EXFILTAP_SOURCE_ROOT) / ".." / "shared";
}

bool shared_required() {
    const char* env = std::getenv("EXFILTAP_REQUIRE_SHARED");
    return env != nullptr && std::string(env) == "1";
}

#define LOAD_FLOWS_OR_SKIP(flows, rel)                                          \
    std::vector<test::CaptureFlow> flows;                                       \
    {                                                                           \
        const fs::path path = shared_dir() / (rel);                             \
        if (!fs::exists(path)) {                                                \
            if (shared_required()) {                                            \
                FAIL() << "missing " << path << " (EXFILTAP_REQUIRE_SHARED=1)"; \
            }                                                                   \
            GTEST_SKIP() << "shared capture not found: " << path                \
                         << " (set EXFILTAP_SHARED_DIR to the shared folder)";  \
        }                                                                       \
        std::string error;                                                      \
        ASSERT_TRUE(test::read_capture_flows(path, flows, error)) << error;     \
    }

// Feeds one TCP flow in capture order; piece > 0 cuts every chunk into pieces of that size.
Result run_flow(const test::CaptureFlow& flow, size_t piece = 0) {
    auto parser = std::make_unique<SmtpParser>();
    EventRecorder events;
    ObjectRecorder objects;
    for (const test::PayloadChunk& chunk : flow.chunks) {
        const AppDir dir = chunk.to_server ? AppDir::ToServer : AppDir::ToClient;
        const size_t step = piece == 0 ? chunk.bytes.size() : piece;
        for (size_t at = 0; at < chunk.bytes.size(); at += step) {
            const size_t n = std::min(step, chunk.bytes.size() - at);
            parser->on_data(dir, {chunk.bytes.data() + at, n}, events, &objects);
        }
    }
    parser->on_end(events, &objects);
    EXPECT_FALSE(objects.open);
    return {events.events, objects.objects, parser->done(), parser->messages_rejected()};
}

std::vector<AppEvent> of(const Result& r, AppEventKind kind) {
    std::vector<AppEvent> out;
    for (const AppEvent& e : r.events) {
        if (e.kind == kind) {
            out.push_back(e);
        }
    }
    return out;
}

constexpr std::string_view kZipName =
        "smtptest-2021-02-25T13-54-22Z-aefb2fc1308d62f4b6c74769f69b13"
        "ddf80e995fd98ae442f3be499ea928c67f..zip";

TEST(SmtpParserCaptureTest, ZipAttachmentMessage) {
    LOAD_FLOWS_OR_SKIP(flows, "pcaps/sv_smtp-zip-attachment.pcap");
    ASSERT_EQ(flows.size(), 1U);
    const Result r = run_flow(flows[0]);
    const auto mails = of(r, AppEventKind::MailMessage);
    ASSERT_EQ(mails.size(), 1U);
    EXPECT_EQ(mails[0].proto, AppProto::Smtp);
    EXPECT_EQ(mails[0].user_view(), "int@smtp.lab.com");
    EXPECT_EQ(mails[0].name_view(), "test@gw.com");
    EXPECT_EQ(mails[0].count, 1U);
    EXPECT_EQ(mails[0].attachments, 1U);
    EXPECT_EQ(mails[0].attachment_bytes, 51675U);
    EXPECT_EQ(mails[0].bytes, 71497U);
    EXPECT_EQ(mails[0].host_view(), kZipName.substr(0, AppEvent::kHostCap - 1));
    EXPECT_TRUE(mails[0].final);
}

TEST(SmtpParserCaptureTest, ZipAttachmentFileTransfer) {
    LOAD_FLOWS_OR_SKIP(flows, "pcaps/sv_smtp-zip-attachment.pcap");
    const Result r = run_flow(flows.at(0));
    const auto files = of(r, AppEventKind::FileTransfer);
    ASSERT_EQ(files.size(), 1U);
    EXPECT_EQ(files[0].proto, AppProto::Smtp);
    EXPECT_TRUE(files[0].upload);
    EXPECT_EQ(files[0].name_view(), kZipName);
    EXPECT_EQ(files[0].bytes, 51675U);
}

TEST(SmtpParserCaptureTest, ZipAttachmentDecodedToObjectSink) {
    LOAD_FLOWS_OR_SKIP(flows, "pcaps/sv_smtp-zip-attachment.pcap");
    const Result r = run_flow(flows.at(0));
    // The inline text part is identity-encoded and no attachment: only the zip is an object.
    ASSERT_EQ(r.objects.size(), 1U);
    ASSERT_EQ(r.objects[0].size(), 51675U);
    EXPECT_EQ(r.objects[0].substr(0, 4), std::string("PK\x03\x04", 4));
}

TEST(SmtpParserCaptureTest, ZipAttachmentSameResultFedByteByByte) {
    LOAD_FLOWS_OR_SKIP(flows, "pcaps/sv_smtp-zip-attachment.pcap");
    const Result whole = run_flow(flows.at(0));
    for (const size_t piece : {1U, 2U, 3U, 7U, 64U, 1000U}) {
        const Result r = run_flow(flows.at(0), piece);
        ASSERT_EQ(r.events.size(), whole.events.size()) << "piece " << piece;
        for (size_t i = 0; i < r.events.size(); ++i) {
            EXPECT_EQ(std::memcmp(&r.events[i], &whole.events[i], sizeof(AppEvent)), 0)
                    << "piece " << piece << " event " << i;
        }
        EXPECT_EQ(r.objects, whole.objects) << "piece " << piece;
    }
}

TEST(SmtpParserCaptureTest, TextAttachment) {
    LOAD_FLOWS_OR_SKIP(flows, "pcaps/sv_smtp-text-attachment.pcap");
    ASSERT_EQ(flows.size(), 1U);
    const Result r = run_flow(flows[0]);
    const auto mails = of(r, AppEventKind::MailMessage);
    ASSERT_EQ(mails.size(), 1U);
    EXPECT_EQ(mails[0].user_view(), "sender@example.com");
    EXPECT_EQ(mails[0].name_view(), "recipient@example.com");
    EXPECT_EQ(mails[0].attachments, 1U);
    EXPECT_EQ(mails[0].attachment_bytes, 16384U);
    EXPECT_EQ(mails[0].bytes, 17219U);
    EXPECT_EQ(mails[0].host_view(), "J.txt");
    const auto files = of(r, AppEventKind::FileTransfer);
    ASSERT_EQ(files.size(), 1U);
    EXPECT_EQ(files[0].name_view(), "J.txt");
    EXPECT_EQ(files[0].bytes, 16384U);
    // The 8bit attachment is an object; the 8bit text part is not.
    ASSERT_EQ(r.objects.size(), 1U);
    EXPECT_EQ(r.objects[0].size(), 16384U);
    EXPECT_EQ(r.objects[0].substr(0, 8), "if was! ");
}

TEST(SmtpParserCaptureTest, TextAttachmentSameResultFedByteByByte) {
    LOAD_FLOWS_OR_SKIP(flows, "pcaps/sv_smtp-text-attachment.pcap");
    const Result whole = run_flow(flows.at(0));
    const Result bytewise = run_flow(flows.at(0), 1);
    ASSERT_EQ(bytewise.events.size(), whole.events.size());
    for (size_t i = 0; i < whole.events.size(); ++i) {
        EXPECT_EQ(std::memcmp(&bytewise.events[i], &whole.events[i], sizeof(AppEvent)), 0);
    }
    EXPECT_EQ(bytewise.objects, whole.objects);
}

TEST(SmtpParserCaptureTest, LowerCaseVerbsOverIpv6WithoutReplies) {
    LOAD_FLOWS_OR_SKIP(flows, "pcaps/zeek_smtp-attachment-msg-ipv6.pcap");
    ASSERT_EQ(flows.size(), 1U);
    EXPECT_EQ(flows[0].ip_version, 6);
    const Result r = run_flow(flows[0]);
    // The capture holds the client's side only: the message is reported when the flow ends.
    const auto mails = of(r, AppEventKind::MailMessage);
    ASSERT_EQ(mails.size(), 1U);
    EXPECT_EQ(mails[0].user_view(), "sender@example.com");
    EXPECT_EQ(mails[0].name_view(), "recipient@example.com");
    EXPECT_EQ(mails[0].count, 1U);
    EXPECT_EQ(mails[0].attachments, 1U);
    EXPECT_EQ(mails[0].attachment_bytes, 34U);
    EXPECT_EQ(mails[0].host_view(), "test.msg");
    const auto files = of(r, AppEventKind::FileTransfer);
    ASSERT_EQ(files.size(), 1U);
    EXPECT_EQ(files[0].name_view(), "test.msg");
    EXPECT_EQ(files[0].bytes, 34U);
}

TEST(SmtpParserCaptureTest, LowerCaseVerbsSameResultAtEverySplit) {
    LOAD_FLOWS_OR_SKIP(flows, "pcaps/zeek_smtp-attachment-msg-ipv6.pcap");
    const test::CaptureFlow& flow = flows.at(0);
    const std::vector<uint8_t> client = flow.joined(true);
    const Result whole = run_flow(flow);
    for (size_t split = 0; split <= client.size(); ++split) {
        test::CaptureFlow two = flow;
        two.chunks.clear();
        two.chunks.push_back({true, 0, {client.begin(), client.begin() + split}});
        two.chunks.push_back({true, 0, {client.begin() + split, client.end()}});
        const Result r = run_flow(two);
        ASSERT_EQ(r.events.size(), whole.events.size()) << "split " << split;
        for (size_t i = 0; i < r.events.size(); ++i) {
            EXPECT_EQ(std::memcmp(&r.events[i], &whole.events[i], sizeof(AppEvent)), 0)
                    << "split " << split;
        }
        EXPECT_EQ(r.objects, whole.objects) << "split " << split;
    }
}

TEST(SmtpParserCaptureTest, PanFormatsCaseParses) {
    LOAD_FLOWS_OR_SKIP(flows, "cases/c14_pan_formats_smtp.pcap");
    ASSERT_EQ(flows.size(), 1U);
    const Result r = run_flow(flows[0]);
    const auto mails = of(r, AppEventKind::MailMessage);
    ASSERT_EQ(mails.size(), 1U);
    EXPECT_EQ(mails[0].user_view(), "ops@corp.example");
    EXPECT_EQ(mails[0].name_view(), "partner@mail.example.net");
    EXPECT_EQ(mails[0].count, 1U);
    EXPECT_EQ(mails[0].attachments, 0U);
    EXPECT_EQ(mails[0].bytes, 232U);
    EXPECT_TRUE(of(r, AppEventKind::FileTransfer).empty());
    EXPECT_TRUE(r.objects.empty());  // a plain 7bit body is scanned in the raw stream
    EXPECT_TRUE(r.done);             // QUIT answered
}

TEST(SmtpParserCaptureTest, PanFormatsCaseSameResultAtEverySplit) {
    LOAD_FLOWS_OR_SKIP(flows, "cases/c14_pan_formats_smtp.pcap");
    const Result whole = run_flow(flows.at(0));
    const Result bytewise = run_flow(flows.at(0), 1);
    ASSERT_EQ(bytewise.events.size(), whole.events.size());
    for (size_t i = 0; i < whole.events.size(); ++i) {
        EXPECT_EQ(std::memcmp(&bytewise.events[i], &whole.events[i], sizeof(AppEvent)), 0);
    }
}

// --- hand-made conversations -----------------------------------------------------------------

TEST(SmtpParserTest, AuthPlainInitialResponseGivesUserAndSuccess) {
    // "\0alice\0s3cret-pass"
    const Result r = run({{kS, "220 mx ESMTP\r\n"}, {kC, "EHLO me\r\n"},
            {kS, "250-mx\r\n250 AUTH PLAIN LOGIN\r\n"},
            {kC, "AUTH PLAIN AGFsaWNlAHMzY3JldC1wYXNz\r\n"}, {kS, "235 2.7.0 ok\r\n"}});
    const auto logins = of(r, AppEventKind::Login);
    ASSERT_EQ(logins.size(), 1U);
    EXPECT_EQ(logins[0].proto, AppProto::Smtp);
    EXPECT_EQ(logins[0].user_view(), "alice");
    EXPECT_EQ(logins[0].outcome, LoginOutcome::Success);
}

TEST(SmtpParserTest, AuthLoginContinuationGivesUserAndFailure) {
    // "bob" then the password "hunter2"
    const Result r = run({{kS, "220 mx\r\n"}, {kC, "auth login\r\n"}, {kS, "334 VXNlcm5hbWU6\r\n"},
            {kC, "Ym9i\r\n"}, {kS, "334 UGFzc3dvcmQ6\r\n"}, {kC, "aHVudGVyMg==\r\n"},
            {kS, "535 5.7.8 bad credentials\r\n"}, {kC, "QUIT\r\n"}, {kS, "221 bye\r\n"}});
    const auto logins = of(r, AppEventKind::Login);
    ASSERT_EQ(logins.size(), 1U);
    EXPECT_EQ(logins[0].user_view(), "bob");
    EXPECT_EQ(logins[0].outcome, LoginOutcome::Failure);
    EXPECT_TRUE(r.done);
}

TEST(SmtpParserTest, PasswordNeverReachesAnEvent) {
    const Result r = run({{kS, "220 mx\r\n"}, {kC, "AUTH LOGIN Ym9i\r\n"},
            {kS, "334 UGFzc3dvcmQ6\r\n"}, {kC, "aHVudGVyMg==\r\n"}, {kS, "235 ok\r\n"}});
    ASSERT_EQ(r.events.size(), 1U);
    const std::string_view raw(reinterpret_cast<const char*>(&r.events[0]), sizeof(AppEvent));
    EXPECT_EQ(raw.find("hunter2"), std::string_view::npos);
    EXPECT_EQ(r.events[0].user_view(), "bob");
}

// True when `secret` occurs anywhere in the bytes of one of the events.
bool any_event_holds(const std::vector<AppEvent>& events, std::string_view secret) {
    for (const AppEvent& event : events) {
        const std::string_view raw(reinterpret_cast<const char*>(&event), sizeof(AppEvent));
        if (raw.find(secret) != std::string_view::npos) {
            return true;
        }
    }
    return false;
}

// Break-test regressions: a password must never be reported as the user.
TEST(SmtpParserTest, AuthPlainInitialResponseWithOneNulReportsNoUser) {
    // "alice\0PWXsmtpplain" (no authzid field)
    const Result r = run({{kS, "220 hi\r\n"}, {kC, "EHLO x\r\n"}, {kS, "250 AUTH PLAIN\r\n"},
            {kC, "AUTH PLAIN YWxpY2UAUFdYc210cHBsYWlu\r\n"}, {kS, "535 no\r\n"}});
    const auto logins = of(r, AppEventKind::Login);
    ASSERT_EQ(logins.size(), 1U);
    EXPECT_EQ(logins[0].outcome, LoginOutcome::Failure);
    EXPECT_EQ(logins[0].user_view(), "");
    EXPECT_FALSE(any_event_holds(r.events, "PWX"));
}

TEST(SmtpParserTest, AuthPlainContinuationWithOneNulReportsNoUser) {
    // "\0PWXsmtpplain"
    const Result r = run({{kS, "220 hi\r\n"}, {kC, "AUTH PLAIN\r\n"}, {kS, "334 \r\n"},
            {kC, "AFBXWHNtdHBwbGFpbg==\r\n"}, {kS, "535 no\r\n"}});
    const auto logins = of(r, AppEventKind::Login);
    ASSERT_EQ(logins.size(), 1U);
    EXPECT_EQ(logins[0].user_view(), "");
    EXPECT_FALSE(any_event_holds(r.events, "PWX"));
}

TEST(SmtpParserTest, AuthLoginPasswordPromptFirstReportsNoUser) {
    // "PWXsmtploginpwfirst" answers "Password:"
    const Result r = run({{kS, "220 hi\r\n"}, {kC, "EHLO x\r\n"}, {kS, "250 AUTH LOGIN\r\n"},
            {kC, "AUTH LOGIN\r\n"}, {kS, "334 UGFzc3dvcmQ6\r\n"},
            {kC, "UFdYc210cGxvZ2lucHdmaXJzdA==\r\n"}, {kS, "535 no\r\n"}});
    const auto logins = of(r, AppEventKind::Login);
    ASSERT_EQ(logins.size(), 1U);
    EXPECT_EQ(logins[0].user_view(), "");
    EXPECT_FALSE(any_event_holds(r.events, "PWX"));
}

TEST(SmtpParserTest, AuthLoginUnknownPromptReportsNoUser) {
    // "Username please" is not the user name prompt.
    const Result r =
            run({{kS, "220 hi\r\n"}, {kC, "AUTH LOGIN\r\n"}, {kS, "334 VXNlcm5hbWUgcGxlYXNl\r\n"},
                    {kC, "UFdYc210cGxvZ2lucHdmaXJzdA==\r\n"}, {kS, "535 no\r\n"}});
    const auto logins = of(r, AppEventKind::Login);
    ASSERT_EQ(logins.size(), 1U);
    EXPECT_EQ(logins[0].user_view(), "");
    EXPECT_FALSE(any_event_holds(r.events, "PWX"));
}

TEST(SmtpParserTest, AuthLoginWithoutServerPromptsReportsNoUser) {
    // A one-sided capture shows no prompt: neither response is known to be the user name.
    const Result r = run({{kS, "220 hi\r\n"},
            {kC, "EHLO x\r\nAUTH LOGIN\r\nYWxpY2U=\r\nUFdYc210cGNhbmNlbA==\r\n"}});
    const auto logins = of(r, AppEventKind::Login);
    ASSERT_EQ(logins.size(), 1U);
    EXPECT_EQ(logins[0].outcome, LoginOutcome::Attempt);
    EXPECT_EQ(logins[0].user_view(), "");
    EXPECT_FALSE(any_event_holds(r.events, "PWX"));
}

TEST(SmtpParserTest, AuthCancelThenRetryReportsTheRetryUser) {
    const Result r = run({{kS, "220 hi\r\n"}, {kC, "EHLO x\r\n"}, {kS, "250 AUTH LOGIN\r\n"},
            {kC, "AUTH LOGIN\r\n"}, {kS, "334 VXNlcm5hbWU6\r\n"}, {kC, "*\r\n"},
            {kS, "501 cancelled\r\n"}, {kC, "AUTH LOGIN\r\n"}, {kS, "334 VXNlcm5hbWU6\r\n"},
            {kC, "YWxpY2U=\r\n"}, {kS, "334 UGFzc3dvcmQ6\r\n"}, {kC, "UFdYc210cGNhbmNlbA==\r\n"},
            {kS, "535 no\r\n"}});
    // The cancelled exchange checked no credentials: it is no login.
    const auto logins = of(r, AppEventKind::Login);
    ASSERT_EQ(logins.size(), 1U);
    EXPECT_EQ(logins[0].outcome, LoginOutcome::Failure);
    EXPECT_EQ(logins[0].user_view(), "alice");
    EXPECT_FALSE(any_event_holds(r.events, "PWX"));
}

TEST(SmtpParserTest, AuthLoginPromptsSameResultAtEveryPieceSize) {
    const std::vector<Turn> turns{{kS, "220 hi\r\n"}, {kC, "AUTH LOGIN\r\n"},
            {kS, "334 VXNlcm5hbWU6\r\n"}, {kC, "YWxpY2U=\r\n"}, {kS, "334 UGFzc3dvcmQ6\r\n"},
            {kC, "UFdYc210cGNhbmNlbA==\r\n"}, {kS, "535 no\r\n"}};
    for (size_t piece = 1; piece < 8; ++piece) {
        const Result r = run(turns, piece);
        const auto logins = of(r, AppEventKind::Login);
        ASSERT_EQ(logins.size(), 1U) << "piece " << piece;
        EXPECT_EQ(logins[0].user_view(), "alice") << "piece " << piece;
        EXPECT_FALSE(any_event_holds(r.events, "PWX")) << "piece " << piece;
    }
}

TEST(SmtpParserTest, MultiStepAuthKeepsRepliesInStep) {
    // NTLM takes two client responses; later pipelined replies must still match.
    const Result r = run({{kS, "220 mx\r\n"}, {kC, "AUTH NTLM TlRMTVNTUAABAAAA\r\n"},
            {kS, "334 TlRMTVNTUAACAAAA\r\n"}, {kC, "TlRMTVNTUAADAAAA\r\n"}, {kS, "235 ok\r\n"},
            {kC, "MAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nDATA\r\n"},
            {kS, "250 ok\r\n250 ok\r\n354 go\r\n"}, {kC, "x\r\n.\r\n"}, {kS, "250 ok\r\n"}});
    const auto logins = of(r, AppEventKind::Login);
    ASSERT_EQ(logins.size(), 1U);
    EXPECT_EQ(logins[0].outcome, LoginOutcome::Success);
    EXPECT_EQ(logins[0].user_view(), "");
    const auto mails = of(r, AppEventKind::MailMessage);
    ASSERT_EQ(mails.size(), 1U);
    EXPECT_EQ(mails[0].count, 1U);
    EXPECT_EQ(r.rejected, 0U);
}

TEST(SmtpParserTest, UnansweredAuthIsAnAttempt) {
    const Result r = run({{kS, "220 mx\r\n"}, {kC, "AUTH PLAIN AGFsaWNlAHg=\r\n"}});
    const auto logins = of(r, AppEventKind::Login);
    ASSERT_EQ(logins.size(), 1U);
    EXPECT_EQ(logins[0].user_view(), "alice");
    EXPECT_EQ(logins[0].outcome, LoginOutcome::Attempt);
}

TEST(SmtpParserTest, StartTlsAcceptedEndsParsing) {
    auto parser = std::make_unique<SmtpParser>();
    EventRecorder events;
    parser->on_data(kS, bytes("220 mx\r\n"), events, nullptr);
    parser->on_data(kC, bytes("STARTTLS\r\n"), events, nullptr);
    EXPECT_FALSE(parser->done());
    parser->on_data(kS, bytes("220 2.0.0 go ahead\r\n"), events, nullptr);
    EXPECT_TRUE(parser->done());
}

TEST(SmtpParserTest, StartTlsRefusedContinues) {
    auto parser = std::make_unique<SmtpParser>();
    EventRecorder events;
    parser->on_data(kS, bytes("220 mx\r\n"), events, nullptr);
    parser->on_data(kC, bytes("STARTTLS\r\n"), events, nullptr);
    parser->on_data(kS, bytes("454 TLS not available\r\n"), events, nullptr);
    EXPECT_FALSE(parser->done());
}

TEST(SmtpParserTest, RejectedMessageIsNotReported) {
    const Result r = run({{kS, "220 mx\r\n"}, {kC, "MAIL FROM:<a@x>\r\n"}, {kS, "250 ok\r\n"},
            {kC, "RCPT TO:<b@y>\r\n"}, {kS, "250 ok\r\n"}, {kC, "DATA\r\n"}, {kS, "354 go\r\n"},
            {kC, "Subject: s\r\n\r\nbody\r\n.\r\n"}, {kS, "554 5.7.1 rejected\r\n"}});
    EXPECT_TRUE(of(r, AppEventKind::MailMessage).empty());
    EXPECT_EQ(r.rejected, 1U);
}

TEST(SmtpParserTest, PipelinedRepliesMatchTheirCommands) {
    // The second recipient is refused; replies arrive after the whole pipeline.
    const Result r = run({{kS, "220 mx\r\n"},
            {kC, "MAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nRCPT TO:<c@z>\r\nDATA\r\n"},
            {kS, "250 ok\r\n250 ok\r\n550 no such user\r\n354 go\r\n"},
            {kC, "Subject: s\r\n\r\nbody\r\n.\r\n"}, {kS, "250 queued\r\n"}});
    const auto mails = of(r, AppEventKind::MailMessage);
    ASSERT_EQ(mails.size(), 1U);
    EXPECT_EQ(mails[0].count, 1U);
    EXPECT_EQ(mails[0].name_view(), "b@y");
}

TEST(SmtpParserTest, MultiLineRepliesCountOnce) {
    const Result r = run({{kS, "220-mx\r\n220 welcome\r\n"}, {kC, "EHLO me\r\n"},
            {kS, "250-mx\r\n250-PIPELINING\r\n250 8BITMIME\r\n"}, {kC, "MAIL FROM:<a@x>\r\n"},
            {kS, "250 ok\r\n"}, {kC, "RCPT TO:<b@y>\r\n"}, {kS, "250 ok\r\n"}, {kC, "DATA\r\n"},
            {kS, "354 go\r\n"}, {kC, "x\r\n.\r\n"}, {kS, "250 ok\r\n"}});
    EXPECT_EQ(of(r, AppEventKind::MailMessage).size(), 1U);
    EXPECT_EQ(r.rejected, 0U);
}

TEST(SmtpParserTest, DotUnstuffingAndEndOfData) {
    const Result r = run({{kS, "220 mx\r\n"}, {kC, "MAIL FROM:<a@x>\r\n"}, {kS, "250 ok\r\n"},
            {kC, "RCPT TO:<b@y>\r\n"}, {kS, "250 ok\r\n"}, {kC, "DATA\r\n"}, {kS, "354 go\r\n"},
            {kC,
                    "Content-Disposition: attachment; filename=dots.txt\r\n\r\n"
                    "..leading dot\r\n.\r\n"},
            {kS, "250 ok\r\n"}});
    ASSERT_EQ(r.objects.size(), 1U);
    EXPECT_EQ(r.objects[0], ".leading dot\r\n");
    const auto mails = of(r, AppEventKind::MailMessage);
    ASSERT_EQ(mails.size(), 1U);
    EXPECT_EQ(mails[0].bytes, 69U);  // as sent, without the final ".\r\n"
    EXPECT_EQ(mails[0].attachment_bytes, 14U);
}

TEST(SmtpParserTest, BdatChunksFormOneMessage) {
    const std::string_view body1 = "Content-Type: text/plain; name=a.txt\r\n\r\nhel";
    const std::string_view body2 = "lo\r\n";
    std::string c1 = "BDAT " + std::to_string(body1.size()) + "\r\n";
    c1 += body1;
    std::string c2 = "BDAT " + std::to_string(body2.size()) + " LAST\r\n";
    c2 += body2;
    const Result r = run({{kS, "220 mx\r\n"}, {kC, "MAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\n"},
            {kS, "250 ok\r\n250 ok\r\n"}, {kC, c1}, {kC, c2}, {kS, "250 ok\r\n250 queued\r\n"}});
    const auto mails = of(r, AppEventKind::MailMessage);
    ASSERT_EQ(mails.size(), 1U);
    EXPECT_EQ(mails[0].bytes, body1.size() + body2.size());
    EXPECT_EQ(mails[0].attachments, 1U);
    EXPECT_EQ(mails[0].attachment_bytes, 7U);
    EXPECT_EQ(mails[0].host_view(), "a.txt");
}

TEST(SmtpParserTest, BdatSameResultAtEveryPieceSize) {
    const std::vector<Turn> turns{{kS, "220 mx\r\n"}, {kC, "MAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\n"},
            {kS, "250 ok\r\n250 ok\r\n"}, {kC, "BDAT 14\r\nSubject: s\r\n\r\n"},
            {kC, "BDAT 3 LAST\r\nab\n"}, {kS, "250 ok\r\n250 ok\r\n"}};
    const Result whole = run(turns);
    ASSERT_EQ(of(whole, AppEventKind::MailMessage).size(), 1U);
    for (size_t piece = 1; piece < 12; ++piece) {
        const Result r = run(turns, piece);
        ASSERT_EQ(r.events.size(), whole.events.size());
        EXPECT_EQ(r.events[0].bytes, 17U);
    }
}

TEST(SmtpParserTest, RefusedDataReturnsToCommands) {
    const Result r = run(
            {{kS, "220 mx\r\n"}, {kC, "MAIL FROM:<a@x>\r\n"}, {kS, "250 ok\r\n"}, {kC, "DATA\r\n"},
                    {kS, "554 no valid recipients\r\n"}, {kC, "QUIT\r\n"}, {kS, "221 bye\r\n"}});
    EXPECT_TRUE(of(r, AppEventKind::MailMessage).empty());
    EXPECT_TRUE(r.done);
}

TEST(SmtpParserTest, MoreAttachmentsThanFileSlotsAreCounted) {
    std::string body = "Content-Type: multipart/mixed; boundary=b\r\n\r\n";
    for (size_t i = 0; i < SmtpParser::kMaxFiles + 2; ++i) {
        body += "--b\r\nContent-Disposition: attachment; filename=f" + std::to_string(i)
                + ".bin\r\n\r\nxyz\r\n";
    }
    body += "--b--\r\n.\r\n";
    const Result r = run({{kS, "220 mx\r\n"}, {kC, "MAIL FROM:<a@x>\r\n"}, {kS, "250 ok\r\n"},
            {kC, "RCPT TO:<b@y>\r\n"}, {kS, "250 ok\r\n"}, {kC, "DATA\r\n"}, {kS, "354 go\r\n"},
            {kC, body}, {kS, "250 ok\r\n"}});
    const auto mails = of(r, AppEventKind::MailMessage);
    ASSERT_EQ(mails.size(), 1U);
    EXPECT_EQ(mails[0].attachments, SmtpParser::kMaxFiles + 2);
    EXPECT_EQ(mails[0].attachment_bytes, 3U * (SmtpParser::kMaxFiles + 2));
    EXPECT_EQ(of(r, AppEventKind::FileTransfer).size(), SmtpParser::kMaxFiles);
}

TEST(SmtpParserTest, WithoutObjectSinkSizesAreStillCounted) {
    auto parser = std::make_unique<SmtpParser>();
    EventRecorder events;
    const std::vector<Turn> turns{{kS, "220 mx\r\n"}, {kC, "MAIL FROM:<a@x>\r\n"},
            {kS, "250 ok\r\n"}, {kC, "RCPT TO:<b@y>\r\n"}, {kS, "250 ok\r\n"}, {kC, "DATA\r\n"},
            {kS, "354 go\r\n"},
            {kC,
                    "Content-Transfer-Encoding: base64\r\nContent-Disposition: attachment\r\n\r\n"
                    "aGVsbG8gd29ybGQ=\r\n.\r\n"},
            {kS, "250 ok\r\n"}};
    for (const Turn& t : turns) {
        parser->on_data(t.dir, bytes(t.text), events, nullptr);
    }
    parser->on_end(events, nullptr);
    const auto mails = events.of(AppEventKind::MailMessage);
    ASSERT_EQ(mails.size(), 1U);
    EXPECT_EQ(mails[0].attachment_bytes, 11U);
}

TEST(SmtpParserTest, LongCommandLineIsCutAndCounted) {
    auto parser = std::make_unique<SmtpParser>();
    EventRecorder events;
    parser->on_data(kS, bytes("220 mx\r\n"), events, nullptr);
    const std::string line = "NOOP " + std::string(2000, 'x') + "\r\n";
    parser->on_data(kC, bytes(line), events, nullptr);
    parser->on_data(kS, bytes("250 ok\r\n"), events, nullptr);
    EXPECT_EQ(parser->lines_cut(), 1U);
    EXPECT_EQ(parser->bad_replies(), 0U);
}

TEST(SmtpParserTest, GapInsideDataStillFindsTheEnd) {
    auto parser = std::make_unique<SmtpParser>();
    EventRecorder events;
    ObjectRecorder objects;
    parser->on_data(kS, bytes("220 mx\r\n"), events, &objects);
    parser->on_data(kC, bytes("MAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nDATA\r\n"), events, &objects);
    parser->on_data(kS, bytes("250 ok\r\n250 ok\r\n354 go\r\n"), events, &objects);
    parser->on_data(kC, bytes("Subject: s\r\n\r\nfirst"), events, &objects);
    parser->on_gap(kC);
    parser->on_data(kC, bytes("lost line end\r\nmore\r\n.\r\n"), events, &objects);
    parser->on_data(kS, bytes("250 ok\r\n"), events, &objects);
    parser->on_end(events, &objects);
    const auto mails = events.of(AppEventKind::MailMessage);
    ASSERT_EQ(mails.size(), 1U);
    EXPECT_FALSE(mails[0].final);
    EXPECT_FALSE(objects.open);
}

TEST(SmtpParserTest, GapInsideBdatGivesUp) {
    auto parser = std::make_unique<SmtpParser>();
    EventRecorder events;
    parser->on_data(kC, bytes("BDAT 100\r\nabc"), events, nullptr);
    parser->on_gap(kC);
    EXPECT_TRUE(parser->done());
}

TEST(SmtpParserTest, GarbageNeverCrashes) {
    auto parser = std::make_unique<SmtpParser>();
    EventRecorder events;
    ObjectRecorder objects;
    std::string junk;
    for (int i = 0; i < 5000; ++i) {
        junk.push_back(static_cast<char>((i * 7919) % 256));
    }
    parser->on_data(kC, bytes(junk), events, &objects);
    parser->on_data(kS, bytes(junk), events, &objects);
    parser->on_data(kC, bytes("DATA\r\n"), events, &objects);
    parser->on_data(kC, bytes(junk), events, &objects);
    parser->on_end(events, &objects);
    EXPECT_FALSE(objects.open);
}

}  // namespace
}  // namespace exfiltap::detectors
