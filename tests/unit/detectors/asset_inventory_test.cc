#include "detectors/asset_inventory.h"

#include <arpa/inet.h>

#include <string>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

namespace exfiltap::detectors {
namespace {

struct Address {
    uint8_t version = 4;
    std::array<uint8_t, 16> bytes{};
};

Address addr(const char* text) {
    Address out;
    if (inet_pton(AF_INET, text, out.bytes.data()) == 1) {
        return out;
    }
    out.version = 6;
    EXPECT_EQ(inet_pton(AF_INET6, text, out.bytes.data()), 1) << text;
    return out;
}

AddressPrefix prefix(const char* text, uint8_t length) {
    const Address a = addr(text);
    AddressPrefix p;
    p.ip_version = a.version;
    p.length = length;
    p.addr = a.bytes;
    return p;
}

Asset asset(std::string name, std::vector<AddressPrefix> prefixes) {
    Asset a;
    a.name = std::move(name);
    a.prefixes = std::move(prefixes);
    return a;
}

std::string found(const AssetInventory& inventory, const char* text) {
    const Address a = addr(text);
    const Asset* hit = inventory.find(a.version, a.bytes);
    return hit == nullptr ? "(none)" : hit->name;
}

TEST(AssetInventoryTest, ClassificationNamesRoundTrip) {
    for (size_t i = 0; i < kClassificationCount; ++i) {
        const auto c = static_cast<Classification>(i);
        Classification back = Classification::Public;
        ASSERT_TRUE(classification_from_name(classification_name(c), back));
        EXPECT_EQ(back, c);
    }
    EXPECT_EQ(classification_name(Classification::Public), "public");
    EXPECT_EQ(classification_name(Classification::Internal), "internal");
    EXPECT_EQ(classification_name(Classification::Confidential), "confidential");
    EXPECT_EQ(classification_name(Classification::Restricted), "restricted");
}

TEST(AssetInventoryTest, UnknownClassificationNameIsRefused) {
    Classification out = Classification::Public;

    EXPECT_FALSE(classification_from_name("secret", out));
    EXPECT_FALSE(classification_from_name("Restricted", out));
    EXPECT_FALSE(classification_from_name("", out));
    EXPECT_EQ(out, Classification::Public);
}

TEST(AssetInventoryTest, RoleNamesRoundTrip) {
    const std::vector<std::string> expected = {"file-server", "mail-server", "dns-resolver",
            "backup", "jump-host", "code-repository", "database"};
    ASSERT_EQ(expected.size(), kAssetRoleCount);
    for (size_t i = 0; i < kAssetRoleCount; ++i) {
        const auto role = static_cast<AssetRole>(i);
        EXPECT_EQ(asset_role_name(role), expected[i]);
        AssetRole back = AssetRole::Database;
        ASSERT_TRUE(asset_role_from_name(expected[i], back));
        EXPECT_EQ(back, role);
    }
}

TEST(AssetInventoryTest, UnknownRoleNameIsRefused) {
    AssetRole out = AssetRole::Backup;

    EXPECT_FALSE(asset_role_from_name("file_server", out));
    EXPECT_FALSE(asset_role_from_name("web-server", out));
    EXPECT_EQ(out, AssetRole::Backup);
}

TEST(AssetInventoryTest, HasRoleReadsRoleBits) {
    Asset a;
    a.roles = (1U << static_cast<unsigned>(AssetRole::FileServer))
            | (1U << static_cast<unsigned>(AssetRole::Backup));

    EXPECT_TRUE(a.has_role(AssetRole::FileServer));
    EXPECT_TRUE(a.has_role(AssetRole::Backup));
    EXPECT_FALSE(a.has_role(AssetRole::Database));
    EXPECT_FALSE(a.has_role(AssetRole::MailServer));
}

TEST(AssetInventoryTest, FindsHostInsideAndOnPrefixEdges) {
    AssetInventory inventory;
    inventory.add(asset("hr-db", {prefix("10.1.2.0", 24)}));

    EXPECT_EQ(found(inventory, "10.1.2.0"), "hr-db");
    EXPECT_EQ(found(inventory, "10.1.2.77"), "hr-db");
    EXPECT_EQ(found(inventory, "10.1.2.255"), "hr-db");
    EXPECT_EQ(found(inventory, "10.1.3.0"), "(none)");
    EXPECT_EQ(found(inventory, "10.1.1.255"), "(none)");
}

TEST(AssetInventoryTest, ExactHostPrefixMatchesOnlyThatHost) {
    AssetInventory inventory;
    inventory.add(asset("dns", {prefix("10.0.0.53", 32)}));

    EXPECT_EQ(found(inventory, "10.0.0.53"), "dns");
    EXPECT_EQ(found(inventory, "10.0.0.52"), "(none)");
    EXPECT_EQ(found(inventory, "10.0.0.54"), "(none)");
}

TEST(AssetInventoryTest, NonOctetPrefixLengthMasksPartialByte) {
    AssetInventory inventory;
    inventory.add(asset("lab", {prefix("172.16.0.0", 12)}));

    EXPECT_EQ(found(inventory, "172.16.0.1"), "lab");
    EXPECT_EQ(found(inventory, "172.31.255.254"), "lab");
    EXPECT_EQ(found(inventory, "172.32.0.1"), "(none)");
    EXPECT_EQ(found(inventory, "172.15.255.255"), "(none)");
}

TEST(AssetInventoryTest, LongestPrefixWinsWhateverTheOrder) {
    AssetInventory inventory;
    inventory.add(asset("servers", {prefix("10.1.0.0", 16)}));
    inventory.add(asset("hr-db", {prefix("10.1.2.0", 24)}));
    inventory.add(asset("hr-db-primary", {prefix("10.1.2.10", 32)}));

    EXPECT_EQ(found(inventory, "10.1.2.10"), "hr-db-primary");
    EXPECT_EQ(found(inventory, "10.1.2.11"), "hr-db");
    EXPECT_EQ(found(inventory, "10.1.9.9"), "servers");
}

TEST(AssetInventoryTest, LongestPrefixWinsWhenListedLast) {
    AssetInventory inventory;
    inventory.add(asset("hr-db-primary", {prefix("10.1.2.10", 32)}));
    inventory.add(asset("hr-db", {prefix("10.1.2.0", 24)}));
    inventory.add(asset("servers", {prefix("10.1.0.0", 16)}));

    EXPECT_EQ(found(inventory, "10.1.2.10"), "hr-db-primary");
    EXPECT_EQ(found(inventory, "10.1.2.11"), "hr-db");
    EXPECT_EQ(found(inventory, "10.1.9.9"), "servers");
}

TEST(AssetInventoryTest, EqualLengthsGoToAssetListedFirst) {
    AssetInventory inventory;
    inventory.add(asset("first", {prefix("192.168.10.0", 24)}));
    inventory.add(asset("second", {prefix("192.168.10.0", 24)}));
    inventory.add(asset("third", {prefix("192.168.0.0", 16), prefix("192.168.10.0", 24)}));

    EXPECT_EQ(found(inventory, "192.168.10.5"), "first");
    EXPECT_EQ(found(inventory, "192.168.11.5"), "third");
}

TEST(AssetInventoryTest, AssetWithSeveralPrefixesMatchesEach) {
    AssetInventory inventory;
    inventory.add(asset("mail", {prefix("10.0.5.25", 32), prefix("fd00:5::25", 128)}));

    EXPECT_EQ(found(inventory, "10.0.5.25"), "mail");
    EXPECT_EQ(found(inventory, "fd00:5::25"), "mail");
    EXPECT_EQ(found(inventory, "fd00:5::26"), "(none)");
}

TEST(AssetInventoryTest, FindsIpv6Prefixes) {
    AssetInventory inventory;
    inventory.add(asset("v6-net", {prefix("fd00:1::", 64)}));
    inventory.add(asset("v6-host", {prefix("fd00:1::10", 128)}));

    EXPECT_EQ(found(inventory, "fd00:1::10"), "v6-host");
    EXPECT_EQ(found(inventory, "fd00:1::ffff:1"), "v6-net");
    EXPECT_EQ(found(inventory, "fd00:1:0:0:ffff:ffff:ffff:ffff"), "v6-net");
    EXPECT_EQ(found(inventory, "fd00:1:0:1::1"), "(none)");
    EXPECT_EQ(found(inventory, "fd00:2::1"), "(none)");
}

TEST(AssetInventoryTest, VersionsNeverMatchEachOther) {
    AssetInventory inventory;
    // 10.1.2.0/24 as bytes would also prefix "a01:200::"; only the version tells them apart.
    inventory.add(asset("v4", {prefix("10.1.2.0", 24)}));

    EXPECT_EQ(found(inventory, "a01:200::1"), "(none)");
    EXPECT_EQ(found(inventory, "10.1.2.1"), "v4");
}

TEST(AssetInventoryTest, ZeroLengthPrefixMatchesEveryAddressOfItsVersion) {
    AssetInventory inventory;
    inventory.add(asset("anything-v4", {prefix("0.0.0.0", 0)}));
    inventory.add(asset("dmz", {prefix("198.51.100.0", 24)}));

    EXPECT_EQ(found(inventory, "198.51.100.7"), "dmz");
    EXPECT_EQ(found(inventory, "8.8.8.8"), "anything-v4");
    EXPECT_EQ(found(inventory, "255.255.255.255"), "anything-v4");
    EXPECT_EQ(found(inventory, "2001:db8::1"), "(none)");
}

TEST(AssetInventoryTest, ZeroLengthIpv6PrefixMatchesEveryIpv6Address) {
    AssetInventory inventory;
    inventory.add(asset("anything-v6", {prefix("::", 0)}));

    EXPECT_EQ(found(inventory, "2001:db8::1"), "anything-v6");
    EXPECT_EQ(found(inventory, "::1"), "anything-v6");
    EXPECT_EQ(found(inventory, "10.0.0.1"), "(none)");
}

TEST(AssetInventoryTest, EmptyInventoryFindsNothing) {
    const AssetInventory inventory;

    EXPECT_TRUE(inventory.empty());
    EXPECT_EQ(found(inventory, "10.0.0.1"), "(none)");
    EXPECT_EQ(found(inventory, "::1"), "(none)");
}

TEST(AssetInventoryTest, FindReturnsTheStoredAsset) {
    AssetInventory inventory;
    Asset a = asset("hr-db", {prefix("10.1.2.0", 24)});
    a.classification = Classification::Restricted;
    a.roles = 1U << static_cast<unsigned>(AssetRole::Database);
    inventory.add(a);

    const Address host = addr("10.1.2.3");
    const Asset* hit = inventory.find(host.version, host.bytes);
    ASSERT_NE(hit, nullptr);
    EXPECT_EQ(hit, &inventory.assets()[0]);
    EXPECT_EQ(hit->classification, Classification::Restricted);
    EXPECT_TRUE(hit->has_role(AssetRole::Database));
    EXPECT_FALSE(inventory.empty());
    EXPECT_EQ(inventory.assets().size(), 1U);
}

TEST(AssetInventoryTest, PrefixContainsChecksVersionAndBits) {
    const AddressPrefix p = prefix("10.128.0.0", 9);

    EXPECT_TRUE(prefix_contains(p, 4, addr("10.128.0.1").bytes));
    EXPECT_TRUE(prefix_contains(p, 4, addr("10.255.255.255").bytes));
    EXPECT_FALSE(prefix_contains(p, 4, addr("10.127.255.255").bytes));
    EXPECT_FALSE(prefix_contains(p, 6, addr("10.128.0.1").bytes));
}

TEST(AssetInventoryTest, PrefixContainsClampsOversizedLength) {
    AddressPrefix p = prefix("10.0.0.1", 32);
    p.length = 200;  // never from the config reader; must not read past the address

    EXPECT_TRUE(prefix_contains(p, 4, addr("10.0.0.1").bytes));
    EXPECT_FALSE(prefix_contains(p, 4, addr("10.0.0.2").bytes));
}

}  // namespace
}  // namespace exfiltap::detectors
