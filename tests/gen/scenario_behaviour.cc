// The behaviour captures: for every behaviour detector one capture that must raise it and a
// near miss that must not, each in a file of its own:
//
//   exfiltap-gen --scenario behaviour --out DIR/bh  ->  DIR/bh-<detector>-alert.pcap and
//                                                       DIR/bh-<detector>-near.pcap
//
// Inside hosts are in 10.20.0.0/16, outside hosts in 198.51.100.0/24 and 203.0.113.0/24.
// Every flow carries real protocol bytes (HTTP PUT and multipart POST, FTP control and data,
// SMB2 over NetBIOS, SMTP with a MIME attachment, TLS, SSH, DNS). Several thresholds are far
// too large for a small capture by default; the cases are sized for the lowered values that
// tests/integration/behaviour_test.cc sets by config (given with each case below). Byte
// counts called "client bytes" are TCP payload bytes the client sends, exactly.
//
// Assets the tests configure: 10.20.9.10 is the only file server (role file-server);
// 10.20.7.7 is an application server without that role.

#include <algorithm>
#include <array>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "tests/gen/capture.h"
#include "tests/gen/content.h"
#include "tests/gen/pcap_writer.h"
#include "tests/gen/scenario_common.h"
#include "tests/gen/scenarios.h"
#include "tests/gen/tcp_session.h"
#include "tests/gen/udp_flow.h"

