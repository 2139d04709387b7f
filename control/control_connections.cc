// The control socket server's thread: accepting, credentials, reading request lines,
// ordering replies and streaming alerts (see control_server.h for the contract). Everything
// here runs on that one thread except make_loop(), called by start() before it exists.
#include <grp.h>
#include <pwd.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <map>
#include <optional>
#include <stdexcept>
#include <thread>

#include "common/log.h"
#include "control/control_server.h"

namespace exfiltap::control {
namespace {

using Clock = std::chrono::steady_clock;

constexpr std::string_view kComponent = "control";
constexpr uint64_t kListenTag = UINT64_MAX;
constexpr uint64_t kEventTag = UINT64_MAX - 1;
constexpr size_t kReadChunk = 16 * 1024;
// Requests of one connection read but not yet answered. Past it the connection is not read
// (its input waits in the socket), so replies held for a peer that does not read stay
// bounded whatever the request rate.
constexpr size_t kMaxInFlight = 16;
/// Reads per readiness event, so one busy peer cannot starve the others.
constexpr int kReadsPerEvent = 4;
constexpr int kSweepInterval_ms = 250;
/// The counts_ row of requests whose command could not be read.
constexpr size_t kCountsInvalid = kCommandCount;

std::string errno_text(int err) {
    return std::strerror(err);
}

/// The user name and primary group of `uid`, if it has a passwd entry.
bool user_of(uid_t uid, std::string& name, gid_t& primary) {
    std::vector<char> buffer(16 * 1024);
    struct passwd entry {};
    struct passwd* found = nullptr;
    while (getpwuid_r(uid, &entry, buffer.data(), buffer.size(), &found) == ERANGE
            && buffer.size() < (1U << 20)) {
        buffer.resize(buffer.size() * 4);
    }
    if (found == nullptr) {
        return false;
    }
    name = found->pw_name;
    primary = found->pw_gid;
    return true;
}

/// Whether `user` (primary group `primary`) has `gid` among its groups.
bool user_in_group(const std::string& user, gid_t primary, gid_t gid) {
    int count = 32;
    std::vector<gid_t> groups(static_cast<size_t>(count));
    while (getgrouplist(user.c_str(), primary, groups.data(), &count) < 0) {
        if (count <= static_cast<int>(groups.size()) || count > 65536) {
            return false;
        }
        groups.resize(static_cast<size_t>(count));
    }
    return std::find(groups.begin(), groups.begin() + count, gid) != groups.begin() + count;
}

/// Sends what fits without blocking; for the one-line goodbyes to refused peers.
void send_best_effort(int fd, const std::string& line) {
    [[maybe_unused]] const ssize_t n =
            send(fd, line.data(), line.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
}

struct Slot {
    uint64_t sequence = 0;
    bool ready = false;
    bool start_follow = false;
    std::string line;
};

struct Connection {
    int fd = -1;
    Peer peer;
    std::string in;
    /// Input read but not yet parsed: it waits while kMaxInFlight requests are unanswered.
    std::string backlog;
    /// Skipping the rest of an oversized line.
    bool discarding = false;
    bool read_closed = false;
    /// An `alerts follow` request is on its way: later input is ignored.
    bool follow_requested = false;
    bool following = false;
    bool close_now = false;
    std::string out;
    size_t out_pos = 0;
    std::deque<Slot> slots;
    uint64_t next_sequence = 1;
    double tokens = 0;
    Clock::time_point refilled;
    Clock::time_point last_request;
    uint64_t dropped_unreported = 0;
    uint32_t events = 0;

    size_t out_pending() const { return out.size() - out_pos; }
    bool saturated() const { return slots.size() >= kMaxInFlight || !backlog.empty(); }
};

}  // namespace

// The server thread's state: every connection and its buffers. Only run() touches it.
class ControlServer::Loop {
public:
    Loop(ControlServer& server, int epoll_fd) : server_(server), epoll_fd_(epoll_fd) {}
    ~Loop() {
        for (auto& [id, conn] : connections_) {
            close(conn.fd);
        }
        close(epoll_fd_);
    }
    Loop(const Loop&) = delete;
    Loop& operator=(const Loop&) = delete;

