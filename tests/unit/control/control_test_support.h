// Shared by the control socket tests: a temporary folder, a raw line client, a fake command
// handler and a control loop thread that dispatches for it.
#pragma once

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "control/control_server.h"
#include "tests/temp_dir.h"

namespace exfiltap::control::testing {

using TempDir = exfiltap::test_support::TempDir;

/// A blocking Unix stream client that reads whole lines with a time limit.
class LineClient {
public:
    explicit LineClient(const std::string& path) {
        fd_ = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_un addr{};
        addr.sun_family = AF_UNIX;
        std::strncpy(addr.sun_path, path.c_str(), sizeof(addr.sun_path) - 1);
        connected_ = fd_ >= 0
                && connect(fd_, reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) == 0;
    }
    ~LineClient() { close_now(); }
    LineClient(const LineClient&) = delete;
    LineClient& operator=(const LineClient&) = delete;

    bool connected() const { return connected_; }
    int fd() const { return fd_; }

    bool send_text(const std::string& text) {
        size_t done = 0;
        while (done < text.size()) {
            const ssize_t n = send(fd_, text.data() + done, text.size() - done, MSG_NOSIGNAL);
            if (n <= 0) {
                return false;
            }
            done += static_cast<size_t>(n);
        }
        return true;
    }

    /// The next line without its newline; nullopt on end of stream or after `timeout_ms`.
    std::optional<std::string> read_line(int timeout_ms = 5000) {
        const auto deadline =
                std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
        for (;;) {
            const size_t newline = buffer_.find('\n');
            if (newline != std::string::npos) {
                std::string line = buffer_.substr(0, newline);
                buffer_.erase(0, newline + 1);
                return line;
            }
            const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                    deadline - std::chrono::steady_clock::now());
            pollfd pfd{fd_, POLLIN, 0};
            if (left.count() <= 0 || poll(&pfd, 1, static_cast<int>(left.count())) <= 0) {
                timed_out_ = true;
                return std::nullopt;
            }
            char chunk[65536];
            const ssize_t n = recv(fd_, chunk, sizeof(chunk), 0);
            if (n <= 0) {
                eof_ = true;
                return std::nullopt;
            }
            buffer_.append(chunk, static_cast<size_t>(n));
        }
    }

    /// Sends one request line and returns the reply line.
    std::string ask(const std::string& request) {
        send_text(request + "\n");
        return read_line().value_or("<no reply>");
    }

    bool eof() const { return eof_; }
    bool timed_out() const { return timed_out_; }

    void close_now() {
        if (fd_ >= 0) {
            close(fd_);
            fd_ = -1;
        }
    }

private:
    int fd_ = -1;
    bool connected_ = false;
    bool eof_ = false;
    bool timed_out_ = false;
    std::string buffer_;
};

/// Answers like a small daemon and records what it was asked and by whom.
class FakeHandler : public CommandHandler {
public:
    Reply handle(const Request& request, const Peer& peer) override {
        {
            std::lock_guard lock(mutex_);
            requests_.push_back(request);
            peers_.push_back(peer);
        }
        switch (request.command) {
        case Command::Block:
            return Reply::success("blocked " + request.address.to_string());
        case Command::Unblock:
            return Reply::failure(request.address.to_string() + " is not blocked");
        case Command::Allow:
        case Command::Unallow:
            return Reply::success("done");
        case Command::List:
            return Reply::success(nlohmann::json{
                    {"block",
                            {{{"address", "192.0.2.7/32"}, {"reason", "paste site"},
                                     {"who", "root"}, {"hits", 12}},
                                    {{"address", "198.51.100.0/24"}, {"reason", "c2"},
                                            {"who", "alice"}, {"hits", 3456}}}},
                    {"allow", nlohmann::json::array()}});
        case Command::Stats:
            return Reply::success(
                    nlohmann::json{{"packets", {{"rx", 1000}, {"tx", 990}}}, {"alerts", 3}});
        case Command::Flows: {
            nlohmann::json top = nlohmann::json::array();
            for (uint32_t i = 0; i < request.top; ++i) {
                top.push_back({{"host", "10.0.0." + std::to_string(i + 1)},
                        {"bytes_out", i < 20 ? 1572864 >> i : 1}, {"flows", 4 + i}});
            }
            return Reply::success(nlohmann::json{{"top", top}});
        }
        case Command::Alerts:
            return Reply::success(recent_alerts());
        case Command::Incidents:
            return Reply::success(nlohmann::json::array());
        case Command::Evidence:
            return Reply::success({{"path", "/tmp/evidence-x.pcapng"}});
        case Command::Reload:
            throw std::runtime_error("reload exploded");
        case Command::ReopenLogFiles:
            return Reply::success("log files reopened");
        case Command::Version:
            return Reply::success(nlohmann::json{{"version", "test-1.0"}});
        case Command::CommandList:
            break;
        }
        return Reply::failure("unexpected");
    }

    static nlohmann::json sample_alert(int n) {
        return nlohmann::json{
                {"timestamp", "2026-12-04T20:00:0" + std::to_string(n % 10) + ".000000+0000"},
                {"event_type", "alert"}, {"src_ip", "10.0.0.5"}, {"src_port", 40000 + n},
                {"dest_ip", "203.0.113.9"}, {"dest_port", 443}, {"proto", "TCP"},
                {"alert",
                        {{"action", "allowed"}, {"signature", "card numbers leaving"},
                                {"severity", 1}}},
                {"exfil", {{"detector", "content"}, {"class", "payment_card"}}}};
    }

    static nlohmann::json recent_alerts() { return nlohmann::json::array({sample_alert(1)}); }

    std::vector<Request> requests() const {
        std::lock_guard lock(mutex_);
        return requests_;
    }
    std::vector<Peer> peers() const {
        std::lock_guard lock(mutex_);
        return peers_;
    }
    size_t count(Command command) const {
        std::lock_guard lock(mutex_);
        return static_cast<size_t>(std::count_if(requests_.begin(), requests_.end(),
                [&](const Request& r) { return r.command == command; }));
    }

private:
    mutable std::mutex mutex_;
    std::vector<Request> requests_;
    std::vector<Peer> peers_;
};

/// The daemon's control loop, reduced to dispatching every millisecond.
class DispatchLoop {
public:
    DispatchLoop(ControlServer& server, CommandHandler& handler)
        : thread_([this, &server, &handler] {
              while (!stop_.load()) {
                  server.dispatch(handler);
                  std::this_thread::sleep_for(std::chrono::milliseconds(1));
              }
          }) {}
    ~DispatchLoop() {
        stop_.store(true);
        thread_.join();
    }
    DispatchLoop(const DispatchLoop&) = delete;
    DispatchLoop& operator=(const DispatchLoop&) = delete;

private:
    std::atomic<bool> stop_{false};
    std::thread thread_;
};

/// Waits up to `timeout_ms` for `done()`.
template <typename F>
bool eventually(F done, int timeout_ms = 5000) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    while (std::chrono::steady_clock::now() < deadline) {
        if (done()) {
            return true;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    return done();
}

inline ControlConfig config_in(const TempDir& dir) {
    ControlConfig config;
    config.socket = dir.path() + "/control.sock";
    return config;
}

}  // namespace exfiltap::control::testing
