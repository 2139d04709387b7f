#include "control/evidence_config.h"

#include <algorithm>

#include "dataplane/flight_recorder.h"

namespace exfiltap::control {

using namespace config_reader;  // NOLINT(google-build-using-namespace): the toolkit is this file's

namespace {

constexpr uint64_t kMaxRecorderBytes = 1ULL << 34;  // 16 GiB per worker
constexpr uint64_t kMinFileBytes = 4096;
constexpr uint64_t kMaxFileBytes = 1ULL << 34;
constexpr uint64_t kMaxTotalBytes = 1ULL << 44;
constexpr uint32_t kMaxFiles = 1000000;
constexpr uint32_t kMaxTimeoutMs = 600000;

}  // namespace

std::string EvidenceConfig::effective_dir(const std::string& state_dir) const {
    return dir.empty() ? state_dir + "/evidence" : dir;
}

size_t EvidenceConfig::buffer_bytes() const {
    return static_cast<size_t>(std::min<uint64_t>(recorder_bytes, limits.max_file_bytes));
}

void apply_evidence_output(Problems& problems, const Entry& section, EvidenceConfig& out) {
    for (const auto& entry : entries_of(problems, section.value, section.where,
                 {"enabled", "dir", "recorder_bytes", "snap_bytes", "max_file_bytes", "max_files",
                         "max_total_bytes", "request_timeout_ms"})) {
        if (entry.name == "enabled") {
            read_bool(problems, entry, out.enabled);
        } else if (entry.name == "dir") {
            std::string dir;
            if (read_string(problems, entry, dir)) {
                if (dir.empty() || dir.front() != '/') {
                    problems.add(entry.where, "expected an absolute folder path");
                } else {
                    out.dir = dir;
                }
            }
        } else if (entry.name == "recorder_bytes") {
            read_bytes(problems, entry, dataplane::FlightRecorder::kMinRingBytes, kMaxRecorderBytes,
                    out.recorder_bytes);
        } else if (entry.name == "snap_bytes") {
            read_u32(problems, entry, 64, dataplane::FlightRecorder::kMaxSnapBytes, out.snap_bytes);
        } else if (entry.name == "max_file_bytes") {
            read_bytes(problems, entry, kMinFileBytes, kMaxFileBytes, out.limits.max_file_bytes);
        } else if (entry.name == "max_files") {
            read_u32(problems, entry, 1, kMaxFiles, out.limits.max_files);
        } else if (entry.name == "max_total_bytes") {
            read_bytes(problems, entry, kMinFileBytes, kMaxTotalBytes, out.limits.max_total_bytes);
        } else if (entry.name == "request_timeout_ms") {
            read_u32(problems, entry, 10, kMaxTimeoutMs, out.request_timeout_ms);
        }
    }
}

}  // namespace exfiltap::control
