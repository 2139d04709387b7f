// SMB2/SMB3 parser (MS-SMB2) for file transfers over direct TCP (port 445): which files a
// client writes and reads through which share, with byte counts, reported as AppEvents.
//
// Threads: one object per flow, owned and called by one worker. Every member is noexcept and
// neither allocates nor makes syscalls; all state lives inside the object (no heap). Data
// bytes (WRITE and READ payloads) are skipped by count, never copied.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>

#include "detectors/app_event.h"

namespace exfiltap::detectors {

/// Follows NetBIOS session framing (4-byte header, 24-bit length) and SMB2 messages inside
/// each frame, compound chains (NextCommand) included. Requests and responses are matched by
/// MessageId:
/// - TREE_CONNECT gives the share path ("\\server\share") and its type; files on pipe shares
///   (IPC$: DCE/RPC) are not reported. Each request is reported as a TreeConnect event once
///   its path has been read (share enumeration meets refusals, so the answer is not awaited).
/// - CREATE request names the file (UTF-16LE; other than printable ASCII becomes '?'); its
///   response gives the FileId.
/// - WRITE requests add the data bytes they carry (Length, bounded by the message) to the
///   file; READ responses add theirs to the file of the matching READ request.
/// - CLOSE (or the flow's end, or eviction from the table) reports the file: one
///   FileTransfer (proto Smb, final) with `upload` true and `bytes` = bytes written when any
///   were, and a separate one with `upload` false and `bytes` = bytes read when any were.
///   `name` = the path as the client gave it (its last kNameCap characters when longer,
///   `truncated` set), `host` = the share path when the TREE_CONNECT was seen.
/// Tables are fixed: kMaxFiles open files, kMaxPending requests awaiting their response,
/// kMaxTrees shares; when one is full its oldest entry is evicted and counted (an evicted
/// file with bytes is reported first).
/// SMB1 frames (0xFF 'SMB') are recognised and skipped whole: nothing is reported for SMB1.
/// Encrypted SMB3 (transform header 0xFD 'SMB') and compressed (0xFC 'SMB') frames are
/// skipped whole too. After a gap the direction hunts for the next frame that starts with a
/// valid NetBIOS + SMB header (at most kHuntLimit bytes, else done()).
class Smb2Parser {
public:
    static constexpr size_t kMaxFiles = 16;
    static constexpr size_t kMaxPending = 16;
    static constexpr size_t kMaxTrees = 4;
    static constexpr size_t kNameCap = 64;
    static constexpr size_t kShareCap = 48;
    static constexpr uint32_t kHuntLimit = 1U << 20;

    void on_data(AppDir dir, std::span<const uint8_t> data, AppEventSink& events,
            ObjectSink* objects) noexcept;
    void on_gap(AppDir dir) noexcept;
    /// Reports every open file that moved bytes.
    void on_end(AppEventSink& events, ObjectSink* objects) noexcept;
    bool done() const noexcept { return done_; }

    uint32_t smb1_frames() const noexcept { return smb1_frames_; }
    /// Transform (encrypted) and compressed SMB3 frames skipped.
    uint32_t encrypted_frames() const noexcept { return encrypted_frames_; }
    /// Frames or messages that do not parse (skipped), bad NetBIOS types, bad chains.
    uint32_t malformed() const noexcept { return malformed_; }
    /// Table entries evicted because the table was full (files, pending requests, trees).
    uint32_t evictions() const noexcept { return evictions_; }
    /// WRITE/READ/CLOSE naming a FileId this parser has not seen opened.
    uint32_t unknown_handles() const noexcept { return unknown_handles_; }

private:
    static constexpr size_t kHeadCap = 144;  // SMB2 header + the largest fixed body read
    static constexpr uint8_t kNone = 0xff;

    enum class Step : uint8_t {
        FrameHeader,  // the 4-byte NetBIOS header
        Header,       // the 64-byte SMB2 header (or the first bytes of a non-SMB2 frame)
        Body,         // the fixed part of the command body this parser reads
        Name,         // a path inside the message, streamed through the name accumulator
        Skip,         // the rest of the message or frame
        Hunt,         // after a gap: looking for the next frame start
    };

