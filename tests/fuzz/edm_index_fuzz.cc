// libFuzzer target for the EDM index loader: the input is an .edm file. The first byte
// chooses repairs so that the fuzzer gets past the outer checks: bit 0 rewrites the key
// check in the header for the target's key, bit 1 appends the right checksum (the input is
// then everything before it). When the file loads, lookups run over every table (the word
// filter too, at hashes spread over all its lines). Checks:
// no read out of bounds (ASan), no undefined behaviour (UBSan), lookups terminate, and what
// a loaded index reports is within its bounds.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>
#include <vector>

#include "detectors/edm_index.h"

namespace {

using exfiltap::detectors::EdmIndex;
using exfiltap::detectors::SipKey;

constexpr SipKey kKey{0x0706050403020100ULL, 0x0f0e0d0c0b0a0908ULL};
constexpr size_t kKeyCheckOffset = 12;

void check(bool condition) {
    if (!condition) {
        std::abort();
    }
}

void put_u64(std::vector<uint8_t>& bytes, size_t at, uint64_t v) {
    for (size_t i = 0; i < 8; ++i) {
        bytes[at + i] = static_cast<uint8_t>(v >> (8 * i));
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    if (size == 0) {
        return 0;
    }
    const uint8_t mode = data[0];
    std::vector<uint8_t> bytes(data + 1, data + size);
    if ((mode & 1) != 0 && bytes.size() >= kKeyCheckOffset + 8) {
        put_u64(bytes, kKeyCheckOffset, exfiltap::detectors::edm_key_check(kKey));
    }
    if ((mode & 2) != 0) {
        const uint64_t sum =
                exfiltap::detectors::siphash24(exfiltap::detectors::kEdmChecksumKey, bytes);
        bytes.resize(bytes.size() + 8);
        put_u64(bytes, bytes.size() - 8, sum);
    }
    auto loaded = EdmIndex::load_from_bytes(bytes, kKey, "fuzz.edm");
    if (!loaded.ok()) {
        check(!loaded.error().empty());
        return 0;
    }
    const EdmIndex& index = *loaded.value();
    check(index.schema().columns.size() >= 1);
    check(index.schema().primary < index.schema().columns.size());
    check(index.other_columns() + 1 == index.schema().columns.size());
    check(index.max_words() >= 1);
    check(index.has_word_filter());
    check(index.word_filter_log2() >= exfiltap::detectors::kEdmWordFilterMinLog2);
    check(index.word_filter_log2() <= exfiltap::detectors::kEdmWordFilterMaxLog2);
    check(index.word_filter_bytes() == (uint64_t{1} << index.word_filter_log2()) / 8);
    check(index.memory_bytes() >= index.word_filter_bytes());
    // Lookups of hashes made from the input, and of each row's own fingerprints.
    uint64_t h = 0x9e3779b97f4a7c15ULL;
    for (size_t i = 0; i < 64; ++i) {
        h = h * 6364136223846793005ULL + 1442695040888963407ULL + (i < bytes.size() ? bytes[i] : 0);
        const uint32_t row = index.find_primary(h);
        check(row == EdmIndex::kNoRow || row < index.rows());
        static_cast<void>(index.maybe_value(static_cast<uint32_t>(h >> 32)));
        static_cast<void>(index.maybe_word(h));
        static_cast<void>(index.maybe_word(~h));
    }
    for (uint32_t row = 0; row < index.rows() && row < 64; ++row) {
        for (uint32_t slot = 0; slot < index.other_columns(); ++slot) {
            // A damaged file may hold fingerprints the filter lacks; the lookup must still end.
            static_cast<void>(index.maybe_value(index.fingerprint(row, slot)));
            check(index.column_of_slot(slot) < index.schema().columns.size());
            check(index.column_of_slot(slot) != index.schema().primary);
        }
    }
    return 0;
}
