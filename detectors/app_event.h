// Application-layer facts the protocol parsers report (DESIGN.md "Detection", behaviour):
// logins, file transfers, HTTP requests, mail, DNS queries, TLS server names. A worker's
// parser fills an AppEvent; it crosses the worker's event ring inside a WorkerEvent and the
// behaviour detectors on the control thread aggregate it.
//
// Threads: plain data, any thread. AppEvent is trivially copyable and of fixed size; text
// fields are NUL-terminated, cut to their capacity (the `truncated` flag says so).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>
#include <type_traits>

namespace exfiltap::detectors {

/// The application protocol of a flow, by payload signature first and server port second.
/// Numeric values are stable (they appear in counters); new protocols are appended.
enum class AppProto : uint8_t {
    Unknown = 0,
    Http = 1,
    Tls = 2,
    Smtp = 3,
    Ftp = 4,
    FtpData = 5,
    Pop3 = 6,
    Imap = 7,
    Ssh = 8,
    Rdp = 9,
    Smb = 10,  // SMB2/3 (and SMB1 recognised but not parsed)
    Dns = 11,
};
inline constexpr size_t kAppProtoCount = 12;

/// "unknown", "http", "tls", "smtp", "ftp", "ftp-data", "pop3", "imap", "ssh", "rdp",
/// "smb", "dns".
std::string_view app_proto_name(AppProto proto) noexcept;

/// Direction of bytes within a TCP flow: from the connection's client (the SYN sender) or
/// from its server.
enum class AppDir : uint8_t {
    ToServer = 0,
    ToClient = 1,
};

enum class AppEventKind : uint8_t {
    /// The flow's protocol was identified (proto). For TLS: `name` holds the SNI when the
    /// ClientHello carried one; for HTTP nothing else (requests come as HttpRequest).
    ProtocolSeen = 1,
    /// An HTTP/1.x request: `method`, `name` = URI (path and query), `host` = Host header,
    /// `bytes` = Content-Length (or the de-chunked body size, reported at its end when
    /// chunked: then `final` is true), `user` = HTTP Basic user name when present.
    HttpRequest = 2,
    /// A login step: `proto`, `user` (when the protocol shows it), `outcome`.
    /// SSH and RDP report one Attempt per connection start (the outcome is encrypted):
    /// SSH once both banners and the client's key exchange init were seen; RDP with the
    /// X.224 cookie's user name ("mstshash=NAME") when present.
    Login = 3,
    /// A file moved: `proto`, `name` = file name (as the protocol gives it), `bytes`,
    /// `upload` true when the flow's client sends the file to the server (FTP STOR/APPE,
    /// HTTP PUT and multipart uploads, SMB2 WRITE), false for downloads (FTP RETR, SMB2
    /// READ). FTP reports on the control flow when the transfer ends (226/250 or the data
    /// flow's end); SMB2 once per file handle when it is closed or the flow ends; HTTP per
    /// request (multipart: per file part).
    FileTransfer = 4,
    /// One SMTP message accepted for delivery: `user` = envelope sender, `name` = first
    /// recipient, `count` = recipients, `attachments` = MIME parts with a file name or
    /// Content-Disposition attachment, `bytes` = message size (DATA bytes),
    /// `attachment_bytes` = decoded bytes of those parts, `host` = first attachment's name.
    MailMessage = 5,
    /// One DNS query (UDP or TCP), from the client: `name` = query name (lower case, no
    /// trailing dot), `qtype`, `bytes` = the DNS message size. Responses report
    /// DnsAnswer: `rcode`, `bytes` = response size, `count` = answer records.
    DnsQuery = 6,
    DnsAnswer = 7,
    /// An FTP data connection announced on a control flow (PASV/EPSV replies, PORT/EPRT
    /// commands): `data_addr`/`data_port` is the side that listens, `upload` whether the
    /// pending command sends data to the server. The worker ties the data flow to it.
    FtpDataChannel = 8,
    /// An archive or compressed object starts in the flow: `name` = format ("zip", "gzip",
    /// "7z", "rar", "bzip2", "xz", "zstd"), `upload` = sent by the client, `entropy_milli`
    /// = Shannon entropy of the first bytes in bits per byte * 1000 (0 when unknown).
    Archive = 9,
    /// An SMB2 TREE_CONNECT request from the client (reported when its path has been read,
    /// whatever the server answers: enumeration meets many refusals): `proto` Smb, `name` =
    /// the share path as the client gave it (`\\server\share`; its last characters when
    /// longer, `truncated` set).
    TreeConnect = 10,
};

enum class LoginOutcome : uint8_t {
    Attempt = 0,  // seen, result unknown (encrypted or not yet answered)
    Success = 1,
    Failure = 2,
};
std::string_view login_outcome_name(LoginOutcome outcome) noexcept;

struct AppEvent {
    static constexpr size_t kNameCap = 256;  // DNS names (253), URIs and file names (cut)
    static constexpr size_t kHostCap = 128;
    static constexpr size_t kUserCap = 96;
    static constexpr size_t kMethodCap = 16;

