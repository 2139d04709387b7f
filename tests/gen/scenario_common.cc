#include "tests/gen/scenario_common.h"

#include "tests/gen/capture.h"
#include "tests/gen/pcap_writer.h"

namespace exfiltap::gen {
namespace {

constexpr MacAddr kRouterMac = {0x02, 0x00, 0x00, 0x00, 0x00, 0x01};

}  // namespace

Host inside_host(Rng& rng, const IpAddr& ip) {
    return Host{ip, mac_for(ip), 64, static_cast<uint32_t>(rng.range(60, 600))};
}

Host outside_host(Rng& rng, const IpAddr& ip) {
    const uint8_t initial = rng.chance(0.25) ? 128 : 64;
    const uint8_t ttl = static_cast<uint8_t>(initial - rng.range(8, 20));
    return Host{ip, kRouterMac, ttl, static_cast<uint32_t>(rng.range(2000, 40000))};
}

uint16_t ephemeral_port(Rng& rng) {
    return static_cast<uint16_t>(rng.range(32768, 60999));
}

TcpConfig tcp_config(Rng& rng, const Endpoint& client, const Endpoint& server, uint16_t vlan) {
    TcpConfig config;
    config.client = client;
    config.server = server;
    config.vlan = vlan;
    config.mss = client.host.ip.is_v6 ? 1440 : 1460;
    config.rate_mbps = static_cast<uint32_t>(rng.range(50, 500));
    return config;
}

void run_exchange(TcpSession& session, Rng& rng, HttpExchange& exchange) {
    session.pause(rng.range(80, 900));
    session.send(Side::kClient, exchange.request, exchange.request_cuts, exchange.request_disorder);
    session.pause(rng.range(300, 6000));
    exchange.response.ts_us = session.now_us();
    exchange.response.body_len = exchange.response_body.size();
    std::string reply = http_response_head(rng, exchange.response);
    reply += exchange.response_body;
    session.send(Side::kServer, reply, {}, exchange.response_disorder);
}

uint64_t write_flows(const std::string& path, std::vector<std::unique_ptr<Flow>>& flows) {
    PcapWriter writer(path);
    Capture capture(writer);
    for (auto& flow : flows) {
        capture.emit_before(flow->packet_ts_us(0));
        capture.add(std::move(flow));
    }
    flows.clear();
    capture.finish();
    writer.close();
    return writer.packets();
}

}  // namespace exfiltap::gen
