// Test peers for the SIEM outputs: a syslog receiver on loopback or a Unix socket in a temp
// folder (UDP datagrams, TCP with RFC 6587 octet counting, or one that accepts and never
// reads), and a real redis-server started on 127.0.0.1 with a free port, ended by its PID.
// Nothing here talks to any address but loopback.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "common/result.h"

namespace exfiltap::testing {

/// A port on 127.0.0.1 that was free a moment ago (bound to :0, then closed).
uint16_t free_loopback_port();

class SyslogReceiver {
public:
    enum class Kind {
        Udp,
        Tcp,         // reads octet-counted frames
        TcpStalled,  // accepts, never reads
        UnixDgram,
        UnixStream,  // reads octet-counted frames
    };
    /// Listens on 127.0.0.1:0 (UDP/TCP) or at `unix_path`; path() empty and error() set on
    /// failure.
    explicit SyslogReceiver(Kind kind, const std::string& unix_path = "");
    ~SyslogReceiver();
    SyslogReceiver(const SyslogReceiver&) = delete;
    SyslogReceiver& operator=(const SyslogReceiver&) = delete;

    bool ok() const { return error_.empty(); }
    const std::string& error() const { return error_; }
    /// "127.0.0.1:PORT" or the socket path.
    std::string address() const;
    /// Waits (up to `limit`) until at least `count` messages arrived; returns them all.
    std::vector<std::string> wait_for(
            size_t count, std::chrono::milliseconds limit = std::chrono::milliseconds(10000));
    std::vector<std::string> messages();
    /// Connections accepted (stream kinds).
    size_t accepted() const { return accepted_.load(); }
    /// Frames that did not parse as "LEN SP MSG".
    size_t bad_frames() const { return bad_frames_.load(); }

private:
    void run();
    void read_stream(int fd);

    Kind kind_;
    std::string unix_path_;
    std::string error_;
    int fd_ = -1;
    int stop_pipe_[2] = {-1, -1};
    uint16_t port_ = 0;
    std::thread thread_;
    std::mutex mutex_;
    std::vector<std::string> messages_;
    std::vector<int> held_;  // stalled connections, kept open unread
    std::atomic<size_t> accepted_{0};
    std::atomic<size_t> bad_frames_{0};
};

/// redis-server on 127.0.0.1 (no persistence), its working files in `dir`.
class RedisServer {
public:
    /// Returns false (with why) when redis-server is not installed or does not come up.
    bool start(const std::string& dir);
    ~RedisServer();
    void stop();
    bool running() const { return pid_ > 0; }
    const std::string& error() const { return error_; }
    uint16_t port() const { return port_; }
    std::string address() const { return "127.0.0.1:" + std::to_string(port_); }
    /// LRANGE key 0 -1.
    Result<std::vector<std::string>> list(const std::string& key) const;

private:
    pid_t pid_ = -1;
    uint16_t port_ = 0;
    std::string error_;
};

/// A Redis SUBSCRIBE on its own connection; messages() waits for what was published.
class RedisSubscriber {
public:
    RedisSubscriber(const RedisServer& server, const std::string& channel);
    ~RedisSubscriber();
    RedisSubscriber(const RedisSubscriber&) = delete;
    RedisSubscriber& operator=(const RedisSubscriber&) = delete;
    bool ok() const { return context_ != nullptr; }
    /// Up to `count` messages, each read waiting at most `limit`.
    std::vector<std::string> read(
            size_t count, std::chrono::milliseconds limit = std::chrono::milliseconds(10000));

private:
    void* context_ = nullptr;  // redisContext
};

}  // namespace exfiltap::testing
