#include "dataplane/offline.h"

#include <sched.h>
#include <time.h>

#include <algorithm>
#include <chrono>
#include <cstring>

#include <rte_errno.h>
#include <rte_eth_ring.h>
#include <rte_ethdev.h>
#include <rte_launch.h>
#include <rte_lcore.h>
#include <rte_malloc.h>
#include <rte_mbuf.h>
#include <rte_ring.h>
#include <rte_ring_elem.h>
#include <rte_thash.h>

#include "dataplane/eal_setup.h"
#include "dataplane/event_drain.h"
#include "dataplane/mbuf_meta.h"
#include "dataplane/pcap_io.h"
#include "dataplane/wire.h"

namespace exfiltap::dataplane {

namespace {

// Entries of the redirection table a NIC would use; queue = reta[hash % size].
constexpr uint32_t kRetaSize = 128;
constexpr unsigned kRxRingSize = 1024;
constexpr unsigned kEventRingSize = 4096;
constexpr unsigned kReadBatch = 64;

uint32_t next_pow2(uint32_t v) {
    uint32_t p = 1;
    while (p < v) {
        p <<= 1;
    }
    return p;
}

// Everything DPDK-side the run creates; released in reverse order whatever happens.
struct OfflineResources {
    rte_mempool* pool = nullptr;
    std::vector<rte_ring*> rx;
    std::vector<rte_ring*> tx;
    std::vector<rte_ring*> events;
    int port = -1;

    OfflineResources() = default;
    OfflineResources(const OfflineResources&) = delete;
    OfflineResources& operator=(const OfflineResources&) = delete;
    OfflineResources(OfflineResources&&) = delete;
    OfflineResources& operator=(OfflineResources&&) = delete;
    ~OfflineResources() {
        if (port >= 0) {
            rte_eth_dev_stop(static_cast<uint16_t>(port));
            rte_eth_dev_close(static_cast<uint16_t>(port));
        }
        for (auto* list : {&rx, &tx, &events}) {
            for (rte_ring* ring : *list) {
                rte_ring_free(ring);
            }
        }
        rte_mempool_free(pool);
    }
};

Status create_resources(const OfflineOptions& options, OfflineResources& res) {
    const unsigned n = options.workers;
    const int socket = static_cast<int>(rte_socket_id());
    res.pool = rte_pktmbuf_pool_create(
            "exfiltap_offline", options.mbufs, 256, 0, RTE_MBUF_DEFAULT_BUF_SIZE, socket);
    if (res.pool == nullptr) {
        return make_error(std::string("cannot create the mbuf pool: ") + rte_strerror(rte_errno)
                + " (raise dpdk.memory_mb)");
    }
    // Tx rings hold at least as many packets as the pool, so a worker never waits on one.
    const unsigned tx_size = next_pow2(options.mbufs + 1);
    for (unsigned w = 0; w < n; ++w) {
        const std::string id = std::to_string(w);
        res.rx.push_back(rte_ring_create(
                ("exf_rx" + id).c_str(), kRxRingSize, socket, RING_F_SP_ENQ | RING_F_SC_DEQ));
        res.tx.push_back(rte_ring_create(
                ("exf_tx" + id).c_str(), tx_size, socket, RING_F_SP_ENQ | RING_F_SC_DEQ));
        res.events.push_back(rte_ring_create_elem(("exf_ev" + id).c_str(), sizeof(WorkerEvent),
                kEventRingSize, socket, RING_F_SP_ENQ | RING_F_SC_DEQ));
        if (res.rx.back() == nullptr || res.tx.back() == nullptr || res.events.back() == nullptr) {
            return make_error(
                    std::string("cannot create worker rings: ") + rte_strerror(rte_errno));
        }
    }
    // A closed ring port keeps its name for the process: each run gets its own.
    static unsigned run_count = 0;
    const std::string port_name = "net_ring_offline" + std::to_string(run_count++);
    const int port = rte_eth_from_rings(
            port_name.c_str(), res.rx.data(), n, res.tx.data(), n, static_cast<unsigned>(socket));
    if (port < 0) {
        return make_error(std::string("cannot create the ring port: ") + rte_strerror(rte_errno));
    }
    res.port = port;
    const auto port_id = static_cast<uint16_t>(port);
    // Ring ports take no RSS configuration: the reader spreads packets itself.
    rte_eth_conf conf{};
    if (rte_eth_dev_configure(port_id, static_cast<uint16_t>(n), static_cast<uint16_t>(n), &conf)
            < 0) {
        return make_error("cannot configure the ring port");
    }
    for (unsigned q = 0; q < n; ++q) {
        if (rte_eth_rx_queue_setup(port_id, static_cast<uint16_t>(q), kRxRingSize,
                    static_cast<unsigned>(socket), nullptr, res.pool)
                        < 0
                || rte_eth_tx_queue_setup(port_id, static_cast<uint16_t>(q), tx_size,
                           static_cast<unsigned>(socket), nullptr)
                        < 0) {
            return make_error("cannot set up ring port queues");
        }
    }
    if (rte_eth_dev_start(port_id) < 0) {
        return make_error("cannot start the ring port");
    }
    return Ok{};
}

// Copies a captured packet into an mbuf chain; null when the pool is empty right now.
rte_mbuf* build_mbuf(rte_mempool* pool, const CapturedPacket& pkt, uint64_t seq, int meta) {
    rte_mbuf* head = rte_pktmbuf_alloc(pool);
    if (head == nullptr) {
        return nullptr;
    }
    uint32_t copied = 0;
    rte_mbuf* last = head;
    while (true) {
        const uint32_t room = rte_pktmbuf_tailroom(last);
        const uint32_t n = std::min(room, pkt.caplen - copied);
        std::memcpy(rte_pktmbuf_mtod(last, uint8_t*), pkt.data + copied, n);
        last->data_len = static_cast<uint16_t>(n);
        copied += n;
        if (copied >= pkt.caplen) {
            break;
        }
        rte_mbuf* seg = rte_pktmbuf_alloc(pool);
        if (seg == nullptr) {
            rte_pktmbuf_free(head);
            return nullptr;
        }
        last->next = seg;
        ++head->nb_segs;
        last = seg;
    }
    head->pkt_len = pkt.caplen;
    PacketMeta& m = packet_meta(head, meta);
    m.seq = seq;
    m.time_ns = pkt.time_ns;
    m.wire_len = pkt.wire_len;
    m.flags = 0;
    return head;
}

// Puts a packet back in capture order and writes every packet that is now next.
class OrderedWriter {
public:
    OrderedWriter(uint32_t slots, PcapWriter* writer, int meta)
        : slots_(next_pow2(slots + 1)), mask_(slots_.size() - 1), writer_(writer), meta_(meta) {}

