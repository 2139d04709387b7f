#include "detectors/mime.h"

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <gtest/gtest.h>

namespace exfiltap::detectors {
namespace {

std::span<const uint8_t> bytes(std::string_view s) {
    return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

// Decodes `in` in two pieces split at `split`, then finishes.
template <typename Decoder>
std::string decode_split(std::string_view in, size_t split) {
    Decoder decoder;
    std::string out(Decoder::max_output(in.size()) + 4, '\0');
    auto* p = reinterpret_cast<uint8_t*>(out.data());
    size_t n = decoder.decode(bytes(in.substr(0, split)), p);
    n += decoder.decode(bytes(in.substr(split)), p + n);
    n += decoder.finish(p + n);
    out.resize(n);
    return out;
}

template <typename Decoder>
std::string decode_all(std::string_view in) {
    return decode_split<Decoder>(in, in.size());
}

// --- base64 ----------------------------------------------------------------------------------

TEST(Base64DecoderTest, DecodesPaddedText) {
    EXPECT_EQ(decode_all<Base64Decoder>("aGVsbG8gd29ybGQ="), "hello world");
}

TEST(Base64DecoderTest, SkipsWhiteSpaceAndLineBreaks) {
    EXPECT_EQ(decode_all<Base64Decoder>("aGVs\r\nbG8g\n d29y bGQ="), "hello world");
}

TEST(Base64DecoderTest, SameResultAtEverySplit) {
    const std::string_view in = "UEsDBBQAAAAIAMGLWFIe\r\nAcE7CsgAAADIAAAdABwA==";
    const std::string whole = decode_all<Base64Decoder>(in);
    ASSERT_EQ(whole.size(), 30U);
    for (size_t split = 0; split <= in.size(); ++split) {
        EXPECT_EQ(decode_split<Base64Decoder>(in, split), whole) << "split " << split;
    }
}

TEST(Base64DecoderTest, StopsAtPadding) {
    Base64Decoder decoder;
    std::array<uint8_t, 32> out{};
    const size_t n = decoder.decode(bytes("YWI=Y2Q="), out.data());
    EXPECT_EQ(n, 2U);
    EXPECT_TRUE(decoder.ended());
    EXPECT_EQ(decoder.decode(bytes("Y2Q="), out.data()), 0U);
}

TEST(Base64DecoderTest, FlushesUnpaddedTailAtFinish) {
    EXPECT_EQ(decode_all<Base64Decoder>("YWJjZA"), "abcd");
    EXPECT_EQ(decode_all<Base64Decoder>("YWJjZGU"), "abcde");
}

TEST(Base64DecoderTest, CountsInvalidBytes) {
    Base64Decoder decoder;
    std::array<uint8_t, 16> out{};
    EXPECT_EQ(decoder.decode(bytes("YW!Jj*"), out.data()), 3U);
    EXPECT_EQ(decoder.invalid_bytes(), 2U);
    EXPECT_EQ(std::string_view(reinterpret_cast<const char*>(out.data()), 3), "abc");
}

TEST(Base64DecoderTest, CountsWithoutOutput) {
    Base64Decoder decoder;
    size_t n = decoder.decode(bytes("aGVsbG8gd29y"), nullptr);
    n += decoder.decode(bytes("bGQ="), nullptr);
    EXPECT_EQ(n, 11U);
}

// --- quoted-printable ------------------------------------------------------------------------

TEST(QuotedPrintableDecoderTest, DecodesEscapes) {
    EXPECT_EQ(decode_all<QuotedPrintableDecoder>("caf=C3=A9 =3D ok"), "caf\xc3\xa9 = ok");
}

TEST(QuotedPrintableDecoderTest, RemovesSoftLineBreaks) {
    EXPECT_EQ(decode_all<QuotedPrintableDecoder>("long=\r\nline=\nend"), "longlineend");
}

TEST(QuotedPrintableDecoderTest, SoftBreakMayHaveTrailingBlanks) {
    EXPECT_EQ(decode_all<QuotedPrintableDecoder>("a= \t\r\nb"), "ab");
}

TEST(QuotedPrintableDecoderTest, KeepsHardLineBreaks) {
    EXPECT_EQ(decode_all<QuotedPrintableDecoder>("a\r\nb"), "a\r\nb");
}

TEST(QuotedPrintableDecoderTest, KeepsMalformedEscapes) {
    QuotedPrintableDecoder decoder;
    std::array<uint8_t, 32> out{};
    size_t n = decoder.decode(bytes("=ZZ=4x"), out.data());
    n += decoder.finish(out.data() + n);
    EXPECT_EQ(std::string_view(reinterpret_cast<const char*>(out.data()), n), "=ZZ=4x");
    EXPECT_EQ(decoder.malformed_escapes(), 2U);
}

TEST(QuotedPrintableDecoderTest, FlushesPendingEscapeAtFinish) {
    EXPECT_EQ(decode_all<QuotedPrintableDecoder>("x=4"), "x=4");
}

TEST(QuotedPrintableDecoderTest, SameResultAtEverySplit) {
    const std::string_view in = "P=C3=A4ivit=C3=A4=\r\n =3D abc=20=\n\r\nz=";
    const std::string whole = decode_all<QuotedPrintableDecoder>(in);
    for (size_t split = 0; split <= in.size(); ++split) {
        EXPECT_EQ(decode_split<QuotedPrintableDecoder>(in, split), whole) << "split " << split;
    }
}

// --- boundary matcher ------------------------------------------------------------------------

BoundaryMatcher::Step feed_line(BoundaryMatcher& m, std::string_view line) {
    m.begin_line();
    BoundaryMatcher::Step step = BoundaryMatcher::Step::Mismatch;
    for (const char c : line) {
        step = m.feed(static_cast<uint8_t>(c));
        if (step != BoundaryMatcher::Step::More) {
            break;
        }
    }
    return step;
}

TEST(BoundaryMatcherTest, MatchesDelimiter) {
    BoundaryMatcher m;
    ASSERT_TRUE(m.push("abc"));
    EXPECT_EQ(feed_line(m, "--abc"), BoundaryMatcher::Step::Matched);
    EXPECT_EQ(m.matched_level(), 0U);
    EXPECT_EQ(m.matched_prefix(), "--abc");
}

TEST(BoundaryMatcherTest, ReportsHeldPrefixOnMismatch) {
    BoundaryMatcher m;
    ASSERT_TRUE(m.push("abc"));
    EXPECT_EQ(feed_line(m, "--abX"), BoundaryMatcher::Step::Mismatch);
    EXPECT_EQ(m.matched_prefix(), "--ab");
    EXPECT_EQ(feed_line(m, "x--abc"), BoundaryMatcher::Step::Mismatch);
    EXPECT_EQ(m.matched_prefix(), "");
}

TEST(BoundaryMatcherTest, PrefersInnermostLevel) {
    BoundaryMatcher m;
    ASSERT_TRUE(m.push("outer"));
    ASSERT_TRUE(m.push("inner"));
    EXPECT_EQ(feed_line(m, "--inner"), BoundaryMatcher::Step::Matched);
    EXPECT_EQ(m.matched_level(), 1U);
    EXPECT_EQ(feed_line(m, "--outer"), BoundaryMatcher::Step::Matched);
    EXPECT_EQ(m.matched_level(), 0U);
}

TEST(BoundaryMatcherTest, RefusesTooManyLevelsAndLongBoundaries) {
    BoundaryMatcher m;
    EXPECT_FALSE(m.push(std::string(BoundaryMatcher::kMaxBoundary + 1, 'b')));
    EXPECT_FALSE(m.push(""));
    for (size_t i = 0; i < BoundaryMatcher::kMaxDepth; ++i) {
        ASSERT_TRUE(m.push("b" + std::to_string(i)));
    }
    EXPECT_FALSE(m.push("more"));
    m.truncate(1);
    EXPECT_EQ(m.depth(), 1U);
    EXPECT_EQ(feed_line(m, "--b1"), BoundaryMatcher::Step::Mismatch);
}

// --- walker ----------------------------------------------------------------------------------

struct Part {
    MimePartInfo info;
    std::string data;
};

class RecordingHandler final : public MimeHandler {
public:
    void on_part_begin(const MimePartInfo& part) noexcept override {
        parts.push_back({part, {}});
        open = true;
    }
    void on_part_data(std::span<const uint8_t> data) noexcept override {
        EXPECT_TRUE(open);
        parts.back().data.append(reinterpret_cast<const char*>(data.data()), data.size());
    }
    void on_part_end(const MimePartInfo& part) noexcept override {
        EXPECT_TRUE(open);
        parts.back().info = part;
        open = false;
    }

    std::vector<Part> parts;
    bool open = false;
};

std::vector<Part> walk(std::string_view message, size_t piece = 0, bool decode = true) {
    MimeWalker walker;
    RecordingHandler handler;
    walker.reset();
    if (piece == 0) {
        piece = message.size() + 1;
    }
    for (size_t at = 0; at < message.size(); at += piece) {
        walker.feed(bytes(message.substr(at, piece)), decode, handler);
    }
    walker.finish(decode, handler);
    EXPECT_FALSE(handler.open);
    return handler.parts;
}

constexpr std::string_view kMultipart =
        "From: a@example.com\r\n"
        "Content-Type: multipart/mixed;\r\n boundary=\"XYZ\"\r\n"
        "\r\n"
        "preamble --XYZ not a delimiter\r\n"
        "--XYZ\r\n"
        "Content-Type: text/plain\r\n"
        "\r\n"
        "hello\r\n"
        "--XYZ\r\n"
        "Content-Type: application/octet-stream; name=\"data.bin\"\r\n"
        "Content-Transfer-Encoding: base64\r\n"
        "Content-Disposition: attachment; filename=\"report.pdf\"\r\n"
        "\r\n"
        "JVBERi0xLjQK\r\n"
        "--XYZ--\r\n"
        "epilogue\r\n";

TEST(MimeWalkerTest, SplitsMultipartIntoParts) {
    const std::vector<Part> parts = walk(kMultipart);
    ASSERT_EQ(parts.size(), 2U);
    EXPECT_EQ(parts[0].data, "hello");
    EXPECT_FALSE(parts[0].info.is_attachment());
    EXPECT_EQ(parts[0].info.depth, 1U);
    EXPECT_EQ(parts[1].data, "%PDF-1.4\n");
    EXPECT_EQ(parts[1].info.decoded_bytes, 9U);
    EXPECT_EQ(parts[1].info.encoding, MimeEncoding::Base64);
    EXPECT_TRUE(parts[1].info.disposition_attachment);
    EXPECT_EQ(parts[1].info.name_view(), "report.pdf");  // filename beats name
}

TEST(MimeWalkerTest, SameResultAtEverySplitSize) {
    const std::vector<Part> whole = walk(kMultipart);
    for (size_t piece = 1; piece <= kMultipart.size(); ++piece) {
        const std::vector<Part> parts = walk(kMultipart, piece);
        ASSERT_EQ(parts.size(), whole.size()) << "piece " << piece;
        for (size_t i = 0; i < parts.size(); ++i) {
            EXPECT_EQ(parts[i].data, whole[i].data) << "piece " << piece;
            EXPECT_EQ(parts[i].info.name_view(), whole[i].info.name_view());
        }
    }
}

TEST(MimeWalkerTest, CountsWithoutDecoding) {
    const std::vector<Part> parts = walk(kMultipart, 0, false);
    ASSERT_EQ(parts.size(), 2U);
    EXPECT_EQ(parts[0].data, "");
    EXPECT_EQ(parts[0].info.decoded_bytes, 5U);
    EXPECT_EQ(parts[1].info.decoded_bytes, 9U);
}

TEST(MimeWalkerTest, JoinsRfc2231Continuations) {
    const std::vector<Part> parts =
            walk("Content-Type: application/zip\r\n"
                 "Content-Disposition: attachment;\r\n"
                 " filename*0*=UTF-8''na%C3%AFve%20;\r\n"
                 " filename*1=\"part two\";\r\n"
                 " filename*2*=%2Ezip\r\n"
                 "\r\n"
                 "x");
    ASSERT_EQ(parts.size(), 1U);
    EXPECT_EQ(parts[0].info.name_view(), "na\xc3\xafve part two.zip");
}

TEST(MimeWalkerTest, IgnoresContinuationOutOfOrder) {
    const std::vector<Part> parts = walk(
            "Content-Disposition: attachment; filename*1=b; filename*0=a; filename*2=c\r\n\r\n");
    ASSERT_EQ(parts.size(), 1U);
    EXPECT_EQ(parts[0].info.name_view(), "a");
}

TEST(MimeWalkerTest, TakesContentTypeNameWithoutFilename) {
    const std::vector<Part> parts = walk("Content-Type: text/plain; name=notes.txt\r\n\r\nabc");
    ASSERT_EQ(parts.size(), 1U);
    EXPECT_EQ(parts[0].info.name_view(), "notes.txt");
    EXPECT_TRUE(parts[0].info.is_attachment());
    EXPECT_EQ(parts[0].data, "abc");
}

TEST(MimeWalkerTest, KeepsEncodedWordsAsTheyAre) {
    const std::vector<Part> parts =
            walk("Content-Disposition: attachment; filename=\"=?UTF-8?B?w6k=?=\"\r\n\r\n");
    ASSERT_EQ(parts.size(), 1U);
    EXPECT_EQ(parts[0].info.name_view(), "=?UTF-8?B?w6k=?=");
}

TEST(MimeWalkerTest, WalksNestedMultiparts) {
    const std::vector<Part> parts =
            walk("Content-Type: multipart/mixed; boundary=outer\r\n\r\n"
                 "--outer\r\n"
                 "Content-Type: multipart/alternative; boundary=inner\r\n\r\n"
                 "--inner\r\n\r\nplain\r\n"
                 "--inner\r\nContent-Type: text/html\r\n\r\n<p>html</p>\r\n"
                 "--inner--\r\n"
                 "--outer\r\nContent-Transfer-Encoding: quoted-printable\r\n"
                 "Content-Disposition: attachment; filename=q.txt\r\n\r\n"
                 "a=3Db=\r\nc\r\n"
                 "--outer--\r\n");
    ASSERT_EQ(parts.size(), 3U);
    EXPECT_EQ(parts[0].data, "plain");
    EXPECT_EQ(parts[0].info.depth, 2U);
    EXPECT_EQ(parts[1].data, "<p>html</p>");
    EXPECT_EQ(parts[2].data, "a=bc");
    EXPECT_EQ(parts[2].info.depth, 1U);
}

TEST(MimeWalkerTest, CountsMultipartsDeeperThanTheLimit) {
    std::string message;
    for (size_t level = 0; level <= BoundaryMatcher::kMaxDepth; ++level) {
        message += "Content-Type: multipart/mixed; boundary=b" + std::to_string(level)
                + "\r\n\r\n--b" + std::to_string(level) + "\r\n";
    }
    message += "\r\ndeep text\r\n--b0--\r\n";
    MimeWalker walker;
    RecordingHandler handler;
    walker.reset();
    walker.feed(bytes(message), true, handler);
    walker.finish(true, handler);
    EXPECT_EQ(walker.too_deep(), 1U);
    EXPECT_TRUE(handler.parts.empty());
}

TEST(MimeWalkerTest, KeepsMessagePartWhole) {
    const std::vector<Part> parts =
            walk("Content-Type: multipart/mixed; boundary=\"==b==\"\r\n\r\n"
                 "--==b==\r\nContent-Type: message/rfc822\r\n"
                 "Content-Disposition: attachment; filename=\"test.msg\"\r\n\r\n"
                 "From: <x@example.com>\r\n\r\n\r\n"
                 "--==b==--\r\n");
    ASSERT_EQ(parts.size(), 1U);
    EXPECT_TRUE(parts[0].info.is_message);
    EXPECT_EQ(parts[0].data, "From: <x@example.com>\r\n\r\n");
}

TEST(MimeWalkerTest, SinglePartBodyKeepsFinalLineBreak) {
    const std::vector<Part> parts = walk("Subject: x\r\n\r\nline one\r\nline two\r\n");
    ASSERT_EQ(parts.size(), 1U);
    EXPECT_EQ(parts[0].data, "line one\r\nline two\r\n");
}

TEST(MimeWalkerTest, CutsLongHeadersAndCountsThem) {
    std::string message = "Content-Disposition: attachment; filename=\"";
    message += std::string(MimeWalker::kHeaderCap, 'n');
    message += "\"\r\n\r\n";
    MimeWalker walker;
    RecordingHandler handler;
    walker.reset();
    walker.feed(bytes(message), true, handler);
    walker.finish(true, handler);
    EXPECT_EQ(walker.headers_cut(), 1U);
    ASSERT_EQ(handler.parts.size(), 1U);
    EXPECT_TRUE(handler.parts[0].info.name_truncated);
    EXPECT_EQ(handler.parts[0].info.name_len, MimePartInfo::kNameCap);
}

}  // namespace
}  // namespace exfiltap::detectors
