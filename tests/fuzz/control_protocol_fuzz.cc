// libFuzzer target: any byte string is one control socket request line. Checks that
// parse_request() never crashes or throws, that a refusal always says why, and that an
// accepted request re-encodes to JSON that parses back to the same command.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "control/control_protocol.h"

namespace {

void check(bool condition) {
    if (!condition) {
        std::abort();
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    using namespace exfiltap::control;  // NOLINT(google-build-using-namespace)
    const std::string_view line(reinterpret_cast<const char*>(data), size);
    std::optional<Command> command;
    auto request = parse_request(line, &command);
    if (!request) {
        check(!request.error().empty());
        check(!reply_line(Reply::failure(request.error())).empty());
        return 0;
    }
    check(command.has_value() && *command == request->command);
    const std::string again = request_to_json(*request).dump();
    auto reparsed = parse_request(again);
    check(static_cast<bool>(reparsed) && reparsed->command == request->command);
    return 0;
}
