#include "dataplane/app_layer.h"

#include <algorithm>
#include <cstring>
#include <new>
#include <type_traits>
#include <variant>

#include "detectors/app_identify.h"
#include "detectors/archive_magic.h"
#include "detectors/dns_parser.h"
#include "detectors/ftp_parser.h"
#include "detectors/http_parser.h"
#include "detectors/inflate_pool.h"
#include "detectors/mail_login_parser.h"
#include "detectors/session_start_parser.h"
#include "detectors/smb2_parser.h"
#include "detectors/smtp_parser.h"
#include "detectors/tls_parser.h"

namespace exfiltap::dataplane {

namespace {

using detectors::AppDir;
using detectors::AppEvent;
using detectors::AppEventKind;
using detectors::AppProto;

// First bytes of each direction kept to identify the protocol.
constexpr size_t kHeadBytes = 64;
// Segments (deliveries) after which identification falls back to the server port.
constexpr uint8_t kIdentifySegments = 4;
// Bytes of an object's or stream's first data that the archive entropy is taken over.
constexpr size_t kEntropyBytes = 4096;
// FTP data connections announced and not yet finished, per worker.
constexpr size_t kExpectedChannels = 32;
static_assert(kExpectedChannels <= 32, "AppLayer::expected_used_ has a bit per channel");
// An announced data connection that nobody opens is forgotten after this.
constexpr uint64_t kExpectedTimeoutNs = 120ULL * 1000000000ULL;

// Marks an FTP data connection: the index of its Expected entry.
struct FtpDataLink {
    uint32_t expected = 0;
};

// A direction's stream length: how far the reassembler got in order (retransmitted bytes
// once), or, where it did not run or the stream was picked up mid-way, every payload byte
// seen. The extent counts modulo 2^32: the largest value up to the payload bytes with its
// remainder is taken.
uint64_t stream_bytes(const FlowDirection& d) noexcept {
    if (!d.tcp.syn_seen || !d.tcp.seq_known) {
        return d.payload_bytes;
    }
    const uint32_t extent = d.tcp.next_seq - (d.tcp.isn + 1);
    if (extent == 0 || d.payload_bytes < extent) {
        return d.payload_bytes;
    }
    return extent + ((d.payload_bytes - extent) & ~uint64_t{0xffffffff});
}

}  // namespace

struct AppLayer::Expected {
    bool used = false;
    bool linked = false;  // a data flow was matched
    bool named = false;   // the transfer command was accepted (name and direction known)
    bool upload = false;
    bool reported = false;  // the data flow closed and was reported (with reported_bytes)
    uint64_t reported_bytes = 0;
    uint8_t ip_version = 0;
    uint16_t port = 0;
    std::array<uint8_t, 16> addr{};
    uint64_t expires_ns = 0;
    // The control flow, to report the transfer in its name (its key and roles).
    FlowKey control_key;
    uint8_t control_client_is_hi = 0;
    uint64_t control_flow_id = 0;
    // The data flow once linked: its table index stands for it while the flow id matches.
    uint64_t data_flow_id = 0;
    std::array<char, AppEvent::kNameCap> name{};
    std::array<char, AppEvent::kUserCap> user{};  // the control connection's login
};

struct AppLayer::Slot {
    using Parser = std::variant<std::monostate, detectors::HttpParser, detectors::TlsParser,
            detectors::SmtpParser, detectors::FtpParser, detectors::Pop3Parser,
            detectors::ImapParser, detectors::SshParser, detectors::RdpParser,
            detectors::Smb2Parser, detectors::DnsTcpParser, FtpDataLink>;
    Parser parser;
    bool decided = false;
    uint8_t segments = 0;
    uint8_t first_dir = 0;
    // Each direction's first bytes, until an archive signature can be judged.
    std::array<detectors::ArchiveHead, 2> stream_head{};
    std::array<uint8_t, 2> head_len{};
    std::array<std::array<uint8_t, kHeadBytes>, 2> head{};
    // The decoded object being scanned (objects do not nest within one flow).
    detectors::ContentStream object;
    bool object_active = false;
    bool object_scanned = false;         // the object has its own content stream
    detectors::ArchiveHead object_head;  // the current object's first bytes
    bool object_http = false;            // an HTTP body (the parser checks those for archives)
    // FTP: the user name of the latest login, for the transfers of this control connection.
    std::array<char, AppEvent::kUserCap> user{};
    uint8_t object_dir = 0;
    uint8_t object_db_slot = 0;
};

/// Events of a parser: FTP bookkeeping, then out through the worker.
class AppLayer::Events final : public detectors::AppEventSink {
public:
    Events(AppLayer& layer, Flow& flow) noexcept : layer_(layer), flow_(flow) {}
    void on_app_event(const AppEvent& event) noexcept override {
        layer_.on_parser_event(flow_, event);
    }

private:
    AppLayer& layer_;
    Flow& flow_;
};

/// Decoded objects of a parser: archive check, then a content stream of their own.
class AppLayer::Objects final : public detectors::ObjectSink {
public:
    Objects(AppLayer& layer, Flow& flow, Slot& slot) noexcept
        : layer_(layer), flow_(flow), slot_(slot) {}

