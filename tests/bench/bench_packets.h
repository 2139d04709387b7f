// exfiltap-bench's traffic: the generated scenarios (built in memory, no capture needed) and
// captures loaded from files, as one flat list of frames per pass, plus how each frame
// changes from one pass to the next (sequence numbers advanced for established flows,
// addresses shifted for new flows) so that no pass looks like a retransmission of the last.
// Main thread only; nothing here runs on a worker.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/result.h"

namespace exfiltap::bench {

/// How a pass differs from the one before.
enum class PassChange : uint8_t {
    /// Same flows; each TCP frame's sequence and acknowledgement numbers move on by what the
    /// flow's directions carried in one pass (Frame::seq_step, Frame::ack_step).
    Advance,
    /// New flows: both IP addresses are XORed with a per-pass value in the same byte, which
    /// keeps the symmetric Toeplitz hash (and so the worker) and the address ranges.
    ShiftAddresses,
};

struct Frame {
    uint64_t offset = 0;  // into Traffic::bytes
    uint32_t len = 0;
    uint32_t seq_step = 0;
    uint32_t ack_step = 0;
    /// Flow direction the frame's payload belongs to (for the Hyperscan-alone limit);
    /// UINT32_MAX: not an inspected direction or no payload.
    uint32_t stream = UINT32_MAX;
    uint64_t time_ns = 0;  // packet time within the pass
};

/// One pass of a scenario.
struct Traffic {
    std::vector<uint8_t> bytes;
    std::vector<Frame> frames;
    PassChange change = PassChange::Advance;
    /// Packet time one pass spans (the next pass starts after it).
    uint64_t pass_ns = 0;
    /// Distinct inspected streams (Frame::stream values).
    uint32_t streams = 0;
    uint32_t max_len = 0;

    void add(const std::vector<uint8_t>& frame, uint32_t seq_step, uint32_t ack_step,
            uint32_t stream, uint64_t time_ns);
};

/// 64-byte frames (60 without FCS) carrying a pure ACK, from `flows` clients in 10.0.0.0/8
/// to servers in 203.0.113.0/24, one frame per flow and pass. Established: acknowledgement
/// numbers advance each pass; new: addresses shift each pass.
Traffic make_pure_acks(uint32_t flows, PassChange change);

/// Simple IMIX (7 x 64, 4 x 594, 1 x 1518 bytes on the wire) over `flows` established
/// flows; payload is text, client to an external server (inspected).
Traffic make_imix(uint32_t flows, uint32_t rounds);

enum class PayloadKind : uint8_t {
    Text,
    /// Digit runs of card length that fail the Luhn check, separated as cards are.
    DigitRuns,
    /// Text with one valid card number (and the keyword "card") in the middle of each
    /// segment: a finding, and with suppression off a record, per segment.
    Cards,
};

/// Uploads over `flows` established flows: each flow sends `segments` segments of
/// `segment_bytes` payload bytes per pass, client (internal) to server (external).
Traffic make_uploads(uint32_t flows, uint32_t segments, uint32_t segment_bytes, PayloadKind kind);

/// A capture file read whole; replayed passes shift addresses (new flows each pass).
Result<Traffic> load_capture(const std::string& path);

/// Applies the change from pass `pass - 1` to `pass` to one frame in place, fixing the IPv4
/// header and TCP/UDP checksums incrementally. `pass` starts at 1.
void change_frame(
        uint8_t* frame, uint32_t len, PassChange change, const Frame& info, unsigned pass) noexcept;

}  // namespace exfiltap::bench
