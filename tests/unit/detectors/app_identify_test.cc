#include "detectors/app_identify.h"

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include <gtest/gtest.h>

#include "tests/unit/detectors/capture_payloads.h"

namespace exfiltap::detectors {
namespace {

using namespace std::string_view_literals;

std::span<const uint8_t> bytes(std::string_view s) {
    return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

struct IdentifyCase {
    std::string_view label;
    uint16_t port;
    std::string_view to_server;
    std::string_view to_client;
    AppProto want;
    bool need_more;
};

class IdentifyTcpTest : public ::testing::TestWithParam<IdentifyCase> {};

TEST_P(IdentifyTcpTest, IdentifiesProtocol) {
    const IdentifyCase& c = GetParam();
    bool need_more = !c.need_more;
    EXPECT_EQ(identify_tcp(c.port, bytes(c.to_server), bytes(c.to_client), need_more), c.want)
            << app_proto_name(
                       identify_tcp(c.port, bytes(c.to_server), bytes(c.to_client), need_more));
    EXPECT_EQ(need_more, c.need_more);
}

const std::string kLongTarget = "GET /" + std::string(100, 'a') + " HTTP/1.1\r\n";
const std::string kLongVersionCut =
        "POST /api/proxy?url=http%3A%2F%2Fvv.video.qq.com%2Fgetvinfo HTTP";

INSTANTIATE_TEST_SUITE_P(Signatures, IdentifyTcpTest,
        ::testing::Values(IdentifyCase{"HttpGet", 80, "GET /index.html HTTP/1.1\r\n", "",
                                  AppProto::Http, false},
                IdentifyCase{"HttpPropfindOnOtherPort", 5005, "PROPFIND /dav/ HTTP/1.1\r\n", "",
                        AppProto::Http, false},
                IdentifyCase{"HttpConnect", 3128, "CONNECT example.com:443 HTTP/1.1\r\n", "",
                        AppProto::Http, false},
                IdentifyCase{"HttpMethodPrefixNeedsMore", 80, "GE", "", AppProto::Http, true},
                IdentifyCase{"HttpTargetNeedsMore", 9000, "POST /upl", "", AppProto::Unknown, true},
                IdentifyCase{"LowerCaseMethodIsNotHttp", 9000, "get / HTTP/1.1\r\n", "",
                        AppProto::Unknown, false},
                IdentifyCase{"UnknownMethodIsNotHttp", 9000, "FETCH / HTTP/1.1\r\n", "",
                        AppProto::Unknown, false},
                IdentifyCase{"WrongVersionIsNotHttp", 9000, "GET /x FOO/1.0\r\n", "",
                        AppProto::Unknown, false},
                IdentifyCase{"LongTargetDecidesAtPeekLimit", 9000, kLongTarget, "", AppProto::Http,
                        false},
                IdentifyCase{
                        "VersionCutAtPeekLimit", 9000, kLongVersionCut, "", AppProto::Http, false},
                IdentifyCase{"HttpToSshPort", 22, "GET / HTTP/1.1\r\n", "SSH-2.0-OpenSSH_8.7\r\n",
                        AppProto::Http, false},
                IdentifyCase{"SshServerBannerWaitsForClient", 22, "", "SSH-2.0-OpenSSH_8.7\r\n",
                        AppProto::Ssh, true},
                IdentifyCase{
                        "SshClientBanner", 2222, "SSH-2.0-PuTTY\r\n", "", AppProto::Ssh, false},
                IdentifyCase{"SshServerBannerThenOtherClientBytes", 2222, "hello\r\n",
                        "SSH-2.0-OpenSSH\r\n", AppProto::Ssh, false},
                IdentifyCase{"TlsClientHello", 8444,
                        "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"sv, "", AppProto::Tls, false},
                IdentifyCase{"TlsRecordHeaderNeedsMore", 9443, "\x16\x03"sv, "", AppProto::Unknown,
                        true},
                IdentifyCase{"TlsServerHelloFromServer", 9443, "",
                        "\x16\x03\x03\x00\x5a\x02\x00\x00\x56"sv, AppProto::Tls, false},
                IdentifyCase{"TlsApplicationDataIsNotHello", 9443, "\x17\x03\x03\x00\x20\x01"sv, "",
                        AppProto::Unknown, false},
                IdentifyCase{"TlsBadVersion", 9443, "\x16\x03\x09\x00\x20\x01"sv, "",
                        AppProto::Unknown, false},
                IdentifyCase{"Smb2", 4455, "\x00\x00\x00\x68\xfeSMB\x40\x00"sv, "", AppProto::Smb,
                        false},
                IdentifyCase{"Smb1", 4455, "\x00\x00\x00\x2f\xffSMB\x72\x00"sv, "", AppProto::Smb,
                        false},
                IdentifyCase{"NetbiosWithoutSmb", 4455, "\x00\x00\x00\x2f\xfeXYZ"sv, "",
                        AppProto::Unknown, false},
                IdentifyCase{"LoneZeroByteNeedsMore", 445, "\x00"sv, "", AppProto::Smb, true},
                IdentifyCase{"RdpConnectionRequest", 3390,
                        "\x03\x00\x00\x2c\x27\xe0\x00\x00\x00\x00\x00"sv, "", AppProto::Rdp, false},
                IdentifyCase{"TpktWithoutConnectionRequest", 3390,
                        "\x03\x00\x00\x2c\x27\xf0\x00\x00"sv, "", AppProto::Unknown, false},
                IdentifyCase{"SmtpByGreetingText", 2500, "", "220 mx.example.com ESMTP Postfix\r\n",
                        AppProto::Smtp, false},
                IdentifyCase{"FtpByGreetingText", 2121, "", "220 (vsFTPd 3.0.3)\r\n", AppProto::Ftp,
                        false},
                IdentifyCase{"SmtpByPort", 587, "", "220 welcome\r\n", AppProto::Smtp, false},
                IdentifyCase{"FtpByPort", 21, "", "220 welcome\r\n", AppProto::Ftp, false},
                IdentifyCase{"PlainGreetingWaitsForCommand", 3000, "", "220 welcome\r\n",
                        AppProto::Unknown, true},
                IdentifyCase{"PlainGreetingThenEhlo", 3000, "EHLO client\r\n", "220 welcome\r\n",
                        AppProto::Smtp, false},
                IdentifyCase{"PlainGreetingThenLowerCaseHelo", 3000, "helo client\r\n",
                        "220 welcome\r\n", AppProto::Smtp, false},
                IdentifyCase{"PlainGreetingThenUser", 3000, "USER bob\r\n", "220 welcome\r\n",
                        AppProto::Ftp, false},
                IdentifyCase{"PlainGreetingThenAuthTls", 3000, "AUTH TLS\r\n", "220 welcome\r\n",
                        AppProto::Ftp, false},
                IdentifyCase{"ClientCommandBeatsGreetingText", 25, "USER bob\r\n",
                        "220 mail ESMTP\r\n", AppProto::Ftp, false},
                IdentifyCase{"CutGreetingWaits", 21, "", "220 ProF", AppProto::Ftp, true},
                IdentifyCase{"Pop3Greeting", 1110, "", "+OK POP3 ready\r\n", AppProto::Pop3, false},
                IdentifyCase{"ImapGreeting", 1143, "", "* OK IMAP4rev1 ready\r\n", AppProto::Imap,
                        false},
                IdentifyCase{"ImapPreauthGreeting", 1143, "", "* PREAUTH logged in\r\n",
                        AppProto::Imap, false},
                IdentifyCase{
                        "ImapGreetingPrefixNeedsMore", 1143, "", "* O", AppProto::Unknown, true},
                IdentifyCase{"NothingYetUsesPort", 443, "", "", AppProto::Tls, true},
                IdentifyCase{"NoSignatureUsesPort", 110, "xyz", "abc", AppProto::Pop3, false},
                IdentifyCase{
                        "NoSignatureOnOtherPort", 5555, "hello", "world", AppProto::Unknown, false},
                IdentifyCase{"ClientBytesWithoutSignatureDecide", 5555, "hello", "",
                        AppProto::Unknown, false},
                IdentifyCase{"ServerBytesWithoutSignatureDecide", 3306, "", "J\x00\x00\x00\x0a"sv,
                        AppProto::Unknown, false}),
        [](const ::testing::TestParamInfo<IdentifyCase>& info) {
            return std::string(info.param.label);
        });

TEST(IdentifyTcpTest, LooksOnlyAtPeekBytes) {
    std::string client(kIdentifyPeekBytes, 'x');
    client += "GET / HTTP/1.1\r\n";
    bool need_more = true;
    EXPECT_EQ(identify_tcp(8080, bytes(client), {}, need_more), AppProto::Http);
    EXPECT_FALSE(need_more);
}

struct PortCase {
    uint16_t port;
    AppProto want;
};

class ProtoByPortTest : public ::testing::TestWithParam<PortCase> {};

TEST_P(ProtoByPortTest, MapsWellKnownPorts) {
    EXPECT_EQ(proto_by_port(GetParam().port), GetParam().want);
}

INSTANTIATE_TEST_SUITE_P(Ports, ProtoByPortTest,
        ::testing::Values(PortCase{80, AppProto::Http}, PortCase{8080, AppProto::Http},
                PortCase{8000, AppProto::Http}, PortCase{443, AppProto::Tls},
                PortCase{8443, AppProto::Tls}, PortCase{25, AppProto::Smtp},
                PortCase{587, AppProto::Smtp}, PortCase{465, AppProto::Smtp},
                PortCase{2525, AppProto::Smtp}, PortCase{21, AppProto::Ftp},
                PortCase{110, AppProto::Pop3}, PortCase{143, AppProto::Imap},
                PortCase{22, AppProto::Ssh}, PortCase{3389, AppProto::Rdp},
                PortCase{445, AppProto::Smb}, PortCase{139, AppProto::Smb},
                PortCase{53, AppProto::Dns}, PortCase{0, AppProto::Unknown},
                PortCase{3306, AppProto::Unknown}, PortCase{65535, AppProto::Unknown}),
        [](const ::testing::TestParamInfo<PortCase>& info) {
            return "Port" + std::to_string(info.param.port);
        });

// Captures: each TCP flow with payload is identified the way the worker does it (the first
// kIdentifyPeekBytes of each direction, asking again after each segment, at most 4
// segments, then the last answer).
AppProto identify_flow(const test::CaptureFlow& flow) {
    std::vector<uint8_t> client;
    std::vector<uint8_t> server;
    AppProto proto = AppProto::Unknown;
    size_t segments = 0;
    for (const test::PayloadChunk& chunk : flow.chunks) {
        std::vector<uint8_t>& side = chunk.to_server ? client : server;
        const size_t add = std::min(chunk.bytes.size(), kIdentifyPeekBytes - side.size());
        side.insert(
                side.end(), chunk.bytes.begin(), chunk.bytes.begin() + static_cast<ptrdiff_t>(add));
        bool need_more = false;
        proto = identify_tcp(flow.server_port, client, server, need_more);
        if (!need_more || ++segments == 4) {
            break;
        }
    }
    return proto;
}

struct CaptureCase {
    std::string_view file;  // relative to the shared folder
    uint16_t server_port;   // 0: every flow
    AppProto want;
    size_t flows;  // flows with payload to that port
};

class IdentifyCaptureTest : public ::testing::TestWithParam<CaptureCase> {};

TEST_P(IdentifyCaptureTest, IdentifiesEveryFlow) {
    const CaptureCase& c = GetParam();
    const std::filesystem::path path = test::shared_capture_dir() / c.file;
    if (!std::filesystem::exists(path)) {
        if (test::shared_captures_required()) {
            FAIL() << "EXFILTAP_REQUIRE_SHARED=1 but " << path << " is missing";
        }
        GTEST_SKIP() << "shared capture " << path
                     << " not found; set EXFILTAP_SHARED_DIR to the shared folder";
    }
    std::vector<test::CaptureFlow> flows;
    std::string error;
    ASSERT_TRUE(test::read_capture_flows(path, flows, error)) << error;
    size_t matched = 0;
    for (const test::CaptureFlow& flow : flows) {
        if (flow.proto != 6 || flow.chunks.empty()) {
            continue;
        }
        const bool in_scope = c.server_port == 0 ? true
                : c.server_port == 1             ? flow.server_port != 21
                                                 : flow.server_port == c.server_port;
        if (!in_scope) {
            continue;
        }
        ++matched;
        EXPECT_EQ(identify_flow(flow), c.want)
                << "flow " << flow.client_port << " -> " << flow.server_port;
    }
    EXPECT_EQ(matched, c.flows);
}

// server_port 1 selects the FTP data flows (every flow not to port 21).
INSTANTIATE_TEST_SUITE_P(Captures, IdentifyCaptureTest,
        ::testing::Values(CaptureCase{"pcaps/zeek_http-putty-upload.pcap", 0, AppProto::Http, 2},
                CaptureCase{"pcaps/zeek_http-post-large.pcap", 0, AppProto::Http, 2},
                CaptureCase{"pcaps/sv_http-multipart-post-ipv6.pcap", 0, AppProto::Http, 1},
                CaptureCase{"pcaps/sv_http-post-gzip-body.pcap", 0, AppProto::Http, 1},
                CaptureCase{"pcaps/ndpi_http-basic-auth.pcap", 0, AppProto::Http, 1},
                CaptureCase{"pcaps/zeek_http-deeply-nested-mime.pcap", 0, AppProto::Http, 1},
                CaptureCase{"pcaps/zeek_http-zip-download.pcap", 0, AppProto::Http, 1},
                CaptureCase{"pcaps/zeek_http-qinq-vid0.pcap", 0, AppProto::Http, 1},
                CaptureCase{"pcaps/zeek_http-vlan-qinqinq.pcap", 0, AppProto::Http, 1},
                CaptureCase{"pcaps/zeek_tcp-handshake-reorder.pcap", 0, AppProto::Http, 1},
                CaptureCase{"pcaps/zeek_http-to-ssh-port-nsec.pcap", 0, AppProto::Http, 1},
                CaptureCase{"pcaps/zeek_http-to-ssh-port-usec.pcap", 0, AppProto::Http, 1},
                CaptureCase{"pcaps/ndpi_mixed-1kxun.pcap", 80, AppProto::Http, 82},
                CaptureCase{"pcaps/sv_smtp-zip-attachment.pcap", 0, AppProto::Smtp, 1},
                CaptureCase{"pcaps/sv_smtp-text-attachment.pcap", 0, AppProto::Smtp, 1},
                CaptureCase{"pcaps/zeek_smtp-attachment-msg-ipv6.pcap", 0, AppProto::Smtp, 1},
                CaptureCase{"cases/c14_pan_formats_smtp.pcap", 0, AppProto::Smtp, 1},
                CaptureCase{"pcaps/sv_ftp-upload-passive.pcap", 21, AppProto::Ftp, 1},
                CaptureCase{"pcaps/sv_ftp-upload-passive.pcap", 1, AppProto::Unknown, 3},
                CaptureCase{"pcaps/sv_ftp-active-stor-exe-pdf.pcap", 21, AppProto::Ftp, 1},
                CaptureCase{"pcaps/sv_ftp-active-stor-exe-pdf.pcap", 1, AppProto::Unknown, 4},
                CaptureCase{"pcaps/zeek_ftp-bruteforce.pcap", 0, AppProto::Ftp, 30},
                CaptureCase{"pcaps/zeek_ftp-ipv6.pcap", 21, AppProto::Ftp, 1},
                CaptureCase{"pcaps/zeek_ftp-ipv6.pcap", 1, AppProto::Unknown, 5},
                CaptureCase{"cases/c22a_ftp_guessing_external.pcap", 0, AppProto::Ftp, 3},
                CaptureCase{"pcaps/ndpi_imap-login.pcap", 0, AppProto::Imap, 1},
                CaptureCase{"pcaps/zeek_pop3-auth-plain.pcap", 0, AppProto::Pop3, 5},
                CaptureCase{"pcaps/zeek_smb2-write-small.pcap", 0, AppProto::Smb, 1},
                CaptureCase{"pcaps/zeek_smb2-write-1.5MB.pcap", 0, AppProto::Smb, 1},
                CaptureCase{"pcaps/sv_smb1-write-eicar-segmented.pcap", 0, AppProto::Smb, 1},
                CaptureCase{"pcaps/zeek_tls-sni-small.pcap", 0, AppProto::Tls, 1},
                CaptureCase{"pcaps/ndpi_tls-upload-signal.pcap", 443, AppProto::Tls, 14},
                CaptureCase{"pcaps/zeek_ssh-guessing.pcap", 0, AppProto::Ssh, 11},
                CaptureCase{"pcaps/zeek_rdp-to-tls.pcap", 0, AppProto::Rdp, 2},
                CaptureCase{"pcaps/zeek_mysql-ccn-lookalike.pcap", 0, AppProto::Unknown, 1}),
        [](const ::testing::TestParamInfo<CaptureCase>& info) {
            std::string name;
            for (const char ch : info.param.file.substr(info.param.file.find('/') + 1)) {
                if (std::isalnum(static_cast<unsigned char>(ch)) != 0) {
                    name += ch;
                }
            }
            return name + "Port" + std::to_string(info.param.server_port);
        });

}  // namespace
}  // namespace exfiltap::detectors
