#include "control/control_protocol.h"

#include <algorithm>
#include <set>
#include <span>
#include <vector>

#include "control/config_reader.h"

namespace exfiltap::control {
namespace {

using nlohmann::json;

/// Deeper nesting has no use in a request; refusing it keeps parsing cost flat.
constexpr int kMaxDepth = 8;
/// The longest address or prefix text ("ffff:...:255.255.255.255/128" is 49).
constexpr size_t kMaxAddressBytes = 64;

struct ArgumentSpec {
    Command command;
    std::initializer_list<std::string_view> keys;
};

// Every command's argument keys, in the order messages list them.
const std::array<ArgumentSpec, kCommandCount> kArgumentSpecs = {{
        {Command::Block, {"address", "ttl_s", "reason"}},
        {Command::Unblock, {"address"}},
        {Command::Allow, {"address", "reason"}},
        {Command::Unallow, {"address"}},
        {Command::List, {"kind"}},
        {Command::Stats, {}},
        {Command::Flows, {"top"}},
        {Command::Alerts, {"count", "follow"}},
        {Command::Incidents, {"id"}},
        {Command::Evidence, {"flow_ids", "id"}},
        {Command::Reload, {}},
        {Command::ReopenLogFiles, {}},
        {Command::Version, {}},
        {Command::CommandList, {}},
}};

std::string describe(const json& value) {
    switch (value.type()) {
    case json::value_t::null:
        return "null";
    case json::value_t::boolean:
        return value.get<bool>() ? "true" : "false";
    case json::value_t::string:
        return "a string";
    case json::value_t::number_integer:
    case json::value_t::number_unsigned:
    case json::value_t::number_float:
        return value.dump();
    case json::value_t::array:
        return "an array";
    case json::value_t::object:
        return "an object";
    case json::value_t::binary:
    case json::value_t::discarded:
        break;
    }
    return "nothing";
}

/// Reads the arguments of one command; every error starts with "COMMAND: ".
class ArgumentReader {
public:
    ArgumentReader(Command command, const json& arguments)
        : command_(command), arguments_(arguments) {}

    const std::string& error() const { return error_; }

    bool check_keys() {
        const auto& keys = kArgumentSpecs[static_cast<size_t>(command_)].keys;
        for (const auto& [key, value] : arguments_.items()) {
            if (std::find(keys.begin(), keys.end(), key) != keys.end()) {
                continue;
            }
            if (keys.size() == 0) {
                return fail("takes no arguments, got '" + key + "'");
            }
            return fail("unknown argument '" + key + "' (expected "
                    + config_reader::join_names(std::span(keys.begin(), keys.size())) + ")");
        }
        return true;
    }

    bool address(Prefix& out) {
        const json* value = find("address");
        if (value == nullptr) {
            return fail("missing argument 'address'");
        }
        if (!typed("address", *value, value->is_string(), "a string")) {
            return false;
        }
        const auto& text = value->get_ref<const std::string&>();
        if (text.size() > kMaxAddressBytes) {
            return fail("argument 'address' is too long for an address or prefix ("
                    + std::to_string(text.size()) + " bytes)");
        }
        auto prefix = Prefix::parse(text);
        if (!prefix) {
            return fail("bad address: " + prefix.error());
        }
        out = *prefix;
        return true;
    }

    /// An optional unsigned integer in min..max; `present` tells whether it was given.
    bool uint(std::string_view key, uint32_t min, uint32_t max, uint32_t& out,
            bool* present = nullptr) {
        const json* value = find(key);
        if (present != nullptr) {
            *present = value != nullptr;
        }
        if (value == nullptr) {
            return true;
        }
        const std::string range = std::to_string(min) + ".." + std::to_string(max);
        if (!typed(key, *value, value->is_number_integer(), "an integer " + range)) {
            return false;
        }
        if (value->is_number_integer() && !value->is_number_unsigned()) {
            return fail("argument '" + std::string(key) + "' must be in " + range + ", got "
                    + value->dump());
        }
        const uint64_t number = value->get<uint64_t>();
        if (number < min || number > max) {
            return fail("argument '" + std::string(key) + "' must be in " + range + ", got "
                    + std::to_string(number));
        }
        out = static_cast<uint32_t>(number);
        return true;
    }

    bool boolean(std::string_view key, bool& out) {
        const json* value = find(key);
        if (value == nullptr) {
            return true;
        }
        if (!typed(key, *value, value->is_boolean(), "true or false")) {
            return false;
        }
        out = value->get<bool>();
        return true;
    }

