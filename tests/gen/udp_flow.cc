#include "tests/gen/udp_flow.h"

#include <utility>

namespace exfiltap::gen {
namespace {

void append16(std::string& out, uint32_t v) {
    out += static_cast<char>((v >> 8) & 0xff);
    out += static_cast<char>(v & 0xff);
}

void append_question(std::string& out, std::string_view name, uint16_t qtype) {
    size_t start = 0;
    while (start < name.size()) {
        size_t dot = name.find('.', start);
        if (dot == std::string_view::npos) {
            dot = name.size();
        }
        out += static_cast<char>(dot - start);
        out.append(name.substr(start, dot - start));
        start = dot + 1;
    }
    out += '\0';
    append16(out, qtype);
    append16(out, 1);  // IN
}

}  // namespace

UdpFlow::UdpFlow(const Endpoint& client, const Endpoint& server, Rng& rng, uint16_t vlan)
    : client_(client), server_(server), vlan_(vlan) {
    ip_id_[0] = static_cast<uint16_t>(rng.next());
    ip_id_[1] = static_cast<uint16_t>(rng.next());
}

void UdpFlow::add(uint64_t ts_us, bool from_client, std::string payload) {
    datagrams_.push_back(Datagram{ts_us, from_client, std::move(payload)});
}

void UdpFlow::build_packet(size_t i, std::vector<uint8_t>& out) {
    const Datagram& d = datagrams_[i];
    const Endpoint& src = d.from_client ? client_ : server_;
    const Endpoint& dst = d.from_client ? server_ : client_;
    FrameSpec spec;
    spec.src_mac = src.host.mac;
    spec.dst_mac = dst.host.mac;
    spec.vlan = vlan_;
    spec.src = src.host.ip;
    spec.dst = dst.host.ip;
    spec.ttl = src.host.ttl;
    spec.ip_id = ip_id_[d.from_client ? 0 : 1]++;
    spec.proto = kProtoUdp;
    spec.sport = src.port;
    spec.dport = dst.port;
    const auto* data = reinterpret_cast<const uint8_t*>(d.payload.data());
    build_frame(spec, std::span<const uint8_t>(data, d.payload.size()), out);
}

std::string dns_query(uint16_t id, std::string_view name, uint16_t qtype) {
    std::string out;
    append16(out, id);
    append16(out, 0x0100);  // standard query, recursion desired
    append16(out, 1);       // one question
    append16(out, 0);
    append16(out, 0);
    append16(out, 0);
    append_question(out, name, qtype);
    return out;
}

std::string dns_response(
        uint16_t id, std::string_view name, uint16_t qtype, uint32_t ttl, const IpAddr& address) {
    std::string out;
    append16(out, id);
    append16(out, 0x8180);  // response, RD, RA, no error
    append16(out, 1);
    append16(out, 1);  // one answer
    append16(out, 0);
    append16(out, 0);
    append_question(out, name, qtype);
    append16(out, 0xc00c);  // owner: the question's name at offset 12
    append16(out, qtype);
    append16(out, 1);
    append16(out, ttl >> 16);
    append16(out, ttl & 0xffff);
    const size_t len = address.is_v6 ? 16 : 4;
    append16(out, static_cast<uint32_t>(len));
    out.append(reinterpret_cast<const char*>(address.bytes.data()), len);
    return out;
}

}  // namespace exfiltap::gen