    AppEventKind kind = AppEventKind::ProtocolSeen;
    AppProto proto = AppProto::Unknown;
    LoginOutcome outcome = LoginOutcome::Attempt;
    bool upload = false;
    /// The value is final (e.g. a chunked body's size once it ended).
    bool final = true;
    /// One of the text fields was cut to its capacity.
    bool truncated = false;
    uint16_t qtype = 0;
    uint8_t rcode = 0;
    uint8_t data_addr_len = 0;  // 4 or 16 (FtpDataChannel)
    uint16_t data_port = 0;
    uint16_t entropy_milli = 0;
    uint32_t count = 0;
    uint32_t attachments = 0;
    uint64_t bytes = 0;
    uint64_t attachment_bytes = 0;
    std::array<uint8_t, 16> data_addr{};
    std::array<char, kMethodCap> method{};
    std::array<char, kUserCap> user{};
    std::array<char, kHostCap> host{};
    std::array<char, kNameCap> name{};

    std::string_view name_view() const noexcept { return view(name); }
    std::string_view host_view() const noexcept { return view(host); }
    std::string_view user_view() const noexcept { return view(user); }
    std::string_view method_view() const noexcept { return view(method); }

    /// Copies `text` into `field` (cut to capacity - 1, NUL-terminated); sets `truncated`
    /// when cut. Bytes outside printable ASCII are replaced by '?', so every field is safe
    /// to put in JSON and logs as it is.
    template <size_t N>
    void set(std::array<char, N>& field, std::string_view text) noexcept {
        size_t n = text.size() < N - 1 ? text.size() : N - 1;
        if (n < text.size()) {
            truncated = true;
        }
        for (size_t i = 0; i < n; ++i) {
            auto c = static_cast<unsigned char>(text[i]);
            field[i] = (c >= 0x20 && c < 0x7f) ? static_cast<char>(c) : '?';
        }
        field[n] = '\0';
    }

private:
    template <size_t N>
    static std::string_view view(const std::array<char, N>& field) noexcept {
        size_t n = 0;
        while (n < N && field[n] != '\0') {
            ++n;
        }
        return {field.data(), n};
    }
};
static_assert(std::is_trivially_copyable_v<AppEvent>);
static_assert(sizeof(AppEvent) % 8 == 0);

/// Where a parser puts its events. Implemented by the worker (it adds the flow's addresses
/// and sends a WorkerEvent) and by tests. Called on the worker; must not block.
class AppEventSink {
public:
    virtual void on_app_event(const AppEvent& event) noexcept = 0;

protected:
    ~AppEventSink() = default;
};

/// What a decoded object is (an HTTP body, a MIME part). Its bytes go to the content
/// detector in a stream of their own.
enum class ObjectKind : uint8_t {
    HttpBody = 1,
    MimePart = 2,
    /// A form post's body (application/x-www-form-urlencoded, no coding or chunking): the
    /// raw scan sees it as it is, so only exact data match reads it again, to end its last
    /// field with the body (it has no line end and would run into the next request on the
    /// connection).
    HttpPlainBody = 3,
};

/// Where a parser puts decoded bytes (de-chunked and inflated HTTP bodies, base64 or
/// quoted-printable MIME parts) for the content detector. Objects do not nest: a parser
/// ends one before it begins the next. Called on the worker; must not block.
class ObjectSink {
public:
    /// Whether decoded objects of `dir` are wanted at all: a parser skips decoding (zlib,
    /// base64) for a direction nobody inspects.
    virtual bool wants(AppDir dir) const noexcept {
        (void)dir;
        return true;
    }
    /// Whether plain request bodies of `dir` are wanted as HttpPlainBody objects.
    virtual bool wants_plain(AppDir dir) const noexcept {
        (void)dir;
        return false;
    }
    virtual void object_begin(ObjectKind kind, AppDir dir) noexcept = 0;
    virtual void object_data(std::span<const uint8_t> data) noexcept = 0;
    virtual void object_end() noexcept = 0;

protected:
    ~ObjectSink() = default;
};

}  // namespace exfiltap::detectors
