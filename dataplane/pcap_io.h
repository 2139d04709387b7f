// libpcap file reading and writing for offline mode (main lcore only). Microsecond and
// nanosecond files, either byte order; times are carried as nanoseconds since the epoch and
// written back in the input's precision, so a written file keeps the original timestamps.
#pragma once

#include <cstdint>
#include <string>

#include "common/result.h"

struct pcap;
struct pcap_dumper;

namespace exfiltap::dataplane {

struct CapturedPacket {
    uint64_t time_ns = 0;
    uint32_t caplen = 0;
    uint32_t wire_len = 0;
    const uint8_t* data = nullptr;
};

class PcapReader {
public:
    static Result<PcapReader> open(const std::string& path);
    PcapReader() = default;
    PcapReader(PcapReader&& other) noexcept;
    PcapReader& operator=(PcapReader&& other) noexcept;
    PcapReader(const PcapReader&) = delete;
    PcapReader& operator=(const PcapReader&) = delete;
    ~PcapReader();

    /// Next packet; false at end of file or on error (error() tells which).
    bool next(CapturedPacket& packet);
    const std::string& error() const { return error_; }
    bool nanosecond() const { return nanosecond_; }
    int datalink() const { return datalink_; }
    int snaplen() const { return snaplen_; }

private:
    pcap* handle_ = nullptr;
    bool nanosecond_ = false;
    int datalink_ = 0;
    int snaplen_ = 0;
    std::string error_;
};

class PcapWriter {
public:
    static Result<PcapWriter> open(
            const std::string& path, int datalink, int snaplen, bool nanosecond);
    PcapWriter() = default;
    PcapWriter(PcapWriter&& other) noexcept;
    PcapWriter& operator=(PcapWriter&& other) noexcept;
    PcapWriter(const PcapWriter&) = delete;
    PcapWriter& operator=(const PcapWriter&) = delete;
    ~PcapWriter();

    void write(uint64_t time_ns, uint32_t caplen, uint32_t wire_len, const uint8_t* data);
    /// Flushes and closes; false when the file could not be written completely.
    bool close();

private:
    pcap* dead_ = nullptr;
    pcap_dumper* dumper_ = nullptr;
    bool nanosecond_ = false;
};

}  // namespace exfiltap::dataplane
