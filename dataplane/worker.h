// The worker: one lcore polling queue k of every rx port, running the staged burst loop
// (receive, decode, flows, detectors, transmit) and sending events to the control thread
// through its own SPSC ring. Everything here runs on the worker's lcore and is noexcept: no
// allocation, locks, syscalls or logging in the loop; counters only.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <string_view>
#include <vector>

#include <rte_config.h>

#include "common/counter.h"
#include "dataplane/app_layer.h"
#include "dataplane/block_table.h"
#include "dataplane/decode.h"
#include "dataplane/exception_policy.h"
#include "dataplane/flight_recorder.h"
#include "dataplane/flow_table.h"
#include "dataplane/flow_verdict.h"
#include "dataplane/ip_reassembly.h"
#include "dataplane/network_set.h"
#include "dataplane/tcp_stream.h"
#include "detectors/app_event.h"
#include "detectors/content_scanner.h"
#include "detectors/edm_matcher.h"

struct rte_mbuf;
struct rte_ring;

namespace exfiltap::dataplane {

inline constexpr uint16_t kBurstSize = 32;

enum class ChecksumMode : uint8_t {
    Yes,
    No,
    Auto,
};

/// One polled queue and where what it receives leaves: the peer port of an inline pair, or
/// nowhere (passive: SPAN/TAP, packets are freed after inspection).
struct RxBinding {
    uint16_t port = 0;
    uint16_t queue = 0;
    bool passive = false;
    uint16_t tx_port = 0;
    uint16_t tx_queue = 0;
};

/// Why a packet the policy acts on is dropped (inline) or would be (passive, shadow).
enum class DropCause : uint8_t {
    None = 0,
    /// Source or destination is on the block list.
    Blocked,
    /// The flow has a drop verdict from a finding.
    FlowVerdict,
};
inline constexpr size_t kDropCauseCount = 3;
inline constexpr std::array<std::string_view, kDropCauseCount> kDropCauseNames = {
        "none", "blocked", "flow_verdict"};

/// Stages of a burst whose TSC cycles a worker counts when WorkerConfig::stage_cycles is on
/// (the benchmark): flow covers the per-packet step (flow table, TCP state, parsers) less
/// the content scans and event enqueues timed inside it.
enum class WorkerStage : uint8_t {
    Decode = 0,
    BlockCheck,
    Flow,
    Content,
    Events,
    Forward,
};
inline constexpr size_t kWorkerStageCount = 6;
inline constexpr std::array<std::string_view, kWorkerStageCount> kWorkerStageNames = {
        "decode", "block_check", "flow", "content", "events", "forwarding"};

/// Packet and byte counts of one port, per worker.
inline constexpr size_t kMaxPorts = 8;

/// Worker to control record. Fixed size, copied through an rte_ring of elements.
struct WorkerEvent {
    enum class Type : uint8_t {
        Finding = 1,
        /// A TCP direction resent bytes with other content (exception reason in `reason`).
        Anomaly = 2,
        /// A flow that had findings or anomalies ended: pending alerts can be flushed.
        FlowEnd = 3,
        /// Any flow ended (WorkerConfig::flow_records): bytes each way for top talkers.
        /// direction_bytes holds the client's frame bytes, reverse_bytes the server's.
        FlowRecord = 4,
        /// What a protocol parser reported (`app`); src/dst as the AppEvent says (the
        /// client first, DNS: the querier first).
        App = 5,
        /// Payload bytes of a flow so far, client's in direction_bytes, server's in
        /// reverse_bytes (src is the client): sent every 256 KiB of payload and when a flow
        /// that carried payload ends (flow_ended). The behaviour detectors' volumes.
        Progress = 6,
    };
    Type type = Type::Finding;
    uint8_t ip_version = 0;
    uint8_t proto = 0;
    uint8_t vlan_count = 0;
    uint16_t src_port = 0;
    uint16_t dst_port = 0;
    std::array<uint16_t, 2> vlan{};
    std::array<uint8_t, 16> src{};
    std::array<uint8_t, 16> dst{};
    uint64_t time_ns = 0;
    uint64_t flow_id = 0;
    uint64_t direction_bytes = 0;
    uint64_t reverse_bytes = 0;
    ExceptionReason reason = ExceptionReason::Undecodable;
    /// For anomalies: false for the TCP stream, true for IP fragment reassembly.
    bool ip_layer = false;
    /// What the worker did to the flow at this event (FlowAction).
    FlowAction flow_action = FlowAction::None;
    /// The flow's application protocol (a detectors::AppProto) as identified so far.
    uint8_t app_proto = 0;
    /// Progress: the flow has ended.
    bool flow_ended = false;
    detectors::Finding finding;
    detectors::AppEvent app;
};
static_assert(sizeof(WorkerEvent) % 4 == 0);

/// Counters of one worker, written only by it. Summed by the control thread.
struct alignas(RTE_CACHE_LINE_SIZE) WorkerCounters {
    Counter rx_packets;
    Counter rx_bytes;
    Counter tx_packets;
    Counter tx_bytes;
    Counter tx_queue_full;  // forwarded packets freed because the tx queue took no more
    Counter non_ip;
    Counter fragments;
    Counter fragments_reassembled;
    std::array<Counter, kMalformedCount> malformed;
    Counter checksum_bad;
    Counter checksum_offload;
    Counter flows_created;
    Counter flows_active;
    Counter flows_timed_out;
    Counter flows_evicted_full;
    Counter flows_no_slot;
    Counter stream_gaps;
    Counter stream_gap_bytes;
    Counter retransmitted_bytes;
    Counter conflicting_overlaps;
    Counter stream_memory_exhausted;
    Counter content_memory_exhausted;
    Counter scanned_bytes;
    std::array<Counter, detectors::kContentClassCount> findings;
    Counter findings_lost;
    std::array<Counter, kExceptionReasonCount> exceptions;
    std::array<Counter, kExceptionReasonCount> dropped;
    Counter events_dropped;
    Counter busy_cycles;
    Counter busy_packets;
    Counter packet_time_ns;  // this worker's packet-time watermark
    Counter finished;
    /// Set once the worker loop runs (readiness, DESIGN.md "Modes").
    Counter polling;
    std::array<Counter, kDropCauseCount> policy_dropped;
    std::array<Counter, kDropCauseCount> policy_would_drop;
    Counter flow_verdicts;  // flows given a drop verdict
    Counter resets_sent;    // TCP resets of flow verdicts
    Counter resets_failed;  // no mbuf, or the tx queue was full
    std::array<Counter, kMaxPorts> port_rx_packets;
    std::array<Counter, kMaxPorts> port_rx_bytes;
    std::array<Counter, kMaxPorts> port_tx_packets;
    std::array<Counter, kMaxPorts> port_tx_bytes;
    Counter idle_sleeps;
    /// WorkerConfig::stage_cycles: TSC cycles per stage, and how many intervals were timed
    /// inside the per-packet step (content scans, event enqueues).
    std::array<Counter, kWorkerStageCount> stage_cycles;
    Counter stage_timers;
    Counter content_timers;
    /// Flight recorder (WorkerConfig::recorder_bytes): packets and frame bytes recorded,
    /// records overwritten by newer ones, copy-out requests answered. Set once per burst.
    Counter recorded_packets;
    Counter recorded_bytes;
    Counter recorder_overwritten;
    Counter evidence_requests;
};

/// A content database handed to a worker by the control thread (DESIGN.md "Reload"): new
/// flow directions open their streams on it; streams opened before keep their database.
/// `scratch` serves this database and every older one still in use.
struct ContentGeneration {
    uint64_t id = 0;
    std::shared_ptr<const detectors::PatternDatabase> db;
    hs_scratch* scratch = nullptr;
};

/// State shared between the control thread and the workers.
struct WorkerShared {
    std::atomic<bool> stop{false};
    /// Offline end of capture: every packet has been through; flush every flow and report.
    std::atomic<bool> finish{false};
    /// Lowest packet time the reader or clock has reached; quiet workers expire by it.
    std::atomic<uint64_t> time_watermark_ns{0};
};

struct WorkerConfig {
    unsigned id = 0;
    int socket_id = 0;
    /// Queues polled, each with where its packets leave (inline) or none (passive).
    std::vector<RxBinding> rx;
    /// Flow verdicts by finding (DESIGN.md "Response"); null: alert only. The control
    /// thread publishes a new table with an RCU swap (see flow_policy()).
    const FlowVerdictPolicy* flow_policy = nullptr;
    /// The block list (DESIGN.md "Response"); this worker reads it as reader `id`. Null: none.
    BlockTable* blocks = nullptr;
    /// Offline: never drop on a full tx or event ring, wait instead.
    bool lossless = false;
    /// Report every ended flow with its byte counts (FlowRecord events).
    bool flow_records = false;
    /// Protocol identification and parsers, decoded objects, Progress events (the
    /// behaviour detectors' input). Off: content scanning of raw streams only.
    bool app_layer = true;
    AppLayerConfig app;
    /// Benchmark baseline: receive and transmit only, nothing in between.
    bool bare_forward = false;
    /// Benchmark: count TSC cycles per burst stage (WorkerCounters::stage_cycles). Costs an
    /// rte_rdtsc() per stage and burst, and a pair per content scan and event.
    bool stage_cycles = false;
    int meta_offset = -1;
    ChecksumMode checksum = ChecksumMode::Auto;
    ExceptionPolicy exceptions;
    FlowTableConfig flows;
    uint32_t reorder_flow_bytes = 256 * 1024;
    uint32_t reorder_worker_bytes = 64 * 1024 * 1024;
    uint32_t payload_slots = 16384;
    /// Exact-data-match state blocks (a few KiB each, touched only when used).
    uint32_t edm_state_slots = 16384;
    IpReassemblyConfig reassembly;
    rte_ring* events = nullptr;
    const NetworkSet* internal = nullptr;
    std::shared_ptr<const detectors::PatternDatabase> patterns;
    hs_scratch* scratch = nullptr;
    /// Flight recorder ring bytes (0: off) and bytes kept of each frame (DESIGN.md
    /// "Outputs", Evidence).
    size_t recorder_bytes = 0;
    uint32_t recorder_snap_bytes = 1600;
};

class Worker final : public FlowEndHandler, public AppHost {
public:
    /// Builds the worker's tables and pools (control thread, before launch).
    static std::unique_ptr<Worker> create(
            const WorkerConfig& config, WorkerShared& shared, const char** error);
    ~Worker();
    Worker(const Worker&) = delete;
    Worker& operator=(const Worker&) = delete;
    Worker(Worker&&) = delete;
    Worker& operator=(Worker&&) = delete;

