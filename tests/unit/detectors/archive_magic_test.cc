#include "detectors/archive_magic.h"

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <gtest/gtest.h>

namespace exfiltap::detectors {
namespace {

using namespace std::string_view_literals;

std::span<const uint8_t> bytes(std::string_view s) {
    return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

struct MagicCase {
    std::string_view label;
    std::string_view head;
    std::string_view format;  // "" when not an archive
};

class ArchiveFormatTest : public ::testing::TestWithParam<MagicCase> {};

TEST_P(ArchiveFormatTest, NamesFormat) {
    const MagicCase& c = GetParam();
    std::string_view format = "untouched";
    const bool found = archive_format(bytes(c.head), format);
    if (c.format.empty()) {
        EXPECT_FALSE(found);
        EXPECT_EQ(format, "untouched");
    } else {
        EXPECT_TRUE(found);
        EXPECT_EQ(format, c.format);
    }
}

INSTANTIATE_TEST_SUITE_P(Magics, ArchiveFormatTest,
        ::testing::Values(MagicCase{"ZipLocalFile", "PK\x03\x04\x14\x00\x00\x00\x08\x00"sv, "zip"},
                MagicCase{"ZipEmptyArchive", "PK\x05\x06\x00\x00\x00\x00\x00\x00"sv, "zip"},
                MagicCase{"ZipSpanned", "PK\x07\x08PK\x03\x04\x14\x00"sv, "zip"},
                MagicCase{"Gzip", "\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03"sv, "gzip"},
                MagicCase{"GzipOtherMethod", "\x1f\x8b\x07\x00\x00\x00\x00\x00\x00\x03"sv, ""},
                MagicCase{"SevenZip", "7z\xbc\xaf\x27\x1c\x00\x04\x00\x00"sv, "7z"},
                MagicCase{"Rar4", "Rar!\x1a\x07\x00\xcf\x90\x73"sv, "rar"},
                MagicCase{"Rar5", "Rar!\x1a\x07\x01\x00\x33\x92"sv, "rar"},
                MagicCase{"RarUnknownVersion", "Rar!\x1a\x07\x02\x00\x00\x00"sv, ""},
                MagicCase{"Bzip2", "BZh91AY&SY\x12\x34"sv, "bzip2"},
                MagicCase{"Bzip2Empty", "BZh9\x17\x72\x45\x38\x50\x90"sv, "bzip2"},
                MagicCase{"Bzip2BadBlockSize", "BZh01AY&SY"sv, ""},
                MagicCase{"Bzip2WithoutBlockMagic", "BZh9hello!"sv, ""},
                MagicCase{"Xz",
                        "\xfd"
                        "7zXZ\x00\x00\x04\xe6\xd6"sv,
                        "xz"},
                MagicCase{"Zstd", "\x28\xb5\x2f\xfd\x24\x05\x29\x00\x00\x68"sv, "zstd"},
                MagicCase{"PlainText", "Hello, world"sv, ""},
                MagicCase{"PdfIsNotArchive", "%PDF-1.5\n%\xe2"sv, ""},
                MagicCase{"ExecutableIsNotArchive", "MZ\x90\x00\x03\x00\x00\x00\x04\x00"sv, ""},
                MagicCase{"ShortZipPrefix", "PK\x03"sv, ""}, MagicCase{"Empty", ""sv, ""}),
        [](const ::testing::TestParamInfo<MagicCase>& info) {
            return std::string(info.param.label);
        });

TEST(EntropyMilliTest, EmptyIsZero) {
    EXPECT_EQ(entropy_milli({}), 0);
}

TEST(EntropyMilliTest, RepeatedByteIsZero) {
    EXPECT_EQ(entropy_milli(bytes("aaaa")), 0);
}

TEST(EntropyMilliTest, TwoEqualSymbolsGiveOneBit) {
    EXPECT_EQ(entropy_milli(bytes("abab")), 1000);
}

TEST(EntropyMilliTest, FourEqualSymbolsGiveTwoBits) {
    EXPECT_EQ(entropy_milli(bytes("abcdabcd")), 2000);
}

TEST(EntropyMilliTest, UnevenSymbolsRound) {
    // -(2/3 log2 2/3 + 1/3 log2 1/3) = 0.918296...
    EXPECT_EQ(entropy_milli(bytes("aab")), 918);
}

TEST(EntropyMilliTest, AllByteValuesGiveEightBits) {
    std::vector<uint8_t> all(256);
    for (size_t i = 0; i < all.size(); ++i) {
        all[i] = static_cast<uint8_t>(i);
    }
    EXPECT_EQ(entropy_milli(all), 8000);
}

TEST(EntropyMilliTest, AllByteValuesRepeatedGiveEightBits) {
    std::vector<uint8_t> all(256 * 64);
    for (size_t i = 0; i < all.size(); ++i) {
        all[i] = static_cast<uint8_t>(i * 7);
    }
    EXPECT_EQ(entropy_milli(all), 8000);
}

TEST(EntropyMilliTest, EnglishTextIsBelowFiveBits) {
    const uint16_t e = entropy_milli(bytes("the quick brown fox jumps over the lazy dog"));
    EXPECT_EQ(e, 4385);
}

}  // namespace
}  // namespace exfiltap::detectors
