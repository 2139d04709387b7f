// Evidence files (DESIGN.md "Outputs", Evidence): one pcapng file per request, with the
// packets' original timestamps (nanoseconds) and lengths, and a folder kept within a file
// count and a byte total by removing the oldest evidence files first. Runs on the evidence
// writer's thread (control/evidence.h) and in tests; never on a worker. No DPDK.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "common/result.h"

namespace exfiltap::control {

/// One packet to write: its capture time, original length and the bytes kept of it.
struct EvidencePacket {
    uint64_t time_ns = 0;
    uint32_t original_len = 0;
    std::span<const uint8_t> frame;
};

struct EvidenceLimits {
    /// Largest file; packets past it are left out and counted.
    uint64_t max_file_bytes = 64ULL << 20;
    /// Evidence files kept in the folder, and their byte total; the oldest go first.
    uint32_t max_files = 100;
    uint64_t max_total_bytes = 1ULL << 30;
};

/// A pcapng image: a section header block with `comment` (opt_comment) and the writer's
/// name, one interface (LINKTYPE_ETHERNET, if_tsresol 9: nanoseconds, `snap_len`), then an
/// enhanced packet block per packet, in the order given, until the next would pass
/// `max_bytes`. `written` receives how many packets went in.
std::vector<uint8_t> render_pcapng(const std::string& comment, uint32_t snap_len,
        std::span<const EvidencePacket> packets, uint64_t max_bytes, size_t& written);

/// What write_evidence_file() did.
struct EvidenceFileOutcome {
    std::string path;
    uint64_t packets = 0;      // packets in the file
    uint64_t packets_cut = 0;  // left out by max_file_bytes
    uint64_t bytes = 0;        // file size
    uint32_t files_removed = 0;
    uint64_t bytes_removed = 0;
};

/// Writes `name` (a file name, see evidence_file_name()) into `dir` (created 0750 when
/// missing) as a temporary file, mode 0640, fsync'd and renamed; then removes the oldest
/// other evidence files until the folder holds at most limits.max_files files and
/// limits.max_total_bytes bytes of evidence. Errors name the path and the reason.
Result<EvidenceFileOutcome> write_evidence_file(const std::string& dir, const std::string& name,
        const std::string& comment, uint32_t snap_len, std::span<const EvidencePacket> packets,
        const EvidenceLimits& limits);

/// "evidence-<UTC yyyymmddThhmmss>-<seq>-<id>.pcapng" with the id cut to 64 characters of
/// [A-Za-z0-9._-] (others become '_'). Evidence files are the folder's files named
/// "evidence-*.pcapng".
std::string evidence_file_name(uint64_t wall_time_s, uint64_t sequence, const std::string& id);

}  // namespace exfiltap::control
