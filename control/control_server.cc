#include "control/control_server.h"

#include <grp.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <thread>

#include "common/log.h"

namespace exfiltap::control {
namespace {

constexpr std::string_view kComponent = "control";
constexpr int kListenBacklog = 64;
/// Alert lines queued for the server thread; beyond this they count as dropped.
constexpr size_t kMaxQueuedAlerts = 4096;

std::string errno_text(int err) {
    return std::strerror(err);
}

bool all_digits(std::string_view text) {
    return !text.empty()
            && std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; });
}

Result<gid_t> resolve_group(const std::string& group) {
    if (all_digits(group)) {
        if (group.size() > 10 || std::stoull(group) >= static_cast<gid_t>(-1)) {
            return make_error("control.group: gid " + group + " is out of range");
        }
        return static_cast<gid_t>(std::stoull(group));
    }
    std::vector<char> buffer(16 * 1024);
    struct group entry {};
    struct group* found = nullptr;
    int err = 0;
    while ((err = getgrnam_r(group.c_str(), &entry, buffer.data(), buffer.size(), &found)) == ERANGE
            && buffer.size() < (1U << 20)) {
        buffer.resize(buffer.size() * 4);
    }
    if (found == nullptr) {
        return make_error("control.group: no group named '" + group + "'"
                + (err != 0 ? " (" + errno_text(err) + ")" : ""));
    }
    return found->gr_gid;
}

sockaddr_un socket_address(const std::string& path) {
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
    return addr;
}

/// Probes an existing socket file: true when a process accepts connections on it.
Result<bool> socket_is_live(const std::string& path) {
    // Non-blocking: a live daemon with a full backlog answers EAGAIN instead of stalling us.
    const int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        return make_error("socket: " + errno_text(errno));
    }
    const sockaddr_un addr = socket_address(path);
    const int rc = connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof(addr));
    const int err = errno;
    close(fd);
    if (rc == 0 || err == EAGAIN) {
        return true;
    }
    if (err == ECONNREFUSED) {
        return false;
    }
    return make_error("cannot probe existing " + path + ": " + errno_text(err));
}

}  // namespace

std::string_view command_result_name(CommandResult result) {
    switch (result) {
    case CommandResult::Ok:
        return "ok";
    case CommandResult::Nok:
        return "nok";
    case CommandResult::Invalid:
        return "invalid";
    case CommandResult::RateLimited:
        break;
    }
    return "rate_limited";
}

ThreadSpawner std_thread_spawner() {
    return [](std::function<void()> body) -> Result<std::function<void()>> {
        try {
            auto thread = std::make_shared<std::thread>(std::move(body));
            return std::function<void()>([thread] {
                if (thread->joinable()) {
                    thread->join();
                }
            });
        } catch (const std::system_error& e) {
            return make_error(std::string("cannot start the control socket thread: ") + e.what());
        }
    };
}

void apply_control(config_reader::Problems& problems, const config_reader::Entry& section,
        ControlConfig& out) {
    using namespace config_reader;
    const auto entries = entries_of(problems, section.value, section.where,
            {"socket", "group", "max_connections", "max_line_bytes", "rate_per_s",
                    "idle_timeout_s"});
    for (const auto& entry : entries) {
        const std::string& name = entry.name;
        if (name == "socket") {
            std::string path;
            if (!read_string(problems, entry, path)) {
                continue;
            }
            if (path.empty() || path.front() != '/') {
                problems.add(entry.where, "must be an absolute path");
            } else if (path.size() >= sizeof(sockaddr_un::sun_path)) {
                problems.add(entry.where,
                        "longer than " + std::to_string(sizeof(sockaddr_un::sun_path) - 1)
                                + " bytes, the limit of a Unix socket path");
            } else if (path.back() == '/') {
                problems.add(entry.where, "must name a file, not a directory");
            } else {
                out.socket = path;
            }
        } else if (name == "group") {
            std::string group;
            if (!read_string(problems, entry, group)) {
                continue;
            }
            const bool valid =
                    group.size() <= 32 && std::all_of(group.begin(), group.end(), [](char c) {
                        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
                                || (c >= '0' && c <= '9') || c == '_' || c == '-' || c == '.';
                    });
            if (valid) {
                out.group = group;
            } else {
                problems.add(entry.where,
                        "expected a group name or gid (letters, digits, _ - .; at most 32)");
            }
        } else if (name == "max_connections") {
            read_u32(problems, entry, 1, 1024, out.max_connections);
        } else if (name == "max_line_bytes") {
            read_u32(problems, entry, 256, 16U << 20, out.max_line_bytes);
        } else if (name == "rate_per_s") {
            read_u32(problems, entry, 1, 100000, out.rate_per_s);
        } else if (name == "idle_timeout_s") {
            read_u32(problems, entry, 1, 7 * 86400, out.idle_timeout_s);
        }
    }
}

