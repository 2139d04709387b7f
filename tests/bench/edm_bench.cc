// exfiltap-edm-bench: the exact data match index on its own (detectors/edm_index.h). Builds
// an index of N generated customer rows in memory (no CSV), writes and loads it, and prints
// build, write and load times, file bytes per stored value, and lookups per second:
// find_primary, maybe_value and maybe_word for hashes of stored values (hits) and of random
// ones (misses: most tokens of real traffic), the word filter's measured false positive
// rate, plus the word hash itself. Measured, never asserted: a shared machine is noisy.
//
//     exfiltap-edm-bench [ROWS]     (default 1,000,000)
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "detectors/edm_index.h"
#include "detectors/edm_tokens.h"

namespace {

using exfiltap::detectors::EdmColumnType;
using exfiltap::detectors::EdmIndex;
using exfiltap::detectors::EdmIndexBuilder;
using exfiltap::detectors::EdmSchema;
using exfiltap::detectors::SipKey;
using Clock = std::chrono::steady_clock;

constexpr SipKey kKey{0x243f6a8885a308d3ULL, 0x13198a2e03707344ULL};
constexpr size_t kLookups = 1U << 22;

double seconds_since(Clock::time_point start) {
    return std::chrono::duration<double>(Clock::now() - start).count();
}

/// Times `lookups` calls of `one(i)` and returns calls per second; `sink` keeps the results.
template <typename F>
double per_second(size_t lookups, F&& one, uint64_t& sink) {
    const auto start = Clock::now();
    for (size_t i = 0; i < lookups; ++i) {
        sink += one(i);
    }
    return static_cast<double>(lookups) / seconds_since(start);
}

}  // namespace

