#include "control/edm_csv.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <system_error>

namespace exfiltap::control {
namespace {

constexpr size_t kReadBytes = 1 << 20;

std::string_view trimmed(std::string_view text) {
    while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) {
        text.remove_prefix(1);
    }
    while (!text.empty() && (text.back() == ' ' || text.back() == '\t')) {
        text.remove_suffix(1);
    }
    return text;
}

}  // namespace

Result<std::unique_ptr<CsvReader>> CsvReader::open(const std::string& path) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return make_error(path + ": cannot open table: " + std::generic_category().message(errno));
    }
    posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
    return std::unique_ptr<CsvReader>(new CsvReader(fd, path));
}

CsvReader::CsvReader(std::string_view text, std::string name)
    : name_(std::move(name)), text_(text) {}

CsvReader::CsvReader(int fd, std::string name) : fd_(fd), name_(std::move(name)) {
    buffer_.resize(kReadBytes);
}

CsvReader::~CsvReader() {
    if (fd_ >= 0) {
        close(fd_);
    }
}

bool CsvReader::refill() {
    if (eof_) {
        return false;
    }
    if (fd_ < 0) {
        // Memory input: all of it at once.
        pos_ = text_.data();
        end_ = text_.data() + text_.size();
        eof_ = true;
    } else {
        ssize_t n = 0;
        do {
            n = read(fd_, buffer_.data(), buffer_.size());
        } while (n < 0 && errno == EINTR);
        if (n < 0) {
            read_errno_ = errno;
        }
        if (n <= 0) {
            eof_ = true;
            return false;
        }
        pos_ = buffer_.data();
        end_ = pos_ + n;
    }
    if (!started_) {
        started_ = true;
        if (end_ - pos_ >= 3 && std::memcmp(pos_, "\xEF\xBB\xBF", 3) == 0) {
            pos_ += 3;
            consumed_ += 3;
        }
    }
    return pos_ < end_;
}

int CsvReader::get() {
    if (pos_ == end_ && !refill()) {
        return -1;
    }
    ++consumed_;
    return static_cast<unsigned char>(*pos_++);
}

int CsvReader::peek() {
    if (pos_ == end_ && !refill()) {
        return -1;
    }
    return static_cast<unsigned char>(*pos_);
}

void CsvReader::end_field() {
    if (ends_.size() >= kMaxFields) {
        mark_bad("more than " + std::to_string(kMaxFields) + " fields");
        return;
    }
    ends_.push_back(record_.size());
}

void CsvReader::mark_bad(const std::string& what) {
    if (!bad_) {
        bad_ = true;
        problem_ = name_ + ":" + std::to_string(record_line_) + ": " + what;
    }
}

CsvReader::Status CsvReader::next() {
    enum class State {
        FieldStart,
        Unquoted,
        Quoted,
        QuoteSeen
    };
    record_.clear();
    ends_.clear();
    fields_.clear();
    problem_.clear();
    bad_ = false;

    // Empty lines between records are skipped.
    for (;;) {
        const int c = peek();
        if (c == '\n') {
            get();
            ++line_;
        } else if (c == '\r' && end_ - pos_ >= 2 && pos_[1] == '\n') {
            get();
            get();
            ++line_;
        } else {
            break;
        }
    }
    record_line_ = line_;
    if (peek() < 0) {
        if (read_errno_ != 0) {
            problem_ = name_ + ": cannot read: " + std::generic_category().message(read_errno_);
            return Status::Error;
        }
        return Status::End;
    }

    State state = State::FieldStart;
    uint64_t quote_line = 0;
    auto append = [&](int c) {
        if (record_.size() >= kMaxRecordBytes) {
            mark_bad("record longer than " + std::to_string(kMaxRecordBytes) + " bytes");
            return;
        }
        record_.push_back(static_cast<char>(c));
    };
    for (;;) {
        // Plain bytes of a field, copied in runs.
        if (state == State::Unquoted || state == State::Quoted) {
            const char* run = pos_;
            while (run < end_ && *run != '"' && *run != '\n' && *run != '\r'
                    && (state == State::Quoted || *run != ',')) {
                ++run;
            }
            const auto n = static_cast<size_t>(run - pos_);
            if (n > 0) {
                if (record_.size() + n > kMaxRecordBytes) {
                    mark_bad("record longer than " + std::to_string(kMaxRecordBytes) + " bytes");
                } else {
                    record_.append(pos_, n);
                }
                pos_ = run;
                consumed_ += n;
            }
        }
        const int c = get();
        if (c < 0) {
            if (state == State::Quoted) {
                mark_bad("quoted field opened on line " + std::to_string(quote_line)
                        + " is never closed");
            }
            end_field();
            break;
        }
        bool end_record = false;
        switch (state) {
        case State::FieldStart:
            if (c == '"') {
                state = State::Quoted;
                quote_line = line_;
                break;
            }
            state = State::Unquoted;
            [[fallthrough]];
        case State::Unquoted:
            if (c == ',') {
                end_field();
                state = State::FieldStart;
            } else if (c == '\n' || (c == '\r' && peek() == '\n')) {
                if (c == '\r') {
                    get();
                }
                ++line_;
                end_field();
                end_record = true;
            } else if (c == '"') {
                mark_bad("a quote inside unquoted field " + std::to_string(ends_.size() + 1));
                append(c);
            } else {
                append(c);
            }
            break;
        case State::Quoted:
            if (c == '"') {
                state = State::QuoteSeen;
            } else {
                line_ += c == '\n' ? 1 : 0;
                append(c);
            }
            break;
        case State::QuoteSeen:
            if (c == '"') {
                append(c);
                state = State::Quoted;
            } else if (c == ',') {
                end_field();
                state = State::FieldStart;
            } else if (c == '\n' || (c == '\r' && peek() == '\n')) {
                if (c == '\r') {
                    get();
                }
                ++line_;
                end_field();
                end_record = true;
            } else {
                mark_bad("text after the closing quote of field "
                        + std::to_string(ends_.size() + 1));
                append(c);
                state = State::Unquoted;
            }
            break;
        }
        if (end_record) {
            break;
        }
    }
    if (read_errno_ != 0) {
        problem_ = name_ + ": cannot read: " + std::generic_category().message(read_errno_);
        return Status::Error;
    }
    if (bad_) {
        return Status::Bad;
    }
    size_t begin = 0;
    for (const size_t end : ends_) {
        fields_.emplace_back(record_.data() + begin, end - begin);
        begin = end;
    }
    return Status::Record;
}

