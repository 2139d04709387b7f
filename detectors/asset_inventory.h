// The asset inventory of the config (`assets`, DESIGN.md "Config outline"): named groups of
// address prefixes with a classification and roles. Alerts name the asset of each end;
// behaviour thresholds can depend on the classification; some detectors on the roles
// (unexpected file writes go to hosts that are not file servers).
//
// Threads: built on the control thread from the config; read-only afterwards, read by the
// control thread's detectors (never by workers).
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace exfiltap::detectors {

enum class Classification : uint8_t {
    Public = 0,
    Internal = 1,
    Confidential = 2,
    Restricted = 3,
};
inline constexpr size_t kClassificationCount = 4;
/// "public", "internal", "confidential", "restricted".
std::string_view classification_name(Classification c) noexcept;
bool classification_from_name(std::string_view name, Classification& out) noexcept;

/// Roles as bits of Asset::roles.
enum class AssetRole : uint8_t {
    FileServer = 0,
    MailServer = 1,
    DnsResolver = 2,
    Backup = 3,
    JumpHost = 4,
    CodeRepository = 5,
    Database = 6,
};
inline constexpr size_t kAssetRoleCount = 7;
/// "file-server", "mail-server", "dns-resolver", "backup", "jump-host", "code-repository",
/// "database".
std::string_view asset_role_name(AssetRole role) noexcept;
bool asset_role_from_name(std::string_view name, AssetRole& out) noexcept;

/// An address prefix; `addr` in network order, IPv4 in the first 4 bytes.
struct AddressPrefix {
    uint8_t ip_version = 4;
    uint8_t length = 32;
    std::array<uint8_t, 16> addr{};
};

struct Asset {
    std::string name;
    Classification classification = Classification::Internal;
    uint32_t roles = 0;  // bit (1 << AssetRole)
    std::vector<AddressPrefix> prefixes;

    bool has_role(AssetRole role) const noexcept {
        return (roles & (1U << static_cast<unsigned>(role))) != 0;
    }
};

/// Longest-prefix lookup from an address to its asset. Assets may overlap: the longest
/// matching prefix wins (a database host inside a server subnet), equal lengths: the asset
/// listed first.
class AssetInventory {
public:
    /// Adds an asset (control thread, while building). Names are unique (the config
    /// reader checks).
    void add(Asset asset);
    /// The asset holding `addr`, or null.
    const Asset* find(uint8_t ip_version, const std::array<uint8_t, 16>& addr) const noexcept;
    const std::vector<Asset>& assets() const noexcept { return assets_; }
    bool empty() const noexcept { return assets_.empty(); }

private:
    struct Entry {
        AddressPrefix prefix;
        uint32_t asset = 0;
    };
    std::vector<Asset> assets_;
    std::vector<Entry> entries_;  // sorted by prefix length, longest first
};

/// True when `addr` lies in `prefix` (same IP version).
bool prefix_contains(const AddressPrefix& prefix, uint8_t ip_version,
        const std::array<uint8_t, 16>& addr) noexcept;

}  // namespace exfiltap::detectors
