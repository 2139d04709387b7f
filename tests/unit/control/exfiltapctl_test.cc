// exfiltapctl end to end: the built binary against a real server with a fake handler.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>

#include <gtest/gtest.h>

#include "tests/unit/control/control_test_support.h"

namespace exfiltap::control {
namespace {

using testing::config_in;
using testing::DispatchLoop;
using testing::eventually;
using testing::FakeHandler;
using testing::TempDir;

struct CtlRun {
    int exit_code = -1;
    std::string out;
    std::string err;
};

/// Runs exfiltapctl with `args` (and `env` entries, "NAME=value"), killing it after
/// `timeout_ms`. `while_running` is called once the child has started.
CtlRun run_ctl(const std::vector<std::string>& args, const std::vector<std::string>& env = {},
        int timeout_ms = 10000, const std::function<void()>& while_running = {}) {
    int out_pipe[2];
    int err_pipe[2];
    if (pipe2(out_pipe, O_CLOEXEC) != 0 || pipe2(err_pipe, O_CLOEXEC) != 0) {
        return {};
    }
    std::vector<std::string> argv_text = {EXFILTAPCTL_BINARY};
    argv_text.insert(argv_text.end(), args.begin(), args.end());
    std::vector<char*> argv;
    for (auto& a : argv_text) {
        argv.push_back(a.data());
    }
    argv.push_back(nullptr);
    std::vector<std::string> env_text = env;
    std::vector<char*> envp;
    for (auto& e : env_text) {
        envp.push_back(e.data());
    }
    envp.push_back(nullptr);

    const pid_t pid = fork();
    if (pid == 0) {
        dup2(out_pipe[1], STDOUT_FILENO);
        dup2(err_pipe[1], STDERR_FILENO);
        execve(argv[0], argv.data(), envp.data());
        _exit(127);
    }
    close(out_pipe[1]);
    close(err_pipe[1]);
    if (while_running) {
        while_running();
    }
    CtlRun run;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    std::array<pollfd, 2> fds = {pollfd{out_pipe[0], POLLIN, 0}, pollfd{err_pipe[0], POLLIN, 0}};
    int open_pipes = 2;
    bool killed = false;
    while (open_pipes > 0) {
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                deadline - std::chrono::steady_clock::now());
        if (left.count() <= 0) {
            kill(pid, SIGKILL);
            killed = true;
            break;
        }
        if (poll(fds.data(), fds.size(), static_cast<int>(left.count())) <= 0) {
            continue;
        }
        for (size_t i = 0; i < fds.size(); ++i) {
            if (fds[i].fd < 0 || fds[i].revents == 0) {
                continue;
            }
            char chunk[4096];
            const ssize_t n = read(fds[i].fd, chunk, sizeof(chunk));
            if (n <= 0) {
                close(fds[i].fd);
                fds[i].fd = -1;
                --open_pipes;
            } else {
                (i == 0 ? run.out : run.err).append(chunk, static_cast<size_t>(n));
            }
        }
    }
    for (auto& fd : fds) {
        if (fd.fd >= 0) {
            close(fd.fd);
        }
    }
    int status = 0;
    waitpid(pid, &status, 0);
    run.exit_code = killed ? -9 : (WIFEXITED(status) ? WEXITSTATUS(status) : -1);
    return run;
}

class ExfiltapctlTest : public ::testing::Test {
protected:
    void SetUp() override {
        server_ = std::make_unique<ControlServer>(config_in(dir_));
        const Status st = server_->start(std_thread_spawner());
        ASSERT_TRUE(st.ok()) << st.error();
        loop_ = std::make_unique<DispatchLoop>(*server_, handler_);
    }
    void TearDown() override {
        loop_.reset();
        server_.reset();
    }

    CtlRun ctl(std::vector<std::string> args) {
        args.insert(args.begin(), {"--socket", server_->socket_path()});
        return run_ctl(args);
    }

