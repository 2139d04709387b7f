#include "control/siem_transport.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <hiredis/hiredis.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string_view>
#include <system_error>
#include <utility>

#include "control/siem_format.h"

namespace exfiltap::control {
namespace {

std::string errno_text(int error) {
    return std::generic_category().message(error);
}

timeval to_timeval(uint32_t ms) {
    timeval tv{};
    tv.tv_sec = static_cast<time_t>(ms / 1000);
    tv.tv_usec = static_cast<suseconds_t>((ms % 1000) * 1000);
    return tv;
}

/// One socket address built from the config: IPv4, IPv6 or a Unix path.
struct Address {
    sockaddr_storage storage{};
    socklen_t len = 0;
    int family = AF_UNSPEC;
};

Result<Address> make_address(SyslogTransport transport, const std::string& text) {
    Address out;
    if (transport == SyslogTransport::Unix) {
        sockaddr_un un{};
        if (text.size() >= sizeof(un.sun_path)) {
            return make_error("socket path too long: " + text);
        }
        un.sun_family = AF_UNIX;
        std::memcpy(un.sun_path, text.data(), text.size());
        std::memcpy(&out.storage, &un, sizeof(un));
        out.len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + text.size() + 1);
        out.family = AF_UNIX;
        return out;
    }
    Result<HostPort> hp = parse_host_port(text);
    if (!hp) {
        return make_error(hp.error());
    }
    sockaddr_in v4{};
    if (inet_pton(AF_INET, hp->host.c_str(), &v4.sin_addr) == 1) {
        v4.sin_family = AF_INET;
        v4.sin_port = htons(hp->port);
        std::memcpy(&out.storage, &v4, sizeof(v4));
        out.len = sizeof(v4);
        out.family = AF_INET;
        return out;
    }
    sockaddr_in6 v6{};
    if (inet_pton(AF_INET6, hp->host.c_str(), &v6.sin6_addr) == 1) {
        v6.sin6_family = AF_INET6;
        v6.sin6_port = htons(hp->port);
        std::memcpy(&out.storage, &v6, sizeof(v6));
        out.len = sizeof(v6);
        out.family = AF_INET6;
        return out;
    }
    return make_error("not an IP address: " + hp->host);
}

/// Connects `fd` within `timeout_ms` (a non-blocking connect and a poll), then makes it
/// blocking again. Returns 0 or the errno.
int connect_within(int fd, const Address& address, uint32_t timeout_ms) {
    const int flags = fcntl(fd, F_GETFL);
    if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0) {
        return errno;
    }
    int error = 0;
    if (::connect(fd, reinterpret_cast<const sockaddr*>(&address.storage), address.len) != 0) {
        error = errno;
        if (error == EINPROGRESS) {
            pollfd p{fd, POLLOUT, 0};
            int n = 0;
            do {
                n = ::poll(&p, 1, static_cast<int>(timeout_ms));
            } while (n < 0 && errno == EINTR);
            if (n == 0) {
                error = ETIMEDOUT;
            } else if (n < 0) {
                error = errno;
            } else {
                socklen_t len = sizeof(error);
                if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &len) != 0) {
                    error = errno;
                }
            }
        }
    }
    if (error == 0 && fcntl(fd, F_SETFL, flags) < 0) {
        error = errno;
    }
    return error;
}

/// Syslog over a socket. Streams (TCP, a SOCK_STREAM Unix socket) carry octet-counted
/// frames; datagram sockets (UDP, /dev/log style Unix sockets) one message each.
class SyslogSocketTransport final : public SiemTransport {
public:
    SyslogSocketTransport(SyslogOutputConfig config, TransportTimeouts timeouts)
        : config_(std::move(config)), timeouts_(timeouts) {}
    ~SyslogSocketTransport() override { close(); }
    SyslogSocketTransport(const SyslogSocketTransport&) = delete;
    SyslogSocketTransport& operator=(const SyslogSocketTransport&) = delete;
    SyslogSocketTransport(SyslogSocketTransport&&) = delete;
    SyslogSocketTransport& operator=(SyslogSocketTransport&&) = delete;

