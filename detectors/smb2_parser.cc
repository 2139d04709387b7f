#include "detectors/smb2_parser.h"

#include <cstring>
#include <string_view>

namespace exfiltap::detectors {

namespace {

constexpr size_t kHeader = 64;
constexpr uint32_t kStatusSuccess = 0;
constexpr uint32_t kStatusPending = 0x00000103;
constexpr uint32_t kStatusBufferOverflow = 0x80000005;
constexpr uint32_t kFlagResponse = 0x1;
constexpr uint32_t kFlagAsync = 0x2;
constexpr uint32_t kFlagRelated = 0x4;
constexpr uint16_t kTreeConnect = 3;
constexpr uint16_t kCreate = 5;
constexpr uint16_t kClose = 6;
constexpr uint16_t kRead = 8;
constexpr uint16_t kWrite = 9;
constexpr uint8_t kSharePipe = 2;

uint16_t le16(const uint8_t* p) noexcept {
    return static_cast<uint16_t>(p[0] | p[1] << 8);
}

uint32_t le32(const uint8_t* p) noexcept {
    return uint32_t{p[0]} | uint32_t{p[1]} << 8 | uint32_t{p[2]} << 16 | uint32_t{p[3]} << 24;
}

uint64_t le64(const uint8_t* p) noexcept {
    return uint64_t{le32(p)} | uint64_t{le32(p + 4)} << 32;
}

// Bytes of the fixed command body read beyond the 64-byte header (0: header only).
size_t body_bytes(uint16_t command, bool response) noexcept {
    if (!response) {
        switch (command) {
        case kTreeConnect:
            return 8;  // PathOffset, PathLength
        case kCreate:
            return 48;  // NameOffset, NameLength
        case kClose:
            return 24;  // FileId
        case kRead:
        case kWrite:
            return 32;  // DataOffset, Length, FileId
        default:
            return 0;
        }
    }
    switch (command) {
    case kTreeConnect:
        return 4;  // ShareType
    case kCreate:
        return 80;  // FileId
    case kRead:
        return 8;  // DataOffset, DataLength
    default:
        return 0;
    }
}

// Data bytes a WRITE request or READ response carries inside its message.
uint64_t carried(uint32_t offset, uint32_t length, uint32_t msg_total) noexcept {
    if (offset < kHeader || offset > msg_total) {
        return 0;
    }
    const uint32_t room = msg_total - offset;
    return length < room ? length : room;
}

bool all_ones(const uint8_t* file_id) noexcept {
    for (size_t i = 0; i < 16; ++i) {
        if (file_id[i] != 0xff) {
            return false;
        }
    }
    return true;
}

bool smb_magic(const uint8_t* p) noexcept {
    return p[1] == 'S' && p[2] == 'M' && p[3] == 'B';
}

}  // namespace

void Smb2Parser::on_data(AppDir dir, std::span<const uint8_t> data, AppEventSink& events,
        ObjectSink* /*objects*/) noexcept {
    const bool to_server = dir == AppDir::ToServer;
    Stream& s = streams_[to_server ? 0 : 1];
    size_t at = 0;
    while (at < data.size() && !done_) {
        const std::span<const uint8_t> rest = data.subspan(at);
        switch (s.step) {
        case Step::FrameHeader:
        case Step::Header:
        case Step::Body:
            at += take_head(s, to_server, rest, events);
            break;
        case Step::Name:
            at += take_name(s, to_server, rest, events);
            break;
        case Step::Skip:
            at += take_skip(s, rest);
            break;
        case Step::Hunt:
            hunt(s, rest[0]);
            ++at;
            break;
        }
    }
}

size_t Smb2Parser::take_head(
        Stream& s, bool to_server, std::span<const uint8_t> data, AppEventSink& events) noexcept {
    const size_t want = (s.step == Step::FrameHeader ? 4U : s.head_need) - s.head_len;
    const size_t n = want < data.size() ? want : data.size();
    std::memcpy(s.head.data() + s.head_len, data.data(), n);
    s.head_len = static_cast<uint16_t>(s.head_len + n);
    if (s.step == Step::FrameHeader) {
        if (n == want) {
            start_frame(s);
        }
        return n;
    }
    s.frame_left -= static_cast<uint32_t>(n);
    if (n < want) {
        return n;
    }
    if (s.step == Step::Header) {
        on_header(s, to_server, events);
    } else {
        on_message(s, to_server, events);
    }
    return n;
}

size_t Smb2Parser::take_name(
        Stream& s, bool to_server, std::span<const uint8_t> data, AppEventSink& events) noexcept {
    if (s.name_skip > 0) {
        const size_t n = s.name_skip < data.size() ? s.name_skip : data.size();
        s.name_skip -= static_cast<uint32_t>(n);
        s.msg_left -= static_cast<uint32_t>(n);
        s.frame_left -= static_cast<uint32_t>(n);
        return n;
    }
    const size_t n = s.name_left < data.size() ? s.name_left : data.size();
    if (to_server) {
        feed_name(data.data(), n);
    }
    s.name_left -= static_cast<uint32_t>(n);
    s.msg_left -= static_cast<uint32_t>(n);
    s.frame_left -= static_cast<uint32_t>(n);
    if (s.name_left == 0) {
        finish_name(events);
        s.step = Step::Skip;
        if (s.msg_left == 0) {
            next_message(s);
        }
    }
    return n;
}

size_t Smb2Parser::take_skip(Stream& s, std::span<const uint8_t> data) noexcept {
    // Payload (WRITE data, READ data, SMB1, encrypted frames): counted, never copied.
    const size_t n = s.msg_left < data.size() ? s.msg_left : data.size();
    s.msg_left -= static_cast<uint32_t>(n);
    s.frame_left -= static_cast<uint32_t>(n);
    if (s.msg_left == 0) {
        next_message(s);
    }
    return n;
}

void Smb2Parser::on_gap(AppDir dir) noexcept {
    Stream& s = streams_[dir == AppDir::ToServer ? 0 : 1];
    if (dir == AppDir::ToServer) {
        name_slot_ = kNone;  // a path being read is lost
        utf16_half_ = false;
        compound_create_ = kNone;
    }
    start_hunt(s);
}

void Smb2Parser::on_end(AppEventSink& events, ObjectSink* /*objects*/) noexcept {
    if (done_) {
        return;
    }
    for (uint8_t i = 0; i < kMaxFiles; ++i) {
        if (files_[i].serial != 0) {
            report(files_[i], events);
            release_file(i);
        }
    }
    done_ = true;
}

void Smb2Parser::start_frame(Stream& s) noexcept {
    const uint8_t type = s.head[0];
    const uint32_t length = uint32_t{s.head[1]} << 16 | uint32_t{s.head[2]} << 8 | s.head[3];
    s.head_len = 0;
    s.frame_left = length;
    if (type == 0x00) {
        // Session message: SMB messages follow.
        s.step = length == 0 ? Step::FrameHeader : Step::Header;
        s.head_need = static_cast<uint16_t>(length < kHeader ? length : kHeader);
        return;
    }
    if (type >= 0x81 && type <= 0x85) {
        // NetBIOS session request, responses and keep-alive: nothing for us inside.
        s.msg_left = length;
        s.step = length == 0 ? Step::FrameHeader : Step::Skip;
        return;
    }
    ++malformed_;
    start_hunt(s);
}

void Smb2Parser::on_header(Stream& s, bool to_server, AppEventSink& events) noexcept {
    const uint8_t* h = s.head.data();
    const bool smb2 = s.head_len >= 4 && h[0] == 0xfe && smb_magic(h);
    if (!smb2 || s.head_len < kHeader || le16(h + 4) != kHeader) {
        if (s.head_len >= 4 && h[0] == 0xff && smb_magic(h)) {
            ++smb1_frames_;
        } else if (s.head_len >= 4 && (h[0] == 0xfd || h[0] == 0xfc) && smb_magic(h)) {
            ++encrypted_frames_;
        } else {
            ++malformed_;
        }
        // The whole rest of the frame goes; the next frame header resynchronises.
        s.msg_left = s.frame_left;
        s.step = Step::Skip;
        if (s.msg_left == 0) {
            next_message(s);
        }
        return;
    }
    const uint32_t in_frame = s.head_len + s.frame_left;  // this message and what follows
    const uint32_t next = le32(h + 20);
    if (next >= kHeader && next % 8 == 0 && next <= in_frame) {
        s.msg_total = next;
    } else {
        if (next != 0) {
            ++malformed_;
        }
        s.msg_total = in_frame;
    }
    const size_t body = body_bytes(le16(h + 12), (le32(h + 16) & kFlagResponse) != 0);
    const size_t need = kHeader + body < s.msg_total ? kHeader + body : s.msg_total;
    if (need > s.head_len) {
        s.head_need = static_cast<uint16_t>(need);
        s.step = Step::Body;
        return;
    }
    on_message(s, to_server, events);
}

void Smb2Parser::on_message(Stream& s, bool to_server, AppEventSink& events) noexcept {
    s.msg_left = s.msg_total - s.head_len;
    s.step = Step::Skip;
    const bool response = (le32(s.head.data() + 16) & kFlagResponse) != 0;
    if (response == to_server) {
        ++malformed_;  // a response from the client or a request from the server
    } else if (response) {
        on_response(s, events);
    } else {
        on_request(s, events);
    }
    if (s.step == Step::Skip && s.msg_left == 0) {
        next_message(s);
    }
}

void Smb2Parser::on_request(Stream& s, AppEventSink& events) noexcept {
    const uint8_t* h = s.head.data();
    const uint16_t command = le16(h + 12);
    const uint32_t flags = le32(h + 16);
    const uint64_t message_id = le64(h + 24);
    const uint32_t tree_id = (flags & kFlagAsync) != 0 ? 0 : le32(h + 36);
    const bool related = (flags & kFlagRelated) != 0;
    if (!related) {
        compound_create_ = kNone;  // a new chain starts
    }
    // The CREATE earlier in this chain, when it is still waiting for its response.
    const uint8_t chained = compound_create_ != kNone && pending_[compound_create_].age != 0
                    && pending_[compound_create_].message_id == compound_create_id_
            ? compound_create_
            : kNone;
    const size_t body = body_bytes(command, false);
    if (body == 0 || s.head_len < kHeader + body) {
        return;
    }
    const uint8_t* b = h + kHeader;
    switch (command) {
    case kTreeConnect: {
        const uint8_t slot = add_pending(message_id, command);
        start_name(s, slot, le16(b + 4), le16(b + 6), events);
        return;
    }
    case kCreate: {
        const uint8_t slot = add_pending(message_id, command);
        pending_[slot].ref = tree_id;
        compound_create_ = slot;
        compound_create_id_ = message_id;
        start_name(s, slot, le16(b + 44), le16(b + 46), events);
        return;
    }
    case kWrite: {
        const uint64_t bytes = carried(le16(b + 2), le32(b + 4), s.msg_total);
        const uint8_t file = find_file(b + 16);
        if (file != kNone) {
            files_[file].written += bytes;
        } else if (related && chained != kNone && all_ones(b + 16)) {
            pending_[chained].written += bytes;
        } else {
            ++unknown_handles_;
        }
        return;
    }
    case kRead: {
        const uint8_t file = find_file(b + 16);
        if (file == kNone) {
            ++unknown_handles_;
            return;
        }
        const uint8_t slot = add_pending(message_id, command);
        pending_[slot].ref = files_[file].serial;
        pending_[slot].file_slot = file;
        return;
    }
    case kClose: {
        const uint8_t file = find_file(b + 8);
        if (file != kNone) {
            report(files_[file], events);
            release_file(file);
        } else if (related && chained != kNone && all_ones(b + 8)) {
            pending_[chained].closed = true;
        } else {
            ++unknown_handles_;
        }
        return;
    }
    default:
        return;
    }
}

void Smb2Parser::on_response(Stream& s, AppEventSink& events) noexcept {
    const uint8_t* h = s.head.data();
    const uint32_t status = le32(h + 8);
    const uint16_t command = le16(h + 12);
    const uint32_t flags = le32(h + 16);
    if (status == kStatusPending && (flags & kFlagAsync) != 0) {
        return;  // interim response: the final one follows with the same MessageId
    }
    const uint8_t slot = find_pending(le64(h + 24), command);
    if (slot == kNone) {
        return;
    }
    Pending& request = pending_[slot];
    const size_t body = body_bytes(command, true);
    const bool whole = s.head_len >= kHeader + body;
    const uint8_t* b = h + kHeader;
    if (command == kTreeConnect && status == kStatusSuccess && whole && (flags & kFlagAsync) == 0) {
        add_tree(le32(h + 36), b[2], request);
    } else if (command == kCreate && status == kStatusSuccess && whole) {
        open_file(b + 64, request, events);
    } else if (command == kRead && (status == kStatusSuccess || status == kStatusBufferOverflow)
            && whole) {
        OpenFile& file = files_[request.file_slot];
        if (file.serial == request.ref) {
            file.read += carried(b[2], le32(b + 4), s.msg_total);
        }
    }
    request = Pending{};
}

void Smb2Parser::next_message(Stream& s) noexcept {
    s.head_len = 0;
    if (s.frame_left == 0) {
        s.step = Step::FrameHeader;
        return;
    }
    s.step = Step::Header;
    s.head_need = static_cast<uint16_t>(s.frame_left < kHeader ? s.frame_left : kHeader);
}

void Smb2Parser::start_hunt(Stream& s) noexcept {
    s.step = Step::Hunt;
    s.hunted = 0;
    s.window_len = 0;
    s.head_len = 0;
    s.frame_left = 0;
    s.msg_left = 0;
}

void Smb2Parser::hunt(Stream& s, uint8_t byte) noexcept {
    if (++s.hunted > kHuntLimit) {
        done_ = true;  // no frame start in sight: give up on the flow
        return;
    }
    if (s.window_len == s.window.size()) {
        std::memmove(s.window.data(), s.window.data() + 1, s.window.size() - 1);
        --s.window_len;
    }
    s.window[s.window_len++] = byte;
    const uint8_t* w = s.window.data();
    if (s.window_len < s.window.size() || w[0] != 0x00 || !smb_magic(w + 4)) {
        return;
    }
    const uint8_t proto = w[4];
    if (proto != 0xfe && proto != 0xff && proto != 0xfd && proto != 0xfc) {
        return;
    }
    const uint32_t length = uint32_t{w[1]} << 16 | uint32_t{w[2]} << 8 | w[3];
    if (length < (proto == 0xfe ? kHeader : 4U)) {
        return;
    }
    // Resume as if the NetBIOS header and the protocol id had just been read.
    std::memcpy(s.head.data(), w + 4, 4);
    s.head_len = 4;
    s.frame_left = length - 4;
    s.head_need = static_cast<uint16_t>(length < kHeader ? length : kHeader);
    s.step = Step::Header;
}

void Smb2Parser::start_name(
        Stream& s, uint8_t slot, uint32_t offset, uint32_t length, AppEventSink& events) noexcept {
    name_slot_ = slot;
    name_message_id_ = pending_[slot].message_id;
    name_count_ = 0;
    utf16_half_ = false;
    if (length == 0) {
        finish_name(events);
        return;
    }
    if (offset < kHeader || offset + length > s.msg_total) {
        ++malformed_;
        finish_name(events);
        return;
    }
    const uint32_t read = s.head_len;  // message bytes already in s.head
    if (offset < read) {
        const uint32_t end = offset + length < read ? offset + length : read;
        feed_name(s.head.data() + offset, end - offset);
    }
    const uint32_t from = offset > read ? offset : read;
    if (offset + length <= from) {
        finish_name(events);
        return;
    }
    s.name_skip = from - read;
    s.name_left = offset + length - from;
    s.step = Step::Name;
}

void Smb2Parser::feed_name(const uint8_t* bytes, size_t n) noexcept {
    for (size_t i = 0; i < n; ++i) {
        if (!utf16_half_) {
            utf16_low_ = bytes[i];
            utf16_half_ = true;
            continue;
        }
        utf16_half_ = false;
        const auto unit = static_cast<uint16_t>(utf16_low_ | bytes[i] << 8);
        if (unit >= 0xdc00 && unit <= 0xdfff) {
            continue;  // the second half of a pair: its first half already gave '?'
        }
        const char c = unit >= 0x20 && unit < 0x7f ? static_cast<char>(unit) : '?';
        name_ring_[name_count_ % kNameCap] = c;
        ++name_count_;
    }
}

void Smb2Parser::finish_name(AppEventSink& events) noexcept {
    if (name_slot_ == kNone) {
        return;
    }
    Pending& request = pending_[name_slot_];
    name_slot_ = kNone;
    if (request.age == 0 || request.message_id != name_message_id_) {
        return;  // evicted meanwhile
    }
    const size_t n = name_count_ < kNameCap ? name_count_ : kNameCap;
    const size_t first = name_count_ < kNameCap ? 0 : name_count_ % kNameCap;
    for (size_t i = 0; i < n; ++i) {
        request.name[i] = name_ring_[(first + i) % kNameCap];
    }
    request.name_len = static_cast<uint8_t>(n);
    request.name_cut = name_count_ > kNameCap;
    if (request.command == kTreeConnect && n > 0) {
        AppEvent event;
        event.kind = AppEventKind::TreeConnect;
        event.proto = AppProto::Smb;
        event.set(event.name, std::string_view(request.name.data(), n));
        event.truncated = event.truncated || request.name_cut;
        events.on_app_event(event);
    }
}

uint8_t Smb2Parser::add_pending(uint64_t message_id, uint16_t command) noexcept {
    uint8_t slot = 0;
    for (uint8_t i = 0; i < kMaxPending; ++i) {
        if (pending_[i].age == 0) {
            slot = i;
            break;
        }
        if (pending_[i].age < pending_[slot].age) {
            slot = i;
        }
    }
    if (pending_[slot].age != 0) {
        ++evictions_;
    }
    pending_[slot] = Pending{};
    pending_[slot].message_id = message_id;
    pending_[slot].command = command;
    pending_[slot].age = ++age_;
    return slot;
}

uint8_t Smb2Parser::find_pending(uint64_t message_id, uint16_t command) const noexcept {
    for (uint8_t i = 0; i < kMaxPending; ++i) {
        if (pending_[i].age != 0 && pending_[i].message_id == message_id
                && pending_[i].command == command) {
            return i;
        }
    }
    return kNone;
}

uint8_t Smb2Parser::find_file(const uint8_t* file_id) const noexcept {
    for (uint8_t i = 0; i < kMaxFiles; ++i) {
        if (files_[i].serial != 0 && std::memcmp(files_[i].file_id.data(), file_id, 16) == 0) {
            return i;
        }
    }
    return kNone;
}

const Smb2Parser::Tree* Smb2Parser::find_tree(uint32_t tree_id) const noexcept {
    for (const Tree& tree : trees_) {
        if (tree.age != 0 && tree.tree_id == tree_id) {
            return &tree;
        }
    }
    return nullptr;
}

void Smb2Parser::add_tree(uint32_t tree_id, uint8_t share_type, const Pending& request) noexcept {
    size_t slot = 0;
    for (size_t i = 0; i < kMaxTrees; ++i) {
        if (trees_[i].age == 0 || trees_[i].tree_id == tree_id) {
            slot = i;
            break;
        }
        if (trees_[i].age < trees_[slot].age) {
            slot = i;
        }
    }
    Tree& tree = trees_[slot];
    if (tree.age != 0 && tree.tree_id != tree_id) {
        ++evictions_;
    }
    tree = Tree{};
    tree.tree_id = tree_id;
    tree.share_type = share_type;
    tree.age = ++age_;
    // Keep the end of the path: "\\server\share" names the share last.
    const size_t n = request.name_len < kShareCap ? request.name_len : kShareCap;
    std::memcpy(tree.name.data(), request.name.data() + (request.name_len - n), n);
    tree.name_len = static_cast<uint8_t>(n);
    tree.name_cut = request.name_cut || n < request.name_len;
}

void Smb2Parser::open_file(
        const uint8_t* file_id, const Pending& request, AppEventSink& events) noexcept {
    const Tree* tree = find_tree(request.ref);
    if (tree != nullptr && tree->share_type == kSharePipe) {
        return;  // a named pipe (DCE/RPC), not a file
    }
    OpenFile file;
    std::memcpy(file.file_id.data(), file_id, 16);
    file.written = request.written;
    file.tree_id = request.ref;
    file.name = request.name;
    file.name_len = request.name_len;
    file.name_cut = request.name_cut;
    if (request.closed) {
        report(file, events);  // opened, written and closed in one compound
        return;
    }
    uint8_t slot = find_file(file_id);
    if (slot != kNone) {
        // The server reused a FileId we never saw closed.
        report(files_[slot], events);
    } else {
        slot = 0;
        for (uint8_t i = 0; i < kMaxFiles; ++i) {
            if (files_[i].serial == 0) {
                slot = i;
                break;
            }
            if (files_[i].serial < files_[slot].serial) {
                slot = i;
            }
        }
        if (files_[slot].serial != 0) {
            ++evictions_;
            report(files_[slot], events);
        }
    }
    files_[slot] = file;
    files_[slot].serial = ++serial_;
}

void Smb2Parser::report(const OpenFile& file, AppEventSink& events) const noexcept {
    if (file.written == 0 && file.read == 0) {
        return;
    }
    AppEvent event;
    event.kind = AppEventKind::FileTransfer;
    event.proto = AppProto::Smb;
    event.final = true;
    event.set(event.name, std::string_view(file.name.data(), file.name_len));
    if (const Tree* tree = find_tree(file.tree_id); tree != nullptr) {
        event.set(event.host, std::string_view(tree->name.data(), tree->name_len));
        event.truncated = event.truncated || tree->name_cut;
    }
    event.truncated = event.truncated || file.name_cut;
    if (file.written > 0) {
        event.upload = true;
        event.bytes = file.written;
        events.on_app_event(event);
    }
    if (file.read > 0) {
        event.upload = false;
        event.bytes = file.read;
        events.on_app_event(event);
    }
}

void Smb2Parser::release_file(uint8_t slot) noexcept {
    files_[slot] = OpenFile{};
}

}  // namespace exfiltap::detectors
