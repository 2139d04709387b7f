#include "dataplane/worker.h"

#include <sched.h>
#include <time.h>

#include <algorithm>
#include <cstring>
#include <new>

#include <rte_cycles.h>
#include <rte_ethdev.h>
#include <rte_hash_crc.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>
#include <rte_pause.h>
#include <rte_prefetch.h>
#include <rte_ring.h>
#include <rte_ring_elem.h>

#include "dataplane/mbuf_meta.h"
#include "dataplane/tcp_reset.h"

namespace exfiltap::dataplane {

namespace {

// Chained frames are made contiguous for decode. The largest IP datagram plus L2 headers
// fits (captures taken with GRO hold 64 KB segments); longer frames are decoded from their
// first kLinearBytes, which decode reports as truncated.
constexpr uint32_t kLinearBytes = 65536 + 1024;
// Flows ended per burst by idle expiry, so a time jump never stalls a burst.
constexpr uint32_t kExpirePerPoll = 64;
// Copy-out requests a worker can have waiting (one per evidence request in flight).
constexpr unsigned kRequestRingSize = 64;
// Ring bytes a copy-out request walks per poll (FlightRecorder::copy_flows_step).
constexpr size_t kCopyStepBytes = 256 * 1024;
// Hyperscan streams a direction may hold: the raw stream, and the custom-regex stream when
// custom regexes are configured (now or after a reload).
constexpr size_t kStreamsPerDirection = 2;
// Progress events (behaviour volumes) every 2^18 = 256 KiB of a flow's payload.
constexpr unsigned kProgressShift = 18;
// How many packets ahead of its turn a found flow's lines are prefetched (2, 4 and 8 tried
// on exfiltap-bench ack-10k: 4 best, the others within the noise).
constexpr uint16_t kFlowPrefetchAhead = 4;
// How many packets ahead the content state of a found flow is prefetched: after its flow's
// lines (read to find the state), before its scan (exfiltap-bench text-64, alternating
// binaries, least of six runs each: content stage 743 cycles a packet without, 712 with).
constexpr uint16_t kPayloadPrefetchAhead = 2;

}  // namespace

struct Worker::PayloadState {
    detectors::ContentStream stream;
    uint8_t db_slot = 0;  // the database slot the stream was opened on
};

/// Hands in-order bytes from the reassembler to the direction's content stream (when the
/// direction is inspected) and to the flow's protocol parser (when it has one).
class Worker::DeliverySink final : public StreamSink {
public:
    DeliverySink(Worker& worker, Flow& flow, unsigned dir, PayloadState* state) noexcept
        : worker_(worker), flow_(flow), dir_(dir), state_(state) {}

    void deliver(std::span<const uint8_t> bytes, bool gap_before) noexcept override {
        if (state_ != nullptr && state_->stream.is_open()) {
            const uint64_t start = worker_.config_.stage_cycles ? rte_rdtsc() : 0;
            state_->stream.scan(bytes, worker_.scratch_, worker_.findings_, gap_before);
            worker_.counters_.scanned_bytes.add(bytes.size());
            if (worker_.config_.stage_cycles) {
                worker_.content_tsc_ += rte_rdtsc() - start;
                ++worker_.timed_;
                ++worker_.content_timed_;
            }
        }
        if (worker_.app_ != nullptr && AppLayer::wants_stream(flow_)) {
            worker_.app_->on_stream(flow_, dir_, bytes, gap_before, worker_.event_ns_);
        }
    }