    std::string describe() const override {
        static constexpr std::array<std::string_view, 3> kNames = {"udp", "tcp", "unix"};
        return "syslog " + std::string(kNames[static_cast<size_t>(config_.transport)]) + " "
                + config_.effective_address();
    }

    Status connect() override {
        close();
        Result<Address> address = make_address(config_.transport, config_.effective_address());
        if (!address) {
            return make_error(address.error());
        }
        int type = config_.transport == SyslogTransport::Tcp ? SOCK_STREAM : SOCK_DGRAM;
        int error = open_and_connect(*address, type);
        // A Unix syslog socket is usually a datagram socket (/dev/log); some listeners use a
        // stream socket instead, which a datagram connect() refuses with EPROTOTYPE.
        if (error == EPROTOTYPE && config_.transport == SyslogTransport::Unix) {
            type = SOCK_STREAM;
            error = open_and_connect(*address, type);
        }
        if (error != 0) {
            return make_error(describe() + ": cannot connect: " + errno_text(error));
        }
        stream_ = type == SOCK_STREAM;
        return Ok{};
    }

    bool connected() const override { return fd_ >= 0; }

    SendOutcome send(std::span<const std::string> messages) override {
        SendOutcome out;
        if (fd_ < 0) {
            out.error = "not connected";
            return out;
        }
        // A syslog receiver never writes to us: a readable stream socket means the peer
        // closed (or reset) it, and anything written now would be lost without an error.
        if (stream_ && peer_closed()) {
            close();
            out.error = "the receiver closed the connection";
            return out;
        }
        for (const std::string& message : messages) {
            const int error = stream_ ? send_all(octet_counted(message)) : send_datagram(message);
            if (error == 0) {
                ++out.delivered;
                continue;
            }
            out.lost = 1;
            out.error = error == EAGAIN || error == EWOULDBLOCK
                    ? "the receiver took nothing for " + std::to_string(timeouts_.send_ms) + " ms"
                    : errno_text(error);
            // A datagram refused (nobody listening: ICMP port unreachable) loses that record
            // only; a stream with a half-written frame cannot be continued.
            if (stream_ || config_.transport == SyslogTransport::Unix) {
                close();
            }
            return out;
        }
        return out;
    }

    void close() override {
        if (fd_ >= 0) {
            ::close(fd_);
            fd_ = -1;
        }
    }

private:
    int open_and_connect(const Address& address, int type) {
        close();
        const int fd = ::socket(address.family, type | SOCK_CLOEXEC, 0);
        if (fd < 0) {
            return errno;
        }
        const timeval tv = to_timeval(timeouts_.send_ms);
        (void)setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
        const int error = connect_within(fd, address, timeouts_.connect_ms);
        if (error != 0) {
            ::close(fd);
            return error;
        }
        fd_ = fd;
        return 0;
    }

    bool peer_closed() const {
        pollfd p{fd_, POLLIN | POLLRDHUP, 0};
        if (::poll(&p, 1, 0) <= 0) {
            return false;
        }
        if ((p.revents & (POLLRDHUP | POLLHUP | POLLERR)) != 0) {
            return true;
        }
        std::array<char, 256> sink{};
        const ssize_t n = ::recv(fd_, sink.data(), sink.size(), MSG_DONTWAIT);
        return n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK);
    }

    int send_all(const std::string& frame) const {
        size_t done = 0;
        while (done < frame.size()) {
            const ssize_t n = ::send(fd_, frame.data() + done, frame.size() - done, MSG_NOSIGNAL);
            if (n < 0 && errno == EINTR) {
                continue;
            }
            if (n <= 0) {
                return n < 0 ? errno : EIO;
            }
            done += static_cast<size_t>(n);
        }
        return 0;
    }

    int send_datagram(const std::string& message) const {
        while (true) {
            const ssize_t n = ::send(fd_, message.data(), message.size(), MSG_NOSIGNAL);
            if (n >= 0) {
                return 0;
            }
            if (errno != EINTR) {
                return errno;
            }
        }
    }

    SyslogOutputConfig config_;
    TransportTimeouts timeouts_;
    int fd_ = -1;
    bool stream_ = false;
};

