// An address prefix of the config, the block list and the control protocol.
#pragma once

#include <array>
#include <cstdint>
#include <string>

#include "common/result.h"
#include "control/config_reader.h"

namespace exfiltap::control {

/// An address prefix, IPv4 or IPv6, addresses in network order (IPv4 in the first 4 bytes).
struct Prefix {
    uint8_t ip_version = 4;
    uint8_t length = 0;
    std::array<uint8_t, 16> addr{};

    /// Parses "10.0.0.0/8", "fd00::/8" or a plain address (full length).
    static Result<Prefix> parse(const std::string& text);
    bool contains(uint8_t version, const std::array<uint8_t, 16>& address) const noexcept;
    std::string to_string() const;
};

/// One config value that must be an address or prefix ("10.0.0.0/8", "fd00::1"): reported
/// as "expected an address or prefix, got ..." or "bad prefix: why" at its key and line.
bool read_prefix(config_reader::Problems& problems, const config_reader::Entry& entry, Prefix& out);

}  // namespace exfiltap::control
