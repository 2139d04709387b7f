#include "detectors/content_scanner.h"

#include <algorithm>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <gtest/gtest.h>

#include "detectors/content_types.h"
#include "detectors/validators.h"

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

    // A fresh stream given `text` in pieces of these sizes, then closed: its findings as
    // value@end_offset.
    std::vector<std::string> values_scanned_in_pieces(
            std::string_view text, const std::vector<size_t>& pieces) const {
        ContentStream stream;
        FindingSink sink;
        EXPECT_TRUE(stream.open(*db_));
        size_t at = 0;
        for (const size_t n : pieces) {
            stream.scan(bytes(text.substr(at, n)), scratch_, sink);
            at += n;
        }
        stream.close(scratch_, sink);
        std::vector<std::string> found;
        for (size_t i = 0; i < sink.count; ++i) {
            found.push_back(std::string(sink.items[i].value_view()) + "@"
                    + std::to_string(sink.items[i].end_offset));
        }
        return found;
    }

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
    close();

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
    close();

    ASSERT_EQ(sink_.count, 1U);
    EXPECT_EQ(sink_.items[0].value_view(), kVisa);
    EXPECT_EQ(sink_.items[0].end_offset, 22U);
}

TEST_F(ContentStreamTest, FindsCardSplitIntoOneByteScans) {
    const std::string text = "x 4857 0839 3473 5715 y";
    for (const char c : text) {
        scan(std::string_view(&c, 1));
    }
    close();

    ASSERT_EQ(sink_.count, 1U);
    EXPECT_EQ(sink_.items[0].value_view(), kVisa);
}

// Card values in a run of card-shaped numbers are judged by following the run forward: a
// split anywhere must give what one scan gives.
TEST_F(ContentStreamTest, FindsCardsInDigitRunSplitAnywhere) {
    const std::string text =
            "pay 4000 1234 5678 9011 4857 0839 3473 5715 4000 1234 5678 9013 5335 7053 9761 "
            "6813 4000 1234 5678 9015\n";
    auto run = [&](size_t split) {
        return values_scanned_in_pieces(text, {split, text.size() - split});
    };
    const std::vector<std::string> whole = run(text.size());
    ASSERT_EQ(whole.size(), 2U);
    EXPECT_EQ(whole[0], std::string(kVisa) + "@43");
    EXPECT_EQ(whole[1], std::string(kMastercard) + "@83");

    for (size_t split = 0; split < text.size(); ++split) {
        EXPECT_EQ(run(split), whole) << "split at " << split;
    }
}

// The same run cut into segments of random sizes, a hundred times: the tracker kept from one
// scan to the next must find what one scan finds.
TEST_F(ContentStreamTest, FindsCardsInDigitRunCutAtRandom) {
    std::string text = "pay ";
    const std::string_view numbers[] = {"4000 1234 5678 9011 ", "4857 0839 3473 5715 ",
            "4000-1234-5678-9013\n", "5335 7053 9761 6813 ", "4736692368327661 "};
    uint64_t state = 43;
    auto next = [&state](unsigned bound) {
        state = state * 6364136223846793005ULL + 1442695040888963407ULL;
        return static_cast<unsigned>((state >> 33) % bound);
    };
    for (int i = 0; i < 40; ++i) {
        text += numbers[next(5)];
    }
    const std::vector<std::string> whole = values_scanned_in_pieces(text, {text.size()});
    ASSERT_EQ(whole.size(), 3U);  // the Visa, Mastercard and second Visa, each once
    for (int round = 0; round < 100; ++round) {
        std::vector<size_t> pieces;
        for (size_t at = 0; at < text.size(); at += pieces.back()) {
            pieces.push_back(std::min<size_t>(1 + next(90), text.size() - at));
        }
        EXPECT_EQ(values_scanned_in_pieces(text, pieces), whole) << "round " << round;
    }
}

