// The proprietary-content classes of the content detector: source_code (code-token
// density, made High by the organisation's licence header or a project code name) and
// document (office and PDF format markers, made High by a classification label).
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <gtest/gtest.h>

#include "detectors/content_scanner.h"
#include "detectors/content_types.h"

namespace exfiltap::detectors {
namespace {

std::span<const uint8_t> bytes(std::string_view text) {
    return {reinterpret_cast<const uint8_t*>(text.data()), text.size()};
}

// About 1.3 KB of C++ with roughly 50 code tokens.
constexpr std::string_view kCode = R"(#include <cstdint>
#include "ledger/account.h"

namespace ledger {

class Reconciler {
public:
    explicit Reconciler(const Book& book) : book_(book) {}

    int64_t balance(uint32_t account) const {
        int64_t sum = 0;
        for (const Entry& e : book_.entries()) {
            if (e.account == account && !e.void_) {
                sum += e.amount;
            }
        }
        return sum;
    }

    bool settle(uint32_t from, uint32_t to, int64_t amount) {
        if (amount <= 0 || from == to) {
            return false;
        }
        // Two entries, one transfer.
        book_.post(Entry{from, -amount});
        book_.post(Entry{to, amount});
        ++settled_;
        return true;
    }

private:
    const Book& book_;
    uint64_t settled_ = 0;
};

static int64_t fee(int64_t amount) {
    return amount > 10000 ? amount / 100 : 0;
}

}  // namespace ledger
)";

std::string prose(size_t bytes) {
    static constexpr std::string_view kSentence =
            "The quarterly review found that revenue grew in every region, and the team "
            "agreed to revisit the forecast for next year (after the audit) in March. ";
    std::string out;
    while (out.size() < bytes) {
        out += kSentence;
    }
    return out;
}

class ProprietaryContentTest : public ::testing::Test {
protected:
    void open(ContentConfig config) {
        config_ = std::move(config);
        auto db = PatternDatabase::compile(config_);
        ASSERT_TRUE(db.ok()) << db.error();
        db_ = db.value();
        auto scratch = db_->alloc_scratch();
        ASSERT_TRUE(scratch.ok()) << scratch.error();
        scratch_ = scratch.value();
        ASSERT_TRUE(stream_.open(*db_));
    }
    void open() {
        ContentConfig config;
        config.source_code.organisations = {"Example Corp"};
        config.source_code.project_names = {"BLUEBIRD"};
        open(config);
    }
    void TearDown() override {
        stream_.close(scratch_, sink_);
        PatternDatabase::free_scratch(scratch_);
    }
    void scan(std::string_view text) { stream_.scan(bytes(text), scratch_, sink_); }
    void close() { stream_.close(scratch_, sink_); }
    std::vector<Finding> of(ContentClass cls) const {
        std::vector<Finding> out;
        for (size_t i = 0; i < sink_.count; ++i) {
            if (sink_.items[i].cls == cls) {
                out.push_back(sink_.items[i]);
            }
        }
        return out;
    }

