#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "tests/gen/flow.h"
#include "tests/gen/rng.h"

namespace exfiltap::gen {

// A UDP conversation: datagrams between a client and a server at given times.
class UdpFlow final : public Flow {
public:
    UdpFlow(const Endpoint& client, const Endpoint& server, Rng& rng, uint16_t vlan = 0);

    // Datagrams must be added in time order.
    void add(uint64_t ts_us, bool from_client, std::string payload);

    size_t packet_count() const override { return datagrams_.size(); }
    uint64_t packet_ts_us(size_t i) const override { return datagrams_[i].ts_us; }
    void build_packet(size_t i, std::vector<uint8_t>& out) override;
    FlowKey key() const override { return FlowKey::of(client_, server_, kProtoUdp); }

private:
    struct Datagram {
        uint64_t ts_us;
        bool from_client;
        std::string payload;
    };

    Endpoint client_;
    Endpoint server_;
    uint16_t vlan_;
    std::array<uint16_t, 2> ip_id_{};
    std::vector<Datagram> datagrams_;
};

// DNS messages (RFC 1035) for one question of type A (1) or AAAA (28), class IN.
std::string dns_query(uint16_t id, std::string_view name, uint16_t qtype);
// The response repeats the question and answers it with one record whose owner is a
// compression pointer to the question; address is 4 (A) or 16 (AAAA) bytes.
std::string dns_response(
        uint16_t id, std::string_view name, uint16_t qtype, uint32_t ttl, const IpAddr& address);

}  // namespace exfiltap::gen
