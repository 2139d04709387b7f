#include "detectors/secret_validators.h"

#include <ostream>
#include <string>
#include <string_view>

#include <gtest/gtest.h>

namespace exfiltap::detectors {
namespace {

// Every token, key and password below is random or made up for these tests.

struct SecretCase {
    std::string_view text;
    std::string_view expected;  // the value, or "" when nothing must be found
    size_t end = 0;             // where the value ends; 0: the end of `text`
};

// gtest finds its printer hook by this name.
void PrintTo(  // NOLINT(readability-identifier-naming)
        const SecretCase& c, std::ostream* os) {
    *os << '"' << c.text << '"';
}

size_t end_of(const SecretCase& c) {
    return c.end != 0 ? c.end : c.text.size();
}

void expect_value(const Candidate& candidate, std::string_view expected) {
    EXPECT_EQ(candidate.ok, !expected.empty());
    if (candidate.ok) {
        EXPECT_EQ(candidate.view(), expected);
    }
}

// ---------------------------------------------------------------------------------------------
// Tokens

struct TokenCase {
    TokenKind kind;
    SecretCase c;
};

void PrintTo(  // NOLINT(readability-identifier-naming)
        const TokenCase& t, std::ostream* os) {
    PrintTo(t.c, os);
}

class ExtractTokenTest : public ::testing::TestWithParam<TokenCase> {};

TEST_P(ExtractTokenTest, ReadsTokenEndingThere) {
    const TokenCase& t = GetParam();
    expect_value(extract_token(t.kind, t.c.text, end_of(t.c), true), t.c.expected);
}

constexpr std::string_view kAzureKey =
        "8/OHXCWwi+oGwodM+qTdF7LYQoRd6CpbxTmIiseAVKI5nM/J/MLaMc490Wa9zTozhH5buwf9B8pHeEIxsZr0WA==";
constexpr std::string_view kGithubPat =
        "github_pat_mE4lBYOvfZ8UzDzV8fUkki_bjL5DZPjN0MEQ7wjJJibaZUPgHV7iB3m03nbqnsGpWLuqIA1id6Vw5DQ"
        "L05";

INSTANTIATE_TEST_SUITE_P(Accepted, ExtractTokenTest,
        ::testing::Values(
                TokenCase{TokenKind::AwsAccessKeyId,
                        {"aws_access_key_id = AKIA6EDT4SYWB5WKH7DN", "AKIA6EDT4SYWB5WKH7DN"}},
                TokenCase{TokenKind::AwsAccessKeyId,
                        {"\"ASIASIPZZ7FK4ZRI3R2W\",", "ASIASIPZZ7FK4ZRI3R2W", 21}},
                TokenCase{TokenKind::GoogleApiKey,
                        {"key=AIzaWDtkwtDDb_xHKas1VOqg6YYZYn9ZhyiA4uo",
                                "AIzaWDtkwtDDb_xHKas1VOqg6YYZYn9ZhyiA4uo"}},
                TokenCase{TokenKind::SlackToken,
                        {"SLACK=xoxb-2847561930-6184729305817-vMdgaKjIg8xNbe3nNyjOq9wM",
                                "xoxb-2847561930-6184729305817-vMdgaKjIg8xNbe3nNyjOq9wM"}},
                TokenCase{TokenKind::StripeSecretKey,
                        {"Bearer sk_live_xEhh2FDEEtfjgVvVqE1SkHbn",
                                "sk_live_xEhh2FDEEtfjgVvVqE1SkHbn"}},
                TokenCase{TokenKind::AzureStorageKey,
                        {"AccountName=x;AccountKey=8/OHXCWwi+oGwodM+qTdF7LYQoRd6CpbxTmIiseAVKI5n"
                         "M/J/MLaMc490Wa9zTozhH5buwf9B8pHeEIxsZr0WA==;EndpointSuffix=core",
                                kAzureKey.substr(24), 113}},
                TokenCase{TokenKind::GithubToken,
                        {"token ghp_CZ7Uw9xfogoEmvnEN5N1aE6PwZPf1Qh6yYTW",
                                "ghp_CZ7Uw9xfogoEmvnEN5N1aE6PwZPf1Qh6yYTW"}},
                TokenCase{TokenKind::GithubPat, {kGithubPat, kGithubPat.substr(29)}},
                TokenCase{TokenKind::GitlabPat,
                        {"PRIVATE-TOKEN: glpat-1qtc4xatws8phP9nhFyJ",
                                "glpat-1qtc4xatws8phP9nhFyJ"}}));

INSTANTIATE_TEST_SUITE_P(NearMisses, ExtractTokenTest,
        ::testing::Values(
                TokenCase{TokenKind::AwsAccessKeyId, {"AKIA6EDT4SYWB5WKH7D", ""}},    // short
                TokenCase{TokenKind::AwsAccessKeyId, {"AKIA6EDT4SYWB5WKH7DNQ", ""}},  // long
                TokenCase{TokenKind::AwsAccessKeyId, {"AKIA6EDT4SYWB5WKH7D1", ""}},   // '1'
                TokenCase{TokenKind::AwsAccessKeyId, {"XAKIA6EDT4SYWB5WKH7DN", ""}},  // glued
                TokenCase{TokenKind::AwsAccessKeyId, {"AKIAIOSFODNN7EXAMPLE", ""}},   // docs
                TokenCase{TokenKind::AwsAccessKeyId, {"AKIAAAAAAAAAAAAAAAAA", ""}},   // filler
                TokenCase{TokenKind::AwsAccessKeyId, {"AKIABCDEFGHIJKLMNOPQ", ""}},   // sequence
                TokenCase{TokenKind::GoogleApiKey, {"AIzaWDtkwtDDb_xHKas1VOqg6YYZYn9ZhyiA4u", ""}},
                TokenCase{TokenKind::SlackToken, {"xoxb-your-token-here-please", ""}},
                TokenCase{TokenKind::SlackToken, {"xoxb-2847561930--vMdgaKjIg8xNbe3nNy", ""}},
                TokenCase{TokenKind::StripeSecretKey, {"sk_live_xEhh2FDEEtfjgVvVqE1SkHb", ""}},
                TokenCase{TokenKind::StripeSecretKey, {"my_sk_live_xEhh2FDEEtfjgVvVqE1SkHbn", ""}},
                TokenCase{TokenKind::AzureStorageKey,
                        {"AccountKey=8/OHXCWwi+oGwodM+qTdF7LYQoRd6CpbxTmIiseAVKI5nM/J/MLaMc490Wa9z"
                         "TozhH5buwf9B8pHeEIxsZr0W==",
                                ""}},
                TokenCase{TokenKind::GithubToken, {"ghp_CZ7Uw9xfogoEmvnEN5N1aE6PwZPf1Qh6yYT", ""}},
                TokenCase{TokenKind::GithubToken, {"ghp_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", ""}},
                TokenCase{TokenKind::GitlabPat, {"glpat-1qtc4xatws8phP9nhFy", ""}}));

TEST(TokenClassTest, MapsKindsToClasses) {
    EXPECT_EQ(token_class(TokenKind::AwsAccessKeyId), ContentClass::CloudToken);
    EXPECT_EQ(token_class(TokenKind::AzureStorageKey), ContentClass::CloudToken);
    EXPECT_EQ(token_class(TokenKind::GithubPat), ContentClass::VcsToken);
    EXPECT_EQ(token_class(TokenKind::GitlabPat), ContentClass::VcsToken);
}

TEST(ExtractTokenTest, KeepsDocumentationKeyWhenNotRejecting) {
    EXPECT_TRUE(extract_token(TokenKind::AwsAccessKeyId, "AKIAIOSFODNN7EXAMPLE", 20, false).ok);
}

// ---------------------------------------------------------------------------------------------
// Private keys

class ExtractPrivateKeyTest : public ::testing::TestWithParam<SecretCase> {};

TEST_P(ExtractPrivateKeyTest, NamesTheKeyType) {
    const Candidate candidate = extract_private_key(GetParam().text, end_of(GetParam()));
    expect_value(candidate, GetParam().expected);
    EXPECT_EQ(candidate.key(), candidate.view());
}

INSTANTIATE_TEST_SUITE_P(Headers, ExtractPrivateKeyTest,
        ::testing::Values(SecretCase{"-----BEGIN RSA PRIVATE KEY-----", "RSA PRIVATE KEY"},
                SecretCase{"x\n-----BEGIN PRIVATE KEY-----", "PRIVATE KEY"},
                SecretCase{"-----BEGIN EC PRIVATE KEY-----", "EC PRIVATE KEY"},
                SecretCase{"-----BEGIN OPENSSH PRIVATE KEY-----", "OPENSSH PRIVATE KEY"},
                SecretCase{"-----BEGIN ENCRYPTED PRIVATE KEY-----", "ENCRYPTED PRIVATE KEY"},
                SecretCase{"-----BEGIN PGP PRIVATE KEY BLOCK-----", "PGP PRIVATE KEY BLOCK"},
                SecretCase{"-----BEGIN PUBLIC KEY-----", ""},
                SecretCase{"-----BEGIN CERTIFICATE-----", ""},
                SecretCase{"-----BEGIN RSA PRIVATE KEY----", ""}));

struct BodyCase {
    std::string_view after;
    bool final;
    BodyRead read;
    std::string_view value;
};

void PrintTo(  // NOLINT(readability-identifier-naming)
        const BodyCase& c, std::ostream* os) {
    *os << '"' << c.after << '"';
}

class ReadKeyBodyTest : public ::testing::TestWithParam<BodyCase> {};

TEST_P(ReadKeyBodyTest, AppendsTheFirstBodyCharacters) {
    Candidate candidate = extract_private_key("-----BEGIN EC PRIVATE KEY-----", 30);
    ASSERT_TRUE(candidate.ok);

    EXPECT_EQ(read_key_body(GetParam().after, GetParam().final, candidate), GetParam().read);
    EXPECT_EQ(candidate.view(), GetParam().value);
}

INSTANTIATE_TEST_SUITE_P(Bodies, ReadKeyBodyTest,
        ::testing::Values(BodyCase{"\nMHcCAQEEIBkXo3v\n-----END", false, BodyRead::Done,
                                  "EC PRIVATE KEY:MHcCAQEEIBkXo3v"},
                BodyCase{"\\nMHcCAQEEIBk\\nXo3v\\n-----END", false, BodyRead::Done,
                        "EC PRIVATE KEY:MHcCAQEEIBkXo3v"},
                BodyCase{"\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,00FF\n\nMHcCAQ=", false,
                        BodyRead::Done, "EC PRIVATE KEY:MHcCAQ"},
                BodyCase{"\nMHcCAQEEIBkX", false, BodyRead::NeedMore, "EC PRIVATE KEY"},
                BodyCase{"\nMHcCAQEEIBkX", true, BodyRead::Done, "EC PRIVATE KEY:MHcCAQEEIBkX"},
                BodyCase{"\r\nProc-Ty", false, BodyRead::NeedMore, "EC PRIVATE KEY"},
                BodyCase{"\n-----END EC PRIVATE KEY-----", false, BodyRead::Done, "EC PRIVATE KEY"},
                BodyCase{"\nMHcCAQEEIBkXo3vQzJ1fUcC8dD0eYp4nW2mLhA5sT7uVbE9xKqRgHo3tZ6yNcM", false,
                        BodyRead::Done,
                        "EC PRIVATE KEY:MHcCAQEEIBkXo3vQzJ1fUcC8dD0eYp4nW2mLhA5sT7uVbE9xK"}));

// ---------------------------------------------------------------------------------------------
// JWT

constexpr std::string_view kJwt =
        "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiI0NzExIiwibmFtZSI6IkFuYSJ9."
        "CsUZgXOPB8Lk6RBxU5z5gZuDM7FGc4KIznqB8T-yheA";

TEST(JwtHeaderTest, AcceptsHeaderNamingAlg) {
    EXPECT_TRUE(jwt_header_valid("eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9"));
}

TEST(JwtHeaderTest, RejectsHeaderWithoutAlg) {
    EXPECT_FALSE(jwt_header_valid("eyJ0eXAiOiJKV1QifQ"));  // {"typ":"JWT"}
}

TEST(JwtHeaderTest, RejectsNonBase64url) {
    EXPECT_FALSE(jwt_header_valid("eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9+"));
}

TEST(JwtHeaderTest, ChecksHeaderWhenPayloadBegins) {
    const std::string text = "Authorization: Bearer " + std::string(kJwt.substr(0, 40));
    const Candidate header = extract_jwt_header(text, text.size());
    EXPECT_TRUE(header.ok);
    EXPECT_EQ(header.start, 22U);
}

class ExtractJwtTest : public ::testing::TestWithParam<SecretCase> {};

TEST_P(ExtractJwtTest, ReadsWholeVisibleToken) {
    expect_value(extract_jwt(GetParam().text, end_of(GetParam()), false), GetParam().expected);
}

INSTANTIATE_TEST_SUITE_P(Tokens, ExtractJwtTest,
        ::testing::Values(
                SecretCase{"Bearer eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiI0NzExIiwibmFtZS"
                           "I6IkFuYSJ9.CsUZgXOPB8Lk6RBxU5z5gZuDM7FGc4KIznqB8T-yheA",
                        kJwt.substr(kJwt.size() - 64)},
                SecretCase{"t=eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiI0NzExIn0.",
                        "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiI0NzExIn0."},
                SecretCase{
                        "x eyJ0eXAiOiJKV1QifQ.eyJzdWIiOiI0NzExIn0.CsUZgXOPB8Lk6RBxU5z5gZuDM7", ""},
                SecretCase{
                        "x eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiI0NzExIn0.CsUZgXOP", ""},
                SecretCase{
                        "x eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.e30.CsUZgXOPB8Lk6RBxU5z5gZuD", ""},
                SecretCase{"x a.eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiI0NzExIn0.", ""},
                SecretCase{"x xeyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiI0NzExIn0.", ""},
                SecretCase{"eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiI0NzExIn0.", ""}));

TEST(ExtractJwtTest, AcceptsCutTokenOnlyAfterItsHeader) {
    // The window starts inside the payload: only the caller knows the header was valid.
    const std::string text = "IiwibmFtZSI6IkFuYSJ9.CsUZgXOPB8Lk6RBxU5z5gZuDM7FGc4KIznqB8T-yheA ";
    const size_t end = text.size() - 1;

    EXPECT_FALSE(extract_jwt(text, end, false).ok);
    const Candidate cut = extract_jwt(text, end, true);
    ASSERT_TRUE(cut.ok);
    EXPECT_EQ(cut.start, 0U);
    EXPECT_EQ(cut.view(), std::string_view(text).substr(end - 64, 64));
}

// ---------------------------------------------------------------------------------------------
// Passwords

class ExtractPasswordTest : public ::testing::TestWithParam<SecretCase> {};

// The value ends before the text's last character (the terminator) unless `end` says
// otherwise; end == size means the value runs to the end of the data.
TEST_P(ExtractPasswordTest, ReadsAssignedValue) {
    const SecretCase& c = GetParam();
    const size_t end = c.end != 0 ? c.end : c.text.size() - 1;
    expect_value(extract_password(c.text, end, true), c.expected);
}

INSTANTIATE_TEST_SUITE_P(Accepted, ExtractPasswordTest,
        ::testing::Values(SecretCase{"password=Xk9#mQ2v\n", "Xk9#mQ2v"},
                SecretCase{"DB_PASSWORD=Xk9#mQ2v&next=1", "Xk9#mQ2v", 20},
                SecretCase{"  pwd: 'Tr0ub4dor&3'\n", "Tr0ub4dor&3", 19},
                SecretCase{"{\"password\": \"Xk9#mQ2v\"}", "Xk9#mQ2v", 22},
                SecretCase{"{\"secret\":\"s3cr3t-Value\"}", "s3cr3t-Value", 23},
                SecretCase{R"({\"passwd\":\"Xk9#mQ2v\"})", "Xk9#mQ2v", 23},
                SecretCase{"api_key = a81bc7f3e9d2 ", "a81bc7f3e9d2"},
                SecretCase{"user=bob&pass=Xk9mQ2vz&x", "Xk9mQ2vz", 22},
                SecretCase{"Server=db;Pwd=Xk9mQ2vz;", "Xk9mQ2vz"},
                SecretCase{"password := \"Xk9#mQ2v\"", "Xk9#mQ2v", 21},
                SecretCase{"'apikey' => 'a81bc7f3e9d2',", "a81bc7f3e9d2", 25},
                SecretCase{"PASSWORD=$ecretPass1", "$ecretPass1", 20}));

INSTANTIATE_TEST_SUITE_P(Rejected, ExtractPasswordTest,
        ::testing::Values(SecretCase{"password=abc12\n", ""},  // short
                SecretCase{"password="
                           "Qm7kQm7kQm7kQm7kQm7kQm7kQm7kQm7kQm7kQm7kQm7kQm7kQm7kQm7kQm7kQm7kQ\n",
                        ""},                                   // 65 characters
                SecretCase{"bypass=Xk9#mQ2v\n", ""},           // not the key
                SecretCase{"PWD=/home/alice/src\n", ""},       // a working directory
                SecretCase{"passport=Xk9#mQ2v\n", ""},         // not the key
                SecretCase{"password=********\n", ""},         // masked
                SecretCase{"password: <password>\n", ""},      // placeholder
                SecretCase{"password=${DB_PASSWORD}\n", ""},   // variable
                SecretCase{"password=$DB_PASSWORD\n", ""},     // variable
                SecretCase{"password: {{ vault_pw }}\n", ""},  // template (quoted? no)
                SecretCase{"password=os.environ['PW']\n", "", 20},
                SecretCase{"password = settings.DB_PASS\n", ""},    // code
                SecretCase{"password=changeme\n", ""},              // sample
                SecretCase{"\"password\": \"passw0rd\"", "", 21},   // sample
                SecretCase{"\"password\": \"two words\"", "", 22},  // white space
                SecretCase{"password\n=Xk9#mQ2v\n", ""},            // line break
                SecretCase{"password_hash=Xk9#mQ2v\n", ""}));       // other key

TEST(ExtractPasswordTest, KeepsSamplePasswordWhenNotRejecting) {
    EXPECT_TRUE(extract_password("password=changeme\n", 17, false).ok);
}

TEST(ExtractPasswordTest, StartsAtTheKey) {
    EXPECT_EQ(extract_password("x; password=Xk9#mQ2v\n", 20, true).start, 3U);
}

// ---------------------------------------------------------------------------------------------
// Classification markers and literals

class ExtractMarkerTest : public ::testing::TestWithParam<SecretCase> {};

TEST_P(ExtractMarkerTest, ReadsMarkerWithCaveats) {
    const SecretCase& c = GetParam();
    const size_t end = c.end != 0 ? c.end : c.text.size() - 1;
    expect_value(extract_marker(c.text, end), c.expected);
}

INSTANTIATE_TEST_SUITE_P(Markers, ExtractMarkerTest,
        ::testing::Values(SecretCase{"TOP SECRET\n", "TOP SECRET"},
                SecretCase{"//SECRET//NOFORN\n", ""},  // caveats without a marker
                SecretCase{" SECRET//NOFORN\n", "SECRET//NOFORN"},
                SecretCase{"(TOP SECRET//SI//ORCON) text", "TOP SECRET//SI//ORCON", 22},
                SecretCase{"Label: STRICTLY CONFIDENTIAL.", "STRICTLY CONFIDENTIAL"},
                SecretCase{"CONFIDENTIAL ", "CONFIDENTIAL"},
                SecretCase{"INTERNAL USE ONLY\n", "INTERNAL USE ONLY"},
                SecretCase{"INTERNAL ONLY\n", "INTERNAL ONLY"},
                SecretCase{"RESTRICTED\n", "RESTRICTED"}, SecretCase{"CONFIDENTIALITY ", "", 15},
                SecretCase{"NONCONFIDENTIAL ", ""}, SecretCase{"JWT_SECRET ", ""},
                SecretCase{"NOT-RESTRICTED ", ""}, SecretCase{"SECRET// ", ""},
                SecretCase{"ONLY ", ""}));

TEST(ExtractLiteralTest, MatchesWholeWordIgnoringCase) {
    expect_value(extract_literal("the Falcon plan", 10, "falcon", true), "falcon");
}

TEST(ExtractLiteralTest, RejectsWordContinuingBefore) {
    EXPECT_FALSE(extract_literal("gyrfalcon plan", 9, "falcon", true).ok);
}

TEST(ExtractLiteralTest, RespectsCaseWhenAsked) {
    EXPECT_FALSE(extract_literal("acme internal", 13, "ACME INTERNAL", false).ok);
    EXPECT_TRUE(extract_literal("ACME INTERNAL", 13, "ACME INTERNAL", false).ok);
}

}  // namespace
}  // namespace exfiltap::detectors