namespace exfiltap::gen {
namespace {

// Payload bytes, both directions, of the baseline spike flow: twice the workers' 256 KiB
// progress step, so the flow's last packet reports all of it.
constexpr size_t kBaselineSpikeBytes = 2 * 262144;

IpAddr v4(uint8_t a, uint8_t b, uint8_t c, uint8_t d) {
    return IpAddr::v4(a, b, c, d);
}

// ---- byte helpers ----

void le16(std::string& out, uint32_t v) {
    out += static_cast<char>(v & 0xff);
    out += static_cast<char>((v >> 8) & 0xff);
}

void le32(std::string& out, uint32_t v) {
    le16(out, v & 0xffff);
    le16(out, v >> 16);
}

void le64(std::string& out, uint64_t v) {
    le32(out, static_cast<uint32_t>(v));
    le32(out, static_cast<uint32_t>(v >> 32));
}

void be16(std::string& out, uint32_t v) {
    out += static_cast<char>((v >> 8) & 0xff);
    out += static_cast<char>(v & 0xff);
}

void be24(std::string& out, uint32_t v) {
    out += static_cast<char>((v >> 16) & 0xff);
    be16(out, v & 0xffff);
}

void be32(std::string& out, uint32_t v) {
    be16(out, v >> 16);
    be16(out, v & 0xffff);
}

std::string random_bytes(Rng& rng, size_t n) {
    std::string out(n, '\0');
    for (char& c : out) {
        c = static_cast<char>(rng.next() & 0xff);
    }
    return out;
}

uint32_t crc32(std::string_view data) {
    uint32_t crc = 0xffffffffU;
    for (const char ch : data) {
        crc ^= static_cast<uint8_t>(ch);
        for (int k = 0; k < 8; ++k) {
            crc = (crc >> 1) ^ (0xedb88320U & (0U - (crc & 1U)));
        }
    }
    return ~crc;
}

std::string base64(std::string_view data, size_t line_len) {
    static constexpr std::string_view kAlphabet =
            "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    std::string out;
    size_t on_line = 0;
    for (size_t i = 0; i < data.size(); i += 3) {
        const uint32_t b0 = static_cast<uint8_t>(data[i]);
        const uint32_t b1 = i + 1 < data.size() ? static_cast<uint8_t>(data[i + 1]) : 0;
        const uint32_t b2 = i + 2 < data.size() ? static_cast<uint8_t>(data[i + 2]) : 0;
        const uint32_t v = b0 << 16 | b1 << 8 | b2;
        out += kAlphabet[(v >> 18) & 63];
        out += kAlphabet[(v >> 12) & 63];
        out += i + 1 < data.size() ? kAlphabet[(v >> 6) & 63] : '=';
        out += i + 2 < data.size() ? kAlphabet[v & 63] : '=';
        on_line += 4;
        if (on_line >= line_len) {
            out += "\r\n";
            on_line = 0;
        }
    }
    if (on_line != 0) {
        out += "\r\n";
    }
    return out;
}

// Lower-case RFC 4648 base32 of n random characters (5 bits each).
std::string base32_label(Rng& rng, size_t n) {
    static constexpr std::string_view kAlphabet = "abcdefghijklmnopqrstuvwxyz234567";
    std::string out;
    for (size_t i = 0; i < n; ++i) {
        out += kAlphabet[rng.below(32)];
    }
    return out;
}

// ---- archives ----

// A zip archive (PKWARE APPNOTE) holding one stored member of random (encrypted-looking)
// bytes: local file header, data, central directory, end of central directory.
std::string zip_archive(Rng& rng, std::string_view member, size_t member_bytes) {
    const std::string data = random_bytes(rng, member_bytes);
    const uint32_t crc = crc32(data);
    constexpr uint32_t kDosTime = (10u << 11) | (0u << 5);                 // 10:00:00
    constexpr uint32_t kDosDate = ((2026u - 1980u) << 9) | (3u << 5) | 2;  // 2026-03-02
    std::string out;
    le32(out, 0x04034b50);
    le16(out, 20);  // version needed
    le16(out, 0);   // flags
    le16(out, 0);   // stored
    le16(out, kDosTime);
    le16(out, kDosDate);
    le32(out, crc);
    le32(out, static_cast<uint32_t>(data.size()));
    le32(out, static_cast<uint32_t>(data.size()));
    le16(out, static_cast<uint32_t>(member.size()));
    le16(out, 0);
    out += member;
    out += data;
    const auto cd_offset = static_cast<uint32_t>(out.size());
    le32(out, 0x02014b50);
    le16(out, 0x031e);  // made by: Unix, 3.0
    le16(out, 20);
    le16(out, 0);
    le16(out, 0);
    le16(out, kDosTime);
    le16(out, kDosDate);
    le32(out, crc);
    le32(out, static_cast<uint32_t>(data.size()));
    le32(out, static_cast<uint32_t>(data.size()));
    le16(out, static_cast<uint32_t>(member.size()));
    le16(out, 0);  // extra
    le16(out, 0);  // comment
    le16(out, 0);  // disk
    le16(out, 0);  // internal attributes
    le32(out, 0100644u << 16);
    le32(out, 0);  // local header offset
    out += member;
    const auto cd_size = static_cast<uint32_t>(out.size() - cd_offset);
    le32(out, 0x06054b50);
    le16(out, 0);
    le16(out, 0);
    le16(out, 1);
    le16(out, 1);
    le32(out, cd_size);
    le32(out, cd_offset);
    le16(out, 0);
    return out;
}

// A gzip member (RFC 1952) of random bytes in stored deflate blocks (RFC 1951 BTYPE 00).
std::string gzip_file(Rng& rng, std::string_view name, size_t n) {
    const std::string data = random_bytes(rng, n);
    std::string out = {'\x1f', '\x8b', '\x08', '\x08'};  // deflate, FNAME
    le32(out, 1772445600);
    out += '\0';    // extra flags
    out += '\x03';  // Unix
    out += name;
    out += '\0';
    size_t at = 0;
    do {  // an empty file still needs one (final, empty) block
        const size_t len = std::min<size_t>(n - at, 65535);
        out += static_cast<char>(at + len == n ? 1 : 0);
        le16(out, static_cast<uint32_t>(len));
        le16(out, static_cast<uint32_t>(~len & 0xffff));
        out.append(data, at, len);
        at += len;
    } while (at < n);
    le32(out, crc32(data));
    le32(out, static_cast<uint32_t>(n));
    return out;
}

// ---- HTTP ----

std::string put_head(
        std::string_view host, std::string_view path, std::string_view type, size_t body_len) {
    return "PUT " + std::string(path) + " HTTP/1.1\r\nHost: " + std::string(host)
            + "\r\nUser-Agent: curl/8.5.0\r\nAccept: */*\r\nContent-Type: " + std::string(type)
            + "\r\nContent-Length: " + std::to_string(body_len) + "\r\n\r\n";
}

// A PUT whose head and body together are exactly client_bytes long.
std::string put_request(
        Rng& rng, std::string_view host, std::string_view path, size_t client_bytes) {
    size_t body =
            client_bytes - put_head(host, path, "application/octet-stream", client_bytes).size();
    while (put_head(host, path, "application/octet-stream", body).size() + body != client_bytes) {
        body = client_bytes - put_head(host, path, "application/octet-stream", body).size();
    }
    return put_head(host, path, "application/octet-stream", body) + binary_blob(rng, body);
}

std::string http_reply(int status, std::string_view reason) {
    return "HTTP/1.1 " + std::to_string(status) + " " + std::string(reason)
            + "\r\nServer: nginx\r\nContent-Length: 0\r\n\r\n";
}

std::string multipart_post(std::string_view host, std::string_view path, std::string_view file_name,
        std::string_view type, std::string_view file) {
    const std::string boundary = "------------------------4f2b9c6e1d8a7305";
    std::string body = "--" + boundary
            + "\r\nContent-Disposition: form-data; name=\"comment\"\r\n\r\nquarterly figures\r\n";
    body += "--" + boundary + "\r\nContent-Disposition: form-data; name=\"file\"; filename=\""
            + std::string(file_name) + "\"\r\nContent-Type: " + std::string(type) + "\r\n\r\n";
    body += file;
    body += "\r\n--" + boundary + "--\r\n";
    return "POST " + std::string(path) + " HTTP/1.1\r\nHost: " + std::string(host)
            + "\r\nUser-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 "
              "Firefox/128.0\r\nAccept: */*\r\nContent-Type: multipart/form-data; boundary="
            + boundary + "\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n"
            + body;
}

// ---- TLS ----

std::string tls_record(uint8_t type, uint16_t version, std::string_view body) {
    std::string out;
    out += static_cast<char>(type);
    be16(out, version);
    be16(out, static_cast<uint32_t>(body.size()));
    out += body;
    return out;
}

std::string tls_handshake(uint8_t type, std::string_view body) {
    std::string out;
    out += static_cast<char>(type);
    be24(out, static_cast<uint32_t>(body.size()));
    out += body;
    return out;
}

std::string tls_extension(uint16_t type, std::string_view body) {
    std::string out;
    be16(out, type);
    be16(out, static_cast<uint32_t>(body.size()));
    out += body;
    return out;
}

// A TLS 1.3 ClientHello (RFC 8446 4.1.2) offering 1.2 too, with server_name.
std::string client_hello(Rng& rng, std::string_view sni, std::string_view session_id) {
    std::string hello;
    be16(hello, 0x0303);
    hello += random_bytes(rng, 32);
    hello += static_cast<char>(session_id.size());
    hello += session_id;
    constexpr std::array<uint16_t, 8> kSuites = {
            0x1301, 0x1302, 0x1303, 0xc02b, 0xc02f, 0xc02c, 0xc030, 0xcca9};
    be16(hello, static_cast<uint32_t>(kSuites.size() * 2));
    for (const uint16_t suite : kSuites) {
        be16(hello, suite);
    }
    hello += '\x01';
    hello += '\x00';  // null compression
    std::string name_list;
    be16(name_list, static_cast<uint32_t>(sni.size() + 3));
    name_list += '\x00';  // host_name
    be16(name_list, static_cast<uint32_t>(sni.size()));
    name_list += sni;
    std::string groups;
    be16(groups, 6);
    be16(groups, 0x001d);  // x25519
    be16(groups, 0x0017);  // secp256r1
    be16(groups, 0x0018);  // secp384r1
    std::string sigalgs;
    be16(sigalgs, 8);
    be16(sigalgs, 0x0403);
    be16(sigalgs, 0x0804);
    be16(sigalgs, 0x0401);
    be16(sigalgs, 0x0503);
    std::string share;
    be16(share, 36);
    be16(share, 0x001d);
    be16(share, 32);
    share += random_bytes(rng, 32);
    const std::string extensions = tls_extension(0x0000, name_list) + tls_extension(0x000a, groups)
            + tls_extension(0x000b, std::string("\x01\x00", 2)) + tls_extension(0x000d, sigalgs)
            + tls_extension(0x0017, "")
            + tls_extension(0x002b, std::string("\x04\x03\x04\x03\x03", 5))
            + tls_extension(0x002d, std::string("\x01\x01", 2)) + tls_extension(0x0033, share);
    be16(hello, static_cast<uint32_t>(extensions.size()));
    hello += extensions;
    return tls_record(0x16, 0x0301, tls_handshake(1, hello));
}

// TLS 1.3 (RFC 8446): ServerHello with supported_versions and key_share, the compatibility
// ChangeCipherSpec, then the encrypted rest of the server's flight (EncryptedExtensions,
// Certificate, CertificateVerify, Finished) as application data records.
std::string server_hello_flight(Rng& rng, std::string_view session_id) {
    std::string hello;
    be16(hello, 0x0303);
    hello += random_bytes(rng, 32);
    hello += static_cast<char>(session_id.size());
    hello += session_id;
    be16(hello, 0x1301);  // TLS_AES_128_GCM_SHA256
    hello += '\x00';
    std::string share;
    be16(share, 0x001d);
    be16(share, 32);
    share += random_bytes(rng, 32);
    const std::string extensions =
            tls_extension(0x002b, std::string("\x03\x04", 2)) + tls_extension(0x0033, share);
    be16(hello, static_cast<uint32_t>(extensions.size()));
    hello += extensions;
    return tls_record(0x16, 0x0303, tls_handshake(2, hello)) + tls_record(0x14, 0x0303, "\x01")
            + tls_record(0x17, 0x0303, random_bytes(rng, 2410))
            + tls_record(0x17, 0x0303, random_bytes(rng, 281))
            + tls_record(0x17, 0x0303, random_bytes(rng, 53));
}

// The client's compatibility ChangeCipherSpec and its encrypted Finished.
std::string client_finished(Rng& rng) {
    return tls_record(0x14, 0x0303, "\x01") + tls_record(0x17, 0x0303, random_bytes(rng, 53));
}

// Application data records holding about n bytes of ciphertext in all.
std::string tls_app_data(Rng& rng, size_t n) {
    std::string out;
    while (n > 0) {
        const size_t len = std::min<size_t>(n, 16408);
        out += tls_record(0x17, 0x0303, random_bytes(rng, len));
        n -= len;
    }
    return out;
}

// ---- SSH ----

std::string name_list(std::string_view names) {
    std::string out;
    be32(out, static_cast<uint32_t>(names.size()));
    out += names;
    return out;
}

// One unencrypted SSH binary packet (RFC 4253 section 6): padding to a multiple of 8.
std::string ssh_packet(Rng& rng, std::string_view payload) {
    size_t padding = 8 - (5 + payload.size()) % 8;
    if (padding < 4) {
        padding += 8;
    }
    std::string out;
    be32(out, static_cast<uint32_t>(1 + payload.size() + padding));
    out += static_cast<char>(padding);
    out += payload;
    out += random_bytes(rng, padding);
    return out;
}

std::string ssh_kexinit(Rng& rng, bool client) {
    std::string payload;
    payload += '\x14';  // SSH_MSG_KEXINIT
    payload += random_bytes(rng, 16);
    payload += name_list(client ? "curve25519-sha256,ecdh-sha2-nistp256,"
                                  "diffie-hellman-group14-sha256,ext-info-c"
                                : "curve25519-sha256,ecdh-sha2-nistp256,"
                                  "diffie-hellman-group14-sha256");
    payload += name_list("ssh-ed25519,rsa-sha2-512,rsa-sha2-256");
    for (int i = 0; i < 2; ++i) {
        payload += name_list("chacha20-poly1305@openssh.com,aes128-ctr,aes256-gcm@openssh.com");
    }
    for (int i = 0; i < 2; ++i) {
        payload += name_list("hmac-sha2-256-etm@openssh.com,hmac-sha2-256");
    }
    for (int i = 0; i < 2; ++i) {
        payload += name_list("none,zlib@openssh.com");
    }
    payload += name_list("");
    payload += name_list("");
    payload += '\0';  // first_kex_packet_follows
    be32(payload, 0);
    return ssh_packet(rng, payload);
}

// ---- SMB2 over NetBIOS session service ----

constexpr uint16_t kSmbNegotiate = 0x0000;
constexpr uint16_t kSmbSessionSetup = 0x0001;
constexpr uint16_t kSmbTreeConnect = 0x0003;
constexpr uint16_t kSmbCreate = 0x0005;
constexpr uint16_t kSmbClose = 0x0006;
constexpr uint16_t kSmbRead = 0x0008;
constexpr uint16_t kSmbWrite = 0x0009;

std::string utf16le(std::string_view ascii) {
    std::string out;
    for (const char c : ascii) {
        out += c;
        out += '\0';
    }
    return out;
}

struct SmbIds {
    uint64_t message_id = 0;
    uint32_t tree_id = 0;
    uint64_t session_id = 0;
};

// NetBIOS length prefix, the 64-byte SMB2 header (MS-SMB2 2.2.1.2), then body.
std::string smb2_message(
        uint16_t command, bool response, const SmbIds& ids, std::string_view body) {
    std::string msg = "\xfeSMB";
    le16(msg, 64);
    le16(msg, 1);  // credit charge
    le32(msg, 0);  // status: success
    le16(msg, command);
    le16(msg, response ? 31 : 1);  // credits
    le32(msg, response ? 1 : 0);   // SMB2_FLAGS_SERVER_TO_REDIR
    le32(msg, 0);                  // next command
    le64(msg, ids.message_id);
    le32(msg, 0xfeff);  // process id
    le32(msg, ids.tree_id);
    le64(msg, ids.session_id);
    msg.append(16, '\0');  // signature
    msg += body;
    std::string out;
    out += '\0';
    be24(out, static_cast<uint32_t>(msg.size()));
    return out + msg;
}

class SmbConversation {
public:
    SmbConversation(TcpSession& session, Rng& rng) : session_(session), rng_(rng) {}

