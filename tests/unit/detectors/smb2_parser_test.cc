#include "detectors/smb2_parser.h"

#include <string>
#include <string_view>
#include <vector>

#include <gtest/gtest.h>

#include "tests/unit/detectors/capture_payloads.h"

namespace exfiltap::detectors {
namespace {

// File transfers in `events`, tree connects apart in `trees`.
class RecordingSink final : public AppEventSink {
public:
    void on_app_event(const AppEvent& event) noexcept override {
        (event.kind == AppEventKind::TreeConnect ? trees : events).push_back(event);
    }
    std::vector<AppEvent> events;
    std::vector<AppEvent> trees;
};

constexpr AppDir kC = AppDir::ToServer;
constexpr AppDir kS = AppDir::ToClient;

using Bytes = std::vector<uint8_t>;

void put16(Bytes& b, size_t at, uint32_t v) {
    b[at] = static_cast<uint8_t>(v);
    b[at + 1] = static_cast<uint8_t>(v >> 8);
}

void put32(Bytes& b, size_t at, uint32_t v) {
    put16(b, at, v & 0xffff);
    put16(b, at + 2, v >> 16);
}

void put64(Bytes& b, size_t at, uint64_t v) {
    put32(b, at, static_cast<uint32_t>(v));
    put32(b, at + 4, static_cast<uint32_t>(v >> 32));
}

Bytes utf16(std::u16string_view text) {
    Bytes out;
    for (char16_t c : text) {
        out.push_back(static_cast<uint8_t>(c));
        out.push_back(static_cast<uint8_t>(c >> 8));
    }
    return out;
}

struct FileId {
    uint64_t persistent;
    uint64_t volatile_id;
};

constexpr uint32_t kResponse = 0x1;
constexpr uint32_t kAsync = 0x2;
constexpr uint32_t kRelated = 0x4;

// An SMB2 header followed by `body_size` zero bytes of body.
Bytes message(uint16_t command, uint32_t flags, uint64_t message_id, uint32_t tree_id,
        size_t body_size, uint32_t status = 0) {
    Bytes b(64 + body_size, 0);
    b[0] = 0xfe;
    b[1] = 'S';
    b[2] = 'M';
    b[3] = 'B';
    put16(b, 4, 64);
    put32(b, 8, status);
    put16(b, 12, command);
    put32(b, 16, flags);
    put64(b, 24, message_id);
    put32(b, 36, tree_id);
    return b;
}

void put_file_id(Bytes& b, size_t at, FileId id) {
    put64(b, at, id.persistent);
    put64(b, at + 8, id.volatile_id);
}

Bytes tree_connect_request(uint64_t mid, std::u16string_view path) {
    Bytes b = message(3, 0, mid, 0, 8);
    put16(b, 64, 9);
    put16(b, 68, 72);
    const Bytes name = utf16(path);
    put16(b, 70, static_cast<uint32_t>(name.size()));
    b.insert(b.end(), name.begin(), name.end());
    return b;
}

Bytes tree_connect_response(uint64_t mid, uint32_t tree_id, uint8_t share_type) {
    Bytes b = message(3, kResponse, mid, tree_id, 16);
    put16(b, 64, 16);
    b[66] = share_type;
    return b;
}

Bytes create_request(uint64_t mid, uint32_t tree_id, std::u16string_view path, uint32_t flags = 0) {
    Bytes b = message(5, flags, mid, tree_id, 56);
    put16(b, 64, 57);
    put16(b, 64 + 44, 120);
    const Bytes name = utf16(path);
    put16(b, 64 + 46, static_cast<uint32_t>(name.size()));
    b.insert(b.end(), name.begin(), name.end());
    return b;
}

Bytes create_response(uint64_t mid, uint32_t tree_id, FileId id, uint32_t status = 0,
        uint32_t flags = kResponse) {
    if (status != 0) {
        Bytes b = message(5, flags, mid, tree_id, 9, status);
        put16(b, 64, 9);
        return b;
    }
    Bytes b = message(5, flags, mid, tree_id, 88);
    put16(b, 64, 89);
    put_file_id(b, 64 + 64, id);
    return b;
}

Bytes write_request(uint64_t mid, uint32_t tree_id, FileId id, size_t length, uint32_t flags = 0) {
    Bytes b = message(9, flags, mid, tree_id, 48);
    put16(b, 64, 49);
    put16(b, 66, 112);
    put32(b, 68, static_cast<uint32_t>(length));
    put_file_id(b, 64 + 16, id);
    b.resize(b.size() + length, 'W');
    return b;
}

Bytes read_request(uint64_t mid, uint32_t tree_id, FileId id, uint32_t length) {
    Bytes b = message(8, 0, mid, tree_id, 48);
    put16(b, 64, 49);
    put32(b, 68, length);
    put_file_id(b, 64 + 16, id);
    return b;
}

Bytes read_response(uint64_t mid, uint32_t tree_id, size_t length) {
    Bytes b = message(8, kResponse, mid, tree_id, 16);
    put16(b, 64, 17);
    b[66] = 80;
    put32(b, 68, static_cast<uint32_t>(length));
    b.resize(b.size() + length, 'R');
    return b;
}

Bytes close_request(uint64_t mid, uint32_t tree_id, FileId id, uint32_t flags = 0) {
    Bytes b = message(6, flags, mid, tree_id, 24);
    put16(b, 64, 24);
    put_file_id(b, 64 + 8, id);
    return b;
}

// Messages joined into one compound (NextCommand, 8-byte alignment).
Bytes compound(std::vector<Bytes> parts) {
    Bytes out;
    for (size_t i = 0; i < parts.size(); ++i) {
        Bytes& part = parts[i];
        if (i + 1 < parts.size()) {
            part.resize((part.size() + 7) / 8 * 8, 0);
            put32(part, 20, static_cast<uint32_t>(part.size()));
        }
        out.insert(out.end(), part.begin(), part.end());
    }
    return out;
}

Bytes frame(const Bytes& payload, uint8_t type = 0) {
    Bytes out{type, static_cast<uint8_t>(payload.size() >> 16),
            static_cast<uint8_t>(payload.size() >> 8), static_cast<uint8_t>(payload.size())};
    out.insert(out.end(), payload.begin(), payload.end());
    return out;
}

struct Step {
    AppDir dir;
    Bytes bytes;
};

constexpr FileId kFile{0x11, 0x22};
constexpr FileId kOther{0x33, 0x44};
constexpr FileId kRelatedId{~0ULL, ~0ULL};

// A session: connect a disk share, write 1,000 bytes to one file and read 300 of another.
std::vector<Step> session() {
    return {
            {kC, frame(tree_connect_request(1, u"\\\\srv\\data"))},
            {kS, frame(tree_connect_response(1, 7, 1))},
            {kC, frame(create_request(2, 7, u"dir\\report.docx"))},
            {kS, frame(create_response(2, 7, kFile))},
            {kC, frame(write_request(3, 7, kFile, 1000))},
            {kC, frame(create_request(4, 7, u"other.txt"))},
            {kS, frame(create_response(4, 7, kOther))},
            {kC, frame(read_request(5, 7, kOther, 300))},
            {kS, frame(read_response(5, 7, 300))},
            {kC, frame(close_request(6, 7, kFile))},
            {kC, frame(close_request(7, 7, kOther))},
    };
}

RecordingSink run_sink(const std::vector<Step>& steps, size_t chunk = 0) {
    Smb2Parser parser;
    RecordingSink sink;
    for (const Step& step : steps) {
        if (chunk == 0) {
            parser.on_data(step.dir, step.bytes, sink, nullptr);
            continue;
        }
        for (size_t at = 0; at < step.bytes.size(); at += chunk) {
            const size_t n = std::min(chunk, step.bytes.size() - at);
            parser.on_data(step.dir, std::span(step.bytes).subspan(at, n), sink, nullptr);
        }
    }
    parser.on_end(sink, nullptr);
    return sink;
}

std::vector<AppEvent> run(const std::vector<Step>& steps, size_t chunk = 0) {
    return run_sink(steps, chunk).events;
}

void expect_session_events(const std::vector<AppEvent>& events) {
    ASSERT_EQ(events.size(), 2U);
    EXPECT_EQ(events[0].kind, AppEventKind::FileTransfer);
    EXPECT_EQ(events[0].proto, AppProto::Smb);
    EXPECT_TRUE(events[0].upload);
    EXPECT_EQ(events[0].bytes, 1000U);
    EXPECT_EQ(events[0].name_view(), "dir\\report.docx");
    EXPECT_EQ(events[0].host_view(), "\\\\srv\\data");
    EXPECT_FALSE(events[1].upload);
    EXPECT_EQ(events[1].bytes, 300U);
    EXPECT_EQ(events[1].name_view(), "other.txt");
}

TEST(Smb2ParserTest, WriteAndReadReportedOnClose) {
    expect_session_events(run(session()));
}

TEST(Smb2ParserTest, OneByteSegmentsGiveTheSameEvents) {
    expect_session_events(run(session(), 1));
}

TEST(Smb2ParserTest, SplitsAtEveryByteGiveTheSameEvents) {
    const std::vector<Step> steps = session();
    for (size_t index = 0; index < steps.size(); ++index) {
        for (size_t split = 1; split < steps[index].bytes.size(); ++split) {
            Smb2Parser parser;
            RecordingSink sink;
            for (size_t i = 0; i < steps.size(); ++i) {
                const std::span<const uint8_t> all(steps[i].bytes);
                if (i != index) {
                    parser.on_data(steps[i].dir, all, sink, nullptr);
                    continue;
                }
                parser.on_data(steps[i].dir, all.first(split), sink, nullptr);
                parser.on_data(steps[i].dir, all.subspan(split), sink, nullptr);
            }
            parser.on_end(sink, nullptr);
            ASSERT_NO_FATAL_FAILURE(expect_session_events(sink.events))
                    << "step " << index << " split at " << split;
            ASSERT_EQ(sink.trees.size(), 1U) << "step " << index << " split at " << split;
            ASSERT_EQ(sink.trees[0].name_view(), "\\\\srv\\data")
                    << "step " << index << " split at " << split;
        }
    }
}

TEST(Smb2ParserTest, OpenFileReportedAtEnd) {
    const auto events = run(
            {{kC, frame(create_request(2, 7, u"a.bin"))}, {kS, frame(create_response(2, 7, kFile))},
                    {kC, frame(write_request(3, 7, kFile, 50))}});
    ASSERT_EQ(events.size(), 1U);
    EXPECT_EQ(events[0].bytes, 50U);
    EXPECT_EQ(events[0].name_view(), "a.bin");
    EXPECT_EQ(events[0].host_view(), "");  // the tree connect was not seen
}

TEST(Smb2ParserTest, TreeConnectRequestReportedWithSharePath) {
    const RecordingSink sink = run_sink(session());
    ASSERT_EQ(sink.trees.size(), 1U);
    const AppEvent& tree = sink.trees[0];
    EXPECT_EQ(tree.kind, AppEventKind::TreeConnect);
    EXPECT_EQ(tree.proto, AppProto::Smb);
    EXPECT_EQ(tree.name_view(), "\\\\srv\\data");
    EXPECT_FALSE(tree.truncated);
}

TEST(Smb2ParserTest, TreeConnectsAreReportedWithoutWaitingForTheAnswer) {
    // Enumeration: three requests, one refused, one never answered.
    Bytes refused = tree_connect_response(2, 0, 1);
    put32(refused, 8, 0xc0000022);  // STATUS_ACCESS_DENIED
    const RecordingSink sink = run_sink(
            {{kC, frame(tree_connect_request(1, u"\\\\fs1\\finance"))},
                    {kS, frame(tree_connect_response(1, 3, 1))},
                    {kC, frame(tree_connect_request(2, u"\\\\fs1\\hr"))}, {kS, frame(refused)},
                    {kC, frame(tree_connect_request(3, u"\\\\fs2\\backup$"))}},
            1);
    ASSERT_EQ(sink.trees.size(), 3U);
    EXPECT_EQ(sink.trees[0].name_view(), "\\\\fs1\\finance");
    EXPECT_EQ(sink.trees[1].name_view(), "\\\\fs1\\hr");
    EXPECT_EQ(sink.trees[2].name_view(), "\\\\fs2\\backup$");
    EXPECT_TRUE(sink.events.empty());
}

TEST(Smb2ParserTest, LongSharePathKeepsItsEndAndIsMarkedCut) {
    const std::u16string server(70, u'x');
    const RecordingSink sink =
            run_sink({{kC, frame(tree_connect_request(1, u"\\\\" + server + u"\\share"))}});
    ASSERT_EQ(sink.trees.size(), 1U);
    EXPECT_TRUE(sink.trees[0].truncated);
    EXPECT_EQ(sink.trees[0].name_view().size(), Smb2Parser::kNameCap);
    EXPECT_TRUE(sink.trees[0].name_view().ends_with("x\\share"));
}

TEST(Smb2ParserTest, PipeSharesAreNotReported) {
    const auto events = run({{kC, frame(tree_connect_request(1, u"\\\\srv\\IPC$"))},
            {kS, frame(tree_connect_response(1, 9, 2))},
            {kC, frame(create_request(2, 9, u"srvsvc"))}, {kS, frame(create_response(2, 9, kFile))},
            {kC, frame(write_request(3, 9, kFile, 116))}, {kC, frame(close_request(4, 9, kFile))}});
    EXPECT_TRUE(events.empty());
}

TEST(Smb2ParserTest, FailedCreateOpensNothing) {
    Smb2Parser parser;
    RecordingSink sink;
    parser.on_data(kC, frame(create_request(2, 7, u"x")), sink, nullptr);
    parser.on_data(kS, frame(create_response(2, 7, kFile, 0xc0000034)), sink, nullptr);
    parser.on_data(kC, frame(write_request(3, 7, kFile, 10)), sink, nullptr);
    parser.on_end(sink, nullptr);
    EXPECT_TRUE(sink.events.empty());
    EXPECT_EQ(parser.unknown_handles(), 1U);
}

TEST(Smb2ParserTest, InterimPendingResponseKeepsRequest) {
    const auto events = run({{kC, frame(create_request(2, 7, u"slow.dat"))},
            {kS, frame(create_response(2, 7, kFile, 0x103, kResponse | kAsync))},
            {kS, frame(create_response(2, 7, kFile, 0, kResponse | kAsync))},
            {kC, frame(write_request(3, 7, kFile, 5))}, {kC, frame(close_request(4, 7, kFile))}});
    ASSERT_EQ(events.size(), 1U);
    EXPECT_EQ(events[0].name_view(), "slow.dat");
}

TEST(Smb2ParserTest, CompoundCreateWriteCloseReported) {
    const auto events = run({{kC,
                                     frame(compound({create_request(2, 7, u"c.txt"),
                                             write_request(3, 7, kRelatedId, 40, kRelated),
                                             close_request(4, 7, kRelatedId, kRelated)}))},
            {kS, frame(create_response(2, 7, kFile))}});
    ASSERT_EQ(events.size(), 1U);
    EXPECT_EQ(events[0].name_view(), "c.txt");
    EXPECT_EQ(events[0].bytes, 40U);
}

TEST(Smb2ParserTest, CompoundResponsesAreEachRead) {
    const auto events = run({{kC, frame(create_request(2, 7, u"one"))},
            {kC, frame(create_request(3, 7, u"two"))},
            {kS, frame(compound({create_response(2, 7, kFile), create_response(3, 7, kOther)}))},
            {kC,
                    frame(compound(
                            {write_request(4, 7, kFile, 3), write_request(5, 7, kOther, 4)}))}});
    ASSERT_EQ(events.size(), 2U);
    EXPECT_EQ(events[0].name_view(), "one");
    EXPECT_EQ(events[0].bytes, 3U);
    EXPECT_EQ(events[1].name_view(), "two");
    EXPECT_EQ(events[1].bytes, 4U);
}

TEST(Smb2ParserTest, WriteLengthIsBoundedByTheMessage) {
    Bytes write = write_request(3, 7, kFile, 100);
    put32(write, 68, 1000000);  // claims more than it carries
    const auto events = run({{kC, frame(create_request(2, 7, u"liar"))},
            {kS, frame(create_response(2, 7, kFile))}, {kC, frame(write)}});
    ASSERT_EQ(events.size(), 1U);
    EXPECT_EQ(events[0].bytes, 100U);
}

TEST(Smb2ParserTest, LongNameKeepsItsEnd) {
    std::u16string path(100, u'd');
    path += u"\\secret.pdf";
    const auto events = run({{kC, frame(create_request(2, 7, path))},
            {kS, frame(create_response(2, 7, kFile))}, {kC, frame(write_request(3, 7, kFile, 1))}});
    ASSERT_EQ(events.size(), 1U);
    EXPECT_TRUE(events[0].truncated);
    EXPECT_EQ(events[0].name_view(), std::string(53, 'd') + "\\secret.pdf");
}

TEST(Smb2ParserTest, NonAsciiNameCharactersBecomeQuestionMarks) {
    const auto events = run({{kC, frame(create_request(2, 7, u"caf\u00e9\U0001F600.txt"))},
            {kS, frame(create_response(2, 7, kFile))}, {kC, frame(write_request(3, 7, kFile, 1))}});
    ASSERT_EQ(events.size(), 1U);
    EXPECT_EQ(events[0].name_view(), "caf??.txt");
}

TEST(Smb2ParserTest, Smb1FramesAreSkippedInSync) {
    Bytes smb1 = {0xff, 'S', 'M', 'B', 0x72};
    smb1.resize(80, 0);
    std::vector<Step> steps = session();
    steps.insert(steps.begin(), Step{kC, frame(smb1)});
    Smb2Parser parser;
    RecordingSink sink;
    for (const Step& step : steps) {
        parser.on_data(step.dir, step.bytes, sink, nullptr);
    }
    parser.on_end(sink, nullptr);
    expect_session_events(sink.events);
    EXPECT_EQ(parser.smb1_frames(), 1U);
}

TEST(Smb2ParserTest, EncryptedFramesAreSkipped) {
    Bytes transform = {0xfd, 'S', 'M', 'B'};
    transform.resize(52 + 200, 0x5a);
    Smb2Parser parser;
    RecordingSink sink;
    parser.on_data(kC, frame(transform), sink, nullptr);
    parser.on_data(kS, frame(transform), sink, nullptr);
    parser.on_end(sink, nullptr);
    EXPECT_TRUE(sink.events.empty());
    EXPECT_EQ(parser.encrypted_frames(), 2U);
    EXPECT_EQ(parser.malformed(), 0U);
}

TEST(Smb2ParserTest, KeepAliveFramesAreSkipped) {
    std::vector<Step> steps = session();
    steps.insert(steps.begin() + 4, Step{kC, frame({}, 0x85)});
    expect_session_events(run(steps));
}

TEST(Smb2ParserTest, GapResynchronisesAtNextFrame) {
    Smb2Parser parser;
    RecordingSink sink;
    parser.on_data(kC, frame(create_request(2, 7, u"g.bin")), sink, nullptr);
    parser.on_data(kS, frame(create_response(2, 7, kFile)), sink, nullptr);
    const Bytes write = frame(write_request(3, 7, kFile, 5000));
    parser.on_data(kC, std::span(write).first(2000), sink, nullptr);
    parser.on_gap(kC);
    parser.on_data(kC, std::span(write).subspan(3000), sink, nullptr);
    parser.on_data(kC, frame(close_request(4, 7, kFile)), sink, nullptr);
    ASSERT_EQ(sink.events.size(), 1U);
    EXPECT_EQ(sink.events[0].bytes, 5000U);  // counted from the WRITE header
    EXPECT_FALSE(parser.done());
}

TEST(Smb2ParserTest, GapWithoutFrameStartGivesUp) {
    Smb2Parser parser;
    RecordingSink sink;
    parser.on_gap(kC);
    const Bytes zeros(Smb2Parser::kHuntLimit + 1, 0);
    parser.on_data(kC, zeros, sink, nullptr);
    EXPECT_TRUE(parser.done());
}

TEST(Smb2ParserTest, BadNetbiosTypeIsCountedAndResynchronised) {
    std::vector<Step> steps = session();
    steps.insert(steps.begin(), Step{kC, Bytes{0x42, 0, 0, 1, 7}});
    Smb2Parser parser;
    RecordingSink sink;
    for (const Step& step : steps) {
        parser.on_data(step.dir, step.bytes, sink, nullptr);
    }
    parser.on_end(sink, nullptr);
    EXPECT_EQ(parser.malformed(), 1U);
    expect_session_events(sink.events);
}

TEST(Smb2ParserTest, FullFileTableEvictsOldestAndReportsIt) {
    Smb2Parser parser;
    RecordingSink sink;
    for (uint64_t i = 0; i <= Smb2Parser::kMaxFiles; ++i) {
        const FileId id{100 + i, i};
        const std::u16string name = u"f" + std::u16string(1, static_cast<char16_t>(u'a' + i));
        parser.on_data(kC, frame(create_request(10 + 3 * i, 7, name)), sink, nullptr);
        parser.on_data(kS, frame(create_response(10 + 3 * i, 7, id)), sink, nullptr);
        parser.on_data(kC, frame(write_request(11 + 3 * i, 7, id, 10 + i)), sink, nullptr);
    }
    EXPECT_EQ(parser.evictions(), 1U);
    ASSERT_EQ(sink.events.size(), 1U);
    EXPECT_EQ(sink.events[0].name_view(), "fa");
    EXPECT_EQ(sink.events[0].bytes, 10U);
    parser.on_end(sink, nullptr);
    EXPECT_EQ(sink.events.size(), Smb2Parser::kMaxFiles + 1);
}

TEST(Smb2ParserTest, FullPendingTableEvictsOldest) {
    Smb2Parser parser;
    RecordingSink sink;
    for (uint64_t i = 0; i <= Smb2Parser::kMaxPending; ++i) {
        parser.on_data(kC, frame(create_request(100 + i, 7, u"p")), sink, nullptr);
    }
    EXPECT_EQ(parser.evictions(), 1U);
    // The first CREATE's response finds nothing to match: its handle stays unknown.
    parser.on_data(kS, frame(create_response(100, 7, kFile)), sink, nullptr);
    parser.on_data(kC, frame(write_request(200, 7, kFile, 1)), sink, nullptr);
    EXPECT_EQ(parser.unknown_handles(), 1U);
}

struct CaptureEvents {
    bool loaded = false;
    std::string why;
    std::vector<AppEvent> events;
};

CaptureEvents capture_events(const std::string& rel) {
    CaptureEvents out;
    std::vector<test::CaptureFlow> flows;
    out.loaded = test::read_capture_flows(test::shared_capture_dir() / rel, flows, out.why);
    for (const test::CaptureFlow& flow : flows) {
        if (flow.proto != 6 || flow.server_port != 445) {
            continue;
        }
        Smb2Parser parser;
        RecordingSink sink;
        for (const test::PayloadChunk& chunk : flow.chunks) {
            parser.on_data(chunk.to_server ? kC : kS, chunk.bytes, sink, nullptr);
        }
        parser.on_end(sink, nullptr);
        out.events.insert(out.events.end(), sink.events.begin(), sink.events.end());
    }
    return out;
}

#define SKIP_UNLESS_LOADED(result)                                                          \
    if (!(result).loaded) {                                                                 \
        if (test::shared_captures_required()) {                                             \
            FAIL() << (result).why;                                                         \
        }                                                                                   \
        GTEST_SKIP() << "shared capture not found (" << (result).why                        \
                     << "); set EXFILTAP_SHARED_DIR to the shared folder to run this test"; \
    }

TEST(Smb2ParserTest, SmallWriteCapture) {
    const CaptureEvents result = capture_events("pcaps/zeek_smb2-write-small.pcap");
    SKIP_UNLESS_LOADED(result);
    ASSERT_EQ(result.events.size(), 2U);
    // pythonfile2 is closed in the capture; pythonfile is still open at its end.
    EXPECT_EQ(result.events[0].name_view(), "pythonfile2");
    EXPECT_TRUE(result.events[0].upload);
    EXPECT_EQ(result.events[0].bytes, 7000U);
    EXPECT_EQ(result.events[1].name_view(), "pythonfile");
    EXPECT_FALSE(result.events[1].upload);
    EXPECT_EQ(result.events[1].bytes, 16U);
}

TEST(Smb2ParserTest, LargeWriteCapture) {
    const CaptureEvents result = capture_events("pcaps/zeek_smb2-write-1.5MB.pcap");
    SKIP_UNLESS_LOADED(result);
    // The srvsvc pipe on IPC$ is not a file: only the PDF.
    ASSERT_EQ(result.events.size(), 1U);
    EXPECT_EQ(result.events[0].name_view(), "WP_SMBPlugin.pdf");
    EXPECT_EQ(result.events[0].host_view(), "\\\\10.0.0.12\\smb2");
    EXPECT_TRUE(result.events[0].upload);
    EXPECT_EQ(result.events[0].bytes, 1508939U);
}

TEST(Smb2ParserTest, Smb1CaptureReportsNothing) {
    const CaptureEvents result = capture_events("pcaps/sv_smb1-write-eicar-segmented.pcap");
    SKIP_UNLESS_LOADED(result);
    EXPECT_TRUE(result.events.empty());
}

}  // namespace
}  // namespace exfiltap::detectors