    void put(rte_mbuf* m) { slots_[packet_meta(m, meta_).seq & mask_] = m; }

    void write_ready(OfflineResult& result) {
        while (rte_mbuf* m = slots_[next_ & mask_]) {
            slots_[next_ & mask_] = nullptr;
            const PacketMeta& meta = packet_meta(m, meta_);
            if ((meta.flags & kMetaDropped) != 0) {
                ++result.packets_dropped;
            } else {
                if (writer_ != nullptr) {
                    const uint32_t len = rte_pktmbuf_pkt_len(m);
                    if (flat_.size() < len) {
                        flat_.resize(len);  // main lcore, once per new largest frame
                    }
                    const auto* data =
                            static_cast<const uint8_t*>(rte_pktmbuf_read(m, 0, len, flat_.data()));
                    writer_->write(meta.time_ns, len, meta.wire_len, data);
                }
                ++result.packets_written;
            }
            rte_pktmbuf_free(m);
            ++next_;
        }
    }

    uint64_t next() const { return next_; }

private:
    std::vector<rte_mbuf*> slots_;
    size_t mask_;
    PcapWriter* writer_;
    int meta_;
    uint64_t next_ = 0;
    std::vector<uint8_t> flat_ = std::vector<uint8_t>(65536);
};

void pause_briefly() {
    const timespec pause{0, 50 * 1000};
    nanosleep(&pause, nullptr);
}

}  // namespace

uint32_t symmetric_rss_hash(const uint8_t* frame, uint32_t len) noexcept {
    PacketInfo info;
    decode_packet(frame, len, info);
    if (info.ip_version == 4 && info.l3_offset != 0) {
        std::array<uint32_t, 2> tuple = {
                wire::load32(info.src.data()), wire::load32(info.dst.data())};
        return rte_softrss(tuple.data(), tuple.size(), kSymmetricRssKey.data());
    }
    if (info.ip_version == 6) {
        std::array<uint32_t, 8> tuple{};
        for (size_t i = 0; i < 4; ++i) {
            tuple[i] = wire::load32(info.src.data() + 4 * i);
            tuple[4 + i] = wire::load32(info.dst.data() + 4 * i);
        }
        return rte_softrss(tuple.data(), tuple.size(), kSymmetricRssKey.data());
    }
    return 0;
}

bool PcapFileSource::next(CapturedPacket& packet, uint32_t& rss_hash) {
    if (!reader_.next(packet)) {
        return false;
    }
    rss_hash = symmetric_rss_hash(packet.data, packet.caplen);
    return true;
}

Result<std::unique_ptr<MemorySource>> MemorySource::load(const std::string& path) {
    auto reader = PcapReader::open(path);
    if (!reader) {
        return make_error(reader.error());
    }
    std::unique_ptr<MemorySource> source(new MemorySource());
    source->datalink_ = reader->datalink();
    source->snaplen_ = reader->snaplen();
    source->nanosecond_ = reader->nanosecond();
    CapturedPacket pkt;
    while (reader->next(pkt)) {
        source->records_.push_back(Record{source->bytes_.size(), pkt.time_ns, pkt.caplen,
                pkt.wire_len, symmetric_rss_hash(pkt.data, pkt.caplen)});
        source->bytes_.insert(source->bytes_.end(), pkt.data, pkt.data + pkt.caplen);
    }
    if (!reader->error().empty()) {
        return make_error("error reading " + path + ": " + reader->error());
    }
    return source;
}

bool MemorySource::next(CapturedPacket& packet, uint32_t& rss_hash) {
    if (next_ >= records_.size()) {
        return false;
    }
    const Record& r = records_[next_++];
    packet.time_ns = r.time_ns;
    packet.caplen = r.caplen;
    packet.wire_len = r.wire_len;
    packet.data = bytes_.data() + r.offset;
    rss_hash = r.hash;
    return true;
}

uint64_t packet_time_watermark(const std::vector<Worker*>& workers) noexcept {
    uint64_t lowest = UINT64_MAX;
    for (const Worker* w : workers) {
        lowest = std::min(lowest, w->counters().packet_time_ns.get());
    }
    return workers.empty() ? 0 : lowest;
}

Result<OfflineResult> run_offline(
        const OfflineOptions& options, std::vector<std::unique_ptr<Worker>>& workers) {
    auto reader = PcapReader::open(options.input);
    if (!reader) {
        return make_error(reader.error());
    }
    PcapFileSource source(std::move(*reader));
    return run_offline(options, source, workers);
}

Result<OfflineResult> run_offline(const OfflineOptions& options, PacketSource& source,
        std::vector<std::unique_ptr<Worker>>& workers) {
    if (!register_packet_meta()) {
        return make_error("cannot register the mbuf dynamic field");
    }
    const int meta = packet_meta_offset();
    PcapWriter writer;
    if (!options.output.empty()) {
        auto opened = PcapWriter::open(
                options.output, source.datalink(), source.snaplen(), source.nanosecond());
        if (!opened) {
            return make_error(opened.error());
        }
        writer = std::move(*opened);
    }
    OfflineResources res;
    if (Status st = create_resources(options, res); !st) {
        return make_error(st.error());
    }
    const std::vector<unsigned> lcores = worker_lcores();
    if (lcores.size() < options.workers) {
        return make_error("not enough worker lcores");
    }

    // Workers.
    WorkerShared shared;
    workers.clear();
    for (unsigned w = 0; w < options.workers; ++w) {
        WorkerConfig config = options.worker;
        config.id = w;
        const auto port = static_cast<uint16_t>(res.port);
        const auto queue = static_cast<uint16_t>(w);
        config.rx = {RxBinding{port, queue, false, port, queue}};
        config.lossless = true;
        config.meta_offset = meta;
        config.events = res.events[w];
        config.scratch = w < options.scratches.size() ? options.scratches[w] : nullptr;
        const char* error = nullptr;
        auto worker = Worker::create(config, shared, &error);
        if (worker == nullptr) {
            return make_error(error != nullptr ? error : "cannot create worker");
        }
        workers.push_back(std::move(worker));
    }
    std::vector<Worker*> worker_list;
    for (unsigned w = 0; w < options.workers; ++w) {
        worker_list.push_back(workers[w].get());
        rte_eal_remote_launch(Worker::lcore_main, workers[w].get(), lcores[w]);
    }

    OfflineResult result;
    result.nanosecond = source.nanosecond();
    std::array<uint16_t, kRetaSize> reta{};
    for (uint32_t i = 0; i < kRetaSize; ++i) {
        reta[i] = static_cast<uint16_t>(i % options.workers);
    }
    OrderedWriter ordered(options.mbufs, options.output.empty() ? nullptr : &writer, meta);
    auto drain = [&]() {
        return drain_events(res.events, options.on_event);
    };

    const auto start = std::chrono::steady_clock::now();
    CapturedPacket pkt;
    uint32_t pkt_hash = 0;
    uint64_t read_limit = UINT64_MAX;
    bool have_pkt = false;
    bool eof = false;
    uint64_t seq = 0;
    rte_mbuf* pending = nullptr;
    unsigned pending_worker = 0;
    std::array<rte_mbuf*, kReadBatch> drained{};
    while (true) {
        bool progress = false;

        // Control work, which may hold reading at a point of the capture.
        if (options.on_tick) {
            read_limit = options.on_tick(
                    {result.packets_read, ordered.next(), packet_time_watermark(worker_list)},
                    worker_list);
        }

        // Read and enqueue.
        for (unsigned i = 0; i < kReadBatch && !eof && result.packets_read < read_limit; ++i) {
            if (pending == nullptr) {
                if (!have_pkt) {
                    if (!source.next(pkt, pkt_hash)) {
                        eof = true;
                        break;
                    }
                    have_pkt = true;
                }
                pending = build_mbuf(res.pool, pkt, seq, meta);
                if (pending == nullptr) {
                    break;  // pool empty: the writer frees mbufs below
                }
                pending_worker = reta[pkt_hash % kRetaSize];
            }
            if (rte_ring_enqueue(res.rx[pending_worker], pending) != 0) {
                break;  // ring full: drain instead of spinning
            }
            ++seq;
            ++result.packets_read;
            result.bytes_read += pkt.caplen;
            if (result.first_ns == 0) {
                result.first_ns = pkt.time_ns;
            }
            result.last_ns = std::max(result.last_ns, pkt.time_ns);
            shared.time_watermark_ns.store(pkt.time_ns, std::memory_order_release);
            pending = nullptr;
            have_pkt = false;
            progress = true;
        }

        // Collect what the workers transmitted and write it in capture order.
        for (rte_ring* ring : res.tx) {
            const unsigned n = rte_ring_dequeue_burst(
                    ring, reinterpret_cast<void**>(drained.data()), drained.size(), nullptr);
            for (unsigned i = 0; i < n; ++i) {
                ordered.put(drained[i]);
            }
            progress = progress || n > 0;
        }
        ordered.write_ready(result);

        // Worker events: drained empty, then time moves to what the workers had reached
        // before (a worker reports its time only after its burst's events are queued).
        const uint64_t reached = packet_time_watermark(worker_list);
        while (drain()) {
            progress = true;
        }
        if (options.on_time) {
            options.on_time(reached);
        }

        if (eof && ordered.next() == seq) {
            break;
        }
        if (!progress) {
            pause_briefly();
        }
    }
    // A damaged file (a capture cut mid-record by a killed tcpdump) still gets every packet
    // before the damage processed and summarised; the caller reports the error.
    result.read_error = source.error();

    // End of capture: workers flush every flow, then stop.
    shared.finish.store(true, std::memory_order_release);
    while (true) {
        const bool any = drain();
        if (options.on_tick) {
            options.on_tick(
                    {result.packets_read, ordered.next(), packet_time_watermark(worker_list)},
                    worker_list);
        }
        bool all_done = true;
        for (const auto& worker : workers) {
            all_done = all_done && worker->counters().finished.get() != 0;
        }
        if (all_done && !any) {
            break;
        }
        if (!any) {
            pause_briefly();
        }
    }
    shared.stop.store(true, std::memory_order_release);
    rte_eal_mp_wait_lcore();
    drain();
    rte_malloc_socket_stats heap{};
    if (rte_malloc_get_socket_stats(static_cast<int>(rte_socket_id()), &heap) == 0) {
        result.dpdk_heap_bytes = heap.heap_allocsz_bytes;
    }
    result.elapsed_s =
            std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (!options.output.empty() && !writer.close()) {
        return make_error("error writing " + options.output);
    }
    for (const auto& worker : workers) {
        result.counters.push_back(&worker->counters());
        result.reassembly.push_back(&worker->reassembly_stats());
        result.edm.push_back(&worker->edm_counters());
        if (worker->app_layer() != nullptr) {
            result.app.push_back(&worker->app_layer()->counters());
        }
    }
    return result;
}

}  // namespace exfiltap::dataplane