    void run() noexcept {
        while (!server_.stopping_.load(std::memory_order_acquire)) {
            try {
                iterate();
            } catch (const std::exception& e) {
                log_error(kComponent, std::string("control socket loop: ") + e.what());
                std::this_thread::sleep_for(std::chrono::milliseconds(10));
            } catch (...) {
                log_error(kComponent, "control socket loop: unknown exception");
                std::this_thread::sleep_for(std::chrono::milliseconds(10));
            }
        }
    }

private:
    const ControlConfig& config() const { return server_.config_; }

    void iterate() {
        std::array<epoll_event, 32> events{};
        const int n = epoll_wait(
                epoll_fd_, events.data(), static_cast<int>(events.size()), kSweepInterval_ms);
        if (n < 0 && errno != EINTR) {
            throw std::runtime_error("epoll_wait: " + errno_text(errno));
        }
        for (int i = 0; i < n; ++i) {
            const uint64_t tag = events[static_cast<size_t>(i)].data.u64;
            if (tag == kListenTag) {
                accept_all();
            } else if (tag == kEventTag) {
                uint64_t value = 0;
                [[maybe_unused]] const ssize_t r = read(server_.event_fd_, &value, sizeof(value));
            } else {
                on_event(tag, events[static_cast<size_t>(i)].events);
            }
        }
        take_outbox();
        sweep_idle();
        for (auto it = connections_.begin(); it != connections_.end();) {
            it = finished(it->second) ? close_connection(it) : std::next(it);
        }
    }

    void accept_all() {
        for (;;) {
            const int fd =
                    accept4(server_.listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
            if (fd < 0) {
                if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED) {
                    log_warning(kComponent, "accept on the control socket: " + errno_text(errno));
                }
                return;
            }
            admit(fd);
        }
    }

    void admit(int fd) {
        ucred cred{};
        socklen_t len = sizeof(cred);
        if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) {
            close(fd);
            return;
        }
        Peer peer{cred.uid, cred.gid, cred.pid, "", ++last_id_};
        gid_t primary = cred.gid;
        const bool has_user = user_of(cred.uid, peer.user, primary);
        if (!has_user) {
            peer.user = "uid:" + std::to_string(cred.uid);
        }
        if (!authorised(peer, has_user, primary)) {
            server_.connections_denied_.fetch_add(1, std::memory_order_relaxed);
            log_warning(kComponent,
                    "control socket: refused " + peer.user + " (uid " + std::to_string(peer.uid)
                            + ", pid " + std::to_string(peer.pid)
                            + "): not root, not the daemon's user, not in control.group");
            send_best_effort(fd, reply_line(Reply::failure("permission denied")));
            close(fd);
            return;
        }
        if (connections_.size() >= config().max_connections) {
            server_.connections_over_limit_.fetch_add(1, std::memory_order_relaxed);
            send_best_effort(fd,
                    reply_line(Reply::failure("too many connections (limit "
                            + std::to_string(config().max_connections) + ")")));
            close(fd);
            return;
        }
        Connection conn;
        conn.fd = fd;
        conn.peer = std::move(peer);
        conn.tokens = burst();
        conn.refilled = conn.last_request = Clock::now();
        conn.events = EPOLLIN;
        epoll_event ev{};
        ev.events = conn.events;
        ev.data.u64 = conn.peer.connection;
        if (epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &ev) != 0) {
            close(fd);
            return;
        }
        connections_.emplace(conn.peer.connection, std::move(conn));
        server_.connections_accepted_.fetch_add(1, std::memory_order_relaxed);
        server_.connections_open_.store(connections_.size(), std::memory_order_relaxed);
    }

    bool authorised(const Peer& peer, bool has_user, gid_t primary) const {
        if (peer.uid == 0 || peer.uid == geteuid()) {
            return true;
        }
        const gid_t group = server_.group_gid_;
        if (group == static_cast<gid_t>(-1)) {
            return false;
        }
        return peer.gid == group || (has_user && user_in_group(peer.user, primary, group));
    }