    /// The lcore entry point (rte_eal_remote_launch with the Worker as argument).
    static int lcore_main(void* worker) noexcept;

    /// One burst from every rx queue; returns packets handled. Exposed for tests and bench.
    uint16_t poll_once() noexcept;

    const WorkerCounters& counters() const noexcept { return counters_; }
    /// Exact data match counters of this worker (read by any thread).
    const detectors::EdmCounters& edm_counters() const noexcept { return edm_pool_->counters(); }

    /// Publishes a new flow verdict table (control thread). The worker picks it up at its
    /// next burst; the caller keeps every table it published alive until the worker stops.
    void set_flow_policy(const FlowVerdictPolicy* policy) noexcept {
        flow_policy_.store(policy, std::memory_order_release);
    }
    // Content reload, control-thread side (see ContentGeneration). The worker adopts an
    // offer at its next poll; the control thread then frees the retired scratch and, once a
    // database's last stream on this worker has closed, drops the worker's reference.

    /// Offers a generation; the caller keeps it alive until adopted_generation() reaches its
    /// id (the worker moves the database out and takes the scratch). False when an earlier
    /// offer is still pending or its replaced scratch not yet collected.
    bool offer_content(ContentGeneration* generation) noexcept;
    /// Id of the newest adopted generation.
    uint64_t adopted_generation() const noexcept {
        return adopted_.load(std::memory_order_acquire);
    }
    /// Collects what the worker let go of: the scratch it replaced (caller frees it) and
    /// databases no stream of this worker uses any more (released here).
    hs_scratch* collect_retired() noexcept;
    /// The scratch in use (after the worker stopped: the one the caller must free).
    hs_scratch* current_scratch() const noexcept { return scratch_; }
    /// Bytes of a flow direction's payload state slot (content stream, recent bytes),
    /// besides its Hyperscan stream block (stream_block_bytes()); taken when a direction
    /// first carries inspected payload (DESIGN.md "Workers": measured apart from the flow).
    static size_t payload_state_bytes() noexcept;
    /// Largest Hyperscan stream state this worker's pool blocks can hold.
    size_t stream_block_bytes() const noexcept { return stream_block_bytes_; }
    /// Databases this worker still holds (current included).
    unsigned live_databases() const noexcept;

