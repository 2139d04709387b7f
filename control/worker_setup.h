// Builds the dataplane's view of a loaded configuration: the worker template and the
// internal networks. Shared by the exfiltap program and the benchmark so both run the same
// workers. Control thread.
#pragma once

#include <memory>

#include "control/config.h"
#include "dataplane/network_set.h"
#include "dataplane/worker.h"
#include "detectors/content_scanner.h"

namespace exfiltap::control {

/// The internal networks of `config` as the workers check them.
dataplane::NetworkSet internal_networks(const Config& config);

/// A worker template: flow table, timeouts, budgets, checksum mode, exception policy and
/// content database. `internal` must outlive the workers.
dataplane::WorkerConfig worker_template(const Config& config, const dataplane::NetworkSet& internal,
        std::shared_ptr<const detectors::PatternDatabase> patterns);

}  // namespace exfiltap::control