    // The content stream's history is what was delivered last (since the latest gap): a
    // second copy of it per direction was kept here until exfiltap-bench text-64 showed the
    // copy in every delivery. A stream no longer open (its Hyperscan stream failed) keeps
    // nothing up to date: then nothing can be told.
    bool same_as_delivered(uint32_t back, std::span<const uint8_t> bytes) noexcept override {
        if (state_ == nullptr || !state_->stream.is_open()) {
            return true;
        }
        const std::span<const uint8_t> recent = state_->stream.history();
        if (back > recent.size() || back == 0) {
            return true;  // older than what is kept: cannot tell
        }
        const size_t n = std::min<size_t>(back, bytes.size());
        return std::memcmp(recent.data() + (recent.size() - back), bytes.data(), n) == 0;
    }

private:
    Worker& worker_;
    Flow& flow_;
    unsigned dir_;
    PayloadState* state_;
};

Worker::Worker(const WorkerConfig& config, WorkerShared& shared)
    : config_(config),
      shared_(shared),
      segments_(std::max<uint32_t>(config.reorder_worker_bytes / SegmentPool::kBlockBytes, 16)),
      reassembler_(segments_, config.reorder_flow_bytes),
      reassembler_ip_(config.reassembly),
      linear_(std::make_unique<uint8_t[]>(kLinearBytes)) {
    flow_policy_.store(config.flow_policy, std::memory_order_relaxed);
}

Worker::~Worker() {
    // Streams still open (a run stopped without finish) are freed by ContentStream's
    // destructor on this thread: their blocks must go back to this worker's pool.
    if (stream_pool_ != nullptr) {
        stream_pool_->bind_to_this_thread();
    }
    flows_.reset();
    payload_.reset();
    rte_ring_free(requests_);  // requests still queued belong to the control thread
}

std::unique_ptr<Worker> Worker::create(
        const WorkerConfig& config, WorkerShared& shared, const char** error) {
    std::unique_ptr<Worker> worker(new Worker(config, shared));
    std::array<char, 32> name{};
    snprintf(name.data(), name.size(), "exfiltap_flows_%u", config.id);
    worker->flows_ = FlowTable::create(name.data(), config.flows, *worker, error);
    if (worker->flows_ == nullptr) {
        return nullptr;
    }
    // Pool blocks leave room for a reloaded database with larger stream state; a reload
    // that needs more is refused (it needs a restart).
    const size_t stream_bytes = config.patterns != nullptr ? config.patterns->stream_size() : 64;
    worker->stream_block_bytes_ = (std::max<size_t>(2 * stream_bytes, 1024) + 63) & ~size_t{63};
    worker->scratch_ = config.scratch;
    if (config.patterns != nullptr) {
        worker->db_slots_[0].db = config.patterns;
        worker->db_slots_[0].state.store(SlotState::Active, std::memory_order_release);
    }
    // Two streams per flow direction at most later (raw and decoded object); one now.
    worker->stream_pool_ = std::make_unique<detectors::StreamPool>(
            size_t{config.payload_slots} * kStreamsPerDirection, worker->stream_block_bytes_);
    worker->edm_pool_ = std::make_unique<detectors::EdmStatePool>(config.edm_state_slots);
    worker->payload_ = std::make_unique<PayloadState[]>(config.payload_slots);
    if (config.app_layer) {
        worker->app_ = AppLayer::create(config.app, *worker);
    }
    if (config.recorder_bytes > 0) {
        worker->recorder_ =
                FlightRecorder::create(config.recorder_bytes, config.recorder_snap_bytes);
        snprintf(name.data(), name.size(), "exfiltap_evreq_%u", config.id);
        worker->requests_ = rte_ring_create(
                name.data(), kRequestRingSize, config.socket_id, RING_F_SP_ENQ | RING_F_SC_DEQ);
        if (worker->recorder_ == nullptr || worker->requests_ == nullptr) {
            *error = "cannot set up the flight recorder (recorder size or snap length out of "
                     "range, or no memory for its request ring)";
            return nullptr;
        }
    }
    worker->payload_free_.reserve(config.payload_slots);
    for (uint32_t i = config.payload_slots; i > 0; --i) {
        worker->payload_free_.push_back(i - 1);
    }
    return worker;
}

size_t Worker::payload_state_bytes() noexcept {
    return sizeof(PayloadState);
}

int Worker::lcore_main(void* worker) noexcept {
    static_cast<Worker*>(worker)->run();
    return 0;
}

void Worker::run() noexcept {
    stream_pool_->bind_to_this_thread();
    edm_pool_->bind_to_this_thread();
    if (config_.blocks != nullptr) {
        config_.blocks->reader_online(config_.id);
    }
    counters_.polling.set(1);
    uint32_t idle_polls = 0;
    while (!shared_.stop.load(std::memory_order_acquire)) {
        // Read before polling: every packet the reader queued up to this time is in the rx
        // rings now, so an empty poll means this worker has handled all of them.
        const uint64_t watermark = shared_.time_watermark_ns.load(std::memory_order_acquire);
        if (poll_once() > 0) {
            idle_polls = 0;
            continue;
        }

        // Idle: time still moves (reader or clock watermark), so idle flows expire.
        if (watermark > now_ns_) {
            now_ns_ = watermark;
            counters_.packet_time_ns.set(now_ns_);  // a quiet worker still reports time
        }
        reassembler_ip_.expire(now_ns_, kExpirePerPoll);
        if (flows_->expire(now_ns_, kExpirePerPoll) > 0) {
            counters_.flows_active.set(flows_->active());
            continue;
        }
        if (shared_.finish.load(std::memory_order_acquire) && counters_.finished.get() == 0) {
            flows_->clear(EvictReason::Shutdown);
            counters_.flows_active.set(0);
            counters_.finished.set(1);
        }

        // Back off: spin briefly, then yield, then sleep, so an idle worker frees its core.
        ++idle_polls;
        if (idle_polls < 64) {
            rte_pause();
        } else if (idle_polls < 1024) {
            sched_yield();
        } else {
            // Asleep, the worker holds nothing of the block table: grace periods go on.
            if (config_.blocks != nullptr) {
                config_.blocks->reader_offline(config_.id);
            }
            counters_.idle_sleeps.add();
            const timespec pause{0, 200 * 1000};
            nanosleep(&pause, nullptr);
            if (config_.blocks != nullptr) {
                config_.blocks->reader_online(config_.id);
            }
        }
    }
    if (config_.blocks != nullptr) {
        config_.blocks->reader_offline(config_.id);
    }
}

bool Worker::offer_content(ContentGeneration* generation) noexcept {
    if (offered_.load(std::memory_order_acquire) != nullptr
            || retired_scratch_.load(std::memory_order_acquire) != nullptr) {
        return false;
    }
    offered_.store(generation, std::memory_order_release);
    return true;
}

void Worker::adopt_offered_content() noexcept {
    ContentGeneration* offer = offered_.load(std::memory_order_acquire);
    if (offer == nullptr) {
        return;
    }
    unsigned slot = kDbSlots;
    for (unsigned i = 0; i < kDbSlots; ++i) {
        if (db_slots_[i].state.load(std::memory_order_acquire) == SlotState::Free) {
            slot = i;
            break;
        }
    }
    if (slot == kDbSlots) {
        return;  // every slot still has streams: adopt once one drains
    }
    offered_.store(nullptr, std::memory_order_relaxed);
    DbSlot& next = db_slots_[slot];
    next.db = std::move(offer->db);  // a move: no allocation, no reference count change
    next.streams = 0;
    next.state.store(SlotState::Active, std::memory_order_release);
    const uint8_t previous = current_slot_;
    current_slot_ = static_cast<uint8_t>(slot);
    retired_scratch_.store(scratch_, std::memory_order_release);
    scratch_ = offer->scratch;
    // After this store the control thread may free the offer's shell.
    adopted_.store(offer->id, std::memory_order_release);
    if (db_slots_[previous].streams == 0 && previous != current_slot_) {
        db_slots_[previous].state.store(SlotState::Drained, std::memory_order_release);
    }
}

void Worker::stream_closed(uint8_t slot) noexcept {
    DbSlot& s = db_slots_[slot];
    --s.streams;
    if (s.streams == 0 && slot != current_slot_) {
        s.state.store(SlotState::Drained, std::memory_order_release);
    }
}

hs_scratch* Worker::collect_retired() noexcept {
    for (DbSlot& s : db_slots_) {
        if (s.state.load(std::memory_order_acquire) == SlotState::Drained) {
            s.db.reset();  // control thread: the database is freed here if this was the last
            s.state.store(SlotState::Free, std::memory_order_release);
        }
    }
    return retired_scratch_.exchange(nullptr, std::memory_order_acq_rel);
}

unsigned Worker::live_databases() const noexcept {
    unsigned n = 0;
    for (const DbSlot& s : db_slots_) {
        n += s.state.load(std::memory_order_acquire) != SlotState::Free ? 1 : 0;
    }
    return n;
}

bool Worker::request_records(RecorderRequest* request) noexcept {
    if (requests_ == nullptr) {
        return false;
    }
    return rte_ring_sp_enqueue(requests_, request) == 0;
}

void Worker::answer_requests() noexcept {
    if (copying_ == nullptr) {
        void* item = nullptr;
        if (rte_ring_sc_dequeue(requests_, &item) != 0) {
            return;
        }
        copying_ = static_cast<RecorderRequest*>(item);
    }
    // A step walks kCopyStepBytes of the ring (a few microseconds), so a 16 MiB ring costs
    // 64 polls with bursts between them instead of one stop of about a millisecond.
    RecorderRequest& request = *copying_;
    if (recorder_->copy_flows_step(request.flow_ids, {request.buffer.get(), request.buffer_bytes},
                request.cursor, request.result, kCopyStepBytes)) {
        request.done.store(true, std::memory_order_release);
        copying_ = nullptr;
        counters_.evidence_requests.add();
    }
}

uint16_t Worker::poll_once() noexcept {
    if (offered_.load(std::memory_order_relaxed) != nullptr) {
        adopt_offered_content();
    }
    // Copy-out requests between bursts; an empty ring costs two loads.
    if (copying_ != nullptr || (requests_ != nullptr && !rte_ring_empty(requests_))) {
        answer_requests();
    }
    if (config_.blocks != nullptr) {
        config_.blocks->quiescent(config_.id);
    }
    uint16_t total = 0;
    std::array<rte_mbuf*, kBurstSize> pkts{};
    for (const RxBinding& binding : config_.rx) {
        const uint16_t n = rte_eth_rx_burst(binding.port, binding.queue, pkts.data(), kBurstSize);
        if (n == 0) {
            continue;
        }
        const uint64_t start = rte_rdtsc();
        // One pass over the burst for the byte counts, worker-wide and per port.
        uint64_t bytes = 0;
        for (uint16_t i = 0; i < n; ++i) {
            bytes += rte_pktmbuf_pkt_len(pkts[i]);
        }
        counters_.rx_packets.add(n);
        counters_.rx_bytes.add(bytes);
        if (binding.port < kMaxPorts) {
            counters_.port_rx_packets[binding.port].add(n);
            counters_.port_rx_bytes[binding.port].add(bytes);
        }
        if (config_.bare_forward) {
            transmit(binding, pkts.data(), n, {});
        } else {
            process_burst(binding, pkts.data(), n);
        }
        counters_.busy_cycles.add(rte_rdtsc() - start);
        counters_.busy_packets.add(n);
        total += n;
    }
    if (total > 0) {
        flows_->expire(now_ns_, kExpirePerPoll);
        reassembler_ip_.expire(now_ns_, kExpirePerPoll);
        counters_.flows_active.set(flows_->active());
        counters_.packet_time_ns.set(now_ns_);
        if (recorder_ != nullptr) {
            const RecorderStats& recorded = recorder_->stats();
            counters_.recorded_packets.set(recorded.recorded_packets);
            counters_.recorded_bytes.set(recorded.recorded_bytes);
            counters_.recorder_overwritten.set(recorded.overwritten);
        }
    }
    return total;
}

uint64_t Worker::packet_time(rte_mbuf* m) noexcept {
    if (config_.lossless) {
        return packet_meta(m, config_.meta_offset).time_ns;
    }
    timespec now{};
    clock_gettime(CLOCK_REALTIME, &now);
    return static_cast<uint64_t>(now.tv_sec) * 1000000000ULL + static_cast<uint64_t>(now.tv_nsec);
}

void Worker::process_burst(const RxBinding& binding, rte_mbuf** pkts, uint16_t count) noexcept {
    const bool timed = config_.stage_cycles;
    std::array<uint64_t, kStageMarks> marks{};
    marks[0] = timed ? rte_rdtsc() : 0;

    // Prefetch: both header lines of every mbuf (lengths and data offset; the packet meta
    // field) are read below, and with many flows they are cold (exfiltap-bench new-1m).
    for (uint16_t i = 0; i < count; ++i) {
        rte_prefetch0(pkts[i]);
        rte_prefetch0(RTE_PTR_ADD(pkts[i], RTE_CACHE_LINE_SIZE));
    }

    // Receive time: offline each packet's capture time; live one clock read per burst.
    uint64_t burst_ns = 0;
    if (config_.lossless) {
        for (uint16_t i = 0; i < count; ++i) {
            burst_[i].time_ns = packet_time(pkts[i]);
            burst_ns = std::max(burst_ns, burst_[i].time_ns);
        }
    } else {
        burst_ns = packet_time(pkts[0]);
        for (uint16_t i = 0; i < count; ++i) {
            burst_[i].time_ns = burst_ns;
        }
    }
    now_ns_ = std::max(now_ns_, burst_ns);

    // Decode the whole burst (chained frames wait for the per-packet step: one linear buffer).
    decode_burst(pkts, count);
    marks[1] = timed ? rte_rdtsc() : 0;

    // Block check.
    binding_passive_ = binding.passive;
    check_blocks(count);
    marks[2] = timed ? rte_rdtsc() : 0;

    // Flows: the burst's keys looked up together; the per-packet step below creates flows.
    lookup_flows(count);

    // Per packet in burst order (TCP streams and parsers need it): flows, detectors, events.
    std::array<bool, kBurstSize> drop{};
    policy_ = flow_policy_.load(std::memory_order_acquire);
    // The lookup brought each found flow's key in; the rest of its lines are requested a few
    // packets ahead of their turn (all at once, a burst's worth overflowed the miss queue).
    for (uint16_t i = 0; i < std::min<uint16_t>(count, kFlowPrefetchAhead); ++i) {
        prefetch_found_flow(burst_[i]);
    }
    for (uint16_t i = 0; i < count; ++i) {
        if (i + kFlowPrefetchAhead < count) {
            prefetch_found_flow(burst_[i + kFlowPrefetchAhead]);
        }
        if (i + kPayloadPrefetchAhead < count) {
            prefetch_payload(burst_[i + kPayloadPrefetchAhead]);
        }
        ExceptionReason reason{};
        packet_cause_ = DropCause::None;
        packet_shadow_ = false;
        send_reset_ = false;
        if (burst_[i].frame == nullptr) {
            linearize(pkts[i], burst_[i]);
        }
        if (burst_[i].frame != nullptr && handle_packet(burst_[i], reason)) {
            drop[i] = apply_exception(reason);
        }
        if (packet_cause_ != DropCause::None) {
            const auto cause = static_cast<size_t>(packet_cause_);
            if (binding.passive || packet_shadow_) {
                counters_.policy_would_drop[cause].add();
            } else {
                if (!drop[i]) {  // one count a packet: an exception that dropped it counted it
                    counters_.policy_dropped[cause].add();
                }
                drop[i] = true;
                if (send_reset_ && !config_.lossless) {
                    send_resets(binding, pkts[i]);
                }
            }
        }
    }
    marks[3] = timed ? rte_rdtsc() : 0;

    // Transmit (or drop by verdict).
    transmit(binding, pkts, count, drop);
    if (timed) {
        marks[4] = rte_rdtsc();
        account_stages(marks);
    }
}

// A hint only: the flow found at lookup may have changed hands since (flows created or
// ended earlier in the burst), which costs a wasted prefetch, nothing else.
void Worker::prefetch_payload(const BurstSlot& slot) const noexcept {
    if (!slot.probe.valid || slot.probe.pos < 0 || slot.info.payload_len == 0) {
        return;
    }
    for (const FlowDirection& dir : flows_->flow(static_cast<uint32_t>(slot.probe.pos)).dir) {
        if (dir.payload_slot < config_.payload_slots) {
            payload_[dir.payload_slot].stream.prefetch_state();
        }
    }
}

void Worker::prefetch_found_flow(const BurstSlot& slot) const noexcept {
    if (slot.probe.valid && slot.probe.pos >= 0) {
        flows_->prefetch_flow(static_cast<uint32_t>(slot.probe.pos));
    }
}

void Worker::decode_burst(rte_mbuf** pkts, uint16_t count) noexcept {
    // Every frame's first line is requested before the first one is decoded, so the misses
    // overlap (exfiltap-bench new-1m).
    for (uint16_t i = 0; i < count; ++i) {
        rte_prefetch0(rte_pktmbuf_mtod(pkts[i], const void*));
    }
    for (uint16_t i = 0; i < count; ++i) {
        rte_mbuf* m = pkts[i];
        BurstSlot& slot = burst_[i];
        slot.block = BlockVerdict::Pass;
        slot.probe.pos = -1;
        slot.probe.valid = false;
        if (m->nb_segs > 1) {
            slot.frame = nullptr;
            slot.decoded = false;
            continue;
        }
        slot.frame = rte_pktmbuf_mtod(m, const uint8_t*);
        slot.len = rte_pktmbuf_pkt_len(m);
        slot.decoded = decode_packet(slot.frame, slot.len, slot.info);
    }
}

void Worker::check_blocks(uint16_t count) noexcept {
    if (config_.blocks == nullptr || config_.blocks->empty()) {
        return;
    }
    for (uint16_t i = 0; i < count; ++i) {
        BurstSlot& slot = burst_[i];
        if (slot.decoded && slot.info.ip_version != 0) {
            slot.block = config_.blocks->check(
                    config_.id, slot.info.ip_version, slot.info.src.data(), slot.info.dst.data());
        }
    }
}

void Worker::lookup_flows(uint16_t count) noexcept {
    std::array<const FlowKey*, kBurstSize> keys{};
    std::array<uint16_t, kBurstSize> which{};
    std::array<uint32_t, kBurstSize> sigs{};
    std::array<int32_t, kBurstSize> positions{};
    uint32_t n = 0;
    for (uint16_t i = 0; i < count; ++i) {
        BurstSlot& slot = burst_[i];
        const bool dropped_unseen = (slot.block == BlockVerdict::BlockedExact
                                            || slot.block == BlockVerdict::BlockedPrefix)
                && !binding_passive_;
        if (!slot.decoded || slot.info.ip_version == 0 || slot.info.fragment || dropped_unseen) {
            continue;
        }
        slot.probe.key = make_flow_key(slot.info, config_.flows.vlan_in_key, slot.probe.src_is_lo);
        keys[n] = &slot.probe.key;
        which[n] = i;
        ++n;
    }
    if (n == 0) {
        return;
    }
    flows_->lookup_bulk(keys.data(), n, sigs.data(), positions.data());
    for (uint32_t k = 0; k < n; ++k) {
        FlowProbe& probe = burst_[which[k]].probe;
        probe.sig = sigs[k];
        probe.pos = positions[k];
        probe.valid = true;
    }
}

void Worker::linearize(rte_mbuf* m, BurstSlot& slot) noexcept {
    slot.len = std::min(rte_pktmbuf_pkt_len(m), kLinearBytes);
    slot.frame = static_cast<const uint8_t*>(rte_pktmbuf_read(m, 0, slot.len, linear_.get()));
    if (slot.frame == nullptr) {
        return;
    }
    slot.decoded = decode_packet(slot.frame, slot.len, slot.info);
    if (slot.decoded && slot.info.ip_version != 0 && config_.blocks != nullptr
            && !config_.blocks->empty()) {
        slot.block = config_.blocks->check(
                config_.id, slot.info.ip_version, slot.info.src.data(), slot.info.dst.data());
    }
}

void Worker::account_stages(const std::array<uint64_t, kStageMarks>& marks) noexcept {
    // marks: burst start (receive time included in decode), decoded, block-checked,
    // per-packet step done (flow lookup included), transmitted.
    auto& c = counters_.stage_cycles;
    c[static_cast<size_t>(WorkerStage::Decode)].add(marks[1] - marks[0]);
    c[static_cast<size_t>(WorkerStage::BlockCheck)].add(marks[2] - marks[1]);
    const uint64_t step = marks[3] - marks[2];
    const uint64_t inside = std::min(step, content_tsc_ + event_tsc_);
    c[static_cast<size_t>(WorkerStage::Flow)].add(step - inside);
    c[static_cast<size_t>(WorkerStage::Content)].add(content_tsc_);
    c[static_cast<size_t>(WorkerStage::Events)].add(event_tsc_);
    c[static_cast<size_t>(WorkerStage::Forward)].add(marks[4] - marks[3]);
    counters_.stage_timers.add(timed_);
    counters_.content_timers.add(content_timed_);
    content_tsc_ = 0;
    event_tsc_ = 0;
    timed_ = 0;
    content_timed_ = 0;
}

void Worker::send_resets(const RxBinding& binding, rte_mbuf* m) noexcept {
    std::array<uint8_t, kMaxResetFrame> frame{};
    for (const bool toward_sender : {false, true}) {
        const uint32_t len =
                build_tcp_reset(reset_frame_, reset_info_, toward_sender, frame.data());
        if (len == 0) {
            continue;
        }
        rte_mbuf* reset = rte_pktmbuf_alloc(m->pool);
        char* data =
                reset != nullptr ? rte_pktmbuf_append(reset, static_cast<uint16_t>(len)) : nullptr;
        if (data == nullptr) {
            rte_pktmbuf_free(reset);
            counters_.resets_failed.add();
            continue;
        }
        memcpy(data, frame.data(), len);
        // Back to the sender through the port it came in on (this worker's tx queue there),
        // onward to the receiver through the peer port.
        const uint16_t port = toward_sender ? binding.port : binding.tx_port;
        const uint16_t queue = toward_sender ? binding.queue : binding.tx_queue;
        if (rte_eth_tx_burst(port, queue, &reset, 1) == 1) {
            counters_.resets_sent.add();
        } else {
            rte_pktmbuf_free(reset);
            counters_.resets_failed.add();
        }
    }
}

void Worker::note_policy(DropCause cause, bool shadow) noexcept {
    // A real drop outranks a shadow one; the first cause found is the one counted.
    if (packet_cause_ == DropCause::None || (packet_shadow_ && !shadow)) {
        packet_cause_ = cause;
        packet_shadow_ = shadow;
    }
}

FlowAction Worker::judge_flow(
        Flow& flow, const FlowVerdictPolicy::Entry& entry, uint32_t distinct) noexcept {
    if (entry.action == FlowAction::None || distinct < entry.min_distinct) {
        return FlowAction::None;
    }
    if (static_cast<uint8_t>(entry.action) > flow.verdict) {
        if (entry.action == FlowAction::Drop) {
            counters_.flow_verdicts.add();
            reset_requested_ = reset_requested_ || entry.reset;
        }
        flow.verdict = static_cast<uint8_t>(entry.action);
    }
    return entry.action;
}

bool Worker::apply_exception(ExceptionReason reason) noexcept {
    counters_.exceptions[static_cast<size_t>(reason)].add();
    if (!config_.exceptions.drops(reason)) {
        return false;
    }
    counters_.dropped[static_cast<size_t>(reason)].add();
    return true;
}

bool Worker::checksum_acceptable(
        const uint8_t* frame, uint32_t len, const PacketInfo& info) noexcept {
    if (config_.checksum == ChecksumMode::No) {
        return true;
    }
    // A segment the receiver would discard must not become the stream's first copy.
    const bool offload_allowed = config_.checksum == ChecksumMode::Auto && config_.lossless;
    if (info.ip_version == 4 && !ipv4_header_checksum_ok(frame, len, info)) {
        // A sender that offloads the IPv4 header checksum leaves the field 0 in its own
        // capture (ndpi_dns-tunnel-dnscat2: every query); its L4 checksum decides below.
        const bool ip_zero = info.l3_offset + 12U <= len && frame[info.l3_offset + 10] == 0
                && frame[info.l3_offset + 11] == 0;
        if (!offload_allowed || !ip_zero) {
            counters_.checksum_bad.add();
            return false;
        }
        if (info.l4_proto != kProtoTcp && info.l4_proto != kProtoUdp) {
            counters_.checksum_offload.add();
            return true;
        }
        if (!l4_checksum_ok(frame, len, info)
                && !l4_checksum_is_offload_placeholder(frame, len, info)) {
            counters_.checksum_bad.add();
            return false;
        }
        counters_.checksum_offload.add();
        return true;
    }
    if (info.l4_proto != kProtoTcp && info.l4_proto != kProtoUdp) {
        return true;
    }
    if (l4_checksum_ok(frame, len, info)) {
        return true;
    }
    // Offline captures taken on the sender show its checksum offload: the field holds the
    // pseudo-header sum the NIC would have completed. Auto accepts exactly that form.
    if (offload_allowed && l4_checksum_is_offload_placeholder(frame, len, info)) {
        counters_.checksum_offload.add();
        return true;
    }
    counters_.checksum_bad.add();
    return false;
}

void Worker::set_direction_roles(Flow& flow, const PacketInfo& info, bool src_is_lo) noexcept {
    // The client is the SYN sender; a SYN-ACK seen first names its receiver; otherwise the
    // first sender.
    const bool synack = (info.tcp_flags & (kTcpSyn | kTcpAck)) == (kTcpSyn | kTcpAck);
    const bool src_is_client = !(info.l4_proto == kProtoTcp && synack);
    flow.client_is_hi = static_cast<uint8_t>(src_is_client != src_is_lo);
    const std::array<uint8_t, 16>& client_addr = src_is_client ? info.src : info.dst;
    const std::array<uint8_t, 16>& server_addr = src_is_client ? info.dst : info.src;
    const bool client_internal = config_.internal->contains(info.ip_version, client_addr);
    const bool server_internal = config_.internal->contains(info.ip_version, server_addr);
    flow.dir[0].outbound = client_internal && !server_internal;
    flow.dir[1].outbound = server_internal && !client_internal;
    flow.internal_pair = client_internal && server_internal;
    const bool content = db_slots_[current_slot_].db != nullptr && scratch_ != nullptr;
    flow.dir[0].inspect = content && flow.dir[0].outbound;
    flow.dir[1].inspect = content && flow.dir[1].outbound;
    // From the flow's key and start only, so the same capture gives the same ids whatever
    // the worker count (a per-worker sequence number did not).
    flow.flow_id = ((uint64_t{rte_hash_crc(&flow.key, sizeof(flow.key), 0x9e3779b9)} << 20)
                           ^ (flow.first_ns >> 10))
            & ((uint64_t{1} << 52) - 1);
}

bool Worker::starts_new_connection(
        const Flow& flow, const PacketInfo& info, bool src_is_lo) noexcept {
    if (info.l4_proto != kProtoTcp || (info.tcp_flags & (kTcpSyn | kTcpAck)) != kTcpSyn) {
        return false;
    }
    const bool src_is_client = src_is_lo == (flow.client_is_hi == 0);
    const TcpDirection& sender = flow.dir[src_is_client ? 0 : 1].tcp;
    // A retransmitted SYN repeats the initial sequence number; a new one starts over.
    if (sender.syn_seen) {
        return sender.isn != info.tcp_seq;
    }
    // No SYN seen from this side yet: a SYN after the flow closed, or after data, is new.
    return flow.rst_seen || (flow.dir[0].tcp.fin_seen && flow.dir[1].tcp.fin_seen)
            || flow.dir[0].payload_bytes + flow.dir[1].payload_bytes > 0;
}

bool Worker::handle_packet(BurstSlot& slot, ExceptionReason& reason) noexcept {
    event_ns_ = slot.time_ns;
    const PacketInfo& info = slot.info;
    if (!slot.decoded) {
        counters_.malformed[static_cast<size_t>(info.malformed)].add();
        reason = ExceptionReason::Undecodable;
        return true;
    }
    if (info.ip_version == 0) {
        counters_.non_ip.add();
        return false;
    }
    if (slot.block == BlockVerdict::BlockedExact || slot.block == BlockVerdict::BlockedPrefix) {
        note_policy(DropCause::Blocked, false);
        if (!binding_passive_) {
            return false;  // dropped unseen: a blocked peer gets no inspection either
        }
    }
    if (info.fragment) {
        return handle_fragment(slot.frame, slot.len, info, slot.time_ns, reason);
    }
    return handle_decoded(slot.frame, slot.len, info, slot.time_ns, reason,
            slot.probe.valid ? &slot.probe : nullptr);
}

bool Worker::handle_fragment(const uint8_t* frame, uint32_t len, const PacketInfo& info,
        uint64_t now_ns, ExceptionReason& reason) noexcept {
    // The fragment itself is forwarded as it came (unless policy drops it); a copy goes to
    // reassembly, and a completed datagram is inspected like any other packet.
    counters_.fragments.add();
    const ReassemblyResult result = reassembler_ip_.add(frame, len, info, now_ns);
    bool exception = false;
    switch (result.status) {
    case FragmentStatus::Held:
    case FragmentStatus::Overlap:
    case FragmentStatus::Duplicate:
    case FragmentStatus::NotFragment:
        break;
    case FragmentStatus::ConflictingOverlap:
        // A fragment resent with other bytes: the receiver may keep either copy, so this is
        // the IP-layer twin of a conflicting TCP overlap: alerted, dropped by default.
        emit_fragment_anomaly(info, now_ns);
        reason = ExceptionReason::ConflictingOverlap;
        exception = true;
        break;
    case FragmentStatus::Invalid:
    case FragmentStatus::TooManyFragments:
    case FragmentStatus::Oversize:
    case FragmentStatus::MemoryExhausted:
    case FragmentStatus::DatagramFailed:
        reason = ExceptionReason::FragmentUnreassembled;
        exception = true;
        break;
    }
    if (!result.completed()) {
        return exception;
    }
    counters_.fragments_reassembled.add();
    PacketInfo whole;
    if (!decode_packet(result.frame.data, result.frame.len, whole) || whole.fragment) {
        counters_.malformed[static_cast<size_t>(whole.malformed)].add();
        reason = ExceptionReason::Undecodable;
        return true;
    }
    ExceptionReason inner{};
    if (handle_decoded(result.frame.data, result.frame.len, whole, now_ns, inner, nullptr)) {
        reason = inner;
        exception = true;
    }
    return exception;
}

bool Worker::handle_decoded(const uint8_t* frame, uint32_t len, const PacketInfo& info,
        uint64_t now_ns, ExceptionReason& reason, const FlowProbe* probe) noexcept {
    const bool inspectable = checksum_acceptable(frame, len, info);

    bool src_is_lo = false;
    FlowKey own_key;
    if (probe == nullptr) {
        own_key = make_flow_key(info, config_.flows.vlan_in_key, src_is_lo);
    } else {
        src_is_lo = probe->src_is_lo;
    }
    const FlowKey& key = probe == nullptr ? own_key : probe->key;
    bool created = false;
    const uint64_t evicted_before = flows_->evicted_full();
    uint32_t index = probe == nullptr
            ? flows_->lookup_or_create(key, now_ns, created)
            : flows_->lookup_or_create(key, probe->sig, probe->pos, now_ns, created);
    if (index == kNoFlow) {
        counters_.flows_no_slot.add();
        reason = ExceptionReason::FlowTableFull;
        return true;
    }
    bool exception = false;
    if (flows_->evicted_full() != evicted_before) {
        reason = ExceptionReason::FlowTableFull;
        exception = true;
    }
    if (!created && starts_new_connection(flows_->flow(index), info, src_is_lo)) {
        // The same 5-tuple carries a new connection: the old one ends, a new flow starts.
        flows_->end(index, EvictReason::Reused);
        index = flows_->lookup_or_create(key, now_ns, created);
        if (index == kNoFlow) {
            counters_.flows_no_slot.add();
            reason = ExceptionReason::FlowTableFull;
            return true;
        }
    }
    Flow& flow = flows_->flow(index);
    if (created) {
        counters_.flows_created.add();
        set_direction_roles(flow, info, src_is_lo);
        if (app_ != nullptr) {
            app_->on_new_flow(flow, info, now_ns);
        }
    }
    if (recorder_ != nullptr) {
        // Evidence: after the flow stage, so the record carries the flow's id.
        recorder_->record(flow.flow_id, now_ns, frame, len);
    }
    const bool src_is_client = src_is_lo == (flow.client_is_hi == 0);
    const unsigned dir = src_is_client ? 0 : 1;
    flow.dir[dir].packets += 1;
    flow.dir[dir].bytes += len;
    flow.dir[dir].payload_bytes += info.payload_len;
    if (app_ != nullptr && info.payload_len > 0) {
        const uint64_t total = flow.dir[0].payload_bytes + flow.dir[1].payload_bytes;
        if (((total - info.payload_len) >> kProgressShift) != (total >> kProgressShift)) {
            emit_progress(flow, now_ns, false);
        }
    }
    if (flow.verdict == static_cast<uint8_t>(FlowAction::Drop)) {
        // The rest of a condemned flow goes nowhere and needs no more inspection.
        note_policy(DropCause::FlowVerdict, false);
        flows_->touch(index, now_ns, flows_->flow(index).timeout_class);
        return exception;
    }

    TimeoutClass cls = TimeoutClass::Other;
    if (info.l4_proto == kProtoTcp) {
        reset_requested_ = false;  // a flow ended by eviction above is not this packet's
        if (inspectable && handle_tcp(index, dir, info, frame, now_ns, reason)) {
            exception = true;
        }
        if (app_ != nullptr && (info.tcp_flags & (kTcpFin | kTcpRst)) != 0
                && flow.dir[0].payload_bytes + flow.dir[1].payload_bytes > 0) {
            // The flow is closing: its bytes count now, not when it times out.
            emit_progress(flow, now_ns, false);
            if (flow.rst_seen || (flow.dir[0].tcp.fin_seen && flow.dir[1].tcp.fin_seen)) {
                app_->on_flow_closed(flow);
            }
        }
        if (reset_requested_) {
            reset_requested_ = false;
            send_reset_ = true;
            reset_frame_ = frame;
            reset_info_ = info;
        }
        if (flow.verdict != 0) {
            // The packet that completed a finding goes with the rest of its flow.
            note_policy(DropCause::FlowVerdict,
                    flow.verdict == static_cast<uint8_t>(FlowAction::ShadowDrop));
        }
        const bool closed = flow.rst_seen || (flow.dir[0].tcp.fin_seen && flow.dir[1].tcp.fin_seen);
        const bool data = flow.dir[0].payload_bytes + flow.dir[1].payload_bytes > 0;
        cls = closed ? TimeoutClass::TcpClosed
                     : (data ? TimeoutClass::TcpOpen : TimeoutClass::TcpEmbryonic);
    } else if (info.l4_proto == kProtoUdp) {
        cls = TimeoutClass::Udp;
        if (app_ != nullptr && inspectable && info.payload_len > 0) {
            app_->on_datagram(flow, dir, info, {frame + info.payload_offset, info.payload_len});
        }
    }
    flows_->touch(index, now_ns, cls);
    return exception;
}

bool Worker::handle_tcp(uint32_t flow_index, unsigned dir, const PacketInfo& info,
        const uint8_t* frame, uint64_t now_ns, ExceptionReason& reason) noexcept {
    Flow& flow = flows_->flow(flow_index);
    FlowDirection& d = flow.dir[dir];
    uint32_t seq = info.tcp_seq;
    if ((info.tcp_flags & kTcpSyn) != 0) {
        flow.syn_seen = true;
        TcpReassembler::on_syn(d.tcp, info.tcp_seq);
        seq += 1;  // data on a SYN starts after the SYN's own sequence number
    }
    if ((info.tcp_flags & kTcpAck) != 0) {
        TcpReassembler::on_ack(flow.dir[dir ^ 1U].tcp, info.tcp_ack);
    }
    if ((info.tcp_flags & kTcpRst) != 0) {
        // Only shortens the flow's timeout: inspection goes on, so a forged RST that the
        // receiver ignores cannot blind the tap to what follows.
        flow.rst_seen = true;
    }
    if ((info.tcp_flags & kTcpFin) != 0) {
        d.tcp.fin_seen = true;
    }
    const bool parse = app_ != nullptr && AppLayer::wants_stream(flow);
    if (info.payload_len == 0 || (!d.inspect && !parse)) {
        return false;
    }
    PayloadState* state = nullptr;
    bool exhausted = false;
    if (d.inspect) {
        state = d.uninspectable ? nullptr : payload_for(d);
        exhausted = state == nullptr;
        if (exhausted && !parse) {
            reason = ExceptionReason::StreamMemoryExhausted;
            return true;
        }
    }
    DeliverySink sink(*this, flow, dir, state);
    TcpStreamStats stats;
    reassembler_.on_segment(
            d.tcp, seq, {frame + info.payload_offset, info.payload_len}, sink, stats);
    counters_.retransmitted_bytes.add(stats.retransmitted_bytes);
    counters_.conflicting_overlaps.add(stats.conflicting_overlaps);
    counters_.stream_gaps.add(stats.gaps);
    counters_.stream_gap_bytes.add(stats.gap_bytes);
    counters_.stream_memory_exhausted.add(stats.memory_exhausted);
    d.gaps += static_cast<uint32_t>(stats.gaps);
    if (findings_.count > 0 || findings_.overflow > 0) {
        emit_findings(flow, dir, now_ns);
    }
    if (stats.conflicting_overlaps > 0) {
        WorkerEvent event;
        event.type = WorkerEvent::Type::Anomaly;
        event.reason = ExceptionReason::ConflictingOverlap;
        if (policy_ != nullptr) {
            event.flow_action = judge_flow(flow, policy_->tcp_overlap, 1);
        }
        emit_event(flow, dir, now_ns, event);
        reason = ExceptionReason::ConflictingOverlap;
        return true;
    }
    if (stats.memory_exhausted > 0 || exhausted) {
        reason = ExceptionReason::StreamMemoryExhausted;
        return true;
    }
    return false;
}

Worker::PayloadState* Worker::payload_for(FlowDirection& dir) noexcept {
    if (dir.payload_slot != kNoPayload) {
        return &payload_[dir.payload_slot];
    }
    if (payload_free_.empty()) {
        dir.uninspectable = true;
        counters_.content_memory_exhausted.add();
        return nullptr;
    }
    const uint32_t slot = payload_free_.back();
    const std::shared_ptr<const detectors::PatternDatabase>& db = db_slots_[current_slot_].db;
    if (db == nullptr || !payload_[slot].stream.open(*db)) {
        dir.uninspectable = true;
        counters_.content_memory_exhausted.add();
        return nullptr;
    }
    payload_free_.pop_back();
    payload_[slot].db_slot = current_slot_;
    ++db_slots_[current_slot_].streams;
    dir.payload_slot = slot;
    return &payload_[slot];
}

void Worker::release_payload(Flow& flow, unsigned dir_index) noexcept {
    FlowDirection& dir = flow.dir[dir_index];
    PayloadState* state = dir.payload_slot != kNoPayload ? &payload_[dir.payload_slot] : nullptr;
    if (state == nullptr && (app_ == nullptr || !AppLayer::wants_stream(flow))) {
        reassembler_.discard(dir.tcp);
        return;
    }
    DeliverySink sink(*this, flow, dir_index, state);
    TcpStreamStats stats;
    reassembler_.flush(dir.tcp, sink, stats);
    counters_.stream_gaps.add(stats.gaps);
    counters_.stream_gap_bytes.add(stats.gap_bytes);
    dir.gaps += static_cast<uint32_t>(stats.gaps);
    if (state == nullptr) {
        return;
    }
    state->stream.close(scratch_, findings_);
    stream_closed(state->db_slot);
    payload_free_.push_back(dir.payload_slot);
    dir.payload_slot = kNoPayload;
}

void Worker::on_flow_end(Flow& flow, EvictReason reason) noexcept {
    if (reason == EvictReason::Timeout) {
        counters_.flows_timed_out.add();
    } else if (reason == EvictReason::TableFull) {
        counters_.flows_evicted_full.add();
    }
    const uint64_t end_ns = std::max(flow.last_ns, now_ns_);
    // A flow can end while another packet is being handled (eviction, a reused 5-tuple):
    // that packet's events keep their own time.
    const uint64_t packet_ns = event_ns_;
    event_ns_ = end_ns;
    for (unsigned dir = 0; dir < 2; ++dir) {
        release_payload(flow, dir);
        if (findings_.count > 0 || findings_.overflow > 0) {
            emit_findings(flow, dir, end_ns);
        }
    }
    if (app_ != nullptr) {
        // Parsers flush (a pending mail, an SMB file still open) and objects close.
        app_->on_flow_end(flow);
        // Flows with payload report their bytes; a connection between two internal hosts
        // that carried none (a SYN to a closed port, a port check) still reports its end, so
        // the behaviour engine counts it toward lateral fan-out and scans.
        const bool payload = flow.dir[0].payload_bytes + flow.dir[1].payload_bytes > 0;
        if (payload || flow.internal_pair) {
            emit_progress(flow, end_ns, true);
        }
    }
    event_ns_ = packet_ns;
    if (flow.reported) {
        WorkerEvent event;
        event.type = WorkerEvent::Type::FlowEnd;
        emit_event(flow, 0, end_ns, event);
    }
    if (config_.flow_records) {
        WorkerEvent event;
        event.type = WorkerEvent::Type::FlowRecord;
        emit_event(flow, 0, end_ns, event);
    }
}

void Worker::emit_event(
        const Flow& flow, unsigned dir, uint64_t now_ns, WorkerEvent& event) noexcept {
    const bool sender_is_hi = (dir == 0) == (flow.client_is_hi != 0);
    const FlowDirection& d = flow.dir[dir];
    event.ip_version = flow.key.ip_version;
    event.proto = flow.key.proto;
    event.src = sender_is_hi ? flow.key.addr_hi : flow.key.addr_lo;
    event.dst = sender_is_hi ? flow.key.addr_lo : flow.key.addr_hi;
    event.src_port = sender_is_hi ? flow.key.port_hi : flow.key.port_lo;
    event.dst_port = sender_is_hi ? flow.key.port_lo : flow.key.port_hi;
    event.vlan = {flow.key.vlan_outer, flow.key.vlan_inner};
    event.vlan_count =
            static_cast<uint8_t>(flow.key.vlan_inner != 0 ? 2 : (flow.key.vlan_outer != 0 ? 1 : 0));
    event.time_ns = now_ns;
    event.flow_id = flow.flow_id;
    event.direction_bytes = d.payload_bytes;
    if (event.type == WorkerEvent::Type::FlowRecord) {
        event.direction_bytes = flow.dir[0].bytes;
        event.reverse_bytes = flow.dir[1].bytes;
    } else if (event.type == WorkerEvent::Type::Progress) {
        event.direction_bytes = flow.dir[0].payload_bytes;
        event.reverse_bytes = flow.dir[1].payload_bytes;
    }
    event.app_proto = flow.app_proto;
    enqueue_event(event);
}

void Worker::emit_progress(const Flow& flow, uint64_t now_ns, bool ended) noexcept {
    WorkerEvent event;
    event.type = WorkerEvent::Type::Progress;
    event.flow_ended = ended;
    emit_event(flow, 0, now_ns, event);
}

void Worker::emit_app_event(
        const Flow& flow, const detectors::AppEvent& app, bool from_server) noexcept {
    WorkerEvent event;
    event.type = WorkerEvent::Type::App;
    event.app = app;
    emit_event(flow, from_server ? 1 : 0, event_ns_, event);
}

bool Worker::edm_enabled() const noexcept {
    const std::shared_ptr<const detectors::PatternDatabase>& db = db_slots_[current_slot_].db;
    return db != nullptr && db->config().edm_enabled();
}

bool Worker::open_object_stream(
        detectors::ContentStream& stream, uint8_t& db_slot, bool edm_only) noexcept {
    const std::shared_ptr<const detectors::PatternDatabase>& db = db_slots_[current_slot_].db;
    if (db == nullptr || scratch_ == nullptr) {
        return false;
    }
    if (!stream.open(*db, edm_only)) {
        if (!edm_only) {
            counters_.content_memory_exhausted.add();  // EDM counts its own (state_exhausted)
        }
        return false;
    }
    object_seq_ = object_seq_ == UINT32_MAX ? 1 : object_seq_ + 1;
    stream.set_origin(object_seq_);
    db_slot = current_slot_;
    ++db_slots_[current_slot_].streams;
    return true;
}

void Worker::scan_object(Flow& flow, unsigned dir, detectors::ContentStream& stream,
        std::span<const uint8_t> data) noexcept {
    const uint64_t start = config_.stage_cycles ? rte_rdtsc() : 0;
    stream.scan(data, scratch_, findings_);
    counters_.scanned_bytes.add(data.size());
    if (config_.stage_cycles) {
        content_tsc_ += rte_rdtsc() - start;
        ++timed_;
        ++content_timed_;
    }
    if (findings_.count > 0 || findings_.overflow > 0) {
        emit_findings(flow, dir, event_ns_);
    }
}

void Worker::close_object_stream(
        Flow& flow, unsigned dir, detectors::ContentStream& stream, uint8_t db_slot) noexcept {
    stream.close(scratch_, findings_);
    stream_closed(db_slot);
    if (findings_.count > 0 || findings_.overflow > 0) {
        emit_findings(flow, dir, event_ns_);
    }
}

void Worker::emit_fragment_anomaly(const PacketInfo& info, uint64_t now_ns) noexcept {
    WorkerEvent event;
    event.type = WorkerEvent::Type::Anomaly;
    event.reason = ExceptionReason::ConflictingOverlap;
    event.ip_layer = true;
    event.ip_version = info.ip_version;
    event.proto = info.l4_proto;
    event.src = info.src;
    event.dst = info.dst;
    event.src_port = info.src_port;  // first fragments carry ports; others leave them 0
    event.dst_port = info.dst_port;
    event.vlan = {info.vlan_count > 0 ? info.vlan[0] : uint16_t{0},
            info.vlan_count > 1 ? info.vlan[1] : uint16_t{0}};
    event.vlan_count = static_cast<uint8_t>(std::min<unsigned>(info.vlan_count, 2));
    event.time_ns = now_ns;
    event.flow_id = info.frag_id;  // no flow yet: the datagram id stands in
    enqueue_event(event);
}

void Worker::enqueue_event(const WorkerEvent& event) noexcept {
    const uint64_t start = config_.stage_cycles ? rte_rdtsc() : 0;
    WorkerEvent copy = event;  // rte_ring_enqueue_elem() takes a non-const pointer
    if (rte_ring_enqueue_elem(config_.events, &copy, sizeof(copy)) != 0) [[unlikely]] {
        wait_to_enqueue(copy);
    }
    if (config_.stage_cycles) {
        event_tsc_ += rte_rdtsc() - start;
        ++timed_;
    }
}

void Worker::wait_to_enqueue(WorkerEvent& event) noexcept {
    while (config_.lossless && !shared_.stop.load(std::memory_order_relaxed)) {
        rte_pause();  // offline: the control side drains; wait instead of losing it
        if (rte_ring_enqueue_elem(config_.events, &event, sizeof(event)) == 0) {
            return;
        }
    }
    counters_.events_dropped.add();
}

void Worker::emit_findings(Flow& flow, unsigned dir, uint64_t now_ns) noexcept {
    counters_.findings_lost.add(findings_.overflow);
    flow.reported = true;
    for (size_t i = 0; i < findings_.count; ++i) {
        detectors::Finding& finding = findings_.items[i];
        counters_.findings[static_cast<size_t>(finding.cls)].add();
        WorkerEvent event;
        event.type = WorkerEvent::Type::Finding;
        event.finding = finding;
        if (policy_ != nullptr) {
            event.flow_action =
                    judge_flow(flow, policy_->for_finding(finding), finding.distinct_count);
            if (binding_passive_ && event.flow_action == FlowAction::Drop) {
                event.flow_action = FlowAction::ShadowDrop;  // a tap drops nothing
            }
        }
        emit_event(flow, dir, now_ns, event);
        // The value crossed to the control ring; do not leave it in worker memory.
        finding.value.fill(0);
        event.finding.value.fill(0);
    }
    findings_.clear();
}

void Worker::transmit(const RxBinding& binding, rte_mbuf** pkts, uint16_t count,
        const std::array<bool, kBurstSize>& drop) noexcept {
    if (binding.passive) {
        rte_pktmbuf_free_bulk(pkts, count);  // SPAN/TAP: nothing leaves
        return;
    }
    // Dropped packets: offline they still travel to the writer, marked, so it knows the
    // capture position is settled; live they are freed.
    std::array<rte_mbuf*, kBurstSize> out{};
    uint16_t n = 0;
    uint64_t bytes = 0;
    for (uint16_t i = 0; i < count; ++i) {
        if (drop[i]) {
            if (!config_.lossless) {
                rte_pktmbuf_free(pkts[i]);
                continue;
            }
            packet_meta(pkts[i], config_.meta_offset).flags |= kMetaDropped;
        } else {
            bytes += rte_pktmbuf_pkt_len(pkts[i]);
        }
        out[n++] = pkts[i];
    }
    uint16_t sent = 0;
    while (sent < n) {
        sent += rte_eth_tx_burst(binding.tx_port, binding.tx_queue, out.data() + sent, n - sent);
        if (sent < n && (!config_.lossless || shared_.stop.load(std::memory_order_relaxed))) {
            // Live (or a lossless run told to stop): the port takes no more now; what is
            // left is dropped, and counted, except what a verdict dropped and counted.
            for (uint16_t i = sent; i < n; ++i) {
                if (config_.lossless
                        && (packet_meta(out[i], config_.meta_offset).flags & kMetaDropped) != 0) {
                    continue;
                }
                counters_.tx_queue_full.add();
                bytes -= rte_pktmbuf_pkt_len(out[i]);
            }
            rte_pktmbuf_free_bulk(out.data() + sent, n - sent);
            break;
        }
        if (sent < n) {
            rte_pause();
        }
    }
    counters_.tx_packets.add(sent);
    counters_.tx_bytes.add(bytes);
    if (binding.tx_port < kMaxPorts) {
        counters_.port_tx_packets[binding.tx_port].add(sent);
        counters_.port_tx_bytes[binding.tx_port].add(bytes);
    }
}

}  // namespace exfiltap::dataplane
