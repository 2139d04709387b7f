#include "tests/bench/bench_harness.h"

#include <time.h>

#include <algorithm>
#include <chrono>
#include <cstring>

#include <hs/hs.h>
#include <rte_cycles.h>
#include <rte_errno.h>
#include <rte_eth_ring.h>
#include <rte_ethdev.h>
#include <rte_launch.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>
#include <rte_ring.h>
#include <rte_ring_elem.h>

#include "dataplane/eal_setup.h"
#include "dataplane/event_drain.h"
#include "dataplane/mbuf_meta.h"
#include "dataplane/offline.h"

namespace exfiltap::bench {

namespace {

constexpr unsigned kRxRingSize = 4096;
constexpr unsigned kEventRingSize = 4096;
constexpr uint32_t kRetaSize = 128;  // as dataplane/offline.cc: queue = reta[hash % 128]
constexpr unsigned kFeedBurst = 32;

uint32_t next_pow2(uint32_t v) {
    uint32_t p = 1;
    while (p < v) {
        p <<= 1;
    }
    return p;
}

// Everything DPDK-side one run creates, released in reverse order whatever happens.
struct Resources {
    rte_mempool* pool = nullptr;
    std::vector<rte_mbuf*> mbufs;
    std::vector<rte_ring*> rx;
    std::vector<rte_ring*> tx;
    std::vector<rte_ring*> events;
    int port = -1;

