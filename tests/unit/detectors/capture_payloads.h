// Test helper: the application payload of each TCP and UDP flow of a classic Ethernet pcap,
// in capture order, for feeding protocol parsers without the dataplane. Decodes Ethernet,
// stacked 802.1Q/802.1ad tags, IPv4 (no fragments) and IPv6 (hop-by-hop, routing and
// destination options skipped; fragments ignored), TCP and UDP. TCP: the client is the SYN
// sender (else the first sender); per direction, bytes before the next expected sequence
// number (retransmissions) are cut and segments ahead of it are kept in arrival order, which
// is enough for the well-formed captures the parser tests use. Not a reassembler.
#pragma once

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <map>
#include <string>
#include <tuple>
#include <vector>

#include "tests/unit/dataplane/pcap_file.h"

namespace exfiltap::test {

struct PayloadChunk {
    bool to_server = true;  // from the flow's client
    uint64_t time_ns = 0;
    std::vector<uint8_t> bytes;
};

struct CaptureFlow {
    uint8_t ip_version = 4;
    uint8_t proto = 6;  // 6 TCP, 17 UDP
    std::array<uint8_t, 16> client{};
    std::array<uint8_t, 16> server{};
    uint16_t client_port = 0;
    uint16_t server_port = 0;
    /// Non-empty payloads in capture order (UDP: one chunk per datagram).
    std::vector<PayloadChunk> chunks;

