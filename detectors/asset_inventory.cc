#include "detectors/asset_inventory.h"

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <utility>

namespace exfiltap::detectors {
namespace {

constexpr std::array<std::string_view, kClassificationCount> kClassificationNames = {
        "public",
        "internal",
        "confidential",
        "restricted",
};

constexpr std::array<std::string_view, kAssetRoleCount> kRoleNames = {
        "file-server",
        "mail-server",
        "dns-resolver",
        "backup",
        "jump-host",
        "code-repository",
        "database",
};

}  // namespace

std::string_view classification_name(Classification c) noexcept {
    const auto index = static_cast<size_t>(c);
    return index < kClassificationNames.size() ? kClassificationNames[index] : "internal";
}

bool classification_from_name(std::string_view name, Classification& out) noexcept {
    for (size_t i = 0; i < kClassificationNames.size(); ++i) {
        if (kClassificationNames[i] == name) {
            out = static_cast<Classification>(i);
            return true;
        }
    }
    return false;
}

std::string_view asset_role_name(AssetRole role) noexcept {
    const auto index = static_cast<size_t>(role);
    return index < kRoleNames.size() ? kRoleNames[index] : "";
}

bool asset_role_from_name(std::string_view name, AssetRole& out) noexcept {
    for (size_t i = 0; i < kRoleNames.size(); ++i) {
        if (kRoleNames[i] == name) {
            out = static_cast<AssetRole>(i);
            return true;
        }
    }
    return false;
}

bool prefix_contains(const AddressPrefix& prefix, uint8_t ip_version,
        const std::array<uint8_t, 16>& addr) noexcept {
    if (prefix.ip_version != ip_version) {
        return false;
    }
    // A length beyond the address size (never from the config reader) compares the whole
    // address rather than reading past it.
    const size_t max_bits = ip_version == 6 ? 128 : 32;
    const size_t bits = std::min<size_t>(prefix.length, max_bits);
    const size_t whole = bits / 8;
    if (memcmp(prefix.addr.data(), addr.data(), whole) != 0) {
        return false;
    }
    const size_t rest = bits % 8;
    if (rest == 0) {
        return true;
    }
    const auto mask = static_cast<uint8_t>(0xFF00U >> rest);
    return (prefix.addr[whole] & mask) == (addr[whole] & mask);
}

void AssetInventory::add(Asset asset) {
    const auto index = static_cast<uint32_t>(assets_.size());
    const auto longer = [](const Entry& a, const Entry& b) {
        return a.prefix.length > b.prefix.length;
    };
    const size_t old_size = entries_.size();
    for (const AddressPrefix& prefix : asset.prefixes) {
        entries_.push_back(Entry{prefix, index});
    }
    // Both merges are stable: among equal lengths the asset added first (and within it the
    // prefix listed first) stays first, which is find()'s tie rule. Linear per asset, so a
    // config of thousands of prefixes builds in milliseconds.
    const auto middle = entries_.begin() + static_cast<std::ptrdiff_t>(old_size);
    std::stable_sort(middle, entries_.end(), longer);
    std::inplace_merge(entries_.begin(), middle, entries_.end(), longer);
    assets_.push_back(std::move(asset));
}

const Asset* AssetInventory::find(
        uint8_t ip_version, const std::array<uint8_t, 16>& addr) const noexcept {
    // Inventories are tens to a few hundred prefixes, looked up per alert on the control
    // thread; a linear walk longest-first is enough.
    for (const Entry& entry : entries_) {
        if (prefix_contains(entry.prefix, ip_version, addr)) {
            return &assets_[entry.asset];
        }
    }
    return nullptr;
}

}  // namespace exfiltap::detectors
