// The `assets` config section (DESIGN.md "Config outline"): a list of named assets, each with
// address prefixes, a classification and roles, read into a detectors::AssetInventory.
// Control thread, at load and reload.
#pragma once

#include <cstddef>

#include "control/config_reader.h"
#include "detectors/asset_inventory.h"

namespace exfiltap::control {

/// Limits of the section: an inventory names hosts and subnets, not every address.
inline constexpr size_t kMaxAssets = 4096;
inline constexpr size_t kMaxAssetPrefixes = 1024;
inline constexpr size_t kMaxAssetNameLen = 64;

/// Reads the `assets` list (an Entry from entries_of() of the top level) into `out`, which
/// it replaces whole when the section has no problem (a null section empties it). Every bad
/// value is added to `problems` as FILE:LINE: assets[i].key: what (duplicate names, bad or
/// repeated prefixes, unknown roles, classifications and keys, missing name or prefixes).
void apply_assets(config_reader::Problems& problems, const config_reader::Entry& section,
        detectors::AssetInventory& out);

}  // namespace exfiltap::control
