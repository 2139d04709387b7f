#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "tests/gen/net.h"

namespace exfiltap::gen {

// One end host as the tap sees it. Frames from outside hosts carry the border router's MAC.
struct Host {
    IpAddr ip;
    MacAddr mac{};
    uint8_t ttl = 64;         // TTL / hop limit its packets have when they pass the tap
    uint32_t delay_us = 200;  // one-way delay between the tap and this host
};

struct Endpoint {
    Host host;
    uint16_t port = 0;
};

// The canonical 5-tuple of a connection (lower address first), for counting flows.
struct FlowKey {
    IpAddr lo_ip;
    IpAddr hi_ip;
    uint16_t lo_port = 0;
    uint16_t hi_port = 0;
    uint8_t proto = 0;

    static FlowKey of(const Endpoint& a, const Endpoint& b, uint8_t proto);
    auto operator<=>(const FlowKey&) const = default;
};

inline FlowKey FlowKey::of(const Endpoint& a, const Endpoint& b, uint8_t proto) {
    const bool a_first = a.host.ip < b.host.ip || (a.host.ip == b.host.ip && a.port <= b.port);
    const Endpoint& lo = a_first ? a : b;
    const Endpoint& hi = a_first ? b : a;
    return FlowKey{lo.host.ip, hi.host.ip, lo.port, hi.port, proto};
}

// A finished connection whose packets a Capture interleaves with other flows' by time.
class Flow {
public:
    virtual ~Flow() = default;

    virtual size_t packet_count() const = 0;
    // Timestamps do not decrease with i.
    virtual uint64_t packet_ts_us(size_t i) const = 0;
    // Writes packet i's frame into out. Called once per packet, in order (IP ids count up).
    virtual void build_packet(size_t i, std::vector<uint8_t>& out) = 0;
    virtual FlowKey key() const = 0;
};

}  // namespace exfiltap::gen