struct RedisContextFree {
    void operator()(redisContext* context) const noexcept { redisFree(context); }
};

struct RedisReplyFree {
    void operator()(void* reply) const noexcept { freeReplyObject(reply); }
};

/// Redis through hiredis: a batch is pipelined (all commands written, then the replies
/// read), so one round trip carries many records.
class RedisTransport final : public SiemTransport {
public:
    RedisTransport(RedisOutputConfig config, TransportTimeouts timeouts)
        : config_(std::move(config)), timeouts_(timeouts) {}

    std::string describe() const override { return "redis " + config_.address; }

    Status connect() override {
        close();
        Result<HostPort> hp = parse_host_port(config_.address);
        if (!hp) {
            return make_error(hp.error());
        }
        std::unique_ptr<redisContext, RedisContextFree> context(redisConnectWithTimeout(
                hp->host.c_str(), hp->port, to_timeval(timeouts_.connect_ms)));
        if (context == nullptr) {
            return make_error(describe() + ": cannot allocate a connection");
        }
        if (context->err != 0) {
            return make_error(describe() + ": cannot connect: " + context->errstr);
        }
        if (redisSetTimeout(context.get(), to_timeval(timeouts_.send_ms)) != REDIS_OK) {
            return make_error(describe() + ": cannot set the timeout: " + context->errstr);
        }
        context_ = std::move(context);
        return Ok{};
    }

    bool connected() const override { return context_ != nullptr; }

    SendOutcome send(std::span<const std::string> messages) override {
        SendOutcome out;
        if (context_ == nullptr) {
            out.error = "not connected";
            return out;
        }
        const char* verb = config_.mode == RedisMode::List ? "RPUSH" : "PUBLISH";
        for (const std::string& message : messages) {
            // Binary-safe arguments (%b): a record is never split or interpreted.
            if (redisAppendCommand(context_.get(), "%s %b %b", verb, config_.key.data(),
                        config_.key.size(), message.data(), message.size())
                    != REDIS_OK) {
                out.lost = messages.size();
                out.error = context_->errstr;
                close();
                return out;
            }
        }
        for (size_t i = 0; i < messages.size(); ++i) {
            void* raw = nullptr;
            if (redisGetReply(context_.get(), &raw) != REDIS_OK) {
                // Whether the rest of the pipeline ran is unknown: counted as not sent rather
                // than sent twice.
                out.lost = messages.size() - i;
                out.error = context_->errstr[0] != '\0' ? context_->errstr : "connection lost";
                close();
                return out;
            }
            std::unique_ptr<void, RedisReplyFree> reply(raw);
            const auto* r = static_cast<const redisReply*>(raw);
            if (r->type == REDIS_REPLY_ERROR) {
                ++out.lost;
                if (out.error.empty()) {
                    out.error = std::string(r->str, r->len);
                }
            } else {
                ++out.delivered;
            }
        }
        // Error replies (a key of another type) leave the connection usable; the order of
        // delivered and lost no longer matters to the caller, only the counts.
        return out;
    }

    void close() override { context_.reset(); }

private:
    RedisOutputConfig config_;
    TransportTimeouts timeouts_;
    std::unique_ptr<redisContext, RedisContextFree> context_;
};

}  // namespace

std::unique_ptr<SiemTransport> make_syslog_transport(
        const SyslogOutputConfig& config, TransportTimeouts timeouts) {
    return std::make_unique<SyslogSocketTransport>(config, timeouts);
}

std::unique_ptr<SiemTransport> make_redis_transport(
        const RedisOutputConfig& config, TransportTimeouts timeouts) {
    return std::make_unique<RedisTransport>(config, timeouts);
}

}  // namespace exfiltap::control