int main(int argc, char** argv) {
    const uint64_t rows = argc > 1 ? std::strtoull(argv[1], nullptr, 10) : 1000000;
    EdmSchema schema;
    schema.table = "customers";
    schema.columns = {{"account_number", EdmColumnType::Number}, {"full_name", EdmColumnType::Name},
            {"email", EdmColumnType::Email}, {"street_address", EdmColumnType::Address}};

    // Build.
    std::mt19937_64 rng(1);
    EdmIndexBuilder builder(schema, kKey, false);
    std::vector<uint64_t> primaries;
    std::vector<uint32_t> values;
    std::vector<uint64_t> words;
    auto start = Clock::now();
    for (uint64_t i = 0; i < rows; ++i) {
        const std::string account = std::to_string(10000000 + i * 7);
        const std::string name =
                "Person" + std::to_string(rng() % 100000) + " Name" + std::to_string(i);
        const std::string email = "p" + std::to_string(i) + "@example.com";
        const std::string address =
                std::to_string(i % 999 + 1) + " Harbour Road Flat " + std::to_string(i % 300);
        const std::string_view row[] = {account, name, email, address};
        if (!builder.add_row(row).ok()) {
            std::fprintf(
                    stderr, "add_row failed at row %llu\n", static_cast<unsigned long long>(i));
            return 1;
        }
        if (i % 97 == 0) {
            primaries.push_back(exfiltap::detectors::edm_value_hash(kKey, EdmColumnType::Number,
                    *exfiltap::detectors::edm_normalise(EdmColumnType::Number, account)));
            values.push_back(EdmIndex::fingerprint_of(
                    exfiltap::detectors::edm_value_hash(kKey, EdmColumnType::Email,
                            *exfiltap::detectors::edm_normalise(EdmColumnType::Email, email))));
            words.push_back(exfiltap::detectors::edm_word_hash(kKey, "name" + std::to_string(i)));
        }
    }
    const double build_s = seconds_since(start);
    const std::string path = "/tmp/exfiltap_edm_bench_" + std::to_string(getpid()) + ".edm";
    start = Clock::now();
    if (const auto written = builder.write(path); !written.ok()) {
        std::fprintf(stderr, "%s\n", written.error().c_str());
        return 1;
    }
    const double write_s = seconds_since(start);
    start = Clock::now();
    auto loaded = EdmIndex::load(path, kKey);
    const double load_s = seconds_since(start);
    unlink(path.c_str());
    if (!loaded.ok()) {
        std::fprintf(stderr, "%s\n", loaded.error().c_str());
        return 1;
    }
    const EdmIndex& index = *loaded.value();

    // Lookups: hits from the stored values, misses from random hashes.
    std::vector<uint64_t> random(1U << 16);
    for (auto& r : random) {
        r = rng();
    }
    uint64_t sink = 0;
    const double primary_hit = per_second(
            kLookups, [&](size_t i) { return index.find_primary(primaries[i % primaries.size()]); },
            sink);
    const double primary_miss = per_second(
            kLookups, [&](size_t i) { return index.find_primary(random[i & 0xffff] + i); }, sink);
    const double value_hit = per_second(
            kLookups,
            [&](size_t i) { return index.maybe_value(values[i % values.size()]) ? 1U : 0U; }, sink);
    const double value_miss = per_second(
            kLookups,
            [&](size_t i) {
                return index.maybe_value(EdmIndex::fingerprint_of(random[i & 0xffff] + (i << 32)))
                        ? 1U
                        : 0U;
            },
            sink);
    const double word_hit = per_second(
            kLookups, [&](size_t i) { return index.maybe_word(words[i % words.size()]) ? 1U : 0U; },
            sink);
    uint64_t word_passed = 0;
    const double word_miss = per_second(
            kLookups,
            [&](size_t i) {
                const bool passed =
                        index.maybe_word(random[i & 0xffff] * 0x9e3779b97f4a7c15ULL + i);
                word_passed += passed ? 1 : 0;
                return passed ? 1U : 0U;
            },
            sink);
    static constexpr std::string_view kWords[] = {
            "mary", "o'brien", "harbour", "john.doe@example.com"};
    const double word_hash = per_second(
            kLookups,
            [&](size_t i) { return exfiltap::detectors::edm_word_hash(kKey, kWords[i & 3]); },
            sink);

    const auto& report = builder.report();
    std::printf("rows: %llu\n", static_cast<unsigned long long>(report.rows));
    std::printf("values stored: %llu (duplicates %llu)\n",
            static_cast<unsigned long long>(report.values),
            static_cast<unsigned long long>(report.duplicate_values));
    std::printf("build s: %.2f (%.0f rows/s)\n", build_s, static_cast<double>(rows) / build_s);
    std::printf("write s: %.2f\n", write_s);
    std::printf("load s: %.2f\n", load_s);
    std::printf("file bytes: %llu (%.1f per stored value)\n",
            static_cast<unsigned long long>(builder.file_bytes()),
            static_cast<double>(builder.file_bytes()) / static_cast<double>(report.values));
    std::printf("memory bytes: %llu\n", static_cast<unsigned long long>(index.memory_bytes()));
    std::printf("distinct words: %llu\n", static_cast<unsigned long long>(report.distinct_words));
    std::printf("word filter bytes: %llu (2^%u bits, %.1f bits per word)\n",
            static_cast<unsigned long long>(index.word_filter_bytes()), index.word_filter_log2(),
            static_cast<double>(index.word_filter_bytes()) * 8.0
                    / static_cast<double>(std::max<uint64_t>(report.distinct_words, 1)));
    std::printf("find_primary hit/s: %.3g\n", primary_hit);
    std::printf("find_primary miss/s: %.3g\n", primary_miss);
    std::printf("maybe_value hit/s: %.3g\n", value_hit);
    std::printf("maybe_value miss/s: %.3g\n", value_miss);
    std::printf("maybe_word hit/s: %.3g\n", word_hit);
    std::printf("maybe_word miss/s: %.3g (%.2f%% of random hashes passed)\n", word_miss,
            100.0 * static_cast<double>(word_passed) / static_cast<double>(kLookups));
    std::printf("word hash/s: %.3g\n", word_hash);
    std::printf("(checksum of results %llu)\n", static_cast<unsigned long long>(sink));
    return 0;
}
