#include "detectors/content_patterns.h"

#include <array>
#include <span>
#include <utility>

#include <hs.h>

#include "detectors/char_class.h"
#include "detectors/secret_validators.h"

namespace exfiltap::detectors {

namespace {

using Names = std::span<const std::string_view>;

// Value patterns end one byte after the value (a character the value cannot contain), so
// the match end alone fixes where the value ends and no start-of-match flag is needed; the
// validator walks back from there. Each has an end-of-data twin (`\z`, reported by
// hs_close_stream()). No wide bounded repeats: a prefix anchors the match and `+` runs
// carry it to the terminator; the validators check lengths.
struct ValuePattern {
    std::string_view body;        // the value part
    std::string_view terminator;  // one character after it; "" when the value ends itself
    uint8_t variant = 0;
};

constexpr ValuePattern kCardPatterns[] = {
        {R"(\d(?:[ \-+]?\d){11,18})", "[^0-9]"},
};
constexpr ValuePattern kSsnPatterns[] = {
        {R"(\d{3}-\d{2}-\d{4})", "[^0-9]"},
        {R"(\d{3} \d{2} \d{4})", "[^0-9]"},
};
constexpr ValuePattern kIbanPatterns[] = {
        {R"([A-Z]{2}\d\d(?: ?[0-9A-Z])+)", "[^0-9A-Za-z_]"},
};
constexpr ValuePattern kPrivateKeyPatterns[] = {
        {"-----BEGIN (?:(?:RSA|EC|DSA|OPENSSH|ENCRYPTED) )?PRIVATE KEY-----", ""},
        {"-----BEGIN PGP PRIVATE KEY BLOCK-----", ""},
};
constexpr ValuePattern kCloudTokenPatterns[] = {
        {"A[KS]IA[0-9A-Z]+", "[^0-9A-Za-z_]", static_cast<uint8_t>(TokenKind::AwsAccessKeyId)},
        {R"(AIza[0-9A-Za-z_\-]+)", R"([^0-9A-Za-z_\-])",
                static_cast<uint8_t>(TokenKind::GoogleApiKey)},
        {R"(xox[abprs]-[0-9A-Za-z\-]+)", R"([^0-9A-Za-z_\-])",
                static_cast<uint8_t>(TokenKind::SlackToken)},
        {"sk_live_[0-9A-Za-z]+", "[^0-9A-Za-z_]", static_cast<uint8_t>(TokenKind::StripeSecretKey)},
        {"AccountKey=[0-9A-Za-z+/]+==", "[^0-9A-Za-z+/=]",
                static_cast<uint8_t>(TokenKind::AzureStorageKey)},
};
constexpr ValuePattern kVcsTokenPatterns[] = {
        {"gh[pousr]_[0-9A-Za-z]+", "[^0-9A-Za-z_]", static_cast<uint8_t>(TokenKind::GithubToken)},
        {"github_pat_[0-9A-Za-z_]+", "[^0-9A-Za-z_]", static_cast<uint8_t>(TokenKind::GithubPat)},
        {R"(glpat-[0-9A-Za-z_\-]+)", R"([^0-9A-Za-z_\-])",
                static_cast<uint8_t>(TokenKind::GitlabPat)},
};
constexpr ValuePattern kJwtPatterns[] = {
        {R"(eyJ[0-9A-Za-z_\-]*\.eyJ[0-9A-Za-z_\-]*\.[0-9A-Za-z_\-]*)", R"([^0-9A-Za-z_\-.])"},
};
// Caseless. Key, optional quote (JSON-escaped too), separator, value; the quoted forms end
// at their closing quote.
constexpr std::string_view kPasswordHead =
        R"((?:password|passwd|pwd|pass|secret|api_key|apikey)\\?["']?[ \t]*(?::=|=>|[:=])[ \t]*)";
constexpr ValuePattern kPasswordPatterns[] = {
        {R"([^\s"'&;,]+)", R"([\s"'&;,])"},
        {R"(\\?"[^"\r\n]+)", "\""},
        {R"(\\?'[^'\r\n]+)", "'"},
};
constexpr ValuePattern kMarkerPatterns[] = {
        {"(?:TOP SECRET|SECRET|STRICTLY CONFIDENTIAL|CONFIDENTIAL|INTERNAL USE ONLY|INTERNAL "
         "ONLY|RESTRICTED)(?://[A-Z0-9][A-Z0-9/\\-]*)?",
                R"([^0-9A-Za-z_/\-])"},
};

// Built-in keywords: a match within the keyword window before or after a value makes its
// confidence High. They must not be part of the value itself.
constexpr std::string_view kCardKeywords[] = {"card", "credit", "debit", "visa", "mastercard",
        "amex", "american express", "discover", "diners", "maestro", "unionpay", "exp", "cvv",
        "cvc", "pan", "card number", "payment"};
constexpr std::string_view kSsnKeywords[] = {
        "ssn", "social security", "ss#", "soc sec", "tax id", "taxpayer id", "itin"};
constexpr std::string_view kIbanKeywords[] = {"iban", "bic", "swift", "bank", "account", "acct",
        "sepa", "beneficiary", "transfer", "kontonummer"};
constexpr std::string_view kPrivateKeyKeywords[] = {"ssh", "id_rsa", "id_ecdsa", "id_ed25519",
        "pem", "openssl", "gpg", "pgp", "keyfile", "key file", "private_key", "privatekey", "tls",
        "ssl"};
constexpr std::string_view kCloudTokenKeywords[] = {"aws", "access key", "access_key", "accesskey",
        "secret", "api key", "api_key", "apikey", "token", "credential", "google", "gcp", "slack",
        "stripe", "azure", "connectionstring"};
constexpr std::string_view kVcsTokenKeywords[] = {
        "github", "gitlab", "token", "git", "pat", "oauth", "bearer", "ci_job", "credential"};
constexpr std::string_view kJwtKeywords[] = {"bearer", "authorization", "jwt", "token", "id_token",
        "access_token", "refresh_token", "session"};
constexpr std::string_view kPasswordKeywords[] = {"user", "login", "username", "credential", "auth",
        "account", "database", "jdbc", "host", "smtp", "ldap"};
constexpr std::string_view kMarkerKeywords[] = {"classification", "classified", "declassify",
        "declassified", "derived from", "handling", "dissemination", "caveat"};

Names values_of(ContentClass cls, std::span<const ValuePattern>& out) {
    switch (cls) {
    case ContentClass::PaymentCard:
        out = kCardPatterns;
        return kCardKeywords;
    case ContentClass::UsSsn:
        out = kSsnPatterns;
        return kSsnKeywords;
    case ContentClass::Iban:
        out = kIbanPatterns;
        return kIbanKeywords;
    case ContentClass::PrivateKey:
        out = kPrivateKeyPatterns;
        return kPrivateKeyKeywords;
    case ContentClass::CloudToken:
        out = kCloudTokenPatterns;
        return kCloudTokenKeywords;
    case ContentClass::VcsToken:
        out = kVcsTokenPatterns;
        return kVcsTokenKeywords;
    case ContentClass::Jwt:
        out = kJwtPatterns;
        return kJwtKeywords;
    case ContentClass::PasswordAssignment:
        out = kPasswordPatterns;
        return kPasswordKeywords;
    case ContentClass::ClassificationMarker:
        out = kMarkerPatterns;
        return kMarkerKeywords;
    case ContentClass::Custom:
    case ContentClass::Edm:
    case ContentClass::SourceCode:  // tokens and marks of their own: add_source_code()
    case ContentClass::Document:    // formats and labels: add_document()
        break;
    }
    out = {};
    return {};
}

void append_escaped(std::string& out, std::string_view literal) {
    static constexpr char kHex[] = "0123456789abcdef";
    for (const char c : literal) {
        if (is_alnum(c)) {
            out += c;
        } else {
            const auto byte = static_cast<unsigned char>(c);
            out += "\\x";
            out += kHex[byte >> 4];
            out += kHex[byte & 0x0f];
        }
    }
}

// A keyword as a caseless regex literal. Keywords of three characters or fewer ("pan",
// "exp", "ssn") must not continue a word, or "company" and "unexpected" would count.
std::string keyword_regex(std::string_view keyword) {
    std::string out;
    if (keyword.size() <= 3 && is_alnum(keyword.front())) {
        out += "(?:^|[^a-z0-9])";
    }
    append_escaped(out, keyword);
    return out;
}

// The terminated pattern and its end-of-data twin (or the pattern alone when the value
// ends itself).
void add_value(std::vector<PatternSource>& out, std::string_view head, const ValuePattern& value,
        unsigned flags, PatternInfo info) {
    std::string body(head);
    body += value.body;
    info.variant = value.variant;
    if (value.terminator.empty()) {
        info.terminated = false;
        out.push_back({body, flags, info});
        return;
    }
    info.terminated = true;
    out.push_back({body + std::string(value.terminator), flags, info});
    info.terminated = false;
    out.push_back({body + "\\z", flags, info});
}

// A case-sensitive regex matching `literal` exactly.
std::string literal_regex(std::string_view literal) {
    std::string out;
    append_escaped(out, literal);
    return out;
}

// A configured literal: whole word at a word-character end (checked by the terminator and
// extract_literal()), as written otherwise.
void add_literal(PatternSet& set, std::string_view literal, unsigned flags, PatternInfo info) {
    info.kind = PatternKind::Literal;
    info.literal = static_cast<uint16_t>(set.literals.size());
    set.literals.emplace_back(literal);
    const ValuePattern value{"", is_word(literal.back()) ? "[^0-9A-Za-z_]" : ""};
    add_value(set.main, literal_regex(literal), value, flags, info);
}

Error empty_keyword(ContentClass cls) {
    return make_error("content detector: class " + std::string(content_class_name(cls))
            + " has an empty keyword; remove it from the configuration");
}

// Code tokens: each ends at one byte (a terminator or a fixed last character), so Hyperscan
// reports it once. Chosen to be frequent in C, C++, Java, C#, Go, Python, JavaScript and
// shell, and rare in prose, tables and markup. Every one carries a literal of three
// characters or more and no word-boundary assertion or leading blank run: with those (and
// two-character operators) the set cost 2.8 times as much to scan on plain text.
constexpr std::string_view kCodeTokens[] = {
        R"(;\r?\n)",          // a statement ends a line
        R"(\) ?\{)",          // a block after a condition or head
        R"(#include ?[<"])",  // C and C++ includes
        R"(\n(?:import|from|package|using) [\w.]+[ ;\r\n])",
        R"((?:def|func) [A-Za-z_]\w*\()",  // function heads
        R"(function ?\w*\()",
        R"((?:class|struct|interface|enum|trait|impl) [A-Za-z_]\w* ?[:{(<\r\n])",
        R"((?:public|private|protected|static|const|final) [\w<>\[\]*&]+ \w+ ?[(;=])",
        R"(return [^;\n]*;)", R"((?:if|while|for|switch|catch) ?\()",
        R"(\n[ \t]*(?://|/\*|\*/))",  // comment lines
        R"(\n#!/(?:usr/)?bin/)",      // a script's first line
};