    Resources() = default;
    Resources(const Resources&) = delete;
    Resources& operator=(const Resources&) = delete;
    Resources(Resources&&) = delete;
    Resources& operator=(Resources&&) = delete;
    ~Resources() {
        if (port >= 0) {
            rte_eth_dev_stop(static_cast<uint16_t>(port));
            rte_eth_dev_close(static_cast<uint16_t>(port));
        }
        for (auto* list : {&rx, &tx, &events}) {
            for (rte_ring* ring : *list) {
                rte_ring_free(ring);
            }
        }
        if (!mbufs.empty()) {
            rte_pktmbuf_free_bulk(mbufs.data(), static_cast<unsigned>(mbufs.size()));
        }
        rte_mempool_free(pool);
    }
};

Status create_port(unsigned workers, uint32_t frames, Resources& res) {
    static unsigned run_count = 0;
    const std::string run = std::to_string(run_count++);
    const int socket = static_cast<int>(rte_socket_id());
    const unsigned tx_size = next_pow2(frames + 1);
    for (unsigned w = 0; w < workers; ++w) {
        const std::string id = run + "_" + std::to_string(w);
        res.rx.push_back(rte_ring_create(
                ("bench_rx" + id).c_str(), kRxRingSize, socket, RING_F_SP_ENQ | RING_F_SC_DEQ));
        res.tx.push_back(rte_ring_create(
                ("bench_tx" + id).c_str(), tx_size, socket, RING_F_SP_ENQ | RING_F_SC_DEQ));
        res.events.push_back(
                rte_ring_create_elem(("bench_ev" + id).c_str(), sizeof(dataplane::WorkerEvent),
                        kEventRingSize, socket, RING_F_SP_ENQ | RING_F_SC_DEQ));
        if (res.rx.back() == nullptr || res.tx.back() == nullptr || res.events.back() == nullptr) {
            return make_error(std::string("cannot create rings: ") + rte_strerror(rte_errno));
        }
    }
    const int port = rte_eth_from_rings(("net_ring_bench" + run).c_str(), res.rx.data(), workers,
            res.tx.data(), workers, static_cast<unsigned>(socket));
    if (port < 0) {
        return make_error(std::string("cannot create the ring port: ") + rte_strerror(rte_errno));
    }
    res.port = port;
    const auto id = static_cast<uint16_t>(port);
    rte_eth_conf conf{};
    if (rte_eth_dev_configure(
                id, static_cast<uint16_t>(workers), static_cast<uint16_t>(workers), &conf)
            < 0) {
        return make_error("cannot configure the ring port");
    }
    for (unsigned q = 0; q < workers; ++q) {
        if (rte_eth_rx_queue_setup(id, static_cast<uint16_t>(q), kRxRingSize,
                    static_cast<unsigned>(socket), nullptr, res.pool)
                        < 0
                || rte_eth_tx_queue_setup(id, static_cast<uint16_t>(q), tx_size,
                           static_cast<unsigned>(socket), nullptr)
                        < 0) {
            return make_error("cannot set up ring port queues");
        }
    }
    if (rte_eth_dev_start(id) < 0) {
        return make_error("cannot start the ring port");
    }
    return Ok{};
}

struct Snapshot {
    uint64_t busy_cycles = 0;
    uint64_t busy_packets = 0;
    std::array<uint64_t, kStageCount> stage{};
    uint64_t timers = 0;
    uint64_t content_timers = 0;
    uint64_t scanned = 0;
    uint64_t created = 0;
    uint64_t evicted = 0;
    uint64_t findings = 0;
    uint64_t exceptions = 0;
    uint64_t retransmitted = 0;
    std::vector<uint64_t> packets;
};

Snapshot snapshot(const std::vector<std::unique_ptr<dataplane::Worker>>& workers) {
    Snapshot s;
    for (const auto& w : workers) {
        const dataplane::WorkerCounters& c = w->counters();
        s.busy_cycles += c.busy_cycles.get();
        s.busy_packets += c.busy_packets.get();
        for (size_t i = 0; i < kStageCount; ++i) {
            s.stage[i] += c.stage_cycles[i].get();
        }
        s.timers += c.stage_timers.get();
        s.content_timers += c.content_timers.get();
        s.scanned += c.scanned_bytes.get();
        s.created += c.flows_created.get();
        s.evicted += c.flows_evicted_full.get();
        for (const Counter& n : c.findings) {
            s.findings += n.get();
        }
        for (const Counter& n : c.exceptions) {
            s.exceptions += n.get();
        }
        s.retransmitted += c.retransmitted_bytes.get();
        s.packets.push_back(c.rx_packets.get());
    }
    return s;
}

void pause_briefly() {
    const timespec pause{0, 20 * 1000};
    nanosleep(&pause, nullptr);
}

}  // namespace

double RunFigures::median_pass_cycles() const {
    if (pass_cycles_per_packet.empty()) {
        return cycles_per_packet();
    }
    std::vector<double> sorted = pass_cycles_per_packet;
    std::sort(sorted.begin(), sorted.end());
    return sorted[sorted.size() / 2];
}

void RunFigures::merge(const RunFigures& other) {
    packets += other.packets;
    bytes += other.bytes;
    seconds += other.seconds;
    busy_cycles += other.busy_cycles;
    busy_packets += other.busy_packets;
    all_busy_packets += other.all_busy_packets;
    for (size_t i = 0; i < kStageCount; ++i) {
        stage_cycles[i] += other.stage_cycles[i];
    }
    stage_timers += other.stage_timers;
    content_timers += other.content_timers;
    scanned_bytes += other.scanned_bytes;
    flows_created += other.flows_created;
    flows_evicted += other.flows_evicted;
    findings += other.findings;
    exceptions += other.exceptions;
    retransmitted_bytes += other.retransmitted_bytes;
    events += other.events;
    per_worker_packets.resize(std::max(per_worker_packets.size(), other.per_worker_packets.size()));
    for (size_t w = 0; w < other.per_worker_packets.size(); ++w) {
        per_worker_packets[w] += other.per_worker_packets[w];
    }
    pass_cycles_per_packet.insert(pass_cycles_per_packet.end(),
            other.pass_cycles_per_packet.begin(), other.pass_cycles_per_packet.end());
}

void ScanLimit::merge(const ScanLimit& other) {
    const unsigned all = passes + other.passes;
    if (all > 0) {
        cycles_per_packet =
                (cycles_per_packet * passes + other.cycles_per_packet * other.passes) / all;
    }
    bytes += other.bytes;
    matches += other.matches;
    passes = all;
}

double RunFigures::best_pass_cycles() const {
    if (pass_cycles_per_packet.empty()) {
        return cycles_per_packet();
    }
    return *std::min_element(pass_cycles_per_packet.begin(), pass_cycles_per_packet.end());
}

Result<RunFigures> run_traffic(const Traffic& traffic, const RunOptions& options) {
    if (!dataplane::register_packet_meta()) {
        return make_error("cannot register the mbuf dynamic field");
    }
    const int meta = dataplane::packet_meta_offset();
    const auto frames = static_cast<uint32_t>(traffic.frames.size());
    const unsigned n = options.workers;
    const std::vector<unsigned> lcores = dataplane::worker_lcores();
    if (lcores.size() < n) {
        return make_error("not enough worker lcores");
    }
    if (traffic.max_len + RTE_PKTMBUF_HEADROOM > UINT16_MAX) {
        return make_error("a frame does not fit one mbuf");
    }

    // Preload: one mbuf per frame, its queue from the symmetric Toeplitz hash.
    Resources res;
    static unsigned pool_count = 0;
    const auto room =
            static_cast<uint16_t>(std::max<uint32_t>(traffic.max_len, 128) + RTE_PKTMBUF_HEADROOM);
    res.pool = rte_pktmbuf_pool_create(("bench_pool" + std::to_string(pool_count++)).c_str(),
            frames + 1024, 256, 0, room, static_cast<int>(rte_socket_id()));
    if (res.pool == nullptr) {
        return make_error(std::string("cannot create the mbuf pool: ") + rte_strerror(rte_errno)
                + " (raise --memory-mb)");
    }
    res.mbufs.resize(frames);
    if (rte_pktmbuf_alloc_bulk(res.pool, res.mbufs.data(), frames) != 0) {
        res.mbufs.clear();
        return make_error("cannot allocate the preloaded mbufs");
    }
    std::vector<uint8_t> queue(frames);
    uint64_t pass_bytes = 0;
    for (uint32_t i = 0; i < frames; ++i) {
        const Frame& f = traffic.frames[i];
        rte_mbuf* m = res.mbufs[i];
        std::memcpy(rte_pktmbuf_mtod(m, uint8_t*), traffic.bytes.data() + f.offset, f.len);
        m->data_len = static_cast<uint16_t>(f.len);
        m->pkt_len = f.len;
        pass_bytes += f.len;
        const uint32_t hash = dataplane::symmetric_rss_hash(traffic.bytes.data() + f.offset, f.len);
        queue[i] = static_cast<uint8_t>((hash % kRetaSize) % n);
    }
    if (Status st = create_port(n, frames, res); !st) {
        return make_error(st.error());
    }

    // Workers: the real ones, on the ring port's queues.
    dataplane::WorkerShared shared;
    std::vector<std::unique_ptr<dataplane::Worker>> workers;
    for (unsigned w = 0; w < n; ++w) {
        dataplane::WorkerConfig config = options.worker;
        config.id = w;
        const auto port = static_cast<uint16_t>(res.port);
        const auto q = static_cast<uint16_t>(w);
        config.rx = {dataplane::RxBinding{port, q, false, port, q}};
        config.lossless = true;
        config.meta_offset = meta;
        config.events = res.events[w];
        config.scratch = w < options.scratches.size() ? options.scratches[w] : nullptr;
        const char* error = nullptr;
        auto worker = dataplane::Worker::create(config, shared, &error);
        if (worker == nullptr) {
            return make_error(error != nullptr ? error : "cannot create a worker");
        }
        workers.push_back(std::move(worker));
    }
    for (unsigned w = 0; w < n; ++w) {
        rte_eal_remote_launch(dataplane::Worker::lcore_main, workers[w].get(), lcores[w]);
    }

    uint64_t events = 0;
    const std::function<void(const dataplane::WorkerEvent&)> count_event =
            [&events, &options](const dataplane::WorkerEvent& event) {
                ++events;
                if (options.on_event) {
                    options.on_event(event);
                }
            };
    std::vector<rte_mbuf*> back(1024);
    auto collect = [&]() {
        uint64_t got = 0;
        for (rte_ring* ring : res.tx) {
            got += rte_ring_dequeue_burst(ring, reinterpret_cast<void**>(back.data()),
                    static_cast<unsigned>(back.size()), nullptr);
        }
        dataplane::drain_events(res.events, count_event);
        return got;
    };

    const unsigned total_passes = options.warm_passes + options.passes;
    Snapshot before;
    Snapshot last_pass;
    std::vector<double> pass_cycles;
    auto started = std::chrono::steady_clock::now();
    for (unsigned pass = 0; pass < total_passes; ++pass) {
        if (pass == options.warm_passes) {
            before = snapshot(workers);
            last_pass = before;
            events = 0;
            started = std::chrono::steady_clock::now();
        }
        // Change the returned mbufs for this pass (main thread; workers hold none).
        const uint64_t base_ns = 1000000000ULL + pass * traffic.pass_ns;
        for (uint32_t i = 0; i < frames; ++i) {
            rte_mbuf* m = res.mbufs[i];
            if (pass > 0) {
                change_frame(rte_pktmbuf_mtod(m, uint8_t*), m->data_len, traffic.change,
                        traffic.frames[i], pass);
            }
            dataplane::PacketMeta& pm = dataplane::packet_meta(m, meta);
            pm.seq = uint64_t{pass} * frames + i;
            pm.time_ns = base_ns + traffic.frames[i].time_ns;
            pm.wire_len = m->pkt_len;
            pm.flags = 0;
        }
        // Feed in frame order, a burst per queue at a time; collect what comes back.
        std::vector<std::array<rte_mbuf*, kFeedBurst>> staged(n);
        std::vector<unsigned> count(n, 0);
        uint64_t returned = 0;
        auto flush = [&](unsigned w) {
            unsigned done = 0;
            while (done < count[w]) {
                done += rte_ring_enqueue_burst(res.rx[w],
                        reinterpret_cast<void* const*>(staged[w].data() + done), count[w] - done,
                        nullptr);
                if (done < count[w]) {
                    returned += collect();
                }
            }
            count[w] = 0;
        };
        for (uint32_t i = 0; i < frames; ++i) {
            const unsigned w = queue[i];
            staged[w][count[w]++] = res.mbufs[i];
            if (count[w] == kFeedBurst) {
                flush(w);
            }
        }
        for (unsigned w = 0; w < n; ++w) {
            flush(w);
        }
        while (returned < frames) {
            const uint64_t got = collect();
            returned += got;
            if (got == 0) {
                pause_briefly();
            }
        }
        shared.time_watermark_ns.store(base_ns + traffic.pass_ns, std::memory_order_release);
        if (pass >= options.warm_passes) {
            const Snapshot now = snapshot(workers);
            const uint64_t packets = now.busy_packets - last_pass.busy_packets;
            pass_cycles.push_back(packets > 0
                            ? static_cast<double>(now.busy_cycles - last_pass.busy_cycles)
                                    / static_cast<double>(packets)
                            : 0);
            last_pass = now;
        }
    }
    const double seconds =
            std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    const Snapshot after = snapshot(workers);
    const uint64_t measured_events = events;

    // End: workers flush their flows (events drained meanwhile), then stop.
    shared.finish.store(true, std::memory_order_release);
    while (true) {
        const uint64_t got = collect();
        bool done = true;
        for (const auto& w : workers) {
            done = done && w->counters().finished.get() != 0;
        }
        if (done && got == 0 && !dataplane::drain_events(res.events, count_event)) {
            break;
        }
        pause_briefly();
    }
    shared.stop.store(true, std::memory_order_release);
    for (unsigned w = 0; w < n; ++w) {
        rte_eal_wait_lcore(lcores[w]);
    }
    dataplane::drain_events(res.events, count_event);

    RunFigures f;
    f.packets = uint64_t{frames} * options.passes;
    f.bytes = pass_bytes * options.passes;
    f.seconds = seconds;
    f.busy_cycles = after.busy_cycles - before.busy_cycles;
    f.busy_packets = after.busy_packets - before.busy_packets;
    f.all_busy_packets = after.busy_packets;
    for (size_t i = 0; i < kStageCount; ++i) {
        f.stage_cycles[i] = after.stage[i] - before.stage[i];
    }
    f.stage_timers = after.timers - before.timers;
    f.content_timers = after.content_timers - before.content_timers;
    f.scanned_bytes = after.scanned - before.scanned;
    f.flows_created = after.created - before.created;
    f.flows_evicted = after.evicted - before.evicted;
    f.findings = after.findings - before.findings;
    f.exceptions = after.exceptions - before.exceptions;
    f.retransmitted_bytes = after.retransmitted - before.retransmitted;
    f.events = measured_events;
    f.pass_cycles_per_packet = pass_cycles;
    for (size_t w = 0; w < after.packets.size(); ++w) {
        f.per_worker_packets.push_back(after.packets[w] - before.packets[w]);
    }
    // Streams opened by the workers go back to their pools on this thread's destructor
    // calls (Worker::~Worker binds the pool).
    workers.clear();
    return f;
}

namespace {

int count_match(unsigned, unsigned long long, unsigned long long, unsigned, void* context) {
    ++*static_cast<uint64_t*>(context);
    return 0;
}

struct Segment {
    uint32_t stream;
    const char* data;
    uint32_t len;
};

// Hyperscan alone, run on a worker lcore so that it has the core the pipeline had.
struct ScanJob {
    const std::vector<Segment>* segments = nullptr;
    std::vector<hs_stream_t*>* streams = nullptr;
    hs_scratch* scratch = nullptr;
    unsigned warm_passes = 0;
    unsigned passes = 0;
    uint64_t cycles = 0;
    uint64_t matches = 0;
    bool failed = false;
};

int scan_segments(void* arg) {
    auto& job = *static_cast<ScanJob*>(arg);
    uint64_t warm_matches = 0;
    for (unsigned pass = 0; pass < job.warm_passes; ++pass) {
        for (const Segment& s : *job.segments) {
            if (hs_scan_stream((*job.streams)[s.stream], s.data, s.len, 0, job.scratch, count_match,
                        &warm_matches)
                    != HS_SUCCESS) {
                job.failed = true;
            }
        }
    }
    for (unsigned pass = 0; pass < job.passes; ++pass) {
        const uint64_t start = rte_rdtsc();
        for (const Segment& s : *job.segments) {
            if (hs_scan_stream((*job.streams)[s.stream], s.data, s.len, 0, job.scratch, count_match,
                        &job.matches)
                    != HS_SUCCESS) {
                job.failed = true;
            }
        }
        job.cycles += rte_rdtsc() - start;
    }
    return 0;
}

}  // namespace

Result<ScanLimit> hyperscan_alone(const Traffic& traffic, unsigned warm_passes, unsigned passes,
        hs_database* db, hs_scratch* scratch, unsigned lcore) {
    ScanLimit limit;
    limit.passes = passes;
    if (db == nullptr || traffic.streams == 0) {
        return limit;
    }
    // Payload offsets first, so the timed loop does only the scans.
    std::vector<Segment> segments;
    for (const Frame& f : traffic.frames) {
        if (f.stream == UINT32_MAX) {
            continue;
        }
        dataplane::PacketInfo p;
        const uint8_t* frame = traffic.bytes.data() + f.offset;
        if (dataplane::decode_packet(frame, f.len, p) && p.payload_len > 0) {
            segments.push_back({f.stream, reinterpret_cast<const char*>(frame + p.payload_offset),
                    p.payload_len});
            limit.bytes += uint64_t{p.payload_len} * passes;
        }
    }
    // Streams are opened and closed on this thread (Hyperscan's allocator falls back to
    // malloc here: a worker lcore may still point at the pool of a worker that is gone).
    std::vector<hs_stream_t*> streams(traffic.streams, nullptr);
    bool opened = true;
    for (hs_stream_t*& s : streams) {
        opened = opened && hs_open_stream(db, 0, &s) == HS_SUCCESS;
    }
    ScanJob job{&segments, &streams, scratch, warm_passes, passes};
    if (opened) {
        if (lcore != 0 && rte_eal_remote_launch(scan_segments, &job, lcore) == 0) {
            rte_eal_wait_lcore(lcore);
        } else {
            scan_segments(&job);
        }
    }
    for (hs_stream_t* s : streams) {
        if (s != nullptr) {
            hs_close_stream(s, scratch, nullptr, nullptr);
        }
    }
    if (!opened || job.failed) {
        return make_error("Hyperscan alone: a stream could not be opened or scanned");
    }
    limit.matches = job.matches;
    const double packets = static_cast<double>(traffic.frames.size()) * passes;
    limit.cycles_per_packet = packets > 0 ? static_cast<double>(job.cycles) / packets : 0;
    return limit;
}

double rdtsc_pair_cycles() {
    constexpr int kRounds = 100000;
    uint64_t sum = 0;
    for (int i = 0; i < kRounds; ++i) {
        const uint64_t a = rte_rdtsc();
        const uint64_t b = rte_rdtsc();
        sum += b - a;
    }
    return static_cast<double>(sum) / kRounds;
}

// Fills the block table with addresses no scenario uses (198.18.0.0/15 and 3fff::/20 past
// it), so lookups cost what a full table costs without dropping the traffic.
Status fill_blocks(dataplane::BlockTable& table, uint32_t exact, uint32_t prefixes) {
    for (uint32_t i = 0; i < exact; ++i) {
        std::array<uint8_t, 16> addr{};
        if (i < (1U << 17)) {
            addr = {198, static_cast<uint8_t>(18 + ((i >> 16) & 1U)), static_cast<uint8_t>(i >> 8),
                    static_cast<uint8_t>(i)};
            if (auto slot = table.add_exact(4, addr); !slot) {
                return make_error(slot.error());
            }
            continue;
        }
        addr = {0x3f, 0xff, 0x0f, 0xff};
        for (unsigned b = 0; b < 4; ++b) {
            addr[12 + b] = static_cast<uint8_t>(i >> (24 - 8 * b));
        }
        if (auto slot = table.add_exact(6, addr); !slot) {
            return make_error(slot.error());
        }
    }
    for (uint32_t i = 0; i < prefixes; ++i) {
        std::array<uint8_t, 16> addr{0x3f, 0xff, 0x00, 0x00};
        addr[4] = static_cast<uint8_t>(i >> 8);
        addr[5] = static_cast<uint8_t>(i);
        if (auto slot = table.stage_prefix(6, addr, 48, false); !slot) {
            return make_error(slot.error());
        }
    }
    if (prefixes > 0) {
        if (auto stats = table.commit_prefixes(); !stats) {
            return make_error(stats.error());
        }
    }
    return Ok{};
}

}  // namespace exfiltap::bench