    /// All bytes of one direction joined.
    std::vector<uint8_t> joined(bool to_server) const {
        std::vector<uint8_t> out;
        for (const PayloadChunk& c : chunks) {
            if (c.to_server == to_server) {
                out.insert(out.end(), c.bytes.begin(), c.bytes.end());
            }
        }
        return out;
    }
};

namespace capture_detail {

struct Packet {
    uint8_t ip_version = 0;
    uint8_t proto = 0;
    std::array<uint8_t, 16> src{};
    std::array<uint8_t, 16> dst{};
    uint16_t src_port = 0;
    uint16_t dst_port = 0;
    uint32_t seq = 0;
    bool syn = false;
    bool ack = false;
    const uint8_t* payload = nullptr;
    size_t payload_len = 0;
};

inline uint16_t be16(const uint8_t* p) {
    return static_cast<uint16_t>(p[0] << 8 | p[1]);
}

inline bool decode(const std::vector<uint8_t>& frame, Packet& out) {
    const uint8_t* p = frame.data();
    size_t len = frame.size();
    if (len < 14) {
        return false;
    }
    uint16_t type = be16(p + 12);
    size_t at = 14;
    while (type == 0x8100 || type == 0x88a8 || type == 0x9100) {
        if (len < at + 4) {
            return false;
        }
        type = be16(p + at + 2);
        at += 4;
    }
    size_t l4_len = 0;
    if (type == 0x0800) {
        if (len < at + 20) {
            return false;
        }
        const size_t ihl = size_t{p[at] & 0x0fU} * 4;
        const size_t total = be16(p + at + 2);
        if ((be16(p + at + 6) & 0x3fff) != 0 || ihl < 20 || total < ihl || len < at + total) {
            return false;  // fragment or cut
        }
        out.ip_version = 4;
        out.proto = p[at + 9];
        std::memcpy(out.src.data(), p + at + 12, 4);
        std::memcpy(out.dst.data(), p + at + 16, 4);
        l4_len = total - ihl;
        at += ihl;
    } else if (type == 0x86dd) {
        if (len < at + 40) {
            return false;
        }
        const size_t payload_len = be16(p + at + 4);
        uint8_t next = p[at + 6];
        out.ip_version = 6;
        std::memcpy(out.src.data(), p + at + 8, 16);
        std::memcpy(out.dst.data(), p + at + 24, 16);
        at += 40;
        if (len < at + payload_len) {
            return false;
        }
        size_t left = payload_len;
        while (next == 0 || next == 43 || next == 60) {
            if (left < 8) {
                return false;
            }
            const size_t ext = (size_t{p[at + 1]} + 1) * 8;
            if (left < ext) {
                return false;
            }
            next = p[at];
            at += ext;
            left -= ext;
        }
        out.proto = next;
        l4_len = left;
    } else {
        return false;
    }
    if (out.proto == 6) {
        if (l4_len < 20) {
            return false;
        }
        const size_t off = static_cast<size_t>(p[at + 12] >> 4U) * 4;
        if (off < 20 || off > l4_len) {
            return false;
        }
        out.src_port = be16(p + at);
        out.dst_port = be16(p + at + 2);
        out.seq = static_cast<uint32_t>(be16(p + at + 4)) << 16 | be16(p + at + 6);
        out.syn = (p[at + 13] & 0x02) != 0;
        out.ack = (p[at + 13] & 0x10) != 0;
        out.payload = p + at + off;
        out.payload_len = l4_len - off;
        return true;
    }
    if (out.proto == 17) {
        if (l4_len < 8) {
            return false;
        }
        out.src_port = be16(p + at);
        out.dst_port = be16(p + at + 2);
        out.payload = p + at + 8;
        out.payload_len = std::min<size_t>(l4_len - 8, be16(p + at + 4) - 8U);
        return true;
    }
    return false;
}

}  // namespace capture_detail

/// The TCP and UDP flows of `path` in order of first appearance; false with `error` set
/// when the file cannot be read.
inline bool read_capture_flows(
        const std::filesystem::path& path, std::vector<CaptureFlow>& flows, std::string& error) {
    std::vector<PcapRecord> records;
    if (!read_pcap_file(path, records, error)) {
        return false;
    }
    using Key = std::tuple<uint8_t, std::array<uint8_t, 16>, uint16_t, std::array<uint8_t, 16>,
            uint16_t>;
    struct State {
        size_t index = 0;
        std::array<bool, 2> have_next{};
        std::array<uint32_t, 2> next{};
    };
    std::map<Key, State> by_key;
    for (const PcapRecord& record : records) {
        capture_detail::Packet pkt;
        if (!capture_detail::decode(record.data, pkt)) {
            continue;
        }
        const Key fwd{pkt.proto, pkt.src, pkt.src_port, pkt.dst, pkt.dst_port};
        const Key rev{pkt.proto, pkt.dst, pkt.dst_port, pkt.src, pkt.src_port};
        auto it = by_key.find(fwd);
        bool to_server = true;
        if (it == by_key.end()) {
            it = by_key.find(rev);
            to_server = false;
        }
        if (it == by_key.end()) {
            CaptureFlow flow;
            flow.ip_version = pkt.ip_version;
            flow.proto = pkt.proto;
            // A SYN-ACK seen first names its receiver as the client.
            const bool reversed = pkt.proto == 6 && pkt.syn && pkt.ack;
            flow.client = reversed ? pkt.dst : pkt.src;
            flow.server = reversed ? pkt.src : pkt.dst;
            flow.client_port = reversed ? pkt.dst_port : pkt.src_port;
            flow.server_port = reversed ? pkt.src_port : pkt.dst_port;
            flows.push_back(std::move(flow));
            const Key key = reversed ? rev : fwd;
            it = by_key.emplace(key, State{flows.size() - 1, {}, {}}).first;
            to_server = !reversed;
        }
        State& state = it->second;
        CaptureFlow& flow = flows[state.index];
        const uint8_t* data = pkt.payload;
        size_t n = pkt.payload_len;
        if (pkt.proto == 6) {
            const unsigned d = to_server ? 0 : 1;
            uint32_t seq = pkt.seq + (pkt.syn ? 1U : 0U);
            if (pkt.syn) {
                state.have_next[d] = true;
                state.next[d] = seq;
            }
            if (state.have_next[d]) {
                const auto behind = static_cast<int32_t>(state.next[d] - seq);
                if (behind > 0) {
                    if (static_cast<size_t>(behind) >= n) {
                        continue;
                    }
                    data += behind;
                    n -= static_cast<size_t>(behind);
                    seq += static_cast<uint32_t>(behind);
                }
            }
            state.have_next[d] = true;
            state.next[d] = seq + static_cast<uint32_t>(n);
        }
        if (n == 0) {
            continue;
        }
        flow.chunks.push_back(PayloadChunk{to_server, record.time_ns, {data, data + n}});
    }
    return true;
}

}  // namespace exfiltap::test
