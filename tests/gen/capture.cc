#include "tests/gen/capture.h"

#include <stdexcept>
#include <utility>

namespace exfiltap::gen {

void Capture::emit_before(uint64_t ts_us) {
    while (!queue_.empty() && queue_.top().ts_us < ts_us) {
        const Next next = queue_.top();
        queue_.pop();
        Flow& flow = *slots_[next.slot];
        flow.build_packet(next.index, frame_);
        writer_.write(next.ts_us, frame_);
        last_emitted_us_ = next.ts_us;
        if (next.index + 1 < flow.packet_count()) {
            queue_.push(Next{
                    flow.packet_ts_us(next.index + 1), next.serial, next.slot, next.index + 1});
        } else {
            slots_[next.slot].reset();
            free_slots_.push_back(next.slot);
        }
    }
}

void Capture::add(std::unique_ptr<Flow> flow) {
    if (flow->packet_count() == 0) {
        return;
    }
    if (flow->packet_ts_us(0) < last_emitted_us_) {
        throw std::logic_error("flow starts before packets already written");
    }
    keys_.insert(flow->key());
    planned_ += flow->packet_count();
    size_t slot = slots_.size();
    if (!free_slots_.empty()) {
        slot = free_slots_.back();
        free_slots_.pop_back();
    } else {
        slots_.emplace_back();
    }
    queue_.push(Next{flow->packet_ts_us(0), serial_++, slot, 0});
    slots_[slot] = std::move(flow);
}

}  // namespace exfiltap::gen
