#include "detectors/dns_parser.h"

#include <algorithm>

namespace exfiltap::detectors {

namespace {

constexpr size_t kHeaderBytes = 12;
// Pointers must point backwards, which already ends every walk; the hop limit bounds the
// work a hostile message can cause (each hop may still add labels).
constexpr unsigned kMaxPointerHops = 16;
// A wire name has at most 255 octets, so at most 127 labels; more only through pointer
// chains, which we stop counting at this many.
constexpr unsigned kMaxLabels = 255;

uint16_t be16(const uint8_t* p) noexcept {
    return static_cast<uint16_t>(p[0] << 8 | p[1]);
}

char name_char(uint8_t c) noexcept {
    if (c >= 'A' && c <= 'Z') {
        return static_cast<char>(c - 'A' + 'a');
    }
    if (c < 0x20 || c >= 0x7f || c == '.') {
        return '?';
    }
    return static_cast<char>(c);
}

class NameWriter {
public:
    explicit NameWriter(DnsMessage& out) noexcept : out_(out) {}

    void label(const uint8_t* p, size_t len) noexcept {
        if (out_.label_count != 0) {
            put('.');
        }
        for (size_t i = 0; i < len; ++i) {
            put(name_char(p[i]));
        }
        if (out_.label_count < kMaxLabels) {
            ++out_.label_count;
        }
        if (len > out_.longest_label) {
            out_.longest_label = static_cast<uint8_t>(len);
        }
    }

private:
    void put(char c) noexcept {
        if (out_.name_len < DnsMessage::kNameCap) {
            out_.name[out_.name_len++] = c;
            out_.name[out_.name_len] = '\0';
        } else {
            out_.name_truncated = true;
        }
    }

    DnsMessage& out_;
};

// Follows the compression pointer at `pos`: it must point before `floor` (the start of the
// name part that holds it), within the hop limit.
bool follow_pointer(
        std::span<const uint8_t> msg, size_t& pos, size_t& floor, unsigned& hops) noexcept {
    if (pos + 1 >= msg.size() || ++hops > kMaxPointerHops) {
        return false;
    }
    const size_t target = be16(&msg[pos]) & 0x3fffU;
    if (target >= floor) {
        return false;
    }
    pos = target;
    floor = target;
    return true;
}

// Reads the name at `at`; on success `end` is the offset just after the name's in-place part
// (after its first pointer or its terminating zero).
bool read_name(std::span<const uint8_t> msg, size_t at, DnsMessage& out, size_t& end) noexcept {
    NameWriter writer(out);
    size_t pos = at;
    size_t floor = at;
    unsigned hops = 0;
    unsigned labels = 0;
    bool jumped = false;
    while (pos < msg.size()) {
        const uint8_t len = msg[pos];
        if (len == 0) {
            end = jumped ? end : pos + 1;
            return true;
        }
        if ((len & 0xc0) == 0xc0) {
            end = jumped ? end : pos + 2;
            jumped = true;
            if (!follow_pointer(msg, pos, floor, hops)) {
                return false;
            }
            continue;
        }
        // 0x40 (extended) and 0x80 (reserved) label types are not DNS names.
        if ((len & 0xc0) != 0 || pos + 1 + len > msg.size() || ++labels > kMaxLabels) {
            return false;
        }
        writer.label(&msg[pos + 1], len);
        pos += 1U + len;
    }
    return false;
}

}  // namespace

bool parse_dns(std::span<const uint8_t> msg, DnsMessage& out) noexcept {
    out = DnsMessage{};
    if (msg.size() < kHeaderBytes) {
        return false;
    }
    const uint8_t* h = msg.data();
    out.id = be16(h);
    out.is_response = (h[2] & 0x80) != 0;
    out.opcode = static_cast<uint8_t>((h[2] >> 3) & 0x0f);
    out.tc = (h[2] & 0x02) != 0;
    out.rcode = static_cast<uint8_t>(h[3] & 0x0f);
    out.qdcount = be16(h + 4);
    out.ancount = be16(h + 6);
    out.nscount = be16(h + 8);
    out.arcount = be16(h + 10);
    if (out.qdcount == 0) {
        return true;
    }
    size_t end = 0;
    if (!read_name(msg, kHeaderBytes, out, end) || end + 4 > msg.size()) {
        return false;
    }
    out.qtype = be16(&msg[end]);
    out.qclass = be16(&msg[end + 2]);
    out.has_question = true;
    return true;
}

void dns_event(const DnsMessage& m, size_t msg_len, AppEvent& out) noexcept {
    out = AppEvent{};
    out.kind = m.is_response ? AppEventKind::DnsAnswer : AppEventKind::DnsQuery;
    out.proto = AppProto::Dns;
    out.qtype = m.qtype;
    out.bytes = msg_len;
    if (m.is_response) {
        out.rcode = m.rcode;
        out.count = m.ancount;
    }
    out.set(out.name, m.name_view());
    out.truncated = out.truncated || m.name_truncated;
}

void DnsTcpParser::on_data(AppDir dir, std::span<const uint8_t> data, AppEventSink& events,
        ObjectSink* /*objects*/) noexcept {
    Direction& d = dirs_[static_cast<size_t>(dir) & 1U];
    if (!d.dead) {
        feed(d, data, events);
    }
}

void DnsTcpParser::on_gap(AppDir dir) noexcept {
    dirs_[static_cast<size_t>(dir) & 1U].dead = true;
}

void DnsTcpParser::on_end(AppEventSink& /*events*/, ObjectSink* /*objects*/) noexcept {
    // A message cut by the flow's end is not reported: its length said more was coming.
    for (Direction& d : dirs_) {
        d.dead = true;
    }
}

bool DnsTcpParser::done() const noexcept {
    return dirs_[0].dead && dirs_[1].dead;
}

void DnsTcpParser::feed(
        Direction& d, std::span<const uint8_t> data, AppEventSink& events) noexcept {
    size_t at = 0;
    while (at < data.size() && !d.dead) {
        if (d.len_bytes < 2) {
            d.msg_len = static_cast<uint16_t>(d.msg_len << 8 | data[at]);
            ++at;
            if (++d.len_bytes == 2) {
                d.kept = 0;
                d.seen = 0;
                if (d.msg_len == 0) {
                    ++malformed_;
                    d.len_bytes = 0;
                    if (++d.malformed_run >= kMaxMalformedRun) {
                        d.dead = true;
                    }
                }
            }
            continue;
        }
        const size_t take = std::min<size_t>(data.size() - at, d.msg_len - d.seen);
        if (d.kept < kKeepBytes) {
            const size_t keep = std::min<size_t>(take, kKeepBytes - d.kept);
            std::copy_n(data.data() + at, keep, d.buf.data() + d.kept);
            d.kept = static_cast<uint16_t>(d.kept + keep);
        }
        d.seen = static_cast<uint16_t>(d.seen + take);
        at += take;
        if (d.seen == d.msg_len) {
            finish_message(d, events);
        }
    }
}

void DnsTcpParser::finish_message(Direction& d, AppEventSink& events) noexcept {
    DnsMessage m;
    const bool ok = parse_dns({d.buf.data(), d.kept}, m);
    if (ok) {
        AppEvent event;
        dns_event(m, d.msg_len, event);
        events.on_app_event(event);
        ++messages_;
        d.malformed_run = 0;
    } else {
        ++malformed_;
        if (++d.malformed_run >= kMaxMalformedRun) {
            d.dead = true;
        }
    }
    d.len_bytes = 0;
    d.msg_len = 0;
    d.kept = 0;
    d.seen = 0;
}

}  // namespace exfiltap::detectors
