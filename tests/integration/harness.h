// Runs the built exfiltap binary on a capture in a private temporary folder and reads back
// what it produced: exit code, stdout, alert records, summary JSON and the written capture.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace exfiltap::testing {

struct RunOutput {
    int exit_code = -1;
    std::string out;                        // stdout and stderr
    std::vector<nlohmann::json> alerts;     // event_type alert
    std::vector<nlohmann::json> incidents;  // event_type incident, in file order
    nlohmann::json summary;
    std::string dir;  // the run's folder (state_dir, outputs)
};

/// Runs `exfiltap --pcap PCAP --write DIR/out.pcap --alerts DIR/alerts.json
/// --summary-json DIR/summary.json --set state_dir=DIR/state` plus `extra` arguments.
RunOutput run_exfiltap(const std::string& pcap, const std::vector<std::string>& extra = {});

/// A schema of the source tree's schema/ folder ("alert.schema.json"); null when missing.
nlohmann::json load_schema(const std::string& name);

/// run_exfiltap(pcap, {"--config", config}) that adds a test failure, naming the capture,
/// when the exit code is not 0, a schema is missing, or an alert or incident record does
/// not match schema/alert.schema.json or schema/incident.schema.json.
RunOutput run_checked(const std::string& pcap, const std::string& config);

/// Runs the binary with exactly these arguments (in a fresh folder); no parsing.
RunOutput run_exfiltap_raw(const std::vector<std::string>& args);

/// Path of a file in the shared material ("pcaps/x.pcap", "cases/y.pcap"), or "" when the
/// shared folder is absent (the caller skips; with EXFILTAP_REQUIRE_SHARED=1 it fails).
std::string shared_file(const std::string& relative);

/// Whether a missing shared folder must fail the test instead of skipping it.
bool shared_required();

/// Alerts of one class.
std::vector<nlohmann::json> alerts_of(const RunOutput& run, const std::string& cls);

/// The run's alert records, one JSON line each, for a failure message; its output when
/// there are none.
std::string dump_alerts(const RunOutput& run);

/// Last four characters of each alert's sample.
std::vector<std::string> sample_tails(const std::vector<nlohmann::json>& alerts);

struct PcapRecord {
    uint64_t sec = 0;
    uint64_t frac = 0;  // microseconds or nanoseconds, as in the file
    uint32_t caplen = 0;
    uint32_t len = 0;
    std::string data;
};

/// Every record of a pcap file, in file order (via libpcap, precision as in the file).
std::vector<PcapRecord> read_pcap(const std::string& path);

/// HMAC-SHA256 hex of `value` under the key in STATE_DIR/sample_hmac.key.
std::string sample_hmac(const std::string& state_dir, const std::string& value);

}  // namespace exfiltap::testing

#define EXFILTAP_SHARED_OR_SKIP(var, rel)                                                    \
    const std::string var = ::exfiltap::testing::shared_file(rel);                           \
    if (var.empty()) {                                                                       \
        if (::exfiltap::testing::shared_required()) {                                        \
            FAIL() << "shared material missing: " << (rel)                                   \
                   << " (EXFILTAP_REQUIRE_SHARED=1; set EXFILTAP_SHARED_DIR)";               \
        }                                                                                    \
        GTEST_SKIP() << "shared material not found: " << (rel)                               \
                     << " (looked in EXFILTAP_SHARED_DIR or ../shared beside the checkout)"; \
    }
