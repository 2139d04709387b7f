// Helpers of the behaviour engine's unit tests: addresses, prefixes, flows and a config with
// every detector off, so a test turns on only the one it is about.
#pragma once

#include <arpa/inet.h>

#include <array>
#include <cstdint>
#include <string>

#include <gtest/gtest.h>

#include "detectors/behaviour.h"

namespace exfiltap::detectors {

constexpr uint64_t kS = 1000000000ULL;
// 1699999200 s is a multiple of 3600, so baseline windows start on it.
constexpr uint64_t kT0 = 1699999200ULL * kS;

inline std::array<uint8_t, 16> ip(const char* text) {
    std::array<uint8_t, 16> out{};
    if (inet_pton(AF_INET, text, out.data()) != 1) {
        EXPECT_EQ(inet_pton(AF_INET6, text, out.data()), 1) << text;
    }
    return out;
}

inline AddressPrefix prefix(const char* addr, uint8_t length) {
    AddressPrefix p;
    p.ip_version = std::string(addr).find(':') == std::string::npos ? 4 : 6;
    p.length = length;
    p.addr = ip(addr);
    return p;
}

inline FlowTuple flow(const char* client, uint16_t client_port, const char* server,
        uint16_t server_port, uint64_t id) {
    FlowTuple f;
    f.ip_version = std::string(client).find(':') == std::string::npos ? 4 : 6;
    f.proto = 6;
    f.client = ip(client);
    f.server = ip(server);
    f.client_port = client_port;
    f.server_port = server_port;
    f.flow_id = id;
    return f;
}

inline BehaviourConfig quiet_config() {
    // Only the detector under test stays on.
    BehaviourConfig c;
    c.external_upload.enabled = false;
    c.internal_transfer.enabled = false;
    c.baseline_deviation.enabled = false;
    c.encrypted_asymmetry.enabled = false;
    c.archive_out.enabled = false;
    c.unexpected_file_write.enabled = false;
    c.external_login.enabled = false;
    c.mail_attachment_out.enabled = false;
    c.dns_tunnel.enabled = false;
    c.lateral_fanout.enabled = false;
    c.share_enumeration.enabled = false;
    c.first_access.enabled = false;
    c.staging.enabled = false;
    c.dns_tunnel.public_suffix_list = "";
    return c;
}

}  // namespace exfiltap::detectors
