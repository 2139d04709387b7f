// libFuzzer target: any byte string is a frame. Checks what a worker relies on: no read
// past the frame (ASan), no undefined behaviour (UBSan), and the offsets decode_packet
// reports stay inside the captured bytes.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <limits>

#include "dataplane/decode.h"

namespace {

using exfiltap::dataplane::Malformed;
using exfiltap::dataplane::PacketInfo;

void check(bool condition) {
    if (!condition) {
        std::abort();
    }
}

void check_consistent(uint32_t len, const PacketInfo& info, bool ok) {
    check(ok == (info.malformed == Malformed::None));
    check(info.vlan_count <= exfiltap::dataplane::kMaxVlanTags);
    check(info.fragment || (!info.first_fragment && !info.frag_more));
    check(!exfiltap::dataplane::malformed_name(info.malformed).empty());
    if (!ok) {
        return;
    }
    if (info.ip_version == 0) {
        check(info.payload_len == 0);
        return;
    }
    const uint64_t ip_end = uint64_t{info.l3_offset} + info.ip_len;
    check(ip_end <= len);
    check(info.l4_offset >= info.l3_offset && info.l4_offset <= ip_end);
    check(info.payload_offset >= info.l4_offset);
    check(uint64_t{info.payload_offset} + info.payload_len <= ip_end);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    if (size > std::numeric_limits<uint32_t>::max()) {
        return 0;
    }
    const auto len = static_cast<uint32_t>(size);
    PacketInfo info;
    const bool ok = exfiltap::dataplane::decode_packet(data, len, info);
    check_consistent(len, info, ok);
    const bool sum_ok = exfiltap::dataplane::l4_checksum_ok(data, len, info);
    const bool placeholder =
            exfiltap::dataplane::l4_checksum_is_offload_placeholder(data, len, info);
    const bool ip_ok = exfiltap::dataplane::ipv4_header_checksum_ok(data, len, info);
    // A checksum can be judged only on a whole, decoded, unfragmented datagram.
    check(!(sum_ok || placeholder) || (ok && !info.fragment));
    check(!ip_ok || info.ip_version == 4);
    return 0;
}
