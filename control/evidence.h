// Evidence collection (DESIGN.md "Outputs", Evidence): the control thread asks every
// worker's flight recorder for the packets of a set of flows, and a writer thread of its own
// merges the answers in time order and writes them as one pcapng file (evidence_file.h).
//
// Threads: request(), poll(), stop() and the destructor run on the control thread (the
// incident correlator and the `evidence` command call request(); the control loop calls
// poll()). Workers only answer the requests handed to them (Worker::request_records()).
// The writer thread owns file I/O; a full writer queue drops the request and counts it.
// Ownership: every request and its buffers belong to the collector; a request a worker has
// not answered by its deadline is abandoned (its answered parts are still written) and
// freed once the worker answers, or when the collector is destroyed, which must happen only
// after the workers have stopped.
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
#include <vector>

#include "common/result.h"
#include "control/evidence_config.h"
#include "control/siem_output.h"
#include "dataplane/flight_recorder.h"

namespace exfiltap::control {

/// Hands a copy-out request to one worker; false when it cannot take it.
using RecordSource = std::function<bool(dataplane::RecorderRequest*)>;

/// Counts of one collector, readable from any thread.
struct EvidenceCounters {
    uint64_t requests = 0;       // accepted by request()
    uint64_t refused = 0;        // refused by request(): bad arguments, too many pending
    uint64_t abandoned = 0;      // some worker did not answer by the deadline
    uint64_t queue_dropped = 0;  // the writer's queue was full
    uint64_t files_written = 0;
    uint64_t write_errors = 0;
    uint64_t packets_written = 0;
    uint64_t bytes_written = 0;      // file bytes
    uint64_t packets_truncated = 0;  // did not fit a worker's copy-out buffer
    uint64_t overrun_bytes = 0;      // recorder bytes overwritten before a worker copied them
    uint64_t packets_cut = 0;        // left out by max_file_bytes
    uint64_t files_removed = 0;      // rotation: oldest files removed for max_files/total
    uint64_t bytes_removed = 0;
};

/// What request() promises: the file the evidence will be written to.
struct EvidenceTicket {
    uint64_t sequence = 0;
    std::string path;
};

/// Bounds of the collector's own work.
inline constexpr size_t kMaxEvidenceFlows = 256;
inline constexpr size_t kMaxPendingEvidence = 16;
inline constexpr size_t kEvidenceQueueJobs = 16;

class EvidenceCollector {
public:
    /// `sources`: one per worker with a recorder. `buffer_bytes`: each worker's copy-out
    /// buffer per request (a request's memory is sources x buffer_bytes until written).
    EvidenceCollector(EvidenceConfig config, std::string dir, std::vector<RecordSource> sources,
            size_t buffer_bytes);
    ~EvidenceCollector();
    EvidenceCollector(const EvidenceCollector&) = delete;
    EvidenceCollector& operator=(const EvidenceCollector&) = delete;
    EvidenceCollector(EvidenceCollector&&) = delete;
    EvidenceCollector& operator=(EvidenceCollector&&) = delete;

    /// Starts the writer thread (control thread, once).
    Status start(const ThreadStarter& starter);

    /// Asks every worker for the packets of `flow_ids` (1..kMaxEvidenceFlows); `id` names
    /// what the evidence is for (an incident id, "operator") and goes into the file's
    /// comment and name. Returns where the file will be written; an error when the
    /// arguments are bad or kMaxPendingEvidence requests already wait. Never waits.
    Result<EvidenceTicket> request(const std::string& id, std::vector<uint64_t> flow_ids,
            std::chrono::steady_clock::time_point now = std::chrono::steady_clock::now());

    /// Control loop: hands requests every worker answered to the writer, abandons those
    /// past their deadline, frees abandoned parts answered since. Cheap when idle.
    void poll(std::chrono::steady_clock::time_point now = std::chrono::steady_clock::now());

    /// Requests not yet handed to the writer, and jobs the writer has not finished.
    size_t pending() const;
    /// Stops the writer after the jobs it holds (control thread; idempotent).
    void stop();

    EvidenceCounters counters() const;
    const std::string& dir() const noexcept { return dir_; }

    /// A reload: requests made from now on use the new folder, limits, timeout and copy
    /// buffer size; those already made finish with the settings they were made with
    /// (control thread). The recorders' size and snap length are the workers' and stay.
    void reconfigure(const EvidenceConfig& config, std::string dir, size_t buffer_bytes);

private:
    struct Pending {
        uint64_t sequence = 0;
        std::string id;
        std::vector<uint64_t> flow_ids;
        std::string name;
        std::chrono::steady_clock::time_point deadline;
        // The settings it was made with (a reload changes the collector's, not these).
        std::string dir;
        EvidenceLimits limits;
        uint32_t snap_bytes = 0;
        std::vector<std::unique_ptr<dataplane::RecorderRequest>> parts;  // handed to workers
        uint32_t workers_missing = 0;  // could not be asked, or did not answer
    };
    void hand_to_writer(Pending& pending);
    void run_writer();
    void write_job(Pending& job);

    EvidenceConfig config_;
    std::string dir_;
    std::vector<RecordSource> sources_;
    size_t buffer_bytes_;
    uint64_t sequence_ = 0;
    std::vector<Pending> pending_;  // control thread only
    // Parts of abandoned requests a worker may still write into.
    std::vector<std::unique_ptr<dataplane::RecorderRequest>> orphans_;

    mutable std::mutex mutex_;
    std::condition_variable wake_;
    std::deque<Pending> queue_;  // guarded by mutex_
    bool writing_ = false;       // guarded by mutex_
    bool stopping_ = false;      // guarded by mutex_
    EvidenceCounters counters_;  // guarded by mutex_
    std::function<void()> join_;
};

}  // namespace exfiltap::control