    /// Read only while the worker is stopped (end of an offline run, tests).
    const ReassemblyStats& reassembly_stats() const noexcept { return reassembler_ip_.stats(); }
    const WorkerConfig& config() const noexcept { return config_; }

    void on_flow_end(Flow& flow, EvictReason reason) noexcept override;

    // AppHost (the application layer's way out; worker only).
    void emit_app_event(
            const Flow& flow, const detectors::AppEvent& event, bool from_server) noexcept override;
    bool open_object_stream(
            detectors::ContentStream& stream, uint8_t& db_slot, bool edm_only) noexcept override;
    bool edm_enabled() const noexcept override;
    void scan_object(Flow& flow, unsigned dir, detectors::ContentStream& stream,
            std::span<const uint8_t> data) noexcept override;
    void close_object_stream(Flow& flow, unsigned dir, detectors::ContentStream& stream,
            uint8_t db_slot) noexcept override;

    /// Hands a copy-out request to the worker (control thread, one producer): the worker
    /// answers it between bursts. False when its request ring is full or it has no
    /// recorder (the request is then not the worker's). The caller keeps the request alive
    /// until `done` is set or the worker has stopped.
    bool request_records(RecorderRequest* request) noexcept;
    /// The recorder (null when off); its stats are the worker's, read when it is stopped.
    const FlightRecorder* recorder() const noexcept { return recorder_.get(); }

