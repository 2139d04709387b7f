// Offline mode (DESIGN.md "Modes"): the main lcore reads a capture, hashes each packet with
// the symmetric Toeplitz function a NIC applies, and feeds the workers' rx rings, which form
// a net_ring ethdev port, so workers run unchanged. What they transmit is put back in capture
// order (a sequence number per mbuf) and written with the original timestamps. Nothing is
// lost: the reader never spins on a full ring, and workers wait instead of dropping.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "common/result.h"
#include "dataplane/pcap_io.h"
#include "dataplane/worker.h"

namespace exfiltap::dataplane {

struct OfflineProgress {
    uint64_t packets_read = 0;
    uint64_t packets_done = 0;  // back from the workers (written or dropped)
    /// Packet time every worker has reached (the lowest of their watermarks): what the
    /// control side advances windows and timeouts by (DESIGN.md "Time").
    uint64_t packet_time_ns = 0;
};

/// The lowest packet-time watermark of `workers`.
uint64_t packet_time_watermark(const std::vector<Worker*>& workers) noexcept;

struct OfflineOptions {
    std::string input;
    std::string output;  // empty: nothing written
    unsigned workers = 1;
    /// Template for every worker: id, rings, ports and lcores are filled in here.
    WorkerConfig worker;
    std::vector<hs_scratch*> scratches;  // one per worker
    uint32_t mbufs = 16383;
    /// Called on the main lcore for every worker event, in the order drained.
    std::function<void(const WorkerEvent&)> on_event;
    /// Called on the main lcore every reader loop (control work: reloads, collection). It
    /// returns how many packets the reader may have read by now (UINT64_MAX: no limit), so
    /// control work can be placed at an exact point of the capture (tests).
    std::function<uint64_t(const OfflineProgress& progress, const std::vector<Worker*>& workers)>
            on_tick;
    /// Called on the main lcore after the workers' event rings were drained empty, with the
    /// packet time every worker had reached before that drain: every event of a packet up to
    /// that time has been through on_event, so windows up to it can close (DESIGN.md "Time").
    std::function<void(uint64_t packet_time_ns)> on_time;
};

struct OfflineResult {
    uint64_t packets_read = 0;
    uint64_t bytes_read = 0;
    uint64_t packets_written = 0;
    uint64_t packets_dropped = 0;
    uint64_t first_ns = 0;
    uint64_t last_ns = 0;
    double elapsed_s = 0;
    bool nanosecond = false;
    /// Set when the capture could not be read to its end (packets before it were processed).
    std::string read_error;
    /// DPDK heap bytes in use at the end of the run (pools, rings, flow tables).
    uint64_t dpdk_heap_bytes = 0;
    std::vector<const WorkerCounters*> counters;
    std::vector<const ReassemblyStats*> reassembly;
    /// Application layer counters per worker (workers without one are left out).
    std::vector<const AppCounters*> app;
    /// Each worker's exact data match counters.
    std::vector<const detectors::EdmCounters*> edm;
};

/// Where offline packets come from. Main lcore only.
class PacketSource {
public:
    PacketSource() = default;
    PacketSource(const PacketSource&) = delete;
    PacketSource& operator=(const PacketSource&) = delete;
    PacketSource(PacketSource&&) = delete;
    PacketSource& operator=(PacketSource&&) = delete;
    virtual ~PacketSource() = default;

    /// The next packet and its RSS hash; false at the end (error() says whether the end was
    /// damage). The packet's bytes stay valid until the next call.
    virtual bool next(CapturedPacket& packet, uint32_t& rss_hash) = 0;
    virtual std::string error() const = 0;
    virtual int datalink() const = 0;
    virtual int snaplen() const = 0;
    virtual bool nanosecond() const = 0;
};

/// A capture file read as it goes; each packet is hashed when read.
class PcapFileSource final : public PacketSource {
public:
    explicit PcapFileSource(PcapReader reader) : reader_(std::move(reader)) {}
    bool next(CapturedPacket& packet, uint32_t& rss_hash) override;
    std::string error() const override { return reader_.error(); }
    int datalink() const override { return reader_.datalink(); }
    int snaplen() const override { return reader_.snaplen(); }
    bool nanosecond() const override { return reader_.nanosecond(); }

private:
    PcapReader reader_;
};

/// A capture loaded into memory with every hash computed at load (the benchmark), so the
/// reader costs only the copy into mbufs. rewind() starts it over.
class MemorySource final : public PacketSource {
public:
    static Result<std::unique_ptr<MemorySource>> load(const std::string& path);
    bool next(CapturedPacket& packet, uint32_t& rss_hash) override;
    std::string error() const override { return {}; }
    int datalink() const override { return datalink_; }
    int snaplen() const override { return snaplen_; }
    bool nanosecond() const override { return nanosecond_; }
    void rewind() { next_ = 0; }
    size_t packets() const { return records_.size(); }
    uint64_t bytes() const { return bytes_.size(); }

private:
    MemorySource() = default;
    struct Record {
        uint64_t offset;
        uint64_t time_ns;
        uint32_t caplen;
        uint32_t wire_len;
        uint32_t hash;
    };
    std::vector<uint8_t> bytes_;
    std::vector<Record> records_;
    size_t next_ = 0;
    int datalink_ = 1;
    int snaplen_ = 65535;
    bool nanosecond_ = false;
};

/// The symmetric Toeplitz hash of a frame's IP addresses (0 for non-IP frames), as a NIC
/// with the symmetric key computes it for RSS.
uint32_t symmetric_rss_hash(const uint8_t* frame, uint32_t len) noexcept;

/// Runs packets from `source` through the workers. Workers stay alive in `workers` so that
/// their counters can be read afterwards.
Result<OfflineResult> run_offline(const OfflineOptions& options, PacketSource& source,
        std::vector<std::unique_ptr<Worker>>& workers);

/// The same for the capture file options.input.
Result<OfflineResult> run_offline(
        const OfflineOptions& options, std::vector<std::unique_ptr<Worker>>& workers);

}  // namespace exfiltap::dataplane
