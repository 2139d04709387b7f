#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "tests/gen/flow.h"
#include "tests/gen/rng.h"

namespace exfiltap::gen {

enum class Side : uint8_t {
    kClient = 0,
    kServer = 1,
};

struct TcpConfig {
    Endpoint client;
    Endpoint server;
    uint16_t vlan = 0;              // 802.1Q id on every packet of the flow; 0: none
    uint16_t mss = 1460;            // 1440 is used for IPv6 so frames stay within 1500 MTU
    uint32_t rate_mbps = 200;       // senders pace segments at this rate
    uint32_t window_segments = 40;  // in flight before the sender waits (64240-byte window)
};

// Reordering and duplication applied to one send() call. Indexes count the segments of that
// call, from 0.
struct Disorder {
    std::vector<size_t> swaps;  // segment k goes out after segment k + 1
    // Segment k is lost beyond the tap (captured, never received) and sent again with the same
    // bytes after the receiver's duplicate ACKs (or a timeout when too few segments follow).
    std::vector<size_t> retransmits;
};

// Builds one TCP connection as a tap between the two hosts sees it: handshake with MSS
// options, data cut into segments no larger than the MSS, the receiver's ACKs (every second
// segment, at once for out-of-order or duplicate data), and a FIN/ACK teardown. Times come
// from each host's one-way delay to the tap and the sender's pacing and window. Calls run in
// the order the conversation happens; each starts after everything before it has arrived.
class TcpSession final : public Flow {
public:
    TcpSession(const TcpConfig& config, Rng& rng, uint64_t start_us);

    // SYN, SYN-ACK, ACK.
    void connect();

    // A refused connection: the client's SYN answered by RST-ACK (a closed port). Nothing
    // else may follow.
    void refuse();

    // Sends data from one side. The data starts a new segment; later segments are cut at the
    // MSS and also at every offset in cuts (relative to data, ascending), so a test can put
    // a segment boundary inside a value.
    void send(Side from, std::string_view data, std::span<const size_t> cuts = {},
            const Disorder& disorder = {});

    // The application thinks (or the user reads) before the next call.
    void pause(uint64_t us) { now_us_ += us; }

    // FIN from one side, FIN from the other, last ACK.
    void close(Side first);

    // Bytes one side has sent so far: the stream offset the next send() starts at.
    size_t sent(Side side) const { return streams_[index(side)].size(); }
    // Time the next call starts at.
    uint64_t now_us() const { return now_us_; }
    const TcpConfig& config() const { return config_; }

    size_t packet_count() const override { return segments_.size(); }
    uint64_t packet_ts_us(size_t i) const override { return segments_[i].ts_us; }
    void build_packet(size_t i, std::vector<uint8_t>& out) override;
    FlowKey key() const override;

private:
    struct Segment {
        uint64_t ts_us;
        Side from;
        uint8_t flags;
        bool mss_option;
        uint32_t seq;
        uint32_t ack;
        uint32_t offset;  // into the sender's stream
        uint32_t len;
    };

    static size_t index(Side side) { return static_cast<size_t>(side); }
    static Side other(Side side) { return side == Side::kClient ? Side::kServer : Side::kClient; }
    const Endpoint& end(Side side) const {
        return side == Side::kClient ? config_.client : config_.server;
    }
    uint32_t next_seq(Side side) const {
        return isn_[index(side)] + 1 + static_cast<uint32_t>(streams_[index(side)].size())
                + (fin_sent_[index(side)] ? 1 : 0);
    }
    void add(uint64_t ts, Side from, uint8_t flags, uint32_t offset = 0, uint32_t len = 0);
    // Sorts the segments added since begin by time and moves now_us_ past the last one.
    void finish_phase(size_t begin);

    TcpConfig config_;
    uint64_t now_us_;
    std::array<uint32_t, 2> isn_{};
    std::array<uint16_t, 2> ip_id_{};
    std::array<uint32_t, 2> flow_label_{};
    std::array<std::string, 2> streams_;
    std::array<bool, 2> fin_sent_{};
    std::vector<Segment> segments_;
};

}  // namespace exfiltap::gen