    double burst() const { return 2.0 * config().rate_per_s; }

    bool take_token(Connection& conn) {
        const auto now = Clock::now();
        const double elapsed_s = std::chrono::duration<double>(now - conn.refilled).count();
        conn.refilled = now;
        conn.tokens = std::min(burst(), conn.tokens + elapsed_s * config().rate_per_s);
        if (conn.tokens < 1.0) {
            return false;
        }
        conn.tokens -= 1.0;
        return true;
    }

    void on_event(uint64_t id, uint32_t events) {
        const auto it = connections_.find(id);
        if (it == connections_.end()) {
            return;
        }
        Connection& conn = it->second;
        if ((events & (EPOLLIN | EPOLLHUP | EPOLLERR)) != 0 && !conn.read_closed) {
            read_some(conn);
        } else if ((events & (EPOLLHUP | EPOLLERR)) != 0) {
            conn.close_now = true;
        }
        if ((events & EPOLLOUT) != 0) {
            write_some(conn);
        }
        update_interest(conn);
    }

    void read_some(Connection& conn) {
        std::array<char, kReadChunk> buffer{};
        for (int i = 0; i < kReadsPerEvent && !conn.close_now && !conn.saturated(); ++i) {
            const ssize_t n = recv(conn.fd, buffer.data(), buffer.size(), 0);
            if (n > 0) {
                feed(conn, std::string_view(buffer.data(), static_cast<size_t>(n)));
                if (conn.out_pending() > kReplyBufferBytes) {
                    break;
                }
                continue;
            }
            if (n == 0) {
                end_of_input(conn);
            } else if (errno == EINTR) {
                continue;
            } else if (errno != EAGAIN) {
                conn.close_now = true;
            }
            break;
        }
        write_some(conn);
    }

    bool ignoring_input(const Connection& conn) const {
        return conn.follow_requested || conn.following;
    }

    void feed(Connection& conn, std::string_view data) {
        const size_t max = config().max_line_bytes;
        while (!data.empty() && !ignoring_input(conn)) {
            const size_t newline = data.find('\n');
            if (conn.discarding) {
                if (newline == std::string_view::npos) {
                    return;
                }
                conn.discarding = false;
                data.remove_prefix(newline + 1);
                continue;
            }
            if (newline != std::string_view::npos && conn.slots.size() >= kMaxInFlight) {
                conn.backlog.append(data);  // parsed once replies have gone out
                return;
            }
            if (newline == std::string_view::npos) {
                conn.in.append(data);
                if (conn.in.size() > max) {
                    conn.in.clear();
                    conn.discarding = true;
                    refuse_oversized(conn);
                }
                return;
            }
            if (conn.in.size() + newline > max) {
                conn.in.clear();
                refuse_oversized(conn);
            } else {
                conn.in.append(data.substr(0, newline));
                handle_line(conn, conn.in);
                conn.in.clear();
            }
            data.remove_prefix(newline + 1);
        }
    }

    void end_of_input(Connection& conn) {
        conn.read_closed = true;
        // A last request without its newline (printf '...' | socat) still counts.
        if (!conn.discarding && !conn.in.empty() && !ignoring_input(conn)) {
            std::string last;
            last.swap(conn.in);
            handle_line(conn, last);
        }
        conn.in.clear();
        if (conn.following) {
            conn.close_now = true;
        }
    }

    void refuse_oversized(Connection& conn) {
        conn.last_request = Clock::now();
        server_.count(kCountsInvalid, CommandResult::Invalid);
        answer_now(conn,
                Reply::failure("request longer than " + std::to_string(config().max_line_bytes)
                        + " bytes"));
    }

