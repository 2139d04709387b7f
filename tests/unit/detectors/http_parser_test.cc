#include "detectors/http_parser.h"

#include <zlib.h>

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <new>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "tests/unit/detectors/capture_payloads.h"

// Counts heap allocations, to show that parsing allocates nothing.
namespace {
size_t g_allocations = 0;
}  // namespace

void* operator new(size_t size) {
    ++g_allocations;
    if (void* p = std::malloc(size == 0 ? 1 : size)) {
        return p;
    }
    throw std::bad_alloc();
}

// GCC cannot see that the replaced operator new above comes from malloc.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif
void operator delete(void* p) noexcept {
    std::free(p);
}

void operator delete(void* p, size_t) noexcept {
    std::free(p);
}
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

namespace exfiltap::detectors {
namespace {

using Bytes = std::vector<uint8_t>;
constexpr AppDir kUp = AppDir::ToServer;
constexpr AppDir kDown = AppDir::ToClient;

class Events : public AppEventSink {
public:
    void on_app_event(const AppEvent& event) noexcept override { all.push_back(event); }
    std::vector<AppEvent> of(AppEventKind kind) const {
        std::vector<AppEvent> out;
        for (const AppEvent& e : all) {
            if (e.kind == kind) {
                out.push_back(e);
            }
        }
        return out;
    }
    std::vector<AppEvent> all;
};

struct Object {
    ObjectKind kind;
    AppDir dir;
    std::string data;
};

// Records objects and checks they never nest.
class Objects : public ObjectSink {
public:
    void object_begin(ObjectKind kind, AppDir dir) noexcept override {
        nested = nested || open;
        open = true;
        list.push_back(Object{kind, dir, {}});
    }
    void object_data(std::span<const uint8_t> d) noexcept override {
        data_outside = data_outside || !open;
        if (!list.empty()) {
            list.back().data.append(d.begin(), d.end());
        }
    }
    void object_end() noexcept override {
        unbalanced = unbalanced || !open;
        open = false;
    }
    // Joins the objects of one direction (a body may arrive as several objects).
    std::string joined(AppDir dir) const {
        std::string out;
        for (const Object& o : list) {
            if (o.dir == dir) {
                out += o.data;
            }
        }
        return out;
    }
    std::vector<Object> list;
    bool open = false;
    bool nested = false;
    bool unbalanced = false;
    bool data_outside = false;
};

std::span<const uint8_t> as_bytes(std::string_view s) {
    return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

std::string gzip(std::string_view in, int window_bits = 31) {
    z_stream z{};
    deflateInit2(&z, Z_BEST_COMPRESSION, Z_DEFLATED, window_bits, 8, Z_DEFAULT_STRATEGY);
    std::string out(deflateBound(&z, in.size()) + 64, '\0');
    z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
    z.avail_in = static_cast<uInt>(in.size());
    z.next_out = reinterpret_cast<Bytef*>(out.data());
    z.avail_out = static_cast<uInt>(out.size());
    deflate(&z, Z_FINISH);
    out.resize(z.total_out);
    deflateEnd(&z);
    return out;
}

std::string chunked(std::string_view body, size_t piece) {
    std::string out;
    char size[32];
    for (size_t at = 0; at < body.size(); at += piece) {
        const size_t n = std::min(piece, body.size() - at);
        std::snprintf(size, sizeof(size), "%zx\r\n", n);
        out += size;
        out.append(body.substr(at, n));
        out += "\r\n";
    }
    return out + "0\r\n\r\n";
}

struct Step {
    AppDir dir;
    std::string bytes;
};

// Feeds the steps in order, each in pieces of `piece` bytes (0: whole), then ends the flow.
void feed(HttpParser& parser, const std::vector<Step>& steps, Events& events, ObjectSink* objects,
        size_t piece = 0) {
    for (const Step& step : steps) {
        const auto all = as_bytes(step.bytes);
        const size_t n = piece == 0 ? std::max<size_t>(all.size(), 1) : piece;
        for (size_t at = 0; at < all.size(); at += n) {
            parser.on_data(
                    step.dir, all.subspan(at, std::min(n, all.size() - at)), events, objects);
        }
    }
    parser.on_end(events, objects);
}

bool same_event(const AppEvent& a, const AppEvent& b) {
    return a.kind == b.kind && a.outcome == b.outcome && a.upload == b.upload && a.final == b.final
            && a.bytes == b.bytes && a.name_view() == b.name_view()
            && a.host_view() == b.host_view() && a.user_view() == b.user_view()
            && a.method_view() == b.method_view();
}

// ---- hand-made streams ----

TEST(HttpParserTest, FitsWorkerPoolSlot) {
    std::printf("[ measured ] sizeof(HttpParser) = %zu\n", sizeof(HttpParser));
    EXPECT_LE(sizeof(HttpParser), 4096U);
}

TEST(HttpParserTest, GetReportsMethodHostAndTarget) {
    HttpParser parser;
    Events events;
    feed(parser, {{kUp, "GET /index.html?q=1 HTTP/1.1\r\nHost: example.com\r\n\r\n"}}, events,
            nullptr);
    ASSERT_EQ(events.all.size(), 1U);
    const AppEvent& e = events.all[0];
    EXPECT_EQ(e.kind, AppEventKind::HttpRequest);
    EXPECT_EQ(e.proto, AppProto::Http);
    EXPECT_EQ(e.method_view(), "GET");
    EXPECT_EQ(e.host_view(), "example.com");
    EXPECT_EQ(e.name_view(), "/index.html?q=1");
    EXPECT_EQ(e.bytes, 0U);
    EXPECT_TRUE(e.final);
}

TEST(HttpParserTest, ContentLengthIsReportedAtHeaderEnd) {
    HttpParser parser;
    Events events;
    parser.on_data(
            kUp, as_bytes("POST /form HTTP/1.1\r\nContent-Length: 5\r\n\r\n"), events, nullptr);
    ASSERT_EQ(events.all.size(), 1U);
    EXPECT_EQ(events.all[0].bytes, 5U);
    EXPECT_TRUE(events.all[0].final);
}

TEST(HttpParserTest, ChunkedRequestReportsDechunkedSizeAtEnd) {
    HttpParser parser;
    Events events;
    Objects objects;
    parser.on_data(kUp,
            as_bytes("POST /up HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n"
                     "6;name=value\r\n world\r\n"),
            events, &objects);
    EXPECT_TRUE(events.all.empty());
    parser.on_data(
            kUp, as_bytes("0\r\nX-Trailer: 1\r\n\r\nGET /next HTTP/1.1\r\n\r\n"), events, &objects);
    ASSERT_EQ(events.all.size(), 2U);
    EXPECT_EQ(events.all[0].name_view(), "/up");
    EXPECT_EQ(events.all[0].bytes, 11U);
    EXPECT_TRUE(events.all[0].final);
    EXPECT_EQ(events.all[1].name_view(), "/next");
    ASSERT_EQ(objects.list.size(), 1U);
    EXPECT_EQ(objects.list[0].kind, ObjectKind::HttpBody);
    EXPECT_EQ(objects.list[0].dir, kUp);
    EXPECT_EQ(objects.list[0].data, "hello world");
}

TEST(HttpParserTest, PlainBodyDoesNotGoToObjectSink) {
    HttpParser parser;
    Events events;
    Objects objects;
    feed(parser, {{kUp, "POST /p HTTP/1.1\r\nContent-Length: 4\r\n\r\nabcd"}}, events, &objects);
    EXPECT_TRUE(objects.list.empty());
}

TEST(HttpParserTest, ChunkedGzipRequestBodyIsDecoded) {
    InflatePool pool(2);
    HttpParser parser(&pool);
    Events events;
    Objects objects;
    const std::string plain = "card=4111 1111 1111 1111 and more text to inflate";
    feed(parser,
            {{kUp,
                    "POST /gz HTTP/1.1\r\nContent-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n"
                    "\r\n" + chunked(gzip(plain), 7)}},
            events, &objects);
    EXPECT_EQ(objects.joined(kUp), plain);
    ASSERT_EQ(events.of(AppEventKind::HttpRequest).size(), 1U);
    EXPECT_EQ(events.all[0].bytes, gzip(plain).size());
    EXPECT_EQ(pool.in_use(), 0U);
}

TEST(HttpParserTest, EncodedBodyGoesOutRawWithoutPool) {
    HttpParser parser;
    Events events;
    Objects objects;
    const std::string gz = gzip("payload");
    feed(parser,
            {{kUp,
                    "POST /gz HTTP/1.1\r\nContent-Encoding: gzip\r\nContent-Length: "
                            + std::to_string(gz.size()) + "\r\n\r\n" + gz}},
            events, &objects);
    EXPECT_EQ(objects.joined(kUp), gz);
}

TEST(HttpParserTest, NullObjectSinkSkipsDecoding) {
    InflatePool pool(1);
    HttpParser parser(&pool);
    Events events;
    const std::string gz = gzip("payload");
    parser.on_data(kUp,
            as_bytes("POST /gz HTTP/1.1\r\nContent-Encoding: gzip\r\nContent-Length: "
                    + std::to_string(gz.size()) + "\r\n\r\n" + gz.substr(0, 3)),
            events, nullptr);
    EXPECT_EQ(pool.in_use(), 0U);
}

TEST(HttpParserTest, DeflateResponseBodiesDecodeZlibAndRaw) {
    InflatePool pool(1);
    HttpParser parser(&pool);
    Events events;
    Objects objects;
    const std::string zlib_body = gzip("first body", 15);
    const std::string raw_body = gzip("second body", -15);
    feed(parser,
            {{kUp, "GET /a HTTP/1.1\r\n\r\nGET /b HTTP/1.1\r\n\r\n"},
                    {kDown,
                            "HTTP/1.1 200 OK\r\nContent-Encoding: deflate\r\nContent-Length: "
                                    + std::to_string(zlib_body.size()) + "\r\n\r\n" + zlib_body
                                    + "HTTP/1.1 200 OK\r\nContent-Encoding: deflate\r\n"
                                      "Transfer-Encoding: chunked\r\n\r\n"
                                    + chunked(raw_body, 5)}},
            events, &objects);
    ASSERT_EQ(objects.list.size(), 2U);
    EXPECT_EQ(objects.list[0].dir, kDown);
    EXPECT_EQ(objects.list[0].data, "first body");
    EXPECT_EQ(objects.list[1].data, "second body");
}

TEST(HttpParserTest, PipelinedRequestsComeInOrder) {
    HttpParser parser;
    Events events;
    feed(parser,
            {{kUp,
                     "GET /1 HTTP/1.1\r\nHost: h\r\n\r\nPOST /2 HTTP/1.1\r\nContent-Length: 3\r\n"
                     "\r\nabcHEAD /3 HTTP/1.1\r\n\r\n"},
                    {kDown,
                            "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP/1.1 200 OK\r\n"
                            "Content-Length: 0\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 99\r\n"
                            "\r\n"}},
            events, nullptr);
    ASSERT_EQ(events.all.size(), 3U);
    EXPECT_EQ(events.all[0].name_view(), "/1");
    EXPECT_EQ(events.all[1].name_view(), "/2");
    EXPECT_EQ(events.all[1].bytes, 3U);
    EXPECT_EQ(events.all[2].method_view(), "HEAD");
    EXPECT_EQ(parser.counters().malformed, 0U);
}

TEST(HttpParserTest, HeadResponseHasNoBodyAndNextResponseStaysInSync) {
    HttpParser parser;
    Events events;
    // "dGVzdDpzZWNyZXQ=" is test:secret.
    feed(parser,
            {{kUp,
                     "HEAD /h HTTP/1.1\r\n\r\nGET /p HTTP/1.1\r\nAuthorization: Basic "
                     "dGVzdDpzZWNyZXQ=\r\n\r\n"},
                    {kDown,
                            "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n"
                            "HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n"}},
            events, nullptr);
    const auto logins = events.of(AppEventKind::Login);
    ASSERT_EQ(logins.size(), 1U);
    EXPECT_EQ(logins[0].outcome, LoginOutcome::Failure);
}

TEST(HttpParserTest, BasicAuthReportsUserAndSuccess) {
    HttpParser parser;
    Events events;
    feed(parser,
            {{kUp, "GET /admin HTTP/1.1\r\nAuthorization: Basic dGVzdDpzZWNyZXQ=\r\n\r\n"},
                    {kDown, "HTTP/1.1 302 Found\r\nContent-Length: 0\r\n\r\n"}},
            events, nullptr);
    const auto requests = events.of(AppEventKind::HttpRequest);
    ASSERT_EQ(requests.size(), 1U);
    EXPECT_EQ(requests[0].user_view(), "test");
    const auto logins = events.of(AppEventKind::Login);
    ASSERT_EQ(logins.size(), 1U);
    EXPECT_EQ(logins[0].proto, AppProto::Http);
    EXPECT_EQ(logins[0].user_view(), "test");
    EXPECT_EQ(logins[0].outcome, LoginOutcome::Success);
}

TEST(HttpParserTest, UnansweredBasicLoginIsAnAttempt) {
    HttpParser parser;
    Events events;
    feed(parser, {{kUp, "GET / HTTP/1.1\r\nAuthorization: basic dGVzdDpzZWNyZXQ=\r\n\r\n"}}, events,
            nullptr);
    const auto logins = events.of(AppEventKind::Login);
    ASSERT_EQ(logins.size(), 1U);
    EXPECT_EQ(logins[0].outcome, LoginOutcome::Attempt);
}

TEST(HttpParserTest, PasswordNeverAppearsInEvents) {
    HttpParser parser;
    Events events;
    // "YWxpY2U6aHVudGVyMg==" is alice:hunter2.
    feed(parser,
            {{kUp, "GET / HTTP/1.1\r\nAuthorization: Basic YWxpY2U6aHVudGVyMg==\r\n\r\n"},
                    {kDown, "HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\n\r\n"}},
            events, nullptr);
    ASSERT_EQ(events.all.size(), 2U);
    for (const AppEvent& e : events.all) {
        const std::string_view raw(reinterpret_cast<const char*>(&e), sizeof(e));
        EXPECT_EQ(raw.find("hunter2"), std::string_view::npos);
        EXPECT_EQ(raw.find("YWxpY2U6aHVudGVyMg"), std::string_view::npos);
    }
    EXPECT_EQ(events.of(AppEventKind::Login)[0].user_view(), "alice");
}

TEST(HttpParserTest, BasicTokenWithoutColonReportsNoUser) {
    HttpParser parser;
    Events events;
    // "c2VjcmV0dG9rZW4=" is secrettoken (no colon: might be a secret, never reported).
    feed(parser, {{kUp, "GET / HTTP/1.1\r\nAuthorization: Basic c2VjcmV0dG9rZW4=\r\n\r\n"}}, events,
            nullptr);
    ASSERT_EQ(events.of(AppEventKind::HttpRequest).size(), 1U);
    EXPECT_EQ(events.of(AppEventKind::HttpRequest)[0].user_view(), "");
    EXPECT_EQ(events.of(AppEventKind::Login)[0].user_view(), "");
}

TEST(HttpParserTest, PutReportsFileTransferWithLastPathSegment) {
    HttpParser parser;
    Events events;
    feed(parser,
            {{kUp,
                    "PUT /files/report.pdf?overwrite=1 HTTP/1.1\r\nContent-Length: 10\r\n\r\n"
                    "0123456789"}},
            events, nullptr);
    const auto files = events.of(AppEventKind::FileTransfer);
    ASSERT_EQ(files.size(), 1U);
    EXPECT_EQ(files[0].name_view(), "report.pdf");
    EXPECT_EQ(files[0].bytes, 10U);
    EXPECT_TRUE(files[0].upload);
    EXPECT_TRUE(files[0].final);
}

TEST(HttpParserTest, ZipPutWhoseFirstByteComesAloneIsAnArchive) {
    // The break test's evasion: the signature split over segments hid the archive.
    HttpParser parser;
    Events events;
    const std::string zip = std::string("PK\x03\x04", 4) + std::string(60, 'z');
    feed(parser,
            {{kUp, "PUT /x.bin HTTP/1.1\r\nContent-Length: 64\r\n\r\n"}, {kUp, zip.substr(0, 1)},
                    {kUp, zip.substr(1, 2)}, {kUp, zip.substr(3)}},
            events, nullptr);
    const auto archives = events.of(AppEventKind::Archive);
    ASSERT_EQ(archives.size(), 1U);
    EXPECT_EQ(archives[0].name_view(), "zip");
    EXPECT_EQ(archives[0].bytes, 64U);
    EXPECT_TRUE(archives[0].upload);
}

TEST(HttpParserTest, ChunkedPutReportsDechunkedSize) {
    HttpParser parser;
    Events events;
    feed(parser,
            {{kUp,
                    "PUT /d/data.bin HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
                            + chunked(std::string(1000, 'x'), 300)}},
            events, nullptr);
    const auto files = events.of(AppEventKind::FileTransfer);
    ASSERT_EQ(files.size(), 1U);
    EXPECT_EQ(files[0].name_view(), "data.bin");
    EXPECT_EQ(files[0].bytes, 1000U);
    EXPECT_EQ(events.of(AppEventKind::HttpRequest)[0].bytes, 1000U);
}

TEST(HttpParserTest, IncompletePutIsNotFinal) {
    HttpParser parser;
    Events events;
    feed(parser, {{kUp, "PUT /x.txt HTTP/1.1\r\nContent-Length: 100\r\n\r\nabc"}}, events, nullptr);
    const auto files = events.of(AppEventKind::FileTransfer);
    ASSERT_EQ(files.size(), 1U);
    EXPECT_EQ(files[0].bytes, 3U);
    EXPECT_FALSE(files[0].final);
}

std::string multipart_request(const std::string& body) {
    return "POST /upload HTTP/1.1\r\nContent-Type: multipart/form-data; boundary=\"XyZ\"\r\n"
           "Content-Length: "
            + std::to_string(body.size()) + "\r\n\r\n" + body;
}

TEST(HttpParserTest, MultipartZipPartSplitAfterItsHeadersIsAnArchive) {
    HttpParser parser;
    Events events;
    const std::string body =
            "--XyZ\r\nContent-Disposition: form-data; name=\"f\"; "
            "filename=\"a.zip\"\r\n\r\nP"
            + std::string("K\x03\x04", 3) + "0123456789\r\n--XyZ--\r\n";
    const std::string request = multipart_request(body);
    const size_t split = request.find("\r\n\r\nP") + 5;  // the part's first byte alone
    feed(parser, {{kUp, request.substr(0, split)}, {kUp, request.substr(split)}}, events, nullptr);
    const auto archives = events.of(AppEventKind::Archive);
    ASSERT_EQ(archives.size(), 1U);
    EXPECT_EQ(archives[0].name_view(), "zip");
}

TEST(HttpParserTest, MultipartFilenameStarIsDecoded) {
    HttpParser parser;
    Events events;
    const std::string body =
            "--XyZ\r\nContent-Disposition: form-data; name=\"f\"; filename=\"plain.txt\"; "
            "filename*=UTF-8''caf%C3%A9%20menu.txt\r\n\r\nabc\r\n--XyZ--\r\n";
    feed(parser, {{kUp, multipart_request(body)}}, events, nullptr);
    const auto files = events.of(AppEventKind::FileTransfer);
    ASSERT_EQ(files.size(), 1U);
    EXPECT_EQ(files[0].name_view(), "caf?? menu.txt");
    EXPECT_EQ(files[0].bytes, 3U);
    EXPECT_TRUE(files[0].final);
}

TEST(HttpParserTest, MultipartRfc2231ContinuationsAreJoined) {
    HttpParser parser;
    Events events;
    const std::string body =
            "--XyZ\r\nContent-Disposition: attachment; filename*0=\"quarterly-\"; "
            "filename*1*=%72eport.xlsx\r\n\r\n12345\r\n--XyZ--";
    feed(parser, {{kUp, multipart_request(body)}}, events, nullptr);
    const auto files = events.of(AppEventKind::FileTransfer);
    ASSERT_EQ(files.size(), 1U);
    EXPECT_EQ(files[0].name_view(), "quarterly-report.xlsx");
    EXPECT_EQ(files[0].bytes, 5U);
}

TEST(HttpParserTest, MultipartFieldsWithoutFilenameAreNotFiles) {
    HttpParser parser;
    Events events;
    const std::string body =
            "preamble\r\n--XyZ\r\nContent-Disposition: form-data; name=\"comment\"\r\n\r\n"
            "hi\r\n--XyZ\r\nContent-Disposition: form-data; name=\"f\"; filename=\"\"\r\n\r\n"
            "\r\n--XyZ\r\nContent-Disposition: form-data; name=\"g\"; filename=\"b.bin\"\r\n"
            "\r\nxy\r\n--XyZ--\r\n";
    feed(parser, {{kUp, multipart_request(body)}}, events, nullptr);
    const auto files = events.of(AppEventKind::FileTransfer);
    ASSERT_EQ(files.size(), 1U);
    EXPECT_EQ(files[0].name_view(), "b.bin");
    EXPECT_EQ(files[0].bytes, 2U);
}

TEST(HttpParserTest, MultipartBodyWithCrLfInsideParts) {
    HttpParser parser;
    Events events;
    const std::string data = "line1\r\n--X\r\n--Xy\r\nend";  // near-delimiters inside
    const std::string body =
            "--XyZ\r\nContent-Disposition: form-data; name=\"a\"; filename=\"a.txt\"\r\n\r\n" + data
            + "\r\n--XyZ--\r\n";
    feed(parser, {{kUp, multipart_request(body)}}, events, nullptr, 1);
    const auto files = events.of(AppEventKind::FileTransfer);
    ASSERT_EQ(files.size(), 1U);
    EXPECT_EQ(files[0].bytes, data.size());
}

TEST(HttpParserTest, Expect100ContinueThenBody) {
    HttpParser parser;
    Events events;
    feed(parser,
            {{kUp, "PUT /big.iso HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n"},
                    {kDown, "HTTP/1.1 100 Continue\r\n\r\n"}, {kUp, "DATA"},
                    {kDown, "HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n"}},
            events, nullptr);
    const auto files = events.of(AppEventKind::FileTransfer);
    ASSERT_EQ(files.size(), 1U);
    EXPECT_EQ(files[0].bytes, 4U);
    EXPECT_TRUE(files[0].final);
}

TEST(HttpParserTest, RefusedExpectBodyIsSkippedForNextRequest) {
    HttpParser parser;
    Events events;
    feed(parser,
            {{kUp, "PUT /big.iso HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 999\r\n\r\n"},
                    {kDown, "HTTP/1.1 417 Expectation Failed\r\nContent-Length: 0\r\n\r\n"},
                    {kUp, "GET /next HTTP/1.1\r\nHost: h\r\n\r\n"}},
            events, nullptr, 1);
    const auto requests = events.of(AppEventKind::HttpRequest);
    ASSERT_EQ(requests.size(), 2U);
    EXPECT_EQ(requests[1].name_view(), "/next");
    EXPECT_EQ(requests[1].host_view(), "h");
    EXPECT_TRUE(events.of(AppEventKind::FileTransfer).empty());
}

TEST(HttpParserTest, BodyAfterRefusedExpectIsStillBody) {
    HttpParser parser;
    Events events;
    feed(parser,
            {{kUp, "PUT /f.txt HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 6\r\n\r\n"},
                    {kDown, "HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\n\r\n"},
                    {kUp, "GETxyzGET /n HTTP/1.1\r\n\r\n"}},
            events, nullptr, 1);
    const auto files = events.of(AppEventKind::FileTransfer);
    ASSERT_EQ(files.size(), 1U);
    EXPECT_EQ(files[0].bytes, 6U);
    const auto requests = events.of(AppEventKind::HttpRequest);
    ASSERT_EQ(requests.size(), 2U);
    EXPECT_EQ(requests[1].name_view(), "/n");
}

TEST(HttpParserTest, ResponseGzipBodyGoesToObjectSink) {
    InflatePool pool(1);
    HttpParser parser(&pool);
    Events events;
    Objects objects;
    const std::string page = "<html>SSN 078-05-1120</html>";
    const std::string gz = gzip(page);
    feed(parser,
            {{kUp, "GET / HTTP/1.1\r\n\r\n"},
                    {kDown, "HTTP/1.0 200 OK\r\nContent-Encoding: x-gzip\r\n\r\n" + gz}},
            events, &objects);
    ASSERT_EQ(objects.list.size(), 1U);
    EXPECT_EQ(objects.list[0].dir, kDown);
    EXPECT_EQ(objects.list[0].data, page);
    EXPECT_FALSE(objects.open);
}

TEST(HttpParserTest, DecompressionBombIsCapped) {
    InflatePool pool(1);
    HttpParser parser(&pool);
    Events events;
    Objects objects;
    const std::string gz = gzip(std::string(20U << 20, 'A'));
    feed(parser,
            {{kUp, "GET /bomb HTTP/1.1\r\n\r\n"},
                    {kDown,
                            "HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: "
                                    + std::to_string(gz.size()) + "\r\n\r\n" + gz
                                    + "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"}},
            events, &objects);
    EXPECT_EQ(parser.counters().decode_capped, 1U);
    EXPECT_LE(objects.joined(kDown).size(), kInflateMaxOutputBytes);
    EXPECT_GT(objects.joined(kDown).size(), 0U);
    EXPECT_EQ(pool.capped(), 1U);
    EXPECT_EQ(pool.in_use(), 0U);
    EXPECT_FALSE(objects.nested);
}

TEST(HttpParserTest, ExhaustedPoolIsCountedAndBodyGoesOutRaw) {
    InflatePool pool(0);
    HttpParser parser(&pool);
    Events events;
    Objects objects;
    const std::string gz = gzip("x");
    feed(parser,
            {{kUp,
                    "POST / HTTP/1.1\r\nContent-Encoding: gzip\r\nContent-Length: "
                            + std::to_string(gz.size()) + "\r\n\r\n" + gz}},
            events, &objects);
    EXPECT_EQ(parser.counters().decode_refused, 1U);
    EXPECT_EQ(objects.joined(kUp), gz);
}

TEST(HttpParserTest, InterleavedBodiesDoNotNestObjects) {
    HttpParser parser;
    Events events;
    Objects objects;
    feed(parser,
            {{kUp, "POST /a HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n"},
                    {kDown, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nxy\r\n"},
                    {kUp, "3\r\ndef\r\n0\r\n\r\n"}, {kDown, "1\r\nz\r\n0\r\n\r\n"}},
            events, &objects);
    EXPECT_FALSE(objects.nested);
    EXPECT_FALSE(objects.unbalanced);
    EXPECT_FALSE(objects.data_outside);
    EXPECT_FALSE(objects.open);
    EXPECT_EQ(objects.joined(kUp), "abcdef");
    EXPECT_EQ(objects.joined(kDown), "xyz");
}

TEST(HttpParserTest, GapEndsRequestAndResyncsAtNextRequest) {
    HttpParser parser;
    Events events;
    parser.on_data(kUp,
            as_bytes("POST /a HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
                     "10\r\n0123"),
            events, nullptr);
    parser.on_gap(kUp);
    parser.on_data(
            kUp, as_bytes("tail of lost data\r\nGET /after HTTP/1.1\r\n\r\n"), events, nullptr);
    ASSERT_EQ(events.all.size(), 2U);
    EXPECT_EQ(events.all[0].name_view(), "/a");
    EXPECT_EQ(events.all[0].bytes, 4U);
    EXPECT_FALSE(events.all[0].final);
    EXPECT_EQ(events.all[1].name_view(), "/after");
    EXPECT_EQ(parser.counters().gaps, 1U);
}

TEST(HttpParserTest, LongHeaderLineIsCutAndCounted) {
    HttpParser parser;
    Events events;
    feed(parser,
            {{kUp,
                    "GET / HTTP/1.1\r\nCookie: " + std::string(5000, 'c')
                            + "\r\nHost: after\r\n\r\n"}},
            events, nullptr);
    ASSERT_EQ(events.all.size(), 1U);
    EXPECT_EQ(events.all[0].host_view(), "after");
    EXPECT_EQ(parser.counters().lines_cut, 1U);
}

TEST(HttpParserTest, LongTargetIsCutAndFlagged) {
    HttpParser parser;
    Events events;
    feed(parser, {{kUp, "GET /" + std::string(3000, 'u') + " HTTP/1.1\r\n\r\n"}}, events, nullptr);
    ASSERT_EQ(events.all.size(), 1U);
    EXPECT_TRUE(events.all[0].truncated);
    EXPECT_EQ(events.all[0].name_view().size(), AppEvent::kNameCap - 1);
}

TEST(HttpParserTest, HeadersBeyondLimitAreIgnored) {
    HttpParser parser;
    Events events;
    std::string req = "GET / HTTP/1.1\r\n";
    for (int i = 0; i < 150; ++i) {
        req += "X-H" + std::to_string(i) + ": v\r\n";
    }
    req += "Host: ignored\r\n\r\n";
    feed(parser, {{kUp, req}}, events, nullptr);
    ASSERT_EQ(events.all.size(), 1U);
    EXPECT_EQ(events.all[0].host_view(), "");
    EXPECT_EQ(parser.counters().headers_cut, 1U);
}

TEST(HttpParserTest, ConnectTunnelEndsParsing) {
    HttpParser parser;
    Events events;
    parser.on_data(kUp, as_bytes("CONNECT example.com:443 HTTP/1.1\r\n\r\n"), events, nullptr);
    EXPECT_FALSE(parser.done());
    parser.on_data(kDown, as_bytes("HTTP/1.1 200 Connection established\r\n\r\n"), events, nullptr);
    EXPECT_TRUE(parser.done());
}

TEST(HttpParserTest, GarbageIsCountedNotParsed) {
    HttpParser parser;
    Events events;
    feed(parser, {{kUp, "\x16\x03\x01 binary\r\nnot http at all\r\n"}}, events, nullptr);
    EXPECT_TRUE(events.all.empty());
    EXPECT_EQ(parser.counters().malformed, 1U);
}

class CountingEvents : public AppEventSink {
public:
    void on_app_event(const AppEvent&) noexcept override { ++count; }
    size_t count = 0;
};

class CountingObjects : public ObjectSink {
public:
    void object_begin(ObjectKind, AppDir) noexcept override {}
    void object_data(std::span<const uint8_t> d) noexcept override { bytes += d.size(); }
    void object_end() noexcept override {}
    size_t bytes = 0;
};

// A stream that exercises every feature at once, for the segmentation test.
std::vector<Step> composite_stream() {
    const std::string gz = gzip("decoded text body");
    const std::string mp =
            "--B\r\nContent-Disposition: form-data; name=\"f\"; filename=\"one.txt\"\r\n\r\n"
            "111\r\n--B\r\nContent-Disposition: form-data; name=\"g\"; filename=\"two.txt\"\r\n"
            "\r\n2222\r\n--B--\r\n";
    return {
            {kUp,
                    "POST /gz HTTP/1.1\r\nHost: a\r\nContent-Encoding: gzip\r\n"
                    "Transfer-Encoding: chunked\r\n\r\n"
                            + chunked(gz, 4)},
            {kUp,
                    "POST /mp HTTP/1.1\r\nAuthorization: Basic dGVzdDpzZWNyZXQ=\r\n"
                    "Content-Type: multipart/form-data; boundary=B\r\nContent-Length: "
                            + std::to_string(mp.size()) + "\r\n\r\n" + mp},
            {kDown,
                    "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + chunked("resp", 3)
                            + "HTTP/1.1 401 No\r\nContent-Length: 2\r\n\r\nno"},
            {kUp, "PUT /dir/put.bin HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc"},
    };
}

TEST(HttpParserTest, OneByteFeedingGivesSameEventsAndObjects) {
    InflatePool pool(2);
    HttpParser whole_parser(&pool);
    HttpParser byte_parser(&pool);
    Events whole;
    Events bytes;
    Objects whole_objects;
    Objects byte_objects;
    feed(whole_parser, composite_stream(), whole, &whole_objects);
    feed(byte_parser, composite_stream(), bytes, &byte_objects, 1);
    ASSERT_EQ(whole.all.size(), 7U);  // 3 requests, login, 2 parts, put
    ASSERT_EQ(bytes.all.size(), whole.all.size());
    for (size_t i = 0; i < whole.all.size(); ++i) {
        EXPECT_TRUE(same_event(whole.all[i], bytes.all[i])) << "event " << i;
    }
    EXPECT_EQ(whole_objects.joined(kUp), "decoded text body");
    EXPECT_EQ(byte_objects.joined(kUp), whole_objects.joined(kUp));
    EXPECT_EQ(byte_objects.joined(kDown), "resp");
    const auto files = whole.of(AppEventKind::FileTransfer);
    ASSERT_EQ(files.size(), 3U);
    EXPECT_EQ(files[0].name_view(), "one.txt");
    EXPECT_EQ(files[0].bytes, 3U);
    EXPECT_EQ(files[1].name_view(), "two.txt");
    EXPECT_EQ(files[1].bytes, 4U);
    EXPECT_EQ(files[2].name_view(), "put.bin");
    EXPECT_EQ(whole.of(AppEventKind::Login)[0].outcome, LoginOutcome::Failure);
}

TEST(HttpParserTest, ParsingDoesNotAllocate) {
    InflatePool pool(2);
    const std::vector<Step> steps = composite_stream();
    CountingEvents events;
    CountingObjects objects;
    const size_t before = g_allocations;
    {
        HttpParser parser(&pool);
        for (const Step& step : steps) {
            const auto all = as_bytes(step.bytes);
            for (size_t at = 0; at < all.size(); at += 3) {
                parser.on_data(step.dir, all.subspan(at, std::min<size_t>(3, all.size() - at)),
                        events, &objects);
            }
        }
        parser.on_end(events, &objects);
    }
    EXPECT_EQ(g_allocations, before);
    const auto probe = std::make_unique<int>(1);  // the counter does see allocations
    EXPECT_EQ(g_allocations, before + 1);
    EXPECT_EQ(events.count, 7U);
    EXPECT_EQ(objects.bytes, std::string("decoded text body").size() + 4);
}

// ---- captures ----

std::filesystem::path capture(const char* name) {
    return test::shared_capture_dir() / "pcaps" / name;
}

// Feeds every TCP flow of the capture to its own parser; returns false (and skips) when the
// capture is missing.
bool feed_capture(
        const char* name, Events& events, Objects* objects, InflatePool* pool, size_t piece = 0) {
    const auto path = capture(name);
    if (!std::filesystem::exists(path)) {
        return false;
    }
    std::vector<test::CaptureFlow> flows;
    std::string error;
    EXPECT_TRUE(test::read_capture_flows(path, flows, error)) << error;
    for (const test::CaptureFlow& flow : flows) {
        if (flow.proto != 6) {
            continue;
        }
        HttpParser parser(pool);
        for (const test::PayloadChunk& chunk : flow.chunks) {
            const std::span<const uint8_t> all(chunk.bytes);
            const size_t n = piece == 0 ? all.size() : piece;
            for (size_t at = 0; at < all.size(); at += n) {
                parser.on_data(chunk.to_server ? kUp : kDown,
                        all.subspan(at, std::min(n, all.size() - at)), events, objects);
            }
        }
        parser.on_end(events, objects);
    }
    return true;
}

#define CAPTURE_OR_SKIP(name, events, objects, pool)                                       \
    do {                                                                                   \
        if (!feed_capture(name, events, objects, pool)) {                                  \
            if (test::shared_captures_required()) {                                        \
                FAIL() << "missing " << capture(name);                                     \
            }                                                                              \
            GTEST_SKIP() << "shared capture not found: " << capture(name)                  \
                         << " (set EXFILTAP_SHARED_DIR or put ../shared beside the tree)"; \
        }                                                                                  \
    } while (false)

TEST(HttpParserCaptureTest, PuttyUploadReportsIncompleteMultipartFile) {
    Events events;
    Objects objects;
    CAPTURE_OR_SKIP("zeek_http-putty-upload.pcap", events, &objects, nullptr);
    const auto requests = events.of(AppEventKind::HttpRequest);
    ASSERT_EQ(requests.size(), 2U);
    EXPECT_EQ(requests[0].method_view(), "GET");
    EXPECT_EQ(requests[0].name_view(), "/upload.html");
    EXPECT_EQ(requests[1].method_view(), "POST");
    EXPECT_EQ(requests[1].name_view(), "/upload");
    EXPECT_EQ(requests[1].host_view(), "localhost:8080");
    EXPECT_EQ(requests[1].bytes, 1648120U);
    const auto files = events.of(AppEventKind::FileTransfer);
    ASSERT_EQ(files.size(), 1U);
    EXPECT_EQ(files[0].name_view(), "putty.exe");
    EXPECT_TRUE(files[0].upload);
    EXPECT_FALSE(files[0].final);
    EXPECT_EQ(files[0].bytes, 81758U);  // captured part bytes before the RST
    EXPECT_TRUE(objects.list.empty());  // plain bodies: the raw scan sees them
}

TEST(HttpParserCaptureTest, PostLargeReportsTwoPosts) {
    Events events;
    CAPTURE_OR_SKIP("zeek_http-post-large.pcap", events, nullptr, nullptr);
    const auto requests = events.of(AppEventKind::HttpRequest);
    ASSERT_EQ(requests.size(), 2U);
    for (const AppEvent& e : requests) {
        EXPECT_EQ(e.method_view(), "POST");
        EXPECT_EQ(e.name_view(), "/hello");
        EXPECT_EQ(e.bytes, 61484U);
    }
    EXPECT_EQ(requests[0].host_view(), "127.0.0.1");
    EXPECT_EQ(requests[1].host_view(), "127.0.0.1:5000");
    EXPECT_EQ(events.all.size(), 2U);
}

TEST(HttpParserCaptureTest, MultipartIpv6ReportsTwoFiles) {
    Events events;
    CAPTURE_OR_SKIP("sv_http-multipart-post-ipv6.pcap", events, nullptr, nullptr);
    const auto files = events.of(AppEventKind::FileTransfer);
    ASSERT_EQ(files.size(), 2U);
    EXPECT_EQ(files[0].name_view(), "toto.txt");
    EXPECT_EQ(files[0].bytes, 24U);  // "toto est dans un bateau\n"
    EXPECT_TRUE(files[0].final);
    EXPECT_EQ(files[1].name_view(), "titi.txt");
    EXPECT_EQ(files[1].bytes, 25U);  // "Titi a vu un gros minet.\n"
    EXPECT_TRUE(files[1].final);
    const auto requests = events.of(AppEventKind::HttpRequest);
    ASSERT_EQ(requests.size(), 1U);
    EXPECT_EQ(requests[0].host_view(), "home.regit.org");
    EXPECT_EQ(requests[0].bytes, 399U);
}

TEST(HttpParserCaptureTest, GzipPostBodyDecodesExactly) {
    InflatePool pool(4);
    Events events;
    Objects objects;
    CAPTURE_OR_SKIP("sv_http-post-gzip-body.pcap", events, &objects, &pool);
    ASSERT_EQ(objects.list.size(), 1U);
    EXPECT_EQ(objects.list[0].dir, kUp);
    // The gzip trailer's ISIZE is 25: the decoded body ends with a line feed.
    EXPECT_EQ(objects.list[0].data, "name=john dauny mladshiy\n");
    const auto requests = events.of(AppEventKind::HttpRequest);
    ASSERT_EQ(requests.size(), 1U);
    EXPECT_EQ(requests[0].name_view(), "/hi.php");
    EXPECT_EQ(requests[0].bytes, 45U);
}

TEST(HttpParserCaptureTest, BasicAuthCaptureReportsFailedLogin) {
    Events events;
    Objects objects;
    CAPTURE_OR_SKIP("ndpi_http-basic-auth.pcap", events, &objects, nullptr);
    const auto logins = events.of(AppEventKind::Login);
    ASSERT_EQ(logins.size(), 1U);
    EXPECT_EQ(logins[0].user_view(), "test");
    EXPECT_EQ(logins[0].outcome, LoginOutcome::Failure);
    const auto requests = events.of(AppEventKind::HttpRequest);
    ASSERT_EQ(requests.size(), 1U);
    EXPECT_EQ(requests[0].name_view(), "/password-ok.php");
    EXPECT_EQ(requests[0].user_view(), "test");
    // The 401 page is chunked: de-chunked it goes to the objects, and it ends cleanly.
    ASSERT_EQ(objects.list.size(), 1U);
    EXPECT_EQ(objects.list[0].dir, kDown);
    EXPECT_NE(objects.list[0].data.find("You provided username"), std::string::npos);
    EXPECT_EQ(objects.list[0].data.find("\r\n2d84\r\n"), std::string::npos);
}

TEST(HttpParserCaptureTest, DeeplyNestedMimeDoesNotCrash) {
    Events events;
    Objects objects;
    CAPTURE_OR_SKIP("zeek_http-deeply-nested-mime.pcap", events, &objects, nullptr);
    const auto requests = events.of(AppEventKind::HttpRequest);
    ASSERT_EQ(requests.size(), 1U);
    EXPECT_EQ(requests[0].method_view(), "POST");
    EXPECT_EQ(requests[0].bytes, 39686U);
    EXPECT_TRUE(events.of(AppEventKind::FileTransfer).empty());
}

TEST(HttpParserCaptureTest, OneByteFeedingOfCapturesGivesSameEvents) {
    InflatePool pool(4);
    for (const char* name : {"zeek_http-putty-upload.pcap", "sv_http-multipart-post-ipv6.pcap",
                 "ndpi_http-basic-auth.pcap", "sv_http-post-gzip-body.pcap"}) {
        Events whole;
        Events bytes;
        Objects whole_objects;
        Objects byte_objects;
        if (!feed_capture(name, whole, &whole_objects, &pool)) {
            GTEST_SKIP() << "shared capture not found: " << capture(name);
        }
        feed_capture(name, bytes, &byte_objects, &pool, 1);
        ASSERT_EQ(whole.all.size(), bytes.all.size()) << name;
        for (size_t i = 0; i < whole.all.size(); ++i) {
            EXPECT_TRUE(same_event(whole.all[i], bytes.all[i])) << name << " event " << i;
        }
        EXPECT_EQ(whole_objects.joined(kUp), byte_objects.joined(kUp)) << name;
        EXPECT_EQ(whole_objects.joined(kDown), byte_objects.joined(kDown)) << name;
    }
}

}  // namespace
}  // namespace exfiltap::detectors
