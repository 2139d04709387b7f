// The live daemon (DESIGN.md "Modes", full form): live ports, workers, and on the main lcore
// the control loop that owns everything slow: alerts and the response policy, the block
// list with its journal and audit log, the control socket, the Prometheus exporter, reload
// and signals, readiness for systemd.
#pragma once

#include <csignal>
#include <memory>
#include <string>
#include <vector>

#include "control/config.h"
#include "detectors/content_scanner.h"

namespace exfiltap::control {

struct DaemonOptions {
    std::string config_path;  // "" when running on defaults
    std::vector<std::string> overrides;
    /// EAL arguments from the command line (before "--").
    std::vector<std::string> eal_args;
    unsigned workers = 0;  // 0: workers.count
    std::string alerts;    // overrides outputs.alerts_file
    /// Set by signal handlers; the loop polls them.
    volatile sig_atomic_t* stop_requested = nullptr;
    volatile sig_atomic_t* reload_requested = nullptr;
};

/// Runs until a stop is requested. Returns the process exit code (0 after a clean drain).
int run_daemon(const DaemonOptions& options, Config config,
        std::shared_ptr<const detectors::PatternDatabase> patterns);

}  // namespace exfiltap::control
