#include "detectors/content_scanner.h"

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <gtest/gtest.h>

#include "detectors/content_types.h"

namespace exfiltap::detectors {
namespace {

// Synthetic Luhn-valid numbers, not issued cards.
constexpr std::string_view kVisa = "4857083934735715";
constexpr std::string_view kVisa2 = "4736692368327661";
constexpr std::string_view kMastercard = "5335705397616813";

std::span<const uint8_t> bytes(std::string_view text) {
    return {reinterpret_cast<const uint8_t*>(text.data()), text.size()};
}

std::shared_ptr<const PatternDatabase> compile_or_die(const ContentConfig& config) {
    auto db = PatternDatabase::compile(config);
    if (!db.ok()) {
        ADD_FAILURE() << db.error();
        return nullptr;
    }
    return db.value();
}

class ContentStreamTest : public ::testing::Test {
protected:
    void SetUp() override {
        db_ = compile_or_die(ContentConfig{});
        ASSERT_NE(db_, nullptr);
        auto scratch = db_->alloc_scratch();
        ASSERT_TRUE(scratch.ok()) << scratch.error();
        scratch_ = scratch.value();
        ASSERT_TRUE(stream_.open(*db_));
    }

    void TearDown() override {
        stream_.close(scratch_, sink_);
        PatternDatabase::free_scratch(scratch_);
    }

    void scan(std::string_view text, bool gap_before = false) {
        stream_.scan(bytes(text), scratch_, sink_, gap_before);
    }

    void close() { stream_.close(scratch_, sink_); }

    std::vector<Finding> findings() const {
        return {sink_.items.begin(), sink_.items.begin() + static_cast<long>(sink_.count)};
    }