    void exchange(uint16_t command, std::string_view request, std::string_view response) {
        session_.pause(rng_.range(100, 600));
        session_.send(Side::kClient, smb2_message(command, false, ids_, request));
        session_.pause(rng_.range(100, 900));
        session_.send(Side::kServer, smb2_message(command, true, ids_, response));
        ++ids_.message_id;
    }

    void negotiate() {
        std::string req;
        le16(req, 36);
        le16(req, 2);  // dialects
        le16(req, 1);  // signing enabled
        le16(req, 0);
        le32(req, 0);
        req += random_bytes(rng_, 16);  // client GUID
        le64(req, 0);
        le16(req, 0x0202);
        le16(req, 0x0210);
        std::string resp;
        le16(resp, 65);
        le16(resp, 1);
        le16(resp, 0x0210);
        le16(resp, 0);
        resp += random_bytes(rng_, 16);  // server GUID
        le32(resp, 0);
        le32(resp, 8 << 20);  // max transact, read, write
        le32(resp, 8 << 20);
        le32(resp, 8 << 20);
        le64(resp, 0);
        le64(resp, 0);
        le16(resp, 128);  // security buffer offset
        le16(resp, 0);
        le32(resp, 0);
        exchange(kSmbNegotiate, req, resp);
    }

    void session_setup() {
        std::string token = "NTLMSSP";
        token += '\0';
        le32(token, 1);  // NEGOTIATE_MESSAGE
        le32(token, 0xe2088297);
        token.append(16, '\0');
        std::string req;
        le16(req, 25);
        req += '\0';
        req += '\x01';
        le32(req, 0);
        le32(req, 0);
        le16(req, 64 + 24);
        le16(req, static_cast<uint32_t>(token.size()));
        le64(req, 0);
        req += token;
        ids_.session_id = 0x0000400000000019ULL;
        std::string resp;
        le16(resp, 9);
        le16(resp, 0);
        le16(resp, 72);
        le16(resp, 0);
        exchange(kSmbSessionSetup, req, resp);
    }

    void tree_connect(std::string_view unc) {
        const std::string path = utf16le(unc);
        std::string req;
        le16(req, 9);
        le16(req, 0);
        le16(req, 64 + 8);
        le16(req, static_cast<uint32_t>(path.size()));
        req += path;
        ids_.tree_id = 5;
        std::string resp;
        le16(resp, 16);
        resp += '\x01';  // disk share
        resp += '\0';
        le32(resp, 0);
        le32(resp, 0);
        le32(resp, 0x001f01ff);
        exchange(kSmbTreeConnect, req, resp);
    }

    // CREATE of `name` (`disposition`: 1 open, 5 overwrite-if); the FileId.
    std::string create(std::string_view name, uint32_t disposition) {
        const std::string wide = utf16le(name);
        std::string req;
        le16(req, 57);
        req += '\0';   // security flags
        req += '\0';   // oplock
        le32(req, 2);  // impersonation
        le64(req, 0);
        le64(req, 0);
        le32(req, disposition == 1 ? 0x00120089 : 0x0012019f);  // desired access
        le32(req, 0x80);                                        // normal file
        le32(req, 0x7);                                         // share read, write, delete
        le32(req, disposition);
        le32(req, 0x40);  // FILE_NON_DIRECTORY_FILE
        le16(req, 64 + 56);
        le16(req, static_cast<uint32_t>(wide.size()));
        le32(req, 0);
        le32(req, 0);
        req += wide;
        std::string file_id = random_bytes(rng_, 16);
        std::string resp;
        le16(resp, 89);
        resp += '\0';
        resp += '\0';
        le32(resp, disposition == 1 ? 1 : 2);  // FILE_OPENED, FILE_CREATED
        for (int i = 0; i < 4; ++i) {
            le64(resp, 134170192000000000ULL);  // 2026-03-02 in FILETIME
        }
        le64(resp, 0);
        le64(resp, 0);
        le32(resp, 0x80);
        le32(resp, 0);
        resp += file_id;
        le32(resp, 0);
        le32(resp, 0);
        exchange(kSmbCreate, req, resp);
        return file_id;
    }

    void close(std::string_view file_id) {
        std::string close;
        le16(close, 24);
        le16(close, 0);
        le32(close, 0);
        close += file_id;
        std::string closed;
        le16(closed, 60);
        le16(closed, 0);
        le32(closed, 0);
        for (int i = 0; i < 4; ++i) {
            le64(closed, 0);
        }
        le64(closed, 0);
        le64(closed, 0);
        le32(closed, 0);
        exchange(kSmbClose, close, closed);
    }

    // CREATE (overwrite-if) of `name`, WRITEs of up to 64 KiB, CLOSE.
    void write_file(std::string_view name, std::string_view data) {
        const std::string file_id = create(name, 5);
        constexpr size_t kChunk = 65536;
        for (size_t at = 0; at < data.size(); at += kChunk) {
            const size_t len = std::min(kChunk, data.size() - at);
            std::string w;
            le16(w, 49);
            le16(w, 64 + 48);
            le32(w, static_cast<uint32_t>(len));
            le64(w, at);
            w += file_id;
            le32(w, 0);
            le32(w, 0);
            le16(w, 0);
            le16(w, 0);
            le32(w, 0);
            w += data.substr(at, len);
            std::string ok;
            le16(ok, 17);
            le16(ok, 0);
            le32(ok, static_cast<uint32_t>(len));
            le32(ok, 0);
            le16(ok, 0);
            le16(ok, 0);
            exchange(kSmbWrite, w, ok);
        }
        close(file_id);
    }

