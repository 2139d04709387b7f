// The control socket server (DESIGN.md "Control socket", "Threads and cores").
//
// One server thread (started through the daemon's spawner, so it can be an EAL control
// thread) runs an epoll loop: it accepts, checks peer credentials, reads request lines,
// validates them (control_protocol.h) and answers bad ones itself. Valid requests wait in a
// queue until the daemon's control loop calls dispatch(), which runs them through the
// CommandHandler on the control thread and hands the replies back to the server thread
// (woken through an eventfd) to write. So commands never run on the server thread and the
// handler needs no locks of its own.
//
// Per connection: a line limit (an oversized line gets one NOK and is skipped), a token
// bucket (rate_per_s, burst 2 * rate_per_s), an idle timeout, and bounded output: a peer
// that does not read its replies stops being read; a slow alert follower loses lines,
// which are counted and announced by one {"dropped": N} line before the next line it gets.
#pragma once

#include <sys/types.h>

#include <array>
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "control/config_reader.h"
#include "control/control_protocol.h"

namespace exfiltap::control {

/// The `control:` config section.
struct ControlConfig {
    std::string socket = "/run/exfiltap/control.sock";
    /// A group name or numeric gid whose members may use the socket; empty: only root and
    /// the daemon's own user. The socket file (and a parent directory the server creates)
    /// belong to this group.
    std::string group;
    uint32_t max_connections = 32;
    uint32_t max_line_bytes = 65536;
    uint32_t rate_per_s = 100;
    /// A connection with no request for this long is closed (alert followers excepted).
    uint32_t idle_timeout_s = 300;
};

/// Applies the `control:` section onto `out` (absent keys keep their values); every problem
/// goes to `problems` as FILE:LINE: control.KEY: what.
void apply_control(
        config_reader::Problems& problems, const config_reader::Entry& section, ControlConfig& out);

/// Who sent a request, from SO_PEERCRED at accept time, for authorisation and the audit log.
struct Peer {
    uid_t uid = 0;
    gid_t gid = 0;
    pid_t pid = 0;
    /// The user name of uid, or "uid:N" when it has none.
    std::string user;
    /// Distinguishes connections of one run (1, 2, ...).
    uint64_t connection = 0;
};

/// Does the work of validated requests. Called only from the thread that calls
/// ControlServer::dispatch(), one request at a time. An exception thrown here becomes a NOK
/// "internal error" reply; it never reaches the server thread. `command-list` is answered by
/// dispatch() itself and never reaches the handler.
class CommandHandler {
public:
    virtual ~CommandHandler() = default;
    virtual Reply handle(const Request& request, const Peer& peer) = 0;
};

/// How a command's request ended, the `result` label of exfiltap_control_commands_total.
enum class CommandResult : uint8_t {
    Ok,           ///< the handler answered OK
    Nok,          ///< the handler answered NOK (or threw)
    Invalid,      ///< refused by the protocol: malformed, unknown, bad arguments, too long
    RateLimited,  ///< over the connection's rate
};
inline constexpr size_t kCommandResultCount = 4;
std::string_view command_result_name(CommandResult result);

/// One row of the commands counter. `command` is a wire name, or "invalid" for requests
/// whose command could not be read.
struct CommandCount {
    std::string_view command;
    CommandResult result;
    uint64_t count;
};

/// Connection-level counters (for `stats` and metrics).
struct ServerStats {
    uint64_t connections_open = 0;
    uint64_t connections_accepted = 0;
    /// Refused for credentials or for too many connections.
    uint64_t connections_denied = 0;
    uint64_t connections_over_limit = 0;
    uint64_t connections_idle_closed = 0;
    /// Alert lines a slow follower lost.
    uint64_t follow_lines_dropped = 0;
};

/// Starts `body` on a new thread and returns a function that joins it, or an error.
using ThreadSpawner = std::function<Result<std::function<void()>>(std::function<void()> body)>;

/// A spawner on std::thread, for tests and tools that run without EAL.
ThreadSpawner std_thread_spawner();

class ControlServer {
public:
    /// Bytes an alert follower may have waiting before new lines are dropped for it.
    static constexpr size_t kFollowBufferBytes = 256 * 1024;
    /// Replies waiting for a peer that does not read: above this the server stops reading
    /// its requests until they drain.
    static constexpr size_t kReplyBufferBytes = 1024 * 1024;

