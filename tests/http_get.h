// A minimal blocking HTTP/1.0 GET over TCP, for tests that scrape the exporter or query a
// Prometheus server they started. Loopback addresses only: tests talk to nothing else.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

#include "common/result.h"

namespace exfiltap::testing {

struct HttpResponse {
    int status = 0;
    std::string headers;  // the status line and header lines, CRLFs kept
    std::string body;
};

/// GETs `target` (path and query, already encoded) from `host`:`port`, where `host` is
/// "127.0.0.1" or "::1". Reads until the server closes; each read waits at most `timeout`.
Result<HttpResponse> http_get(std::string_view host, uint16_t port, std::string_view target,
        std::chrono::milliseconds timeout = std::chrono::milliseconds(5000));

/// Percent-encodes `text` for a query string value (RFC 3986 unreserved bytes kept).
std::string url_encode(std::string_view text);

}  // namespace exfiltap::testing