    // Decoding serves the content scan (inspected directions) and the archive check of
    // what the client sends.
    bool wants(AppDir dir) const noexcept override {
        const auto d = static_cast<unsigned>(dir);
        return flow_.dir[d].inspect || dir == AppDir::ToServer;
    }

    bool wants_plain(AppDir dir) const noexcept override {
        return flow_.dir[static_cast<unsigned>(dir)].inspect && layer_.host_.edm_enabled();
    }

    void object_begin(detectors::ObjectKind kind, AppDir dir) noexcept override {
        if (slot_.object_active) {
            object_end();
        }
        const auto d = static_cast<uint8_t>(dir);
        slot_.object_active = true;
        slot_.object_head.reset();
        slot_.object_http = kind == detectors::ObjectKind::HttpBody
                || kind == detectors::ObjectKind::HttpPlainBody;
        slot_.object_dir = d;
        slot_.object_scanned = flow_.dir[d].inspect
                && layer_.host_.open_object_stream(slot_.object, slot_.object_db_slot,
                        kind == detectors::ObjectKind::HttpPlainBody);
        layer_.counters_.objects.add();
    }

    void object_data(std::span<const uint8_t> data) noexcept override {
        if (!slot_.object_active || data.empty()) {
            return;
        }
        // HTTP reports archives in upload bodies itself (plain bodies never come here).
        if (!slot_.object_http && slot_.object_head.add(data)) {
            slot_.object_head.judged = true;
            layer_.check_archive(flow_, slot_.object_dir, slot_.object_head.view(), data);
        }
        layer_.counters_.object_bytes.add(data.size());
        if (slot_.object_scanned) {
            layer_.host_.scan_object(flow_, slot_.object_dir, slot_.object, data);
        }
    }

