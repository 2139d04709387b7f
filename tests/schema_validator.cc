#include "tests/schema_validator.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <map>
#include <optional>
#include <regex>
#include <set>
#include <string_view>

namespace exfiltap::testing {
namespace {

using nlohmann::json;

// Patterns are matched over code points, as the spec asks; wchar_t holds one on Linux.
static_assert(sizeof(wchar_t) >= 4, "code points must fit in wchar_t");

constexpr std::string_view kDraft202012 = "https://json-schema.org/draft/2020-12/schema";
constexpr std::string_view kDraft07 = "http://json-schema.org/draft-07/schema#";
constexpr std::string_view kDraft07NoHash = "http://json-schema.org/draft-07/schema";
// $refs followed in a row without descending into the document: more means a cycle.
constexpr int kMaxRefChain = 32;

const std::set<std::string, std::less<>> kTypeNames = {
        "null", "boolean", "object", "array", "number", "integer", "string"};

/// How the schema check treats each supported keyword; any other keyword is an error.
enum class Keyword {
    Annotation,  // any value, no effect
    Dialect,
    SchemaMap,  // an object of subschemas
    Schema,
    Items,
    Ref,
    Type,
    Enum,
    Const,
    Required,
    Count,  // a non-negative integer
    Number,
    Pattern,
};
const std::map<std::string, Keyword, std::less<>> kKeywords = {
        {"$schema", Keyword::Dialect},
        {"$id", Keyword::Annotation},
        {"$comment", Keyword::Annotation},
        {"title", Keyword::Annotation},
        {"description", Keyword::Annotation},
        {"default", Keyword::Annotation},
        {"examples", Keyword::Annotation},
        {"$defs", Keyword::SchemaMap},
        {"definitions", Keyword::SchemaMap},
        {"properties", Keyword::SchemaMap},
        {"additionalProperties", Keyword::Schema},
        {"items", Keyword::Items},
        {"$ref", Keyword::Ref},
        {"type", Keyword::Type},
        {"enum", Keyword::Enum},
        {"const", Keyword::Const},
        {"required", Keyword::Required},
        {"minItems", Keyword::Count},
        {"maxItems", Keyword::Count},
        {"minLength", Keyword::Count},
        {"minimum", Keyword::Number},
        {"maximum", Keyword::Number},
        {"pattern", Keyword::Pattern},
};

/// RFC 6901 escaping of one reference token.
std::string escape_token(std::string_view token) {
    std::string out;
    for (const char c : token) {
        if (c == '~') {
            out += "~0";
        } else if (c == '/') {
            out += "~1";
        } else {
            out += c;
        }
    }
    return out;
}

std::string unescape_token(std::string_view token) {
    std::string out;
    for (size_t i = 0; i < token.size(); ++i) {
        if (token[i] == '~' && i + 1 < token.size()
                && (token[i + 1] == '0' || token[i + 1] == '1')) {
            out += token[i + 1] == '0' ? '~' : '/';
            ++i;
        } else {
            out += token[i];
        }
    }
    return out;
}

std::string show_path(const std::string& pointer) {
    return pointer.empty() ? "(root)" : pointer;
}

/// UTF-8 to code points; a byte that does not start a valid sequence becomes U+FFFD.
std::wstring decode_utf8(std::string_view text) {
    std::wstring out;
    size_t i = 0;
    while (i < text.size()) {
        const auto lead = static_cast<unsigned char>(text[i]);
        size_t extra = 0;
        uint32_t cp = 0;
        if (lead < 0x80) {
            cp = lead;
        } else if ((lead & 0xE0) == 0xC0) {
            extra = 1;
            cp = lead & 0x1Fu;
        } else if ((lead & 0xF0) == 0xE0) {
            extra = 2;
            cp = lead & 0x0Fu;
        } else if ((lead & 0xF8) == 0xF0) {
            extra = 3;
            cp = lead & 0x07u;
        } else {
            out.push_back(static_cast<wchar_t>(0xFFFD));
            ++i;
            continue;
        }
        bool ok = i + extra < text.size() || extra == 0;
        for (size_t k = 1; ok && k <= extra; ++k) {
            const auto next = static_cast<unsigned char>(text[i + k]);
            ok = (next & 0xC0) == 0x80;
            cp = (cp << 6) | (next & 0x3Fu);
        }
        if (!ok) {
            out.push_back(static_cast<wchar_t>(0xFFFD));
            ++i;
            continue;
        }
        out.push_back(static_cast<wchar_t>(cp));
        i += extra + 1;
    }
    return out;
}

bool is_integer(const json& value) {
    if (value.is_number_integer()) {
        return true;
    }
    if (!value.is_number_float()) {
        return false;
    }
    const double d = value.get<double>();
    return std::isfinite(d) && std::floor(d) == d;
}

/// Any JSON number as long double: exact for every int64 and uint64 on x86-64 (64-bit
/// mantissa), so a large flow_id compares right against a limit.
long double as_number(const json& value) {
    if (value.is_number_unsigned()) {
        return static_cast<long double>(value.get<uint64_t>());
    }
    if (value.is_number_integer()) {
        return static_cast<long double>(value.get<int64_t>());
    }
    return static_cast<long double>(value.get<double>());
}

bool has_type(const json& value, std::string_view type) {
    if (type == "integer") {
        return is_integer(value);
    }
    if (type == "number") {
        return value.is_number();
    }
    if (type == "null") {
        return value.is_null();
    }
    if (type == "boolean") {
        return value.is_boolean();
    }
    if (type == "object") {
        return value.is_object();
    }
    if (type == "array") {
        return value.is_array();
    }
    return type == "string" && value.is_string();
}

std::string type_of(const json& value) {
    return value.is_number() ? (is_integer(value) ? "integer" : "number") : value.type_name();
}

bool is_count(const json& value) {
    return is_integer(value) && as_number(value) >= 0;
}

bool is_dialect(const json& value) {
    return value.is_string()
            && (value.get<std::string>() == kDraft202012 || value.get<std::string>() == kDraft07
                    || value.get<std::string>() == kDraft07NoHash);
}

bool is_type_list(const json& value) {
    const auto known = [](const json& name) {
        return name.is_string() && kTypeNames.count(name.get<std::string>()) != 0;
    };
    return known(value)
            || (value.is_array() && !value.empty()
                    && std::all_of(value.begin(), value.end(), known));
}

bool is_string_array(const json& value) {
    return value.is_array() && std::all_of(value.begin(), value.end(), [](const json& name) {
        return name.is_string();
    });
}

class Validator {
public:
    explicit Validator(const json& root) : root_(root) {}

