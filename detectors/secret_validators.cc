#include "detectors/secret_validators.h"

#include <algorithm>
#include <array>

#include "detectors/char_class.h"

namespace exfiltap::detectors {

namespace {

constexpr size_t kMinPasswordLen = 6;
constexpr size_t kMaxPasswordLen = 64;
// Key, quotes, separator and blanks before a bare value; past this a run is not one.
constexpr size_t kMaxAssignmentRun = 128;
constexpr size_t kMinJwtSignature = 16;
constexpr size_t kMaxJwtHeaderBytes = 96;  // decoded header bytes checked
constexpr size_t kMinTokenDistinct = 6;

bool is_base64(char c) {
    return is_alnum(c) || c == '+' || c == '/';
}

bool is_base64url(char c) {
    return is_alnum(c) || c == '_' || c == '-';
}

bool is_space(char c) {
    return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\f' || c == '\v';
}

bool equals_caseless(std::string_view a, std::string_view b) {
    if (a.size() != b.size()) {
        return false;
    }
    for (size_t i = 0; i < a.size(); ++i) {
        if (to_lower(a[i]) != to_lower(b[i])) {
            return false;
        }
    }
    return true;
}

bool contains_caseless(std::string_view text, std::string_view word) {
    if (word.size() > text.size()) {
        return false;
    }
    for (size_t i = 0; i + word.size() <= text.size(); ++i) {
        if (equals_caseless(text.substr(i, word.size()), word)) {
            return true;
        }
    }
    return false;
}

bool ends_with(std::string_view text, size_t end, std::string_view suffix) {
    return end >= suffix.size() && end <= text.size()
            && text.substr(end - suffix.size(), suffix.size()) == suffix;
}

size_t distinct_chars(std::string_view text) {
    std::array<bool, 256> seen{};
    size_t n = 0;
    for (const char c : text) {
        const auto byte = static_cast<unsigned char>(c);
        if (!seen[byte]) {
            seen[byte] = true;
            ++n;
        }
    }
    return n;
}

// "0123456789abcdef", "ABCDEFGH...": more than half of the steps go up by one.
bool mostly_ascending(std::string_view text) {
    if (text.size() < 2) {
        return false;
    }
    size_t steps = 0;
    for (size_t i = 1; i < text.size(); ++i) {
        if (text[i] == text[i - 1] + 1) {
            ++steps;
        }
    }
    return steps * 2 > text.size() - 1;
}

// ---------------------------------------------------------------------------------------------
// Tokens

struct TokenLayout {
    TokenKind kind;
    ContentClass cls;
    std::array<std::string_view, 5> prefixes;
    size_t min_body;
    size_t max_body;
    bool (*run_char)(char);   // characters that continue the token's run (walk back)
    bool (*body_char)(char);  // characters allowed after the prefix
};

bool aws_body_char(char c) {
    return is_upper(c) || (c >= '2' && c <= '7');
}

bool google_char(char c) {
    return is_base64url(c);
}

bool slack_char(char c) {
    return is_alnum(c) || c == '-';
}

bool slack_run_char(char c) {
    return is_word(c) || c == '-';
}

bool alnum_char(char c) {
    return is_alnum(c);
}

bool word_char(char c) {
    return is_word(c);
}

constexpr std::array<TokenLayout, kTokenKindCount> kTokenLayouts = {{
        {TokenKind::AwsAccessKeyId, ContentClass::CloudToken, {"AKIA", "ASIA"}, 16, 16, word_char,
                aws_body_char},
        {TokenKind::GoogleApiKey, ContentClass::CloudToken, {"AIza"}, 35, 35, google_char,
                google_char},
        {TokenKind::SlackToken, ContentClass::CloudToken,
                {"xoxa-", "xoxb-", "xoxp-", "xoxr-", "xoxs-"}, 15, 110, slack_run_char, slack_char},
        {TokenKind::StripeSecretKey, ContentClass::CloudToken, {"sk_live_"}, 24, 99, word_char,
                alnum_char},
        {TokenKind::AzureStorageKey, ContentClass::CloudToken, {"AccountKey="}, 88, 88, nullptr,
                nullptr},
        {TokenKind::GithubToken, ContentClass::VcsToken, {"ghp_", "gho_", "ghu_", "ghs_", "ghr_"},
                36, 36, word_char, alnum_char},
        {TokenKind::GithubPat, ContentClass::VcsToken, {"github_pat_"}, 82, 82, word_char,
                word_char},
        {TokenKind::GitlabPat, ContentClass::VcsToken, {"glpat-"}, 20, 20, google_char,
                google_char},
}};

const TokenLayout& layout_of(TokenKind kind) {
    return kTokenLayouts[static_cast<size_t>(kind)];
}

// Slack: digits, then '-'-separated parts, none empty, the last one the secret.
bool slack_body_valid(std::string_view body) {
    const size_t first_dash = body.find('-');
    if (first_dash == 0 || first_dash == std::string_view::npos) {
        return false;
    }
    for (size_t i = 0; i < first_dash; ++i) {
        if (!is_digit(body[i])) {
            return false;
        }
    }
    if (body.find("--") != std::string_view::npos || body.back() == '-') {
        return false;
    }
    const size_t last_dash = body.rfind('-');
    return body.size() - last_dash - 1 >= 8;
}

bool is_placeholder_token(std::string_view body) {
    return distinct_chars(body) < kMinTokenDistinct || mostly_ascending(body)
            || contains_caseless(body, "example");
}

// "AccountKey=" + 86 base64 characters + "==", the key of an Azure storage connection string.
Candidate extract_azure_key(std::string_view text, size_t end, bool reject_test_numbers) {
    constexpr std::string_view kPrefix = "AccountKey=";
    constexpr size_t kKeyChars = 88;
    if (end > text.size() || !ends_with(text, end, "==")
            || (end < text.size() && (is_base64(text[end]) || text[end] == '='))) {
        return {};
    }
    if (end < kKeyChars + kPrefix.size()) {
        return {};
    }
    const size_t key_start = end - kKeyChars;
    for (size_t i = key_start; i < end - 2; ++i) {
        if (!is_base64(text[i])) {
            return {};
        }
    }
    const size_t start = key_start - kPrefix.size();
    if (text.substr(start, kPrefix.size()) != kPrefix || (start > 0 && is_word(text[start - 1]))) {
        return {};
    }
    const std::string_view key = text.substr(key_start, kKeyChars);
    if (reject_test_numbers && is_placeholder_token(key.substr(0, kKeyChars - 2))) {
        return {};
    }
    Candidate candidate;
    candidate.start = start;
    candidate.assign_tail(key);
    candidate.ok = true;
    return candidate;
}

// ---------------------------------------------------------------------------------------------
// Private keys

constexpr std::array<std::string_view, 7> kKeyHeaders = {
        "-----BEGIN PRIVATE KEY-----",
        "-----BEGIN RSA PRIVATE KEY-----",
        "-----BEGIN EC PRIVATE KEY-----",
        "-----BEGIN DSA PRIVATE KEY-----",
        "-----BEGIN OPENSSH PRIVATE KEY-----",
        "-----BEGIN ENCRYPTED PRIVATE KEY-----",
        "-----BEGIN PGP PRIVATE KEY BLOCK-----",
};

// A line break at `i`: CR, LF or the two-character JSON/C escapes "\n", "\r". Returns its
// length, 0 when there is none; -1 when `after` ends inside a possible escape.
int line_break_at(std::string_view after, size_t i) {
    const char c = after[i];
    if (c == '\n' || c == '\r') {
        return 1;
    }
    if (c == '\\') {
        if (i + 1 >= after.size()) {
            return -1;
        }
        return after[i + 1] == 'n' || after[i + 1] == 'r' ? 2 : 0;
    }
    return 0;
}

// Blank space, line breaks at `i`; returns the index after them or npos when `after` ends
// (or ends inside an escape) first.
size_t skip_blank(std::string_view after, size_t i) {
    while (i < after.size()) {
        const int brk = line_break_at(after, i);
        if (brk < 0) {
            return std::string_view::npos;
        }
        if (brk > 0) {
            i += static_cast<size_t>(brk);
        } else if (after[i] == ' ' || after[i] == '\t') {
            ++i;
        } else {
            return i;
        }
    }
    return std::string_view::npos;
}

// Moves `i` past line breaks and armour header lines ("Proc-Type: 4,ENCRYPTED") to the
// first body character. False when more bytes are needed to tell.
bool skip_armour(std::string_view after, bool final, size_t& i) {
    for (;;) {
        const size_t line = skip_blank(after, i);
        if (line == std::string_view::npos) {
            i = after.size();
            return final;
        }
        // A header line starts with a name of letters and '-' followed by ':'.
        size_t j = line;
        while (j < after.size() && (is_alpha(after[j]) || after[j] == '-')) {
            ++j;
        }
        if (j >= after.size() && !final) {
            return false;
        }
        if (j >= after.size() || after[j] != ':' || j == line) {
            i = line;
            return true;
        }
        while (j < after.size() && line_break_at(after, j) == 0) {
            ++j;
        }
        if (j >= after.size()) {
            i = after.size();
            return final;
        }
        i = j;
    }
}

// ---------------------------------------------------------------------------------------------
// JWT

int base64url_value(char c) {
    if (is_upper(c)) {
        return c - 'A';
    }
    if (is_lower(c)) {
        return c - 'a' + 26;
    }
    if (is_digit(c)) {
        return c - '0' + 52;
    }
    if (c == '-') {
        return 62;
    }
    if (c == '_') {
        return 63;
    }
    return -1;
}

bool jwt_char(char c) {
    return is_base64url(c) || c == '.';
}

// ---------------------------------------------------------------------------------------------
// Passwords

constexpr std::array<std::string_view, 7> kPasswordKeys = {
        "password", "passwd", "pwd", "pass", "secret", "api_key", "apikey"};

// Samples, defaults and the most common passwords: they fill documentation, sample configs
// and test fixtures, and reveal nothing when they leave.
constexpr std::array<std::string_view, 44> kSamplePasswords = {"password", "passwd", "secret",
        "changeme", "changeit", "example", "placeholder", "redacted", "removed", "hidden", "masked",
        "undefined", "string", "required", "optional", "yourpassword", "your_password",
        "your-password", "mypassword", "my_password", "newpassword", "new_password", "dummy",
        "default", "sample", "unknown", "notset", "not_set", "passw0rd", "p@ssw0rd", "p@ssword",
        "password1", "password123", "123456", "1234567", "12345678", "123456789", "1234567890",
        "qwerty", "letmein", "admin123", "abc123", "test123", "secret123"};

bool is_value_terminator(char c) {
    return is_space(c) || c == '"' || c == '\'' || c == '&' || c == ';' || c == ',';
}

// The start of a password key ending at `end` (exclusive), or npos. The key may follow
// '_', '-' or '.' ("DB_PASSWORD", "x-api-key"), not a letter or digit ("bypass").
size_t key_start_before(std::string_view text, size_t end) {
    for (const std::string_view key : kPasswordKeys) {
        if (end < key.size() || !equals_caseless(text.substr(end - key.size(), key.size()), key)) {
            continue;
        }
        const size_t start = end - key.size();
        if (start == 0 || !is_alnum(text[start - 1])) {
            return start;
        }
    }
    return std::string_view::npos;
}

// The key of an assignment whose separator starts at `sep`: blanks, an optional quote
// (JSON-escaped too), then the key. Returns the key's start or npos.
size_t assignment_key(std::string_view text, size_t sep) {
    size_t i = sep;
    while (i > 0 && (text[i - 1] == ' ' || text[i - 1] == '\t')) {
        --i;
    }
    if (i > 0 && (text[i - 1] == '"' || text[i - 1] == '\'')) {
        --i;
        if (i > 0 && text[i - 1] == '\\') {
            --i;
        }
    }
    return key_start_before(text, i);
}

// The separator ending right before `i` (after blanks): '=', ':', ":=" or "=>". Returns the
// separator's first index, or npos.
size_t separator_before(std::string_view text, size_t i) {
    while (i > 0 && (text[i - 1] == ' ' || text[i - 1] == '\t')) {
        --i;
    }
    if (i == 0) {
        return std::string_view::npos;
    }
    const char c = text[i - 1];
    if (c == '>' && i >= 2 && text[i - 2] == '=') {
        return i - 2;
    }
    if (c == '=' && i >= 2 && text[i - 2] == ':') {
        return i - 2;
    }
    if (c == '=' || c == ':') {
        return i - 1;
    }
    return std::string_view::npos;
}

// Values that stand for a password rather than being one.
bool is_placeholder_password(std::string_view value, bool quoted) {
    if (distinct_chars(value) == 1) {
        return true;  // "********", "xxxxxx", "......"
    }
    const char first = value.front();
    const char last = value.back();
    if ((first == '<' && last == '>') || (first == '[' && last == ']')
            || (first == '{' && last == '}') || (first == '(' && last == ')')
            || (first == '%' && last == '%') || value.find("%(") == 0) {
        return true;  // <password>, [secret], {{token}}, %PASS%, %(pw)s
    }
    if (first == '$') {  // ${VAR}, $(cmd), $DB_PASS; not "$ecretPass"
        const std::string_view rest = value.substr(1);
        if (rest.front() == '{' || rest.front() == '('
                || std::all_of(rest.begin(), rest.end(),
                        [](char c) { return is_upper(c) || is_digit(c) || c == '_'; })) {
            return true;
        }
    }
    if (quoted) {
        return false;
    }
    // A bare absolute path is a working directory ("PWD=/home/alice/src" in an environment
    // dump), not a secret.
    if (first == '/' && value.size() > 1 && is_alpha(value[1])
            && std::all_of(value.begin(), value.end(),
                    [](char c) { return is_word(c) || c == '/' || c == '.' || c == '-'; })) {
        return true;
    }
    // Bare code: a call, an index, a template, or a dotted identifier (config.db_pass).
    if (value.find_first_of("()[]{}<>") != std::string_view::npos) {
        return true;
    }
    const bool identifier_chain = value.find('.') != std::string_view::npos && is_alpha(first)
            && std::all_of(
                    value.begin(), value.end(), [](char c) { return is_word(c) || c == '.'; });
    return identifier_chain;
}

bool is_sample_password(std::string_view value) {
    return std::any_of(kSamplePasswords.begin(), kSamplePasswords.end(),
            [&](std::string_view sample) { return equals_caseless(value, sample); });
}

Candidate password_candidate(
        std::string_view value, size_t key_start, bool quoted, bool reject_test_numbers) {
    if (value.size() < kMinPasswordLen || value.size() > kMaxPasswordLen
            || is_placeholder_password(value, quoted)
            || (reject_test_numbers && is_sample_password(value))) {
        return {};
    }
    Candidate candidate;
    candidate.start = key_start;
    candidate.assign_tail(value);
    candidate.ok = true;
    return candidate;
}

Candidate extract_quoted_password(
        std::string_view text, size_t end, char quote, bool reject_test_numbers) {
    size_t open = end;
    while (open > 0 && end - open <= kMaxPasswordLen + 1) {
        const char c = text[open - 1];
        if (c == quote || is_space(c)) {
            break;
        }
        --open;
    }
    if (open == 0 || text[open - 1] != quote) {
        return {};
    }
    size_t value_begin = open;
    size_t value_end = end;
    size_t before = open - 1;  // the opening quote
    // JSON inside a string: \"hunter22\" leaves a backslash before each quote.
    if (before > 0 && text[before - 1] == '\\' && value_end > value_begin
            && text[value_end - 1] == '\\') {
        --before;
        --value_end;
    }
    const size_t sep = separator_before(text, before);
    if (sep == std::string_view::npos) {
        return {};
    }
    const size_t key = assignment_key(text, sep);
    if (key == std::string_view::npos) {
        return {};
    }
    return password_candidate(
            text.substr(value_begin, value_end - value_begin), key, true, reject_test_numbers);
}

Candidate extract_bare_password(std::string_view text, size_t end, bool reject_test_numbers) {
    size_t run = end;
    while (run > 0 && !is_value_terminator(text[run - 1])) {
        --run;
        if (end - run > kMaxAssignmentRun) {
            return {};
        }
    }
    // "key=value" inside the run: the first separator preceded by a key.
    for (size_t p = run; p < end; ++p) {
        if (text[p] != '=' && text[p] != ':') {
            continue;
        }
        const size_t key = assignment_key(text, p);
        if (key == std::string_view::npos) {
            continue;
        }
        const bool two = p + 1 < end
                && ((text[p] == ':' && text[p + 1] == '=')
                        || (text[p] == '=' && text[p + 1] == '>'));
        const size_t value_begin = p + (two ? 2 : 1);
        return password_candidate(
                text.substr(value_begin, end - value_begin), key, false, reject_test_numbers);
    }
    // "key = value": the key is before the run, across blanks.
    const size_t sep = separator_before(text, run);
    if (sep == std::string_view::npos
            || (run > 0 && text[run - 1] != ' ' && text[run - 1] != '\t')) {
        return {};
    }
    const size_t key = assignment_key(text, sep);
    if (key == std::string_view::npos) {
        return {};
    }
    return password_candidate(text.substr(run, end - run), key, false, reject_test_numbers);
}

// ---------------------------------------------------------------------------------------------
// Classification markers

bool caveat_char(char c) {
    return is_upper(c) || is_digit(c) || c == '/' || c == '-';
}

struct MarkerForm {
    std::string_view last_word;
    std::string_view before;  // words that must precede it, "" for none
};

// Longer forms first: "TOP SECRET" before "SECRET".
constexpr std::array<MarkerForm, 7> kMarkerForms = {{
        {"SECRET", "TOP "},
        {"SECRET", ""},
        {"CONFIDENTIAL", "STRICTLY "},
        {"CONFIDENTIAL", ""},
        {"ONLY", "INTERNAL USE "},
        {"ONLY", "INTERNAL "},
        {"RESTRICTED", ""},
}};

}  // namespace

ContentClass token_class(TokenKind kind) noexcept {
    return layout_of(kind).cls;
}

Candidate extract_token(
        TokenKind kind, std::string_view text, size_t end, bool reject_test_numbers) noexcept {
    if (end == 0 || end > text.size()) {
        return {};
    }
    if (kind == TokenKind::AzureStorageKey) {
        return extract_azure_key(text, end, reject_test_numbers);
    }
    const TokenLayout& layout = layout_of(kind);
    if (end < text.size() && layout.run_char(text[end])) {
        return {};
    }
    size_t start = end;
    size_t longest_prefix = 0;
    for (const std::string_view prefix : layout.prefixes) {
        longest_prefix = std::max(longest_prefix, prefix.size());
    }
    const size_t max_run = layout.max_body + longest_prefix;
    while (start > 0 && layout.run_char(text[start - 1]) && end - start <= max_run) {
        --start;
    }
    if (end - start > max_run || (start > 0 && is_word(text[start - 1]))) {
        return {};
    }
    const std::string_view token = text.substr(start, end - start);
    const auto* const prefix = std::find_if(layout.prefixes.begin(), layout.prefixes.end(),
            [&](std::string_view p) { return !p.empty() && token.substr(0, p.size()) == p; });
    if (prefix == layout.prefixes.end()) {
        return {};
    }
    const std::string_view body = token.substr(prefix->size());
    if (body.size() < layout.min_body || body.size() > layout.max_body
            || !std::all_of(body.begin(), body.end(), layout.body_char)) {
        return {};
    }
    if (kind == TokenKind::SlackToken && !slack_body_valid(body)) {
        return {};
    }
    if (reject_test_numbers && is_placeholder_token(body)) {
        return {};
    }
    Candidate candidate;
    candidate.start = start;
    candidate.assign_tail(token);
    candidate.ok = true;
    return candidate;
}

Candidate extract_private_key(std::string_view text, size_t end) noexcept {
    for (const std::string_view header : kKeyHeaders) {
        if (!ends_with(text, end, header)) {
            continue;
        }
        // "-----BEGIN " + type + "-----"
        const std::string_view type = header.substr(11, header.size() - 16);
        Candidate candidate;
        candidate.start = end - header.size();
        candidate.assign_tail(type);
        candidate.key_len = candidate.len;
        candidate.ok = true;
        return candidate;
    }
    return {};
}

BodyRead read_key_body(std::string_view after, bool final, Candidate& candidate) noexcept {
    const BodyRead short_read = final ? BodyRead::Done : BodyRead::NeedMore;
    size_t i = 0;
    if (!skip_armour(after, final, i)) {
        return short_read;
    }
    bool separated = false;
    for (; i < after.size(); ++i) {
        const int brk = line_break_at(after, i);
        if (brk < 0) {
            return short_read;
        }
        if (brk > 0) {
            i += static_cast<size_t>(brk) - 1;
            continue;
        }
        if (after[i] == ' ' || after[i] == '\t') {
            continue;  // keys pasted on one line with spaces for line breaks
        }
        if (!is_base64(after[i])) {
            return BodyRead::Done;  // '=' padding, "-----END", or something else
        }
        if ((!separated && !candidate.push(':')) || !candidate.push(after[i])) {
            return BodyRead::Done;
        }
        separated = true;
    }
    return candidate.len == kMaxValueLen ? BodyRead::Done : short_read;
}

bool jwt_header_valid(std::string_view header) noexcept {
    std::array<char, kMaxJwtHeaderBytes> decoded{};
    size_t n = 0;
    uint32_t bits = 0;
    int bit_count = 0;
    for (const char c : header) {
        const int v = base64url_value(c);
        if (v < 0) {
            return false;
        }
        bits = (bits << 6) | static_cast<uint32_t>(v);
        bit_count += 6;
        if (bit_count >= 8) {
            bit_count -= 8;
            if (n == decoded.size()) {
                return false;  // longer headers are not checked
            }
            decoded[n++] = static_cast<char>((bits >> bit_count) & 0xFF);
        }
    }
    const std::string_view json(decoded.data(), n);
    if (json.size() < 2 || json.substr(0, 2) != "{\"") {
        return false;
    }
    for (const char c : json) {
        const auto byte = static_cast<unsigned char>(c);
        if ((byte < 0x20 && !is_space(c)) || byte > 0x7e) {
            return false;
        }
    }
    const size_t last = json.find_last_not_of(" \t\r\n");
    return json[last] == '}' && json.find("\"alg\"") != std::string_view::npos;
}

Candidate extract_jwt_header(std::string_view text, size_t end) noexcept {
    if (end < 4 || end > text.size() || text[end - 4] != '.' || text.substr(end - 3, 3) != "eyJ") {
        return {};
    }
    const size_t dot = end - 4;
    size_t start = dot;
    while (start > 0 && is_base64url(text[start - 1])) {
        --start;
    }
    if (start > 0 && (is_word(text[start - 1]) || text[start - 1] == '.')) {
        return {};
    }
    const std::string_view header = text.substr(start, dot - start);
    if (header.substr(0, 3) != "eyJ" || !jwt_header_valid(header)) {
        return {};
    }
    Candidate candidate;
    candidate.start = start;
    candidate.ok = true;
    return candidate;
}

Candidate extract_jwt(std::string_view text, size_t end, bool header_seen) noexcept {
    if (end == 0 || end > text.size() || (end < text.size() && jwt_char(text[end]))) {
        return {};
    }
    std::array<size_t, 2> dots{};
    size_t dot_count = 0;
    size_t start = end;
    while (start > 0 && jwt_char(text[start - 1])) {
        --start;
        if (text[start] == '.') {
            if (dot_count == dots.size()) {
                return {};  // a fourth part: JWE or something else
            }
            dots[dot_count++] = start;
        }
    }
    if (dot_count == 0) {
        return {};
    }
    const size_t signature = end - dots[0] - 1;
    if (signature != 0 && signature < kMinJwtSignature) {
        return {};
    }
    if (start > 0) {
        if (is_word(text[start - 1]) || dot_count != 2) {
            return {};
        }
        const std::string_view header = text.substr(start, dots[1] - start);
        const std::string_view payload = text.substr(dots[1] + 1, dots[0] - dots[1] - 1);
        if (header.substr(0, 3) != "eyJ" || payload.size() < 4 || payload.substr(0, 3) != "eyJ"
                || !jwt_header_valid(header)) {
            return {};
        }
    } else if (!header_seen) {
        return {};
    }
    Candidate candidate;
    candidate.start = start;
    candidate.assign_tail(text.substr(start, end - start));
    candidate.ok = true;
    return candidate;
}

Candidate extract_password(std::string_view text, size_t end, bool reject_test_numbers) noexcept {
    if (end == 0 || end > text.size()) {
        return {};
    }
    if (end < text.size() && (text[end] == '"' || text[end] == '\'')) {
        // A bare value may end at the closing quote of an enclosing string ("db?pwd=x").
        const Candidate quoted = extract_quoted_password(text, end, text[end], reject_test_numbers);
        return quoted.ok ? quoted : extract_bare_password(text, end, reject_test_numbers);
    }
    if (end < text.size() && !is_value_terminator(text[end])) {
        return {};
    }
    return extract_bare_password(text, end, reject_test_numbers);
}

Candidate extract_marker(std::string_view text, size_t end) noexcept {
    if (end == 0 || end > text.size()
            || (end < text.size()
                    && (is_word(text[end]) || text[end] == '/' || text[end] == '-'))) {
        return {};
    }
    size_t run = end;
    while (run > 0 && caveat_char(text[run - 1]) && end - run <= kMaxValueLen * 2) {
        --run;
    }
    const std::string_view word = text.substr(run, end - run);
    const size_t caveats = word.find("//");
    const std::string_view base = word.substr(0, caveats);
    for (const MarkerForm& form : kMarkerForms) {
        if (base != form.last_word || !ends_with(text, run, form.before)) {
            continue;
        }
        const size_t start = run - form.before.size();
        if (start > 0 && is_word(text[start - 1])) {
            return {};
        }
        if (caveats != std::string_view::npos && word.size() == caveats + 2) {
            return {};  // "SECRET//" with nothing after it
        }
        Candidate candidate;
        candidate.start = start;
        candidate.assign_tail(text.substr(start, end - start));
        candidate.ok = true;
        return candidate;
    }
    return {};
}

Candidate extract_literal(
        std::string_view text, size_t end, std::string_view literal, bool caseless) noexcept {
    if (literal.empty() || end > text.size() || end < literal.size()) {
        return {};
    }
    const size_t start = end - literal.size();
    const std::string_view seen = text.substr(start, literal.size());
    if (caseless ? !equals_caseless(seen, literal) : seen != literal) {
        return {};
    }
    if (is_word(literal.front()) && start > 0 && is_word(text[start - 1])) {
        return {};
    }
    if (is_word(literal.back()) && end < text.size() && is_word(text[end])) {
        return {};
    }
    Candidate candidate;
    candidate.start = start;
    candidate.assign_tail(literal);
    candidate.ok = true;
    return candidate;
}

}  // namespace exfiltap::detectors