// Digit-dense text as exfiltap-bench's digits scenario sends it (4-4-4-4 numbers failing
// Luhn, separated by a space or a line break) with Luhn-valid cards and other bytes among
// the groups, scanned in segments of several sizes: the card findings are the values
// extract_card() accepts at the group ends from the 128 bytes before each, first
// occurrences only, whatever the segment size (the card tracker settles most ends).
TEST_F(ContentStreamTest, DigitDenseSegmentsFindWhatExtractCardAccepts) {
    uint64_t state = 41;
    auto next = [&state](unsigned bound) {
        state = state * 6364136223846793005ULL + 1442695040888963407ULL;
        return static_cast<unsigned>((state >> 33) % bound);
    };
    std::string text;
    while (text.size() < 1800) {
        std::string digits = next(8) == 0 ? std::string(kVisa2) : "4";
        while (digits.size() < 16) {
            digits += static_cast<char>('0' + next(10));
        }
        const std::string_view joints = next(10) == 0 ? "-.x" : next(3) == 0 ? "---" : "   ";
        for (size_t i = 0; i < 16; i += 4) {
            text += digits.substr(i, 4);
            text += i < 12 ? joints[i / 4] : next(4) == 0 ? '\n' : ' ';
        }
    }
    std::vector<std::string> expected;
    std::vector<std::string> seen;
    for (size_t end = 1; end < text.size(); ++end) {
        const size_t begin = end - std::min<size_t>(end, 128);
        const Candidate c = extract_card(
                std::string_view(text).substr(begin, end + 1 - begin), end - begin, true);
        const std::string value(c.view());
        if (c.ok && !(c.start == 0 && begin != 0)
                && std::find(seen.begin(), seen.end(), value) == seen.end()) {
            seen.push_back(value);
            expected.push_back(value + "@" + std::to_string(end));
        }
    }
    ASSERT_GE(expected.size(), 3U);
    ASSERT_LT(expected.size(), ContentStream::kMaxDistinct);
    for (const size_t segment : {size_t{1460}, size_t{200}, size_t{64}, size_t{7}}) {
        ContentStream stream;
        FindingSink sink;
        ASSERT_TRUE(stream.open(*db_));
        for (size_t at = 0; at < text.size(); at += segment) {
            stream.scan(bytes(std::string_view(text).substr(at, segment)), scratch_, sink);
        }
        stream.close(scratch_, sink);
        std::vector<std::string> found;
        for (size_t i = 0; i < sink.count; ++i) {
            if (sink.items[i].cls == ContentClass::PaymentCard) {
                found.push_back(std::string(sink.items[i].value_view()) + "@"
                        + std::to_string(sink.items[i].end_offset));
            }
        }
        std::sort(found.begin(), found.end());
        std::vector<std::string> sorted = expected;
        std::sort(sorted.begin(), sorted.end());
        EXPECT_EQ(found, sorted) << "segments of " << segment;
    }
}

TEST_F(ContentStreamTest, ReportsRepeatedValueOnce) {
    scan("a 4857083934735715 b 4857-0839-3473-5715 c");
    scan(" 4857083934735715\n");
    close();

    ASSERT_EQ(sink_.count, 1U);
    EXPECT_EQ(sink_.items[0].distinct_count, 1U);
}