    ContentConfig config_;
    std::shared_ptr<const PatternDatabase> db_;
    hs_scratch* scratch_ = nullptr;
    ContentStream stream_;
    FindingSink sink_;
};

TEST_F(ProprietaryContentTest, FindsDenseCodeOnceWithLowConfidenceWithoutMark) {
    open();
    scan(kCode);
    scan(kCode);
    EXPECT_TRUE(of(ContentClass::SourceCode).empty()) << "waits for a mark";
    close();
    const auto found = of(ContentClass::SourceCode);
    ASSERT_EQ(found.size(), 1U);
    EXPECT_EQ(found[0].value_view(), "code");
    EXPECT_EQ(found[0].confidence, Confidence::Low);
    EXPECT_EQ(found[0].distinct_count, 1U);
    EXPECT_LE(found[0].end_offset, 2 * kCode.size());
}

TEST_F(ProprietaryContentTest, LicenceHeaderNamingTheOrganisationMakesItHighAtOnce) {
    open();
    scan("// Copyright (c) 2019-2026 Example Corp. All rights reserved.\n");
    scan(kCode);
    scan(kCode);
    const auto found = of(ContentClass::SourceCode);
    ASSERT_EQ(found.size(), 1U);
    EXPECT_EQ(found[0].value_view(), "Example Corp");
    EXPECT_EQ(found[0].confidence, Confidence::High);
}

TEST_F(ProprietaryContentTest, ProjectNameAfterTheCodeRaisesTheWaitingFinding) {
    open();
    scan(kCode);
    scan(kCode);
    scan(prose(4000));
    scan("see the BLUEBIRD design notes\n");
    const auto found = of(ContentClass::SourceCode);
    ASSERT_EQ(found.size(), 1U);
    EXPECT_EQ(found[0].value_view(), "BLUEBIRD");
    EXPECT_EQ(found[0].confidence, Confidence::High);
}

TEST_F(ProprietaryContentTest, ProseTablesAndJsonAreNotCode) {
    open();
    scan(prose(20000));
    for (int i = 0; i < 300; ++i) {
        scan("2026-03-" + std::to_string(10 + i % 20) + ",ACME Ltd,invoice " + std::to_string(i)
                + ",1200.50,EUR\n");
    }
    for (int i = 0; i < 200; ++i) {
        scan(R"({"id": )" + std::to_string(i) + R"(, "name": "item", "tags": ["a", "b"]})" + "\n");
    }
    close();
    EXPECT_TRUE(of(ContentClass::SourceCode).empty());
}

TEST_F(ProprietaryContentTest, SparseTokensDoNotAddUp) {
    open();
    for (int i = 0; i < 100; ++i) {
        scan(prose(3000));
        scan("if (x) { y(); }\n");  // three tokens every 3 KB
    }
    close();
    EXPECT_TRUE(of(ContentClass::SourceCode).empty());
}

TEST_F(ProprietaryContentTest, MarksAloneMakeNoFinding) {
    open();
    scan(prose(500) + "\n--\nCopyright 2026 Example Corp. All rights reserved. BLUEBIRD\n");
    close();
    EXPECT_TRUE(of(ContentClass::SourceCode).empty());
}

TEST_F(ProprietaryContentTest, AnotherOrganisationsLicenceLeavesItLow) {
    open();
    scan("/* Copyright (c) 2024 Other Industries Ltd. */\n");
    scan(kCode);
    scan(kCode);
    close();
    const auto found = of(ContentClass::SourceCode);
    ASSERT_EQ(found.size(), 1U);
    EXPECT_EQ(found[0].confidence, Confidence::Low);
}

TEST_F(ProprietaryContentTest, ThresholdsComeFromTheConfig) {
    ContentConfig config;
    config.source_code.min_tokens = 500;
    open(config);
    for (int i = 0; i < 5; ++i) {
        scan(kCode);
    }
    close();
    EXPECT_TRUE(of(ContentClass::SourceCode).empty());
}

TEST_F(ProprietaryContentTest, FindsPdfLowWithoutLabel) {
    open();
    scan("%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Type /Catalog /Pages 2 0 R >>\nendobj\n");
    scan(prose(5000));
    close();
    const auto found = of(ContentClass::Document);
    ASSERT_EQ(found.size(), 1U);
    EXPECT_EQ(found[0].value_view(), "pdf");
    EXPECT_EQ(found[0].confidence, Confidence::Low);
}

TEST_F(ProprietaryContentTest, SensitivityLabelLaterInThePdfMakesItHigh) {
    open();
    scan("%PDF-1.6\n");
    scan(prose(60000));
    scan("<pdfx:MSIP_Label_3a4f9c21-77b0-4f6e-9d1e-0c2b5a8e6f10_Name>Confidential"
         "</pdfx:MSIP_Label_3a4f9c21-77b0-4f6e-9d1e-0c2b5a8e6f10_Name>");
    const auto found = of(ContentClass::Document);
    ASSERT_EQ(found.size(), 1U);
    EXPECT_EQ(found[0].confidence, Confidence::High);
}

TEST_F(ProprietaryContentTest, ClassificationMarkerBeforeMakesItHighAtOnce) {
    open();
    scan("STRICTLY CONFIDENTIAL report attached.\n");
    scan("%PDF-1.4\n");
    const auto found = of(ContentClass::Document);
    ASSERT_EQ(found.size(), 1U);
    EXPECT_EQ(found[0].confidence, Confidence::High);
    close();
    EXPECT_EQ(of(ContentClass::ClassificationMarker).size(), 1U);
}

TEST_F(ProprietaryContentTest, NamesOfficeFormatsOncePerDirection) {
    open();
    // The local file headers of an OOXML zip name its parts in plain text.
    const std::string docx = std::string("PK\x03\x04\x14\x00\x06\x00", 8)
            + "[Content_Types].xml....PK\x03\x04word/document.xml....";
    scan(docx);
    scan(docx);
    scan(std::string("\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1\x00\x00", 10));
    scan("PK\x03\x04mimetypeapplication/vnd.oasis.opendocument.spreadsheetPK");
    scan("{\\rtf1\\ansi\\deff0 {\\fonttbl}}");
    scan("xl/workbook.xml ppt/presentation.xml");
    close();
    std::vector<std::string> names;
    for (const Finding& f : of(ContentClass::Document)) {
        names.emplace_back(f.value_view());
    }
    EXPECT_EQ(names, (std::vector<std::string>{"docx", "ole2", "odf", "rtf", "xlsx", "pptx"}));
    EXPECT_EQ(of(ContentClass::Document).back().distinct_count, 6U);
}

TEST_F(ProprietaryContentTest, DisabledClassesFindNothing) {
    ContentConfig config;
    config.classes[static_cast<size_t>(ContentClass::SourceCode)].enabled = false;
    config.classes[static_cast<size_t>(ContentClass::Document)].enabled = false;
    open(config);
    scan("%PDF-1.7\n");
    scan(kCode);
    scan(kCode);
    close();
    EXPECT_TRUE(of(ContentClass::SourceCode).empty());
    EXPECT_TRUE(of(ContentClass::Document).empty());
}

TEST(ProprietaryContentConfigTest, RefusesEmptyNames) {
    ContentConfig config;
    config.source_code.project_names = {""};
    auto db = PatternDatabase::compile(config);
    ASSERT_FALSE(db.ok());
    EXPECT_NE(db.error().find("content.source_code.project_names"), std::string::npos)
            << db.error();
}

}  // namespace
}  // namespace exfiltap::detectors
