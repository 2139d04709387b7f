// Archive and compressed-object recognition by magic number, and byte entropy: the two
// facts an Archive AppEvent carries (app_event.h).
//
// Threads: pure functions, any thread (the worker calls them on object and flow starts).
// Cost: archive_format() looks at no more than the first 10 bytes; entropy_milli() is one
// pass over its input plus 256 logarithms, with a 2 KiB table on the stack. No allocation.
#pragma once

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

namespace exfiltap::detectors {

/// The number of leading bytes archive_format() may look at: pass at least this many when
/// the object has them, fewer only at the object's end.
inline constexpr size_t kArchiveMagicBytes = 10;

/// The first bytes of a stream or object, gathered across pieces until an archive signature
/// can be judged (a sender may put the first byte of a file in a segment of its own).
struct ArchiveHead {
    std::array<uint8_t, 16> bytes{};
    uint8_t len = 0;
    bool judged = false;

    void reset() noexcept {
        len = 0;
        judged = false;
    }
    /// Adds the start of `data`; true once enough bytes are there to judge (judge once).
    bool add(std::span<const uint8_t> data) noexcept {
        const size_t take = std::min(bytes.size() - len, data.size());
        std::copy_n(data.begin(), take, bytes.begin() + len);
        len = static_cast<uint8_t>(len + take);
        return !judged && len >= kArchiveMagicBytes;
    }
    std::span<const uint8_t> view() const noexcept { return {bytes.data(), len}; }
};

/// True when `head` (the first bytes of an object) starts with the magic number of an archive
/// or compressed format; `format` is then set to one of "zip" (PK\3\4 local file, PK\5\6 empty
/// archive, PK\7\8 spanned archive), "gzip" (1f 8b 08), "7z", "rar" (RAR 4 and RAR 5),
/// "bzip2" ("BZh" + block size '1'..'9' + a block or end-of-stream magic), "xz" or "zstd"
/// (frame magic 28 b5 2f fd). False (and `format` untouched) otherwise, and when `head` is
/// shorter than the format's magic.
bool archive_format(std::span<const uint8_t> head, std::string_view& format) noexcept;

/// Shannon entropy of the byte distribution of `data` in bits per byte, times 1000, rounded
/// to the nearest integer: 0 for empty input or one repeated byte, 8000 when all 256 byte
/// values occur equally often.
uint16_t entropy_milli(std::span<const uint8_t> data) noexcept;

}  // namespace exfiltap::detectors
