// Live mode (DESIGN.md "Modes"): real ports (NICs, net_af_packet, net_pcap, net_tap) in
// inline pairs or passive, one rx and one tx queue per worker on each port, RSS with the
// symmetric key where the port has it. The main lcore runs the control loop: it drains the
// workers' event rings, advances time by the clock, and calls the control side's tick, which
// decides when to stop (signals).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "common/result.h"
#include "dataplane/worker.h"

struct rte_mempool;

namespace exfiltap::dataplane {

/// A port as the operator names it: `device` is a virtual device with its arguments
/// ("net_af_packet0,iface=eth1") or a PCI address ("0000:03:00.0").
struct PortSpec {
    std::string name;  // label in metrics and logs ("inside", "outside0", ...)
    std::string device;
};

struct LivePortsOptions {
    bool inline_mode = false;
    /// Inline: packets received on one port of a pair leave on the other.
    std::vector<std::pair<PortSpec, PortSpec>> pairs;
    /// Passive: receive only.
    std::vector<PortSpec> passive;
    unsigned workers = 1;
    uint16_t rx_descriptors = 1024;
    uint16_t tx_descriptors = 1024;
    uint32_t mbufs = 16383;
    /// Hash L4 ports too (default: IP addresses only, so fragments stay with their flow).
    bool rss_l4 = false;
};

/// True when a device string names a virtual device (net_*, eth_*), else a PCI address.
bool is_virtual_device(const std::string& device);

/// The ethdev name DPDK gives a device (the vdev name before the first comma).
std::string device_name(const std::string& device);

struct LivePort {
    uint16_t port_id = 0;
    std::string name;
    std::string device;
    int peer = -1;  // index into ports() of the pair's other port; -1: passive
    uint16_t queues = 1;
    bool rss = false;
};

/// The configured, started ports. Created after init_eal(); stops and closes them on
/// destruction.
class LivePorts {
public:
    static Result<std::unique_ptr<LivePorts>> open(const LivePortsOptions& options);
    ~LivePorts();
    LivePorts(const LivePorts&) = delete;
    LivePorts& operator=(const LivePorts&) = delete;
    LivePorts(LivePorts&&) = delete;
    LivePorts& operator=(LivePorts&&) = delete;

    const std::vector<LivePort>& ports() const { return ports_; }
    /// The queues worker `w` polls, each bound to where its packets leave.
    std::vector<RxBinding> bindings_for(unsigned worker) const;
    /// Notes about the set-up the operator should know (a port without RSS, fewer queues).
    const std::vector<std::string>& notes() const { return notes_; }

    struct PortStats {
        uint64_t missed = 0;  // imissed: dropped by the NIC, rx overload
        uint64_t nombuf = 0;
        uint64_t rx_errors = 0;
        bool link_up = false;
    };
    PortStats stats(size_t index) const;

private:
    LivePorts() = default;
    rte_mempool* pool_ = nullptr;
    std::vector<LivePort> ports_;
    std::vector<std::string> notes_;
};

struct LiveOptions {
    WorkerConfig worker;  // template: id, bindings and events are filled in here
    unsigned workers = 1;
    std::vector<hs_scratch*> scratches;  // one per worker
    const LivePorts* ports = nullptr;
    /// Every worker event, on the main lcore, in drain order.
    std::function<void(const WorkerEvent&)> on_event;
    /// Control work, about every millisecond; return false to stop (drain and exit).
    std::function<bool(const std::vector<Worker*>& workers)> on_tick;
    /// Once every worker polls (readiness for systemd).
    std::function<void()> on_ready;
};

struct LiveResult {
    double elapsed_s = 0;
    std::vector<const WorkerCounters*> counters;
};

/// Runs the workers on the live ports until on_tick() returns false. Workers stay alive in
/// `workers` so their counters can be read afterwards.
Result<LiveResult> run_live(const LiveOptions& options, WorkerShared& shared,
        std::vector<std::unique_ptr<Worker>>& workers);

}  // namespace exfiltap::dataplane
