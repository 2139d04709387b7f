#include "tests/http_get.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <system_error>

namespace exfiltap::testing {
namespace {

/// Closes the socket on every path out.
class Socket {
public:
    explicit Socket(int fd) : fd_(fd) {}
    ~Socket() {
        if (fd_ >= 0) {
            close(fd_);
        }
    }
    Socket(const Socket&) = delete;
    Socket& operator=(const Socket&) = delete;
    Socket(Socket&&) = delete;
    Socket& operator=(Socket&&) = delete;
    int fd() const { return fd_; }

private:
    int fd_;
};

/// strerror() is not thread safe; the generic category's message is.
std::string errno_text(std::string_view what) {
    return std::string(what) + ": " + std::generic_category().message(errno);
}

}  // namespace

Result<HttpResponse> http_get(std::string_view host, uint16_t port, std::string_view target,
        std::chrono::milliseconds timeout) {
    sockaddr_storage storage{};
    socklen_t length = 0;
    const std::string host_text(host);
    if (host_text == "127.0.0.1") {
        auto* v4 = reinterpret_cast<sockaddr_in*>(&storage);
        v4->sin_family = AF_INET;
        v4->sin_port = htons(port);
        inet_pton(AF_INET, host_text.c_str(), &v4->sin_addr);
        length = sizeof(sockaddr_in);
    } else if (host_text == "::1") {
        auto* v6 = reinterpret_cast<sockaddr_in6*>(&storage);
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons(port);
        inet_pton(AF_INET6, host_text.c_str(), &v6->sin6_addr);
        length = sizeof(sockaddr_in6);
    } else {
        return make_error("http_get: only loopback hosts are allowed, got " + host_text);
    }

    const Socket socket_fd(socket(storage.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (socket_fd.fd() < 0) {
        return make_error(errno_text("socket"));
    }
    timeval tv{};
    tv.tv_sec = static_cast<time_t>(timeout.count() / 1000);
    tv.tv_usec = static_cast<suseconds_t>((timeout.count() % 1000) * 1000);
    setsockopt(socket_fd.fd(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(socket_fd.fd(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    if (connect(socket_fd.fd(), reinterpret_cast<sockaddr*>(&storage), length) != 0) {
        return make_error(errno_text("connect to " + host_text + ":" + std::to_string(port)));
    }

    const std::string request = "GET " + std::string(target)
            + " HTTP/1.0\r\nHost: " + (host_text == "::1" ? "[::1]" : host_text) + ":"
            + std::to_string(port) + "\r\nConnection: close\r\n\r\n";
    size_t sent = 0;
    while (sent < request.size()) {
        const ssize_t n =
                send(socket_fd.fd(), request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
        if (n <= 0) {
            return make_error(errno_text("send"));
        }
        sent += static_cast<size_t>(n);
    }

    std::string raw;
    char buffer[4096];
    for (;;) {
        const ssize_t n = recv(socket_fd.fd(), buffer, sizeof(buffer), 0);
        if (n == 0) {
            break;
        }
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            return make_error(errno_text("recv"));
        }
        raw.append(buffer, static_cast<size_t>(n));
    }

    const size_t header_end = raw.find("\r\n\r\n");
    if (header_end == std::string::npos || raw.compare(0, 5, "HTTP/") != 0) {
        return make_error("not an HTTP response: '" + raw.substr(0, 80) + "'");
    }
    HttpResponse response;
    response.headers = raw.substr(0, header_end + 2);
    response.body = raw.substr(header_end + 4);
    const size_t space = raw.find(' ');
    response.status = std::atoi(raw.c_str() + space + 1);
    return response;
}

std::string url_encode(std::string_view text) {
    static constexpr char kHex[] = "0123456789ABCDEF";
    std::string out;
    for (const char c : text) {
        const auto byte = static_cast<unsigned char>(c);
        const bool unreserved = (byte >= 'A' && byte <= 'Z') || (byte >= 'a' && byte <= 'z')
                || (byte >= '0' && byte <= '9') || byte == '-' || byte == '.' || byte == '_'
                || byte == '~';
        if (unreserved) {
            out += c;
        } else {
            out += '%';
            out += kHex[byte >> 4];
            out += kHex[byte & 0xF];
        }
    }
    return out;
}

}  // namespace exfiltap::testing