    void handle_line(Connection& conn, std::string_view line) {
        while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) {
            line.remove_suffix(1);
        }
        if (line.empty()) {
            return;
        }
        conn.last_request = Clock::now();
        std::optional<Command> command;
        auto request = parse_request(line, &command);
        const size_t index = command ? static_cast<size_t>(*command) : kCountsInvalid;
        if (!take_token(conn)) {
            server_.count(index, CommandResult::RateLimited);
            answer_now(conn, Reply::failure("rate limit"));
            return;
        }
        if (!request) {
            server_.count(index, CommandResult::Invalid);
            answer_now(conn, Reply::failure(request.error()));
            return;
        }
        const uint64_t sequence = conn.next_sequence++;
        conn.slots.push_back(Slot{sequence, false, false, {}});
        if (request->command == Command::Alerts && request->follow) {
            conn.follow_requested = true;
        }
        std::lock_guard lock(server_.mutex_);
        server_.inbox_.push_back(
                Queued{conn.peer.connection, sequence, std::move(*request), conn.peer});
    }

    /// A reply made on this thread, kept in order behind replies still being dispatched.
    void answer_now(Connection& conn, const Reply& reply) {
        conn.slots.push_back(Slot{conn.next_sequence++, true, false, reply_line(reply)});
        flush_slots(conn);
    }

    void flush_slots(Connection& conn) {
        while (!conn.slots.empty() && conn.slots.front().ready) {
            Slot& slot = conn.slots.front();
            conn.out += slot.line;
            if (slot.start_follow) {
                conn.following = true;
            }
            conn.slots.pop_front();
        }
    }

    void take_outbox() {
        std::deque<Outgoing> batch;
        {
            std::lock_guard lock(server_.mutex_);
            batch.swap(server_.outbox_);
        }
        for (auto& item : batch) {
            if (item.connection == 0) {
                deliver_alert(item.line);
            } else {
                deliver_reply(item);
            }
        }
        for (auto& [id, conn] : connections_) {
            write_some(conn);
            update_interest(conn);
        }
    }

    /// Parses what waited while the connection had kMaxInFlight requests unanswered.
    void resume(Connection& conn) {
        if (conn.backlog.empty() || conn.slots.size() >= kMaxInFlight) {
            return;
        }
        std::string pending;
        pending.swap(conn.backlog);
        feed(conn, pending);
    }

    void deliver_reply(Outgoing& item) {
        const auto it = connections_.find(item.connection);
        if (it == connections_.end()) {
            if (item.start_follow) {
                server_.followers_.fetch_sub(1, std::memory_order_relaxed);
            }
            return;
        }
        Connection& conn = it->second;
        for (auto& slot : conn.slots) {
            if (slot.sequence == item.sequence) {
                slot.ready = true;
                slot.start_follow = item.start_follow;
                slot.line = std::move(item.line);
                break;
            }
        }
        if (conn.follow_requested && !item.start_follow && !conn.slots.empty()
                && conn.slots.back().sequence == item.sequence) {
            conn.follow_requested = false;  // the handler refused to follow
        }
        flush_slots(conn);
        resume(conn);
    }

    void deliver_alert(const std::string& line) {
        for (auto& [id, conn] : connections_) {
            if (!conn.following || conn.close_now) {
                continue;
            }
            std::string marker;
            if (conn.dropped_unreported > 0) {
                marker = "{\"dropped\":" + std::to_string(conn.dropped_unreported) + "}\n";
            }
            if (conn.out_pending() + marker.size() + line.size() + 1
                    > ControlServer::kFollowBufferBytes) {
                ++conn.dropped_unreported;
                server_.follow_lines_dropped_.fetch_add(1, std::memory_order_relaxed);
                continue;
            }
            conn.dropped_unreported = 0;
            conn.out += marker;
            conn.out += line;
            conn.out += '\n';
        }
    }

    void write_some(Connection& conn) {
        while (conn.out_pending() > 0 && !conn.close_now) {
            const ssize_t n = send(conn.fd, conn.out.data() + conn.out_pos, conn.out_pending(),
                    MSG_NOSIGNAL | MSG_DONTWAIT);
            if (n > 0) {
                conn.out_pos += static_cast<size_t>(n);
            } else if (n < 0 && errno == EINTR) {
                continue;
            } else {
                if (n < 0 && errno != EAGAIN) {
                    conn.close_now = true;
                }
                break;
            }
        }
        if (conn.out_pending() == 0) {
            conn.out.clear();
            conn.out_pos = 0;
        } else if (conn.out_pos > kReadChunk && conn.out_pos * 2 > conn.out.size()) {
            conn.out.erase(0, conn.out_pos);
            conn.out_pos = 0;
        }
    }

    void update_interest(Connection& conn) {
        if (conn.close_now) {
            return;
        }
        uint32_t events = 0;
        // A follower keeps being read so its hang-up is seen; its input is ignored.
        if (!conn.read_closed
                && (conn.following
                        || (conn.out_pending() <= kReplyBufferBytes && !conn.saturated()))) {
            events |= EPOLLIN;
        }
        if (conn.out_pending() > 0) {
            events |= EPOLLOUT;
        }
        if (events == conn.events) {
            return;
        }
        epoll_event ev{};
        ev.events = events;
        ev.data.u64 = conn.peer.connection;
        if (epoll_ctl(epoll_fd_, EPOLL_CTL_MOD, conn.fd, &ev) != 0) {
            conn.close_now = true;
            return;
        }
        conn.events = events;
    }

    void sweep_idle() {
        const auto now = Clock::now();
        const auto limit = std::chrono::seconds(config().idle_timeout_s);
        for (auto& [id, conn] : connections_) {
            if (conn.following || !conn.slots.empty() || conn.close_now
                    || now - conn.last_request < limit) {
                continue;
            }
            // Only between replies: a goodbye must not land inside a half-written line.
            if (conn.out_pending() == 0) {
                send_best_effort(conn.fd, reply_line(Reply::failure("idle timeout")));
            }
            server_.connections_idle_closed_.fetch_add(1, std::memory_order_relaxed);
            conn.close_now = true;
        }
    }

    /// Closed by error or hang-up, or done: input ended and every reply written.
    static bool finished(const Connection& conn) {
        return conn.close_now
                || (conn.read_closed && conn.slots.empty() && conn.out_pending() == 0);
    }

    std::map<uint64_t, Connection>::iterator close_connection(
            std::map<uint64_t, Connection>::iterator it) {
        Connection& conn = it->second;
        // dispatch() counted each accepted follow; a follower that never started counts too.
        const auto unstarted = std::count_if(conn.slots.begin(), conn.slots.end(),
                [](const Slot& slot) { return slot.start_follow; });
        const auto follows = static_cast<size_t>(unstarted) + (conn.following ? 1 : 0);
        if (follows > 0) {
            server_.followers_.fetch_sub(follows, std::memory_order_relaxed);
        }
        epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, conn.fd, nullptr);
        close(conn.fd);
        auto next = connections_.erase(it);
        server_.connections_open_.store(connections_.size(), std::memory_order_relaxed);
        return next;
    }

    ControlServer& server_;
    int epoll_fd_;
    uint64_t last_id_ = 0;
    std::map<uint64_t, Connection> connections_;
};

void ControlServer::LoopDeleter::operator()(Loop* loop) const {
    delete loop;
}

Result<ControlServer::LoopPtr> ControlServer::make_loop(ControlServer& server) {
    const int epoll_fd = epoll_create1(EPOLL_CLOEXEC);
    if (epoll_fd < 0) {
        return make_error("control socket: epoll: " + errno_text(errno));
    }
    LoopPtr loop(new Loop(server, epoll_fd));
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = kListenTag;
    const bool added = epoll_ctl(epoll_fd, EPOLL_CTL_ADD, server.listen_fd_, &ev) == 0;
    ev.data.u64 = kEventTag;
    if (!added || epoll_ctl(epoll_fd, EPOLL_CTL_ADD, server.event_fd_, &ev) != 0) {
        return make_error("control socket: epoll_ctl: " + errno_text(errno));
    }
    return loop;
}

void ControlServer::run_loop(Loop& loop) noexcept {
    loop.run();
}

}  // namespace exfiltap::control
