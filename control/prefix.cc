#include "control/prefix.h"

#include <arpa/inet.h>
#include <sys/socket.h>

#include <algorithm>
#include <charconv>
#include <cstring>
#include <string_view>

namespace exfiltap::control {

Result<Prefix> Prefix::parse(const std::string& text) {
    const size_t slash = text.find('/');
    const std::string address = text.substr(0, slash);
    Prefix prefix;
    int max_length = 32;
    if (address.find(':') != std::string::npos) {
        prefix.ip_version = 6;
        max_length = 128;
        if (inet_pton(AF_INET6, address.c_str(), prefix.addr.data()) != 1) {
            return make_error("'" + text + "' is not an IPv6 address or prefix");
        }
    } else if (inet_pton(AF_INET, address.c_str(), prefix.addr.data()) != 1) {
        return make_error("'" + text + "' is not an IPv4 or IPv6 address or prefix");
    }

    int length = max_length;
    if (slash != std::string::npos) {
        const std::string_view digits = std::string_view(text).substr(slash + 1);
        const char* end = digits.data() + digits.size();
        const auto [ptr, ec] = std::from_chars(digits.data(), end, length);
        if (digits.empty() || digits.size() > 3 || ec != std::errc() || ptr != end
                || digits.front() == '-' || digits.front() == '+') {
            return make_error("'" + text + "': prefix length must be a number 0.."
                    + std::to_string(max_length));
        }
        if (length > max_length) {
            return make_error("'" + text + "': prefix length " + std::to_string(length)
                    + " is out of range 0.." + std::to_string(max_length));
        }
    }
    prefix.length = static_cast<uint8_t>(length);

    // Host bits are refused rather than masked: "10.1.2.3/8" in an allow or internal list is
    // more likely a typo for a /24 or /32 than a wish for the whole /8.
    Prefix masked = prefix;
    for (size_t i = 0; i < masked.addr.size(); ++i) {
        const int bits_here = std::clamp(length - static_cast<int>(i) * 8, 0, 8);
        masked.addr[i] &= static_cast<uint8_t>(0xFF00U >> bits_here);
    }
    if (masked.addr != prefix.addr) {
        return make_error("'" + text + "' has host bits set beyond /" + std::to_string(length)
                + " (did you mean " + masked.to_string() + "?)");
    }
    return prefix;
}

bool Prefix::contains(uint8_t version, const std::array<uint8_t, 16>& address) const noexcept {
    if (version != ip_version) {
        return false;
    }
    const size_t whole = length / 8U;
    if (memcmp(addr.data(), address.data(), whole) != 0) {
        return false;
    }
    const unsigned rest = length % 8U;
    if (rest == 0) {
        return true;
    }
    const auto mask = static_cast<uint8_t>(0xFF00U >> rest);
    return (addr[whole] & mask) == (address[whole] & mask);
}

std::string Prefix::to_string() const {
    std::array<char, INET6_ADDRSTRLEN> text{};
    const int family = ip_version == 6 ? AF_INET6 : AF_INET;
    if (inet_ntop(family, addr.data(), text.data(), text.size()) == nullptr) {
        return "?";
    }
    return std::string(text.data()) + "/" + std::to_string(length);
}

bool read_prefix(
        config_reader::Problems& problems, const config_reader::Entry& entry, Prefix& out) {
    std::string text;
    if (!entry.value.IsScalar() || !config_reader::read_string(problems, entry, text)
            || text.empty()) {
        problems.add(entry.where,
                "expected an address or prefix, got " + config_reader::describe(entry.value));
        return false;
    }
    auto prefix = Prefix::parse(text);
    if (!prefix) {
        problems.add(entry.where, "bad prefix: " + prefix.error());
        return false;
    }
    out = *prefix;
    return true;
}

}  // namespace exfiltap::control