    explicit ControlServer(ControlConfig config);
    ~ControlServer();
    ControlServer(const ControlServer&) = delete;
    ControlServer& operator=(const ControlServer&) = delete;

    /// Binds the socket (creating its parent directory 0750 when missing, replacing a stale
    /// socket file, refusing when a live daemon answers on it or the path is not a socket),
    /// sets mode 0660 and the group, and starts the server thread through `spawn`.
    /// Control thread, once.
    Status start(const ThreadSpawner& spawn);

    /// Stops the thread, closes every connection and unlinks the socket file. Idempotent;
    /// the destructor calls it.
    void stop();

    /// Runs up to `max` queued requests through `handler` and queues their replies. Returns
    /// how many ran. Control thread; never throws.
    size_t dispatch(CommandHandler& handler, size_t max = 64);

    /// Sends one alert (a JSON object, without newline) to every following connection.
    /// Control thread; cheap (queues the line and wakes the server thread). Record the alert
    /// in the handler's recent-alerts history in the same step: a follow request dispatched
    /// later then lists it in its reply, one dispatched earlier gets it streamed, so a
    /// follower sees every alert once.
    void publish_alert(std::string_view json_line);

    /// Requests waiting for dispatch() (any thread).
    size_t pending() const;

    /// Snapshot of exfiltap_control_commands_total: every non-zero row. Any thread.
    std::vector<CommandCount> command_counts() const;
    ServerStats stats() const;

    const std::string& socket_path() const { return config_.socket; }

private:
    /// What the server thread hands over to dispatch() and gets back.
    struct Queued {
        uint64_t connection = 0;
        uint64_t sequence = 0;
        Request request;
        Peer peer;
    };
    struct Outgoing {
        uint64_t connection = 0;  ///< 0: an alert line for every follower
        uint64_t sequence = 0;
        std::string line;
        bool start_follow = false;
    };
    /// Counts one request; command_index kCommandCount stands for "invalid".
    void count(size_t command_index, CommandResult result);

    /// The server thread's connections (control_connections.cc); as a nested class it
    /// reaches the members below.
    class Loop;
    struct LoopDeleter {
        void operator()(Loop* loop) const;
    };
    using LoopPtr = std::unique_ptr<Loop, LoopDeleter>;
    /// A loop polling the listening socket and the eventfd.
    static Result<LoopPtr> make_loop(ControlServer& server);
    static void run_loop(Loop& loop) noexcept;

    void wake() const;
    /// Closes the listening socket (unlinking its file if it is still ours) and the eventfd.
    void stop_sockets();

    ControlConfig config_;
    gid_t group_gid_ = static_cast<gid_t>(-1);
    int listen_fd_ = -1;
    dev_t socket_dev_ = 0;
    ino_t socket_ino_ = 0;
    int event_fd_ = -1;
    bool started_ = false;
    std::function<void()> join_;
    LoopPtr loop_;

    mutable std::mutex mutex_;
    std::deque<Queued> inbox_;     // server thread -> dispatch()
    std::deque<Outgoing> outbox_;  // dispatch()/publish_alert() -> server thread
    std::atomic<bool> stopping_{false};

    // [command or kCommandCount for "invalid"][result]
    std::array<std::array<std::atomic<uint64_t>, kCommandResultCount>, kCommandCount + 1> counts_{};
    std::atomic<uint64_t> connections_open_{0};
    std::atomic<uint64_t> connections_accepted_{0};
    std::atomic<uint64_t> connections_denied_{0};
    std::atomic<uint64_t> connections_over_limit_{0};
    std::atomic<uint64_t> connections_idle_closed_{0};
    std::atomic<uint64_t> follow_lines_dropped_{0};
    /// Accepted `alerts follow` requests whose connection is still open.
    std::atomic<size_t> followers_{0};
};

}  // namespace exfiltap::control