    struct Stream {
        std::array<uint8_t, kHeadCap> head{};
        std::array<uint8_t, 8> window{};  // Hunt: the last bytes seen
        uint32_t frame_left = 0;          // bytes of the current frame not consumed yet
        uint32_t msg_total = 0;           // bytes of the current SMB2 message
        uint32_t msg_left = 0;            // of it not consumed yet (Name, Skip)
        uint32_t name_skip = 0;           // Name: bytes before the path starts
        uint32_t name_left = 0;           // Name: path bytes still to read
        uint32_t hunted = 0;
        uint16_t head_len = 0;
        uint16_t head_need = 0;
        uint8_t window_len = 0;
        Step step = Step::FrameHeader;
    };

    struct OpenFile {
        std::array<uint8_t, 16> file_id{};
        uint64_t written = 0;
        uint64_t read = 0;
        uint32_t serial = 0;  // 0: free; else the open order (smallest = oldest)
        uint32_t tree_id = 0;
        uint8_t name_len = 0;
        bool name_cut = false;
        std::array<char, kNameCap> name{};
    };

    struct Pending {
        uint64_t message_id = 0;
        uint64_t written = 0;  // CREATE: related WRITEs later in the same compound
        uint32_t age = 0;      // 0: free
        uint32_t ref = 0;      // CREATE: tree id; READ: the file's serial
        uint16_t command = 0;
        uint8_t file_slot = 0;  // READ
        uint8_t name_len = 0;
        bool name_cut = false;
        bool closed = false;  // CREATE: a related CLOSE followed in the same compound
        std::array<char, kNameCap> name{};
    };

    struct Tree {
        uint32_t tree_id = 0;
        uint32_t age = 0;  // 0: free
        uint8_t share_type = 0;
        uint8_t name_len = 0;
        bool name_cut = false;
        std::array<char, kShareCap> name{};
    };

    void start_frame(Stream& s) noexcept;
    void on_header(Stream& s, bool to_server, AppEventSink& events) noexcept;
    void on_message(Stream& s, bool to_server, AppEventSink& events) noexcept;
    void on_request(Stream& s, AppEventSink& events) noexcept;
    void on_response(Stream& s, AppEventSink& events) noexcept;
    size_t take_head(Stream& s, bool to_server, std::span<const uint8_t> data,
            AppEventSink& events) noexcept;
    size_t take_name(Stream& s, bool to_server, std::span<const uint8_t> data,
            AppEventSink& events) noexcept;
    static size_t take_skip(Stream& s, std::span<const uint8_t> data) noexcept;
    static void next_message(Stream& s) noexcept;
    static void start_hunt(Stream& s) noexcept;
    void hunt(Stream& s, uint8_t byte) noexcept;
    void start_name(Stream& s, uint8_t slot, uint32_t offset, uint32_t length,
            AppEventSink& events) noexcept;
    void feed_name(const uint8_t* bytes, size_t n) noexcept;
    void finish_name(AppEventSink& events) noexcept;
    uint8_t add_pending(uint64_t message_id, uint16_t command) noexcept;
    uint8_t find_pending(uint64_t message_id, uint16_t command) const noexcept;
    uint8_t find_file(const uint8_t* file_id) const noexcept;
    const Tree* find_tree(uint32_t tree_id) const noexcept;
    void add_tree(uint32_t tree_id, uint8_t share_type, const Pending& request) noexcept;
    void open_file(const uint8_t* file_id, const Pending& request, AppEventSink& events) noexcept;
    void report(const OpenFile& file, AppEventSink& events) const noexcept;
    void release_file(uint8_t slot) noexcept;

    std::array<Stream, 2> streams_{};
    std::array<OpenFile, kMaxFiles> files_{};
    std::array<Pending, kMaxPending> pending_{};
    std::array<Tree, kMaxTrees> trees_{};
    std::array<char, kNameCap> name_ring_{};  // the last kNameCap characters of a path
    uint64_t name_message_id_ = 0;
    uint64_t compound_create_id_ = 0;
    uint32_t name_count_ = 0;  // characters seen in the current path
    uint32_t serial_ = 0;
    uint32_t age_ = 0;
    uint32_t smb1_frames_ = 0;
    uint32_t encrypted_frames_ = 0;
    uint32_t malformed_ = 0;
    uint32_t evictions_ = 0;
    uint32_t unknown_handles_ = 0;
    uint8_t name_slot_ = kNone;        // the pending entry the path belongs to
    uint8_t compound_create_ = kNone;  // the CREATE of the current request chain
    uint8_t utf16_low_ = 0;
    bool utf16_half_ = false;
    bool done_ = false;
};

static_assert(sizeof(Smb2Parser) <= 4096);

}  // namespace exfiltap::detectors
