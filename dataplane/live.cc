#include "dataplane/live.h"

#include <time.h>

#include <algorithm>
#include <array>
#include <chrono>

#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_launch.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>
#include <rte_ring.h>
#include <rte_ring_elem.h>

#include "dataplane/eal_setup.h"
#include "dataplane/event_drain.h"

namespace exfiltap::dataplane {

namespace {

constexpr unsigned kEventRingSize = 16384;
constexpr uint64_t kTickNs = 1000000;  // control work about every millisecond

uint64_t wall_ns() {
    timespec now{};
    clock_gettime(CLOCK_REALTIME, &now);
    return static_cast<uint64_t>(now.tv_sec) * 1000000000ULL + static_cast<uint64_t>(now.tv_nsec);
}

Status configure_port(const LivePortsOptions& options, rte_mempool* pool, LivePort& port,
        std::vector<std::string>& notes) {
    rte_eth_dev_info info{};
    if (rte_eth_dev_info_get(port.port_id, &info) != 0) {
        return make_error("port " + port.name + ": cannot read device information");
    }
    const auto wanted = static_cast<uint16_t>(options.workers);
    port.queues = std::min({wanted, info.max_rx_queues, info.max_tx_queues});
    if (port.queues == 0) {
        return make_error("port " + port.name + " (" + port.device + ") has no queues");
    }
    if (port.queues < wanted) {
        notes.push_back("port " + port.name + " has " + std::to_string(port.queues)
                + " queue pair(s) for " + std::to_string(wanted)
                + " workers; the workers beyond them do not poll it");
    }
    rte_eth_conf conf{};
    uint64_t hash_functions = RTE_ETH_RSS_IP;
    if (options.rss_l4) {
        hash_functions |= RTE_ETH_RSS_TCP | RTE_ETH_RSS_UDP;
    }
    hash_functions &= info.flow_type_rss_offloads;
    if (port.queues > 1 && hash_functions != 0) {
        conf.rxmode.mq_mode = RTE_ETH_MQ_RX_RSS;
        conf.rx_adv_conf.rss_conf.rss_key = const_cast<uint8_t*>(kSymmetricRssKey.data());
        conf.rx_adv_conf.rss_conf.rss_key_len = kSymmetricRssKey.size();
        conf.rx_adv_conf.rss_conf.rss_hf = hash_functions;
        port.rss = true;
    } else if (port.queues > 1) {
        notes.push_back("port " + port.name
                + " has no RSS: the device spreads packets over its queues itself (for "
                  "net_af_packet, the kernel's symmetric fanout hash)");
    }
    if (rte_eth_dev_configure(port.port_id, port.queues, port.queues, &conf) < 0) {
        return make_error("port " + port.name + ": cannot configure " + std::to_string(port.queues)
                + " queue pair(s): " + rte_strerror(rte_errno));
    }
    uint16_t rx_desc = options.rx_descriptors;
    uint16_t tx_desc = options.tx_descriptors;
    if (rte_eth_dev_adjust_nb_rx_tx_desc(port.port_id, &rx_desc, &tx_desc) != 0) {
        return make_error("port " + port.name + ": descriptor counts refused");
    }
    const int socket = rte_eth_dev_socket_id(port.port_id);
    const unsigned on = static_cast<unsigned>(socket < 0 ? 0 : socket);
    for (uint16_t q = 0; q < port.queues; ++q) {
        if (rte_eth_rx_queue_setup(port.port_id, q, rx_desc, on, nullptr, pool) < 0
                || rte_eth_tx_queue_setup(port.port_id, q, tx_desc, on, nullptr) < 0) {
            return make_error("port " + port.name + ": cannot set up queue " + std::to_string(q)
                    + ": " + rte_strerror(rte_errno));
        }
    }
    if (rte_eth_dev_start(port.port_id) < 0) {
        return make_error("port " + port.name + ": cannot start: " + rte_strerror(rte_errno));
    }
    // A tap sees every frame on the wire, not only those addressed to it.
    if (rte_eth_promiscuous_enable(port.port_id) != 0) {
        notes.push_back("port " + port.name + ": promiscuous mode not available");
    }
    return Ok{};
}

void pause_briefly() {
    const timespec pause{0, 100 * 1000};
    nanosleep(&pause, nullptr);
}

}  // namespace

bool is_virtual_device(const std::string& device) {
    return device.rfind("net_", 0) == 0 || device.rfind("eth_", 0) == 0;
}

std::string device_name(const std::string& device) {
    return device.substr(0, device.find(','));
}

Result<std::unique_ptr<LivePorts>> LivePorts::open(const LivePortsOptions& options) {
    std::unique_ptr<LivePorts> ports(new LivePorts());
    std::vector<PortSpec> specs;
    std::vector<int> peers;
    for (const auto& [a, b] : options.pairs) {
        const int base = static_cast<int>(specs.size());
        specs.push_back(a);
        peers.push_back(base + 1);
        specs.push_back(b);
        peers.push_back(base);
    }
    for (const PortSpec& spec : options.passive) {
        specs.push_back(spec);
        peers.push_back(-1);
    }
    if (specs.empty()) {
        return make_error("no ports configured (ports.pairs or ports.passive)");
    }
    // Every port's rx queues hold descriptors' worth of mbufs, plus what is in flight.
    const uint32_t needed = static_cast<uint32_t>(specs.size()) * options.workers
                    * (uint32_t{options.rx_descriptors} + options.tx_descriptors)
            + 4096;
    const uint32_t mbufs = std::max(options.mbufs, needed);
    ports->pool_ = rte_pktmbuf_pool_create("exfiltap_live", mbufs, 256, 0,
            RTE_MBUF_DEFAULT_BUF_SIZE, static_cast<int>(rte_socket_id()));
    if (ports->pool_ == nullptr) {
        return make_error("cannot create the mbuf pool of " + std::to_string(mbufs)
                + " mbufs: " + rte_strerror(rte_errno) + " (raise dpdk.memory_mb)");
    }
    for (size_t i = 0; i < specs.size(); ++i) {
        LivePort port;
        port.name = specs[i].name;
        port.device = specs[i].device;
        port.peer = peers[i];
        const std::string ethdev =
                is_virtual_device(port.device) ? device_name(port.device) : port.device;
        if (rte_eth_dev_get_port_by_name(ethdev.c_str(), &port.port_id) != 0) {
            return make_error("port " + port.name + ": no device '" + ethdev
                    + "' (a virtual device that failed to probe, or a PCI device not bound "
                      "to a DPDK driver)");
        }
        if (port.port_id >= kMaxPorts) {
            return make_error("port " + port.name + ": at most " + std::to_string(kMaxPorts)
                    + " ports are supported");
        }
        ports->ports_.push_back(port);
    }
    for (LivePort& port : ports->ports_) {
        if (Status st = configure_port(options, ports->pool_, port, ports->notes_); !st) {
            return make_error(st.error());
        }
    }
    return ports;
}

LivePorts::~LivePorts() {
    for (const LivePort& port : ports_) {
        rte_eth_dev_stop(port.port_id);
        rte_eth_dev_close(port.port_id);
    }
    rte_mempool_free(pool_);
}

std::vector<RxBinding> LivePorts::bindings_for(unsigned worker) const {
    std::vector<RxBinding> out;
    for (const LivePort& port : ports_) {
        if (worker >= port.queues) {
            continue;
        }
        RxBinding binding;
        binding.port = port.port_id;
        binding.queue = static_cast<uint16_t>(worker);
        if (port.peer < 0) {
            binding.passive = true;
        } else {
            const LivePort& peer = ports_[static_cast<size_t>(port.peer)];
            binding.tx_port = peer.port_id;
            // A worker beyond the peer's queues shares its last one (tx queues are not
            // thread-safe, so this only happens with one queue and one worker).
            binding.tx_queue = static_cast<uint16_t>(std::min<unsigned>(worker, peer.queues - 1U));
        }
        out.push_back(binding);
    }
    return out;
}

LivePorts::PortStats LivePorts::stats(size_t index) const {
    PortStats out;
    const uint16_t id = ports_.at(index).port_id;
    rte_eth_stats stats{};
    if (rte_eth_stats_get(id, &stats) == 0) {
        out.missed = stats.imissed;
        out.nombuf = stats.rx_nombuf;
        out.rx_errors = stats.ierrors;
    }
    rte_eth_link link{};
    if (rte_eth_link_get_nowait(id, &link) == 0) {
        out.link_up = link.link_status == RTE_ETH_LINK_UP;
    }
    return out;
}

Result<LiveResult> run_live(const LiveOptions& options, WorkerShared& shared,
        std::vector<std::unique_ptr<Worker>>& workers) {
    if (options.ports == nullptr) {
        return make_error("run_live: no ports");
    }
    const std::vector<unsigned> lcores = worker_lcores();
    if (lcores.size() < options.workers) {
        return make_error("not enough worker lcores");
    }
    // Tx queues are single-writer: with fewer queues than workers on a port's peer, two
    // workers would share one.
    for (const LivePort& port : options.ports->ports()) {
        if (port.peer >= 0
                && options.ports->ports()[static_cast<size_t>(port.peer)].queues < options.workers
                && port.queues > 1) {
            return make_error("port " + port.name + " has more queues than its peer");
        }
    }
    std::vector<rte_ring*> events;
    struct RingGuard {
        std::vector<rte_ring*>& rings;
        ~RingGuard() {
            for (rte_ring* ring : rings) {
                rte_ring_free(ring);
            }
        }
    } guard{events};
    workers.clear();
    const int socket = static_cast<int>(rte_socket_id());
    static unsigned run_count = 0;
    const unsigned run = run_count++;
    for (unsigned w = 0; w < options.workers; ++w) {
        const std::string name = "exf_lev" + std::to_string(run) + "_" + std::to_string(w);
        rte_ring* ring = rte_ring_create_elem(name.c_str(), sizeof(WorkerEvent), kEventRingSize,
                socket, RING_F_SP_ENQ | RING_F_SC_DEQ);
        if (ring == nullptr) {
            return make_error(std::string("cannot create event ring: ") + rte_strerror(rte_errno));
        }
        events.push_back(ring);
        WorkerConfig config = options.worker;
        config.id = w;
        config.rx = options.ports->bindings_for(w);
        config.lossless = false;
        config.events = ring;
        config.scratch = w < options.scratches.size() ? options.scratches[w] : nullptr;
        const char* error = nullptr;
        auto worker = Worker::create(config, shared, &error);
        if (worker == nullptr) {
            return make_error(error != nullptr ? error : "cannot create worker");
        }
        workers.push_back(std::move(worker));
    }
    std::vector<Worker*> list;
    shared.time_watermark_ns.store(wall_ns(), std::memory_order_release);
    for (unsigned w = 0; w < options.workers; ++w) {
        list.push_back(workers[w].get());
        rte_eal_remote_launch(Worker::lcore_main, workers[w].get(), lcores[w]);
    }

    // Bounded per ring, so one busy worker cannot starve the control work.
    auto drain = [&]() {
        return drain_events(events, options.on_event, 1024);
    };

    const auto start = std::chrono::steady_clock::now();
    bool ready = false;
    uint64_t next_tick = 0;
    while (true) {
        const bool any = drain();
        const uint64_t now = wall_ns();
        // A quiet queue never stops time (DESIGN.md "Time"): live, the clock moves it.
        shared.time_watermark_ns.store(now, std::memory_order_release);
        if (!ready) {
            ready = std::all_of(list.begin(), list.end(),
                    [](const Worker* w) { return w->counters().polling.get() != 0; });
            if (ready && options.on_ready) {
                options.on_ready();
            }
        }
        if (now >= next_tick) {
            next_tick = now + kTickNs;
            if (options.on_tick && !options.on_tick(list)) {
                break;
            }
        }
        if (!any) {
            pause_briefly();
        }
    }
    // Drain: workers end every flow (pending findings and flow ends reach the control side),
    // then stop. Bounded, so a stuck port cannot hold the exit.
    shared.finish.store(true, std::memory_order_release);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (std::chrono::steady_clock::now() < deadline) {
        const bool any = drain();
        const bool done = std::all_of(list.begin(), list.end(),
                [](const Worker* w) { return w->counters().finished.get() != 0; });
        if (done && !any) {
            break;
        }
        if (!any) {
            pause_briefly();
        }
    }
    shared.stop.store(true, std::memory_order_release);
    rte_eal_mp_wait_lcore();
    drain();
    if (options.on_tick) {
        options.on_tick(list);  // the last events reach the outputs
    }
    LiveResult result;
    result.elapsed_s =
            std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    for (const auto& worker : workers) {
        result.counters.push_back(&worker->counters());
    }
    return result;
}

}  // namespace exfiltap::dataplane
