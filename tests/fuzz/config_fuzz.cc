// libFuzzer target: any byte string is a config file. Checks that parse_config() never
// crashes or throws on it, and that every refusal names the file.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "control/config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string text(reinterpret_cast<const char*>(data), size);
    auto config = exfiltap::control::parse_config(text, "fuzz.yaml");
    if (!config && config.error().rfind("fuzz.yaml", 0) != 0) {
        std::abort();
    }
    return 0;
}
