#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "tests/gen/rng.h"

namespace exfiltap::gen {

// Benign payloads and HTTP framing. Benign text never holds a digit sequence that could be
// read as a card number or SSN: numbers are short and always stand between words.

enum class TextStyle {
    kProse,  // paragraphs of plain sentences
    kLog,    // application log lines
    kCsv,    // inventory-like rows
};

// Exactly n bytes of text in the style; starts with a letter or "[", ends with a newline.
std::string filler_text(Rng& rng, TextStyle style, size_t n);

// An HTML page of about approx_bytes (at least a small skeleton).
std::string html_page(Rng& rng, std::string_view title, size_t approx_bytes);

// n bytes of random binary data (compressed-media-like, no archive magic number).
std::string binary_blob(Rng& rng, size_t n);

// A value placed into filler text: prefix, value, suffix; the value starts at value_at.
struct Insert {
    size_t value_at = 0;
    std::string prefix;
    std::string value;
    std::string suffix;
};

// Exactly len bytes: filler in the style with each insert where it asks (inserts sorted by
// value_at, not overlapping, prefix fitting after the previous insert, and all within len).
// Throws std::logic_error when they do not fit.
std::string compose_text(Rng& rng, TextStyle style, size_t len, const std::vector<Insert>& inserts);

// "Mon, 02 Mar 2026 10:00:00 GMT" for a Unix time in microseconds.
std::string http_date(uint64_t ts_us);

struct HttpRequest {
    std::string_view method = "GET";
    std::string_view host;
    std::string_view path = "/";
    std::string_view content_type;  // empty: no body headers
    size_t body_len = 0;
    bool keep_alive = false;
};
std::string http_request_head(Rng& rng, const HttpRequest& request);

struct HttpResponse {
    int status = 200;
    std::string_view reason = "OK";
    std::string_view content_type = "text/html; charset=utf-8";
    size_t body_len = 0;
    uint64_t ts_us = 0;
    bool keep_alive = false;
};
std::string http_response_head(Rng& rng, const HttpResponse& response);

// A word for names, paths and titles (lower case).
std::string_view word(Rng& rng);
// "Firstname Lastname"
std::string person_name(Rng& rng);

}  // namespace exfiltap::gen
