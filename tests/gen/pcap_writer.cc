#include "tests/gen/pcap_writer.h"

#include <array>
#include <stdexcept>

namespace exfiltap::gen {
namespace {

constexpr uint32_t kMagicMicroseconds = 0xa1b2c3d4;
constexpr uint32_t kSnapLen = 262144;
constexpr uint32_t kLinkTypeEthernet = 1;

void le16(uint8_t* p, uint32_t v) {
    p[0] = static_cast<uint8_t>(v);
    p[1] = static_cast<uint8_t>(v >> 8);
}

void le32(uint8_t* p, uint32_t v) {
    le16(p, v);
    le16(p + 2, v >> 16);
}

}  // namespace

PcapWriter::PcapWriter(const std::string& path) : path_(path) {
    file_ = std::fopen(path.c_str(), "wb");
    if (file_ == nullptr) {
        throw std::runtime_error("cannot create " + path);
    }
    std::setvbuf(file_, nullptr, _IOFBF, 1 << 20);
    std::array<uint8_t, 24> header{};
    le32(&header[0], kMagicMicroseconds);
    le16(&header[4], 2);  // version 2.4
    le16(&header[6], 4);
    // thiszone and sigfigs stay zero.
    le32(&header[16], kSnapLen);
    le32(&header[20], kLinkTypeEthernet);
    if (std::fwrite(header.data(), 1, header.size(), file_) != header.size()) {
        throw std::runtime_error("cannot write " + path);
    }
}

PcapWriter::~PcapWriter() {
    if (file_ != nullptr) {
        std::fclose(file_);
    }
}

void PcapWriter::write(uint64_t ts_us, std::span<const uint8_t> frame) {
    if (ts_us < last_ts_us_) {
        throw std::logic_error("packet timestamps went backwards");
    }
    last_ts_us_ = ts_us;
    std::array<uint8_t, 16> record{};
    le32(&record[0], static_cast<uint32_t>(ts_us / 1000000));
    le32(&record[4], static_cast<uint32_t>(ts_us % 1000000));
    le32(&record[8], static_cast<uint32_t>(frame.size()));
    le32(&record[12], static_cast<uint32_t>(frame.size()));
    if (std::fwrite(record.data(), 1, record.size(), file_) != record.size()
            || std::fwrite(frame.data(), 1, frame.size(), file_) != frame.size()) {
        throw std::runtime_error("cannot write " + path_);
    }
    ++packets_;
    bytes_ += frame.size();
}

void PcapWriter::close() {
    if (file_ == nullptr) {
        return;
    }
    const bool failed = std::fflush(file_) != 0 || std::ferror(file_) != 0;
    const bool close_failed = std::fclose(file_) != 0;
    file_ = nullptr;
    if (failed || close_failed) {
        throw std::runtime_error("cannot write " + path_);
    }
}

}  // namespace exfiltap::gen
