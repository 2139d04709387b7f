#include "control/audit_log.h"

#include <fcntl.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <ctime>
#include <system_error>
#include <utility>

#include <nlohmann/json.hpp>

namespace exfiltap::control {
namespace {

std::string utc_time(int64_t seconds) {
    const auto whole = static_cast<time_t>(seconds < 0 ? 0 : seconds);
    tm parts{};
    if (gmtime_r(&whole, &parts) == nullptr) {
        return "?";
    }
    std::array<char, 64> text{};
    if (strftime(text.data(), text.size(), "%Y-%m-%dT%H:%M:%SZ", &parts) == 0) {
        return "?";
    }
    return text.data();
}

Result<FILE*> open_append(const std::string& path) {
    const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
    if (fd < 0) {
        return make_error(
                path + ": cannot open audit log: " + std::generic_category().message(errno));
    }
    FILE* file = fdopen(fd, "a");
    if (file == nullptr) {
        const int saved = errno;
        ::close(fd);
        return make_error(
                path + ": cannot open audit log: " + std::generic_category().message(saved));
    }
    return file;
}

}  // namespace

std::string audit_to_json(const AuditRecord& record) {
    nlohmann::ordered_json json;
    json["time"] = utc_time(record.time_s);
    json["who"] = record.who;
    json["action"] = record.action;
    json["target"] = record.target;
    json["reason"] = record.reason;
    json["result"] = record.result;
    return json.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
}

Result<AuditLog> AuditLog::open(const std::string& path) {
    auto file = open_append(path);
    if (!file) {
        return make_error(file.error());
    }
    AuditLog log;
    log.path_ = path;
    log.file_ = *file;
    return log;
}

AuditLog::AuditLog(AuditLog&& other) noexcept
    : path_(std::move(other.path_)),
      file_(std::exchange(other.file_, nullptr)),
      written_(std::exchange(other.written_, 0)),
      failed_(std::exchange(other.failed_, 0)) {}

AuditLog& AuditLog::operator=(AuditLog&& other) noexcept {
    if (this != &other) {
        if (file_ != nullptr) {
            fclose(file_);
        }
        path_ = std::move(other.path_);
        file_ = std::exchange(other.file_, nullptr);
        written_ = std::exchange(other.written_, 0);
        failed_ = std::exchange(other.failed_, 0);
    }
    return *this;
}

AuditLog::~AuditLog() {
    if (file_ != nullptr) {
        fclose(file_);
    }
}

void AuditLog::write(const AuditRecord& record) {
    if (file_ == nullptr) {
        ++failed_;
        return;
    }
    const std::string line = audit_to_json(record) + "\n";
    if (fwrite(line.data(), 1, line.size(), file_) != line.size() || fflush(file_) != 0) {
        ++failed_;
        return;
    }
    ++written_;
}

Status AuditLog::reopen() {
    auto file = open_append(path_);
    if (!file) {
        return make_error(file.error());
    }
    if (file_ != nullptr) {
        fclose(file_);
    }
    file_ = *file;
    return Ok{};
}

}  // namespace exfiltap::control