    TempDir dir_;
    FakeHandler handler_;
    std::unique_ptr<ControlServer> server_;
    std::unique_ptr<DispatchLoop> loop_;
};

TEST_F(ExfiltapctlTest, VersionHumanOutput) {
    const CtlRun r = ctl({"version"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.out, "version  test-1.0\n");
    EXPECT_EQ(r.err, "");
}

TEST_F(ExfiltapctlTest, JsonPrintsRawReply) {
    const CtlRun r = ctl({"--json", "version"});
    EXPECT_EQ(r.exit_code, 0);
    EXPECT_EQ(r.out, "{\"return\":\"OK\",\"message\":{\"version\":\"test-1.0\"}}\n");
}

TEST_F(ExfiltapctlTest, BlockSendsEveryArgument) {
    const CtlRun r = ctl({"block", "192.0.2.7", "--ttl", "600", "--reason", "paste site"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.out, "blocked 192.0.2.7/32\n");
    const auto requests = handler_.requests();
    ASSERT_EQ(requests.size(), 1U);
    EXPECT_EQ(requests[0].command, Command::Block);
    EXPECT_EQ(requests[0].ttl_s.value_or(0), 600U);
    EXPECT_EQ(requests[0].reason, "paste site");
    EXPECT_EQ(requests[0].address.to_string(), "192.0.2.7/32");
}

TEST_F(ExfiltapctlTest, BlockWithoutTtlSendsNone) {
    EXPECT_EQ(ctl({"block", "10.0.0.0/8"}).exit_code, 0);
    ASSERT_EQ(handler_.requests().size(), 1U);
    EXPECT_FALSE(handler_.requests()[0].ttl_s.has_value());
}

TEST_F(ExfiltapctlTest, ServerRefusalExitsOne) {
    const CtlRun r = ctl({"block", "10.1.2.3/8"});
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_EQ(r.out, "");
    EXPECT_EQ(r.err.rfind("exfiltapctl: block: block: bad address: ", 0), 0U) << r.err;
}

TEST_F(ExfiltapctlTest, HandlerNokExitsOne) {
    const CtlRun r = ctl({"unblock", "10.0.0.1"});
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_EQ(r.err, "exfiltapctl: unblock: 10.0.0.1/32 is not blocked\n");
}

TEST_F(ExfiltapctlTest, JsonNokPrintsRawReplyAndExitsOne) {
    const CtlRun r = ctl({"--json", "unblock", "10.0.0.1"});
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_EQ(r.out, "{\"return\":\"NOK\",\"message\":\"10.0.0.1/32 is not blocked\"}\n");
}

TEST_F(ExfiltapctlTest, ListPrintsAlignedTables) {
    const CtlRun r = ctl({"list", "--kind", "all"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.out,
            "allow (0)\n"
            "(none)\n"
            "\n"
            "block (2)\n"
            "ADDRESS          HITS  REASON      WHO\n"
            "192.0.2.7/32       12  paste site  root\n"
            "198.51.100.0/24  3456  c2          alice\n");
    EXPECT_EQ(handler_.requests().at(0).kind, ListKind::All);
}

TEST_F(ExfiltapctlTest, StatsPrintsFlattenedPairs) {
    const CtlRun r = ctl({"stats"});
    EXPECT_EQ(r.exit_code, 0);
    EXPECT_EQ(r.out, "alerts      3\npackets.rx  1000\npackets.tx  990\n");
}

TEST_F(ExfiltapctlTest, FlowsShowsBytesInUnits) {
    const CtlRun r = ctl({"flows", "--top", "2"});
    EXPECT_EQ(r.exit_code, 0);
    EXPECT_EQ(handler_.requests().at(0).top, 2U);
    EXPECT_EQ(r.out,
            "top (2)\n"
            "BYTES OUT  FLOWS  HOST\n"
            "  1.5 MiB      4  10.0.0.1\n"
            "768.0 KiB      5  10.0.0.2\n");
}

TEST_F(ExfiltapctlTest, AlertsTable) {
    const CtlRun r = ctl({"alerts", "--count", "5"});
    EXPECT_EQ(r.exit_code, 0);
    EXPECT_EQ(handler_.requests().at(0).count, 5U);
    EXPECT_EQ(r.out,
            "TIME                 SEV ACTION   DETECTOR/CLASS           SOURCE                  "
            "DESTINATION             SIGNATURE\n"
            "2026-12-04T20:00:01  1   allowed  content/payment_card     10.0.0.5:40001          "
            "203.0.113.9:443         card numbers leaving\n");
}

TEST_F(ExfiltapctlTest, AlertsFollowStreamsUntilServerCloses) {
    const CtlRun r =
            run_ctl({"--socket", server_->socket_path(), "alerts", "--follow"}, {}, 10000, [&] {
                ASSERT_TRUE(eventually([&] { return handler_.count(Command::Alerts) == 1; }));
                // The follow reply is on its way; alerts published now must all arrive.
                server_->publish_alert(FakeHandler::sample_alert(2).dump());
                server_->publish_alert(R"({"dropped":7})");
                ASSERT_TRUE(eventually([&] { return server_->stats().connections_open == 1; }));
                std::this_thread::sleep_for(std::chrono::milliseconds(200));
                loop_.reset();
                server_->stop();
            });
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_NE(r.out.find("10.0.0.5:40001"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("10.0.0.5:40002"), std::string::npos) << r.out;
    EXPECT_EQ(r.err, "exfiltapctl: 7 alerts dropped (this client read too slowly)\n");
    EXPECT_TRUE(handler_.requests().at(0).follow);
}

TEST_F(ExfiltapctlTest, IncidentsWithId) {
    const CtlRun r = ctl({"incidents", "inc-7"});
    EXPECT_EQ(r.exit_code, 0);
    EXPECT_EQ(r.out, "(none)\n");
    EXPECT_EQ(handler_.requests().at(0).incident_id, "inc-7");
}

TEST_F(ExfiltapctlTest, EvidenceSendsFlowIdsGivenWithCommasOrSpaces) {
    const CtlRun r = ctl({"evidence", "12,13", "14", "--id", "inc-9"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(handler_.requests().at(0).command, Command::Evidence);
    EXPECT_EQ(handler_.requests().at(0).flow_ids, (std::vector<uint64_t>{12, 13, 14}));
    EXPECT_EQ(handler_.requests().at(0).incident_id, "inc-9");
}

TEST_F(ExfiltapctlTest, EvidenceRefusesAFlowIdThatIsNoNumber) {
    const CtlRun r = ctl({"evidence", "12,x"});
    EXPECT_NE(r.exit_code, 0);
    EXPECT_NE(r.err.find("flow ids are unsigned integers"), std::string::npos) << r.err;
    EXPECT_TRUE(handler_.requests().empty());
}

TEST_F(ExfiltapctlTest, CommandListOnePerLine) {
    const CtlRun r = ctl({"command-list"});
    EXPECT_EQ(r.exit_code, 0);
    EXPECT_EQ(r.out.substr(0, 20), "block\nunblock\nallow\n");
    EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), static_cast<long>(kCommandCount));
}

TEST_F(ExfiltapctlTest, ReopenLogFiles) {
    const CtlRun r = ctl({"reopen-log-files"});
    EXPECT_EQ(r.exit_code, 0);
    EXPECT_EQ(r.out, "log files reopened\n");
}

TEST_F(ExfiltapctlTest, SocketFromEnvironment) {
    const CtlRun r = run_ctl({"version"}, {"EXFILTAP_SOCKET=" + server_->socket_path()});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.out, "version  test-1.0\n");
}

TEST_F(ExfiltapctlTest, UsageErrorsExitTwo) {
    EXPECT_EQ(ctl({"bogus"}).exit_code, 2);
    EXPECT_EQ(ctl({}).exit_code, 2);
    EXPECT_EQ(ctl({"block"}).exit_code, 2);
    EXPECT_EQ(ctl({"flows", "--top", "0"}).exit_code, 2);
    EXPECT_EQ(ctl({"list", "--kind", "blocks"}).exit_code, 2);
    EXPECT_EQ(ctl({"block", "10.0.0.1", "--ttl", "-1"}).exit_code, 2);
    EXPECT_EQ(handler_.requests().size(), 0U);
}

TEST_F(ExfiltapctlTest, HelpExitsZero) {
    const CtlRun r = ctl({"--help"});
    EXPECT_EQ(r.exit_code, 0);
    EXPECT_NE(r.out.find("alerts"), std::string::npos);
}

TEST(ExfiltapctlTransportTest, NoDaemonExitsThree) {
    TempDir dir;
    const CtlRun r = run_ctl({"--socket", dir.path() + "/absent.sock", "version"});
    EXPECT_EQ(r.exit_code, 3);
    EXPECT_EQ(r.err,
            "exfiltapctl: cannot connect to " + dir.path()
                    + "/absent.sock: No such file or directory (is exfiltap running?)\n");
}

TEST(ExfiltapctlTransportTest, NoReplyTimesOut) {
    TempDir dir;
    ControlServer server(config_in(dir));
    ASSERT_TRUE(server.start(std_thread_spawner()).ok());  // nobody dispatches
    const auto started = std::chrono::steady_clock::now();
    const CtlRun r = run_ctl({"--socket", server.socket_path(), "--timeout", "0.3", "version"});
    const auto took = std::chrono::steady_clock::now() - started;
    EXPECT_EQ(r.exit_code, 3);
    EXPECT_EQ(r.err, "exfiltapctl: no reply within 0.3 s (--timeout)\n");
    EXPECT_LT(took, std::chrono::seconds(3));
    EXPECT_EQ(server.pending(), 1U);
}

TEST(ExfiltapctlTransportTest, BrokenReplyExitsThree) {
    TempDir dir;
    const std::string path = dir.path() + "/fake.sock";
    const int listener = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, path.c_str(), sizeof(addr.sun_path) - 1);
    ASSERT_EQ(bind(listener, reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)), 0);
    ASSERT_EQ(listen(listener, 1), 0);
    std::thread fake([&] {
        const int fd = accept(listener, nullptr, nullptr);
        if (fd >= 0) {
            char buffer[256];
            [[maybe_unused]] const ssize_t n = recv(fd, buffer, sizeof(buffer), 0);
            const std::string reply = "{\"status\":\"fine\"}\n";
            [[maybe_unused]] const ssize_t w = send(fd, reply.data(), reply.size(), MSG_NOSIGNAL);
            close(fd);
        }
    });
    const CtlRun r = run_ctl({"--socket", path, "version"});
    fake.join();
    close(listener);
    EXPECT_EQ(r.exit_code, 3);
    EXPECT_EQ(r.err, "exfiltapctl: broken reply from the daemon: {\"status\":\"fine\"}\n");
}

}  // namespace
}  // namespace exfiltap::control
