// Application protocol identification of a TCP flow from the first bytes of each direction:
// payload signatures first, the server port second.
//
// Threads: pure functions, any thread (the worker calls identify_tcp() as a flow's first
// segments arrive). Cost: a few comparisons over at most the bytes given; no allocation.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include "detectors/app_event.h"

namespace exfiltap::detectors {

/// How many first bytes of each direction identify_tcp() needs at most: with this many (or
/// more) bytes of a direction it decides on what it has.
inline constexpr size_t kIdentifyPeekBytes = 64;

/// The protocol of a TCP flow to `server_port` whose client sent `to_server` and whose
/// server sent `to_client` so far (the first bytes of each direction in order; either may be
/// empty). Signatures, in order of precedence:
/// - from the client: an HTTP/1.x request line (a known method, a space, a request target,
///   " HTTP/1."), a TLS ClientHello record (16 03 00..04, handshake type 1), "SSH-", SMB
///   over NetBIOS (00 + length + "\xFESMB" or "\xFFSMB"), an RDP X.224 Connection Request
///   (TPKT 03 00 + length, code E0);
/// - from the server: "SSH-" (tentative until the client's first bytes: an HTTP request to
///   an SSH server is HTTP), a TLS ServerHello record, SMB over NetBIOS, "+OK" (POP3),
///   "* OK" or "* PREAUTH" (IMAP), "220" (SMTP or FTP: the client's first command EHLO/HELO
///   or USER/AUTH, else the greeting's text naming SMTP/ESMTP or FTP, else the port).
/// Without a signature the answer is proto_by_port(server_port).
///
/// need_more is set when more bytes could change the answer (a direction is empty, or its
/// bytes so far are the start of a signature); the return value is then the best answer so
/// far, port fallback included, and is the one to use when the worker stops asking (after
/// kIdentifyPeekBytes of each direction or a few segments). need_more is false once a
/// signature decided, and when each direction has bytes that match none.
AppProto identify_tcp(uint16_t server_port, std::span<const uint8_t> to_server,
        std::span<const uint8_t> to_client, bool& need_more) noexcept;

/// The protocol usually served on `server_port`: 80, 8080, 8000 http; 443, 8443 tls; 25,
/// 465, 587, 2525 smtp; 21 ftp; 110 pop3; 143 imap; 22 ssh; 3389 rdp; 139, 445 smb; 53 dns;
/// Unknown for any other port.
AppProto proto_by_port(uint16_t server_port) noexcept;

}  // namespace exfiltap::detectors
