// The evidence section of the config (`outputs.evidence`, DESIGN.md "Outputs"): the
// workers' flight recorders and the pcapng files written from them. Control thread, at load.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "control/config_reader.h"
#include "control/evidence_file.h"

namespace exfiltap::control {

struct EvidenceConfig {
    bool enabled = false;
    /// Folder of the evidence files; empty: STATE_DIR/evidence.
    std::string dir;
    /// Flight recorder ring per worker (rounded down to a power of two) and bytes kept of
    /// each frame.
    uint64_t recorder_bytes = 16ULL << 20;
    uint32_t snap_bytes = 1600;
    EvidenceLimits limits;
    /// A copy-out request a worker has not answered by then is abandoned.
    uint32_t request_timeout_ms = 5000;

    /// `dir`, or STATE_DIR/evidence.
    std::string effective_dir(const std::string& state_dir) const;
    /// Each worker's copy-out buffer per request: an answer never holds more than its ring,
    /// and a file never more than max_file_bytes.
    size_t buffer_bytes() const;
    /// What only a restart changes: the workers allocate their recorders at start.
    bool same_recorders(const EvidenceConfig& other) const {
        return enabled == other.enabled && recorder_bytes == other.recorder_bytes
                && snap_bytes == other.snap_bytes;
    }
};

/// Reads `outputs.evidence` onto `out`; every bad value is added to `problems` as
/// FILE:LINE: outputs.evidence.key: what.
void apply_evidence_output(config_reader::Problems& problems, const config_reader::Entry& section,
        EvidenceConfig& out);

}  // namespace exfiltap::control