// What a licence header looks like before the organisation's name, on one line.
constexpr std::string_view kLicenceHead = R"((?:[Cc]opyright|COPYRIGHT|\([Cc]\)|\xc2\xa9)[^\r\n]*)";

Status add_source_code(PatternSet& set, const ContentConfig& config) {
    // One expression for every token: they are only counted, and as separate patterns they
    // pushed the database past a size at which Hyperscan scanned plain text 1.7 times as slowly
    // (4 MB: 9.5 ms instead of 5.6 ms; merged, 5.6 ms, as without the class).
    std::string tokens;
    for (const std::string_view token : kCodeTokens) {
        tokens += (tokens.empty() ? "(?:" : "|(?:") + std::string(token) + ")";
    }
    set.main.push_back(
            {tokens, 0, {ContentClass::SourceCode, PatternKind::CodeToken, false, 0, 0, 0}});
    for (const std::string& name : config.source_code.organisations) {
        if (name.empty()) {
            return make_error(
                    "content detector: an empty organisation name is configured; "
                    "remove it from content.source_code.organisations");
        }
        PatternInfo info{ContentClass::SourceCode, PatternKind::Literal, false, 0, 0, 0};
        info.literal = static_cast<uint16_t>(set.literals.size());
        set.literals.push_back(name);
        const ValuePattern value{"", is_word(name.back()) ? "[^0-9A-Za-z_]" : ""};
        add_value(set.main, std::string(kLicenceHead) + literal_regex(name), value, 0, info);
    }
    for (const std::string& name : config.source_code.project_names) {
        if (name.empty()) {
            return make_error(
                    "content detector: an empty project name is configured; remove "
                    "it from content.source_code.project_names");
        }
        add_literal(set, name, 0, {ContentClass::SourceCode, PatternKind::Literal, false, 0, 0, 0});
    }
    return Ok{};
}

