// Validators of the secret and marker classes: private keys, cloud and VCS tokens, JWTs,
// password assignments and classification markers, plus configured literals. Pure functions
// on byte spans, safe on any thread, no allocation. The extract_*() functions read the value
// ending just before `end` as described in validators.h.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "detectors/content_types.h"
#include "detectors/validators.h"

namespace exfiltap::detectors {

/// Token layouts of the cloud_token and vcs_token classes.
enum class TokenKind : uint8_t {
    AwsAccessKeyId,   // AKIA or ASIA + 16 of [A-Z2-7]
    GoogleApiKey,     // AIza + 35 of [0-9A-Za-z_-]
    SlackToken,       // xoxa-, xoxb-, xoxp-, xoxr-, xoxs- + digits-...-secret
    StripeSecretKey,  // sk_live_ + 24..99 of [0-9A-Za-z]
    AzureStorageKey,  // AccountKey= + 86 base64 characters + "=="
    GithubToken,      // ghp_, gho_, ghu_, ghs_, ghr_ + 36 of [0-9A-Za-z]
    GithubPat,        // github_pat_ + 82 of [0-9A-Za-z_]
    GitlabPat,        // glpat- + 20 of [0-9A-Za-z_-]
};
inline constexpr size_t kTokenKindCount = 8;

/// cloud_token or vcs_token.
ContentClass token_class(TokenKind kind) noexcept;

/// Reads a token of `kind` ending just before `end`: the token must fill a whole run of its
/// alphabet (no letter, digit or '_' touching it) and match the prefix, length and character
/// rules of its kind. With `reject_test_numbers`, documentation examples (AWS's "...EXAMPLE"
/// ids) and filler (fewer than six distinct characters, or mostly an ascending sequence)
/// are rejected. Value: the token (an Azure key: its last kMaxValueLen characters).
Candidate extract_token(
        TokenKind kind, std::string_view text, size_t end, bool reject_test_numbers) noexcept;

/// Reads a private key header ending just before `end`: "-----BEGIN [RSA |EC |DSA |OPENSSH |
/// ENCRYPTED ]PRIVATE KEY-----" or "-----BEGIN PGP PRIVATE KEY BLOCK-----". Value: the type
/// ("RSA PRIVATE KEY", "PRIVATE KEY", "PGP PRIVATE KEY BLOCK", ...), which is also the dedup
/// key (key_len): one finding per key type and flow direction.
Candidate extract_private_key(std::string_view text, size_t end) noexcept;

enum class BodyRead : uint8_t {
    NeedMore,  // `after` ended before the body could be read; call again with more bytes
    Done,
};

/// Appends ':' and the first base64 characters of a key body to `candidate` (up to
/// kMaxValueLen in all). `after` starts right after the header; line breaks (also the
/// escaped "\n" of JSON strings) and armour header lines ("Proc-Type: ...", "Version: ...")
/// are skipped. `final` says no more bytes will come. Leaves the value alone when no body
/// character follows.
BodyRead read_key_body(std::string_view after, bool final, Candidate& candidate) noexcept;

/// True when `header` (base64url, no padding) decodes to a printable JSON object that
/// names "alg": the header of a JWS.
bool jwt_header_valid(std::string_view header) noexcept;

/// Checks the header of a JWT whose payload part has just begun: text[end - 4] is the '.'
/// after the header and text[end - 3, end) is "eyJ". The header must be whole inside `text`
/// and valid (jwt_header_valid). `start` is the header's first character.
Candidate extract_jwt_header(std::string_view text, size_t end) noexcept;

/// Reads a JWT (three base64url parts: header "eyJ...", payload "eyJ...", signature of 0 or
/// at least 16 characters) ending just before `end`. When the token starts inside `text`,
/// the header is checked with jwt_header_valid(). When it reaches back to the start of
/// `text` (longer than the caller can see), it is accepted only if `header_seen` (the
/// caller validated this token's header earlier) and the visible part has at most two '.'.
/// Value: the token, or its last kMaxValueLen characters.
Candidate extract_jwt(std::string_view text, size_t end, bool header_seen) noexcept;

/// Reads a password assignment whose value ends just before `end`: a key (password, passwd,
/// pwd, pass, secret, api_key, apikey; any case; not continuing a word, though "DB_" or
/// "x-" prefixes are fine), optionally quoted, then '=', ':', ":=" or "=>" (spaces or tabs
/// around it), then a value of 6..64 characters without white space, quoted ('...' or
/// "...", JSON-escaped quotes too) or bare (a bare value ends at white space, a quote, '&',
/// ';' or ','). Placeholders are always rejected: one character repeated ("********"),
/// "<...>", "${...}", "{{...}}", "%...%", "$NAME", "%(name)s", code ("os.environ[...]",
/// "config.db_pass"). With `reject_test_numbers`, so are sample and default passwords
/// ("changeme", "passw0rd", "123456", ...). Value: the password.
Candidate extract_password(std::string_view text, size_t end, bool reject_test_numbers) noexcept;

/// Reads a built-in classification marker ending just before `end`: TOP SECRET, SECRET,
/// CONFIDENTIAL, STRICTLY CONFIDENTIAL, INTERNAL ONLY, INTERNAL USE ONLY, RESTRICTED, in
/// upper case as banner markings are written, as whole words, optionally followed by "//"
/// caveats ("SECRET//NOFORN", "TOP SECRET//SI//ORCON"; caveats end at the first character
/// other than A-Z, 0-9, '/', '-'). Value: the marker with its caveats.
Candidate extract_marker(std::string_view text, size_t end) noexcept;

/// Checks a configured literal (organisation marker, custom keyword) that ends just before
/// `end`: `literal` matches there (ignoring case when `caseless`) and, if it starts with a
/// word character, is not preceded by one. Value: the literal as configured (its last
/// kMaxValueLen characters when longer).
Candidate extract_literal(
        std::string_view text, size_t end, std::string_view literal, bool caseless) noexcept;

}  // namespace exfiltap::detectors
