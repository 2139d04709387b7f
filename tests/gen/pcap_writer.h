#pragma once

#include <cstdint>
#include <cstdio>
#include <span>
#include <string>

namespace exfiltap::gen {

// Classic pcap (not pcapng): little-endian, microsecond timestamps, DLT_EN10MB. Written
// with a large stdio buffer; one write call per packet.
class PcapWriter {
public:
    // Opens (truncates) path and writes the file header. Throws std::runtime_error.
    explicit PcapWriter(const std::string& path);
    ~PcapWriter();
    PcapWriter(const PcapWriter&) = delete;
    PcapWriter& operator=(const PcapWriter&) = delete;

    // Appends one record; the whole frame is captured (caplen == len). Timestamps must not
    // go backwards: a generator bug, reported by throwing std::logic_error.
    void write(uint64_t ts_us, std::span<const uint8_t> frame);

    // Flushes and closes; throws std::runtime_error on an I/O error.
    void close();

    uint64_t packets() const { return packets_; }
    // Sum of the captured lengths of all records (headers of the records not included).
    uint64_t bytes() const { return bytes_; }

private:
    std::FILE* file_ = nullptr;
    std::string path_;
    uint64_t packets_ = 0;
    uint64_t bytes_ = 0;
    uint64_t last_ts_us_ = 0;
};

}  // namespace exfiltap::gen