// Format markers of documents: a PDF header, a compound file's signature, the part names an
// OOXML zip lists in plain text, ODF's stored mimetype entry, RTF's opening group.
constexpr std::pair<DocFormat, std::string_view> kDocFormats[] = {
        {DocFormat::Pdf, R"(%PDF-[12]\.\d)"},
        {DocFormat::Ole2, R"(\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1)"},
        {DocFormat::Docx, R"(word/document\.xml)"},
        {DocFormat::Xlsx, R"(xl/workbook\.xml)"},
        {DocFormat::Pptx, R"(ppt/presentation\.xml)"},
        {DocFormat::Odf, R"(mimetypeapplication/vnd\.oasis\.opendocument\.)"},
        {DocFormat::Rtf, R"(\{\\rtf1)"},
};

// A Microsoft sensitivity label's metadata key (in PDF XMP and OOXML custom properties).
constexpr std::string_view kSensitivityLabel = R"(MSIP_Label_[0-9a-fA-F]{8}-)";

void add_document(PatternSet& set) {
    for (const auto& [format, expression] : kDocFormats) {
        PatternInfo info{ContentClass::Document, PatternKind::DocFormat, false, 0, 0, 0};
        info.variant = static_cast<uint8_t>(format);
        set.main.push_back({std::string(expression), 0, info});
    }
    set.main.push_back({std::string(kSensitivityLabel), 0,
            {ContentClass::Document, PatternKind::DocLabel, false, 0, 0, 0}});
}

