#include "control/assets_config.h"

#include <algorithm>
#include <array>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "control/prefix.h"

namespace exfiltap::control {
namespace {

using namespace config_reader;  // NOLINT(google-build-using-namespace): the toolkit is this file's
                                // vocabulary

// Across all assets: the inventory is walked per lookup on the control thread.
constexpr size_t kMaxPrefixesTotal = 65536;

bool is_asset_name(std::string_view text) {
    return !text.empty() && text.size() <= kMaxAssetNameLen
            && std::all_of(text.begin(), text.end(), [](char c) {
                   return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
                           || c == '_' || c == '-' || c == '.';
               });
}

std::string role_names() {
    std::array<std::string_view, detectors::kAssetRoleCount> names{};
    for (size_t i = 0; i < names.size(); ++i) {
        names[i] = detectors::asset_role_name(static_cast<detectors::AssetRole>(i));
    }
    return join_names(names);
}

detectors::AddressPrefix to_address_prefix(const Prefix& prefix) {
    detectors::AddressPrefix out;
    out.ip_version = prefix.ip_version;
    out.length = prefix.length;
    out.addr = prefix.addr;
    return out;
}

bool read_prefixes(
        Problems& problems, const Entry& entry, std::vector<detectors::AddressPrefix>& out) {
    if (entry.value.IsSequence() && entry.value.size() > kMaxAssetPrefixes) {
        problems.add(entry.where,
                std::to_string(entry.value.size()) + " prefixes, at most "
                        + std::to_string(kMaxAssetPrefixes)
                        + " per asset; give a covering prefix or split the asset");
        return false;
    }
    if (!entry.value.IsSequence()) {
        problems.add(entry.where,
                "expected a list of addresses or prefixes, got " + describe(entry.value));
        return false;
    }
    if (entry.value.size() == 0) {
        problems.add(entry.where, "must list at least one address or prefix");
        return false;
    }
    std::vector<Prefix> prefixes;
    bool ok = true;
    for (const auto& item : items_of(problems, entry)) {
        Prefix parsed;
        if (!read_prefix(problems, item, parsed)) {
            ok = false;
            continue;
        }
        const bool repeated = std::any_of(prefixes.begin(), prefixes.end(), [&](const Prefix& p) {
            return p.ip_version == parsed.ip_version && p.length == parsed.length
                    && p.addr == parsed.addr;
        });
        if (repeated) {
            problems.add(item.where, parsed.to_string() + " is listed twice");
            ok = false;
            continue;
        }
        prefixes.push_back(parsed);
    }
    if (!ok) {
        return false;
    }
    out.clear();
    for (const Prefix& prefix : prefixes) {
        out.push_back(to_address_prefix(prefix));
    }
    return true;
}

bool read_roles(Problems& problems, const Entry& entry, uint32_t& out) {
    if (!entry.value.IsNull() && !entry.value.IsSequence()) {
        problems.add(entry.where,
                "expected a list of roles (" + role_names() + "), got " + describe(entry.value));
        return false;
    }
    uint32_t roles = 0;
    bool ok = true;
    for (const auto& item : items_of(problems, entry)) {
        detectors::AssetRole role{};
        const std::string name = item.value.IsScalar() ? lower(item.value.Scalar()) : "";
        if (!detectors::asset_role_from_name(name, role)) {
            problems.add(item.where,
                    "unknown role " + describe(item.value) + ", expected one of " + role_names());
            ok = false;
            continue;
        }
        const uint32_t bit = 1U << static_cast<unsigned>(role);
        if ((roles & bit) != 0) {
            problems.add(item.where, "'" + name + "' is listed twice");
            ok = false;
            continue;
        }
        roles |= bit;
    }
    if (ok) {
        out = roles;
    }
    return ok;
}

/// One key of an asset; false when it was reported.
bool read_asset_key(Problems& problems, const Entry& entry, detectors::Asset& asset) {
    if (entry.name == "name") {
        if (!read_string(problems, entry, asset.name)) {
            asset.name.clear();
            return false;
        }
        if (!is_asset_name(asset.name)) {
            problems.add(entry.where,
                    describe(entry.value) + ": use 1.." + std::to_string(kMaxAssetNameLen)
                            + " letters, digits and _ - .");
            asset.name.clear();
            return false;
        }
        return true;
    }
    if (entry.name == "prefixes") {
        return read_prefixes(problems, entry, asset.prefixes);
    }
    if (entry.name == "classification") {
        // The order of detectors::Classification.
        const int index =
                read_choice(problems, entry, {"public", "internal", "confidential", "restricted"});
        if (index < 0) {
            return false;
        }
        asset.classification = static_cast<detectors::Classification>(index);
        return true;
    }
    return read_roles(problems, entry, asset.roles);  // "roles"
}

/// One item of the list; false when it has a problem (reported). `name_where` is where the
/// name sits, for the duplicate message.
bool read_asset(Problems& problems, const Entry& item, detectors::Asset& asset, Where& name_where) {
    if (!item.value.IsMap()) {
        problems.add(item.where,
                "expected a map with name, prefixes, classification and roles, got "
                        + describe(item.value));
        return false;
    }
    const auto entries = entries_of(
            problems, item.value, item.where, {"name", "prefixes", "classification", "roles"});
    bool ok = entries.size() == item.value.size();  // unknown keys were reported
    bool has_name = false;
    bool has_prefixes = false;
    for (const auto& entry : entries) {
        ok = read_asset_key(problems, entry, asset) && ok;
        has_name = has_name || entry.name == "name";
        has_prefixes = has_prefixes || entry.name == "prefixes";
        if (entry.name == "name") {
            name_where = entry.where;
        }
    }
    if (!has_name) {
        problems.add(item.where, "an asset needs a name");
        ok = false;
    }
    if (!has_prefixes) {
        problems.add(item.where, "an asset needs prefixes, e.g. [10.1.2.0/24, \"fd00:1::/64\"]");
        ok = false;
    }
    return ok;
}

}  // namespace

void apply_assets(Problems& problems, const Entry& section, detectors::AssetInventory& out) {
    if (section.value.IsSequence() && section.value.size() > kMaxAssets) {
        problems.add(section.where,
                std::to_string(section.value.size()) + " assets, at most "
                        + std::to_string(kMaxAssets) + "; group hosts of one kind into one asset");
        return;
    }
    if (!section.value.IsNull() && !section.value.IsSequence()) {
        problems.add(section.where,
                "expected a list of assets (- name: ..., prefixes: [...]), got "
                        + describe(section.value));
        return;
    }
    detectors::AssetInventory inventory;
    // Names of every item, valid or not, so a duplicate is reported even next to other errors.
    std::map<std::string, std::string> seen;  // name -> "FILE:LINE"
    size_t total_prefixes = 0;
    bool ok = true;
    for (const auto& item : items_of(problems, section)) {
        detectors::Asset asset;
        Where name_where = item.where;
        ok = read_asset(problems, item, asset, name_where) && ok;
        if (asset.name.empty()) {
            continue;
        }
        const auto [same, inserted] = seen.emplace(asset.name, problems.location(name_where.line));
        if (!inserted) {
            problems.add(name_where,
                    "duplicate asset name '" + asset.name + "' (first at " + same->second + ")");
            ok = false;
            continue;
        }
        total_prefixes += asset.prefixes.size();
        if (total_prefixes > kMaxPrefixesTotal) {
            problems.add(item.where,
                    "more than " + std::to_string(kMaxPrefixesTotal)
                            + " prefixes in all assets; give covering prefixes");
            return;
        }
        if (ok) {
            inventory.add(std::move(asset));
        }
    }
    if (ok) {
        out = std::move(inventory);
    }
}

}  // namespace exfiltap::control