    /// Every subschema, reached or not: unsupported keywords and malformed values.
    void check_schema(const json& schema, const std::string& at) {
        // Reached both where it stands and through $refs: check each subschema once.
        if (schema.is_boolean() || !checked_.insert(&schema).second) {
            return;
        }
        if (!schema.is_object()) {
            schema_error(at, "is not a schema (an object or a boolean)");
            return;
        }
        for (const auto& [key, value] : schema.items()) {
            check_keyword(key, value, at);
        }
    }

    void validate(const json& schema, const json& doc, const std::string& at, int ref_chain) {
        if (schema.is_boolean()) {
            if (!schema.get<bool>()) {
                error(at, "no value is allowed here (schema false)");
            }
            return;
        }
        if (const auto ref = schema.find("$ref"); ref != schema.end()) {
            if (ref_chain >= kMaxRefChain) {
                error(at,
                        "$ref chain longer than " + std::to_string(kMaxRefChain)
                                + " without reaching a value (a cycle?)");
                return;
            }
            validate(*resolve(ref->get<std::string>()), doc, at, ref_chain + 1);
        }
        check_type(schema, doc, at);
        if (const auto e = schema.find("enum"); e != schema.end()) {
            if (std::find(e->begin(), e->end(), doc) == e->end()) {
                error(at, "value " + doc.dump() + " is not one of " + e->dump());
            }
        }
        if (const auto c = schema.find("const"); c != schema.end() && *c != doc) {
            error(at, "value " + doc.dump() + " is not the constant " + c->dump());
        }
        if (doc.is_object()) {
            check_object(schema, doc, at);
        } else if (doc.is_array()) {
            check_array(schema, doc, at);
        } else if (doc.is_number()) {
            check_number(schema, doc, at);
        } else if (doc.is_string()) {
            check_string(schema, doc.get<std::string>(), at);
        }
    }

