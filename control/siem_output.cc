#include "control/siem_output.h"

#include <unistd.h>

#include <algorithm>
#include <array>
#include <thread>

#include "common/log.h"

namespace exfiltap::control {
namespace {

using Clock = std::chrono::steady_clock;

constexpr size_t kHostNameMax = 256;

std::string host_name() {
    std::array<char, kHostNameMax> name{};
    if (gethostname(name.data(), name.size() - 1) != 0 || name[0] == '\0') {
        return "-";
    }
    return name.data();
}

/// True for 1, 2, 4, 8, ...: logs about a lasting failure come at growing intervals.
bool worth_logging(uint64_t n) {
    return n != 0 && (n & (n - 1)) == 0;
}

}  // namespace

Result<std::function<void()>> start_std_thread(
        const std::string& /*name*/, std::function<void()> body) {
    auto thread = std::make_shared<std::thread>(std::move(body));
    return std::function<void()>([thread]() {
        if (thread->joinable()) {
            thread->join();
        }
    });
}

SiemOutput::SiemOutput(
        std::string name, std::unique_ptr<SiemTransport> transport, SiemOutputOptions options)
    : name_(std::move(name)),
      transport_(std::move(transport)),
      options_(options),
      backoff_ms_(options.backoff_min_ms) {
    options_.batch = std::max<uint32_t>(options_.batch, 1);
    options_.queue_records = std::max<uint32_t>(options_.queue_records, 1);
}

SiemOutput::~SiemOutput() {
    stop(0);
}

bool SiemOutput::offer(std::string message) {
    offered_.fetch_add(1, std::memory_order_relaxed);
    bool was_empty = false;
    {
        const std::lock_guard<std::mutex> lock(mutex_);
        if (stopping_ || queue_.size() >= options_.queue_records) {
            dropped_.fetch_add(1, std::memory_order_relaxed);
            return false;
        }
        was_empty = queue_.empty();
        queue_.push_back(std::move(message));
    }
    // The thread only sleeps on an empty queue (or a back-off, which a wake-up does not cut
    // short), so one wake-up per burst is enough.
    if (was_empty) {
        wake_.notify_one();
    }
    return true;
}

Status SiemOutput::start(const ThreadStarter& starter) {
    if (join_) {
        return make_error(name_ + " output already started");
    }
    finished_.store(false, std::memory_order_release);
    auto joiner = starter("siem-" + name_, [this]() { run(); });
    if (!joiner) {
        finished_.store(true, std::memory_order_release);
        return make_error(name_ + " output: " + joiner.error());
    }
    join_ = std::move(*joiner);
    return Ok{};
}

void SiemOutput::stop(uint32_t drain_ms) {
    request_stop(drain_ms);
    wait_stopped();
}

void SiemOutput::request_stop(uint32_t drain_ms) {
    {
        const std::lock_guard<std::mutex> lock(mutex_);
        if (!stopping_) {
            stopping_ = true;
            force_connect_ = true;
            deadline_ = Clock::now() + std::chrono::milliseconds(drain_ms);
        }
        if (!join_) {
            // Never started (or already stopped): nothing will send what waits.
            failed_.fetch_add(queue_.size(), std::memory_order_relaxed);
            queue_.clear();
            return;
        }
    }
    wake_.notify_all();
}

void SiemOutput::wait_stopped() {
    std::function<void()> join;
    {
        const std::lock_guard<std::mutex> lock(mutex_);
        join = std::move(join_);
        join_ = nullptr;
    }
    if (join) {
        join();
    }
}

SiemOutputCounts SiemOutput::counts() const {
    SiemOutputCounts c;
    c.offered = offered_.load(std::memory_order_relaxed);
    c.sent = sent_.load(std::memory_order_relaxed);
    c.dropped = dropped_.load(std::memory_order_relaxed);
    c.failed = failed_.load(std::memory_order_relaxed);
    c.connects = connects_.load(std::memory_order_relaxed);
    c.connect_failures = connect_failures_.load(std::memory_order_relaxed);
    return c;
}

uint64_t SiemOutput::lost() const {
    return dropped_.load(std::memory_order_relaxed) + failed_.load(std::memory_order_relaxed);
}

bool SiemOutput::ensure_connected(Clock::time_point now) {
    if (transport_->connected()) {
        return true;
    }
    Status st = transport_->connect();
    if (st) {
        connects_.fetch_add(1, std::memory_order_relaxed);
        if (failures_in_row_ > 0) {
            log_info("control",
                    name_ + " output: connected to " + transport_->describe() + " again after "
                            + std::to_string(failures_in_row_) + " failed attempts");
        }
        failures_in_row_ = 0;
        return true;
    }
    connect_failures_.fetch_add(1, std::memory_order_relaxed);
    ++failures_in_row_;
    if (worth_logging(failures_in_row_)) {
        log_warning("control",
                name_ + " output: " + st.error() + " (attempt "
                        + std::to_string(failures_in_row_) + ", next in "
                        + std::to_string(backoff_ms_)
                        + " ms); records wait in its queue and are dropped and counted when "
                          "it is full");
    }
    next_attempt_ = now + std::chrono::milliseconds(backoff_ms_);
    backoff_ms_ = std::min(backoff_ms_ * 2, options_.backoff_max_ms);
    return false;
}

SiemOutput::Next SiemOutput::wait_for_work() {
    std::unique_lock<std::mutex> lock(mutex_);
    while (true) {
        const Clock::time_point now = Clock::now();
        if (stopping_ && (queue_.empty() || now >= deadline_)) {
            return Next::Quit;
        }
        if (!queue_.empty()) {
            if (force_connect_) {
                force_connect_ = false;
                return transport_->connected() ? Next::Send : Next::Connect;
            }
            if (transport_->connected() || now >= next_attempt_) {
                return Next::Send;
            }
        }
        if (queue_.empty()) {
            wake_.wait(lock);
        } else {
            wake_.wait_until(lock, stopping_ ? std::min(next_attempt_, deadline_) : next_attempt_);
        }
    }
}

void SiemOutput::send_batch(std::vector<std::string>& batch) {
    {
        const std::lock_guard<std::mutex> lock(mutex_);
        const size_t n = std::min<size_t>(queue_.size(), options_.batch);
        for (size_t i = 0; i < n; ++i) {
            batch.push_back(std::move(queue_.front()));
            queue_.pop_front();
        }
    }
    const SendOutcome outcome = transport_->send(batch);
    sent_.fetch_add(outcome.delivered, std::memory_order_relaxed);
    failed_.fetch_add(outcome.lost, std::memory_order_relaxed);
    const size_t done = std::min(batch.size(), outcome.delivered + outcome.lost);
    if (done < batch.size()) {
        const std::lock_guard<std::mutex> lock(mutex_);
        for (size_t i = batch.size(); i > done; --i) {
            queue_.push_front(std::move(batch[i - 1]));
        }
    }
    batch.clear();
    if (outcome.error.empty()) {
        backoff_ms_ = options_.backoff_min_ms;
        return;
    }
    ++send_errors_;
    if (worth_logging(send_errors_)) {
        log_warning("control",
                name_ + " output: sending to " + transport_->describe()
                        + " failed: " + outcome.error + " (" + std::to_string(send_errors_)
                        + " send failures, " + std::to_string(lost()) + " records lost so far)");
    }
    if (!transport_->connected()) {
        // A peer that accepted and then stalled or dropped us: wait before trying again.
        next_attempt_ = Clock::now() + std::chrono::milliseconds(backoff_ms_);
        backoff_ms_ = std::min(backoff_ms_ * 2, options_.backoff_max_ms);
    }
}

void SiemOutput::run() {
    std::vector<std::string> batch;
    batch.reserve(options_.batch);
    while (true) {
        const Next next = wait_for_work();
        if (next == Next::Quit) {
            break;
        }
        if (!ensure_connected(Clock::now())) {
            if (next == Next::Connect) {
                break;  // down at the stop: do not hold the run up retrying
            }
            continue;
        }
        send_batch(batch);
    }
    transport_->close();
    {
        const std::lock_guard<std::mutex> lock(mutex_);
        failed_.fetch_add(queue_.size(), std::memory_order_relaxed);
        queue_.clear();
    }
    finished_.store(true, std::memory_order_release);
}

SiemOutputs::SiemOutputs(const OutputsConfig& config, std::string version,
        TransportTimeouts timeouts, SiemOutputOptions base)
    : syslog_format_(config.syslog.format), version_(std::move(version)) {
    header_.facility = config.syslog.facility;
    header_.hostname = host_name();
    header_.app_name = config.syslog.app_name;
    header_.procid = std::to_string(getpid());
    header_.msgid = "alert";
    if (config.syslog.enabled) {
        SiemOutputOptions options = base;
        options.queue_records = config.syslog.queue_records;
        outputs_.push_back(std::make_unique<SiemOutput>(
                "syslog", make_syslog_transport(config.syslog, timeouts), options));
        syslog_ = outputs_.back().get();
    }
    if (config.redis.enabled) {
        SiemOutputOptions options = base;
        options.queue_records = config.redis.queue_records;
        outputs_.push_back(std::make_unique<SiemOutput>(
                "redis", make_redis_transport(config.redis, timeouts), options));
        redis_ = outputs_.back().get();
    }
}

Status SiemOutputs::start(const ThreadStarter& starter) {
    for (const auto& output : outputs_) {
        if (Status st = output->start(starter); !st) {
            return st;
        }
    }
    return Ok{};
}

void SiemOutputs::publish(const AlertRecord& record, const std::string& json) {
    if (syslog_ != nullptr) {
        const std::string msg =
                syslog_format_ == SyslogFormat::Cef ? alert_to_cef(record, version_) : json;
        syslog_->offer(
                format_rfc5424(header_, syslog_severity(record.severity), record.timestamp_s, msg));
    }
    if (redis_ != nullptr) {
        redis_->offer(json);
    }
}

void SiemOutputs::stop(uint32_t drain_ms) {
    // Each output drains in its own thread: stop them all first, then wait, so the drain
    // time is shared rather than added up.
    request_stop(drain_ms);
    wait_stopped();
}

void SiemOutputs::request_stop(uint32_t drain_ms) {
    for (const auto& output : outputs_) {
        output->request_stop(drain_ms);
    }
}

bool SiemOutputs::finished() const {
    return std::all_of(outputs_.begin(), outputs_.end(),
            [](const std::unique_ptr<SiemOutput>& output) { return output->finished(); });
}

void SiemOutputs::wait_stopped() {
    for (const auto& output : outputs_) {
        output->wait_stopped();
    }
}

std::vector<std::pair<std::string, uint64_t>> SiemOutputs::drops() const {
    std::vector<std::pair<std::string, uint64_t>> out;
    out.reserve(outputs_.size());
    for (const auto& output : outputs_) {
        out.emplace_back(output->name(), output->lost());
    }
    return out;
}

}  // namespace exfiltap::control
