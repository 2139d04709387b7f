#include "tests/gen/tcp_session.h"

#include <algorithm>
#include <numeric>
#include <utility>

namespace exfiltap::gen {
namespace {

constexpr uint16_t kWindow = 64240;
// Frame overhead per segment on the wire (Ethernet, IP, TCP, preamble, gap), for pacing.
constexpr uint64_t kWireOverhead = 78;
// A retransmitted segment goes out this many segments after the original: the first later
// segment moves the ACK up to the hole, the next three repeat it, which triggers a fast
// retransmit.
constexpr size_t kRetransmitDistance = 5;
constexpr uint64_t kMinRetransmitTimeoutUs = 200000;
// Host turnaround for an immediate ACK or a reply.
constexpr uint64_t kAckTurnaroundUs = 30;

}  // namespace

TcpSession::TcpSession(const TcpConfig& config, Rng& rng, uint64_t start_us)
    : config_(config), now_us_(start_us) {
    for (size_t side = 0; side < 2; ++side) {
        isn_[side] = static_cast<uint32_t>(rng.next());
        ip_id_[side] = static_cast<uint16_t>(rng.next());
        flow_label_[side] = static_cast<uint32_t>(rng.below(1u << 20));
    }
}

void TcpSession::add(uint64_t ts, Side from, uint8_t flags, uint32_t offset, uint32_t len) {
    const uint32_t seq = len != 0 ? isn_[index(from)] + 1 + offset : next_seq(from);
    segments_.push_back(Segment{ts, from, flags, false, seq, next_seq(other(from)), offset, len});
}

void TcpSession::finish_phase(size_t begin) {
    std::stable_sort(segments_.begin() + static_cast<std::ptrdiff_t>(begin), segments_.end(),
            [](const Segment& a, const Segment& b) { return a.ts_us < b.ts_us; });
    if (segments_.size() > begin) {
        now_us_ = std::max(now_us_, segments_.back().ts_us + 10);
    }
}

void TcpSession::connect() {
    const size_t begin = segments_.size();
    const uint32_t c = isn_[index(Side::kClient)];
    const uint32_t s = isn_[index(Side::kServer)];
    const uint64_t syn = now_us_;
    const uint64_t syn_ack = syn + 2ull * config_.server.host.delay_us + kAckTurnaroundUs;
    const uint64_t ack = syn_ack + 2ull * config_.client.host.delay_us + kAckTurnaroundUs;
    segments_.push_back(Segment{syn, Side::kClient, kTcpSyn, true, c, 0, 0, 0});
    segments_.push_back(Segment{syn_ack, Side::kServer, kTcpSyn | kTcpAck, true, s, c + 1, 0, 0});
    segments_.push_back(Segment{ack, Side::kClient, kTcpAck, false, c + 1, s + 1, 0, 0});
    finish_phase(begin);
}

void TcpSession::refuse() {
    const size_t begin = segments_.size();
    const uint32_t c = isn_[index(Side::kClient)];
    const uint64_t syn = now_us_;
    const uint64_t rst = syn + 2ull * config_.server.host.delay_us + kAckTurnaroundUs;
    segments_.push_back(Segment{syn, Side::kClient, kTcpSyn, true, c, 0, 0, 0});
    segments_.push_back(Segment{rst, Side::kServer, kTcpRst | kTcpAck, false, 0, c + 1, 0, 0});
    finish_phase(begin);
}

void TcpSession::send(
        Side from, std::string_view data, std::span<const size_t> cuts, const Disorder& disorder) {
    if (data.empty()) {
        return;
    }
    const size_t begin = segments_.size();
    const Side to = other(from);
    std::string& stream = streams_[index(from)];
    const size_t base = stream.size();
    stream.append(data);

    // Plan the segments: MSS-sized, also cut where the caller asked.
    std::vector<std::pair<uint32_t, uint32_t>> plan;  // stream offset, length
    auto cut = cuts.begin();
    for (size_t pos = 0; pos < data.size();) {
        size_t stop = std::min<size_t>(pos + config_.mss, data.size());
        while (cut != cuts.end() && *cut <= pos) {
            ++cut;
        }
        if (cut != cuts.end() && *cut < stop) {
            stop = *cut;
        }
        plan.emplace_back(static_cast<uint32_t>(base + pos), static_cast<uint32_t>(stop - pos));
        pos = stop;
    }

    // Transmission order: swapped neighbours; a segment to retransmit is lost after the tap
    // (the tap sees it, the receiver does not) and sent again a few segments later.
    struct Tx {
        size_t segment;
        bool lost;
        bool again;
    };
    std::vector<Tx> order;
    for (size_t k = 0; k < plan.size(); ++k) {
        order.push_back(Tx{k, false, false});
    }
    for (const size_t k : disorder.swaps) {
        if (k + 1 < order.size()) {
            std::swap(order[k], order[k + 1]);
        }
    }
    for (const size_t k : disorder.retransmits) {
        const auto at = std::find_if(
                order.begin(), order.end(), [k](const Tx& tx) { return tx.segment == k; });
        if (at == order.end()) {
            continue;
        }
        at->lost = true;
        const size_t pos = std::min<size_t>(
                static_cast<size_t>(at - order.begin()) + kRetransmitDistance, order.size());
        order.insert(order.begin() + static_cast<std::ptrdiff_t>(pos), Tx{k, false, true});
    }

    // Send, and let the receiver acknowledge: every second in-order segment, at once for a
    // duplicate, for data beyond a hole (duplicate ACK) and for data that fills a hole. A
    // retransmission leaves once the duplicate ACKs (three or more) have reached the sender (fast
    // retransmit), or after a minimum retransmission timeout when there were fewer.
    const uint64_t near = end(from).host.delay_us;
    const uint64_t far = end(to).host.delay_us;
    const uint32_t rate = std::max<uint32_t>(config_.rate_mbps, 1);
    const size_t window = std::max<uint32_t>(config_.window_segments, 1);
    std::vector<uint64_t> ack_seen(order.size());
    std::vector<std::pair<uint32_t, uint32_t>> held;  // out-of-order data
    uint32_t rcv_next = static_cast<uint32_t>(base);
    uint32_t last_acked = rcv_next;
    unsigned unacked = 0;
    unsigned dup_acks = 0;
    uint64_t last_dup_ack_us = 0;
    uint64_t lost_at_us = 0;
    uint64_t t = now_us_;
    for (size_t j = 0; j < order.size(); ++j) {
        const Tx tx = order[j];
        const auto [offset, len] = plan[tx.segment];
        if (j > 0) {
            t += std::max<uint64_t>(
                    1, (plan[order[j - 1].segment].second + kWireOverhead) * 8 / rate);
        }
        if (j >= window) {
            t = std::max(t, ack_seen[j - window] + 2 * near);
        }
        if (tx.again) {
            const uint64_t trigger = dup_acks >= 3
                    ? last_dup_ack_us
                    : lost_at_us + 2 * (near + far) + kMinRetransmitTimeoutUs;
            t = std::max(t, trigger + 2 * near);
        }
        const bool last_of_data = tx.segment + 1 == plan.size();
        add(t, from, kTcpAck | (last_of_data ? kTcpPsh : 0), offset, len);
        const uint64_t ack_ts = t + 2 * far + kAckTurnaroundUs;
        ack_seen[j] = ack_ts;
        if (tx.lost) {
            lost_at_us = t;
            dup_acks = 0;
            continue;
        }

        bool immediate = false;
        if (offset + len <= rcv_next) {
            immediate = true;
        } else if (offset > rcv_next) {
            held.emplace_back(offset, offset + len);
            immediate = true;
            ++dup_acks;
            last_dup_ack_us = ack_ts;
        } else {
            immediate = !held.empty();
            rcv_next = offset + len;
            std::sort(held.begin(), held.end());
            while (!held.empty() && held.front().first <= rcv_next) {
                rcv_next = std::max(rcv_next, held.front().second);
                held.erase(held.begin());
            }
            ++unacked;
        }
        const bool last = j + 1 == order.size();
        if (immediate || unacked >= 2 || (last && rcv_next != last_acked)) {
            segments_.push_back(Segment{ack_ts, to, kTcpAck, false, next_seq(to),
                    isn_[index(from)] + 1 + rcv_next, 0, 0});
            last_acked = rcv_next;
            unacked = 0;
        }
    }
    finish_phase(begin);
}

void TcpSession::close(Side first) {
    const size_t begin = segments_.size();
    const Side second = other(first);
    const uint64_t t1 = now_us_;
    const uint64_t t2 = t1 + 2ull * end(second).host.delay_us + 2 * kAckTurnaroundUs;
    const uint64_t t3 = t2 + 2ull * end(first).host.delay_us + kAckTurnaroundUs;
    add(t1, first, kTcpFin | kTcpAck);
    fin_sent_[index(first)] = true;
    add(t2, second, kTcpFin | kTcpAck);
    fin_sent_[index(second)] = true;
    add(t3, first, kTcpAck);
    finish_phase(begin);
}

void TcpSession::build_packet(size_t i, std::vector<uint8_t>& out) {
    const Segment& s = segments_[i];
    const size_t side = index(s.from);
    const Endpoint& src = end(s.from);
    const Endpoint& dst = end(other(s.from));
    FrameSpec spec;
    spec.src_mac = src.host.mac;
    spec.dst_mac = dst.host.mac;
    spec.vlan = config_.vlan;
    spec.src = src.host.ip;
    spec.dst = dst.host.ip;
    spec.ttl = src.host.ttl;
    spec.ip_id = ip_id_[side]++;
    spec.flow_label = flow_label_[side];
    spec.proto = kProtoTcp;
    spec.sport = src.port;
    spec.dport = dst.port;
    spec.seq = s.seq;
    spec.ack = s.ack;
    spec.tcp_flags = s.flags;
    spec.window = kWindow;
    spec.mss_option = s.mss_option ? config_.mss : 0;
    const auto* data = reinterpret_cast<const uint8_t*>(streams_[side].data());
    build_frame(spec, std::span<const uint8_t>(data + s.offset, s.len), out);
}

FlowKey TcpSession::key() const {
    return FlowKey::of(config_.client, config_.server, kProtoTcp);
}

}  // namespace exfiltap::gen