    std::vector<std::string>& errors() { return errors_; }

private:
    void error(const std::string& at, const std::string& what) {
        errors_.push_back(show_path(at) + ": " + what);
    }

    void schema_error(const std::string& at, const std::string& what) {
        errors_.push_back("schema #" + at + ": " + what);
    }

    void check_keyword(const std::string& key, const json& value, const std::string& at) {
        const auto kind = kKeywords.find(key);
        if (kind == kKeywords.end()) {
            schema_error(at, "unsupported keyword " + key);
            return;
        }
        const std::string here = at + "/" + escape_token(key);
        switch (kind->second) {
        case Keyword::SchemaMap:
            check_schema_map(value, here);
            return;
        case Keyword::Schema:
            check_schema(value, here);
            return;
        case Keyword::Items:
            if (value.is_array()) {
                schema_error(here, "unsupported keyword items (array form)");
                return;
            }
            check_schema(value, here);
            return;
        case Keyword::Ref:
            check_ref(value, here);
            return;
        default:
            break;
        }
        const std::string problem = value_problem(kind->second, value);
        if (!problem.empty()) {
            schema_error(here, problem);
        }
    }

    void check_schema_map(const json& value, const std::string& at) {
        if (!value.is_object()) {
            schema_error(at, "must be an object");
            return;
        }
        for (const auto& [name, sub] : value.items()) {
            check_schema(sub, at + "/" + escape_token(name));
        }
    }

