// Test helper: reads classic pcap files (both byte orders, micro- and nanosecond magic,
// Ethernet only) with plain file IO, and finds the shared capture folder. Captures are read
// from ../shared next to the checkout, or from EXFILTAP_SHARED_DIR; tests skip when it is
// missing unless EXFILTAP_REQUIRE_SHARED=1. Test binaries that include this define
// EXFILTAP_SOURCE_ROOT (see tests/unit/dataplane/meson.build).
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <utility>
#include <vector>

namespace exfiltap::test {

struct PcapRecord {
    /// Capture time in nanoseconds since the epoch.
    uint64_t time_ns = 0;
    std::vector<uint8_t> data;
};

inline std::filesystem::path shared_capture_dir() {
    // Tests read the environment on the main thread before starting any other.
    const char* env = std::getenv("EXFILTAP_SHARED_DIR");  // NOLINT(concurrency-mt-unsafe)
    if (env != nullptr && *env != '\0') {
        return env;
    }
    return std::filesystem::path(EXFILTAP_SOURCE_ROOT) / ".." / "shared";
}

inline bool shared_captures_required() {
    const char* env = std::getenv("EXFILTAP_REQUIRE_SHARED");  // NOLINT(concurrency-mt-unsafe)
    return env != nullptr && std::string(env) == "1";
}

/// Appends the records of `path` to `out`; false with `error` set when the file is not a
/// whole classic Ethernet pcap.
inline bool read_pcap_file(
        const std::filesystem::path& path, std::vector<PcapRecord>& out, std::string& error) {
    std::ifstream in(path, std::ios::binary);
    if (!in) {
        error = "cannot open";
        return false;
    }
    const std::vector<uint8_t> file(
            (std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (file.size() < 24) {
        error = "shorter than a pcap header";
        return false;
    }
    const auto le32 = [&](size_t at) {
        return uint32_t{file[at]} | uint32_t{file[at + 1]} << 8 | uint32_t{file[at + 2]} << 16
                | uint32_t{file[at + 3]} << 24;
    };
    const uint32_t magic = le32(0);
    bool swapped = false;
    bool nanoseconds = false;
    switch (magic) {
    case 0xa1b2c3d4:
        break;
    case 0xa1b23c4d:
        nanoseconds = true;
        break;
    case 0xd4c3b2a1:
        swapped = true;
        break;
    case 0x4d3cb2a1:
        swapped = true;
        nanoseconds = true;
        break;
    default:
        error = "not a classic pcap file";
        return false;
    }
    const auto u32 = [&](size_t at) {
        const uint32_t v = le32(at);
        return swapped ? (v >> 24) | ((v >> 8) & 0xff00) | ((v << 8) & 0xff0000) | (v << 24) : v;
    };
    if ((u32(20) & 0x0fffffff) != 1) {
        error = "link type is not Ethernet";
        return false;
    }
    for (size_t at = 24; at < file.size();) {
        if (file.size() - at < 16) {
            error = "record header cut";
            return false;
        }
        const uint64_t seconds = u32(at);
        const uint64_t fraction = u32(at + 4);
        const uint32_t caplen = u32(at + 8);
        at += 16;
        if (caplen > file.size() - at) {
            error = "record cut";
            return false;
        }
        PcapRecord record;
        record.time_ns = seconds * 1'000'000'000ULL + (nanoseconds ? fraction : fraction * 1000);
        record.data.assign(file.begin() + static_cast<std::ptrdiff_t>(at),
                file.begin() + static_cast<std::ptrdiff_t>(at + caplen));
        out.push_back(std::move(record));
        at += caplen;
    }
    return true;
}

}  // namespace exfiltap::test
