#include "tests/siem_fixtures.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <hiredis/hiredis.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <filesystem>

namespace exfiltap::testing {
namespace {

int bind_loopback(int type, uint16_t& port) {
    const int fd = ::socket(AF_INET, type | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        return -1;
    }
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(a);
    if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0
            || ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
        ::close(fd);
        return -1;
    }
    port = ntohs(a.sin_port);
    return fd;
}

timeval timeval_of(std::chrono::milliseconds ms) {
    timeval tv{};
    tv.tv_sec = static_cast<time_t>(ms.count() / 1000);
    tv.tv_usec = static_cast<suseconds_t>((ms.count() % 1000) * 1000);
    return tv;
}

}  // namespace

uint16_t free_loopback_port() {
    uint16_t port = 0;
    const int fd = bind_loopback(SOCK_STREAM, port);
    if (fd >= 0) {
        ::close(fd);
    }
    return port;
}

SyslogReceiver::SyslogReceiver(Kind kind, const std::string& unix_path)
    : kind_(kind), unix_path_(unix_path) {
    if (::pipe2(stop_pipe_, O_CLOEXEC) != 0) {
        error_ = "pipe";
        return;
    }
    const bool stream = kind == Kind::Tcp || kind == Kind::TcpStalled || kind == Kind::UnixStream;
    if (kind == Kind::UnixDgram || kind == Kind::UnixStream) {
        fd_ = ::socket(AF_UNIX, (stream ? SOCK_STREAM : SOCK_DGRAM) | SOCK_CLOEXEC, 0);
        sockaddr_un un{};
        un.sun_family = AF_UNIX;
        if (fd_ < 0 || unix_path.size() >= sizeof(un.sun_path)) {
            error_ = "unix socket";
            return;
        }
        std::memcpy(un.sun_path, unix_path.data(), unix_path.size());
        if (::bind(fd_, reinterpret_cast<sockaddr*>(&un), sizeof(un)) != 0) {
            error_ = std::string("bind ") + unix_path + ": " + strerror(errno);
            return;
        }
    } else {
        fd_ = bind_loopback(stream ? SOCK_STREAM : SOCK_DGRAM, port_);
        if (fd_ < 0) {
            error_ = "bind 127.0.0.1:0";
            return;
        }
    }
    if (stream) {
        // The stalled kind never accepts more than the backlog holds; that is enough.
        if (::listen(fd_, 16) != 0) {
            error_ = "listen";
            return;
        }
    }
    thread_ = std::thread([this]() { run(); });
}

SyslogReceiver::~SyslogReceiver() {
    if (stop_pipe_[1] >= 0) {
        const char c = 'x';
        (void)::write(stop_pipe_[1], &c, 1);
    }
    if (thread_.joinable()) {
        thread_.join();
    }
    for (const int fd : held_) {
        ::close(fd);
    }
    for (const int fd : {fd_, stop_pipe_[0], stop_pipe_[1]}) {
        if (fd >= 0) {
            ::close(fd);
        }
    }
    if (!unix_path_.empty()) {
        std::error_code ec;
        std::filesystem::remove(unix_path_, ec);
    }
}

std::string SyslogReceiver::address() const {
    if (kind_ == Kind::UnixDgram || kind_ == Kind::UnixStream) {
        return unix_path_;
    }
    return "127.0.0.1:" + std::to_string(port_);
}

std::vector<std::string> SyslogReceiver::messages() {
    const std::lock_guard<std::mutex> lock(mutex_);
    return messages_;
}