    void check_ref(const json& value, const std::string& at) {
        const json* target = value.is_string() ? resolve(value.get<std::string>()) : nullptr;
        if (target == nullptr) {
            schema_error(at,
                    "cannot resolve " + value.dump()
                            + R"( (only "#" and "#/json/pointer" into this schema))");
            return;
        }
        // A target outside $defs (say "#/properties/x") is checked as a schema too.
        check_schema(*target, value.get<std::string>().substr(1));
    }

    /// What is wrong with the value of a keyword that holds no subschema; "" when nothing.
    std::string value_problem(Keyword kind, const json& value) {
        switch (kind) {
        case Keyword::Dialect:
            return is_dialect(value) ? "" : "unsupported dialect " + value.dump();
        case Keyword::Type:
            return is_type_list(value) ? "" : "unknown type " + value.dump();
        case Keyword::Enum:
            return value.is_array() ? "" : "must be an array";
        case Keyword::Required:
            return is_string_array(value) ? "" : "must be an array of strings";
        case Keyword::Count:
            return is_count(value) ? "" : "must be a non-negative integer";
        case Keyword::Number:
            return value.is_number() ? "" : "must be a number";
        case Keyword::Pattern:
            return value.is_string() && regex(value.get<std::string>()) != nullptr
                    ? ""
                    : "is not an ECMAScript regular expression: " + value.dump();
        default:
            break;
        }
        return "";  // annotations and const take any value
    }

    void check_type(const json& schema, const json& doc, const std::string& at) {
        const auto type = schema.find("type");
        if (type == schema.end()) {
            return;
        }
        if (type->is_string()) {
            if (!has_type(doc, type->get<std::string>())) {
                error(at, "expected type " + type->get<std::string>() + ", got " + type_of(doc));
            }
            return;
        }
        const bool any = std::any_of(type->begin(), type->end(),
                [&](const json& name) { return has_type(doc, name.get<std::string>()); });
        if (!any) {
            error(at, "expected type " + type->dump() + ", got " + type_of(doc));
        }
    }

    void check_object(const json& schema, const json& doc, const std::string& at) {
        if (const auto required = schema.find("required"); required != schema.end()) {
            for (const json& name : *required) {
                if (!doc.contains(name.get<std::string>())) {
                    error(at + "/" + escape_token(name.get<std::string>()),
                            "required property missing");
                }
            }
        }
        const auto properties = schema.find("properties");
        const auto additional = schema.find("additionalProperties");
        for (const auto& [name, value] : doc.items()) {
            const std::string here = at + "/" + escape_token(name);
            if (properties != schema.end() && properties->contains(name)) {
                validate(properties->at(name), value, here, 0);
            } else if (additional != schema.end()) {
                if (additional->is_boolean() && !additional->get<bool>()) {
                    error(here, "additional property not allowed");
                } else {
                    validate(*additional, value, here, 0);
                }
            }
        }
    }

    void check_array(const json& schema, const json& doc, const std::string& at) {
        if (const auto items = schema.find("items"); items != schema.end()) {
            for (size_t i = 0; i < doc.size(); ++i) {
                validate(*items, doc[i], at + "/" + std::to_string(i), 0);
            }
        }
        if (const auto min = schema.find("minItems");
                min != schema.end() && doc.size() < min->get<uint64_t>()) {
            error(at,
                    "has " + std::to_string(doc.size()) + " items, fewer than minItems "
                            + min->dump());
        }
        if (const auto max = schema.find("maxItems");
                max != schema.end() && doc.size() > max->get<uint64_t>()) {
            error(at,
                    "has " + std::to_string(doc.size()) + " items, more than maxItems "
                            + max->dump());
        }
    }

    void check_number(const json& schema, const json& doc, const std::string& at) {
        if (const auto min = schema.find("minimum");
                min != schema.end() && as_number(doc) < as_number(*min)) {
            error(at, doc.dump() + " is less than minimum " + min->dump());
        }
        if (const auto max = schema.find("maximum");
                max != schema.end() && as_number(doc) > as_number(*max)) {
            error(at, doc.dump() + " is greater than maximum " + max->dump());
        }
    }

    void check_string(const json& schema, const std::string& text, const std::string& at) {
        const std::wstring wide = decode_utf8(text);
        if (const auto min = schema.find("minLength");
                min != schema.end() && wide.size() < min->get<uint64_t>()) {
            error(at,
                    "length " + std::to_string(wide.size()) + " is less than minLength "
                            + min->dump());
        }
        if (const auto pattern = schema.find("pattern"); pattern != schema.end()) {
            const std::wregex* re = regex(pattern->get<std::string>());
            if (!std::regex_search(wide, *re)) {
                error(at, "does not match pattern " + pattern->get<std::string>());
            }
        }
    }

    /// The compiled pattern, or nullptr when it does not compile.
    const std::wregex* regex(const std::string& pattern) {
        const auto found = regexes_.find(pattern);
        if (found != regexes_.end()) {
            return found->second ? &*found->second : nullptr;
        }
        std::optional<std::wregex> compiled;
        try {
            compiled.emplace(decode_utf8(pattern), std::regex::ECMAScript);
        } catch (const std::regex_error&) {
            compiled.reset();
        }
        const auto& stored = regexes_.emplace(pattern, std::move(compiled)).first->second;
        return stored ? &*stored : nullptr;
    }

    /// The subschema a "#..." reference names, or nullptr.
    const json* resolve(const std::string& ref) const {
        if (ref.empty() || ref[0] != '#' || (ref.size() > 1 && ref[1] != '/')) {
            return nullptr;
        }
        const json* node = &root_;
        size_t pos = 1;
        while (pos < ref.size()) {
            const size_t end = std::min(ref.find('/', pos + 1), ref.size());
            const std::string token =
                    unescape_token(std::string_view(ref).substr(pos + 1, end - pos - 1));
            if (node->is_object() && node->contains(token)) {
                node = &(*node)[token];
            } else if (node->is_array() && !token.empty()
                    && token.find_first_not_of("0123456789") == std::string::npos
                    && std::stoull(token) < node->size()) {
                node = &(*node)[std::stoull(token)];
            } else {
                return nullptr;
            }
            pos = end;
        }
        return node->is_object() || node->is_boolean() ? node : nullptr;
    }

    const json& root_;
    std::vector<std::string> errors_;
    std::map<std::string, std::optional<std::wregex>> regexes_;
    std::set<const json*> checked_;
};

}  // namespace

std::vector<std::string> validate(const nlohmann::json& schema, const nlohmann::json& doc) {
    Validator validator(schema);
    validator.check_schema(schema, "");
    if (validator.errors().empty()) {
        validator.validate(schema, doc, "", 0);
    }
    return std::move(validator.errors());
}

}  // namespace exfiltap::testing
