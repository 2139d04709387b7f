#include "detectors/archive_magic.h"

#include <array>
#include <cmath>
#include <cstring>

namespace exfiltap::detectors {

namespace {

struct Magic {
    std::string_view bytes;
    std::string_view format;
};

// Fixed prefixes; bzip2 needs a pattern (block size digit) and is checked on its own.
constexpr std::array<Magic, 9> kMagics = {{
        {{"PK\x03\x04", 4}, "zip"},
        {{"PK\x05\x06", 4}, "zip"},
        {{"PK\x07\x08", 4}, "zip"},
        {{"\x1f\x8b\x08", 3}, "gzip"},
        {{"\x37\x7a\xbc\xaf\x27\x1c", 6}, "7z"},
        {{"Rar!\x1a\x07\x00", 7}, "rar"},
        {{"Rar!\x1a\x07\x01\x00", 8}, "rar"},
        {{"\xfd\x37\x7a\x58\x5a\x00", 6}, "xz"},
        {{"\x28\xb5\x2f\xfd", 4}, "zstd"},
}};

bool starts_with(std::span<const uint8_t> head, std::string_view magic) noexcept {
    return head.size() >= magic.size() && std::memcmp(head.data(), magic.data(), magic.size()) == 0;
}

// "BZh", a block size digit, then the first block's magic (pi) or, for an empty stream, the
// end-of-stream magic (sqrt(pi)).
bool is_bzip2(std::span<const uint8_t> head) noexcept {
    constexpr std::string_view kBlock = "1AY&SY";  // 31 41 59 26 53 59
    constexpr std::string_view kEnd{"\x17\x72\x45\x38\x50\x90", 6};
    if (!starts_with(head, "BZh") || head.size() < 10 || head[3] < '1' || head[3] > '9') {
        return false;
    }
    const std::span<const uint8_t> rest = head.subspan(4);
    return starts_with(rest, kBlock) || starts_with(rest, kEnd);
}

}  // namespace

bool archive_format(std::span<const uint8_t> head, std::string_view& format) noexcept {
    for (const Magic& magic : kMagics) {
        if (starts_with(head, magic.bytes)) {
            format = magic.format;
            return true;
        }
    }
    if (is_bzip2(head)) {
        format = "bzip2";
        return true;
    }
    return false;
}

uint16_t entropy_milli(std::span<const uint8_t> data) noexcept {
    if (data.empty()) {
        return 0;
    }
    std::array<size_t, 256> counts{};
    for (const uint8_t b : data) {
        ++counts[b];
    }
    const auto total = static_cast<double>(data.size());
    double bits = 0.0;
    for (const size_t count : counts) {
        if (count != 0) {
            const double p = static_cast<double>(count) / total;
            bits -= p * std::log2(p);
        }
    }
    const double milli = std::round(bits * 1000.0);
    if (milli <= 0.0) {
        return 0;
    }
    return milli >= 8000.0 ? 8000 : static_cast<uint16_t>(milli);
}

}  // namespace exfiltap::detectors
