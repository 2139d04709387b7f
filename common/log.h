// The log facade. Control-side code logs with a component name (the folder) and a level.
// Thread-safe (one write per message). Workers never call it: they count instead.
#pragma once

#include <string_view>

namespace exfiltap {

enum class LogLevel {
    Debug,
    Info,
    Warning,
    Error,
};

/// Messages below `level` are discarded. Default: Info.
void set_log_level(LogLevel level) noexcept;

/// Writes one line to stderr: time, level, component, message.
void log(LogLevel level, std::string_view component, std::string_view message) noexcept;

inline void log_info(std::string_view component, std::string_view message) noexcept {
    log(LogLevel::Info, component, message);
}
inline void log_warning(std::string_view component, std::string_view message) noexcept {
    log(LogLevel::Warning, component, message);
}
inline void log_error(std::string_view component, std::string_view message) noexcept {
    log(LogLevel::Error, component, message);
}

}  // namespace exfiltap