    /// An optional string of at most `max_bytes` without control characters.
    bool text(std::string_view key, size_t max_bytes, std::string& out) {
        const json* value = find(key);
        if (value == nullptr) {
            return true;
        }
        if (!typed(key, *value, value->is_string(), "a string")) {
            return false;
        }
        const auto& text = value->get_ref<const std::string&>();
        if (text.size() > max_bytes) {
            return fail("argument '" + std::string(key) + "' is longer than "
                    + std::to_string(max_bytes) + " bytes");
        }
        // Control characters would let a reason forge or split lines of the audit log.
        const bool has_control = std::any_of(text.begin(), text.end(), [](char c) {
            const auto byte = static_cast<unsigned char>(c);
            return byte < 0x20 || byte == 0x7f;
        });
        if (has_control) {
            return fail("argument '" + std::string(key) + "' must not contain control characters");
        }
        out = text;
        return true;
    }

    bool list_kind(ListKind& out) {
        const json* value = find("kind");
        if (value == nullptr) {
            return true;
        }
        const std::string text = value->is_string() ? value->get<std::string>() : "";
        for (const ListKind kind : {ListKind::All, ListKind::Block, ListKind::Allow}) {
            if (text == list_kind_name(kind)) {
                out = kind;
                return true;
            }
        }
        return fail("argument 'kind' must be one of block, allow, all, got "
                + (value->is_string() ? "'" + text.substr(0, kMaxAddressBytes) + "'"
                                      : describe(*value)));
    }

    bool incident_id(std::string& out) {
        if (!text("id", kMaxIncidentIdBytes, out)) {
            return false;
        }
        const bool ok = std::all_of(out.begin(), out.end(), [](char c) {
            return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
                    || c == '-' || c == '_' || c == '.' || c == ':';
        });
        if (!ok || (find("id") != nullptr && out.empty())) {
            return fail("argument 'id' must be 1.." + std::to_string(kMaxIncidentIdBytes)
                    + " of letters, digits and - _ . :");
        }
        return true;
    }

    /// A required array of 1..kMaxEvidenceFlowIds unsigned integers.
    bool flow_ids(std::vector<uint64_t>& out) {
        const json* value = find("flow_ids");
        const std::string what =
                "an array of 1.." + std::to_string(kMaxEvidenceFlowIds) + " flow ids (integers)";
        if (value == nullptr) {
            return fail("argument 'flow_ids' is required: " + what);
        }
        const bool ok = value->is_array() && !value->empty() && value->size() <= kMaxEvidenceFlowIds
                && std::all_of(value->begin(), value->end(),
                        [](const json& item) { return item.is_number_unsigned(); });
        if (!typed("flow_ids", *value, ok, what)) {
            return false;
        }
        for (const json& item : *value) {
            out.push_back(item.get<uint64_t>());
        }
        return true;
    }

private:
    const json* find(std::string_view key) const {
        const auto it = arguments_.find(key);
        return it == arguments_.end() ? nullptr : &*it;
    }

    /// Fails with "argument 'KEY' must be WHAT, got VALUE" unless `ok`.
    bool typed(std::string_view key, const json& value, bool ok, const std::string& what) {
        return ok
                || fail("argument '" + std::string(key) + "' must be " + what + ", got "
                        + describe(value));
    }

    bool fail(const std::string& what) {
        error_ = std::string(command_name(command_)) + ": " + what;
        return false;
    }

