#include "tests/gen/content.h"

#include <array>
#include <cstdio>
#include <stdexcept>

namespace exfiltap::gen {
namespace {

// No detector keywords here (card, exp, ssn, secret, confidential, ...): benign text must
// not raise a finding's confidence or match a keyword class.
constexpr const char* kWords[] = {"the", "team", "release", "schedule", "update", "weather",
        "garden", "review", "meeting", "notes", "project", "river", "coffee", "window", "station",
        "morning", "evening", "market", "design", "travel", "summer", "winter", "chapter",
        "library", "kitchen", "recipe", "bicycle", "harbor", "mountain", "forest", "engine",
        "signal", "planning", "budget", "draft", "version", "museum", "concert", "festival",
        "ticket", "painting", "lesson", "student", "teacher", "garage", "village", "city", "bridge",
        "tunnel", "canal", "orchard", "valley", "paper", "report", "figure", "table", "sample",
        "measure", "quarter", "season", "holiday", "office", "desk", "printer", "monitor", "cable",
        "router", "server", "backup", "folder", "archive", "photo", "gallery", "video", "stream",
        "podcast", "episode", "article", "column", "editor", "reader", "writer", "author", "story",
        "novel", "poem", "song", "album", "guitar", "piano", "violin", "drum", "choir", "stage",
        "light", "shadow", "cloud", "rain", "snow", "wind", "storm", "sunrise", "sunset", "island",
        "coast", "beach", "harvest", "field", "farm", "barn", "tractor", "wheat", "apple", "pear",
        "cherry", "lemon", "orange", "tomato", "onion", "garlic", "pepper", "bread", "cheese",
        "butter", "soup", "salad", "dinner", "lunch", "breakfast", "walk", "run", "swim", "climb",
        "read", "write", "build", "plan", "check", "move", "open", "close", "start", "finish",
        "share", "quiet", "bright", "green", "blue", "small", "large", "early", "late", "new",
        "old", "simple", "careful", "quick", "slow", "warm", "cold", "with", "for", "from", "into",
        "about", "after", "before", "under", "over", "near", "and", "or", "but", "then"};

constexpr const char* kFirstNames[] = {"Maria", "Tom", "Priya", "Jonas", "Aisha", "Lucas", "Mei",
        "Omar", "Sofia", "Daniel", "Elena", "Kwame", "Hannah", "Mateo", "Yuki", "Lena", "Samuel",
        "Nadia", "Victor", "Grace"};
constexpr const char* kLastNames[] = {"Alvarez", "Becker", "Natarajan", "Lindqvist", "Okafor",
        "Moreau", "Chen", "Haddad", "Rossi", "Kowalski", "Petrova", "Mensah", "Schmidt",
        "Fernandez", "Tanaka", "Novak", "Osei", "Karimi", "Dubois", "Walsh"};
constexpr const char* kLevels[] = {"INFO", "INFO", "INFO", "DEBUG", "WARN", "ERROR"};
constexpr const char* kUserAgents[] = {
        "Mozilla/5.0 (X11; Linux x86_64; rv:123.0) Gecko/20100101 Firefox/123.0",
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/122.0.0.0 Safari/537.36",
        "curl/7.88.1", "python-requests/2.31.0"};
constexpr const char* kServers[] = {"nginx", "Apache", "nginx/1.24.0", "Caddy"};

// A short number standing alone: 1-4 digits, a decimal or a percentage.
void append_number(Rng& rng, std::string& out) {
    char buf[16];
    switch (rng.below(4)) {
    case 0:
        std::snprintf(buf, sizeof buf, "%u", static_cast<unsigned>(rng.range(1, 99)));
        break;
    case 1:
        std::snprintf(buf, sizeof buf, "%u", static_cast<unsigned>(rng.range(100, 2099)));
        break;
    case 2:
        std::snprintf(buf, sizeof buf, "%u.%u", static_cast<unsigned>(rng.range(0, 99)),
                static_cast<unsigned>(rng.range(0, 9)));
        break;
    default:
        std::snprintf(buf, sizeof buf, "%u%%", static_cast<unsigned>(rng.range(1, 100)));
        break;
    }
    out += buf;
}

void append_sentence(Rng& rng, std::string& out) {
    const uint64_t words = rng.range(5, 14);
    for (uint64_t i = 0; i < words; ++i) {
        if (i > 0) {
            out += ' ';
        }
        // A number only between two words, never next to another number.
        if (i > 0 && i + 1 < words && rng.below(12) == 0) {
            append_number(rng, out);
            out += ' ';
        }
        const size_t at = out.size();
        out += word(rng);
        if (i == 0) {
            out[at] = static_cast<char>(out[at] - 'a' + 'A');
        }
    }
    out += '.';
}

void append_chunk(Rng& rng, TextStyle style, std::string& out) {
    char buf[64];
    switch (style) {
    case TextStyle::kProse: {
        const uint64_t sentences = rng.range(3, 7);
        for (uint64_t i = 0; i < sentences; ++i) {
            append_sentence(rng, out);
            out += i + 1 < sentences ? " " : "\n\n";
        }
        break;
    }
    case TextStyle::kLog:
        // The bracket keeps a value placed just before this line from running into the digits
        // of its timestamp.
        std::snprintf(buf, sizeof buf, "[2026-03-02T10:%02u:%02u.%03uZ] %s ",
                static_cast<unsigned>(rng.below(60)), static_cast<unsigned>(rng.below(60)),
                static_cast<unsigned>(rng.below(1000)), rng.pick(kLevels));
        out += buf;
        out += word(rng);
        out += ": ";
        append_sentence(rng, out);
        std::snprintf(buf, sizeof buf, " (%u ms)\n", static_cast<unsigned>(rng.range(1, 900)));
        out += buf;
        break;
    case TextStyle::kCsv:
        out += word(rng);
        out += ' ';
        out += word(rng);
        std::snprintf(buf, sizeof buf, ",%u,%u.%02u,", static_cast<unsigned>(rng.range(1, 40)),
                static_cast<unsigned>(rng.range(1, 400)), static_cast<unsigned>(rng.below(100)));
        out += buf;
        out += word(rng);
        out += '\n';
        break;
    }
}

}  // namespace

std::string_view word(Rng& rng) {
    return rng.pick(kWords);
}

std::string person_name(Rng& rng) {
    return std::string(rng.pick(kFirstNames)) + " " + rng.pick(kLastNames);
}

std::string filler_text(Rng& rng, TextStyle style, size_t n) {
    std::string out;
    out.reserve(n + 256);
    while (out.size() < n) {
        append_chunk(rng, style, out);
    }
    out.resize(n);
    if (n > 0) {
        out.back() = '\n';
    }
    return out;
}

std::string html_page(Rng& rng, std::string_view title, size_t approx_bytes) {
    std::string out = "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n";
    out += "<title>";
    out += title;
    out += "</title>\n<link rel=\"stylesheet\" href=\"/static/site.css\">\n</head>\n<body>\n";
    out += "<nav>";
    for (int i = 0; i < 5; ++i) {
        const std::string_view w = word(rng);
        out += "<a href=\"/";
        out += w;
        out += "/\">";
        out += w;
        out += "</a> ";
    }
    out += "</nav>\n<h1>";
    out += title;
    out += "</h1>\n";
    while (out.size() + 40 < approx_bytes) {
        out += "<h2>";
        append_sentence(rng, out);
        out += "</h2>\n<p>";
        const uint64_t sentences = rng.range(2, 8);
        for (uint64_t i = 0; i < sentences; ++i) {
            append_sentence(rng, out);
            out += ' ';
        }
        out += "</p>\n";
    }
    out += "<footer>Updated 2026</footer>\n</body>\n</html>\n";
    return out;
}

std::string binary_blob(Rng& rng, size_t n) {
    std::string out(n, '\0');
    for (size_t i = 0; i < n; i += 8) {
        uint64_t v = rng.next();
        for (size_t j = i; j < n && j < i + 8; ++j, v >>= 8) {
            out[j] = static_cast<char>(v & 0xff);
        }
    }
    return out;
}

std::string compose_text(
        Rng& rng, TextStyle style, size_t len, const std::vector<Insert>& inserts) {
    std::string out;
    out.reserve(len);
    for (const Insert& in : inserts) {
        if (in.value_at < out.size() + in.prefix.size()
                || in.value_at + in.value.size() + in.suffix.size() > len) {
            throw std::logic_error("compose_text: inserts do not fit");
        }
        out += filler_text(rng, style, in.value_at - in.prefix.size() - out.size());
        out += in.prefix;
        out += in.value;
        out += in.suffix;
    }
    out += filler_text(rng, style, len - out.size());
    return out;
}

std::string http_date(uint64_t ts_us) {
    static constexpr const char* kDays[] = {"Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"};
    static constexpr const char* kMonths[] = {
            "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    const uint64_t secs = ts_us / 1000000;
    uint64_t days = secs / 86400;
    const char* weekday = kDays[days % 7];  // 1970-01-01 was a Thursday
    unsigned year = 1970;
    for (;;) {
        const bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
        const unsigned in_year = leap ? 366 : 365;
        if (days < in_year) {
            break;
        }
        days -= in_year;
        ++year;
    }
    const bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    const std::array<unsigned, 12> lengths = {
            31, leap ? 29u : 28u, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    unsigned month = 0;
    while (days >= lengths[month]) {
        days -= lengths[month];
        ++month;
    }
    char buf[64];
    std::snprintf(buf, sizeof buf, "%s, %02u %s %u %02u:%02u:%02u GMT", weekday,
            static_cast<unsigned>(days + 1), kMonths[month], year,
            static_cast<unsigned>(secs % 86400 / 3600), static_cast<unsigned>(secs % 3600 / 60),
            static_cast<unsigned>(secs % 60));
    return buf;
}

std::string http_request_head(Rng& rng, const HttpRequest& request) {
    std::string out;
    out += request.method;
    out += ' ';
    out += request.path;
    out += " HTTP/1.1\r\nHost: ";
    out += request.host;
    out += "\r\nUser-Agent: ";
    out += rng.pick(kUserAgents);
    out += request.method == "GET"
            ? "\r\nAccept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
            : "\r\nAccept: */*";
    out += "\r\nAccept-Language: en-US,en;q=0.5\r\nConnection: ";
    out += request.keep_alive ? "keep-alive" : "close";
    if (!request.content_type.empty()) {
        out += "\r\nContent-Type: ";
        out += request.content_type;
        out += "\r\nContent-Length: ";
        out += std::to_string(request.body_len);
    }
    out += "\r\n\r\n";
    return out;
}

std::string http_response_head(Rng& rng, const HttpResponse& response) {
    std::string out = "HTTP/1.1 " + std::to_string(response.status) + " ";
    out += response.reason;
    out += "\r\nServer: ";
    out += rng.pick(kServers);
    out += "\r\nDate: " + http_date(response.ts_us);
    out += "\r\nContent-Type: ";
    out += response.content_type;
    out += "\r\nContent-Length: " + std::to_string(response.body_len);
    out += "\r\nConnection: ";
    out += response.keep_alive ? "keep-alive" : "close";
    out += "\r\n\r\n";
    return out;
}

}  // namespace exfiltap::gen