TEST_F(ContentStreamTest, CountsDifferentValues) {
    scan("a 4857083934735715 b 5335 7053 9761 6813 c");
    close();

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
    close();

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

// The card tracker follows a run from one scan to the next; lost bytes end the run, so
// groups on both sides of a gap never make a card (after a gap the next byte has the
// offset the tracker waits for: it starts over there).
TEST_F(ContentStreamTest, DropsCardWhoseGroupsStraddleAGap) {
    scan("pay 4857 0839 3473");
    scan(" 5715 and more", true);
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
    close();

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
    close();

    ASSERT_EQ(sink_.count, 1U);
    EXPECT_EQ(sink_.items[0].confidence, Confidence::Low);
}

TEST_F(ContentStreamTest, KeepsLowConfidenceWhenKeywordIsOutsideWindow) {
    scan("card " + std::string(400, '.') + " 4857083934735715\n");
    close();

    ASSERT_EQ(sink_.count, 1U);
    EXPECT_EQ(sink_.items[0].confidence, Confidence::Low);
}

TEST_F(ContentStreamTest, IgnoresKeywordOfOtherClass) {
    scan("ssn 4857083934735715\n");
    close();

    ASSERT_EQ(sink_.count, 1U);
    EXPECT_EQ(sink_.items[0].confidence, Confidence::Low);
}

TEST_F(ContentStreamTest, IgnoresShortKeywordInsideWord) {
    scan("company 4857083934735715\n");
    close();

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
    EXPECT_EQ(stream_.pending(), 0U);
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

TEST_F(ContentStreamTest, WaitsForKeywordAfterValue) {
    scan("ref 4857083934735715\n");

    EXPECT_EQ(sink_.count, 0U);
    EXPECT_EQ(stream_.pending(), 1U);
}

TEST_F(ContentStreamTest, RaisesConfidenceWithKeywordWithinWindowAfterValue) {
    scan("ref 4857083934735715 " + std::string(250, '.'));
    scan(" card holder: A. Example\n");

    ASSERT_EQ(sink_.count, 1U);
    EXPECT_EQ(sink_.items[0].confidence, Confidence::High);
    EXPECT_EQ(sink_.items[0].end_offset, 20U);
    EXPECT_EQ(stream_.pending(), 0U);
}

TEST_F(ContentStreamTest, KeepsLowConfidenceWhenKeywordAfterIsOutsideWindow) {
    scan("ref 4857083934735715 " + std::string(400, '.'));

    ASSERT_EQ(sink_.count, 1U);  // decided once the stream moved the window on
    EXPECT_EQ(sink_.items[0].confidence, Confidence::Low);

    scan(" card\n");
    EXPECT_EQ(sink_.count, 1U);
    EXPECT_EQ(sink_.items[0].confidence, Confidence::Low);
}

TEST_F(ContentStreamTest, ReportsWaitingValueAtClose) {
    scan("ref 4857083934735715 and more");
    EXPECT_EQ(sink_.count, 0U);

    close();

    ASSERT_EQ(sink_.count, 1U);
    EXPECT_EQ(sink_.items[0].confidence, Confidence::Low);
}

TEST_F(ContentStreamTest, ReportsOldestWaitingValueWhenListIsFull) {
    const std::string ssns[] = {"152-87-5801", "152-87-5802", "152-87-5803", "152-87-5804",
            "152-87-5805", "152-87-5806", "152-87-5807", "152-87-5808", "152-87-5809"};
    for (const std::string& ssn : ssns) {
        scan(ssn + "\n");
    }

    ASSERT_EQ(sink_.count, 1U);
    EXPECT_EQ(sink_.items[0].value_view(), "152875801");
    EXPECT_EQ(stream_.pending(), ContentStream::kMaxPending);
}

// Found by content_stream_fuzz (it compares one scan with segments): a document waiting
// for its label, then eight cards 500 bytes apart, each waiting for a keyword. In one scan
// call nothing settled the cards' passed windows before the eighth filled the list, so the
// document was pushed out Low and the label came too late; cut into segments, each call's
// end had let the cards go and the document became High. Now a full list first lets go
// what the bytes up to the new finding decided: both ways the same findings.
TEST_F(ContentStreamTest, FullWaitingListGivesTheSameFindingsHoweverTheStreamIsCut) {
    std::string text = "%PDF-1.7\n";
    for (int i = 0; i < 8; ++i) {
        std::string digits = "48570839347357" + std::to_string(i);
        for (char check = '0'; check <= '9'; ++check) {
            if (luhn_valid(digits + check)) {
                digits += check;
                break;
            }
        }
        text += std::string(500, '.') + " " + digits + " ";
    }
    text += "MSIP_Label_0123abcd-\n";
    auto findings_in = [&](size_t segment) {
        ContentStream stream;
        FindingSink sink;
        EXPECT_TRUE(stream.open(*db_));
        std::vector<std::string> found;
        auto drain = [&] {
            for (size_t i = 0; i < sink.count; ++i) {
                const Finding& f = sink.items[i];
                found.push_back(std::string(content_class_name(f.cls)) + " "
                        + std::string(f.value_view()) + "@" + std::to_string(f.end_offset)
                        + (f.confidence == Confidence::High ? " high" : " low"));
            }
            sink.clear();
        };
        for (size_t at = 0; at < text.size(); at += segment) {
            stream.scan(bytes(std::string_view(text).substr(at, segment)), scratch_, sink);
            drain();
        }
        stream.close(scratch_, sink);
        drain();
        std::sort(found.begin(), found.end());
        return found;
    };
    const std::vector<std::string> whole = findings_in(text.size());
    ASSERT_EQ(whole.size(), 9U);
    EXPECT_EQ(whole[0],
            "document pdf@" + std::to_string(std::string_view("%PDF-1.7").size()) + " high");
    for (const size_t segment : {size_t{64}, size_t{200}, size_t{1460}}) {
        EXPECT_EQ(findings_in(segment), whole) << "segments of " << segment;
    }
}

TEST_F(ContentStreamTest, FindsSpacedIban) {
    scan("IBAN: DE50 5260 1815 9083 0166 13\n");

    ASSERT_EQ(sink_.count, 1U);
    EXPECT_EQ(sink_.items[0].cls, ContentClass::Iban);
    EXPECT_EQ(sink_.items[0].value_view(), "DE50526018159083016613");
    EXPECT_EQ(sink_.items[0].confidence, Confidence::High);
}

TEST_F(ContentStreamTest, RejectsPublishedIbanByDefault) {
    scan("iban DE89 3704 0044 0532 0130 00\n");
    close();

    EXPECT_EQ(sink_.count, 0U);
}

TEST_F(ContentStreamTest, ReadsPrivateKeyTypeAndBodyAcrossScans) {
    scan("id_rsa:\n-----BEGIN RSA PRIVATE KEY-----");
    EXPECT_EQ(sink_.count, 0U);  // waits for the body
    scan("\nMIIEpAIBAAKCAQEA3Tz2mr7SZiAMfQyuvBjM\nqH4rTt0bXYZw\n");

    ASSERT_EQ(sink_.count, 1U);
    EXPECT_EQ(sink_.items[0].cls, ContentClass::PrivateKey);
    EXPECT_EQ(sink_.items[0].confidence, Confidence::High);
    EXPECT_EQ(sink_.items[0].value_view(),
            "RSA PRIVATE KEY:MIIEpAIBAAKCAQEA3Tz2mr7SZiAMfQyuvBjMqH4rTt0bXYZw");
}

TEST_F(ContentStreamTest, ReportsPrivateKeyOncePerType) {
    scan("ssh\n-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n");
    scan("-----BEGIN OPENSSH PRIVATE KEY-----\nAAAAb3BlbnNzaC1rZXktdjEA\n");
    scan("-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEIBkXo3vQzJ1fUcC8\n");
    close();

    ASSERT_EQ(sink_.count, 2U);
    EXPECT_EQ(sink_.items[0].value_view(), "OPENSSH PRIVATE KEY:b3BlbnNzaC1rZXktdjEAAAAA");
    EXPECT_EQ(sink_.items[1].value_view(), "EC PRIVATE KEY:MHcCAQEEIBkXo3vQzJ1fUcC8");
    EXPECT_EQ(sink_.items[1].distinct_count, 2U);
}

TEST_F(ContentStreamTest, FindsTokensOfEveryKind) {
    scan("AWS_ACCESS_KEY_ID=AKIA6EDT4SYWB5WKH7DN\n"
         "key=AIzaWDtkwtDDb_xHKas1VOqg6YYZYn9ZhyiA4uo&x=1\n"
         "GITHUB_TOKEN=ghp_CZ7Uw9xfogoEmvnEN5N1aE6PwZPf1Qh6yYTW\n"
         "PRIVATE-TOKEN: glpat-1qtc4xatws8phP9nhFyJ\n");
    close();

    const auto found = findings();
    ASSERT_EQ(found.size(), 4U);
    EXPECT_EQ(found[0].cls, ContentClass::CloudToken);
    EXPECT_EQ(found[0].value_view(), "AKIA6EDT4SYWB5WKH7DN");
    EXPECT_EQ(found[1].cls, ContentClass::CloudToken);
    EXPECT_EQ(found[2].cls, ContentClass::VcsToken);
    EXPECT_EQ(found[3].value_view(), "glpat-1qtc4xatws8phP9nhFyJ");
    EXPECT_EQ(found[3].distinct_count, 2U);
}

TEST_F(ContentStreamTest, FindsTokenAtEndOfStream) {
    scan("token ghp_CZ7Uw9xfogoEmvnEN5N1aE6PwZPf1Qh6yYTW");
    EXPECT_EQ(sink_.count, 0U);

    close();

    ASSERT_EQ(sink_.count, 1U);
    EXPECT_EQ(sink_.items[0].cls, ContentClass::VcsToken);
}

// A JWT longer than the history, delivered in small pieces: the header is checked while it
// is visible, the value is the token's last 64 characters.
TEST_F(ContentStreamTest, FindsJwtLongerThanHistory) {
    const std::string jwt =
            "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiI0NzExIiwic2NvcGUiOiJyZWFkIHdyaXRlIGFk"
            "bWluIHJlYWQgd3JpdGUgYWRtaW4gcmVhZCB3cml0ZSBhZG1pbiByZWFkIHdyaXRlIGFkbWluIHJlYWQgd3Jp"
            "dGUgYWRtaW4gcmVhZCB3cml0ZSBhZG1pbiByZWFkIHdyaXRlIGFkbWluIHJlYWQgd3JpdGUgYWRtaW4gcmVh"
            "ZCB3cml0ZSBhZG1pbiByZWFkIHdyaXRlIGFkbWluIHJlYWQgd3JpdGUgYWRtaW4gcmVhZCB3cml0ZSBhZG1p"
            "biAifQ.CsUZgXOPB8Lk6RBxU5z5gZuDM7FGc4KIznqB8T-yheA";
    const std::string text = "Authorization: Bearer " + jwt + "\r\n";
    for (size_t i = 0; i < text.size(); i += 50) {
        scan(std::string_view(text).substr(i, 50));
    }

    ASSERT_EQ(sink_.count, 1U);
    EXPECT_EQ(sink_.items[0].cls, ContentClass::Jwt);
    EXPECT_EQ(sink_.items[0].confidence, Confidence::High);
    EXPECT_EQ(sink_.items[0].value_view(), std::string_view(jwt).substr(jwt.size() - 64));
}

TEST_F(ContentStreamTest, IgnoresLongJwtWhoseHeaderHasNoAlg) {
    const std::string jwt =
            "eyJ0eXAiOiJKV1QifQ.eyJzdWIiOiI0NzExIiwic2NvcGUiOiJyZWFkIHdyaXRlIGFk"
            "bWluIHJlYWQgd3JpdGUgYWRtaW4gcmVhZCB3cml0ZSBhZG1pbiByZWFkIHdyaXRlIG"
            "FkbWluIHJlYWQgd3JpdGUgYWRtaW4gIn0.CsUZgXOPB8Lk6RBxU5z5gZuDM7FGc4KI";
    scan("Bearer " + jwt + "\n");
    close();

    EXPECT_EQ(sink_.count, 0U);
}

TEST_F(ContentStreamTest, FindsPasswordAssignments) {
    scan("login=alice&password=Xk9%23mQ2v&next=/\n");
    scan("{\"db\": {\"user\": \"app\", \"pwd\": \"Tr0ub4dor&3\"}}\n");
    scan("password: ********\nsecret = changeme\n");
    close();

    const auto found = findings();
    ASSERT_EQ(found.size(), 2U);
    EXPECT_EQ(found[0].cls, ContentClass::PasswordAssignment);
    EXPECT_EQ(found[0].value_view(), "Xk9%23mQ2v");
    EXPECT_EQ(found[0].confidence, Confidence::High);
    EXPECT_EQ(found[1].value_view(), "Tr0ub4dor&3");
}

TEST_F(ContentStreamTest, FindsClassificationMarkers) {
    scan("Classification: TOP SECRET//SI//NOFORN\nThis is CONFIDENTIAL.\nconfidential note\n");
    close();

    const auto found = findings();
    ASSERT_EQ(found.size(), 2U);
    EXPECT_EQ(found[0].cls, ContentClass::ClassificationMarker);
    EXPECT_EQ(found[0].value_view(), "TOP SECRET//SI//NOFORN");
    EXPECT_EQ(found[0].confidence, Confidence::High);
    EXPECT_EQ(found[1].value_view(), "CONFIDENTIAL");
}

std::vector<Finding> scan_all(const ContentConfig& config, const std::vector<std::string>& parts,
        std::string* error = nullptr) {
    auto db = PatternDatabase::compile(config);
    if (!db.ok()) {
        if (error != nullptr) {
            *error = db.error();
        } else {
            ADD_FAILURE() << db.error();
        }
        return {};
    }
    auto scratch = (*db)->alloc_scratch();
    if (!scratch.ok()) {
        ADD_FAILURE() << scratch.error();
        return {};
    }
    ContentStream stream;
    FindingSink sink;
    EXPECT_TRUE(stream.open(**db));
    for (const std::string& part : parts) {
        stream.scan(bytes(part), *scratch, sink);
    }
    stream.close(*scratch, sink);
    PatternDatabase::free_scratch(*scratch);
    return {sink.items.begin(), sink.items.begin() + static_cast<long>(sink.count)};
}

TEST(PatternDatabaseTest, FindsConfiguredMarkerAsWritten) {
    ContentConfig config;
    config.classification_markers = {"ACME-PROPRIETARY"};

    const auto found = scan_all(config, {"ACME-PROPRIETARY plan\nacme-proprietary\n"});

    ASSERT_EQ(found.size(), 1U);
    EXPECT_EQ(found[0].cls, ContentClass::ClassificationMarker);
    EXPECT_EQ(found[0].value_view(), "ACME-PROPRIETARY");
}

TEST(PatternDatabaseTest, FindsCustomKeywordsAsWholeWords) {
    ContentConfig config;
    config.custom.push_back({"project-falcon", {"falcon", "blue harbor"}, "", std::nullopt,
            std::nullopt, true, ""});

    const auto found =
            scan_all(config, {"gyrfalcon\nthe FALCON launch", " near Blue Harbor\nfalcon"});

    ASSERT_EQ(found.size(), 2U);
    EXPECT_EQ(found[0].cls, ContentClass::Custom);
    EXPECT_EQ(found[0].rule, 1U);
    EXPECT_EQ(found[0].value_view(), "falcon");
    EXPECT_EQ(found[0].confidence, Confidence::High);
    EXPECT_EQ(found[1].value_view(), "blue harbor");
    EXPECT_EQ(found[1].distinct_count, 2U);
}

TEST(PatternDatabaseTest, FindsCustomRegexWithItsMatchedText) {
    ContentConfig config;
    config.custom.push_back(
            {"orders", {}, "ORD-[0-9]{6}", std::nullopt, std::nullopt, true, "x.yaml:7"});

    const auto found = scan_all(config, {"ref ORD-1234", "56 and ORD-654321, ORD-123456"});

    ASSERT_EQ(found.size(), 2U);
    EXPECT_EQ(found[0].cls, ContentClass::Custom);
    EXPECT_EQ(found[0].rule, 1U);
    EXPECT_EQ(found[0].value_view(), "ORD-123456");
    EXPECT_EQ(found[0].end_offset, 14U);
    EXPECT_EQ(found[1].value_view(), "ORD-654321");
    EXPECT_EQ(found[1].distinct_count, 2U);
}

TEST(PatternDatabaseTest, KeepsLongestCustomMatchWithOneStart) {
    ContentConfig config;
    config.custom.push_back({"ids", {}, "ID-[0-9]+", std::nullopt, std::nullopt, true, ""});

    const auto found = scan_all(config, {"ID-12", "345 done " + std::string(100, '.')});

    ASSERT_EQ(found.size(), 1U);
    EXPECT_EQ(found[0].value_view(), "ID-12345");
}

// Found in review: a longer match with the same start replaced the waiting one however far
// on it ended, so in one scan call "BEGIN x END" and its extension 80 bytes on were one
// finding, and two when a call ended between them (the first settled kSettleBytes on).
TEST(PatternDatabaseTest, LongerCustomMatchPastTheSettleDistanceIsAFindingOfItsOwn) {
    ContentConfig config;
    config.custom.push_back(
            {"span", {}, "BEGIN[A-Za-z. ]*END", std::nullopt, std::nullopt, true, ""});
    const std::string first = "BEGIN x END";
    const std::string text = first + std::string(80, '.') + "END\n";
    auto values = [](const std::vector<Finding>& found) {
        std::vector<std::string> out;
        for (const Finding& f : found) {
            out.push_back(std::string(f.value_view()) + "@" + std::to_string(f.end_offset));
        }
        return out;
    };

    const auto whole = values(scan_all(config, {text}));
    const auto cut = values(scan_all(config, {text.substr(0, 81), text.substr(81)}));

    ASSERT_EQ(whole.size(), 2U) << whole[0];
    EXPECT_EQ(whole[0], first + "@" + std::to_string(first.size()));
    EXPECT_TRUE(whole[1].ends_with("..END@" + std::to_string(text.size() - 1))) << whole[1];
    EXPECT_EQ(cut, whole);
}

TEST(PatternDatabaseTest, CarriesLastCharactersOfLongCustomMatch) {
    ContentConfig config;
    config.custom.push_back({"blob", {}, "BLOB:[a-z]+;", std::nullopt, std::nullopt, true, ""});
    const std::string letters(100, 'q');

    const auto found = scan_all(config, {"BLOB:" + letters + "z;"});

    ASSERT_EQ(found.size(), 1U);
    EXPECT_EQ(found[0].value_view(), std::string(62, 'q') + "z;");
}

TEST(PatternDatabaseTest, CountsDistinctValuesPerCustomRule) {
    ContentConfig config;
    config.custom.push_back({"a", {"alpha"}, "", std::nullopt, std::nullopt, true, ""});
    config.custom.push_back({"b", {"bravo", "charlie"}, "", std::nullopt, std::nullopt, true, ""});

    const auto found = scan_all(config, {"alpha bravo charlie alpha\n"});

    ASSERT_EQ(found.size(), 3U);
    EXPECT_EQ(found[0].rule, 1U);
    EXPECT_EQ(found[0].distinct_count, 1U);
    EXPECT_EQ(found[1].rule, 2U);
    EXPECT_EQ(found[1].distinct_count, 1U);
    EXPECT_EQ(found[2].distinct_count, 2U);
}

TEST(PatternDatabaseTest, NamesCustomRules) {
    ContentConfig config;
    config.custom.push_back({"orders", {}, "ORD-[0-9]{6}", std::nullopt, std::nullopt, true, ""});
    const auto db = compile_or_die(config);
    ASSERT_NE(db, nullptr);

    EXPECT_EQ(db->rule_name(1), "orders");
    EXPECT_EQ(db->rule_name(0), "");
    EXPECT_EQ(db->streams_per_direction(), 2U);
}

TEST(PatternDatabaseTest, ReportsRefusedRegexWithSourceAndPattern) {
    ContentConfig config;
    config.custom.push_back({"ok", {}, "fine[0-9]+", std::nullopt, std::nullopt, true, "a.yaml:3"});
    config.custom.push_back({"bad", {}, "(unclosed", std::nullopt, std::nullopt, true, "a.yaml:9"});
    config.custom.push_back({"empty", {}, "x*", std::nullopt, std::nullopt, false, "a.yaml:12"});

    const auto db = PatternDatabase::compile(config);

    ASSERT_FALSE(db.ok());
    EXPECT_NE(db.error().find("a.yaml:9: content.custom[1].regex: Hyperscan refuses '(unclosed': "),
            std::string::npos)
            << db.error();
    EXPECT_NE(db.error().find("a.yaml:12: content.custom[2].regex: Hyperscan refuses 'x*': "),
            std::string::npos)
            << db.error();
    EXPECT_EQ(db.error().find("custom[0]"), std::string::npos) << db.error();
}

TEST(PatternDatabaseTest, DropsCustomRegexMatchSpanningGap) {
    ContentConfig config;
    config.custom.push_back({"orders", {}, "ORD-[0-9]{6}", std::nullopt, std::nullopt, true, ""});
    const auto db = compile_or_die(config);
    ASSERT_NE(db, nullptr);
    auto scratch = db->alloc_scratch();
    ASSERT_TRUE(scratch.ok());
    ContentStream stream;
    FindingSink sink;
    ASSERT_TRUE(stream.open(*db));

    stream.scan(bytes("ORD-123"), *scratch, sink);
    stream.scan(bytes("456 "), *scratch, sink, true);
    stream.close(*scratch, sink);
    PatternDatabase::free_scratch(*scratch);

    EXPECT_EQ(sink.count, 0U);
}

TEST(PatternDatabaseTest, CompilesOnlyCustomRulesWhenEveryBuiltinIsOff) {
    ContentConfig config;
    for (ClassConfig& class_config : config.classes) {
        class_config.enabled = false;
    }
    config.classes[static_cast<size_t>(ContentClass::Custom)].enabled = true;
    config.custom.push_back({"orders", {}, "ORD-[0-9]{6}", std::nullopt, std::nullopt, true, ""});

    const auto found = scan_all(config, {"card 4857083934735715 ORD-123456\n"});

    ASSERT_EQ(found.size(), 1U);
    EXPECT_EQ(found[0].cls, ContentClass::Custom);
}

TEST(PatternDatabaseTest, KeepsPublishedNumbersWhenNotRejecting) {
    ContentConfig config;
    config.reject_test_numbers = false;

    const auto found = scan_all(config, {"iban DE89 3704 0044 0532 0130 00\n"});

    ASSERT_EQ(found.size(), 1U);
    EXPECT_EQ(found[0].cls, ContentClass::Iban);
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

    stream.scan(bytes("card 4857083934735715 " + std::string(300, '.')), *scratch, sink);
    stream.scan(bytes(" KUNDENKARTE 4736692368327661 "), *scratch, sink);
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

TEST(StreamPoolTest, CustomRegexesTakeASecondBlockPerDirection) {
    ContentConfig config;
    config.custom.push_back({"orders", {}, "ORD-[0-9]{6}", std::nullopt, std::nullopt, true, ""});
    const auto db = compile_or_die(config);
    ASSERT_NE(db, nullptr);
    StreamPool::install_hyperscan_allocator();
    StreamPool pool(3, db->stream_size());
    pool.bind_to_this_thread();
    ContentStream first;
    ContentStream second;

    ASSERT_TRUE(first.open(*db));
    EXPECT_EQ(pool.in_use(), 2U);
    EXPECT_FALSE(second.open(*db));  // gets the main stream's block, not the second one
    EXPECT_EQ(pool.in_use(), 2U);
    EXPECT_FALSE(second.is_open());

    FindingSink sink;
    first.close(nullptr, sink);
    EXPECT_EQ(pool.in_use(), 0U);
}

}  // namespace
}  // namespace exfiltap::detectors
