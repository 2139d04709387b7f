// libFuzzer target for a flow direction's content stream (Hyperscan stream mode, the card
// tracker, the validators, dedup and the pending list) with the default content database.
// The input's first byte seeds the segment sizes; the rest is the direction's bytes. Checks,
// besides ASan and UBSan (each segment is copied into a heap block of its own size, so a read
// past it is caught): the same bytes scanned in one call and cut into segments of 1 to 200
// bytes give the same findings (class, rule, value, end offset, distinct count,
// confidence), as a stream must whatever the segment sizes (when they come out may differ:
// a finding waits for its keyword window to pass, which a later segment decides), unless
// findings were lost to a full sink (64 a call); every finding lies inside the bytes
// scanned.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <tuple>
#include <vector>

#include "detectors/content_scanner.h"
#include "tests/fuzz/fuzz_check.h"

namespace {

using exfiltap::detectors::ContentConfig;
using exfiltap::detectors::ContentStream;
using exfiltap::detectors::Finding;
using exfiltap::detectors::FindingSink;
using exfiltap::detectors::PatternDatabase;

void check(bool condition, int line = __builtin_LINE()) {
    exfiltap::fuzz::check(condition, "content_stream_fuzz", line);
}

struct Scanner {
    std::shared_ptr<const PatternDatabase> db;
    hs_scratch* scratch = nullptr;
};

const Scanner& scanner() {
    static const Scanner s = [] {
        Scanner made;
        auto db = PatternDatabase::compile(ContentConfig{});
        check(db.ok());
        made.db = db.value();
        auto scratch = made.db->alloc_scratch();
        check(scratch.ok());
        made.scratch = scratch.value();
        return made;
    }();
    return s;
}

using Seen = std::tuple<int, unsigned, std::string, uint64_t, uint32_t, int>;

// The findings of a fresh stream given `data` in segments of the sizes `next_size` picks.
// `lost` counts the findings a full sink dropped.
template <typename NextSize>
std::vector<Seen> scan(std::span<const uint8_t> data, NextSize next_size, uint64_t& lost) {
    const Scanner& s = scanner();
    ContentStream stream;
    FindingSink sink;
    std::vector<Seen> seen;
    auto drain = [&] {
        check(sink.overflow == 0 || sink.count == FindingSink::kCapacity);
        lost += sink.overflow;
        for (size_t i = 0; i < sink.count; ++i) {
            const Finding& f = sink.items[i];
            check(f.end_offset <= data.size());
            check(f.value_len <= f.value.size());
            seen.emplace_back(static_cast<int>(f.cls), f.rule, std::string(f.value_view()),
                    f.end_offset, f.distinct_count, static_cast<int>(f.confidence));
        }
        sink.clear();
    };
    check(stream.open(*s.db));
    size_t at = 0;
    while (at < data.size()) {
        const size_t n = std::min(next_size(), data.size() - at);
        const std::unique_ptr<uint8_t[]> segment(new uint8_t[n]);
        std::copy_n(data.data() + at, n, segment.get());
        stream.scan({segment.get(), n}, s.scratch, sink);
        drain();
        at += n;
    }
    stream.close(s.scratch, sink);
    drain();
    std::sort(seen.begin(), seen.end());
    return seen;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    if (size == 0) {
        return 0;
    }
    const std::span<const uint8_t> text(data + 1, size - 1);
    uint64_t lost = 0;
    const std::vector<Seen> whole = scan(
            text, [&] { return text.size() + 1; }, lost);
    uint64_t state = data[0];
    const std::vector<Seen> cut = scan(
            text,
            [&state] {
                state = state * 6364136223846793005ULL + 1442695040888963407ULL;
                return static_cast<size_t>(1 + (state >> 33) % 200);
            },
            lost);
    check(lost > 0 || whole == cut);
    return 0;
}
