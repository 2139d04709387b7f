// SIEM outputs (DESIGN.md "Outputs"): each enabled output (syslog, redis) has a bounded queue
// and its own thread. The control thread renders a record and offers it; offering never
// waits for I/O: a full queue drops the record and counts it. The output thread connects,
// sends in batches, and when the peer is down or stalls reconnects with a doubling back-off,
// counting every record that could not be sent. Workers never see any of this: their events
// reach the control thread through their rings as before.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "common/result.h"
#include "control/alert_writer.h"
#include "control/config.h"
#include "control/siem_format.h"
#include "control/siem_transport.h"

namespace exfiltap::control {

/// Starts a thread running `body` named `name`; returns a function that joins it. The
/// daemon and offline runs pass dataplane::spawn_ctrl_thread (EAL control threads, off the
/// worker cores); tests pass a std::thread.
using ThreadStarter = std::function<Result<std::function<void()>>(
        const std::string& name, std::function<void()> body)>;

/// A ThreadStarter with std::thread (tests, tools without an EAL).
Result<std::function<void()>> start_std_thread(const std::string& name, std::function<void()> body);

struct SiemOutputOptions {
    uint32_t queue_records = 10000;
    /// Messages taken from the queue per send.
    uint32_t batch = 64;
    uint32_t backoff_min_ms = 100;
    uint32_t backoff_max_ms = 10000;
};

struct SiemOutputCounts {
    uint64_t offered = 0;
    uint64_t sent = 0;
    uint64_t dropped = 0;  // the queue was full
    uint64_t failed = 0;   // taken but not sent (peer down, refused, stalled, or left at stop)
    uint64_t connects = 0;
    uint64_t connect_failures = 0;
};

/// One output: a bounded queue of rendered messages and the thread that sends them.
class SiemOutput {
public:
    SiemOutput(
            std::string name, std::unique_ptr<SiemTransport> transport, SiemOutputOptions options);
    ~SiemOutput();
    SiemOutput(const SiemOutput&) = delete;
    SiemOutput& operator=(const SiemOutput&) = delete;
    SiemOutput(SiemOutput&&) = delete;
    SiemOutput& operator=(SiemOutput&&) = delete;

    /// Control thread. Queues `message` unless the queue is full (then drops and counts it).
    /// Never waits for the peer: the lock it takes is held by the output thread only to
    /// move messages in or out, never across I/O. Before start() messages wait in the queue.
    bool offer(std::string message);

    /// Starts the output thread. Once.
    Status start(const ThreadStarter& starter);

    /// Stops the thread: it goes on sending what is queued for at most `drain_ms` (when it
    /// is down, one connect attempt is made at once, and if that fails it gives up), then
    /// ends; what is still queued is counted as failed. Returns after the thread has ended (bounded
    /// by `drain_ms` plus the transport's timeouts). Idempotent.
    void stop(uint32_t drain_ms);
    /// stop() in two steps, so several outputs drain at the same time.
    void request_stop(uint32_t drain_ms);
    void wait_stopped();
    /// True once the output thread has ended (or was never started): wait_stopped() will
    /// not block.
    bool finished() const { return finished_.load(std::memory_order_acquire); }

    const std::string& name() const { return name_; }
    SiemOutputCounts counts() const;
    /// Records that did not reach the peer: dropped at the queue plus failed.
    uint64_t lost() const;

private:
    /// What the output thread should do next.
    enum class Next : uint8_t {
        Send,     // messages wait and a connection is there or due
        Connect,  // the stop asks for one attempt at once
        Quit,
    };
    void run();
    /// Output thread: sleeps until messages wait and a connection is there or due, or the
    /// stop's drain time is over.
    Next wait_for_work();
    /// Output thread: connects if due; false when it is down (back-off set).
    bool ensure_connected(std::chrono::steady_clock::time_point now);
    /// Output thread: sends one batch from the queue's front, puts back what was not tried.
    void send_batch(std::vector<std::string>& batch);

    std::string name_;
    std::unique_ptr<SiemTransport> transport_;
    SiemOutputOptions options_;

    mutable std::mutex mutex_;
    std::condition_variable wake_;
    std::deque<std::string> queue_;
    bool stopping_ = false;
    bool force_connect_ = false;
    std::chrono::steady_clock::time_point deadline_{};
    std::function<void()> join_;

    // Written by one thread each, read by anyone (relaxed).
    std::atomic<uint64_t> offered_{0};
    std::atomic<uint64_t> dropped_{0};
    std::atomic<uint64_t> sent_{0};
    std::atomic<uint64_t> failed_{0};
    std::atomic<uint64_t> connects_{0};
    std::atomic<uint64_t> connect_failures_{0};
    std::atomic<bool> finished_{true};

    // Output thread only.
    std::chrono::steady_clock::time_point next_attempt_{};
    uint32_t backoff_ms_ = 0;
    uint64_t failures_in_row_ = 0;
    uint64_t send_errors_ = 0;
};

/// The enabled outputs of a config, fed one record at a time.
class SiemOutputs {
public:
    /// Builds (without connecting) the outputs `config` enables; `version` goes into CEF.
    SiemOutputs(const OutputsConfig& config, std::string version, TransportTimeouts timeouts = {},
            SiemOutputOptions base = {});

    bool empty() const { return outputs_.empty(); }
    Status start(const ThreadStarter& starter);

    /// Control thread: `json` is alert_to_json(record), rendered once for the file and here.
    void publish(const AlertRecord& record, const std::string& json);

    void stop(uint32_t drain_ms);
    /// stop() without the wait: a reload retires the old outputs this way, so the control
    /// thread goes on while they drain; finished() tells when wait_stopped() is free.
    void request_stop(uint32_t drain_ms);
    bool finished() const;
    void wait_stopped();

    /// (output name, records lost) per enabled output, for output_drops.
    std::vector<std::pair<std::string, uint64_t>> drops() const;
    const std::vector<std::unique_ptr<SiemOutput>>& outputs() const { return outputs_; }

private:
    SyslogHeader header_;
    SyslogFormat syslog_format_ = SyslogFormat::Json;
    std::string version_;
    SiemOutput* syslog_ = nullptr;
    SiemOutput* redis_ = nullptr;
    std::vector<std::unique_ptr<SiemOutput>> outputs_;
};

}  // namespace exfiltap::control