ControlServer::ControlServer(ControlConfig config) : config_(std::move(config)) {}

ControlServer::~ControlServer() {
    stop();
}

Status ControlServer::start(const ThreadSpawner& spawn) {
    if (started_) {
        return make_error("control socket already started");
    }
    stopping_.store(false, std::memory_order_relaxed);
    const std::string& path = config_.socket;
    if (path.empty() || path.size() >= sizeof(sockaddr_un::sun_path)) {
        return make_error("control.socket: '" + path + "' is empty or too long for a socket");
    }
    if (!config_.group.empty()) {
        auto gid = resolve_group(config_.group);
        if (!gid) {
            return make_error(gid.error());
        }
        group_gid_ = *gid;
    }

    // Parent directory: made 0750 (group-owned) when missing, left alone when it exists.
    const size_t slash = path.rfind('/');
    const std::string parent = slash == 0 ? "/" : path.substr(0, slash);
    struct stat st {};
    if (stat(parent.c_str(), &st) != 0) {
        if (mkdir(parent.c_str(), 0750) != 0 && errno != EEXIST) {
            return make_error("cannot create " + parent + ": " + errno_text(errno));
        }
        if (chmod(parent.c_str(), 0750) != 0
                || (group_gid_ != static_cast<gid_t>(-1)
                        && chown(parent.c_str(), static_cast<uid_t>(-1), group_gid_) != 0)) {
            return make_error("cannot set owner or mode of " + parent + ": " + errno_text(errno));
        }
    }

    // A socket file left by a crashed run is replaced; a live one is someone else's.
    if (lstat(path.c_str(), &st) == 0) {
        if (!S_ISSOCK(st.st_mode)) {
            return make_error(
                    path + " exists and is not a socket; remove it or set control.socket");
        }
        auto live = socket_is_live(path);
        if (!live) {
            return make_error(live.error());
        }
        if (*live) {
            return make_error(
                    "another process answers on " + path + " (is exfiltap already running?)");
        }
        log_info(kComponent, "replacing stale control socket " + path);
        if (unlink(path.c_str()) != 0) {
            return make_error("cannot remove stale " + path + ": " + errno_text(errno));
        }
    }

    const int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        return make_error("socket: " + errno_text(errno));
    }
    // Linux creates the file with the socket inode's mode (less umask), so it is never
    // wider than 0660, not even between bind() and chmod().
    const sockaddr_un addr = socket_address(path);
    std::string failed;
    if (fchmod(fd, 0660) != 0) {
        failed = "fchmod";
    } else if (bind(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) != 0) {
        failed = "bind " + path;
    } else if (chmod(path.c_str(), 0660) != 0) {
        failed = "chmod " + path;
    } else if (group_gid_ != static_cast<gid_t>(-1)
            && chown(path.c_str(), static_cast<uid_t>(-1), group_gid_) != 0) {
        failed = "chown " + path;
    } else if (listen(fd, kListenBacklog) != 0) {
        failed = "listen " + path;
    }
    if (!failed.empty()) {
        const int err = errno;
        close(fd);
        if (failed != "fchmod" && failed.rfind("bind", 0) != 0) {
            unlink(path.c_str());
        }
        return make_error("control socket: " + failed + ": " + errno_text(err));
    }
    listen_fd_ = fd;
    if (lstat(path.c_str(), &st) == 0) {
        socket_dev_ = st.st_dev;
        socket_ino_ = st.st_ino;
    }

    event_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (event_fd_ < 0) {
        const int err = errno;
        stop_sockets();
        return make_error("control socket: eventfd: " + errno_text(err));
    }
    auto loop = make_loop(*this);
    if (!loop) {
        stop_sockets();
        return make_error(loop.error());
    }
    loop_ = std::move(*loop);

    auto join = spawn([this] { run_loop(*loop_); });
    if (!join) {
        loop_.reset();
        stop_sockets();
        return make_error(join.error());
    }
    join_ = std::move(*join);
    started_ = true;
    log_info(kComponent, "control socket listening on " + path);
    return Ok{};
}

void ControlServer::stop_sockets() {
    if (listen_fd_ >= 0) {
        close(listen_fd_);
        listen_fd_ = -1;
        // Only our own file: a later daemon may already have replaced it.
        struct stat st {};
        if (lstat(config_.socket.c_str(), &st) == 0 && st.st_dev == socket_dev_
                && st.st_ino == socket_ino_) {
            unlink(config_.socket.c_str());
        }
    }
    if (event_fd_ >= 0) {
        close(event_fd_);
        event_fd_ = -1;
    }
}

