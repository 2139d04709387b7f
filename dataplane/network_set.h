// A small set of address prefixes (internal networks) checked per flow, not per packet.
// Read-only once workers run.
#pragma once

#include <array>
#include <cstdint>
#include <vector>

namespace exfiltap::dataplane {

class NetworkSet {
public:
    void add(uint8_t ip_version, const std::array<uint8_t, 16>& addr, uint8_t length) {
        entries_.push_back(Entry{ip_version, length, addr});
    }

    bool contains(uint8_t ip_version, const std::array<uint8_t, 16>& addr) const noexcept {
        for (const Entry& e : entries_) {
            if (e.ip_version == ip_version && matches(e, addr)) {
                return true;
            }
        }
        return false;
    }

private:
    struct Entry {
        uint8_t ip_version;
        uint8_t length;
        std::array<uint8_t, 16> addr;
    };

    static bool matches(const Entry& e, const std::array<uint8_t, 16>& addr) noexcept {
        const unsigned full = e.length / 8;
        for (unsigned i = 0; i < full; ++i) {
            if (e.addr[i] != addr[i]) {
                return false;
            }
        }
        const unsigned rest = e.length % 8;
        if (rest == 0) {
            return true;
        }
        const auto mask = static_cast<uint8_t>(0xff << (8 - rest));
        return (e.addr[full] & mask) == (addr[full] & mask);
    }

    std::vector<Entry> entries_;
};

}  // namespace exfiltap::dataplane
