#include "control/evidence_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <system_error>

namespace exfiltap::control {
namespace {

// pcapng block types and option codes (the pcapng specification, draft-ietf-opsawg-pcapng).
constexpr uint32_t kSectionHeader = 0x0A0D0D0A;
constexpr uint32_t kInterfaceDescription = 1;
constexpr uint32_t kEnhancedPacket = 6;
constexpr uint32_t kByteOrderMagic = 0x1A2B3C4D;
constexpr uint16_t kOptEnd = 0;
constexpr uint16_t kOptComment = 1;
constexpr uint16_t kShbUserAppl = 4;
constexpr uint16_t kIfTsresol = 9;
constexpr uint16_t kLinktypeEthernet = 1;
constexpr size_t kEpbFixedBytes = 32;  // type, length, interface, 2 x time, 2 x length, length
constexpr size_t kMaxIdBytes = 64;
constexpr std::string_view kPrefix = "evidence-";
constexpr std::string_view kSuffix = ".pcapng";

size_t pad4(size_t n) {
    return (n + 3) & ~size_t{3};
}

class BlockWriter {
public:
    explicit BlockWriter(std::vector<uint8_t>& out) : out_(out) {}
    void u16(uint16_t v) { append(&v, sizeof(v)); }
    void u32(uint32_t v) { append(&v, sizeof(v)); }
    void u64(uint64_t v) { append(&v, sizeof(v)); }
    void bytes(const void* data, size_t n) {
        append(data, n);
        out_.resize(out_.size() + pad4(n) - n, 0);
    }
    void option(uint16_t code, std::string_view value) {
        u16(code);
        u16(static_cast<uint16_t>(value.size()));
        bytes(value.data(), value.size());
    }
    /// Starts a block: type and a length patched by end_block().
    void begin_block(uint32_t type) {
        start_ = out_.size();
        u32(type);
        u32(0);
    }
    void end_block() {
        const auto length = static_cast<uint32_t>(out_.size() - start_ + 4);
        u32(length);
        std::memcpy(out_.data() + start_ + 4, &length, sizeof(length));
    }

private:
    void append(const void* data, size_t n) {
        const auto* p = static_cast<const uint8_t*>(data);
        out_.insert(out_.end(), p, p + n);
    }
    std::vector<uint8_t>& out_;
    size_t start_ = 0;
};

std::string errno_text(int error) {
    return std::system_category().message(error);
}

bool is_evidence_name(const std::string& name) {
    return name.size() > kPrefix.size() + kSuffix.size() && name.starts_with(kPrefix)
            && name.ends_with(kSuffix);
}

Status write_all(int fd, const std::vector<uint8_t>& data, const std::string& path) {
    size_t done = 0;
    while (done < data.size()) {
        const ssize_t n = ::write(fd, data.data() + done, data.size() - done);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            return make_error("cannot write " + path + ": " + errno_text(errno));
        }
        done += static_cast<size_t>(n);
    }
    if (::fsync(fd) != 0) {
        return make_error("cannot sync " + path + ": " + errno_text(errno));
    }
    return Ok{};
}

struct FolderEntry {
    std::filesystem::file_time_type modified;
    std::string name;
    uint64_t bytes = 0;
};

/// Removes the oldest evidence files other than `keep` until the folder is within limits.
void rotate(const std::string& dir, const std::string& keep, const EvidenceLimits& limits,
        EvidenceFileOutcome& outcome) {
    std::error_code ec;
    std::vector<FolderEntry> entries;
    uint64_t total = 0;
    for (const auto& item : std::filesystem::directory_iterator(dir, ec)) {
        const std::string name = item.path().filename().string();
        std::error_code item_ec;
        if (!is_evidence_name(name) || !item.is_regular_file(item_ec)) {
            continue;
        }
        FolderEntry entry{item.last_write_time(item_ec), name, item.file_size(item_ec)};
        if (item_ec) {
            continue;
        }
        total += entry.bytes;
        if (name != keep) {
            entries.push_back(std::move(entry));
        }
    }
    std::sort(entries.begin(), entries.end(), [](const FolderEntry& a, const FolderEntry& b) {
        return a.modified != b.modified ? a.modified < b.modified : a.name < b.name;
    });
    size_t files = entries.size() + 1;  // the new file counts
    for (const FolderEntry& entry : entries) {
        if (files <= limits.max_files && total <= limits.max_total_bytes) {
            break;
        }
        if (std::filesystem::remove(std::filesystem::path(dir) / entry.name, ec)) {
            outcome.files_removed += 1;
            outcome.bytes_removed += entry.bytes;
            total -= entry.bytes;
            files -= 1;
        }
    }
}

}  // namespace

