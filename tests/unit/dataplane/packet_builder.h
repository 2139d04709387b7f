// Test helper: builds Ethernet frames byte by byte (VLAN tags, IPv4 with options and
// fragment fields, IPv6 with extension headers, TCP with options, UDP, raw L4), filling in
// lengths and checksums the way a correct sender does. Malformed frames are made by building
// a correct one and patching bytes. The checksum code here is written apart from
// dataplane/decode.cc on purpose, so the tests do not check that code against itself.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

namespace exfiltap::test {

using Bytes = std::vector<uint8_t>;
using Ipv4Address = std::array<uint8_t, 4>;
using Ipv6Address = std::array<uint8_t, 16>;

inline constexpr uint16_t kEtherIpv4 = 0x0800;
inline constexpr uint16_t kEtherIpv6 = 0x86dd;
inline constexpr uint16_t kEtherArp = 0x0806;
inline constexpr uint16_t kTpid8021Q = 0x8100;
inline constexpr uint16_t kTpid8021ad = 0x88a8;
inline constexpr uint16_t kTpid9100 = 0x9100;

inline constexpr uint8_t kExtHopByHop = 0;
inline constexpr uint8_t kExtRouting = 43;
inline constexpr uint8_t kExtFragment = 44;
inline constexpr uint8_t kExtEsp = 50;
inline constexpr uint8_t kExtAh = 51;
inline constexpr uint8_t kExtNoNext = 59;
inline constexpr uint8_t kExtDestOptions = 60;

inline void put16(Bytes& b, size_t at, uint16_t v) {
    b.at(at) = static_cast<uint8_t>(v >> 8);
    b.at(at + 1) = static_cast<uint8_t>(v);
}

inline void put32(Bytes& b, size_t at, uint32_t v) {
    put16(b, at, static_cast<uint16_t>(v >> 16));
    put16(b, at + 2, static_cast<uint16_t>(v));
}

inline uint16_t get16(const Bytes& b, size_t at) {
    return static_cast<uint16_t>((b.at(at) << 8) | b.at(at + 1));
}

inline void append16(Bytes& b, uint16_t v) {
    b.push_back(static_cast<uint8_t>(v >> 8));
    b.push_back(static_cast<uint8_t>(v));
}

inline void append32(Bytes& b, uint32_t v) {
    append16(b, static_cast<uint16_t>(v >> 16));
    append16(b, static_cast<uint16_t>(v));
}

template <typename Range>
void append(Bytes& b, const Range& r) {
    b.insert(b.end(), r.begin(), r.end());
}

/// RFC 1071 sum of `data` added to `acc`, not folded; bytes are paired from an even start.
inline uint32_t ones_sum(const Bytes& data, uint32_t acc = 0) {
    for (size_t i = 0; i < data.size(); ++i) {
        acc += (i % 2 == 0) ? static_cast<uint32_t>(data[i]) << 8 : data[i];
    }
    return acc;
}

inline uint16_t fold_sum(uint32_t acc) {
    while (acc > 0xffff) {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    return static_cast<uint16_t>(acc);
}

inline Ipv4Address ipv4(uint8_t a, uint8_t b, uint8_t c, uint8_t d) {
    return {a, b, c, d};
}

/// 2001:db8::<last> style address: the given first two groups, the last byte set.
inline Ipv6Address ipv6(uint16_t g0, uint16_t g1, uint8_t last) {
    Ipv6Address a{};
    a[0] = static_cast<uint8_t>(g0 >> 8);
    a[1] = static_cast<uint8_t>(g0);
    a[2] = static_cast<uint8_t>(g1 >> 8);
    a[3] = static_cast<uint8_t>(g1);
    a[15] = last;
    return a;
}

/// Body (after next header and length bytes) of a Hop-by-Hop or Destination Options header
/// of `total_len` bytes (a multiple of 8), filled with one PadN option.
inline Bytes ipv6_padded_options(size_t total_len) {
    Bytes body(total_len - 2, 0);
    body[0] = 1;  // PadN
    body[1] = static_cast<uint8_t>(total_len - 4);
    return body;
}

/// Body of a Segment Routing Header (routing type 4). `segments` in SRH order: [0] is the
/// final destination.
inline Bytes ipv6_srh(const std::vector<Ipv6Address>& segments, uint8_t segments_left) {
    Bytes body;
    body.push_back(4);  // routing type
    body.push_back(segments_left);
    body.push_back(static_cast<uint8_t>(segments.size() - 1));  // last entry
    body.push_back(0);                                          // flags
    append16(body, 0);                                          // tag
    for (const auto& s : segments) {
        append(body, s);
    }
    return body;
}

/// Body of an Authentication Header with a 12-byte ICV (24 bytes in all).
inline Bytes ipv6_ah(uint32_t spi, uint32_t seq) {
    Bytes body;
    append16(body, 0);  // reserved
    append32(body, spi);
    append32(body, seq);
    body.resize(body.size() + 12, 0xa5);  // ICV
    return body;
}

/// Body of a Fragment header.
inline Bytes ipv6_fragment(uint32_t offset_bytes, bool more, uint32_t id) {
    Bytes body;
    append16(body, static_cast<uint16_t>((offset_bytes & 0xfff8u) | (more ? 1u : 0u)));
    append32(body, id);
    return body;
}

class PacketBuilder {
public:
    PacketBuilder& vlan(uint16_t vid, uint16_t tpid = kTpid8021Q) {
        tags_.emplace_back(tpid, vid);
        return *this;
    }

    /// A frame with no IP: `body` follows the EtherType as it is.
    PacketBuilder& raw_l3(uint16_t ether_type, Bytes body) {
        l3_ = L3::Raw;
        ether_type_ = ether_type;
        raw_l3_ = std::move(body);
        return *this;
    }

    PacketBuilder& ipv4(Ipv4Address src, Ipv4Address dst) {
        l3_ = L3::V4;
        v4_src_ = src;
        v4_dst_ = dst;
        return *this;
    }

    /// IPv4 options, already padded to a multiple of 4 bytes.
    PacketBuilder& ipv4_options(Bytes options) {
        v4_options_ = std::move(options);
        return *this;
    }

    PacketBuilder& ipv4_fragment(uint16_t id, uint32_t offset_bytes, bool more) {
        v4_id_ = id;
        v4_frag_ = static_cast<uint16_t>((more ? 0x2000u : 0u) | ((offset_bytes / 8) & 0x1fffu));
        return *this;
    }

    PacketBuilder& ipv6(Ipv6Address src, Ipv6Address dst) {
        l3_ = L3::V6;
        v6_src_ = src;
        v6_dst_ = dst;
        return *this;
    }

    /// Appends an extension header; `body` is everything after its first two bytes.
    PacketBuilder& ipv6_extension(uint8_t type, Bytes body) {
        v6_ext_.emplace_back(type, std::move(body));
        return *this;
    }

    /// The destination the sender puts in the L4 pseudo-header (routing header cases).
    PacketBuilder& ipv6_pseudo_destination(Ipv6Address final_dst) {
        v6_pseudo_dst_ = final_dst;
        has_pseudo_dst_ = true;
        return *this;
    }

    PacketBuilder& tcp(uint16_t src_port, uint16_t dst_port, uint8_t flags) {
        l4_ = L4::Tcp;
        proto_ = 6;
        src_port_ = src_port;
        dst_port_ = dst_port;
        tcp_flags_ = flags;
        return *this;
    }

    PacketBuilder& tcp_sequence(uint32_t seq, uint32_t ack) {
        tcp_seq_ = seq;
        tcp_ack_ = ack;
        return *this;
    }

    PacketBuilder& tcp_window(uint16_t window) {
        tcp_window_ = window;
        return *this;
    }

    /// TCP options, already padded to a multiple of 4 bytes.
    PacketBuilder& tcp_options(Bytes options) {
        tcp_options_ = std::move(options);
        return *this;
    }

    PacketBuilder& udp(uint16_t src_port, uint16_t dst_port) {
        l4_ = L4::Udp;
        proto_ = 17;
        src_port_ = src_port;
        dst_port_ = dst_port;
        return *this;
    }

    /// Sends UDP without a checksum (field 0).
    PacketBuilder& udp_without_checksum() {
        udp_checksum_ = false;
        return *this;
    }

    /// Any other protocol: `header` is put before the payload with no checksum work
    /// (ICMP, ESP, fragment data, decoys).
    PacketBuilder& l4_raw(uint8_t proto, Bytes header) {
        l4_ = L4::Raw;
        proto_ = proto;
        raw_l4_ = std::move(header);
        return *this;
    }

    PacketBuilder& payload(Bytes data) {
        payload_ = std::move(data);
        return *this;
    }

    /// Pads the frame with zero bytes up to `frame_len` (Ethernet minimum is 60).
    PacketBuilder& pad_to(size_t frame_len) {
        pad_to_ = frame_len;
        return *this;
    }

    Bytes build() const {
        Bytes frame;
        append(frame, std::array<uint8_t, 6>{0x02, 0, 0, 0, 0, 0x02});  // dst MAC
        append(frame, std::array<uint8_t, 6>{0x02, 0, 0, 0, 0, 0x01});  // src MAC
        for (const auto& [tpid, vid] : tags_) {
            append16(frame, tpid);
            append16(frame, vid);
        }
        switch (l3_) {
        case L3::Raw:
            append16(frame, ether_type_);
            append(frame, raw_l3_);
            break;
        case L3::V4:
            append16(frame, kEtherIpv4);
            append(frame, build_ipv4());
            break;
        case L3::V6:
            append16(frame, kEtherIpv6);
            append(frame, build_ipv6());
            break;
        }
        if (frame.size() < pad_to_) {
            frame.resize(pad_to_, 0);
        }
        return frame;
    }

private:
    enum class L3 {
        Raw,
        V4,
        V6
    };
    enum class L4 {
        None,
        Tcp,
        Udp,
        Raw
    };

    // L4 header and payload with the checksum left 0; `checksum_at` is where it goes.
    Bytes build_l4(size_t& checksum_at) const {
        Bytes seg;
        checksum_at = SIZE_MAX;
        switch (l4_) {
        case L4::None:
            break;
        case L4::Tcp:
            append16(seg, src_port_);
            append16(seg, dst_port_);
            append32(seg, tcp_seq_);
            append32(seg, tcp_ack_);
            seg.push_back(static_cast<uint8_t>(((20 + tcp_options_.size()) / 4) << 4));
            seg.push_back(tcp_flags_);
            append16(seg, tcp_window_);
            append16(seg, 0);  // checksum
            append16(seg, 0);  // urgent pointer
            append(seg, tcp_options_);
            checksum_at = 16;
            break;
        case L4::Udp:
            append16(seg, src_port_);
            append16(seg, dst_port_);
            append16(seg, static_cast<uint16_t>(8 + payload_.size()));
            append16(seg, 0);
            checksum_at = udp_checksum_ ? 6 : SIZE_MAX;
            break;
        case L4::Raw:
            append(seg, raw_l4_);
            break;
        }
        append(seg, payload_);
        return seg;
    }

    void fill_checksum(Bytes& seg, size_t checksum_at, uint32_t pseudo) const {
        if (checksum_at == SIZE_MAX) {
            return;
        }
        uint16_t sum = static_cast<uint16_t>(~fold_sum(ones_sum(seg, pseudo)));
        if (sum == 0 && l4_ == L4::Udp) {
            sum = 0xffff;  // 0 would mean "no checksum"
        }
        put16(seg, checksum_at, sum);
    }

    uint8_t l4_proto() const { return l4_ == L4::None ? kExtNoNext : proto_; }

    Bytes build_ipv4() const {
        size_t checksum_at = 0;
        Bytes seg = build_l4(checksum_at);
        Bytes pseudo;
        append(pseudo, v4_src_);
        append(pseudo, v4_dst_);
        pseudo.push_back(0);
        pseudo.push_back(l4_proto());
        append16(pseudo, static_cast<uint16_t>(seg.size()));
        fill_checksum(seg, checksum_at, ones_sum(pseudo));

        const size_t header_len = 20 + v4_options_.size();
        Bytes ip;
        ip.push_back(static_cast<uint8_t>(0x40 | (header_len / 4)));
        ip.push_back(0);  // DSCP/ECN
        append16(ip, static_cast<uint16_t>(header_len + seg.size()));
        append16(ip, v4_id_);
        append16(ip, v4_frag_);
        ip.push_back(64);  // TTL
        ip.push_back(l4_proto());
        append16(ip, 0);  // header checksum
        append(ip, v4_src_);
        append(ip, v4_dst_);
        append(ip, v4_options_);
        put16(ip, 10, static_cast<uint16_t>(~fold_sum(ones_sum(ip))));
        append(ip, seg);
        return ip;
    }

    Bytes build_ipv6() const {
        size_t checksum_at = 0;
        Bytes seg = build_l4(checksum_at);
        Bytes pseudo;
        append(pseudo, v6_src_);
        append(pseudo, has_pseudo_dst_ ? v6_pseudo_dst_ : v6_dst_);
        append32(pseudo, static_cast<uint32_t>(seg.size()));
        append(pseudo, std::array<uint8_t, 3>{});
        pseudo.push_back(l4_proto());
        fill_checksum(seg, checksum_at, ones_sum(pseudo));

        Bytes chain;
        for (size_t i = 0; i < v6_ext_.size(); ++i) {
            const auto& [type, body] = v6_ext_[i];
            const uint8_t next = i + 1 < v6_ext_.size() ? v6_ext_[i + 1].first : l4_proto();
            const size_t total = body.size() + 2;
            chain.push_back(next);
            if (type == kExtFragment) {
                chain.push_back(0);  // reserved
            } else if (type == kExtAh) {
                chain.push_back(static_cast<uint8_t>(total / 4 - 2));
            } else {
                chain.push_back(static_cast<uint8_t>(total / 8 - 1));
            }
            append(chain, body);
        }

        Bytes ip;
        append32(ip, 0x60000000u);
        append16(ip, static_cast<uint16_t>(chain.size() + seg.size()));
        ip.push_back(v6_ext_.empty() ? l4_proto() : v6_ext_.front().first);
        ip.push_back(64);  // hop limit
        append(ip, v6_src_);
        append(ip, v6_dst_);
        append(ip, chain);
        append(ip, seg);
        return ip;
    }

    std::vector<std::pair<uint16_t, uint16_t>> tags_;
    L3 l3_ = L3::Raw;
    uint16_t ether_type_ = kEtherArp;
    Bytes raw_l3_;
    Ipv4Address v4_src_{};
    Ipv4Address v4_dst_{};
    Bytes v4_options_;
    uint16_t v4_id_ = 0x1234;
    uint16_t v4_frag_ = 0;
    Ipv6Address v6_src_{};
    Ipv6Address v6_dst_{};
    Ipv6Address v6_pseudo_dst_{};
    bool has_pseudo_dst_ = false;
    std::vector<std::pair<uint8_t, Bytes>> v6_ext_;
    L4 l4_ = L4::None;
    uint8_t proto_ = 0;
    uint16_t src_port_ = 0;
    uint16_t dst_port_ = 0;
    uint8_t tcp_flags_ = 0;
    uint32_t tcp_seq_ = 1000;
    uint32_t tcp_ack_ = 2000;
    uint16_t tcp_window_ = 65535;
    Bytes tcp_options_;
    bool udp_checksum_ = true;
    Bytes raw_l4_;
    Bytes payload_;
    size_t pad_to_ = 0;
};

}  // namespace exfiltap::test