    /// The application layer (null when off). Its counters are read like the worker's.
    const AppLayer* app_layer() const noexcept { return app_.get(); }

private:
    struct PayloadState;
    class DeliverySink;

    Worker(const WorkerConfig& config, WorkerShared& shared);
    void run() noexcept;
    void process_burst(const RxBinding& binding, rte_mbuf** pkts, uint16_t count) noexcept;
    static constexpr size_t kStageMarks = 5;
    /// Adds one burst's stage cycles (WorkerConfig::stage_cycles) from its TSC marks.
    void account_stages(const std::array<uint64_t, kStageMarks>& marks) noexcept;
    /// A packet's flow key, its hash signature and table position from the burst's bulk
    /// lookup (FlowTable::lookup_bulk()); valid only for packets that were looked up.
    struct FlowProbe {
        FlowKey key;
        uint32_t sig = 0;
        int32_t pos = -1;
        bool src_is_lo = false;
        bool valid = false;
    };
    /// What the burst's stages found out about one packet.
    struct BurstSlot {
        const uint8_t* frame = nullptr;  // null: chained, made contiguous in the packet step
        uint32_t len = 0;
        uint64_t time_ns = 0;
        bool decoded = false;
        BlockVerdict block = BlockVerdict::Pass;
        PacketInfo info;
        FlowProbe probe;
    };
    void decode_burst(rte_mbuf** pkts, uint16_t count) noexcept;
    /// Prefetches the lines of the flow lookup_flows() found for `slot`, if any.
    void prefetch_found_flow(const BurstSlot& slot) const noexcept;
    /// Prefetches the content state of the found flow's inspected directions (its lines
    /// were prefetched earlier: the flow is read here).
    void prefetch_payload(const BurstSlot& slot) const noexcept;
    void check_blocks(uint16_t count) noexcept;
    void lookup_flows(uint16_t count) noexcept;
    void linearize(rte_mbuf* m, BurstSlot& slot) noexcept;
    /// Returns true with `reason` set when an exception applies to the packet.
    bool handle_packet(BurstSlot& slot, ExceptionReason& reason) noexcept;
    bool handle_fragment(const uint8_t* frame, uint32_t len, const PacketInfo& info,
            uint64_t now_ns, ExceptionReason& reason) noexcept;
    bool handle_decoded(const uint8_t* frame, uint32_t len, const PacketInfo& info, uint64_t now_ns,
            ExceptionReason& reason, const FlowProbe* probe) noexcept;
    bool handle_tcp(uint32_t flow_index, unsigned dir, const PacketInfo& info, const uint8_t* frame,
            uint64_t now_ns, ExceptionReason& reason) noexcept;
    void emit_event(const Flow& flow, unsigned dir, uint64_t now_ns, WorkerEvent& event) noexcept;
    void enqueue_event(const WorkerEvent& event) noexcept;
    // The ring was full: offline (lossless), waits for the control side to drain it; live,
    // counts the event as dropped. Out of line, so that instruction counts can leave the
    // wait out (scripts/bench_callgrind.sh toggles collection off inside it).
    [[gnu::noinline, gnu::cold]] void wait_to_enqueue(WorkerEvent& event) noexcept;
    void emit_fragment_anomaly(const PacketInfo& info, uint64_t now_ns) noexcept;
    bool apply_exception(ExceptionReason reason) noexcept;
    static bool starts_new_connection(
            const Flow& flow, const PacketInfo& info, bool src_is_lo) noexcept;
    bool checksum_acceptable(const uint8_t* frame, uint32_t len, const PacketInfo& info) noexcept;
    void set_direction_roles(Flow& flow, const PacketInfo& info, bool src_is_lo) noexcept;
    PayloadState* payload_for(FlowDirection& dir) noexcept;
    void release_payload(Flow& flow, unsigned dir) noexcept;
    void emit_progress(const Flow& flow, uint64_t now_ns, bool ended) noexcept;
    void emit_findings(Flow& flow, unsigned dir, uint64_t now_ns) noexcept;
    void transmit(const RxBinding& binding, rte_mbuf** pkts, uint16_t count,
            const std::array<bool, kBurstSize>& drop) noexcept;
    /// Applies the flow verdict policy to one finding or anomaly of `flow`.
    FlowAction judge_flow(
            Flow& flow, const FlowVerdictPolicy::Entry& entry, uint32_t distinct) noexcept;
    /// Block table and flow verdict of the packet being handled (DropCause::None: pass).
    void note_policy(DropCause cause, bool shadow) noexcept;
    /// TCP resets both ways for the flow the packet `m` belongs to (live inline only).
    void send_resets(const RxBinding& binding, rte_mbuf* m) noexcept;
    uint64_t packet_time(rte_mbuf* m) noexcept;

