#include "detectors/mail_login_parser.h"

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

static_assert(sizeof(Pop3Parser) <= 4096);
static_assert(sizeof(ImapParser) <= 4096);

class EventRecorder final : public AppEventSink {
public:
    void on_app_event(const AppEvent& event) noexcept override { events.push_back(event); }
    std::vector<AppEvent> events;
};

std::span<const uint8_t> bytes(std::string_view s) {
    return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

constexpr AppDir kC = AppDir::ToServer;
constexpr AppDir kS = AppDir::ToClient;

struct Turn {
    AppDir dir;
    std::string_view text;
};

struct Result {
    std::vector<AppEvent> events;
    bool done = false;
};

template <typename Parser>
Result run(const std::vector<Turn>& turns, size_t piece = 0) {
    auto parser = std::make_unique<Parser>();
    EventRecorder events;
    for (const Turn& t : turns) {
        const size_t step = piece == 0 ? t.text.size() + 1 : piece;
        for (size_t at = 0; at < t.text.size(); at += step) {
            parser->on_data(t.dir, bytes(t.text.substr(at, step)), events, nullptr);
        }
    }
    const bool done = parser->done();
    parser->on_end(events, nullptr);
    return {events.events, done};
}

template <typename Parser>
Result run_flow(const test::CaptureFlow& flow, size_t piece = 0) {
    auto parser = std::make_unique<Parser>();
    EventRecorder events;
    for (const test::PayloadChunk& chunk : flow.chunks) {
        const AppDir dir = chunk.to_server ? kC : kS;
        const size_t step = piece == 0 ? chunk.bytes.size() : piece;
        for (size_t at = 0; at < chunk.bytes.size(); at += step) {
            const size_t n = std::min(step, chunk.bytes.size() - at);
            parser->on_data(dir, {chunk.bytes.data() + at, n}, events, nullptr);
        }
    }
    const bool done = parser->done();
    parser->on_end(events, nullptr);
    return {events.events, done};
}

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

// --- SASL ------------------------------------------------------------------------------------

std::string user_of(SaslMech mech, uint8_t index, std::string_view response,
        SaslAnswer answer = SaslAnswer::Initial) {
    std::array<char, 64> out{};
    const size_t n = sasl_user(mech, index, answer, response, out);
    return {out.data(), n};
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

// sasl_user() on PLAIN `response`: the user, and whether `secret` was left anywhere in the
// output buffer.
std::string plain_user_leaving(std::string_view response, std::string_view secret, bool& left) {
    std::array<char, 64> out{};
    const size_t n = sasl_user(SaslMech::Plain, 0, SaslAnswer::Initial, response, out);
    left = std::string_view(out.data(), out.size()).find(secret) != std::string_view::npos;
    return {out.data(), n};
}

TEST(SaslUserTest, PlainGivesAuthcid) {
    // "admin\0alice\0pw"
    EXPECT_EQ(user_of(SaslMech::Plain, 0, "YWRtaW4AYWxpY2UAcHc="), "alice");
}

TEST(SaslUserTest, PlainWithEmptyAuthcidGivesAuthzid) {
    // "alice\0\0pw"
    EXPECT_EQ(user_of(SaslMech::Plain, 0, "YWxpY2UAAHB3"), "alice");
}

TEST(SaslUserTest, PlainWithoutNulIsRefused) {
    EXPECT_EQ(user_of(SaslMech::Plain, 0, "YWxpY2U="), "");
}

TEST(SaslUserTest, PlainNeverCopiesPassword) {
    std::array<char, 64> out{};
    // "\0u\0SECRETPASSWORD"
    const size_t n =
            sasl_user(SaslMech::Plain, 0, SaslAnswer::Initial, "AHUAU0VDUkVUUEFTU1dPUkQ=", out);
    EXPECT_EQ(std::string_view(out.data(), n), "u");
    EXPECT_EQ(std::string_view(out.data(), out.size()).find("SECRET"), std::string_view::npos);
}

TEST(SaslUserTest, LoginFirstResponseIsUserSecondIsNot) {
    EXPECT_EQ(user_of(SaslMech::Login, 0, "Ym9i", SaslAnswer::UserPrompt), "bob");
    EXPECT_EQ(user_of(SaslMech::Login, 1, "aHVudGVyMg==", SaslAnswer::UserPrompt), "");
}

// Break-test regressions: PLAIN needs authzid NUL authcid NUL password.
TEST(SaslUserTest, PlainUserNulPasswordGivesNoUser) {
    bool left = true;
    // "alice\0PWXsecret"
    EXPECT_EQ(plain_user_leaving("YWxpY2UAUFdYc2VjcmV0", "PWX", left), "");
    EXPECT_FALSE(left);
}

TEST(SaslUserTest, PlainNulPasswordGivesNoUser) {
    bool left = true;
    // "\0PWXsecret"
    EXPECT_EQ(plain_user_leaving("AFBXWHNlY3JldA==", "PWX", left), "");
    EXPECT_FALSE(left);
}

TEST(SaslUserTest, PlainPasswordNulGivesNoUser) {
    bool left = true;
    // "PWXsecret\0"
    EXPECT_EQ(plain_user_leaving("UFdYc2VjcmV0AA==", "PWX", left), "");
    EXPECT_FALSE(left);
}

TEST(SaslUserTest, PlainEmptyAuthzidGivesAuthcid) {
    // "\0alice\0PWXsecret"
    EXPECT_EQ(user_of(SaslMech::Plain, 0, "AGFsaWNlAFBXWHNlY3JldA=="), "alice");
}

TEST(SaslUserTest, LoginInitialResponseIsUser) {
    EXPECT_EQ(user_of(SaslMech::Login, 0, "Ym9i", SaslAnswer::Initial), "bob");
}

TEST(SaslUserTest, LoginAnswerToUnknownPromptIsNotUser) {
    // What answers "Password:" (or any prompt not recognised) may be the password.
    EXPECT_EQ(user_of(SaslMech::Login, 0, "UFdYc2VjcmV0", SaslAnswer::Unknown), "");
}

TEST(SaslChallengeTest, UsernamePromptVariantsAreRecognised) {
    EXPECT_EQ(sasl_challenge("VXNlcm5hbWU6"), SaslAnswer::UserPrompt);          // "Username:"
    EXPECT_EQ(sasl_challenge(" VXNlciBOYW1lOg== \r"), SaslAnswer::UserPrompt);  // "User Name:"
    EXPECT_EQ(sasl_challenge("dXNlcm5hbWU="), SaslAnswer::UserPrompt);          // "username"
    EXPECT_EQ(sasl_challenge("VVNFUk5BTUU6"), SaslAnswer::UserPrompt);          // "USERNAME:"
}

TEST(SaslChallengeTest, PasswordAndOtherPromptsAreNotTheUserPrompt) {
    EXPECT_EQ(sasl_challenge("UGFzc3dvcmQ6"), SaslAnswer::Unknown);  // "Password:"
    EXPECT_EQ(sasl_challenge(""), SaslAnswer::Unknown);
    EXPECT_EQ(sasl_challenge("VXNlcm5hbWUgcGxlYXNl"), SaslAnswer::Unknown);  // "Username please"
    EXPECT_EQ(sasl_challenge("not base64!"), SaslAnswer::Unknown);
}

TEST(SaslUserTest, CramMd5GivesNameBeforeDigest) {
    // "tim b913a602c7eda7a495b4e6e7334d3890"
    EXPECT_EQ(user_of(SaslMech::CramMd5, 0, "dGltIGI5MTNhNjAyYzdlZGE3YTQ5NWI0ZTZlNzMzNGQzODkw"),
            "tim");
}

TEST(SaslUserTest, CancelAndGarbageGiveNothing) {
    EXPECT_EQ(user_of(SaslMech::Plain, 0, "*"), "");
    EXPECT_EQ(user_of(SaslMech::Login, 0, "not base64!"), "");
    EXPECT_EQ(user_of(SaslMech::Other, 0, "Ym9i"), "");
}

// --- POP3 captures ---------------------------------------------------------------------------

TEST(Pop3ParserCaptureTest, AuthPlainPerConnection) {
    LOAD_FLOWS_OR_SKIP(flows, "pcaps/zeek_pop3-auth-plain.pcap");
    ASSERT_EQ(flows.size(), 7U);  // two connections carry no payload
    const std::string_view user = "digitalinvestigator@networksims.com";
    std::vector<std::vector<AppEvent>> per_flow;
    for (const test::CaptureFlow& flow : flows) {
        per_flow.push_back(run_flow<Pop3Parser>(flow).events);
    }
    EXPECT_TRUE(per_flow[0].empty());
    EXPECT_TRUE(per_flow[1].empty());
    EXPECT_TRUE(per_flow[2].empty());  // CAPA, QUIT
    ASSERT_EQ(per_flow[3].size(), 1U);
    EXPECT_EQ(per_flow[3][0].outcome, LoginOutcome::Failure);
    EXPECT_EQ(per_flow[3][0].user_view(), user);
    EXPECT_TRUE(per_flow[4].empty());
    ASSERT_EQ(per_flow[5].size(), 1U);
    EXPECT_EQ(per_flow[5][0].outcome, LoginOutcome::Success);
    EXPECT_EQ(per_flow[5][0].user_view(), user);
    ASSERT_EQ(per_flow[6].size(), 1U);
    EXPECT_EQ(per_flow[6][0].outcome, LoginOutcome::Success);
    EXPECT_EQ(per_flow[6][0].user_view(), user);
    EXPECT_EQ(per_flow[6][0].proto, AppProto::Pop3);
    EXPECT_EQ(per_flow[6][0].kind, AppEventKind::Login);
}

TEST(Pop3ParserCaptureTest, SameResultFedByteByByte) {
    LOAD_FLOWS_OR_SKIP(flows, "pcaps/zeek_pop3-auth-plain.pcap");
    for (const test::CaptureFlow& flow : flows) {
        const Result whole = run_flow<Pop3Parser>(flow);
        const Result bytewise = run_flow<Pop3Parser>(flow, 1);
        ASSERT_EQ(bytewise.events.size(), whole.events.size());
        for (size_t i = 0; i < whole.events.size(); ++i) {
            EXPECT_EQ(std::memcmp(&bytewise.events[i], &whole.events[i], sizeof(AppEvent)), 0);
        }
    }
}

// --- POP3 hand-made --------------------------------------------------------------------------

TEST(Pop3ParserTest, UserPassSuccess) {
    const Result r = run<Pop3Parser>({{kS, "+OK ready\r\n"}, {kC, "USER carol\r\n"},
            {kS, "+OK\r\n"}, {kC, "PASS secret\r\n"}, {kS, "+OK maildrop locked\r\n"}});
    ASSERT_EQ(r.events.size(), 1U);
    EXPECT_EQ(r.events[0].user_view(), "carol");
    EXPECT_EQ(r.events[0].outcome, LoginOutcome::Success);
    EXPECT_TRUE(r.done);
}

TEST(Pop3ParserTest, PassRefusedIsFailure) {
    const Result r = run<Pop3Parser>({{kS, "+OK ready\r\n"}, {kC, "USER carol\r\n"},
            {kS, "+OK\r\n"}, {kC, "PASS wrong\r\n"}, {kS, "-ERR invalid password\r\n"}});
    ASSERT_EQ(r.events.size(), 1U);
    EXPECT_EQ(r.events[0].outcome, LoginOutcome::Failure);
    EXPECT_FALSE(r.done);
}

TEST(Pop3ParserTest, UserRefusedIsFailure) {
    const Result r = run<Pop3Parser>(
            {{kS, "+OK ready\r\n"}, {kC, "user nobody\r\n"}, {kS, "-ERR unknown user\r\n"}});
    ASSERT_EQ(r.events.size(), 1U);
    EXPECT_EQ(r.events[0].user_view(), "nobody");
    EXPECT_EQ(r.events[0].outcome, LoginOutcome::Failure);
}

TEST(Pop3ParserTest, ApopGivesName) {
    const Result r = run<Pop3Parser>({{kS, "+OK ready <1896.697170952@dbc.mtview.ca.us>\r\n"},
            {kC, "APOP mrose c4c9334bac560ecc979e58001b3e22fb\r\n"}, {kS, "+OK\r\n"}});
    ASSERT_EQ(r.events.size(), 1U);
    EXPECT_EQ(r.events[0].user_view(), "mrose");
    EXPECT_EQ(r.events[0].outcome, LoginOutcome::Success);
}

TEST(Pop3ParserTest, AuthLoginExchange) {
    const Result r = run<Pop3Parser>({{kS, "+OK ready\r\n"}, {kC, "AUTH LOGIN\r\n"},
            {kS, "+ VXNlcm5hbWU6\r\n"}, {kC, "Ym9i\r\n"}, {kS, "+ UGFzc3dvcmQ6\r\n"},
            {kC, "aHVudGVyMg==\r\n"}, {kS, "-ERR no\r\n"}});
    ASSERT_EQ(r.events.size(), 1U);
    EXPECT_EQ(r.events[0].user_view(), "bob");
    EXPECT_EQ(r.events[0].outcome, LoginOutcome::Failure);
}

TEST(Pop3ParserTest, MultiLineReplyContentIsNotAStatus) {
    // A retrieved mail whose lines look like status lines must not answer PASS.
    const Result r = run<Pop3Parser>({{kS, "+OK ready\r\n"}, {kC, "CAPA\r\nUSER dave\r\n"},
            {kS, "+OK caps\r\n-ERR fake\r\n+OK fake\r\n.\r\n+OK\r\n"}, {kC, "PASS x\r\n"},
            {kS, "-ERR bad\r\n"}});
    ASSERT_EQ(r.events.size(), 1U);
    EXPECT_EQ(r.events[0].outcome, LoginOutcome::Failure);
}

TEST(Pop3ParserTest, StlsAcceptedEndsParsing) {
    const Result r =
            run<Pop3Parser>({{kS, "+OK ready\r\n"}, {kC, "STLS\r\n"}, {kS, "+OK begin TLS\r\n"}});
    EXPECT_TRUE(r.done);
    EXPECT_TRUE(r.events.empty());
}

TEST(Pop3ParserTest, UnansweredPassIsAttempt) {
    const Result r = run<Pop3Parser>({{kC, "USER erin\r\nPASS x\r\n"}});
    ASSERT_EQ(r.events.size(), 1U);
    EXPECT_EQ(r.events[0].user_view(), "erin");
    EXPECT_EQ(r.events[0].outcome, LoginOutcome::Attempt);
}

TEST(Pop3ParserTest, PasswordNeverReachesAnEvent) {
    const Result r = run<Pop3Parser>(
            {{kS, "+OK\r\n"}, {kC, "USER frank\r\nPASS Tr0ub4dor\r\n"}, {kS, "+OK\r\n+OK\r\n"}});
    ASSERT_EQ(r.events.size(), 1U);
    const std::string_view raw(reinterpret_cast<const char*>(&r.events[0]), sizeof(AppEvent));
    EXPECT_EQ(raw.find("Tr0ub4dor"), std::string_view::npos);
}

// Break-test regressions: a password must never be reported as the user.
TEST(Pop3ParserTest, AuthPlainWithOneNulReportsNoUser) {
    // "alice\0PWXpopplain" (no authzid field)
    const Result r = run<Pop3Parser>({{kS, "+OK hi\r\n"},
            {kC, "AUTH PLAIN YWxpY2UAUFdYcG9wcGxhaW4=\r\n"}, {kS, "-ERR no\r\n"}});
    ASSERT_EQ(r.events.size(), 1U);
    EXPECT_EQ(r.events[0].outcome, LoginOutcome::Failure);
    EXPECT_EQ(r.events[0].user_view(), "");
    EXPECT_FALSE(any_event_holds(r.events, "PWX"));
}

TEST(Pop3ParserTest, AuthPlainContinuationWithOneNulReportsNoUser) {
    // "\0PWXpopplain"
    const Result r = run<Pop3Parser>({{kS, "+OK hi\r\n"}, {kC, "AUTH PLAIN\r\n"}, {kS, "+ \r\n"},
            {kC, "AFBXWHBvcHBsYWlu\r\n"}, {kS, "-ERR no\r\n"}});
    ASSERT_EQ(r.events.size(), 1U);
    EXPECT_EQ(r.events[0].user_view(), "");
    EXPECT_FALSE(any_event_holds(r.events, "PWX"));
}

TEST(Pop3ParserTest, AuthLoginPasswordPromptFirstReportsNoUser) {
    // "PWXpoplogin" answers "Password:"
    const Result r = run<Pop3Parser>({{kS, "+OK hi\r\n"}, {kC, "AUTH LOGIN\r\n"},
            {kS, "+ UGFzc3dvcmQ6\r\n"}, {kC, "UFdYcG9wbG9naW4=\r\n"}, {kS, "-ERR no\r\n"}});
    ASSERT_EQ(r.events.size(), 1U);
    EXPECT_EQ(r.events[0].user_view(), "");
    EXPECT_FALSE(any_event_holds(r.events, "PWX"));
}

TEST(Pop3ParserTest, AuthLoginInitialResponseIsUser) {
    // "alice" with the command, then "PWXpoploginir" answers "Password:"
    const Result r = run<Pop3Parser>({{kS, "+OK hi\r\n"}, {kC, "AUTH LOGIN YWxpY2U=\r\n"},
            {kS, "+ UGFzc3dvcmQ6\r\n"}, {kC, "UFdYcG9wbG9naW5pcg==\r\n"}, {kS, "-ERR no\r\n"}});
    ASSERT_EQ(r.events.size(), 1U);
    EXPECT_EQ(r.events[0].user_view(), "alice");
    EXPECT_FALSE(any_event_holds(r.events, "PWX"));
}

// --- IMAP captures ---------------------------------------------------------------------------

TEST(ImapParserCaptureTest, LoginSucceeds) {
    LOAD_FLOWS_OR_SKIP(flows, "pcaps/ndpi_imap-login.pcap");
    ASSERT_EQ(flows.size(), 1U);
    const Result r = run_flow<ImapParser>(flows[0]);
    ASSERT_EQ(r.events.size(), 1U);
    EXPECT_EQ(r.events[0].kind, AppEventKind::Login);
    EXPECT_EQ(r.events[0].proto, AppProto::Imap);
    EXPECT_EQ(r.events[0].user_view(), "samir");
    EXPECT_EQ(r.events[0].outcome, LoginOutcome::Success);
    EXPECT_TRUE(r.done);
}

TEST(ImapParserCaptureTest, SameResultFedByteByByte) {
    LOAD_FLOWS_OR_SKIP(flows, "pcaps/ndpi_imap-login.pcap");
    const Result whole = run_flow<ImapParser>(flows.at(0));
    const Result bytewise = run_flow<ImapParser>(flows.at(0), 1);
    ASSERT_EQ(bytewise.events.size(), whole.events.size());
    EXPECT_EQ(std::memcmp(&bytewise.events[0], &whole.events[0], sizeof(AppEvent)), 0);
}

// --- IMAP hand-made --------------------------------------------------------------------------

TEST(ImapParserTest, QuotedLoginRefused) {
    const Result r = run<ImapParser>(
            {{kS, "* OK ready\r\n"}, {kC, "a1 LOGIN \"john \\\"j\\\" doe\" \"pw\"\r\n"},
                    {kS, "a1 NO [AUTHENTICATIONFAILED] invalid\r\n"}});
    ASSERT_EQ(r.events.size(), 1U);
    EXPECT_EQ(r.events[0].user_view(), "john \"j\" doe");
    EXPECT_EQ(r.events[0].outcome, LoginOutcome::Failure);
    EXPECT_FALSE(r.done);
}

TEST(ImapParserTest, LoginWithLiterals) {
    const Result r = run<ImapParser>({{kS, "* OK ready\r\n"}, {kC, "x LOGIN {5}\r\n"},
            {kS, "+ go\r\n"}, {kC, "samir {5+}\r\npfres\r\n"}, {kS, "x OK done\r\n"}});
    ASSERT_EQ(r.events.size(), 1U);
    EXPECT_EQ(r.events[0].user_view(), "samir");
    EXPECT_EQ(r.events[0].outcome, LoginOutcome::Success);
}

TEST(ImapParserTest, LiteralsSameResultAtEveryPieceSize) {
    const std::vector<Turn> turns{{kS, "* OK ready\r\n"}, {kC, "x LOGIN {5}\r\n"}, {kS, "+ go\r\n"},
            {kC, "samir {5+}\r\npfres\r\n"}, {kS, "x OK done\r\n"}};
    for (size_t piece = 1; piece < 8; ++piece) {
        const Result r = run<ImapParser>(turns, piece);
        ASSERT_EQ(r.events.size(), 1U);
        EXPECT_EQ(r.events[0].user_view(), "samir");
    }
}

TEST(ImapParserTest, AuthenticatePlainWithInitialResponse) {
    const Result r = run<ImapParser>({{kS, "* OK ready\r\n"},
            {kC, "t2 AUTHENTICATE PLAIN AGFsaWNlAHMzY3JldC1wYXNz\r\n"}, {kS, "t2 OK welcome\r\n"}});
    ASSERT_EQ(r.events.size(), 1U);
    EXPECT_EQ(r.events[0].user_view(), "alice");
    EXPECT_EQ(r.events[0].outcome, LoginOutcome::Success);
}

TEST(ImapParserTest, AuthenticateLoginContinuations) {
    const Result r = run<ImapParser>({{kS, "* OK ready\r\n"}, {kC, "t3 authenticate login\r\n"},
            {kS, "+ VXNlcm5hbWU6\r\n"}, {kC, "Ym9i\r\n"}, {kS, "+ UGFzc3dvcmQ6\r\n"},
            {kC, "aHVudGVyMg==\r\n"}, {kS, "t3 BAD no\r\n"}});
    ASSERT_EQ(r.events.size(), 1U);
    EXPECT_EQ(r.events[0].user_view(), "bob");
    EXPECT_EQ(r.events[0].outcome, LoginOutcome::Failure);
}

TEST(ImapParserTest, ServerLiteralCannotFakeTaggedReply) {
    const Result r = run<ImapParser>({{kS, "* OK ready\r\n"}, {kC, "a LOGIN u p\r\n"},
            {kS, "* 1 FETCH (BODY[] {14}\r\na OK faked\r\n\r\n)\r\n"}, {kS, "a NO real\r\n"}});
    ASSERT_EQ(r.events.size(), 1U);
    EXPECT_EQ(r.events[0].outcome, LoginOutcome::Failure);
}

TEST(ImapParserTest, StartTlsAcceptedEndsParsing) {
    const Result r = run<ImapParser>(
            {{kS, "* OK ready\r\n"}, {kC, "s STARTTLS\r\n"}, {kS, "s OK begin TLS\r\n"}});
    EXPECT_TRUE(r.done);
    EXPECT_TRUE(r.events.empty());
}

TEST(ImapParserTest, UnansweredLoginIsAttempt) {
    const Result r = run<ImapParser>({{kC, "a LOGIN grace pw\r\n"}});
    ASSERT_EQ(r.events.size(), 1U);
    EXPECT_EQ(r.events[0].user_view(), "grace");
    EXPECT_EQ(r.events[0].outcome, LoginOutcome::Attempt);
}

TEST(ImapParserTest, GapResynchronisesAtNextLine) {
    auto parser = std::make_unique<ImapParser>();
    EventRecorder events;
    parser->on_data(kC, bytes("a APPEND INBOX {100000}\r\nabc"), events, nullptr);
    parser->on_gap(kC);
    parser->on_data(kC, bytes("rest of something\r\nb LOGIN heidi pw\r\n"), events, nullptr);
    parser->on_data(kS, bytes("b OK\r\n"), events, nullptr);
    ASSERT_EQ(events.events.size(), 1U);
    EXPECT_EQ(events.events[0].user_view(), "heidi");
}

// Break-test regressions: a password must never be reported as the user.
TEST(ImapParserTest, AuthenticatePlainInitialResponseWithOneNulReportsNoUser) {
    // "alice\0PWXimapplain" (no authzid field)
    const Result r = run<ImapParser>({{kS, "* OK hi\r\n"},
            {kC, "a1 AUTHENTICATE PLAIN YWxpY2UAUFdYaW1hcHBsYWlu\r\n"}, {kS, "a1 NO no\r\n"}});
    ASSERT_EQ(r.events.size(), 1U);
    EXPECT_EQ(r.events[0].outcome, LoginOutcome::Failure);
    EXPECT_EQ(r.events[0].user_view(), "");
    EXPECT_FALSE(any_event_holds(r.events, "PWX"));
}

TEST(ImapParserTest, AuthenticatePlainContinuationWithTrailingNulOnlyReportsNoUser) {
    // "PWXimapplain\0"
    const Result r = run<ImapParser>({{kS, "* OK hi\r\n"}, {kC, "a1 AUTHENTICATE PLAIN\r\n"},
            {kS, "+ \r\n"}, {kC, "UFdYaW1hcHBsYWluAA==\r\n"}, {kS, "a1 NO no\r\n"}});
    ASSERT_EQ(r.events.size(), 1U);
    EXPECT_EQ(r.events[0].user_view(), "");
    EXPECT_FALSE(any_event_holds(r.events, "PWX"));
}

TEST(ImapParserTest, AuthenticateLoginPasswordPromptFirstReportsNoUser) {
    // "PWXimaplogin" answers "Password:"
    const Result r = run<ImapParser>({{kS, "* OK hi\r\n"}, {kC, "a1 AUTHENTICATE LOGIN\r\n"},
            {kS, "+ UGFzc3dvcmQ6\r\n"}, {kC, "UFdYaW1hcGxvZ2lu\r\n"}, {kS, "a1 NO no\r\n"}});
    ASSERT_EQ(r.events.size(), 1U);
    EXPECT_EQ(r.events[0].user_view(), "");
    EXPECT_FALSE(any_event_holds(r.events, "PWX"));
}

TEST(ImapParserTest, AuthenticateLoginUnknownPromptReportsNoUser) {
    // "+ go ahead" is no user name prompt: its answer may be the password.
    const Result r = run<ImapParser>({{kS, "* OK hi\r\n"}, {kC, "a1 AUTHENTICATE LOGIN\r\n"},
            {kS, "+ go ahead\r\n"}, {kC, "UFdYaW1hcGxvZ2lu\r\n"}, {kS, "a1 NO no\r\n"}});
    ASSERT_EQ(r.events.size(), 1U);
    EXPECT_EQ(r.events[0].user_view(), "");
    EXPECT_FALSE(any_event_holds(r.events, "PWX"));
}

TEST(ImapParserTest, AuthenticateLoginLowerCaseUsernamePromptGivesUser) {
    // "dXNlcm5hbWU=" is "username"; "YWxpY2U=" is "alice".
    const Result r = run<ImapParser>({{kS, "* OK hi\r\n"}, {kC, "a1 AUTHENTICATE LOGIN\r\n"},
            {kS, "+ dXNlcm5hbWU=\r\n"}, {kC, "YWxpY2U=\r\n"}, {kS, "+ UGFzc3dvcmQ6\r\n"},
            {kC, "UFdYaW1hcGxvZ2lu\r\n"}, {kS, "a1 NO no\r\n"}});
    ASSERT_EQ(r.events.size(), 1U);
    EXPECT_EQ(r.events[0].user_view(), "alice");
    EXPECT_FALSE(any_event_holds(r.events, "PWX"));
}

TEST(ImapParserTest, LoginWithOneAtomArgumentReportsNoUser) {
    const Result r = run<ImapParser>(
            {{kS, "* OK hi\r\n"}, {kC, "a1 LOGIN PWXimaponearg\r\n"}, {kS, "a1 BAD no\r\n"}});
    ASSERT_EQ(r.events.size(), 1U);
    EXPECT_EQ(r.events[0].outcome, LoginOutcome::Failure);
    EXPECT_EQ(r.events[0].user_view(), "");
    EXPECT_FALSE(any_event_holds(r.events, "PWX"));
}

TEST(ImapParserTest, LoginWithOneQuotedArgumentReportsNoUser) {
    const Result r = run<ImapParser>(
            {{kS, "* OK hi\r\n"}, {kC, "a1 LOGIN \"PWXimaponearg\"\r\n"}, {kS, "a1 BAD no\r\n"}});
    ASSERT_EQ(r.events.size(), 1U);
    EXPECT_EQ(r.events[0].user_view(), "");
    EXPECT_FALSE(any_event_holds(r.events, "PWX"));
}

TEST(ImapParserTest, LoginWithOneLiteralArgumentReportsNoUser) {
    const Result r = run<ImapParser>({{kS, "* OK hi\r\n"},
            {kC, "a1 LOGIN {13+}\r\nPWXimaponearg\r\n"}, {kS, "a1 BAD no\r\n"}});
    ASSERT_EQ(r.events.size(), 1U);
    EXPECT_EQ(r.events[0].user_view(), "");
    EXPECT_FALSE(any_event_holds(r.events, "PWX"));
}

TEST(ImapParserTest, LoginQuotedUserWithLiteralPasswordGivesUser) {
    const Result r = run<ImapParser>({{kS, "* OK hi\r\n"}, {kC, "a1 LOGIN \"alice\" {13}\r\n"},
            {kS, "+ go\r\n"}, {kC, "PWXimaponearg\r\n"}, {kS, "a1 NO no\r\n"}});
    ASSERT_EQ(r.events.size(), 1U);
    EXPECT_EQ(r.events[0].user_view(), "alice");
    EXPECT_FALSE(any_event_holds(r.events, "PWX"));
}

TEST(ImapParserTest, AuthenticateLoginPromptsSameResultAtEveryPieceSize) {
    const std::vector<Turn> turns{{kS, "* OK hi\r\n"}, {kC, "a1 AUTHENTICATE LOGIN\r\n"},
            {kS, "+ VXNlcm5hbWU6\r\n"}, {kC, "YWxpY2U=\r\n"}, {kS, "+ UGFzc3dvcmQ6\r\n"},
            {kC, "UFdYaW1hcGxvZ2lu\r\n"}, {kS, "a1 NO no\r\n"}};
    for (size_t piece = 1; piece < 8; ++piece) {
        const Result r = run<ImapParser>(turns, piece);
        ASSERT_EQ(r.events.size(), 1U) << "piece " << piece;
        EXPECT_EQ(r.events[0].user_view(), "alice") << "piece " << piece;
        EXPECT_FALSE(any_event_holds(r.events, "PWX")) << "piece " << piece;
    }
}

TEST(Pop3ParserTest, AuthLoginPromptsSameResultAtEveryPieceSize) {
    const std::vector<Turn> turns{{kS, "+OK hi\r\n"}, {kC, "AUTH LOGIN\r\n"},
            {kS, "+ VXNlcm5hbWU6\r\n"}, {kC, "YWxpY2U=\r\n"}, {kS, "+ UGFzc3dvcmQ6\r\n"},
            {kC, "UFdYcG9wbG9naW4=\r\n"}, {kS, "-ERR no\r\n"}};
    for (size_t piece = 1; piece < 8; ++piece) {
        const Result r = run<Pop3Parser>(turns, piece);
        ASSERT_EQ(r.events.size(), 1U) << "piece " << piece;
        EXPECT_EQ(r.events[0].user_view(), "alice") << "piece " << piece;
        EXPECT_FALSE(any_event_holds(r.events, "PWX")) << "piece " << piece;
    }
}

TEST(ImapParserTest, GarbageNeverCrashes) {
    auto parser = std::make_unique<ImapParser>();
    auto pop3 = std::make_unique<Pop3Parser>();
    EventRecorder events;
    std::string junk;
    for (int i = 0; i < 5000; ++i) {
        junk.push_back(static_cast<char>((i * 7919) % 256));
    }
    junk += "{99}\r\n";
    for (const AppDir dir : {kC, kS}) {
        parser->on_data(dir, bytes(junk), events, nullptr);
        pop3->on_data(dir, bytes(junk), events, nullptr);
    }
    parser->on_end(events, nullptr);
    pop3->on_end(events, nullptr);
    SUCCEED();
}

}  // namespace
}  // namespace exfiltap::detectors
