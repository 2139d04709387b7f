// TLS ClientHello parsing: the server name (SNI) a client asks for, reported once per flow as
// ProtocolSeen(proto Tls, name = SNI). Everything after the ClientHello is encrypted or of no
// interest here; the worker counts the flow's bytes itself.
//
// Threads: the worker (one parser per flow, in the worker's parser pool). No allocation,
// lock, log or throw: the handshake is gathered in a fixed buffer inside the object.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

#include "detectors/app_event.h"

namespace exfiltap::detectors {

/// Finds the host_name entry of the server_name extension in a ClientHello handshake message
/// (`hello` starts at the handshake header: type 1, 24-bit length, body; it may be cut, then
/// only the extensions present are searched). True with `sni` pointing into `hello` when one
/// was found; false when there is none or the message is malformed or not a ClientHello.
bool client_hello_sni(std::span<const uint8_t> hello, std::string_view& sni) noexcept;

/// Reassembles the ClientHello from the client's TLS handshake records (across records and
/// TCP segments, up to kHandshakeCap bytes; a longer hello is searched as far as it was kept)
/// and reports ProtocolSeen(Tls, name = SNI in lower case, "" without one) once. Done after
/// that, or at the first byte that is not TLS (then nothing is reported), or when a gap hits
/// the client direction before the hello is complete. The server direction is ignored.
/// on_end reports a hello that was started but not completed, with the SNI if its kept part
/// holds one.
class TlsParser {
public:
    static constexpr size_t kHandshakeCap = 4000;

    void on_data(AppDir dir, std::span<const uint8_t> data, AppEventSink& events,
            ObjectSink* objects) noexcept;
    void on_gap(AppDir dir) noexcept;
    void on_end(AppEventSink& events, ObjectSink* objects) noexcept;
    bool done() const noexcept { return done_; }

    /// True when the stream did not look like TLS (or the hello was malformed).
    bool malformed() const noexcept { return malformed_; }

private:
    void on_record_byte_run(std::span<const uint8_t> data, AppEventSink& events) noexcept;
    // Takes one byte of a record header; false when the stream is not TLS.
    bool record_header_byte(uint8_t b) noexcept;
    void report(AppEventSink& events) noexcept;

    std::array<uint8_t, kHandshakeCap> hs_{};
    uint32_t hs_len_ = 0;   // handshake bytes kept in hs_
    uint32_t hs_seen_ = 0;  // handshake bytes seen (kept or not)
    uint32_t hs_want_ = 0;  // 4 + the hello's length once its header is known, else 0
    std::array<uint8_t, 5> rec_hdr_{};
    uint8_t rec_hdr_len_ = 0;  // bytes of the current record header seen
    uint16_t rec_left_ = 0;    // payload bytes of the current record still to come
    bool done_ = false;
    bool malformed_ = false;
};
static_assert(sizeof(TlsParser) <= 4096);

}  // namespace exfiltap::detectors
