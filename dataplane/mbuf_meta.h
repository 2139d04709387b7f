// Per-packet metadata carried in an mbuf dynamic field: the capture order (sequence number)
// and the packet time. Offline, the reader fills both; live, the worker stamps the time.
#pragma once

#include <cstdint>

#include <rte_mbuf.h>
#include <rte_mbuf_dyn.h>

namespace exfiltap::dataplane {

struct PacketMeta {
    uint64_t seq;
    uint64_t time_ns;
    uint32_t wire_len;  // original length on the wire (a capture may have cut the packet)
    uint32_t flags;
};
inline constexpr uint32_t kMetaDropped = 1;  // offline: the worker dropped it (not written)

/// Registers the dynamic field (idempotent). Returns false when the mbuf has no room.
bool register_packet_meta() noexcept;

/// Offset of the field; valid after register_packet_meta().
int packet_meta_offset() noexcept;

inline PacketMeta& packet_meta(rte_mbuf* m, int offset) noexcept {
    return *RTE_MBUF_DYNFIELD(m, offset, PacketMeta*);
}

}  // namespace exfiltap::dataplane