std::vector<std::string> SyslogReceiver::wait_for(size_t count, std::chrono::milliseconds limit) {
    const auto end = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < end) {
        {
            const std::lock_guard<std::mutex> lock(mutex_);
            if (messages_.size() >= count) {
                return messages_;
            }
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return messages();
}

void SyslogReceiver::run() {
    const bool dgram = kind_ == Kind::Udp || kind_ == Kind::UnixDgram;
    std::vector<pollfd> fds;
    std::vector<std::string> partial;  // per connection, parallel to fds[2..]
    fds.push_back({stop_pipe_[0], POLLIN, 0});
    fds.push_back({fd_, POLLIN, 0});
    std::vector<char> buffer(256 * 1024);
    while (true) {
        if (::poll(fds.data(), fds.size(), -1) < 0) {
            if (errno == EINTR) {
                continue;
            }
            return;
        }
        if (fds[0].revents != 0) {
            return;
        }
        if ((fds[1].revents & POLLIN) != 0) {
            if (dgram) {
                const ssize_t n = ::recv(fd_, buffer.data(), buffer.size(), 0);
                if (n >= 0) {
                    const std::lock_guard<std::mutex> lock(mutex_);
                    messages_.emplace_back(buffer.data(), static_cast<size_t>(n));
                }
            } else {
                const int c = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
                if (c >= 0) {
                    ++accepted_;
                    if (kind_ == Kind::TcpStalled) {
                        held_.push_back(c);
                    } else {
                        fds.push_back({c, POLLIN, 0});
                        partial.emplace_back();
                    }
                }
            }
        }
        for (size_t i = 2; i < fds.size();) {
            if (fds[i].revents == 0) {
                ++i;
                continue;
            }
            const ssize_t n = ::recv(fds[i].fd, buffer.data(), buffer.size(), 0);
            if (n <= 0) {
                ::close(fds[i].fd);
                fds.erase(fds.begin() + static_cast<ptrdiff_t>(i));
                partial.erase(partial.begin() + static_cast<ptrdiff_t>(i - 2));
                continue;
            }
            std::string& data = partial[i - 2];
            data.append(buffer.data(), static_cast<size_t>(n));
            // RFC 6587 octet counting: "LEN SP MSG" repeated.
            while (true) {
                const size_t space = data.find(' ');
                if (space == std::string::npos) {
                    break;
                }
                size_t len = 0;
                bool digits = space > 0;
                for (size_t k = 0; k < space; ++k) {
                    if (data[k] < '0' || data[k] > '9') {
                        digits = false;
                        break;
                    }
                    len = len * 10 + static_cast<size_t>(data[k] - '0');
                }
                if (!digits) {
                    ++bad_frames_;
                    data.clear();
                    break;
                }
                if (data.size() < space + 1 + len) {
                    break;
                }
                {
                    const std::lock_guard<std::mutex> lock(mutex_);
                    messages_.push_back(data.substr(space + 1, len));
                }
                data.erase(0, space + 1 + len);
            }
            ++i;
        }
    }
}

bool RedisServer::start(const std::string& dir) {
    const char* binary = "/usr/bin/redis-server";
    if (::access(binary, X_OK) != 0) {
        error_ = "redis-server is not installed (Debian package redis-server)";
        return false;
    }
    port_ = free_loopback_port();
    const std::string port = std::to_string(port_);
    const std::string log = dir + "/redis.log";
    pid_ = ::fork();
    if (pid_ == 0) {
        execl(binary, binary, "--port", port.c_str(), "--bind", "127.0.0.1", "--save", "",
                "--appendonly", "no", "--daemonize", "no", "--dir", dir.c_str(), "--logfile",
                log.c_str(), static_cast<char*>(nullptr));
        _exit(127);
    }
    if (pid_ < 0) {
        error_ = "fork";
        return false;
    }
    // Up when it answers PING.
    for (int i = 0; i < 500; ++i) {
        redisContext* c = redisConnectWithTimeout(
                "127.0.0.1", port_, timeval_of(std::chrono::milliseconds(200)));
        if (c != nullptr && c->err == 0) {
            auto* reply = static_cast<redisReply*>(redisCommand(c, "PING"));
            const bool up = reply != nullptr && reply->type == REDIS_REPLY_STATUS;
            freeReplyObject(reply);
            redisFree(c);
            if (up) {
                return true;
            }
        } else if (c != nullptr) {
            redisFree(c);
        }
        int status = 0;
        if (::waitpid(pid_, &status, WNOHANG) == pid_) {
            pid_ = -1;
            error_ = "redis-server exited at start (see " + log + ")";
            return false;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    error_ = "redis-server did not answer on port " + port;
    stop();
    return false;
}

RedisServer::~RedisServer() {
    stop();
}

void RedisServer::stop() {
    if (pid_ > 0) {
        ::kill(pid_, SIGTERM);
        int status = 0;
        ::waitpid(pid_, &status, 0);
        pid_ = -1;
    }
}

Result<std::vector<std::string>> RedisServer::list(const std::string& key) const {
    redisContext* c = redisConnectWithTimeout(
            "127.0.0.1", port_, timeval_of(std::chrono::milliseconds(2000)));
    if (c == nullptr || c->err != 0) {
        const std::string why = c != nullptr ? c->errstr : "no memory";
        redisFree(c);
        return make_error("connect: " + why);
    }
    auto* reply =
            static_cast<redisReply*>(redisCommand(c, "LRANGE %b 0 -1", key.data(), key.size()));
    std::vector<std::string> out;
    if (reply == nullptr || reply->type != REDIS_REPLY_ARRAY) {
        freeReplyObject(reply);
        redisFree(c);
        return make_error("LRANGE failed");
    }
    for (size_t i = 0; i < reply->elements; ++i) {
        out.emplace_back(reply->element[i]->str, reply->element[i]->len);
    }
    freeReplyObject(reply);
    redisFree(c);
    return out;
}

RedisSubscriber::RedisSubscriber(const RedisServer& server, const std::string& channel) {
    redisContext* c = redisConnectWithTimeout(
            "127.0.0.1", server.port(), timeval_of(std::chrono::milliseconds(2000)));
    if (c == nullptr || c->err != 0) {
        redisFree(c);
        return;
    }
    auto* reply = static_cast<redisReply*>(
            redisCommand(c, "SUBSCRIBE %b", channel.data(), channel.size()));
    const bool ok = reply != nullptr && reply->type == REDIS_REPLY_ARRAY;
    freeReplyObject(reply);
    if (!ok) {
        redisFree(c);
        return;
    }
    context_ = c;
}

RedisSubscriber::~RedisSubscriber() {
    if (context_ != nullptr) {
        redisFree(static_cast<redisContext*>(context_));
    }
}

std::vector<std::string> RedisSubscriber::read(size_t count, std::chrono::milliseconds limit) {
    std::vector<std::string> out;
    auto* c = static_cast<redisContext*>(context_);
    if (c == nullptr) {
        return out;
    }
    redisSetTimeout(c, timeval_of(limit));
    while (out.size() < count) {
        void* raw = nullptr;
        if (redisGetReply(c, &raw) != REDIS_OK) {
            break;
        }
        auto* reply = static_cast<redisReply*>(raw);
        // ["message", channel, payload]
        if (reply->type == REDIS_REPLY_ARRAY && reply->elements == 3) {
            out.emplace_back(reply->element[2]->str, reply->element[2]->len);
        }
        freeReplyObject(reply);
    }
    return out;
}

}  // namespace exfiltap::testing