    void object_end() noexcept override {
        if (!slot_.object_active) {
            return;
        }
        if (!slot_.object_http && !slot_.object_head.judged && slot_.object_head.len > 0) {
            // A short object: judge what there is.
            slot_.object_head.judged = true;
            layer_.check_archive(
                    flow_, slot_.object_dir, slot_.object_head.view(), slot_.object_head.view());
        }
        if (slot_.object_scanned) {
            layer_.host_.close_object_stream(
                    flow_, slot_.object_dir, slot_.object, slot_.object_db_slot);
        }
        slot_.object_active = false;
        slot_.object_scanned = false;
    }

private:
    AppLayer& layer_;
    Flow& flow_;
    Slot& slot_;
};

AppLayer::AppLayer(const AppLayerConfig& config, AppHost& host) : config_(config), host_(host) {}

AppLayer::~AppLayer() = default;

std::unique_ptr<AppLayer> AppLayer::create(const AppLayerConfig& config, AppHost& host) {
    std::unique_ptr<AppLayer> layer(new AppLayer(config, host));
    layer->slots_ = std::make_unique<Slot[]>(config.slots);
    layer->free_.reserve(config.slots);
    for (uint32_t i = config.slots; i > 0; --i) {
        layer->free_.push_back(i - 1);
    }
    layer->inflate_ = std::make_unique<detectors::InflatePool>(config.decoders);
    layer->expected_ = std::make_unique<Expected[]>(kExpectedChannels);
    return layer;
}

AppLayer::Slot* AppLayer::slot_for(Flow& flow) noexcept {
    if (flow.app_status == static_cast<uint8_t>(AppStatus::Active)) {
        return &slots_[flow.app_slot];
    }
    if (flow.app_status != static_cast<uint8_t>(AppStatus::None)) {
        return nullptr;
    }
    if (free_.empty()) {
        flow.app_status = static_cast<uint8_t>(AppStatus::Exhausted);
        counters_.slots_exhausted.add();
        return nullptr;
    }
    flow.app_slot = free_.back();
    free_.pop_back();
    ++slots_in_use_;
    flow.app_status = static_cast<uint8_t>(AppStatus::Active);
    Slot& slot = slots_[flow.app_slot];
    slot.parser.emplace<std::monostate>();
    slot.decided = false;
    slot.segments = 0;
    slot.stream_head[0].reset();
    slot.stream_head[1].reset();
    slot.object_head.reset();
    slot.head_len = {};
    slot.object_active = false;
    slot.object_scanned = false;
    slot.user[0] = '\0';
    return &slot;
}

void AppLayer::release(Flow& flow) noexcept {
    if (flow.app_status != static_cast<uint8_t>(AppStatus::Active)) {
        return;
    }
    Slot& slot = slots_[flow.app_slot];
    for (unsigned dir = 0; dir < 2; ++dir) {
        // Streams that ended (or stopped being followed) before enough bytes came.
        detectors::ArchiveHead& head = slot.stream_head[dir];
        if (!head.judged && head.len > 0) {
            head.judged = true;
            check_archive(flow, dir, head.view(), head.view());
        }
    }
    if (slot.object_active) {
        Objects objects(*this, flow, slot);
        objects.object_end();
    }
    slot.parser.emplace<std::monostate>();
    free_.push_back(flow.app_slot);
    --slots_in_use_;
    flow.app_slot = kNoApp;
    flow.app_status = static_cast<uint8_t>(AppStatus::Done);
}

void AppLayer::on_new_flow(Flow& flow, const PacketInfo& info, uint64_t now_ns) noexcept {
    now_ns_ = now_ns;
    if (info.l4_proto != kProtoTcp) {
        return;
    }
    // The data connection's server is the side that announced it (PASV) or was told to
    // listen (PORT): the SYN's destination.
    const std::array<uint8_t, 16>& server =
            flow.client_is_hi != 0 ? flow.key.addr_lo : flow.key.addr_hi;
    const uint16_t server_port = flow.client_is_hi != 0 ? flow.key.port_lo : flow.key.port_hi;
    for (uint32_t used = expected_used_; used != 0; used &= used - 1) {
        const auto i = static_cast<size_t>(__builtin_ctz(used));
        Expected& e = expected_[i];
        if (e.linked) {
            continue;
        }
        if (e.expires_ns < now_ns) {
            set_expected_used(i, false);
            continue;
        }
        if (e.ip_version == flow.key.ip_version && e.port == server_port && e.addr == server) {
            Slot* slot = slot_for(flow);
            if (slot == nullptr) {
                return;
            }
            slot->decided = true;
            slot->parser.emplace<FtpDataLink>(FtpDataLink{static_cast<uint32_t>(i)});
            flow.app_proto = static_cast<uint8_t>(AppProto::FtpData);
            counters_.flows_by_proto[static_cast<size_t>(AppProto::FtpData)].add();
            counters_.ftp_data_linked.add();
            e.linked = true;
            e.data_flow_id = flow.flow_id;
            return;
        }
    }
}

void AppLayer::on_stream(Flow& flow, unsigned dir, std::span<const uint8_t> bytes, bool gap_before,
        uint64_t now_ns) noexcept {
    now_ns_ = now_ns;
    if (bytes.empty()) {
        return;
    }
    Slot* slot = slot_for(flow);
    if (slot == nullptr) {
        return;
    }
    detectors::ArchiveHead& head = slot->stream_head[dir];
    if (head.add(bytes)) {
        head.judged = true;
        check_archive(flow, dir, head.view(), bytes);
    }
    if (!slot->decided) {
        if (gap_before) {
            // Identification needs the stream's start; a flow seen from the middle is
            // identified by its port only.
            slot->segments = kIdentifySegments;
        }
        identify(flow, *slot, dir, bytes);
        return;
    }
    if (gap_before) {
        std::visit(
                [&](auto& parser) {
                    using P = std::decay_t<decltype(parser)>;
                    if constexpr (!std::is_same_v<P,
                                          std::monostate> && !std::is_same_v<P, FtpDataLink>) {
                        parser.on_gap(static_cast<AppDir>(dir));
                    }
                },
                slot->parser);
    }
    feed(flow, *slot, dir, bytes);
}

void AppLayer::identify(
        Flow& flow, Slot& slot, unsigned dir, std::span<const uint8_t> bytes) noexcept {
    if (slot.head_len[0] == 0 && slot.head_len[1] == 0) {
        slot.first_dir = static_cast<uint8_t>(dir);
    }
    const size_t room = kHeadBytes - slot.head_len[dir];
    const size_t take = std::min(room, bytes.size());
    std::memcpy(slot.head[dir].data() + slot.head_len[dir], bytes.data(), take);
    slot.head_len[dir] = static_cast<uint8_t>(slot.head_len[dir] + take);
    ++slot.segments;

    const uint16_t server_port = flow.client_is_hi != 0 ? flow.key.port_lo : flow.key.port_hi;
    bool need_more = false;
    AppProto proto = detectors::identify_tcp(server_port, {slot.head[0].data(), slot.head_len[0]},
            {slot.head[1].data(), slot.head_len[1]}, need_more);
    const bool full = slot.head_len[0] == kHeadBytes || slot.head_len[1] == kHeadBytes;
    if (need_more && !full && slot.segments < kIdentifySegments) {
        return;
    }
    if (proto == AppProto::Unknown) {
        proto = detectors::proto_by_port(server_port);
    }
    flow.app_proto = static_cast<uint8_t>(proto);
    counters_.flows_by_proto[static_cast<size_t>(proto)].add();
    slot.decided = true;
    start_parser(flow, slot);
    if (std::holds_alternative<std::monostate>(slot.parser)) {
        release(flow);  // nothing parses this protocol: no slot needed
        return;
    }
    // Replay what identification held, the direction that spoke first first, then the
    // rest of this delivery.
    const unsigned first = slot.first_dir;
    for (const unsigned d : {first, first ^ 1U}) {
        if (flow.app_status != static_cast<uint8_t>(AppStatus::Active)) {
            return;
        }
        if (slot.head_len[d] > 0) {
            feed(flow, slot, d, {slot.head[d].data(), slot.head_len[d]});
        }
    }
    if (take < bytes.size() && flow.app_status == static_cast<uint8_t>(AppStatus::Active)) {
        feed(flow, slot, dir, bytes.subspan(take));
    }
}

void AppLayer::start_parser(Flow& flow, Slot& slot) noexcept {
    switch (static_cast<AppProto>(flow.app_proto)) {
    case AppProto::Http:
        slot.parser.emplace<detectors::HttpParser>(inflate_.get());
        break;
    case AppProto::Tls:
        slot.parser.emplace<detectors::TlsParser>();
        break;
    case AppProto::Smtp:
        slot.parser.emplace<detectors::SmtpParser>();
        break;
    case AppProto::Ftp:
        slot.parser.emplace<detectors::FtpParser>();
        break;
    case AppProto::Pop3:
        slot.parser.emplace<detectors::Pop3Parser>();
        break;
    case AppProto::Imap:
        slot.parser.emplace<detectors::ImapParser>();
        break;
    case AppProto::Ssh:
        slot.parser.emplace<detectors::SshParser>();
        break;
    case AppProto::Rdp:
        slot.parser.emplace<detectors::RdpParser>();
        break;
    case AppProto::Smb:
        slot.parser.emplace<detectors::Smb2Parser>();
        break;
    case AppProto::Dns:
        slot.parser.emplace<detectors::DnsTcpParser>();
        break;
    case AppProto::Unknown:
    case AppProto::FtpData:
        slot.parser.emplace<std::monostate>();
        break;
    }
}

void AppLayer::feed(Flow& flow, Slot& slot, unsigned dir, std::span<const uint8_t> bytes) noexcept {
    Events events(*this, flow);
    Objects objects(*this, flow, slot);
    bool done = false;
    std::visit(
            [&](auto& parser) {
                using P = std::decay_t<decltype(parser)>;
                if constexpr (std::is_same_v<P, std::monostate>) {
                    done = true;
                } else if constexpr (std::is_same_v<P, FtpDataLink>) {
                    // Bytes are counted by the flow; nothing to parse.
                } else {
                    parser.on_data(static_cast<AppDir>(dir), bytes, events, &objects);
                    done = parser.done();
                }
            },
            slot.parser);
    if (flow.app_proto == static_cast<uint8_t>(AppProto::Http)) {
        counters_.decoders_exhausted.set(inflate_->exhausted());
        counters_.bodies_capped.set(inflate_->capped());
        counters_.bodies_failed.set(inflate_->failed());
    }
    if (done) {
        release(flow);
    }
}

void AppLayer::check_archive(Flow& flow, unsigned dir, std::span<const uint8_t> head,
        std::span<const uint8_t> sample) noexcept {
    // A stream that starts with protocol text (HTTP, SMTP) is no archive; their bodies and
    // attachments are judged as objects.
    std::string_view format;
    if (!detectors::archive_format(head, format)) {
        return;
    }
    AppEvent event;
    event.kind = AppEventKind::Archive;
    event.proto = static_cast<AppProto>(flow.app_proto);
    event.upload = dir == 0;
    const std::span<const uint8_t> measured = sample.size() >= head.size() ? sample : head;
    event.entropy_milli =
            detectors::entropy_milli(measured.first(std::min(measured.size(), kEntropyBytes)));
    event.set(event.name, format);
    counters_.events.add();
    host_.emit_app_event(flow, event, false);
}

void AppLayer::on_parser_event(Flow& flow, const AppEvent& event) noexcept {
    if (event.kind == AppEventKind::FtpDataChannel) {
        // Remember where the data connection will go; the free entry or the oldest.
        size_t pick = 0;
        uint64_t oldest = UINT64_MAX;
        for (size_t i = 0; i < kExpectedChannels; ++i) {
            const Expected& e = expected_[i];
            if (!e.used || e.expires_ns < now_ns_) {
                pick = i;
                break;
            }
            if (e.expires_ns < oldest) {
                oldest = e.expires_ns;
                pick = i;
            }
        }
        Expected& e = expected_[pick];
        e = Expected{};
        set_expected_used(pick, true);
        e.upload = event.upload;
        e.expires_ns = now_ns_ + kExpectedTimeoutNs;
        e.control_key = flow.key;
        e.control_client_is_hi = flow.client_is_hi;
        e.control_flow_id = flow.flow_id;
        e.port = event.data_port;
        if (flow.app_status == static_cast<uint8_t>(AppStatus::Active)) {
            e.user = slots_[flow.app_slot].user;
        }
        if (event.data_addr_len == 0) {
            // EPSV: the control connection's server listens.
            e.ip_version = flow.key.ip_version;
            e.addr = flow.client_is_hi != 0 ? flow.key.addr_lo : flow.key.addr_hi;
        } else {
            e.ip_version = event.data_addr_len == 16 ? 6 : 4;
            e.addr = event.data_addr;
        }
        return;
    }
    if (event.kind == AppEventKind::FileTransfer && event.proto == AppProto::Ftp) {
        link_ftp_transfer(flow, event);
        return;
    }
    if (event.kind == AppEventKind::Login && event.proto == AppProto::Ftp
            && flow.app_status == static_cast<uint8_t>(AppStatus::Active)) {
        slots_[flow.app_slot].user = event.user;
    }
    counters_.events.add();
    host_.emit_app_event(flow, event, false);
}

void AppLayer::link_ftp_transfer(Flow& control, const AppEvent& transfer) noexcept {
    AppEvent event = transfer;
    if (control.app_status == static_cast<uint8_t>(AppStatus::Active)) {
        event.user = slots_[control.app_slot].user;
    }
    // The newest channel of this control flow carries the transfer.
    Expected* channel = nullptr;
    for (size_t i = 0; i < kExpectedChannels; ++i) {
        Expected& e = expected_[i];
        if (e.used && e.control_flow_id == control.flow_id
                && (channel == nullptr || e.expires_ns > channel->expires_ns)) {
            channel = &e;
        }
    }
    if (channel == nullptr) {
        // No data connection seen for it (another worker's, or announced before the tap
        // started): report what the control channel says.
        if (event.final) {
            counters_.events.add();
            host_.emit_app_event(control, event, false);
        }
        return;
    }
    if (channel->reported) {
        // The data connection closed before this reply and was reported then; the channel
        // stays until the data flow ends (bytes after a forged close are reported then).
        return;
    }
    if (!event.final) {
        channel->named = true;
        channel->upload = event.upload;
        std::memcpy(channel->name.data(), event.name.data(), channel->name.size());
        return;
    }
    // 226/250: the transfer is complete. A linked data flow still open reports at its end
    // (its bytes are final then); otherwise the control channel's word stands.
    if (!channel->linked) {
        counters_.events.add();
        host_.emit_app_event(control, event, false);
        set_expected_used(static_cast<size_t>(channel - expected_.get()), false);
    }
}

void AppLayer::set_expected_used(size_t i, bool used) noexcept {
    expected_[i].used = used;
    const uint32_t bit = uint32_t{1} << i;
    expected_used_ = used ? expected_used_ | bit : expected_used_ & ~bit;
}

void AppLayer::report_ftp_data(Flow& data, Slot& slot, bool closed) noexcept {
    const auto& link = std::get<FtpDataLink>(slot.parser);
    Expected& e = expected_[link.expected];
    if (!e.used || !e.linked || e.data_flow_id != data.flow_id) {
        return;
    }
    // Bytes the FTP client sent (upload) or received (download) on the data connection.
    const std::array<uint8_t, 16>& ftp_client =
            e.control_client_is_hi != 0 ? e.control_key.addr_hi : e.control_key.addr_lo;
    const std::array<uint8_t, 16>& data_client =
            data.client_is_hi != 0 ? data.key.addr_hi : data.key.addr_lo;
    const unsigned client_dir = data_client == ftp_client ? 0U : 1U;
    const bool upload = e.named ? e.upload : data.dir[client_dir].payload_bytes > 0;
    const uint64_t bytes = stream_bytes(data.dir[upload ? client_dir : client_dir ^ 1U]);
    // Reported at the close (its bytes are final then) and kept until the flow ends: a close
    // is taken on the packets' word, so when bytes came after it (a forged FIN or RST) the
    // transfer is reported again, whole, at the next close or at the end.
    const bool again = e.reported && bytes > e.reported_bytes;
    if (!closed) {
        set_expected_used(link.expected, false);
    }
    if (e.reported && !again) {
        return;
    }
    e.reported = true;
    e.reported_bytes = bytes;
    AppEvent event;
    event.kind = AppEventKind::FileTransfer;
    event.proto = AppProto::Ftp;
    event.upload = upload;
    event.bytes = bytes;
    event.final = true;
    std::memcpy(event.name.data(), e.name.data(), event.name.size());
    event.user = e.user;
    // Reported in the control connection's name: its addresses and flow id.
    Flow control{};
    control.key = e.control_key;
    control.client_is_hi = e.control_client_is_hi;
    control.flow_id = e.control_flow_id;
    control.first_ns = data.first_ns;
    counters_.events.add();
    host_.emit_app_event(control, event, false);
}

void AppLayer::on_datagram(Flow& flow, unsigned dir, const PacketInfo& info,
        std::span<const uint8_t> payload) noexcept {
    if (info.src_port != 53 && info.dst_port != 53) {
        return;
    }
    if (flow.app_proto == 0) {
        flow.app_proto = static_cast<uint8_t>(AppProto::Dns);
        counters_.flows_by_proto[static_cast<size_t>(AppProto::Dns)].add();
    }
    detectors::DnsMessage message;
    if (!detectors::parse_dns(payload, message)) {
        counters_.dns_malformed.add();
        return;
    }
    counters_.dns_messages.add();
    AppEvent event;
    detectors::dns_event(message, payload.size(), event);
    // The querier is the event's source: a query's sender, an answer's receiver.
    const bool query = event.kind == AppEventKind::DnsQuery;
    counters_.events.add();
    host_.emit_app_event(flow, event, query ? dir == 1 : dir == 0);
}

void AppLayer::on_flow_closed(Flow& flow) noexcept {
    if (flow.app_status == static_cast<uint8_t>(AppStatus::Active)) {
        Slot& slot = slots_[flow.app_slot];
        if (std::holds_alternative<FtpDataLink>(slot.parser)) {
            report_ftp_data(flow, slot, true);
        }
    }
}

void AppLayer::on_flow_end(Flow& flow) noexcept {
    if (flow.app_status == static_cast<uint8_t>(AppStatus::Active)) {
        Slot& slot = slots_[flow.app_slot];
        if (std::holds_alternative<FtpDataLink>(slot.parser)) {
            report_ftp_data(flow, slot, false);
        } else {
            Events events(*this, flow);
            Objects objects(*this, flow, slot);
            std::visit(
                    [&](auto& parser) {
                        using P = std::decay_t<decltype(parser)>;
                        if constexpr (!std::is_same_v<P,
                                              std::monostate> && !std::is_same_v<P, FtpDataLink>) {
                            parser.on_end(events, &objects);
                        }
                    },
                    slot.parser);
        }
        release(flow);
    }
    // Channels of an ending control flow that no data connection took are forgotten.
    for (uint32_t used = expected_used_; used != 0; used &= used - 1) {
        const auto i = static_cast<size_t>(__builtin_ctz(used));
        const Expected& e = expected_[i];
        if (!e.linked && e.control_flow_id == flow.flow_id) {
            set_expected_used(i, false);
        }
    }
    // The protocol stays: the flow's last Progress event still names it.
}

}  // namespace exfiltap::dataplane