Result<std::vector<uint32_t>> edm_map_header(const detectors::EdmSchema& schema,
        std::span<const std::string_view> header, const std::string& file) {
    std::vector<uint32_t> map;
    std::string missing;
    for (const auto& column : schema.columns) {
        uint32_t found = UINT32_MAX;
        for (size_t i = 0; i < header.size(); ++i) {
            if (trimmed(header[i]) != column.name) {
                continue;
            }
            if (found != UINT32_MAX) {
                return make_error(file + ":1: column '" + column.name
                        + "' appears twice in the header (fields " + std::to_string(found + 1)
                        + " and " + std::to_string(i + 1) + ")");
            }
            found = static_cast<uint32_t>(i);
        }
        if (found == UINT32_MAX) {
            missing += (missing.empty() ? "'" : ", '") + column.name + "'";
        }
        map.push_back(found);
    }
    if (!missing.empty()) {
        return make_error(file + ":1: the header lacks the schema's column"
                + (missing.find(',') == std::string::npos ? " " : "s ") + missing
                + " (the first line must name the columns)");
    }
    return map;
}

Result<EdmCsvReport> edm_feed_csv(
        CsvReader& csv, const detectors::EdmSchema& schema, detectors::EdmIndexBuilder& builder) {
    EdmCsvReport report;
    auto status = csv.next();
    if (status == CsvReader::Status::End) {
        return make_error(csv.name() + ": empty: expected a header line naming the columns");
    }
    if (status != CsvReader::Status::Record) {
        return make_error(csv.problem() + " (in the header line)");
    }
    const size_t header_fields = csv.fields().size();
    auto map = edm_map_header(schema, csv.fields(), csv.name());
    if (!map.ok()) {
        return make_error(map.error());
    }
    std::vector<std::string_view> values(schema.columns.size());
    auto bad = [&](std::string what) {
        ++report.bad_rows;
        if (report.bad_samples.size() < EdmCsvReport::kMaxBadSamples) {
            report.bad_samples.push_back(std::move(what));
        }
    };
    for (;;) {
        status = csv.next();
        if (status == CsvReader::Status::End) {
            break;
        }
        if (status == CsvReader::Status::Error) {
            return make_error(csv.problem());
        }
        ++report.records;
        if (status == CsvReader::Status::Bad) {
            bad(csv.problem() + "; row skipped");
            continue;
        }
        const auto fields = csv.fields();
        if (fields.size() != header_fields) {
            bad(csv.name() + ":" + std::to_string(csv.line()) + ": " + std::to_string(fields.size())
                    + " fields, the header has " + std::to_string(header_fields) + "; row skipped");
            continue;
        }
        for (size_t i = 0; i < values.size(); ++i) {
            values[i] = fields[map.value()[i]];
        }
        auto added = builder.add_row(values);
        if (!added.ok()) {
            return make_error(csv.name() + ":" + std::to_string(csv.line()) + ": " + added.error());
        }
    }
    report.csv_bytes = csv.bytes_read();
    return report;
}

}  // namespace exfiltap::control