    // CREATE (open) of `name`, READs of up to 64 KiB answered with `data`, CLOSE.
    void read_file(std::string_view name, std::string_view data) {
        const std::string file_id = create(name, 1);
        constexpr size_t kChunk = 65536;
        for (size_t at = 0; at < data.size(); at += kChunk) {
            const size_t len = std::min(kChunk, data.size() - at);
            std::string r;
            le16(r, 49);
            r += '\x50';  // padding: where the response's data goes
            r += '\0';
            le32(r, static_cast<uint32_t>(len));
            le64(r, at);
            r += file_id;
            le32(r, 1);  // minimum count
            le32(r, 0);  // channel
            le32(r, 0);  // remaining
            le16(r, 0);
            le16(r, 0);
            r += '\0';  // buffer
            std::string ok;
            le16(ok, 17);
            ok += '\x50';  // data offset: 64 + 16
            ok += '\0';
            le32(ok, static_cast<uint32_t>(len));
            le32(ok, 0);
            le32(ok, 0);
            ok += data.substr(at, len);
            exchange(kSmbRead, r, ok);
        }
        close(file_id);
    }

private:
    TcpSession& session_;
    Rng& rng_;
    SmbIds ids_;
};

// ---- SMTP ----

std::string mail_message(std::string_view from, std::string_view to, std::string_view subject,
        std::string_view file_name, std::string_view file) {
    const std::string boundary = "=_b7e3c1a9f04d26_=";
    std::string msg = "From: <" + std::string(from) + ">\r\nTo: <" + std::string(to)
            + ">\r\nSubject: " + std::string(subject)
            + "\r\nDate: Mon, 02 Mar 2026 10:00:00 +0000\r\nMIME-Version: 1.0\r\n"
              "Content-Type: multipart/mixed; boundary=\""
            + boundary + "\"\r\n\r\nThis is a multi-part message in MIME format.\r\n\r\n";
    msg += "--" + boundary
            + "\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nHello,\r\n\r\nplease find the "
              "file attached.\r\n\r\nRegards\r\n\r\n";
    msg += "--" + boundary + "\r\nContent-Type: application/zip; name=\"" + std::string(file_name)
            + "\"\r\nContent-Transfer-Encoding: base64\r\nContent-Disposition: attachment; "
              "filename=\""
            + std::string(file_name) + "\"\r\n\r\n" + base64(file, 76);
    msg += "\r\n--" + boundary + "--\r\n";
    return msg;
}

// ---- DNS ----

void dns_name(std::string& out, std::string_view name) {
    size_t start = 0;
    while (start < name.size()) {
        const size_t dot = std::min(name.find('.', start), name.size());
        out += static_cast<char>(dot - start);
        out.append(name.substr(start, dot - start));
        start = dot + 1;
    }
    out += '\0';
}

std::string dns_txt_query(uint16_t id, std::string_view name) {
    std::string out;
    be16(out, id);
    be16(out, 0x0100);
    be16(out, 1);
    be16(out, 0);
    be16(out, 0);
    be16(out, 0);
    dns_name(out, name);
    be16(out, 16);  // TXT
    be16(out, 1);
    return out;
}

std::string dns_txt_response(uint16_t id, std::string_view name, std::string_view text) {
    std::string out;
    be16(out, id);
    be16(out, 0x8180);
    be16(out, 1);
    be16(out, 1);
    be16(out, 0);
    be16(out, 0);
    dns_name(out, name);
    be16(out, 16);
    be16(out, 1);
    be16(out, 0xc00c);
    be16(out, 16);
    be16(out, 1);
    be32(out, 0);  // TTL 0: tunnels defeat caching
    be16(out, static_cast<uint32_t>(text.size() + 1));
    out += static_cast<char>(text.size());
    out += text;
    return out;
}

// ---- one capture ----

class Case {
public:
    Case(uint64_t seed, std::string_view name)
        : rng_(seed ^ crc32(name)), t_(kBaseTimeUs + 200000) {}

    Rng& rng() { return rng_; }
    uint64_t now() const { return t_; }
    void at(uint64_t t_us) { t_ = std::max(t_, t_us); }
    void wait_ms(uint64_t lo, uint64_t hi) { t_ += rng_.range(lo * 1000, hi * 1000); }

    Host inside(const IpAddr& ip) { return inside_host(rng_, ip); }
    Host outside(const IpAddr& ip) { return outside_host(rng_, ip); }

    std::unique_ptr<TcpSession> open(const Host& client, const Host& server, uint16_t port) {
        const Endpoint c{client, ephemeral_port(rng_)};
        const Endpoint s{server, port};
        auto session = std::make_unique<TcpSession>(tcp_config(rng_, c, s), rng_, t_);
        session->connect();
        return session;
    }

    // A refused connection attempt (SYN, RST-ACK); the caller adds it.
    std::unique_ptr<TcpSession> open_refused(
            const Host& client, const Host& server, uint16_t port) {
        const Endpoint c{client, ephemeral_port(rng_)};
        const Endpoint s{server, port};
        auto session = std::make_unique<TcpSession>(tcp_config(rng_, c, s), rng_, t_);
        session->refuse();
        t_ = std::max(t_, session->now_us());
        return session;
    }

    // Closes the session; the next flow starts a little after it ended.
    void finish(std::unique_ptr<TcpSession> session, Side closes_first) {
        session->pause(rng_.range(100, 2000));
        session->close(closes_first);
        t_ = std::max(t_, session->now_us()) + rng_.range(5000, 50000);
        flows_.push_back(std::move(session));
    }

    void add(std::unique_ptr<Flow> flow) { flows_.push_back(std::move(flow)); }

