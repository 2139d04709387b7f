#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <queue>
#include <set>
#include <vector>

#include "tests/gen/flow.h"
#include "tests/gen/pcap_writer.h"

namespace exfiltap::gen {

// Interleaves finished flows into one capture in time order. Flows are added in order of
// their first packet; a flow's packets are built only when written and the flow is freed
// after its last one, so memory follows the number of flows open at once, not the capture.
class Capture {
public:
    explicit Capture(PcapWriter& writer) : writer_(writer) {}

    // Writes every queued packet earlier than ts_us. Call before adding a flow that starts
    // at ts_us.
    void emit_before(uint64_t ts_us);

    // Queues a flow. Its first packet must not be earlier than a packet already written
    // (std::logic_error otherwise).
    void add(std::unique_ptr<Flow> flow);

    // Writes everything still queued.
    void finish() { emit_before(UINT64_MAX); }

    // Packets of all flows added so far, written or not.
    uint64_t planned_packets() const { return planned_; }
    // Distinct 5-tuples among the flows added.
    uint64_t flows() const { return keys_.size(); }
    bool has_flow(const FlowKey& key) const { return keys_.count(key) != 0; }

private:
    struct Next {
        uint64_t ts_us;
        uint64_t serial;  // order of add(), breaks ties
        size_t slot;
        size_t index;
        bool operator>(const Next& o) const {
            return ts_us != o.ts_us ? ts_us > o.ts_us : serial > o.serial;
        }
    };

    PcapWriter& writer_;
    std::vector<std::unique_ptr<Flow>> slots_;
    std::vector<size_t> free_slots_;
    std::priority_queue<Next, std::vector<Next>, std::greater<Next>> queue_;
    std::set<FlowKey> keys_;
    std::vector<uint8_t> frame_;
    uint64_t serial_ = 0;
    uint64_t planned_ = 0;
    uint64_t last_emitted_us_ = 0;
};

}  // namespace exfiltap::gen
