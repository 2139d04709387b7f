#include "dataplane/pcap_io.h"

#include <pcap/pcap.h>
#include <stdio.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <utility>

namespace exfiltap::dataplane {

namespace {

// A stream that first returns bytes already read (the magic number) and then the rest of
// the underlying file: lets a pipe be sniffed and still handed whole to libpcap.
struct PrefixedStream {
    std::array<unsigned char, 4> prefix{};
    size_t prefix_len = 0;
    size_t prefix_pos = 0;
    FILE* file = nullptr;
};

ssize_t prefixed_read(void* cookie, char* buf, size_t size) {
    auto* s = static_cast<PrefixedStream*>(cookie);
    size_t n = 0;
    while (n < size && s->prefix_pos < s->prefix_len) {
        buf[n++] = static_cast<char>(s->prefix[s->prefix_pos++]);
    }
    if (n < size) {
        n += fread(buf + n, 1, size - n, s->file);
    }
    return static_cast<ssize_t>(n);
}

int prefixed_close(void* cookie) {
    auto* s = static_cast<PrefixedStream*>(cookie);
    const int rc = fclose(s->file);
    delete s;
    return rc;
}

}  // namespace

Result<PcapReader> PcapReader::open(const std::string& path) {
    // "-" is standard input. The file is opened once: a pipe cannot be read twice.
    FILE* file = path == "-" ? fdopen(dup(STDIN_FILENO), "rb") : fopen(path.c_str(), "rb");
    if (file == nullptr) {
        return make_error("cannot read capture " + path + ": " + strerror(errno));
    }
    // libpcap does not say which precision the file had; its magic number does.
    auto* stream = new PrefixedStream();
    stream->file = file;
    stream->prefix_len = fread(stream->prefix.data(), 1, stream->prefix.size(), file);
    const auto& m = stream->prefix;
    const uint32_t le = m[0] | (m[1] << 8) | (m[2] << 16) | (static_cast<uint32_t>(m[3]) << 24);
    const bool nanosecond = stream->prefix_len == 4 && (le == 0xa1b23c4d || le == 0x4d3cb2a1);
    const cookie_io_functions_t io = {prefixed_read, nullptr, nullptr, prefixed_close};
    FILE* joined = fopencookie(stream, "rb", io);
    if (joined == nullptr) {
        fclose(file);
        delete stream;
        return make_error("cannot read capture " + path + ": " + strerror(errno));
    }
    std::array<char, PCAP_ERRBUF_SIZE> errbuf{};
    // Asking for nanosecond precision makes libpcap scale microsecond files up, so every
    // file reads the same way; the file's own precision is kept for the writer.
    pcap* handle = pcap_fopen_offline_with_tstamp_precision(
            joined, PCAP_TSTAMP_PRECISION_NANO, errbuf.data());
    if (handle == nullptr) {
        fclose(joined);
        return make_error("cannot read capture " + path + ": " + errbuf.data());
    }
    PcapReader reader;
    reader.handle_ = handle;  // pcap_close() closes `joined`, which closes `file`
    reader.nanosecond_ = nanosecond;
    reader.datalink_ = pcap_datalink(handle);
    reader.snaplen_ = pcap_snapshot(handle);
    if (reader.datalink_ != DLT_EN10MB) {
        return make_error("capture " + path + " has link type "
                + std::string(pcap_datalink_val_to_name(reader.datalink_) != nullptr
                                ? pcap_datalink_val_to_name(reader.datalink_)
                                : "?")
                + " (" + std::to_string(reader.datalink_)
                + "); only Ethernet (EN10MB, 1) is supported");
    }
    return reader;
}

PcapReader::PcapReader(PcapReader&& other) noexcept
    : handle_(std::exchange(other.handle_, nullptr)),
      nanosecond_(other.nanosecond_),
      datalink_(other.datalink_),
      snaplen_(other.snaplen_),
      error_(std::move(other.error_)) {}

PcapReader& PcapReader::operator=(PcapReader&& other) noexcept {
    if (this != &other) {
        if (handle_ != nullptr) {
            pcap_close(handle_);
        }
        handle_ = std::exchange(other.handle_, nullptr);
        nanosecond_ = other.nanosecond_;
        datalink_ = other.datalink_;
        snaplen_ = other.snaplen_;
        error_ = std::move(other.error_);
    }
    return *this;
}

PcapReader::~PcapReader() {
    if (handle_ != nullptr) {
        pcap_close(handle_);
    }
}

bool PcapReader::next(CapturedPacket& packet) {
    pcap_pkthdr* header = nullptr;
    const u_char* data = nullptr;
    const int ret = pcap_next_ex(handle_, &header, &data);
    if (ret == 1) {
        // The file's seconds are an unsigned 32-bit field (good to 2106); libpcap hands them
        // over sign-extended, which turned times after 2038-01-19 into the year 2500.
        packet.time_ns = uint64_t{static_cast<uint32_t>(header->ts.tv_sec)} * 1000000000ULL
                + static_cast<uint64_t>(header->ts.tv_usec);
        packet.caplen = header->caplen;
        packet.wire_len = header->len;
        packet.data = data;
        return true;
    }
    if (ret == PCAP_ERROR) {
        error_ = pcap_geterr(handle_);
    }
    return false;
}

Result<PcapWriter> PcapWriter::open(
        const std::string& path, int datalink, int snaplen, bool nanosecond) {
    PcapWriter writer;
    writer.nanosecond_ = nanosecond;
    writer.dead_ = pcap_open_dead_with_tstamp_precision(datalink, snaplen,
            nanosecond ? PCAP_TSTAMP_PRECISION_NANO : PCAP_TSTAMP_PRECISION_MICRO);
    if (writer.dead_ == nullptr) {
        return make_error("cannot prepare capture writer");
    }
    writer.dumper_ = pcap_dump_open(writer.dead_, path.c_str());
    if (writer.dumper_ == nullptr) {
        return make_error("cannot write capture " + path + ": " + pcap_geterr(writer.dead_));
    }
    return writer;
}

PcapWriter::PcapWriter(PcapWriter&& other) noexcept
    : dead_(std::exchange(other.dead_, nullptr)),
      dumper_(std::exchange(other.dumper_, nullptr)),
      nanosecond_(other.nanosecond_) {}

PcapWriter& PcapWriter::operator=(PcapWriter&& other) noexcept {
    if (this != &other) {
        close();
        dead_ = std::exchange(other.dead_, nullptr);
        dumper_ = std::exchange(other.dumper_, nullptr);
        nanosecond_ = other.nanosecond_;
    }
    return *this;
}

PcapWriter::~PcapWriter() {
    close();
}

void PcapWriter::write(uint64_t time_ns, uint32_t caplen, uint32_t wire_len, const uint8_t* data) {
    pcap_pkthdr header{};
    header.ts.tv_sec = static_cast<time_t>(time_ns / 1000000000ULL);
    const uint64_t sub = time_ns % 1000000000ULL;
    header.ts.tv_usec = static_cast<suseconds_t>(nanosecond_ ? sub : sub / 1000);
    header.caplen = caplen;
    header.len = wire_len;
    pcap_dump(reinterpret_cast<u_char*>(dumper_), &header, data);
}

bool PcapWriter::close() {
    bool ok = true;
    if (dumper_ != nullptr) {
        ok = pcap_dump_flush(dumper_) == 0;
        pcap_dump_close(dumper_);
        dumper_ = nullptr;
    }
    if (dead_ != nullptr) {
        pcap_close(dead_);
        dead_ = nullptr;
    }
    return ok;
}

}  // namespace exfiltap::dataplane
