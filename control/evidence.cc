#include "control/evidence.h"

#include <algorithm>
#include <ctime>

#include "common/log.h"

namespace exfiltap::control {
namespace {

std::string flow_list(const std::vector<uint64_t>& flow_ids) {
    std::string text;
    for (const uint64_t id : flow_ids) {
        text += (text.empty() ? "" : ",") + std::to_string(id);
    }
    return text;
}

}  // namespace

EvidenceCollector::EvidenceCollector(EvidenceConfig config, std::string dir,
        std::vector<RecordSource> sources, size_t buffer_bytes)
    : config_(std::move(config)),
      dir_(std::move(dir)),
      sources_(std::move(sources)),
      buffer_bytes_(buffer_bytes) {}

void EvidenceCollector::reconfigure(
        const EvidenceConfig& config, std::string dir, size_t buffer_bytes) {
    const uint64_t recorder_bytes = config_.recorder_bytes;
    const uint32_t snap_bytes = config_.snap_bytes;
    config_ = config;
    config_.recorder_bytes = recorder_bytes;
    config_.snap_bytes = snap_bytes;
    dir_ = std::move(dir);
    buffer_bytes_ = buffer_bytes;
}

EvidenceCollector::~EvidenceCollector() {
    stop();
}

Status EvidenceCollector::start(const ThreadStarter& starter) {
    Result<std::function<void()>> join = starter("exf-evidence", [this]() { run_writer(); });
    if (!join) {
        return make_error("cannot start the evidence writer: " + join.error());
    }
    join_ = std::move(join.value());
    return Ok{};
}

Result<EvidenceTicket> EvidenceCollector::request(const std::string& id,
        std::vector<uint64_t> flow_ids, std::chrono::steady_clock::time_point now) {
    auto refuse = [this](std::string why) -> Result<EvidenceTicket> {
        const std::lock_guard lock(mutex_);
        counters_.refused += 1;
        return make_error(std::move(why));
    };
    if (flow_ids.empty() || flow_ids.size() > kMaxEvidenceFlows) {
        return refuse("expected 1 to " + std::to_string(kMaxEvidenceFlows) + " flow ids");
    }
    if (pending_.size() >= kMaxPendingEvidence) {
        return refuse("too many evidence requests waiting for the workers; try again shortly");
    }
    std::sort(flow_ids.begin(), flow_ids.end());
    flow_ids.erase(std::unique(flow_ids.begin(), flow_ids.end()), flow_ids.end());

    Pending pending;
    pending.sequence = ++sequence_;
    pending.id = id;
    pending.name = evidence_file_name(static_cast<uint64_t>(std::time(nullptr)), pending.sequence,
            id.empty() ? "evidence" : id);
    pending.deadline = now + std::chrono::milliseconds(config_.request_timeout_ms);
    pending.dir = dir_;
    pending.limits = config_.limits;
    pending.snap_bytes = config_.snap_bytes;
    for (const RecordSource& source : sources_) {
        auto part = std::make_unique<dataplane::RecorderRequest>();
        part->flow_ids = flow_ids;
        part->buffer = std::make_unique<uint8_t[]>(buffer_bytes_);
        part->buffer_bytes = buffer_bytes_;
        if (source(part.get())) {
            pending.parts.push_back(std::move(part));
        } else {
            pending.workers_missing += 1;
        }
    }
    pending.flow_ids = std::move(flow_ids);
    EvidenceTicket ticket{pending.sequence, dir_ + "/" + pending.name};
    {
        const std::lock_guard lock(mutex_);
        counters_.requests += 1;
    }
    pending_.push_back(std::move(pending));
    poll(now);  // no worker to ask: hand it on at once
    return ticket;
}

void EvidenceCollector::poll(std::chrono::steady_clock::time_point now) {
    std::erase_if(orphans_, [](const std::unique_ptr<dataplane::RecorderRequest>& part) {
        return part->done.load(std::memory_order_acquire);
    });
    for (auto it = pending_.begin(); it != pending_.end();) {
        const bool answered = std::all_of(it->parts.begin(), it->parts.end(),
                [](const auto& part) { return part->done.load(std::memory_order_acquire); });
        if (!answered && now < it->deadline) {
            ++it;
            continue;
        }
        if (!answered) {
            // A stopped worker never answers: write what came, keep the rest until it does.
            auto late = std::stable_partition(it->parts.begin(), it->parts.end(),
                    [](const auto& part) { return part->done.load(std::memory_order_acquire); });
            it->workers_missing += static_cast<uint32_t>(it->parts.end() - late);
            std::move(late, it->parts.end(), std::back_inserter(orphans_));
            it->parts.erase(late, it->parts.end());
            const std::lock_guard lock(mutex_);
            counters_.abandoned += 1;
        }
        hand_to_writer(*it);
        it = pending_.erase(it);
    }
}

void EvidenceCollector::hand_to_writer(Pending& pending) {
    std::unique_lock lock(mutex_);
    if (queue_.size() >= kEvidenceQueueJobs || stopping_ || !join_) {
        counters_.queue_dropped += 1;
        lock.unlock();
        log_warning("evidence",
                "evidence for " + pending.id + " (flows " + flow_list(pending.flow_ids)
                        + ") dropped: the writer is busy or stopped; ask again later");
        return;
    }
    queue_.push_back(std::move(pending));
    lock.unlock();
    wake_.notify_one();
}

size_t EvidenceCollector::pending() const {
    const std::lock_guard lock(mutex_);
    return pending_.size() + queue_.size() + (writing_ ? 1 : 0);
}

void EvidenceCollector::stop() {
    {
        const std::lock_guard lock(mutex_);
        stopping_ = true;
    }
    wake_.notify_one();
    if (join_) {
        join_();
        join_ = nullptr;
    }
}

EvidenceCounters EvidenceCollector::counters() const {
    const std::lock_guard lock(mutex_);
    return counters_;
}

void EvidenceCollector::run_writer() {
    std::unique_lock lock(mutex_);
    while (true) {
        wake_.wait(lock, [this]() { return stopping_ || !queue_.empty(); });
        if (queue_.empty()) {
            return;  // stopping, and every job written
        }
        Pending job = std::move(queue_.front());
        queue_.pop_front();
        writing_ = true;
        lock.unlock();
        write_job(job);
        job = Pending();  // its buffers go before the lock is taken again
        lock.lock();
        writing_ = false;
    }
}

void EvidenceCollector::write_job(Pending& job) {
    // Each worker's records are in its packet order; a flow lives on one worker, yet the
    // request may span several: merge all by time, keeping each worker's order on ties.
    std::vector<EvidencePacket> packets;
    uint64_t truncated = 0;
    uint64_t overrun = 0;
    for (const auto& part : job.parts) {
        truncated += part->result.truncated;
        overrun += part->result.overrun_bytes;
        dataplane::RecordReader reader(part->records());
        dataplane::RecordHeader header;
        std::span<const uint8_t> frame;
        while (reader.next(header, frame)) {
            packets.push_back({header.time_ns, header.original_len, frame});
        }
    }
    std::stable_sort(packets.begin(), packets.end(),
            [](const EvidencePacket& a, const EvidencePacket& b) { return a.time_ns < b.time_ns; });

    std::string comment = "exfiltap evidence for " + (job.id.empty() ? "evidence" : job.id)
            + "; flows " + flow_list(job.flow_ids);
    if (truncated > 0 || job.workers_missing > 0 || overrun > 0) {
        comment += "; incomplete: " + std::to_string(truncated) + " packets over the copy buffer, "
                + std::to_string(job.workers_missing) + " workers not answering, "
                + std::to_string(overrun) + " recorder bytes overwritten before they were copied";
    }
    Result<EvidenceFileOutcome> outcome =
            write_evidence_file(job.dir, job.name, comment, job.snap_bytes, packets, job.limits);

    std::unique_lock lock(mutex_);
    counters_.packets_truncated += truncated;
    counters_.overrun_bytes += overrun;
    if (!outcome) {
        counters_.write_errors += 1;
        lock.unlock();
        log_warning("evidence",
                "evidence for " + job.id + " not written: " + outcome.error()
                        + "; check evidence.dir and free space");
        return;
    }
    counters_.files_written += 1;
    counters_.packets_written += outcome->packets;
    counters_.bytes_written += outcome->bytes;
    counters_.packets_cut += outcome->packets_cut;
    counters_.files_removed += outcome->files_removed;
    counters_.bytes_removed += outcome->bytes_removed;
    lock.unlock();
    std::string message = "wrote " + outcome->path + " for " + job.id + ": "
            + std::to_string(outcome->packets) + " packets of flows " + flow_list(job.flow_ids);
    if (outcome->packets_cut > 0) {
        message += ", " + std::to_string(outcome->packets_cut) + " left out by max_file_bytes";
    }
    if (outcome->files_removed > 0) {
        message += "; removed the " + std::to_string(outcome->files_removed)
                + " oldest evidence files (" + std::to_string(outcome->bytes_removed)
                + " bytes) for max_files/max_total_bytes";
    }
    log_info("evidence", message);
}

}  // namespace exfiltap::control
