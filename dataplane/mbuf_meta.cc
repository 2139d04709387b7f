#include "dataplane/mbuf_meta.h"

namespace exfiltap::dataplane {
namespace {

int g_meta_offset = -1;  // NOLINT(cppcoreguidelines-avoid-non-const-global-variables)

}  // namespace

bool register_packet_meta() noexcept {
    if (g_meta_offset >= 0) {
        return true;
    }
    static const rte_mbuf_dynfield kDesc = {
            "exfiltap_packet_meta", sizeof(PacketMeta), alignof(PacketMeta), 0};
    g_meta_offset = rte_mbuf_dynfield_register(&kDesc);
    return g_meta_offset >= 0;
}

int packet_meta_offset() noexcept {
    return g_meta_offset;
}

}  // namespace exfiltap::dataplane
