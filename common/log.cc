#include "common/log.h"

#include <stdio.h>
#include <time.h>

#include <array>
#include <atomic>

namespace exfiltap {
namespace {

std::atomic<LogLevel> g_level{
        LogLevel::Info};  // NOLINT(cppcoreguidelines-avoid-non-const-global-variables)

const char* level_name(LogLevel level) {
    switch (level) {
    case LogLevel::Debug:
        return "debug";
    case LogLevel::Info:
        return "info";
    case LogLevel::Warning:
        return "warning";
    case LogLevel::Error:
        return "error";
    }
    return "?";
}

}  // namespace

void set_log_level(LogLevel level) noexcept {
    g_level.store(level, std::memory_order_relaxed);
}

void log(LogLevel level, std::string_view component, std::string_view message) noexcept {
    if (level < g_level.load(std::memory_order_relaxed)) {
        return;
    }
    timespec now{};
    clock_gettime(CLOCK_REALTIME, &now);
    tm parts{};
    gmtime_r(&now.tv_sec, &parts);
    std::array<char, 32> stamp{};
    strftime(stamp.data(), stamp.size(), "%Y-%m-%dT%H:%M:%SZ", &parts);
    // One fprintf per message keeps lines whole when threads log at once.
    fprintf(stderr, "%s %s [%.*s] %.*s\n", stamp.data(), level_name(level),
            static_cast<int>(component.size()), component.data(), static_cast<int>(message.size()),
            message.data());
}

}  // namespace exfiltap
