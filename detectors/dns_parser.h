// DNS message parsing for the behaviour detectors (DNS tunnelling): the header and the first
// question of a message, from a UDP datagram or a TCP stream (DnsTcpParser).
//
// Threads: the worker. Nothing here allocates, locks, logs or throws; DnsTcpParser keeps a
// fixed buffer per direction inside the object (one per flow, in the worker's parser pool).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

#include "detectors/app_event.h"

namespace exfiltap::detectors {

/// What parse_dns() learns from one message.
struct DnsMessage {
    /// The longest dotted name kept (RFC 1035 limit of a presentation name without the root).
    static constexpr size_t kNameCap = 253;

    uint16_t id = 0;
    bool is_response = false;
    uint8_t opcode = 0;
    uint8_t rcode = 0;
    /// The TC (truncated) bit of the header.
    bool tc = false;
    uint16_t qdcount = 0;
    uint16_t ancount = 0;
    uint16_t nscount = 0;
    uint16_t arcount = 0;
    /// True when the first question was read (qdcount > 0 and it was well formed).
    bool has_question = false;
    uint16_t qtype = 0;
    uint16_t qclass = 0;
    /// The name was longer than kNameCap characters and is cut there.
    bool name_truncated = false;
    /// Labels of the first question name (after following compression pointers) and the
    /// longest of them in bytes; both count the whole name, also past a cut.
    uint8_t label_count = 0;
    uint8_t longest_label = 0;
    uint16_t name_len = 0;
    /// The first question name: lower case (ASCII), dotted, no trailing dot, "" for the root.
    /// Label bytes are kept as they are ('*', '=', '_', '-' ...) except those outside
    /// printable ASCII and a '.' inside a label, which become '?' (so the dots of the text
    /// are exactly the label boundaries).
    std::array<char, kNameCap + 1> name{};

    std::string_view name_view() const noexcept { return {name.data(), name_len}; }
};

/// Parses the header and the first question of the DNS message `msg` (without the TCP
/// length prefix). False when the header is short, the first question is malformed
/// (reserved label types, a compression pointer that does not point backwards, too many
/// pointer hops, a read past the end) or `out` would be meaningless; `out` is then partly
/// filled. Messages longer than 512 bytes may be passed cut: only the question is read.
bool parse_dns(std::span<const uint8_t> msg, DnsMessage& out) noexcept;

/// Fills `out` from `m`: a query gives DnsQuery (name, qtype, bytes = msg_len), a response
/// DnsAnswer (name, qtype, rcode, bytes = msg_len, count = ancount). proto is Dns; the
/// other fields are reset.
void dns_event(const DnsMessage& m, size_t msg_len, AppEvent& out) noexcept;

/// DNS over TCP (RFC 7766): each message comes with a 2-byte length. Every complete message
/// of either direction gives a DnsQuery or DnsAnswer event; only its first kKeepBytes are
/// kept for parsing (the question is there), the rest is skipped by count. A message that
/// does not parse is counted and skipped; a direction that loses bytes (on_gap) or carries
/// kMaxMalformedRun malformed messages in a row is given up (its framing cannot be trusted,
/// or it is not DNS). done() when both directions are given up.
class DnsTcpParser {
public:
    static constexpr size_t kKeepBytes = 512;
    static constexpr uint8_t kMaxMalformedRun = 3;

    void on_data(AppDir dir, std::span<const uint8_t> data, AppEventSink& events,
            ObjectSink* objects) noexcept;
    void on_gap(AppDir dir) noexcept;
    void on_end(AppEventSink& events, ObjectSink* objects) noexcept;
    bool done() const noexcept;

    /// Messages parsed and reported, and messages that did not parse.
    uint32_t messages() const noexcept { return messages_; }
    uint32_t malformed() const noexcept { return malformed_; }

private:
    struct Direction {
        std::array<uint8_t, kKeepBytes> buf{};
        uint16_t kept = 0;      // bytes of the current message in buf
        uint16_t msg_len = 0;   // length of the current message (valid when len_bytes == 2)
        uint16_t seen = 0;      // bytes of the current message seen so far
        uint8_t len_bytes = 0;  // bytes of the length prefix seen (0..2)
        uint8_t malformed_run = 0;
        bool dead = false;
    };

    void feed(Direction& d, std::span<const uint8_t> data, AppEventSink& events) noexcept;
    void finish_message(Direction& d, AppEventSink& events) noexcept;

    std::array<Direction, 2> dirs_{};
    uint32_t messages_ = 0;
    uint32_t malformed_ = 0;
};
static_assert(sizeof(DnsTcpParser) <= 4096);

}  // namespace exfiltap::detectors
