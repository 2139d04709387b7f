// The control socket server over real Unix sockets in a temporary folder, with a fake
// handler dispatched from a thread standing in for the control loop.
#include "control/control_server.h"

#include <grp.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <fstream>

#include <gtest/gtest.h>

#include "tests/unit/control/control_test_support.h"

namespace exfiltap::control {
namespace {

using testing::config_in;
using testing::DispatchLoop;
using testing::eventually;
using testing::FakeHandler;
using testing::LineClient;
using testing::TempDir;

nlohmann::json parsed(const std::string& line) {
    return nlohmann::json::parse(line, nullptr, false);
}

uint64_t counted(const ControlServer& server, std::string_view command, CommandResult result) {
    for (const auto& row : server.command_counts()) {
        if (row.command == command && row.result == result) {
            return row.count;
        }
    }
    return 0;
}

class ControlServerTest : public ::testing::Test {
protected:
    void start(ControlConfig config) {
        server_ = std::make_unique<ControlServer>(std::move(config));
        const Status st = server_->start(std_thread_spawner());
        ASSERT_TRUE(st.ok()) << st.error();
        loop_ = std::make_unique<DispatchLoop>(*server_, handler_);
    }
    void start() { start(config_in(dir_)); }
    /// Starts with the defaults changed by `change`.
    void start_with(const std::function<void(ControlConfig&)>& change) {
        ControlConfig config = config_in(dir_);
        change(config);
        start(config);
    }
    void TearDown() override {
        loop_.reset();
        server_.reset();
    }
    std::string path() const { return server_->socket_path(); }

