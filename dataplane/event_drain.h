// The control side of the worker event rings, shared by the offline reader and the live
// control loop: drain, hand each event over, wipe the sensitive value.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <limits>
#include <vector>

#include "dataplane/worker.h"

struct rte_ring;

namespace exfiltap::dataplane {

/// The symmetric RSS key (0x6d5a repeated): the Toeplitz hash of (a, b) equals that of
/// (b, a), so both directions of a flow reach one worker, in software (offline) and on NICs.
inline constexpr std::array<uint8_t, 40> kSymmetricRssKey = {0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a,
        0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a, 0x6d,
        0x5a, 0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a,
        0x6d, 0x5a, 0x6d, 0x5a};

/// Dequeues up to `per_ring` events from each ring and passes each to `on_event` (if set).
/// The value is only needed for masking and the HMAC: it is wiped after the call. Returns
/// true when any event was drained.
bool drain_events(const std::vector<rte_ring*>& rings,
        const std::function<void(const WorkerEvent&)>& on_event,
        unsigned per_ring = std::numeric_limits<unsigned>::max());

}  // namespace exfiltap::dataplane
