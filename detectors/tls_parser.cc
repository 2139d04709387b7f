#include "detectors/tls_parser.h"

#include <algorithm>

namespace exfiltap::detectors {

namespace {

constexpr uint8_t kHandshakeRecord = 22;
constexpr uint8_t kClientHello = 1;
constexpr uint16_t kServerNameExt = 0;
constexpr uint8_t kHostName = 0;
// RFC 8446 5.1: a record's plaintext is at most 2^14 bytes; ciphertext may add 256 (TLS 1.3)
// or 2048 (TLS 1.2). A handshake record before encryption stays within the plaintext limit,
// but some stacks pad: accept up to the largest ciphertext size.
constexpr uint16_t kMaxRecord = (1U << 14) + 2048U;

uint16_t be16(const uint8_t* p) noexcept {
    return static_cast<uint16_t>(p[0] << 8 | p[1]);
}

// A cursor over a possibly cut byte string; every read is checked.
class Reader {
public:
    explicit Reader(std::span<const uint8_t> data) noexcept : data_(data) {}

    bool skip(size_t n) noexcept {
        if (data_.size() - at_ < n) {
            return false;
        }
        at_ += n;
        return true;
    }
    bool u8(uint8_t& v) noexcept {
        if (at_ >= data_.size()) {
            return false;
        }
        v = data_[at_++];
        return true;
    }
    bool u16(uint16_t& v) noexcept {
        if (data_.size() - at_ < 2) {
            return false;
        }
        v = be16(&data_[at_]);
        at_ += 2;
        return true;
    }
    size_t left() const noexcept { return data_.size() - at_; }
    const uint8_t* here() const noexcept { return data_.data() + at_; }

private:
    std::span<const uint8_t> data_;
    size_t at_ = 0;
};

bool find_host_name(std::span<const uint8_t> ext, std::string_view& sni) noexcept {
    Reader r(ext);
    uint16_t list_len = 0;
    if (!r.u16(list_len)) {
        return false;
    }
    Reader list({r.here(), std::min<size_t>(list_len, r.left())});
    while (list.left() >= 3) {
        uint8_t type = 0;
        uint16_t len = 0;
        list.u8(type);
        list.u16(len);
        if (len > list.left()) {
            return false;
        }
        if (type == kHostName && len > 0) {
            sni = {reinterpret_cast<const char*>(list.here()), len};
            return true;
        }
        list.skip(len);
    }
    return false;
}

}  // namespace

bool client_hello_sni(std::span<const uint8_t> hello, std::string_view& sni) noexcept {
    Reader r(hello);
    uint8_t type = 0;
    uint8_t len_hi = 0;
    uint16_t len_lo = 0;
    if (!r.u8(type) || type != kClientHello || !r.u8(len_hi) || !r.u16(len_lo)) {
        return false;
    }
    // The body may be cut; the declared length bounds what we read.
    const size_t body_len = static_cast<size_t>(len_hi) << 16 | len_lo;
    Reader body({r.here(), std::min(body_len, r.left())});
    uint8_t sid_len = 0;
    uint16_t suites_len = 0;
    uint8_t comp_len = 0;
    uint16_t ext_total = 0;
    if (!body.skip(2 + 32) || !body.u8(sid_len) || !body.skip(sid_len) || !body.u16(suites_len)
            || !body.skip(suites_len) || !body.u8(comp_len) || !body.skip(comp_len)
            || !body.u16(ext_total)) {
        return false;
    }
    Reader exts({body.here(), std::min<size_t>(ext_total, body.left())});
    while (exts.left() >= 4) {
        uint16_t ext_type = 0;
        uint16_t ext_len = 0;
        exts.u16(ext_type);
        exts.u16(ext_len);
        const size_t have = std::min<size_t>(ext_len, exts.left());
        if (ext_type == kServerNameExt) {
            return find_host_name({exts.here(), have}, sni);
        }
        if (!exts.skip(ext_len)) {
            return false;  // cut inside an extension: nothing further is kept
        }
    }
    return false;
}

void TlsParser::on_data(AppDir dir, std::span<const uint8_t> data, AppEventSink& events,
        ObjectSink* /*objects*/) noexcept {
    if (dir != AppDir::ToServer || done_) {
        return;
    }
    on_record_byte_run(data, events);
}

void TlsParser::on_gap(AppDir dir) noexcept {
    if (dir == AppDir::ToServer) {
        done_ = true;
    }
}

void TlsParser::on_end(AppEventSink& events, ObjectSink* /*objects*/) noexcept {
    if (!done_ && !malformed_ && hs_len_ >= 4) {
        report(events);
    }
    done_ = true;
}

void TlsParser::on_record_byte_run(std::span<const uint8_t> data, AppEventSink& events) noexcept {
    size_t at = 0;
    while (at < data.size() && !done_) {
        // Record header: type 22 (handshake), version 3.x, length.
        if (rec_left_ == 0) {
            if (!record_header_byte(data[at++])) {
                malformed_ = true;
                done_ = true;
                return;
            }
            continue;
        }

        // Record payload: handshake bytes, kept up to the buffer's size.
        const size_t take = std::min<size_t>(data.size() - at, rec_left_);
        const size_t keep = std::min<size_t>(take, hs_.size() - hs_len_);
        std::copy_n(data.data() + at, keep, hs_.data() + hs_len_);
        hs_len_ += static_cast<uint32_t>(keep);
        hs_seen_ += static_cast<uint32_t>(take);
        rec_left_ = static_cast<uint16_t>(rec_left_ - take);
        at += take;

        // Handshake header: the first message must be a ClientHello.
        if (hs_want_ == 0 && hs_len_ >= 4) {
            if (hs_[0] != kClientHello) {
                malformed_ = true;
                done_ = true;
                return;
            }
            hs_want_ = 4U + (static_cast<uint32_t>(hs_[1]) << 16 | be16(&hs_[2]));
        }
        // Complete, or as much as the buffer keeps: nothing more to learn.
        if ((hs_want_ != 0 && hs_seen_ >= hs_want_) || hs_len_ == hs_.size()) {
            report(events);
        }
    }
}

bool TlsParser::record_header_byte(uint8_t b) noexcept {
    rec_hdr_[rec_hdr_len_++] = b;
    switch (rec_hdr_len_) {
    case 1:
        return b == kHandshakeRecord;
    case 2:
        return b == 3;
    case 3:
        return b <= 4;
    case 5:
        rec_hdr_len_ = 0;
        rec_left_ = be16(&rec_hdr_[3]);
        return rec_left_ != 0 && rec_left_ <= kMaxRecord;
    default:
        return true;
    }
}

void TlsParser::report(AppEventSink& events) noexcept {
    AppEvent event;
    event.kind = AppEventKind::ProtocolSeen;
    event.proto = AppProto::Tls;
    std::string_view sni;
    const size_t len = hs_want_ != 0 ? std::min<size_t>(hs_len_, hs_want_) : hs_len_;
    if (client_hello_sni({hs_.data(), len}, sni)) {
        std::array<char, AppEvent::kNameCap> lower{};
        const size_t n = std::min(sni.size(), lower.size());
        for (size_t i = 0; i < n; ++i) {
            const char c = sni[i];
            lower[i] = (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
        }
        event.set(event.name, {lower.data(), n});
        event.truncated = event.truncated || sni.size() > n;
    }
    events.on_app_event(event);
    done_ = true;
}

}  // namespace exfiltap::detectors