    Command command_;
    const json& arguments_;
    std::string error_;
};

bool read_arguments(ArgumentReader& args, Request& request) {
    if (!args.check_keys()) {
        return false;
    }
    switch (request.command) {
    case Command::Block: {
        uint32_t ttl_s = 0;
        bool has_ttl = false;
        if (!args.address(request.address) || !args.uint("ttl_s", 1, UINT32_MAX, ttl_s, &has_ttl)
                || !args.text("reason", kMaxReasonBytes, request.reason)) {
            return false;
        }
        if (has_ttl) {
            request.ttl_s = ttl_s;
        }
        return true;
    }
    case Command::Allow:
        return args.address(request.address)
                && args.text("reason", kMaxReasonBytes, request.reason);
    case Command::Unblock:
    case Command::Unallow:
        return args.address(request.address);
    case Command::List:
        return args.list_kind(request.kind);
    case Command::Flows:
        return args.uint("top", 1, kMaxFlowsTop, request.top);
    case Command::Alerts:
        return args.uint("count", 0, kMaxAlertsCount, request.count)
                && args.boolean("follow", request.follow);
    case Command::Incidents:
        return args.incident_id(request.incident_id);
    case Command::Evidence:
        return args.flow_ids(request.flow_ids) && args.incident_id(request.incident_id);
    case Command::Stats:
    case Command::Reload:
    case Command::ReopenLogFiles:
    case Command::Version:
    case Command::CommandList:
        break;
    }
    return true;
}

/// Parses JSON text, refusing duplicate keys (which value would win is parser trivia, and a
/// request must mean one thing) and deep nesting.
Result<json> parse_json(std::string_view line) {
    std::vector<std::set<std::string>> keys;
    std::string problem;
    const auto callback = [&](int depth, json::parse_event_t event, json& parsed) {
        if (!problem.empty()) {
            return true;
        }
        if (depth > kMaxDepth) {
            problem = "request nests deeper than " + std::to_string(kMaxDepth) + " levels";
        } else if (event == json::parse_event_t::object_start) {
            keys.emplace_back();
        } else if (event == json::parse_event_t::object_end && !keys.empty()) {
            keys.pop_back();
        } else if (event == json::parse_event_t::key && !keys.empty()) {
            const auto& key = parsed.get_ref<const std::string&>();
            if (!keys.back().insert(key).second) {
                problem = "duplicate key '" + key.substr(0, kMaxAddressBytes) + "'";
            }
        }
        return true;
    };
    json value;
    try {
        value = json::parse(line.begin(), line.end(), callback);
    } catch (const json::exception& e) {
        std::string what = e.what();
        // Drop the library's "[json.exception.parse_error.101] " tag.
        const size_t tag_end = what.find("] ");
        if (what.rfind("[json.exception", 0) == 0 && tag_end != std::string::npos) {
            what = what.substr(tag_end + 2);
        }
        return make_error("malformed JSON: " + what);
    }
    if (!problem.empty()) {
        return make_error(problem);
    }
    return value;
}

}  // namespace

std::string_view list_kind_name(ListKind kind) {
    switch (kind) {
    case ListKind::Block:
        return "block";
    case ListKind::Allow:
        return "allow";
    case ListKind::All:
        break;
    }
    return "all";
}

Result<Request> parse_request(std::string_view line, std::optional<Command>* command) {
    auto parsed = parse_json(line);
    if (!parsed) {
        return make_error(parsed.error());
    }
    const json& root = *parsed;
    if (!root.is_object()) {
        return make_error("request must be a JSON object, got " + describe(root));
    }
    for (const auto& [key, value] : root.items()) {
        if (key != "command" && key != "arguments") {
            return make_error("unknown key '" + key.substr(0, kMaxAddressBytes)
                    + "' (expected command, arguments)");
        }
    }
    const auto command_it = root.find("command");
    if (command_it == root.end()) {
        return make_error("missing key 'command'");
    }
    if (!command_it->is_string()) {
        return make_error("'command' must be a string, got " + describe(*command_it));
    }
    const auto& name = command_it->get_ref<const std::string&>();
    const auto found = std::find(kCommandNames.begin(), kCommandNames.end(), name);
    if (found == kCommandNames.end()) {
        return make_error(
                "unknown command '" + name.substr(0, kMaxAddressBytes) + "' (see command-list)");
    }
    Request request;
    request.command = static_cast<Command>(found - kCommandNames.begin());
    if (command != nullptr) {
        *command = request.command;
    }

    static const json kNoArguments = json::object();
    const json* arguments = &kNoArguments;
    if (const auto it = root.find("arguments"); it != root.end() && !it->is_null()) {
        if (!it->is_object()) {
            return make_error(name + ": 'arguments' must be an object, got " + describe(*it));
        }
        arguments = &*it;
    }
    ArgumentReader reader(request.command, *arguments);
    if (!read_arguments(reader, request)) {
        return make_error(reader.error());
    }
    return request;
}

nlohmann::json request_to_json(const Request& request) {
    json arguments = json::object();
    switch (request.command) {
    case Command::Block:
        if (request.ttl_s) {
            arguments["ttl_s"] = *request.ttl_s;
        }
        [[fallthrough]];
    case Command::Allow:
        if (!request.reason.empty()) {
            arguments["reason"] = request.reason;
        }
        [[fallthrough]];
    case Command::Unblock:
    case Command::Unallow:
        arguments["address"] = request.address.to_string();
        break;
    case Command::List:
        arguments["kind"] = std::string(list_kind_name(request.kind));
        break;
    case Command::Flows:
        arguments["top"] = request.top;
        break;
    case Command::Alerts:
        arguments["count"] = request.count;
        arguments["follow"] = request.follow;
        break;
    case Command::Incidents:
        if (!request.incident_id.empty()) {
            arguments["id"] = request.incident_id;
        }
        break;
    case Command::Evidence:
        arguments["flow_ids"] = request.flow_ids;
        if (!request.incident_id.empty()) {
            arguments["id"] = request.incident_id;
        }
        break;
    default:  // the commands without arguments
        break;
    }
    json out = json::object();
    out["command"] = std::string(command_name(request.command));
    out["arguments"] = std::move(arguments);
    return out;
}

std::string reply_line(const Reply& reply) {
    // Built by hand so "return" comes first, as in Suricata's replies.
    std::string line = reply.ok ? R"({"return":"OK","message":)" : R"({"return":"NOK","message":)";
    line += reply.message.dump(-1, ' ', false, json::error_handler_t::replace);
    line += "}\n";
    return line;
}

nlohmann::json command_list_message() {
    json commands = json::array();
    for (const auto name : kCommandNames) {
        commands.push_back(std::string(name));
    }
    return json{{"count", kCommandCount}, {"commands", std::move(commands)}};
}

}  // namespace exfiltap::control
