// Small durable files of the state directory (baselines): written to a temporary file,
// synced, renamed into place, and the directory synced, so a crash leaves the old or the
// new content, never a mix. Control thread.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "common/result.h"

namespace exfiltap::control {

/// Replaces DIR/NAME with `data` (mode 0600) durably.
Status write_state_file(const std::string& dir, const std::string& name, std::string_view data);

/// The content of DIR/NAME; nullopt when it does not exist.
Result<std::optional<std::string>> read_state_file(const std::string& dir, const std::string& name);

/// Moves DIR/NAME aside to DIR/NAME.corrupt-<unix seconds>; returns the new path.
Result<std::string> move_state_file_aside(const std::string& dir, const std::string& name);

}  // namespace exfiltap::control