void ControlServer::stop() {
    if (!started_) {
        return;
    }
    stopping_.store(true, std::memory_order_release);
    wake();
    if (join_) {
        join_();
    }
    loop_.reset();
    stop_sockets();
    {
        std::lock_guard lock(mutex_);
        inbox_.clear();
        outbox_.clear();
    }
    followers_.store(0, std::memory_order_relaxed);
    started_ = false;
}

void ControlServer::wake() const {
    if (event_fd_ >= 0) {
        const uint64_t one = 1;
        [[maybe_unused]] const ssize_t n = write(event_fd_, &one, sizeof(one));
    }
}

size_t ControlServer::dispatch(CommandHandler& handler, size_t max) {
    std::deque<Queued> batch;
    {
        std::lock_guard lock(mutex_);
        while (!inbox_.empty() && batch.size() < max) {
            batch.push_back(std::move(inbox_.front()));
            inbox_.pop_front();
        }
    }
    if (batch.empty()) {
        return 0;
    }
    std::deque<Outgoing> replies;
    for (const auto& item : batch) {
        const Request& request = item.request;
        const std::string name(command_name(request.command));
        Reply reply;
        std::string line;
        try {
            reply = request.command == Command::CommandList ? Reply::success(command_list_message())
                                                            : handler.handle(request, item.peer);
            line = reply_line(reply);
        } catch (const std::exception& e) {
            log_error(kComponent, "control command " + name + " failed: " + e.what());
            reply = Reply::failure("internal error (see the daemon log)");
            line = reply_line(reply);
        } catch (...) {
            log_error(kComponent, "control command " + name + " failed");
            reply = Reply::failure("internal error (see the daemon log)");
            line = reply_line(reply);
        }
        count(static_cast<size_t>(request.command),
                reply.ok ? CommandResult::Ok : CommandResult::Nok);
        const bool follow = reply.ok && request.command == Command::Alerts && request.follow;
        if (follow) {
            // Counted before the server thread sees the reply, so no alert published from
            // now on is skipped for want of followers.
            followers_.fetch_add(1, std::memory_order_relaxed);
        }
        replies.push_back(Outgoing{item.connection, item.sequence, std::move(line), follow});
    }
    {
        std::lock_guard lock(mutex_);
        for (auto& reply : replies) {
            outbox_.push_back(std::move(reply));
        }
    }
    wake();
    return batch.size();
}

void ControlServer::publish_alert(std::string_view json_line) {
    if (!started_ || followers_.load(std::memory_order_relaxed) == 0) {
        return;
    }
    while (!json_line.empty() && (json_line.back() == '\n' || json_line.back() == '\r')) {
        json_line.remove_suffix(1);
    }
    {
        std::lock_guard lock(mutex_);
        if (outbox_.size() >= kMaxQueuedAlerts) {
            follow_lines_dropped_.fetch_add(1, std::memory_order_relaxed);
            return;
        }
        outbox_.push_back(Outgoing{0, 0, std::string(json_line), false});
    }
    wake();
}

size_t ControlServer::pending() const {
    std::lock_guard lock(mutex_);
    return inbox_.size();
}

void ControlServer::count(size_t command_index, CommandResult result) {
    counts_[std::min(command_index, kCommandCount)][static_cast<size_t>(result)].fetch_add(
            1, std::memory_order_relaxed);
}

std::vector<CommandCount> ControlServer::command_counts() const {
    std::vector<CommandCount> out;
    for (size_t c = 0; c <= kCommandCount; ++c) {
        for (size_t r = 0; r < kCommandResultCount; ++r) {
            const uint64_t value = counts_[c][r].load(std::memory_order_relaxed);
            if (value != 0) {
                out.push_back(CommandCount{c < kCommandCount ? kCommandNames[c] : "invalid",
                        static_cast<CommandResult>(r), value});
            }
        }
    }
    return out;
}

ServerStats ControlServer::stats() const {
    ServerStats s;
    s.connections_open = connections_open_.load(std::memory_order_relaxed);
    s.connections_accepted = connections_accepted_.load(std::memory_order_relaxed);
    s.connections_denied = connections_denied_.load(std::memory_order_relaxed);
    s.connections_over_limit = connections_over_limit_.load(std::memory_order_relaxed);
    s.connections_idle_closed = connections_idle_closed_.load(std::memory_order_relaxed);
    s.follow_lines_dropped = follow_lines_dropped_.load(std::memory_order_relaxed);
    return s;
}

}  // namespace exfiltap::control
