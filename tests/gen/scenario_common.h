#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "tests/gen/content.h"
#include "tests/gen/flow.h"
#include "tests/gen/rng.h"
#include "tests/gen/tcp_session.h"

namespace exfiltap::gen {

// Building blocks shared by the scenarios.

// An inside host: own MAC, TTL 64, close to the tap.
Host inside_host(Rng& rng, const IpAddr& ip);
// An outside host: frames carry the border router's MAC, TTL lowered by the path, far away.
Host outside_host(Rng& rng, const IpAddr& ip);

uint16_t ephemeral_port(Rng& rng);

// MSS by address family (1460 IPv4, 1440 IPv6), a random sender rate.
TcpConfig tcp_config(Rng& rng, const Endpoint& client, const Endpoint& server, uint16_t vlan = 0);

// Writes `flows` (each starting no earlier than the one before) to a pcap at path, their
// packets interleaved by time; empties `flows`. Returns the packets written.
uint64_t write_flows(const std::string& path, std::vector<std::unique_ptr<Flow>>& flows);

// One HTTP request and its response on an open session.
struct HttpExchange {
    std::string request;  // head and body
    std::vector<size_t> request_cuts;
    Disorder request_disorder;
    HttpResponse response;  // ts_us and body_len are filled in when it is sent
    std::string response_body;
    Disorder response_disorder;
};

// The client thinks briefly, sends the request; the server works a little and answers.
void run_exchange(TcpSession& session, Rng& rng, HttpExchange& exchange);

}  // namespace exfiltap::gen
