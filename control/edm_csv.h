// The table side of `exfiltap-edm index`: a streaming RFC 4180 CSV reader (bounded memory
// whatever the file's size) and the loop that maps a CSV's header to an EDM schema and feeds
// each row to the index builder. Messages name file and line, never a field's content: the
// table is the organisation's sensitive data.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "detectors/edm_index.h"

namespace exfiltap::control {

/// Reads CSV records one at a time: fields separated by ',', records by LF or CRLF, fields
/// in double quotes may hold ',', CR, LF and "" (one quote). A UTF-8 byte order mark at the
/// start is skipped; empty lines are skipped. Memory: a 1 MiB read buffer and one record.
class CsvReader {
public:
    /// Longest record kept (bytes of its fields); longer records are Bad.
    static constexpr size_t kMaxRecordBytes = 1 << 20;
    /// Most fields of a record; more is Bad.
    static constexpr size_t kMaxFields = 4096;

    enum class Status {
        Record,  // fields() holds the record
        Bad,     // a malformed record was read and skipped; problem() says why
        End,     // no more records
        Error,   // the file could not be read; problem() says why
    };

    /// Opens `path` (errors name it).
    static Result<std::unique_ptr<CsvReader>> open(const std::string& path);
    /// Reads `text` (not copied: it must outlive the reader); `name` starts messages.
    CsvReader(std::string_view text, std::string name);
    ~CsvReader();
    CsvReader(const CsvReader&) = delete;
    CsvReader& operator=(const CsvReader&) = delete;

    Status next();
    /// The fields of the last Record, valid until the next call.
    std::span<const std::string_view> fields() const { return fields_; }
    /// 1-based line on which the last record (or bad record) started.
    uint64_t line() const { return record_line_; }
    /// "NAME:LINE: what" for Bad and Error.
    const std::string& problem() const { return problem_; }
    const std::string& name() const { return name_; }
    /// Bytes consumed so far.
    uint64_t bytes_read() const { return consumed_; }

private:
    CsvReader(int fd, std::string name);
    /// Next byte, or -1 at the end (or after a read error, with read_error_ set).
    int get();
    int peek();
    bool refill();
    void end_field();
    void mark_bad(const std::string& what);

    int fd_ = -1;
    std::string name_;
    std::string_view text_;     // memory input
    std::vector<char> buffer_;  // file input
    const char* pos_ = nullptr;
    const char* end_ = nullptr;
    bool eof_ = false;
    bool started_ = false;
    int read_errno_ = 0;
    uint64_t consumed_ = 0;
    uint64_t line_ = 1;  // line of the next byte
    uint64_t record_line_ = 0;
    std::string record_;        // field bytes of the current record, back to back
    std::vector<size_t> ends_;  // end offset of each field in record_
    std::vector<std::string_view> fields_;
    std::string problem_;
    bool bad_ = false;
};

/// What feeding a CSV to the builder saw (the builder's own report counts values).
struct EdmCsvReport {
    uint64_t records = 0;                  // data records read (header excluded)
    uint64_t bad_rows = 0;                 // malformed or wrong field count, skipped
    std::vector<std::string> bad_samples;  // the first kMaxBadSamples, "FILE:LINE: why"
    uint64_t csv_bytes = 0;
    static constexpr size_t kMaxBadSamples = 5;
};

/// Maps schema column i to a header field index: by name, surrounding spaces of header
/// names ignored, columns the schema does not name ignored. Errors name every schema column
/// the header lacks, or a header name given twice.
Result<std::vector<uint32_t>> edm_map_header(const detectors::EdmSchema& schema,
        std::span<const std::string_view> header, const std::string& file);

/// Reads the header and every row of `csv` into `builder` (in schema column order). Rows
/// with the wrong field count or bad quoting are counted and skipped. Errors: no header, a
/// missing column, a read error, the builder's errors (too many rows).
Result<EdmCsvReport> edm_feed_csv(
        CsvReader& csv, const detectors::EdmSchema& schema, detectors::EdmIndexBuilder& builder);

}  // namespace exfiltap::control
