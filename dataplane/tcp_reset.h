// TCP resets for a flow verdict (DESIGN.md "Response": "optional TCP reset both ways"): from
// the packet that completed a finding, the frames that tell each end the connection is gone.
// Pure functions on bytes, no DPDK, so they are unit-tested against decode.
#pragma once

#include <cstdint>

#include "dataplane/decode.h"

namespace exfiltap::dataplane {

/// Room a reset frame needs: link and IP headers of the original plus 20 bytes of TCP.
inline constexpr uint32_t kMaxResetFrame = 256;

/// Writes into `out` (at least kMaxResetFrame bytes) a TCP RST+ACK built from `frame`, a
/// decoded TCP segment that is being dropped. `toward_sender` false: it takes the segment's
/// place toward the receiver (sequence = the segment's own, which the receiver still
/// expects); true: it goes back to the sender as if from the receiver (sequence = the
/// segment's ACK). Ethernet and
/// VLAN tags are kept (addresses swapped going back), IPv4 options kept, TTL/hop limit 64,
/// checksums computed. Returns the frame length, or 0 when no reset can be made (not TCP, a
/// fragment, IPv6 extension headers, headers beyond kMaxResetFrame).
uint32_t build_tcp_reset(
        const uint8_t* frame, const PacketInfo& info, bool toward_sender, uint8_t* out) noexcept;

}  // namespace exfiltap::dataplane