    std::shared_ptr<const PatternDatabase> db_;
    hs_scratch* scratch_ = nullptr;
    ContentStream stream_;
    FindingSink sink_;
};

TEST_F(ContentStreamTest, FindsCardInOneScan) {
    scan("order 4857083934735715 shipped");

    ASSERT_EQ(sink_.count, 1U);
    const Finding& finding = sink_.items[0];
    EXPECT_EQ(finding.cls, ContentClass::PaymentCard);
    EXPECT_EQ(finding.value_view(), kVisa);
    EXPECT_EQ(finding.distinct_count, 1U);
    EXPECT_EQ(finding.end_offset, 22U);
}

TEST_F(ContentStreamTest, FindsCardSplitAcrossTwoScans) {
    scan("order 48570839");
    scan("34735715 shipped");

    ASSERT_EQ(sink_.count, 1U);
    EXPECT_EQ(sink_.items[0].value_view(), kVisa);
    EXPECT_EQ(sink_.items[0].end_offset, 22U);
}

TEST_F(ContentStreamTest, FindsCardSplitIntoOneByteScans) {
    const std::string text = "x 4857 0839 3473 5715 y";
    for (const char c : text) {
        scan(std::string_view(&c, 1));
    }

    ASSERT_EQ(sink_.count, 1U);
    EXPECT_EQ(sink_.items[0].value_view(), kVisa);
}

TEST_F(ContentStreamTest, ReportsRepeatedValueOnce) {
    scan("a 4857083934735715 b 4857-0839-3473-5715 c");
    scan(" 4857083934735715\n");

    ASSERT_EQ(sink_.count, 1U);
    EXPECT_EQ(sink_.items[0].distinct_count, 1U);
}

TEST_F(ContentStreamTest, CountsDifferentValues) {
    scan("a 4857083934735715 b 5335 7053 9761 6813 c");

    ASSERT_EQ(sink_.count, 2U);
    EXPECT_EQ(sink_.items[0].value_view(), kVisa);
    EXPECT_EQ(sink_.items[0].distinct_count, 1U);
    EXPECT_EQ(sink_.items[1].value_view(), kMastercard);
    EXPECT_EQ(sink_.items[1].distinct_count, 2U);
}

TEST_F(ContentStreamTest, CountsValuesBeyondRememberedOnesAsDistinct) {
    // Distinct SSNs 152-87-58xx, more than the stream remembers.
    const size_t values = ContentStream::kMaxDistinct + 2;
    for (size_t i = 0; i < values; ++i) {
        const std::string ssn = "152-87-58" + std::to_string(10 + i) + "\n";
        scan(ssn);
    }

    ASSERT_EQ(sink_.count, values);
    EXPECT_EQ(sink_.items[values - 1].distinct_count, values);
}

TEST_F(ContentStreamTest, FindsValueAtEndOfStreamOnClose) {
    scan("number 4857083934735715");
    EXPECT_EQ(sink_.count, 0U);

    close();

    ASSERT_EQ(sink_.count, 1U);
    EXPECT_EQ(sink_.items[0].value_view(), kVisa);
    EXPECT_EQ(sink_.items[0].end_offset, 23U);
}

TEST_F(ContentStreamTest, DropsValueCutByGap) {
    scan("card 48570839");
    scan("34735715 more text", true);
    close();

    EXPECT_EQ(sink_.count, 0U);
}

TEST_F(ContentStreamTest, DropsValueStartingRightAfterGap) {
    scan("payload ");
    scan("4857083934735715 more", true);

    EXPECT_EQ(sink_.count, 0U);
}

TEST_F(ContentStreamTest, FindsWholeValueAfterGap) {
    scan("payload 4857");
    scan(" ref 4736692368327661 ", true);

    ASSERT_EQ(sink_.count, 1U);
    EXPECT_EQ(sink_.items[0].value_view(), kVisa2);
}

TEST_F(ContentStreamTest, RaisesConfidenceAfterKeyword) {
    scan("Visa: 4857083934735715\n");

    ASSERT_EQ(sink_.count, 1U);
    EXPECT_EQ(sink_.items[0].confidence, Confidence::High);
}

TEST_F(ContentStreamTest, KeepsLowConfidenceWithoutKeyword) {
    scan("ref 4857083934735715\n");

    ASSERT_EQ(sink_.count, 1U);
    EXPECT_EQ(sink_.items[0].confidence, Confidence::Low);
}

TEST_F(ContentStreamTest, KeepsLowConfidenceWhenKeywordIsOutsideWindow) {
    scan("card " + std::string(400, '.') + " 4857083934735715\n");

    ASSERT_EQ(sink_.count, 1U);
    EXPECT_EQ(sink_.items[0].confidence, Confidence::Low);
}

TEST_F(ContentStreamTest, IgnoresKeywordOfOtherClass) {
    scan("ssn 4857083934735715\n");

    ASSERT_EQ(sink_.count, 1U);
    EXPECT_EQ(sink_.items[0].confidence, Confidence::Low);
}

TEST_F(ContentStreamTest, IgnoresShortKeywordInsideWord) {
    scan("company 4857083934735715\n");

    ASSERT_EQ(sink_.count, 1U);
    EXPECT_EQ(sink_.items[0].confidence, Confidence::Low);
}

TEST_F(ContentStreamTest, FindsSsnWithKeyword) {
    scan("SSN: 152-87-5870\n");

    ASSERT_EQ(sink_.count, 1U);
    EXPECT_EQ(sink_.items[0].cls, ContentClass::UsSsn);
    EXPECT_EQ(sink_.items[0].value_view(), "152875870");
    EXPECT_EQ(sink_.items[0].confidence, Confidence::High);
}

TEST_F(ContentStreamTest, FindsSpacedSsnAtEndOfStream) {
    scan("id 728 62 0275");
    close();

    ASSERT_EQ(sink_.count, 1U);
    EXPECT_EQ(sink_.items[0].value_view(), "728620275");
}

TEST_F(ContentStreamTest, IgnoresNearMisses) {
    scan("card 4912048809700551\n");                             // Luhn
    scan("id=49476253-8706-4936-ae97-868077e7b607\n");           // UUID
    scan(R"({"ts":1767742334637,"trace":"9134619013487043"})");  // no IIN
    scan("x=-0.5333927856964011\n");                             // decimal
    scan("--===============4526788003826120489==\n");            // MIME boundary
    scan("TRANSACTION 422172383783344\n");                       // Visa length
    scan("test card 4111 1111 1111 1111\n");                     // published test PAN
    scan("ssn 666-12-3456, 152-00-5870\n");                      // invalid area, group
    close();

    EXPECT_EQ(sink_.count, 0U) << findings()[0].value_view();
}

TEST_F(ContentStreamTest, StopsInspectingAfterScanError) {
    stream_.scan(bytes("4857083934735715 "), nullptr, sink_);

    EXPECT_FALSE(stream_.is_open());
    EXPECT_EQ(sink_.count, 0U);
}

TEST_F(ContentStreamTest, CountsScannedBytes) {
    scan("abc");
    scan("defg", true);

    EXPECT_EQ(stream_.scanned_bytes(), 7U);
}

TEST(PatternDatabaseTest, UsesConfiguredKeywords) {
    ContentConfig config;
    config.classes[0].keywords = {"Kundenkarte"};
    const auto db = compile_or_die(config);
    ASSERT_NE(db, nullptr);
    auto scratch = db->alloc_scratch();
    ASSERT_TRUE(scratch.ok());
    ContentStream stream;
    FindingSink sink;
    ASSERT_TRUE(stream.open(*db));

    stream.scan(bytes("card 4857083934735715 KUNDENKARTE 4736692368327661 "), *scratch, sink);
    stream.close(*scratch, sink);
    PatternDatabase::free_scratch(*scratch);

    ASSERT_EQ(sink.count, 2U);
    EXPECT_EQ(sink.items[0].confidence, Confidence::Low);
    EXPECT_EQ(sink.items[1].confidence, Confidence::High);
}

TEST(PatternDatabaseTest, SkipsDisabledClass) {
    ContentConfig config;
    config.classes[static_cast<size_t>(ContentClass::UsSsn)].enabled = false;
    const auto db = compile_or_die(config);
    ASSERT_NE(db, nullptr);
    auto scratch = db->alloc_scratch();
    ASSERT_TRUE(scratch.ok());
    ContentStream stream;
    FindingSink sink;
    ASSERT_TRUE(stream.open(*db));

    stream.scan(bytes("ssn 152-87-5870 card 4857083934735715 "), *scratch, sink);
    stream.close(*scratch, sink);
    PatternDatabase::free_scratch(*scratch);

    ASSERT_EQ(sink.count, 1U);
    EXPECT_EQ(sink.items[0].cls, ContentClass::PaymentCard);
}

TEST(PatternDatabaseTest, RejectsConfigWithEveryClassDisabled) {
    ContentConfig config;
    for (ClassConfig& class_config : config.classes) {
        class_config.enabled = false;
    }

    const auto db = PatternDatabase::compile(config);

    EXPECT_FALSE(db.ok());
}

TEST(PatternDatabaseTest, RejectsEmptyKeyword) {
    ContentConfig config;
    config.classes[0].keywords = {"card", ""};

    const auto db = PatternDatabase::compile(config);

    ASSERT_FALSE(db.ok());
    EXPECT_NE(db.error().find("payment_card"), std::string::npos);
}

TEST(StreamPoolTest, FailsWhenEmptyAndRecovers) {
    StreamPool pool(2, 64);
    void* a = pool.allocate(64);
    void* b = pool.allocate(10);
    ASSERT_NE(a, nullptr);
    ASSERT_NE(b, nullptr);

    EXPECT_EQ(pool.allocate(1), nullptr);
    EXPECT_EQ(pool.exhausted(), 1U);
    EXPECT_EQ(pool.in_use(), 2U);

    pool.release(a);
    EXPECT_EQ(pool.allocate(8), a);
}

TEST(StreamPoolTest, RefusesRequestLargerThanBlock) {
    StreamPool pool(2, 64);

    EXPECT_EQ(pool.allocate(65), nullptr);
    EXPECT_EQ(pool.in_use(), 0U);
}

TEST(StreamPoolTest, ExhaustionMakesOpenFail) {
    const auto db = compile_or_die(ContentConfig{});
    ASSERT_NE(db, nullptr);
    auto scratch = db->alloc_scratch();
    ASSERT_TRUE(scratch.ok());
    StreamPool::install_hyperscan_allocator();
    StreamPool pool(1, db->stream_size());
    pool.bind_to_this_thread();
    ContentStream first;
    ContentStream second;
    FindingSink sink;

    ASSERT_TRUE(first.open(*db));
    EXPECT_EQ(pool.in_use(), 1U);
    EXPECT_FALSE(second.open(*db));
    EXPECT_EQ(pool.exhausted(), 1U);

    first.scan(bytes("card 4857083934735715"), *scratch, sink);
    first.close(*scratch, sink);
    EXPECT_EQ(pool.in_use(), 0U);
    EXPECT_EQ(sink.count, 1U);
    EXPECT_TRUE(second.open(*db));
    EXPECT_EQ(pool.in_use(), 1U);
    second.close(*scratch, sink);
    EXPECT_EQ(pool.in_use(), 0U);
    PatternDatabase::free_scratch(*scratch);
}

}  // namespace
}  // namespace exfiltap::detectors