    // Writes the flows, interleaved by time, to path.
    void write(const std::string& path) {
        std::stable_sort(flows_.begin(), flows_.end(), [](const auto& a, const auto& b) {
            return a->packet_ts_us(0) < b->packet_ts_us(0);
        });
        write_flows(path, flows_);
    }

private:
    Rng rng_;
    uint64_t t_;
    std::vector<std::unique_ptr<Flow>> flows_;
};

// Request, then the server's short reply.
void request_reply(TcpSession& s, Rng& rng, std::string_view request, std::string_view reply) {
    s.pause(rng.range(80, 900));
    s.send(Side::kClient, request);
    s.pause(rng.range(300, 6000));
    s.send(Side::kServer, reply);
}

// Lines from one side, each answered by the other (FTP and SMTP dialogues).
void say(TcpSession& s, Rng& rng, Side from, std::string_view line) {
    s.pause(rng.range(200, 3000));
    s.send(from, line);
}

void http_put(Case& c, const Host& client, const Host& server, uint16_t port, std::string_view host,
        std::string_view path, size_t client_bytes) {
    auto s = c.open(client, server, port);
    request_reply(*s, c.rng(), put_request(c.rng(), host, path, client_bytes),
            http_reply(201, "Created"));
    c.finish(std::move(s), Side::kClient);
}

// FTP session: login, then (when file is non-empty) PASV, STOR over a data connection, 226.
void ftp_session(Case& c, const Host& client, const Host& server, std::string_view user,
        bool accept, std::string_view file_name, std::string_view file) {
    Rng& rng = c.rng();
    auto s = c.open(client, server, 21);
    say(*s, rng, Side::kServer, "220 (vsFTPd 3.0.5)\r\n");
    say(*s, rng, Side::kClient, "USER " + std::string(user) + "\r\n");
    say(*s, rng, Side::kServer, "331 Please specify the password.\r\n");
    say(*s, rng, Side::kClient, "PASS not-a-real-secret\r\n");
    s->pause(rng.range(20000, 400000));  // the server checks the password
    if (!accept) {
        say(*s, rng, Side::kServer, "530 Login incorrect.\r\n");
        say(*s, rng, Side::kClient, "QUIT\r\n");
        say(*s, rng, Side::kServer, "221 Goodbye.\r\n");
        c.finish(std::move(s), Side::kServer);
        return;
    }
    say(*s, rng, Side::kServer, "230 Login successful.\r\n");
    if (!file.empty()) {
        say(*s, rng, Side::kClient, "TYPE I\r\n");
        say(*s, rng, Side::kServer, "200 Switching to Binary mode.\r\n");
        say(*s, rng, Side::kClient, "PASV\r\n");
        const uint16_t data_port = static_cast<uint16_t>(rng.range(40000, 50000));
        const IpAddr& ip = server.ip;
        say(*s, rng, Side::kServer,
                "227 Entering Passive Mode (" + std::to_string(ip.bytes[0]) + ","
                        + std::to_string(ip.bytes[1]) + "," + std::to_string(ip.bytes[2]) + ","
                        + std::to_string(ip.bytes[3]) + "," + std::to_string(data_port >> 8) + ","
                        + std::to_string(data_port & 0xff) + ").\r\n");
        const Endpoint dc{client, ephemeral_port(rng)};
        const Endpoint ds{server, data_port};
        auto data = std::make_unique<TcpSession>(tcp_config(rng, dc, ds), rng,
                s->now_us() + 2ull * client.delay_us + 300);  // after the 227 reached it
        data->connect();
        s->pause(data->now_us() - std::min(data->now_us(), s->now_us()));
        say(*s, rng, Side::kClient, "STOR " + std::string(file_name) + "\r\n");
        say(*s, rng, Side::kServer, "150 Ok to send data.\r\n");
        data->pause(s->now_us() - std::min(s->now_us(), data->now_us()) + 200);
        data->send(Side::kClient, file);
        data->close(Side::kClient);
        s->pause(data->now_us() - std::min(data->now_us(), s->now_us()) + 500);
        say(*s, rng, Side::kServer, "226 Transfer complete.\r\n");
        c.add(std::move(data));
    }
    say(*s, rng, Side::kClient, "QUIT\r\n");
    say(*s, rng, Side::kServer, "221 Goodbye.\r\n");
    c.finish(std::move(s), Side::kServer);
}

void smb_write(Case& c, const Host& client, const Host& server, std::string_view share,
        std::string_view name, std::string_view data) {
    auto s = c.open(client, server, 445);
    SmbConversation smb(*s, c.rng());
    smb.negotiate();
    smb.session_setup();
    smb.tree_connect("\\\\" + server.ip.str() + "\\" + std::string(share));
    smb.write_file(name, data);
    c.finish(std::move(s), Side::kClient);
}

void ssh_session(Case& c, const Host& client, const Host& server) {
    Rng& rng = c.rng();
    auto s = c.open(client, server, 22);
    say(*s, rng, Side::kServer, "SSH-2.0-OpenSSH_8.9p1 Ubuntu-3ubuntu0.10\r\n");
    say(*s, rng, Side::kClient, "SSH-2.0-OpenSSH_9.6\r\n");
    say(*s, rng, Side::kClient, ssh_kexinit(rng, true));
    say(*s, rng, Side::kServer, ssh_kexinit(rng, false));
    std::string ecdh_init = "\x1e";  // SSH_MSG_KEX_ECDH_INIT
    be32(ecdh_init, 32);
    ecdh_init += random_bytes(rng, 32);
    say(*s, rng, Side::kClient, ssh_packet(rng, ecdh_init));
    say(*s, rng, Side::kServer, random_bytes(rng, 564));      // reply, NEWKEYS
    say(*s, rng, Side::kClient, random_bytes(rng, 16 + 44));  // NEWKEYS, service request
    say(*s, rng, Side::kServer, random_bytes(rng, 44));
    say(*s, rng, Side::kClient, random_bytes(rng, 124));  // userauth request
    say(*s, rng, Side::kServer, random_bytes(rng, 60));   // failure
    c.finish(std::move(s), Side::kClient);
}

void smtp_send(Case& c, const Host& client, const Host& server, std::string_view from,
        std::string_view to, std::string_view subject, std::string_view file_name,
        std::string_view file) {
    Rng& rng = c.rng();
    auto s = c.open(client, server, 25);
    say(*s, rng, Side::kServer, "220 mx.example.org ESMTP Postfix\r\n");
    say(*s, rng, Side::kClient, "EHLO ws-finance.corp.example\r\n");
    say(*s, rng, Side::kServer,
            "250-mx.example.org\r\n250-PIPELINING\r\n250-SIZE 52428800\r\n250-8BITMIME\r\n"
            "250 SMTPUTF8\r\n");
    say(*s, rng, Side::kClient, "MAIL FROM:<" + std::string(from) + ">\r\n");
    say(*s, rng, Side::kServer, "250 2.1.0 Ok\r\n");
    say(*s, rng, Side::kClient, "RCPT TO:<" + std::string(to) + ">\r\n");
    say(*s, rng, Side::kServer, "250 2.1.5 Ok\r\n");
    say(*s, rng, Side::kClient, "DATA\r\n");
    say(*s, rng, Side::kServer, "354 End data with <CR><LF>.<CR><LF>\r\n");
    say(*s, rng, Side::kClient, mail_message(from, to, subject, file_name, file) + ".\r\n");
    say(*s, rng, Side::kServer, "250 2.0.0 Ok: queued as 4F2B91C0A7\r\n");
    say(*s, rng, Side::kClient, "QUIT\r\n");
    say(*s, rng, Side::kServer, "221 2.0.0 Bye\r\n");
    c.finish(std::move(s), Side::kServer);
}

// TLS session: handshake with SNI, then `rounds` exchanges of up and down bytes.
void tls_session(Case& c, const Host& client, const Host& server, std::string_view sni,
        size_t rounds, size_t up, size_t down) {
    Rng& rng = c.rng();
    auto s = c.open(client, server, 443);
    const std::string session_id = random_bytes(rng, 32);
    say(*s, rng, Side::kClient, client_hello(rng, sni, session_id));
    say(*s, rng, Side::kServer, server_hello_flight(rng, session_id));
    say(*s, rng, Side::kClient, client_finished(rng));
    for (size_t i = 0; i < rounds; ++i) {
        s->pause(rng.range(1000, 20000));
        s->send(Side::kClient, tls_app_data(rng, up));
        s->pause(rng.range(1000, 20000));
        s->send(Side::kServer, tls_app_data(rng, down));
    }
    c.finish(std::move(s), Side::kClient);
}

void dns_lookup(Case& c, const Host& client, const Host& resolver, std::string_view name,
        uint16_t qtype, const IpAddr& answer) {
    Rng& rng = c.rng();
    auto flow = std::make_unique<UdpFlow>(
            Endpoint{client, ephemeral_port(rng)}, Endpoint{resolver, 53}, rng);
    const auto id = static_cast<uint16_t>(rng.next());
    flow->add(c.now(), true, dns_query(id, name, qtype));
    flow->add(c.now() + 2ull * resolver.delay_us + rng.range(200, 3000), false,
            dns_response(id, name, qtype, 300, answer));
    c.add(std::move(flow));
}

// ---- the cases ----

// Thresholds the tests set by config are in the comments; a host is one asset of
// classification internal unless said otherwise.

// external_upload (host_bytes 2 MB for every classification): two PUTs of 1.05 MB
// client bytes each to two outside servers (2.1 MB) vs two of 0.95 MB (1.9 MB).
void external_upload(Case& c, bool alert) {
    const Host ws = c.inside(v4(10, 20, 1, 10));
    const size_t each = alert ? 1050000 : 950000;
    http_put(c, ws, c.outside(v4(203, 0, 113, 10)), 80, "upload.example.net", "/share/part1.bin",
            each);
    c.wait_ms(2000, 5000);
    http_put(c, ws, c.outside(v4(203, 0, 113, 11)), 80, "store.example.net", "/share/part2.bin",
            each);
}

// internal_transfer (flow_bytes 2 MB, host_bytes 0): an SMB2 write of 2.1 MB to the file
// server vs 1.85 MB (under 1.9 MB with the SMB2 framing both ways).
void internal_transfer(Case& c, bool alert) {
    const Host ws = c.inside(v4(10, 20, 1, 20));
    const Host files = c.inside(v4(10, 20, 9, 10));
    const std::string data = binary_blob(c.rng(), alert ? 2100000 : 1850000);
    smb_write(c, ws, files, "projects", "atlas\\render-cache.bin", data);
}

// baseline_deviation (window_s 60, warmup_windows 6, floor_bytes 400000, k 4): one PUT per
// 60 s window, 10 s into it. Alert: eight windows of 20000 client bytes, then one of
// 524288 bytes both ways (kBaselineSpikeBytes). Near miss: 524288 bytes in each of seven
// windows. A flow's bytes reach the behaviour engine every 256 KiB of payload (both
// directions) and when the flow ends, which a closed flow does only at its timeout, so the
// last bytes of a small flow may count in the next window; a flow of exactly 2 x 256 KiB is
// reported whole by its last packet. Another host's lookups at the internal resolver, 45 s
// into each window and in the two windows after the last, move packet time on so that
// flows expire and the last window closes.
void baseline_deviation(Case& c, bool alert) {
    const Host ws = c.inside(v4(10, 20, 1, 30));
    const Host server = c.outside(v4(198, 51, 100, 30));
    const Host other = c.inside(v4(10, 20, 1, 31));
    const Host resolver = c.inside(v4(10, 20, 0, 53));
    constexpr uint64_t kWindowUs = 60ull * 1000000;
    constexpr uint64_t kSecondUs = 1000000;
    const size_t spike = kBaselineSpikeBytes - http_reply(201, "Created").size();
    const uint64_t first = (c.now() / kWindowUs + 1) * kWindowUs;
    const size_t windows = alert ? 9 : 7;
    for (size_t w = 0; w < windows; ++w) {
        const uint64_t start = first + w * kWindowUs;
        c.at(start + 10 * kSecondUs);
        const size_t bytes = alert && w + 1 < windows ? 20000 : spike;
        http_put(c, ws, server, 80, "sync.example.org", "/v1/objects/w" + std::to_string(w), bytes);
        c.at(start + 45 * kSecondUs);
        dns_lookup(c, other, resolver, "intranet.corp.example", 1, v4(10, 20, 4, 4));
    }
    c.at(first + windows * kWindowUs + 5 * kSecondUs);
    dns_lookup(c, other, resolver, "wiki.corp.example", 1, v4(10, 20, 4, 5));
    c.at(first + (windows + 1) * kWindowUs + 5 * kSecondUs);
    dns_lookup(c, other, resolver, "intranet.corp.example", 1, v4(10, 20, 4, 4));
}

// encrypted_asymmetry (min_bytes 1 MB, ratio 10): TLS to files.example.net. Alert: 12
// rounds of 100 KB up and 2 KB down. Near miss: the same upload with 20 KB down per round
// (ratio about 5 when the upload passes 1 MB), and a plain HTTP PUT of 1.2 MB with a short
// reply to 203.0.113.41: as lopsided, but readable, so not this detector's business.
void encrypted_asymmetry(Case& c, bool alert) {
    const Host ws = c.inside(v4(10, 20, 1, 40));
    tls_session(c, ws, c.outside(v4(203, 0, 113, 40)), "files.example.net", 12, 100000,
            alert ? 2000 : 20000);
    if (!alert) {
        c.wait_ms(1000, 3000);
        http_put(c, ws, c.outside(v4(203, 0, 113, 41)), 80, "upload.example.net",
                "/share/archive.bin", 1200000);
    }
}

// archive_out (defaults): from 10.20.1.50, a multipart POST of q3-report.zip to
// 198.51.100.50, a PUT of db-dump.sql.gz to 198.51.100.51 and an FTP STOR of backup.zip to
// 198.51.100.52, vs the same three to the internal file server 10.20.9.10.
void archive_out(Case& c, bool alert) {
    const Host ws = c.inside(v4(10, 20, 1, 50));
    auto server = [&](uint8_t last) {
        return alert ? c.outside(v4(198, 51, 100, last)) : c.inside(v4(10, 20, 9, 10));
    };
    const std::string host = alert ? "transfer.example.com" : "files.corp.example";
    const std::string zip = zip_archive(c.rng(), "ledger.db.enc", 40000);
    auto s = c.open(ws, server(50), 80);
    request_reply(*s, c.rng(),
            multipart_post(host, "/upload", "q3-report.zip", "application/zip", zip),
            http_reply(200, "OK"));
    c.finish(std::move(s), Side::kClient);
    c.wait_ms(500, 2000);
    const std::string gz = gzip_file(c.rng(), "db-dump.sql", 30000);
    auto p = c.open(ws, server(51), 80);
    request_reply(*p, c.rng(),
            put_head(host, "/dav/db-dump.sql.gz", "application/gzip", gz.size()) + gz,
            http_reply(201, "Created"));
    c.finish(std::move(p), Side::kClient);
    c.wait_ms(500, 2000);
    ftp_session(c, ws, server(52), "alice", true, "backup.zip",
            zip_archive(c.rng(), "mailbox.pst.enc", 50000));
}

// unexpected_file_write (defaults): FTP STOR budget-2026.xlsx (60000 bytes), SMB2 WRITE of
// finance\march-payroll.xlsx (150000 bytes) and HTTP PUT of minutes.docx (30000 bytes
// body) to 10.20.7.7, an application server, vs the same three to the file server
// 10.20.9.10.
void unexpected_file_write(Case& c, bool alert) {
    const Host ws = c.inside(v4(10, 20, 1, 60));
    const Host server = alert ? c.inside(v4(10, 20, 7, 7)) : c.inside(v4(10, 20, 9, 10));
    ftp_session(c, ws, server, "alice", true, "budget-2026.xlsx", binary_blob(c.rng(), 60000));
    c.wait_ms(1000, 3000);
    smb_write(
            c, ws, server, "finance", "finance\\march-payroll.xlsx", binary_blob(c.rng(), 150000));
    c.wait_ms(1000, 3000);
    const std::string body = binary_blob(c.rng(), 30000);
    auto s = c.open(ws, server, 80);
    request_reply(*s, c.rng(),
            put_head(server.ip.str(), "/dav/notes/minutes.docx",
                    "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
                    body.size())
                    + body,
            http_reply(201, "Created"));
    c.finish(std::move(s), Side::kClient);
}

// external_login (user_sources 3, service_sources 5, source_failures 3,
// success_after_failures 2): svc-backup logs in to the FTP server 10.20.3.21 from
// 198.51.100.71, .72 and .73, and 203.0.113.61 to .65 start SSH connections to 10.20.3.22.
// Near miss: 198.51.100.71 mistypes the password once and then logs in, and 203.0.113.61
// starts one SSH connection.
void external_login(Case& c, bool alert) {
    const Host ftp = c.inside(v4(10, 20, 3, 21));
    const Host ssh = c.inside(v4(10, 20, 3, 22));
    if (!alert) {
        const Host src = c.outside(v4(198, 51, 100, 71));
        ftp_session(c, src, ftp, "svc-backup", false, "", "");
        c.wait_ms(3000, 8000);
    }
    const size_t ftp_sources = alert ? 3 : 1;
    const size_t ssh_sources = alert ? 5 : 1;
    for (size_t i = 0; i < ftp_sources; ++i) {
        const Host src = c.outside(v4(198, 51, 100, static_cast<uint8_t>(71 + i)));
        ftp_session(c, src, ftp, "svc-backup", true, "", "");
        c.wait_ms(3000, 20000);
    }
    for (size_t i = 0; i < ssh_sources; ++i) {
        ssh_session(c, c.outside(v4(203, 0, 113, static_cast<uint8_t>(61 + i))), ssh);
        c.wait_ms(3000, 20000);
    }
}

// mail_attachment_out (count 3, bytes 0): 10.20.1.80 mails invoice-N.zip (8000-byte member)
// to partner@example.org through the outside MX 203.0.113.25, three messages vs two.
void mail_attachment_out(Case& c, bool alert) {
    const Host ws = c.inside(v4(10, 20, 1, 80));
    const Host mx = c.outside(v4(203, 0, 113, 25));
    const size_t messages = alert ? 3 : 2;
    for (size_t i = 1; i <= messages; ++i) {
        const std::string name = "invoice-" + std::to_string(i) + ".zip";
        smtp_send(c, ws, mx, "j.doe@corp.example", "partner@example.org",
                "Invoice " + std::to_string(i), name, zip_archive(c.rng(), "invoice.pdf", 8000));
        c.wait_ms(10000, 60000);
    }
}

// dns_tunnel (defaults: 60 s window, 30 queries, 20 distinct, score 2 of 3): 40 TXT
// queries of a 56-character base32 label under exfil.example.com, one every 0.5 s, to
// the internal resolver 10.20.0.53. Near miss: ordinary A/AAAA lookups of 24 names in 12
// domains, and 35 A lookups of short CDN names (img01..img35.cdn.example.net: passes the
// query and distinct gates, fails the score).
void dns_tunnel(Case& c, bool alert) {
    const Host client = c.inside(v4(10, 20, 1, 90));
    const Host resolver = c.inside(v4(10, 20, 0, 53));
    Rng& rng = c.rng();
    if (alert) {
        for (int i = 0; i < 40; ++i) {
            const std::string name = base32_label(rng, 56) + ".exfil.example.com";
            auto flow = std::make_unique<UdpFlow>(
                    Endpoint{client, ephemeral_port(rng)}, Endpoint{resolver, 53}, rng);
            const auto id = static_cast<uint16_t>(rng.next());
            flow->add(c.now(), true, dns_txt_query(id, name));
            flow->add(c.now() + 2ull * resolver.delay_us + rng.range(5000, 40000), false,
                    dns_txt_response(id, name, base32_label(rng, 120)));
            c.add(std::move(flow));
            c.wait_ms(450, 550);
        }
        return;
    }
    static constexpr std::array<std::string_view, 12> kDomains = {"example.com", "example.net",
            "example.org", "wikipedia.org", "debian.org", "python.org", "kernel.org", "mozilla.org",
            "gnu.org", "apache.org", "openssl.org", "videolan.org"};
    static constexpr std::array<std::string_view, 2> kHosts = {"www", "cdn"};
    uint8_t last = 1;
    for (const std::string_view domain : kDomains) {
        for (const std::string_view host : kHosts) {
            const std::string name = std::string(host) + "." + std::string(domain);
            dns_lookup(c, client, resolver, name, 1, v4(198, 51, 100, last++));
            c.wait_ms(300, 3000);
        }
    }
    for (int i = 1; i <= 35; ++i) {
        const std::string n = (i < 10 ? "img0" : "img") + std::to_string(i);
        dns_lookup(c, client, resolver, n + ".cdn.example.net", 1,
                v4(203, 0, 113, static_cast<uint8_t>(100 + i)));
        c.wait_ms(100, 600);
    }
}

// ---- lateral movement and staging ----
//
// Assets tests/integration/lateral_test.cc configures: 10.20.9.10 file server
// (confidential, file-server), 10.20.8.8 HR database (restricted, database). Other inside
// hosts (10.20.2.x peers, the intranet 10.20.4.4, the resolver 10.20.0.53) are no assets.
// Its thresholds: lateral_fanout scan_hosts 30, share_enumeration shares 10, first_access
// warm-up 60 s, staging 2 MB from confidential sources.

constexpr uint64_t kLateralWarmupUs = 60ull * 1000000;

// Connections with an SMB2 NEGOTIATE each to 10.20.2.1 .. 10.20.2.n on port 445.
void fan_out(Case& c, const Host& ws, int hosts) {
    for (int i = 1; i <= hosts; ++i) {
        auto s = c.open(ws, c.inside(v4(10, 20, 2, static_cast<uint8_t>(i))), 445);
        SmbConversation smb(*s, c.rng());
        smb.negotiate();
        c.finish(std::move(s), Side::kClient);
    }
}

// One SMB2 session to `server` tree-connecting to IPC$ and then to each share.
void connect_shares(
        Case& c, const Host& ws, const Host& server, const std::vector<std::string>& shares) {
    auto s = c.open(ws, server, 445);
    SmbConversation smb(*s, c.rng());
    smb.negotiate();
    smb.session_setup();
    const std::string unc = "\\\\" + server.ip.str() + "\\";
    smb.tree_connect(unc + "IPC$");
    for (const std::string& share : shares) {
        smb.tree_connect(unc + share);
    }
    c.finish(std::move(s), Side::kClient);
}

// One SMB2 session reading `name` (`bytes` of it) from a share of `server`.
void smb_read(Case& c, const Host& ws, const Host& server, std::string_view share,
        std::string_view name, size_t bytes) {
    auto s = c.open(ws, server, 445);
    SmbConversation smb(*s, c.rng());
    smb.negotiate();
    smb.session_setup();
    smb.tree_connect("\\\\" + server.ip.str() + "\\" + std::string(share));
    smb.read_file(name, binary_blob(c.rng(), bytes));
    c.finish(std::move(s), Side::kClient);
}

// A PostgreSQL startup message (protocol 3.0) and the server's AuthenticationOk.
void db_query(Case& c, const Host& ws, const Host& db) {
    auto s = c.open(ws, db, 5432);
    std::string params;
    be32(params, 0x00030000);
    for (const std::string_view part : {"user", "alice", "database", "payroll", ""}) {
        params += part;
        params += '\0';
    }
    std::string startup;
    be32(startup, static_cast<uint32_t>(params.size() + 4));
    request_reply(*s, c.rng(), startup + params, std::string("R\0\0\0\x08\0\0\0\0", 9));
    c.finish(std::move(s), Side::kClient);
}

void http_get_intranet(Case& c, const Host& ws, const Host& intranet) {
    auto s = c.open(ws, intranet, 80);
    request_reply(*s, c.rng(), "GET /start HTTP/1.1\r\nHost: wiki.corp.example\r\n\r\n",
            http_reply(200, "OK"));
    c.finish(std::move(s), Side::kClient);
}

std::vector<std::string> share_names(int n) {
    static constexpr std::array<std::string_view, 14> kNames = {"finance", "hr", "legal",
            "projects", "board", "payroll", "it-admin", "backups", "sales", "marketing", "research",
            "contracts", "audit", "archive"};
    return {kNames.begin(), kNames.begin() + std::min<int>(n, kNames.size())};
}

// Time starts with a lookup, then the warm-up passes (first_access learns what came in it).
void start_clock(Case& c, const Host& ws) {
    dns_lookup(c, ws, c.inside(v4(10, 20, 0, 53)), "intranet.corp.example", 1, v4(10, 20, 4, 4));
}

void after_warmup(Case& c, uint64_t start_us) {
    c.at(start_us + kLateralWarmupUs + 30ull * 1000000);
}

// lateral_fanout: 40 internal hosts vs 5.
void lateral_fanout(Case& c, bool alert) {
    fan_out(c, c.inside(v4(10, 20, 1, 71)), alert ? 40 : 5);
}

// share_enumeration: 12 shares (and IPC$) vs 2.
void share_enumeration(Case& c, bool alert) {
    connect_shares(c, c.inside(v4(10, 20, 1, 72)), c.inside(v4(10, 20, 9, 10)),
            share_names(alert ? 12 : 2));
}

// first_access: the HR database reached after the warm-up vs reached in it and again after.
void first_access(Case& c, bool alert) {
    const uint64_t start = c.now();
    const Host ws = c.inside(v4(10, 20, 1, 73));
    const Host db = c.inside(v4(10, 20, 8, 8));
    start_clock(c, ws);
    if (!alert) {
        c.wait_ms(1000, 2000);
        db_query(c, ws, db);
    }
    after_warmup(c, start);
    db_query(c, ws, db);
}

// staging: 2.5 MB read from the file server vs 1.5 MB.
void staging(Case& c, bool alert) {
    smb_read(c, c.inside(v4(10, 20, 1, 74)), c.inside(v4(10, 20, 9, 10)), "projects",
            "atlas\\source-tree.tar", alert ? 2500000 : 1500000);
}

struct CaseSpec {
    std::string_view detector;
    void (*build)(Case&, bool);
};

constexpr std::array<CaseSpec, kBehaviourDetectorNames.size()> kCases = {{
        {"external_upload", external_upload},
        {"internal_transfer", internal_transfer},
        {"baseline_deviation", baseline_deviation},
        {"encrypted_asymmetry", encrypted_asymmetry},
        {"archive_out", archive_out},
        {"unexpected_file_write", unexpected_file_write},
        {"external_login", external_login},
        {"mail_attachment_out", mail_attachment_out},
        {"dns_tunnel", dns_tunnel},
        {"lateral_fanout", lateral_fanout},
        {"share_enumeration", share_enumeration},
        {"first_access", first_access},
        {"staging", staging},
}};

// The whole lateral story of one host (alert) and a normal workday of three (near miss).
// Alert, from 10.20.1.70: in the warm-up a lookup and a small read from the file server's
// "projects" share; after it, connections to 40 internal hosts, tree connects to 12 shares
// of the file server, a first query to the HR database and 2.5 MB read from the file
// server. Near miss: 10.20.1.80 .. 82 each read a little from the file server in the
// warm-up, and after it look up names, reach the intranet and 3 peers, connect 2 shares
// and read 300 KB.
void lateral_story(Case& c, bool alert) {
    const uint64_t start = c.now();
    const Host files = c.inside(v4(10, 20, 9, 10));
    const Host intranet = c.inside(v4(10, 20, 4, 4));
    if (alert) {
        const Host ws = c.inside(v4(10, 20, 1, 70));
        start_clock(c, ws);
        smb_read(c, ws, files, "projects", "atlas\\readme.txt", 4000);
        after_warmup(c, start);
        fan_out(c, ws, 40);
        connect_shares(c, ws, files, share_names(12));
        db_query(c, ws, c.inside(v4(10, 20, 8, 8)));
        smb_read(c, ws, files, "finance", "ledger\\2026-q1.xlsx", 2500000);
        return;
    }
    std::vector<Host> staff;
    for (uint8_t last = 80; last <= 82; ++last) {
        staff.push_back(c.inside(v4(10, 20, 1, last)));
        start_clock(c, staff.back());
        smb_read(c, staff.back(), files, "projects", "atlas\\readme.txt", 4000);
    }
    after_warmup(c, start);
    for (size_t i = 0; i < staff.size(); ++i) {
        const Host& ws = staff[i];
        dns_lookup(c, ws, c.inside(v4(10, 20, 0, 53)), "wiki.corp.example", 1, intranet.ip);
        http_get_intranet(c, ws, intranet);
        for (uint8_t peer = 1; peer <= 3; ++peer) {
            auto s = c.open(ws, c.inside(v4(10, 20, 2, static_cast<uint8_t>(10 * i + peer))), 445);
            SmbConversation smb(*s, c.rng());
            smb.negotiate();
            c.finish(std::move(s), Side::kClient);
        }
        connect_shares(c, ws, files, share_names(2));
        smb_read(c, ws, files, "projects", "atlas\\notes-" + std::to_string(i) + ".docx", 300000);
        c.wait_ms(5000, 20000);
    }
}

constexpr uint64_t kHourMs = 3600ull * 1000;

// A SYN scan: 10.20.1.76 tries RDP on 40 internal hosts (alert) or 5 (near miss), every one
// refused (SYN, RST-ACK): no connection carries a byte.
void syn_scan(Case& c, bool alert) {
    const Host ws = c.inside(v4(10, 20, 1, 76));
    for (int i = 1; i <= (alert ? 40 : 5); ++i) {
        auto s = c.open_refused(ws, c.inside(v4(10, 20, 6, static_cast<uint8_t>(i))), 3389);
        c.add(std::move(s));
        c.wait_ms(5, 40);
    }
}

// The whole attack on one host over simulated hours, for the incident correlator (alert), and
// the same host's normal workday (near miss). Alert: after the warm-up, an outside address
// guesses its way into 10.20.1.70 over SSH (12 connection starts), an hour later the host fans
// out to 40 internal hosts, half an hour later it tree-connects to 12 shares of the file
// server, then queries the restricted HR database, an hour later it pulls 2.5 MB from the file
// server, and an hour after that it sends 1.2 MB by HTTPS to an outside host (TLS, 2 KB back).
// Near miss: the same host looks up the intranet, reads the wiki, connects 2 shares and reads
// 300 KB from the file server every hour or so, four times.
void attack_story(Case& c, bool alert) {
    const uint64_t start = c.now();
    const Host ws = c.inside(v4(10, 20, 1, 70));
    const Host files = c.inside(v4(10, 20, 9, 10));
    const Host intranet = c.inside(v4(10, 20, 4, 4));
    start_clock(c, ws);
    smb_read(c, ws, files, "projects", "atlas\\readme.txt", 4000);
    after_warmup(c, start);
    if (!alert) {
        for (int i = 0; i < 4; ++i) {
            dns_lookup(c, ws, c.inside(v4(10, 20, 0, 53)), "wiki.corp.example", 1, intranet.ip);
            http_get_intranet(c, ws, intranet);
            connect_shares(c, ws, files, share_names(2));
            smb_read(c, ws, files, "projects", "atlas\\notes-" + std::to_string(i) + ".docx",
                    300000);
            c.wait_ms(kHourMs, kHourMs + 600000);
        }
        return;
    }
    const Host attacker = c.outside(v4(203, 0, 113, 66));
    for (int i = 0; i < 12; ++i) {
        ssh_session(c, attacker, ws);
        c.wait_ms(2000, 6000);
    }
    c.wait_ms(kHourMs, kHourMs + 60000);
    fan_out(c, ws, 40);
    c.wait_ms(kHourMs / 2, kHourMs / 2 + 60000);
    connect_shares(c, ws, files, share_names(12));
    db_query(c, ws, c.inside(v4(10, 20, 8, 8)));
    c.wait_ms(kHourMs, kHourMs + 60000);
    smb_read(c, ws, files, "finance", "ledger\\2026-q1.xlsx", 2500000);
    c.wait_ms(kHourMs, kHourMs + 60000);
    tls_session(c, ws, c.outside(v4(203, 0, 113, 90)), "drop.example.net", 12, 100000, 2000);
}

std::vector<std::string> run_lateral(const std::string& prefix, uint64_t seed) {
    std::vector<std::string> written;
    for (const bool alert : {true, false}) {
        const std::string path = prefix + (alert ? "-story-alert.pcap" : "-workday-near.pcap");
        Case c(seed, path.substr(prefix.size()));
        lateral_story(c, alert);
        c.write(path);
        written.push_back(path);
    }
    for (const bool alert : {true, false}) {
        const std::string path = prefix + (alert ? "-scan-alert.pcap" : "-scan-near.pcap");
        Case c(seed, path.substr(prefix.size()));
        syn_scan(c, alert);
        c.write(path);
        written.push_back(path);
    }
    for (const bool alert : {true, false}) {
        const std::string path =
                prefix + (alert ? "-attack-story-alert.pcap" : "-attack-workday-near.pcap");
        Case c(seed, path.substr(prefix.size()));
        attack_story(c, alert);
        c.write(path);
        written.push_back(path);
    }
    return written;
}

}  // namespace

std::vector<std::string> run_behaviour(const std::string& prefix, uint64_t seed) {
    std::vector<std::string> written;
    for (size_t i = 0; i < kCases.size(); ++i) {
        if (kCases[i].detector != kBehaviourDetectorNames[i]) {
            throw std::logic_error("behaviour cases out of step with kBehaviourDetectorNames");
        }
        for (const bool alert : {true, false}) {
            const std::string path = prefix + "-" + std::string(kCases[i].detector)
                    + (alert ? "-alert.pcap" : "-near.pcap");
            Case c(seed, path.substr(prefix.size()));
            kCases[i].build(c, alert);
            c.write(path);
            written.push_back(path);
        }
    }
    for (std::string& path : run_lateral(prefix + "-lateral", seed)) {
        written.push_back(std::move(path));
    }
    return written;
}

}  // namespace exfiltap::gen