std::vector<uint8_t> render_pcapng(const std::string& comment, uint32_t snap_len,
        std::span<const EvidencePacket> packets, uint64_t max_bytes, size_t& written) {
    std::vector<uint8_t> out;
    BlockWriter w(out);

    w.begin_block(kSectionHeader);
    w.u32(kByteOrderMagic);
    w.u16(1);  // version 1.0
    w.u16(0);
    w.u64(~uint64_t{0});  // section length not given
    w.option(kOptComment, comment.substr(0, 0xFFFF));
    w.option(kShbUserAppl, "exfiltap");
    w.u16(kOptEnd);
    w.u16(0);
    w.end_block();

    w.begin_block(kInterfaceDescription);
    w.u16(kLinktypeEthernet);
    w.u16(0);
    w.u32(snap_len);
    const std::array<uint8_t, 1> nanoseconds = {9};
    w.u16(kIfTsresol);
    w.u16(1);
    w.bytes(nanoseconds.data(), nanoseconds.size());
    w.u16(kOptEnd);
    w.u16(0);
    w.end_block();

    written = 0;
    for (const EvidencePacket& packet : packets) {
        if (out.size() + kEpbFixedBytes + pad4(packet.frame.size()) > max_bytes) {
            break;
        }
        w.begin_block(kEnhancedPacket);
        w.u32(0);  // interface
        w.u32(static_cast<uint32_t>(packet.time_ns >> 32));
        w.u32(static_cast<uint32_t>(packet.time_ns));
        w.u32(static_cast<uint32_t>(packet.frame.size()));
        w.u32(packet.original_len);
        w.bytes(packet.frame.data(), packet.frame.size());
        w.end_block();
        ++written;
    }
    return out;
}

std::string evidence_file_name(uint64_t wall_time_s, uint64_t sequence, const std::string& id) {
    const auto t = static_cast<time_t>(wall_time_s);
    tm utc{};
    gmtime_r(&t, &utc);
    std::array<char, 32> stamp{};
    strftime(stamp.data(), stamp.size(), "%Y%m%dT%H%M%S", &utc);
    std::string safe = id.substr(0, kMaxIdBytes);
    for (char& c : safe) {
        const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
                || c == '.' || c == '_' || c == '-';
        if (!ok) {
            c = '_';
        }
    }
    return std::string(kPrefix) + stamp.data() + "-" + std::to_string(sequence) + "-" + safe
            + std::string(kSuffix);
}

Result<EvidenceFileOutcome> write_evidence_file(const std::string& dir, const std::string& name,
        const std::string& comment, uint32_t snap_len, std::span<const EvidencePacket> packets,
        const EvidenceLimits& limits) {
    if (!is_evidence_name(name) || name.find('/') != std::string::npos) {
        return make_error("not an evidence file name: " + name);
    }
    if (::mkdir(dir.c_str(), 0750) != 0 && errno != EEXIST) {
        return make_error("cannot create the evidence folder " + dir + ": " + errno_text(errno));
    }
    EvidenceFileOutcome outcome;
    size_t written = 0;
    const std::vector<uint8_t> image =
            render_pcapng(comment, snap_len, packets, limits.max_file_bytes, written);
    outcome.packets = written;
    outcome.packets_cut = packets.size() - written;
    outcome.bytes = image.size();

    const std::string path = dir + "/" + name;
    const std::string temp = dir + "/." + name + ".tmp";
    const int fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
    if (fd < 0) {
        return make_error("cannot create " + temp + ": " + errno_text(errno));
    }
    Status status = ::fchmod(fd, 0640) == 0
            ? write_all(fd, image, temp)
            : Status(make_error("cannot set the mode of " + temp + ": " + errno_text(errno)));
    ::close(fd);
    if (status && ::rename(temp.c_str(), path.c_str()) != 0) {
        status = make_error("cannot rename " + temp + " to " + path + ": " + errno_text(errno));
    }
    if (!status) {
        ::unlink(temp.c_str());
        return make_error(status.error());
    }
    outcome.path = path;
    rotate(dir, name, limits, outcome);
    return outcome;
}

}  // namespace exfiltap::control