    static constexpr unsigned kDbSlots = 4;
    enum class SlotState : uint8_t {
        Free,
        Active,   // the worker holds it (current, or streams still open on it)
        Drained,  // no stream left and not current: the control thread may release it
    };
    struct DbSlot {
        std::shared_ptr<const detectors::PatternDatabase> db;
        uint32_t streams = 0;  // worker only
        std::atomic<SlotState> state{SlotState::Free};
    };
    void adopt_offered_content() noexcept;
    /// Copy-out requests (between bursts): one step of the request being copied, a new one
    /// taken from requests_ when none is.
    void answer_requests() noexcept;
    void stream_closed(uint8_t slot) noexcept;

    WorkerConfig config_;
    WorkerShared& shared_;
    std::array<DbSlot, kDbSlots> db_slots_;
    uint8_t current_slot_ = 0;
    hs_scratch* scratch_ = nullptr;
    size_t stream_block_bytes_ = 0;
    std::atomic<ContentGeneration*> offered_{nullptr};
    std::atomic<hs_scratch*> retired_scratch_{nullptr};
    std::atomic<uint64_t> adopted_{0};
    std::atomic<const FlowVerdictPolicy*> flow_policy_{nullptr};
    const FlowVerdictPolicy* policy_ = nullptr;  // this burst's
    WorkerCounters counters_;
    std::unique_ptr<FlowTable> flows_;
    SegmentPool segments_;
    TcpReassembler reassembler_;
    IpReassembler reassembler_ip_;
    std::unique_ptr<detectors::StreamPool> stream_pool_;
    std::unique_ptr<detectors::EdmStatePool> edm_pool_;
    uint32_t object_seq_ = 0;  // numbers decoded objects' streams (Finding::origin)
    std::unique_ptr<AppLayer> app_;
    std::unique_ptr<PayloadState[]> payload_;
    std::vector<uint32_t> payload_free_;
    detectors::FindingSink findings_;
    std::unique_ptr<FlightRecorder> recorder_;
    rte_ring* requests_ = nullptr;        // RecorderRequest pointers, control thread to worker
    RecorderRequest* copying_ = nullptr;  // the request being copied out, in steps
    std::unique_ptr<uint8_t[]> linear_;   // a chained frame made contiguous for decode
    std::array<BurstSlot, kBurstSize> burst_{};
    // Cycles timed inside this burst's per-packet step (WorkerConfig::stage_cycles).
    uint64_t content_tsc_ = 0;
    uint64_t event_tsc_ = 0;
    uint64_t timed_ = 0;
    uint64_t content_timed_ = 0;
    uint64_t now_ns_ = 0;
    // Time of what is being handled: the current packet, or a flow's end. Events carry it
    // (now_ns_ is the burst's latest time: an event stamped with it could close a behaviour
    // window before the events of earlier packets of the same burst arrive).
    uint64_t event_ns_ = 0;
    // The packet being handled: what the response policy says about it.
    DropCause packet_cause_ = DropCause::None;
    bool binding_passive_ = false;
    // A drop verdict with reset was taken on this packet: its headers make the resets.
    bool reset_requested_ = false;
    bool send_reset_ = false;
    const uint8_t* reset_frame_ = nullptr;
    PacketInfo reset_info_;
    bool packet_shadow_ = false;
};

}  // namespace exfiltap::dataplane
