// The `behaviour` config section (detectors/behaviour_config.h holds the values and their
// defaults). Read on the control thread at load, --set and reload.
#pragma once

#include "control/config_reader.h"
#include "detectors/behaviour_config.h"

namespace exfiltap::control {

/// Applies the `behaviour` section (an Entry of the top level) onto `out`: keys present
/// replace their defaults; a list (internal_domains) replaces the list whole. Byte sizes are
/// integers (bytes) or an integer with a unit: KB, MB, GB, TB (powers of 1000) or KiB, MiB,
/// GiB, TiB (powers of 1024), e.g. "500MB". Every bad value is added to `problems` as
/// FILE:LINE: behaviour.detector.key: what.
void apply_behaviour(config_reader::Problems& problems, const config_reader::Entry& section,
        detectors::BehaviourConfig& out);

}  // namespace exfiltap::control
