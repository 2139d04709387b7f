// A real Prometheus server for tests: Debian's `prometheus` binary on 127.0.0.1 and a free
// port, a temporary config that scrapes one target every second, temporary storage. Queries
// go through its HTTP API (/api/v1/query). Stopped by PID and its folder removed on
// destruction. Reusable against any exporter: the daemon's integration tests pass the
// daemon's metrics address as the target.
//
//   auto server = PrometheusServer::start("127.0.0.1:9477");
//   auto packets = server.value()->wait_for_value("exfiltap_packets_total",
//           [](double v) { return v > 0; }, std::chrono::seconds(20));
#pragma once

#include <sys/types.h>

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "common/result.h"

#include <nlohmann/json.hpp>

namespace exfiltap::testing {

/// The prometheus binary to run: $PROMETHEUS_BINARY if set, else `prometheus` on PATH;
/// nullopt when there is none.
std::optional<std::string> find_prometheus_binary();

/// True when EXFILTAP_REQUIRE_SHARED=1: a missing prometheus binary is then a failure, not
/// a skip.
bool shared_tools_required();

class PrometheusServer {
public:
    /// Starts the server scraping `target` ("127.0.0.1:PORT" or "[::1]:PORT"; anything else
    /// is refused) as job "exfiltap", and waits until /-/ready answers 200. Errors carry the
    /// server's own log.
    static Result<std::unique_ptr<PrometheusServer>> start(const std::string& target,
            std::chrono::milliseconds ready_timeout = std::chrono::seconds(30));

    /// SIGTERM by PID, a bounded wait, SIGKILL if it has not gone; then the folder goes.
    ~PrometheusServer();
    PrometheusServer(const PrometheusServer&) = delete;
    PrometheusServer& operator=(const PrometheusServer&) = delete;

    uint16_t port() const { return port_; }

    /// An instant query; returns `data.result` (a JSON array of {metric, value}).
    Result<nlohmann::json> query(const std::string& promql) const;

    /// The value of the first sample of an instant query; an error when it has none.
    Result<double> query_value(const std::string& promql) const;

    /// Polls `promql` every 250 ms until its first sample satisfies `accept` or `timeout`
    /// passes; returns that value, or an error with the last answer.
    Result<double> wait_for_value(const std::string& promql,
            const std::function<bool(double)>& accept, std::chrono::milliseconds timeout) const;

    /// The server's stdout and stderr so far, for failure messages.
    std::string log() const;

private:
    PrometheusServer() = default;
    void stop();

    pid_t pid_ = -1;
    uint16_t port_ = 0;
    std::string dir_;
};

}  // namespace exfiltap::testing
