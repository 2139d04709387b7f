// A small JSON Schema validator for the subset of draft 2020-12 (and draft-07) that the
// schemas in schema/ use, so tests can hold every emitted record to them. Test code only.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace exfiltap::testing {

/// Validates `doc` against `schema` and returns one message per violation, empty when the
/// document is valid. A message starts with the JSON Pointer of the offending value
/// ("(root)" for the document itself): "/exfil/sample: does not match pattern ^\*+[^*]{0,4}$".
///
/// Supported: boolean schemas; `type` (string or array; "integer" accepts any number without
/// a fraction), `enum`, `const`, `required`, `properties`, `additionalProperties` (boolean or
/// schema), `items` (one schema), `minItems`, `maxItems`, `minimum`, `maximum`, `minLength`
/// (in code points), `pattern` (std::regex ECMAScript over code points, unanchored as the
/// spec says), `$ref` to a JSON Pointer in the same schema ("#/$defs/x", "#/definitions/x";
/// applied together with its sibling keywords, as in 2020-12, also for draft-07), `$defs`,
/// `definitions`, and the annotations `$schema` (2020-12 or draft-07), `$id`, `$comment`,
/// `title`, `description`, `default`, `examples`.
///
/// The whole schema is checked first, every subschema whether the document reaches it or not:
/// any other keyword gives "schema #/pointer: unsupported keyword X", and a malformed value
/// (a pattern that does not compile, a $ref that does not resolve) an error too. Then only
/// these errors are returned, so a schema can never pass a document by ignoring a keyword.
std::vector<std::string> validate(const nlohmann::json& schema, const nlohmann::json& doc);

}  // namespace exfiltap::testing
