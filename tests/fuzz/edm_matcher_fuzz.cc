// libFuzzer target for exact data match at runtime: arbitrary bytes go through EdmStream
// (tokeniser, lookups, corroboration) against a small index built at start-up, cut into
// pieces and gaps that the first input byte chooses. Every value of the index is a short
// word sequence the fuzzer can find from the seeds, so matching paths are reached. Checks:
// no read out of bounds (ASan), no undefined behaviour (UBSan), and what comes out is within
// its bounds: each finding is an EDM finding of table 1 that names the primary column, and
// the record total never goes down.
#include <unistd.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "detectors/content_scanner.h"
#include "detectors/edm_index.h"
#include "detectors/edm_matcher.h"

namespace {

using namespace exfiltap::detectors;  // NOLINT(google-build-using-namespace)

void check(bool condition) {
    if (!condition) {
        std::abort();
    }
}

std::vector<EdmTableRules>* g_tables = nullptr;

std::vector<EdmTableRules>* make_tables() {
    EdmSchema schema;
    schema.table = "customers";
    schema.primary = 0;
    schema.columns = {{"account", EdmColumnType::Number}, {"name", EdmColumnType::Name},
            {"email", EdmColumnType::Email}, {"street", EdmColumnType::Address}};
    const SipKey key{0x0706050403020100ULL, 0x0f0e0d0c0b0a0908ULL};
    EdmIndexBuilder builder(schema, key, false);
    const std::array<std::array<std::string_view, 4>, 4> rows = {{
            {"4100123456", "Mary O'Brien", "mary@example.com", "12 Elm Street"},
            {"4100-654-321", "John Smith", "js@example.org", "7 Birch Court Apt 3"},
            {"990011223344", "Ana Lima", "ana.lima@example.net", "1 Rua Nova"},
            {"123456789012", "Kwame Mensah", "k@example.com", "99 Quarry Lane"},
    }};
    for (const auto& row : rows) {
        check(builder.add_row(row).ok());
    }
    const std::string path = "/tmp/exfiltap_edm_matcher_fuzz_" + std::to_string(getpid()) + ".edm";
    check(builder.write(path).ok());
    auto index = EdmIndex::load(path, key);
    unlink(path.c_str());
    check(index.ok());
    auto* tables = new std::vector<EdmTableRules>(2);
    (*tables)[0].index = *index;
    (*tables)[0].min_matches = 2;
    (*tables)[0].window_bytes = 64;
    (*tables)[1].index = *index;  // a second table on the same index: both paths run
    (*tables)[1].min_matches = 0;
    (*tables)[1].window_bytes = 16;
    return tables;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    if (g_tables == nullptr) {
        g_tables = make_tables();
    }
    if (size == 0) {
        return 0;
    }
    const size_t piece = 1 + (data[0] & 0x3f);
    const bool gaps = (data[0] & 0x40) != 0;
    ++data;
    --size;
    EdmCounters counters;
    EdmStream stream;
    stream.reset(*g_tables, counters);
    FindingSink sink;
    std::array<uint32_t, 2> last{};
    const auto take = [&] {
        for (size_t i = 0; i < sink.count; ++i) {
            const Finding& f = sink.items[i];
            check(f.cls == ContentClass::Edm);
            check(f.rule == 1 || f.rule == 2);
            check(f.value_len == 0);
            check((f.columns & 1U) != 0 && f.columns < (1U << 4));
            check(f.distinct_count >= last[f.rule - 1]);
            last[f.rule - 1] = f.distinct_count;
        }
        sink.clear();
    };
    uint64_t offset = 0;
    for (size_t at = 0; at < size; at += piece) {
        const size_t n = std::min(piece, size - at);
        const bool gap = gaps && (data[at] & 1) != 0;
        stream.scan({data + at, n}, offset + (gap ? 7 : 0), gap, sink);
        offset += n + (gap ? 7 : 0);
        take();
    }
    stream.finish(offset, sink);
    take();
    return 0;
}
