// The schema of an exact data match table (`exfiltap-edm index --schema`): the table's name,
// its columns with their types, and which column is primary.
//
//     table: customers
//     primary: account_number
//     columns:
//       - {name: account_number, type: number}
//       - {name: full_name, type: name}
//
// Problems are reported like the config's: "FILE:LINE: key: problem", all of them at once.
#pragma once

#include <string>

#include "common/result.h"
#include "detectors/edm_index.h"

namespace exfiltap::control {

/// Largest schema file read (bytes).
inline constexpr size_t kMaxEdmSchemaBytes = 1 << 20;

/// Parses schema YAML `text`; `name` starts each problem line.
Result<detectors::EdmSchema> parse_edm_schema(const std::string& text, const std::string& name);
/// Reads and parses the schema file at `path`.
Result<detectors::EdmSchema> load_edm_schema(const std::string& path);

}  // namespace exfiltap::control