    TempDir dir_;
    FakeHandler handler_;
    std::unique_ptr<ControlServer> server_;
    std::unique_ptr<DispatchLoop> loop_;
};

TEST_F(ControlServerTest, AnswersRequest) {
    start();
    LineClient client(path());
    ASSERT_TRUE(client.connected());
    EXPECT_EQ(client.ask(R"({"command":"version"})"),
            R"({"return":"OK","message":{"version":"test-1.0"}})");
}

TEST_F(ControlServerTest, HandlerSeesPeerIdentity) {
    start();
    LineClient client(path());
    client.ask(R"({"command":"stats"})");
    const auto peers = handler_.peers();
    ASSERT_EQ(peers.size(), 1U);
    EXPECT_EQ(peers[0].uid, getuid());
    EXPECT_EQ(peers[0].pid, getpid());
    EXPECT_EQ(peers[0].user, "root");
    EXPECT_EQ(peers[0].connection, 1U);
}

TEST_F(ControlServerTest, PipelinedRequestsAnsweredInOrder) {
    start();
    LineClient client(path());
    std::string batch;
    for (int i = 1; i <= 60; ++i) {
        // Every third is refused by the server thread itself; order must still hold.
        batch += i % 3 == 0
                ? R"({"command":"flows","arguments":{"top":0}})"
                : R"({"command":"flows","arguments":{"top":)" + std::to_string(i) + "}}";
        batch += "\n";
    }
    ASSERT_TRUE(client.send_text(batch));
    for (int i = 1; i <= 60; ++i) {
        const auto line = client.read_line();
        ASSERT_TRUE(line.has_value()) << i;
        const auto reply = parsed(*line);
        if (i % 3 == 0) {
            EXPECT_EQ(reply["return"], "NOK") << i;
            EXPECT_EQ(reply["message"], "flows: argument 'top' must be in 1..1000, got 0");
        } else {
            EXPECT_EQ(reply["return"], "OK") << i;
            EXPECT_EQ(reply["message"]["top"].size(), static_cast<size_t>(i));
        }
    }
    EXPECT_EQ(counted(*server_, "flows", CommandResult::Ok), 40U);
    EXPECT_EQ(counted(*server_, "flows", CommandResult::Invalid), 20U);
}

TEST_F(ControlServerTest, OversizedLineRefusedAndConnectionStaysUsable) {
    start_with([](ControlConfig& c) { c.max_line_bytes = 256; });
    LineClient client(path());
    // Sent in pieces without a newline, so the limit trips before the line ends.
    const std::string huge(300, 'x');
    ASSERT_TRUE(client.send_text(huge));
    EXPECT_EQ(client.read_line(), R"({"return":"NOK","message":"request longer than 256 bytes"})");
    // The rest of that line is skipped without a second refusal; the next line is served.
    ASSERT_TRUE(client.send_text(huge + huge + "\n" + R"({"command":"version"})" + "\n"));
    EXPECT_EQ(parsed(client.read_line().value_or(""))["message"]["version"], "test-1.0");
    EXPECT_EQ(parsed(client.ask(R"({"command":"stats"})"))["message"]["alerts"], 3);
    EXPECT_EQ(counted(*server_, "invalid", CommandResult::Invalid), 1U);
}

TEST_F(ControlServerTest, LineOfExactlyTheLimitAccepted) {
    start_with([](ControlConfig& c) { c.max_line_bytes = 256; });
    LineClient client(path());
    std::string line = R"({"command":"version"})";
    line += std::string(256 - line.size(), ' ');
    EXPECT_EQ(parsed(client.ask(line))["return"], "OK");
    EXPECT_EQ(client.ask(line + " "),
            R"({"return":"NOK","message":"request longer than 256 bytes"})");
}

TEST_F(ControlServerTest, MalformedJsonRefused) {
    start();
    LineClient client(path());
    const auto reply = parsed(client.ask(R"({"command": "stats")"));
    EXPECT_EQ(reply["return"], "NOK");
    EXPECT_EQ(reply["message"].get<std::string>().rfind("malformed JSON: parse error", 0), 0U);
    EXPECT_EQ(parsed(client.ask(R"({"command":"stats"})"))["return"], "OK");
}

TEST_F(ControlServerTest, UnknownCommandRefused) {
    start();
    LineClient client(path());
    EXPECT_EQ(client.ask(R"({"command":"shutdown"})"),
            R"j({"return":"NOK","message":"unknown command 'shutdown' (see command-list)"})j");
    EXPECT_EQ(handler_.requests().size(), 0U);
}

TEST_F(ControlServerTest, CommandListAnsweredWithoutHandler) {
    start();
    LineClient client(path());
    const auto reply = parsed(client.ask(R"({"command":"command-list"})"));
    EXPECT_EQ(reply["message"]["count"], kCommandCount);
    EXPECT_EQ(handler_.requests().size(), 0U);
}

TEST_F(ControlServerTest, HandlerNokAndExceptionAnswered) {
    start();
    LineClient client(path());
    EXPECT_EQ(client.ask(R"({"command":"unblock","arguments":{"address":"10.0.0.1"}})"),
            R"({"return":"NOK","message":"10.0.0.1/32 is not blocked"})");
    EXPECT_EQ(client.ask(R"({"command":"reload"})"),
            R"j({"return":"NOK","message":"internal error (see the daemon log)"})j");
    EXPECT_EQ(parsed(client.ask(R"({"command":"version"})"))["return"], "OK");
    EXPECT_EQ(counted(*server_, "unblock", CommandResult::Nok), 1U);
    EXPECT_EQ(counted(*server_, "reload", CommandResult::Nok), 1U);
}

TEST_F(ControlServerTest, RateLimitRefusesBeyondBurst) {
    start_with([](ControlConfig& c) { c.rate_per_s = 1; });  // burst 2
    LineClient client(path());
    std::string batch;
    for (int i = 0; i < 5; ++i) {
        batch += R"({"command":"stats"})"
                 "\n";
    }
    ASSERT_TRUE(client.send_text(batch));
    std::vector<std::string> returns;
    for (int i = 0; i < 5; ++i) {
        returns.push_back(parsed(client.read_line().value_or("{}"))["return"].get<std::string>());
    }
    EXPECT_EQ(returns, (std::vector<std::string>{"OK", "OK", "NOK", "NOK", "NOK"}));
    EXPECT_EQ(counted(*server_, "stats", CommandResult::RateLimited), 3U);
    EXPECT_EQ(counted(*server_, "stats", CommandResult::Ok), 2U);
}

TEST_F(ControlServerTest, RateLimitMessage) {
    start_with([](ControlConfig& c) { c.rate_per_s = 1; });
    LineClient client(path());
    client.ask(R"({"command":"stats"})");
    client.ask(R"({"command":"stats"})");
    EXPECT_EQ(client.ask(R"({"command":"stats"})"), R"({"return":"NOK","message":"rate limit"})");
}

TEST_F(ControlServerTest, ConnectionsOverLimitRefused) {
    start_with([](ControlConfig& c) { c.max_connections = 2; });
    LineClient a(path());
    LineClient b(path());
    ASSERT_EQ(parsed(a.ask(R"({"command":"version"})"))["return"], "OK");
    ASSERT_EQ(parsed(b.ask(R"({"command":"version"})"))["return"], "OK");
    LineClient c(path());
    EXPECT_EQ(c.read_line(), R"j({"return":"NOK","message":"too many connections (limit 2)"})j");
    EXPECT_FALSE(c.read_line().has_value());
    EXPECT_TRUE(c.eof());
    EXPECT_EQ(server_->stats().connections_over_limit, 1U);
    a.close_now();
    ASSERT_TRUE(eventually([&] { return server_->stats().connections_open == 1; }));
    LineClient d(path());
    EXPECT_EQ(parsed(d.ask(R"({"command":"version"})"))["return"], "OK");
}

/// Runs `body` in a forked child as uid 65534 with primary gid `gid` and no supplementary
/// groups; returns its exit status (the child always exits).
int as_nobody(gid_t gid, const std::function<int()>& body) {
    const pid_t pid = fork();
    if (pid == 0) {
        if (setgroups(0, nullptr) != 0 || setgid(gid) != 0 || setuid(65534) != 0) {
            _exit(100);
        }
        _exit(body());
    }
    int status = 0;
    waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 200;
}

/// In the child: 0 when the first reply line starts with `expected`.
int child_expects(const std::string& path, const std::string& expected) {
    LineClient client(path);
    if (!client.connected()) {
        return 10;
    }
    client.send_text(std::string(R"({"command":"version"})") + "\n");
    const auto line = client.read_line(5000);
    return line && line->rfind(expected, 0) == 0 ? 0 : 11;
}

TEST_F(ControlServerTest, UnauthorisedPeerDenied) {
    start();
    // Open the file system side, so only the credential check stands in the way.
    ASSERT_EQ(chmod(dir_.path().c_str(), 0755), 0);
    ASSERT_EQ(chmod(path().c_str(), 0666), 0);
    const std::string p = path();
    EXPECT_EQ(as_nobody(65534,
                      [&] {
                          return child_expects(
                                  p, R"({"return":"NOK","message":"permission denied"})");
                      }),
            0);
    EXPECT_EQ(server_->stats().connections_denied, 1U);
    EXPECT_EQ(handler_.requests().size(), 0U);
}

TEST_F(ControlServerTest, GroupMemberByPrimaryGidAllowed) {
    start_with([](ControlConfig& c) { c.group = "65534"; });
    ASSERT_EQ(chmod(dir_.path().c_str(), 0755), 0);
    const std::string p = path();
    EXPECT_EQ(as_nobody(65534, [&] { return child_expects(p, R"({"return":"OK")"); }), 0);
    struct stat st {};
    ASSERT_EQ(stat(p.c_str(), &st), 0);
    EXPECT_EQ(st.st_gid, 65534U);
}

TEST_F(ControlServerTest, GroupMemberBySupplementaryGroupAllowed) {
    // nogroup is nobody's group in /etc/passwd, not the child's gid.
    start_with([](ControlConfig& c) { c.group = "nogroup"; });
    ASSERT_EQ(chmod(dir_.path().c_str(), 0755), 0);
    ASSERT_EQ(chmod(path().c_str(), 0666), 0);
    const std::string p = path();
    EXPECT_EQ(as_nobody(54321, [&] { return child_expects(p, R"({"return":"OK")"); }), 0);
    const auto peers = handler_.peers();
    ASSERT_EQ(peers.size(), 1U);
    EXPECT_EQ(peers[0].uid, 65534U);
    EXPECT_EQ(peers[0].gid, 54321U);
    EXPECT_EQ(peers[0].user, "nobody");
}

TEST_F(ControlServerTest, UnknownGroupRefusedAtStart) {
    ControlConfig config = config_in(dir_);
    config.group = "no-such-group-exfiltap";
    ControlServer server(config);
    const Status st = server.start(std_thread_spawner());
    ASSERT_FALSE(st.ok());
    EXPECT_EQ(st.error(), "control.group: no group named 'no-such-group-exfiltap'");
}

TEST_F(ControlServerTest, SocketFileIsMode0660) {
    start();
    struct stat st {};
    ASSERT_EQ(lstat(path().c_str(), &st), 0);
    EXPECT_TRUE(S_ISSOCK(st.st_mode));
    EXPECT_EQ(st.st_mode & 07777, 0660U);
}

TEST_F(ControlServerTest, MissingParentDirectoryCreated0750) {
    start_with([this](ControlConfig& c) { c.socket = dir_.path() + "/run/control.sock"; });
    struct stat st {};
    ASSERT_EQ(stat((dir_.path() + "/run").c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 07777, 0750U);
    LineClient client(path());
    EXPECT_EQ(parsed(client.ask(R"({"command":"version"})"))["return"], "OK");
}

TEST_F(ControlServerTest, StaleSocketReplaced) {
    const ControlConfig config = config_in(dir_);
    {
        // A crashed run: the file stays, nobody listens.
        const int fd = socket(AF_UNIX, SOCK_STREAM, 0);
        sockaddr_un addr{};
        addr.sun_family = AF_UNIX;
        std::strncpy(addr.sun_path, config.socket.c_str(), sizeof(addr.sun_path) - 1);
        ASSERT_EQ(bind(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)), 0);
        close(fd);
    }
    start(config);
    LineClient client(path());
    EXPECT_EQ(parsed(client.ask(R"({"command":"version"})"))["return"], "OK");
}

TEST_F(ControlServerTest, LiveSocketNotTakenOver) {
    start();
    ControlServer second(config_in(dir_));
    const Status st = second.start(std_thread_spawner());
    ASSERT_FALSE(st.ok());
    EXPECT_EQ(
            st.error(), "another process answers on " + path() + " (is exfiltap already running?)");
    LineClient client(path());
    EXPECT_EQ(parsed(client.ask(R"({"command":"version"})"))["return"], "OK");
}

TEST_F(ControlServerTest, NonSocketFileNotReplaced) {
    const ControlConfig config = config_in(dir_);
    std::ofstream(config.socket) << "keep me\n";
    ControlServer server(config);
    const Status st = server.start(std_thread_spawner());
    ASSERT_FALSE(st.ok());
    EXPECT_EQ(st.error(),
            config.socket + " exists and is not a socket; remove it or set control.socket");
    std::ifstream in(config.socket);
    std::string text;
    std::getline(in, text);
    EXPECT_EQ(text, "keep me");
}

TEST_F(ControlServerTest, StopUnlinksSocketAndClosesConnections) {
    start();
    LineClient client(path());
    ASSERT_EQ(parsed(client.ask(R"({"command":"version"})"))["return"], "OK");
    const std::string p = path();
    loop_.reset();
    server_->stop();
    struct stat st {};
    EXPECT_NE(lstat(p.c_str(), &st), 0);
    EXPECT_FALSE(client.read_line(2000).has_value());
    EXPECT_TRUE(client.eof());
    LineClient late(p);
    EXPECT_FALSE(late.connected());
}

TEST_F(ControlServerTest, SurvivesClientClosingMidLine) {
    start();
    {
        LineClient client(path());
        ASSERT_TRUE(client.send_text(R"({"command":"block","argum)"));
    }
    {
        LineClient client(path());
        ASSERT_TRUE(client.send_text(std::string(100000, '{')));
    }
    LineClient client(path());
    EXPECT_EQ(parsed(client.ask(R"({"command":"version"})"))["return"], "OK");
    EXPECT_EQ(handler_.count(Command::Block), 0U);
}

TEST_F(ControlServerTest, LastRequestWithoutNewlineAnsweredAtEndOfInput) {
    start();
    LineClient client(path());
    ASSERT_TRUE(client.send_text(R"({"command":"version"})"));
    ASSERT_EQ(shutdown(client.fd(), SHUT_WR), 0);
    EXPECT_EQ(parsed(client.read_line().value_or(""))["return"], "OK");
    EXPECT_FALSE(client.read_line().has_value());
    EXPECT_TRUE(client.eof());
}

TEST_F(ControlServerTest, IdleConnectionClosed) {
    start_with([](ControlConfig& c) { c.idle_timeout_s = 1; });
    LineClient client(path());
    EXPECT_EQ(client.read_line(4000), R"({"return":"NOK","message":"idle timeout"})");
    EXPECT_FALSE(client.read_line(2000).has_value());
    EXPECT_TRUE(client.eof());
    EXPECT_EQ(server_->stats().connections_idle_closed, 1U);
}

TEST_F(ControlServerTest, FollowStreamsNewAlerts) {
    start();
    LineClient client(path());
    const auto reply = parsed(client.ask(R"({"command":"alerts","arguments":{"follow":true}})"));
    ASSERT_EQ(reply["return"], "OK");
    EXPECT_EQ(reply["message"], FakeHandler::recent_alerts());
    server_->publish_alert(FakeHandler::sample_alert(2).dump());
    server_->publish_alert(FakeHandler::sample_alert(3).dump() + "\n");
    EXPECT_EQ(parsed(client.read_line().value_or("")), FakeHandler::sample_alert(2));
    EXPECT_EQ(parsed(client.read_line().value_or("")), FakeHandler::sample_alert(3));
    // Input from a follower is ignored, not answered.
    ASSERT_TRUE(client.send_text(R"({"command":"version"})"
                                 "\n"));
    EXPECT_FALSE(client.read_line(300).has_value());
    EXPECT_TRUE(client.timed_out());
}

TEST_F(ControlServerTest, AlertsReachOnlyFollowers) {
    start();
    LineClient follower(path());
    LineClient other(path());
    ASSERT_EQ(parsed(follower.ask(R"({"command":"alerts","arguments":{"follow":true}})"))["return"],
            "OK");
    ASSERT_EQ(parsed(other.ask(R"({"command":"alerts"})"))["return"], "OK");
    server_->publish_alert(R"({"n":1})");
    EXPECT_EQ(follower.read_line(), R"({"n":1})");
    EXPECT_FALSE(other.read_line(300).has_value());
}

TEST_F(ControlServerTest, FollowerHangUpClosesConnection) {
    start();
    {
        LineClient follower(path());
        ASSERT_EQ(parsed(follower.ask(
                          R"({"command":"alerts","arguments":{"follow":true}})"))["return"],
                "OK");
    }
    ASSERT_TRUE(eventually([&] { return server_->stats().connections_open == 0; }));
    server_->publish_alert(R"({"n":1})");  // nobody follows: nothing queued, nothing breaks
    LineClient client(path());
    EXPECT_EQ(parsed(client.ask(R"({"command":"version"})"))["return"], "OK");
}

TEST_F(ControlServerTest, SlowFollowerLosesCountedLines) {
    start();
    LineClient follower(path());
    ASSERT_EQ(parsed(follower.ask(R"({"command":"alerts","arguments":{"follow":true}})"))["return"],
            "OK");
    // The follower reads nothing while about 4 MB are published: far more than the socket
    // buffers and the per-connection limit hold.
    const std::string padding(1000, 'p');
    constexpr int kPublished = 4000;
    for (int i = 0; i < kPublished; ++i) {
        server_->publish_alert(R"({"n":)" + std::to_string(i) + R"(,"pad":")" + padding + "\"}");
        if (i % 500 == 0) {
            std::this_thread::sleep_for(std::chrono::milliseconds(5));
        }
    }
    ASSERT_TRUE(eventually([&] { return server_->stats().follow_lines_dropped > 0; }));
    // Read everything; one last alert after the backlog carries the marker for the tail.
    int received = 0;
    uint64_t announced = 0;
    int last = -1;
    bool done = false;
    bool sent_final = false;
    while (!done) {
        const auto line = follower.read_line(sent_final ? 5000 : 300);
        if (!line) {
            ASSERT_FALSE(sent_final) << "final alert never arrived";
            server_->publish_alert(R"({"n":"final"})");
            sent_final = true;
            continue;
        }
        const auto value = parsed(*line);
        if (value.contains("dropped")) {
            announced += value["dropped"].get<uint64_t>();
        } else if (value["n"] == "final") {
            done = true;
        } else {
            const int n = value["n"].get<int>();
            EXPECT_GT(n, last);  // order kept, gaps only where announced
            last = n;
            ++received;
        }
    }
    EXPECT_EQ(announced, server_->stats().follow_lines_dropped);
    EXPECT_EQ(static_cast<uint64_t>(received) + announced, static_cast<uint64_t>(kPublished));
    EXPECT_GT(received, 0);
}

TEST_F(ControlServerTest, ReaderThatNeverReadsIsThrottled) {
    start();
    LineClient greedy(path());
    // 150 large replies nobody reads (6 MB); the server must keep serving others.
    std::string batch;
    for (int i = 0; i < 150; ++i) {
        batch += R"({"command":"flows","arguments":{"top":1000}})"
                 "\n";
    }
    std::thread writer([&] { greedy.send_text(batch); });
    LineClient client(path());
    EXPECT_EQ(parsed(client.ask(R"({"command":"version"})"))["return"], "OK");
    shutdown(greedy.fd(), SHUT_RDWR);  // wakes the writer if it blocks
    writer.join();
    greedy.close_now();
    EXPECT_EQ(parsed(client.ask(R"({"command":"version"})"))["return"], "OK");
}

/// The defaults with the `control:` section of `root` applied.
ControlConfig applied(const YAML::Node& root, config_reader::Problems& problems) {
    const config_reader::Entry section{"control", root["control"], {"control", 0}, 0};
    ControlConfig config;
    apply_control(problems, section, config);
    return config;
}

TEST(ControlConfigTest, AppliesEveryKey) {
    const YAML::Node root = YAML::Load(
            "control:\n  socket: /run/x/ctl.sock\n  group: exfiltap\n  max_connections: 4\n"
            "  max_line_bytes: 4096\n  rate_per_s: 10\n  idle_timeout_s: 60\n");
    config_reader::Problems problems("test.yaml", true);
    const ControlConfig config = applied(root, problems);
    EXPECT_TRUE(problems.empty()) << problems.joined();
    EXPECT_EQ(config.socket, "/run/x/ctl.sock");
    EXPECT_EQ(config.group, "exfiltap");
    EXPECT_EQ(config.max_connections, 4U);
    EXPECT_EQ(config.max_line_bytes, 4096U);
    EXPECT_EQ(config.rate_per_s, 10U);
    EXPECT_EQ(config.idle_timeout_s, 60U);
}

TEST(ControlConfigTest, ReportsEachProblemWithLine) {
    const YAML::Node root = YAML::Load(
            "control:\n  socket: relative.sock\n  group: 'bad group'\n  max_connections: 0\n"
            "  rate: 5\n");
    // Unknown keys are reported while the section is read, before the values.
    config_reader::Problems problems("test.yaml", true);
    const ControlConfig config = applied(root, problems);
    EXPECT_EQ(problems.joined(),
            "test.yaml:5: control.rate: unknown key, expected one of socket, group, "
            "max_connections, max_line_bytes, rate_per_s, idle_timeout_s\n"
            "test.yaml:2: control.socket: must be an absolute path\n"
            "test.yaml:3: control.group: expected a group name or gid (letters, digits, _ - .; "
            "at most 32)\n"
            "test.yaml:4: control.max_connections: 0 is out of range 1..1024");
    EXPECT_EQ(config.socket, ControlConfig{}.socket);
}

TEST(ControlConfigTest, RefusesSocketPathTooLong) {
    const YAML::Node root = YAML::Load("control:\n  socket: /" + std::string(120, 'a') + "\n");
    config_reader::Problems problems("test.yaml", true);
    const ControlConfig config = applied(root, problems);
    EXPECT_EQ(problems.joined(),
            "test.yaml:2: control.socket: longer than 107 bytes, the limit of a Unix socket path");
}

}  // namespace
}  // namespace exfiltap::control
