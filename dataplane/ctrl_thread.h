// Helper threads away from worker cores (DESIGN.md "Threads and cores"): the socket server,
// SIEM writers and the Prometheus exposer run in EAL control threads, whose affinity is the
// CPUs no lcore is pinned to (or all of them when every CPU has an lcore), never a worker's.
#pragma once

#include <functional>
#include <string>

#include "common/result.h"

namespace exfiltap::dataplane {

/// Starts `body` in an EAL control thread named `name` (after init_eal()). Returns a
/// function that joins it.
Result<std::function<void()>> spawn_ctrl_thread(
        const std::string& name, std::function<void()> body);

/// Runs `body` in a control thread and waits for it: objects built there (a civetweb server)
/// give their own threads the control thread's affinity.
Status run_in_ctrl_thread(const std::string& name, const std::function<void()>& body);

}  // namespace exfiltap::dataplane