// Value patterns, extra patterns and keywords of one enabled built-in class.
Status add_class(PatternSet& set, ContentClass cls, const ContentConfig& config) {
    if (cls == ContentClass::SourceCode) {
        return add_source_code(set, config);
    }
    if (cls == ContentClass::Document) {
        add_document(set);
        return Ok{};
    }
    std::span<const ValuePattern> values;
    const Names keywords = values_of(cls, values);
    const bool caseless = cls == ContentClass::PasswordAssignment;
    const std::string_view head = caseless ? kPasswordHead : std::string_view();
    for (const ValuePattern& value : values) {
        add_value(set.main, head, value, caseless ? HS_FLAG_CASELESS : 0,
                {cls, PatternKind::Value, false, 0, 0, 0});
    }
    if (cls == ContentClass::Jwt) {
        set.main.push_back(
                {R"(eyJ[0-9A-Za-z_\-]+\.eyJ)", 0, {cls, PatternKind::JwtHeader, false, 0, 0, 0}});
    }
    if (cls == ContentClass::ClassificationMarker) {
        for (const std::string& marker : config.classification_markers) {
            if (marker.empty()) {
                return make_error(
                        "content detector: an empty classification marker is configured; "
                        "remove it from content.classification_markers");
            }
            add_literal(set, marker, 0, {cls, PatternKind::Literal, false, 0, 0, 0});
        }
    }

    const PatternInfo keyword_info{cls, PatternKind::Keyword, false, 0, 0, 0};
    const std::vector<std::string>& configured = config.classes[static_cast<size_t>(cls)].keywords;
    for (const std::string& keyword : configured) {
        if (keyword.empty()) {
            return empty_keyword(cls);
        }
        set.main.push_back({keyword_regex(keyword), HS_FLAG_CASELESS, keyword_info});
    }
    if (configured.empty()) {
        for (const std::string_view keyword : keywords) {
            set.main.push_back({keyword_regex(keyword), HS_FLAG_CASELESS, keyword_info});
        }
    }
    set.has_keywords[static_cast<size_t>(cls)] = true;
    return Ok{};
}

// Custom keywords go to the main database, custom regexes to the start-of-match one.
Status add_custom_rules(PatternSet& set, const std::vector<CustomRule>& rules) {
    for (size_t r = 0; r < rules.size(); ++r) {
        const CustomRule& rule = rules[r];
        if (!rule.enabled) {
            continue;
        }
        const PatternInfo info{ContentClass::Custom, PatternKind::Literal, false, 0,
                static_cast<uint16_t>(r + 1), 0};
        for (const std::string& keyword : rule.keywords) {
            if (keyword.empty()) {
                return make_error("content detector: custom rule '" + rule.name
                        + "' has an empty keyword; remove it from the configuration");
            }
            add_literal(set, keyword, HS_FLAG_CASELESS, info);
        }
        if (rule.keywords.empty() && !rule.regex.empty()) {
            PatternInfo regex_info = info;
            regex_info.kind = PatternKind::CustomRegex;
            set.som.push_back({rule.regex, HS_FLAG_SOM_LEFTMOST, regex_info});
        }
    }
    return Ok{};
}

}  // namespace

std::string_view doc_format_name(DocFormat format) noexcept {
    static constexpr std::array<std::string_view, kDocFormatCount> kNames = {
            "pdf", "ole2", "docx", "xlsx", "pptx", "odf", "rtf"};
    const auto index = static_cast<size_t>(format);
    return index < kNames.size() ? kNames[index] : std::string_view("unknown");
}

Result<PatternSet> collect_patterns(const ContentConfig& config) {
    PatternSet set;
    if (config.custom.size() > kMaxCustomRules) {
        return make_error("content detector: " + std::to_string(config.custom.size())
                + " custom rules configured, at most " + std::to_string(kMaxCustomRules)
                + " are supported; merge rules (a rule takes several keywords)");
    }
    for (size_t c = 0; c < kContentClassCount; ++c) {
        const auto cls = static_cast<ContentClass>(c);
        if (!config.classes[c].enabled || cls == ContentClass::Custom || cls == ContentClass::Edm) {
            continue;
        }
        if (Status added = add_class(set, cls, config); !added) {
            return Error{added.error()};
        }
    }
    if (config.classes[static_cast<size_t>(ContentClass::Custom)].enabled) {
        if (Status added = add_custom_rules(set, config.custom); !added) {
            return Error{added.error()};
        }
    }
    if (set.main.empty() && set.som.empty() && !config.edm_enabled()) {
        return make_error(
                "content detector: every content class is disabled; enable one or turn content "
                "inspection off");
    }
    return set;
}

}  // namespace exfiltap::detectors
