// libFuzzer target for exfiltap-edm's CSV reader and row loop: the input is a CSV table,
// fed record by record to the reader and, through the header mapping, to an index builder
// with a fixed four-column schema. Checks: no read out of bounds (ASan), no undefined
// behaviour (UBSan), every record's fields stay within the record limits, bad-row messages
// name the reader's file, and the builder's counts add up.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "control/edm_csv.h"
#include "detectors/edm_index.h"

namespace {

using exfiltap::control::CsvReader;
using exfiltap::detectors::EdmColumnType;
using exfiltap::detectors::EdmIndexBuilder;
using exfiltap::detectors::EdmSchema;

void check(bool condition) {
    if (!condition) {
        std::abort();
    }
}

EdmSchema schema() {
    EdmSchema s;
    s.table = "fuzz";
    s.columns = {{"id", EdmColumnType::Number}, {"name", EdmColumnType::Name},
            {"mail", EdmColumnType::Email}, {"addr", EdmColumnType::Address}};
    return s;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string_view text(reinterpret_cast<const char*>(data), size);

    // The reader alone: every record, good or bad.
    {
        CsvReader csv(text, "fuzz.csv");
        uint64_t last_line = 0;
        for (;;) {
            const auto status = csv.next();
            if (status == CsvReader::Status::End) {
                break;
            }
            check(status != CsvReader::Status::Error);
            check(csv.line() > last_line);
            last_line = csv.line();
            if (status == CsvReader::Status::Bad) {
                check(csv.problem().rfind("fuzz.csv:", 0) == 0);
                continue;
            }
            size_t bytes = 0;
            for (const auto field : csv.fields()) {
                bytes += field.size();
            }
            check(bytes <= CsvReader::kMaxRecordBytes);
            check(csv.fields().size() >= 1 && csv.fields().size() <= CsvReader::kMaxFields);
        }
        check(csv.bytes_read() <= size);
    }

    // Header mapping and rows into a builder (the header must name id, name, mail, addr).
    CsvReader csv(text, "fuzz.csv");
    EdmIndexBuilder builder(schema(), {1, 2}, (size & 1) != 0);
    auto fed = exfiltap::control::edm_feed_csv(csv, schema(), builder);
    if (fed.ok()) {
        const auto& r = builder.report();
        check(r.rows + r.rows_without_primary + r.duplicate_primaries + fed.value().bad_rows
                == fed.value().records);
        check(fed.value().bad_samples.size() <= fed.value().bad_rows);
    }
    return 0;
}
