// The `edm` config section: exact-data-match tables (index files built by `exfiltap-edm
// index`) and their matching rules, the key file and the per-worker state blocks. Read on
// the control thread at load, --set and reload; the index files are loaded by load_edm()
// once the whole configuration (state_dir included) is known.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/result.h"
#include "control/config_reader.h"
#include "detectors/content_types.h"

namespace exfiltap::control {

struct EdmSettings {
    /// The SipHash key the indexes were built with; empty: STATE_DIR/edm.key.
    std::string key_file;
    /// EDM state blocks per worker (a few KiB each; one per scanned flow direction while
    /// EDM runs). Needs a restart to change.
    uint32_t state_slots = 16384;
};

/// Applies the `edm` section onto `settings` and `tables` (a `tables` key replaces the list
/// whole; each table gets its index path and rules, its index is left null). Problems are
/// reported as FILE:LINE: edm.tables[i].key: what.
void apply_edm(config_reader::Problems& problems, const config_reader::Entry& section,
        EdmSettings& settings, std::vector<detectors::EdmTableRules>& tables);

/// Loads every configured table's index with the key of `settings` (or STATE_DIR/edm.key)
/// and checks that table names differ. Errors name the table's config line and the file.
Status load_edm(const std::string& state_dir, const EdmSettings& settings,
        std::vector<detectors::EdmTableRules>& tables);

}  // namespace exfiltap::control
