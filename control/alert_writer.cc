#include "control/alert_writer.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <system_error>
#include <utility>

#include "common/log.h"

#include <nlohmann/json.hpp>

namespace exfiltap::control {
namespace {

constexpr uint8_t kProtoIcmp = 1;
constexpr uint8_t kProtoTcp = 6;
constexpr uint8_t kProtoUdp = 17;
constexpr uint8_t kProtoIcmp6 = 58;
constexpr uint8_t kProtoSctp = 132;

constexpr const char* kKeyFileName = "sample_hmac.key";
// Year 9999; keeps gmtime and the four-digit year format in range.
constexpr int64_t kMaxTimestampS = 253402300799;

/// ICMP type pairs that answer each other (the Community ID spec takes them from Zeek). A
/// type with a counterpart is hashed like a port pair, so request and reply share one ID.
struct IcmpPair {
    uint8_t type;
    uint8_t counterpart;
};
constexpr std::array<IcmpPair, 10> kIcmp4Pairs = {{
        {8, 0},  // echo
        {0, 8},
        {13, 14},  // timestamp
        {14, 13},
        {15, 16},  // information
        {16, 15},
        {10, 9},  // router solicitation / advertisement
        {9, 10},
        {17, 18},  // address mask
        {18, 17},
}};
constexpr std::array<IcmpPair, 12> kIcmp6Pairs = {{
        {128, 129},  // echo
        {129, 128},
        {130, 131},  // multicast listener query / report
        {131, 130},
        {133, 134},  // router solicitation / advertisement
        {134, 133},
        {135, 136},  // neighbour solicitation / advertisement
        {136, 135},
        {139, 140},  // who-are-you
        {140, 139},
        {144, 145},  // home agent address discovery
        {145, 144},
}};

/// strerror() is not thread safe; the generic category's message is.
std::string errno_text(int error) {
    return std::generic_category().message(error);
}

bool icmp_counterpart(uint8_t proto, uint8_t type, uint8_t& counterpart) {
    const auto find = [&](const auto& pairs) {
        const auto it = std::find_if(pairs.begin(), pairs.end(),
                [&](const IcmpPair& pair) { return pair.type == type; });
        if (it == pairs.end()) {
            return false;
        }
        counterpart = it->counterpart;
        return true;
    };
    return proto == kProtoIcmp ? find(kIcmp4Pairs) : find(kIcmp6Pairs);
}

/// Suricata's numbers: 1 is the most severe.
int eve_severity(detectors::Severity severity) {
    switch (severity) {
    case detectors::Severity::Critical:
        return 1;
    case detectors::Severity::High:
        return 2;
    case detectors::Severity::Medium:
        return 3;
    case detectors::Severity::Low:
        break;
    }
    return 4;
}

Result<std::array<uint8_t, 32>> read_key(const std::string& path) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) {
        return make_error(path + ": cannot open sample HMAC key: " + errno_text(errno));
    }
    std::array<uint8_t, 32> key{};
    struct stat info {};
    const bool stat_ok = fstat(fd, &info) == 0;
    ssize_t got = -1;
    if (stat_ok && S_ISREG(info.st_mode) && info.st_size == static_cast<off_t>(key.size())) {
        got = ::read(fd, key.data(), key.size());
    }
    ::close(fd);
    if (!stat_ok || !S_ISREG(info.st_mode)) {
        return make_error(path + ": sample HMAC key is not a regular file");
    }
    if (info.st_size != static_cast<off_t>(key.size()) || got != static_cast<ssize_t>(key.size())) {
        return make_error(path + ": sample HMAC key has " + std::to_string(info.st_size)
                + " bytes, expected " + std::to_string(key.size())
                + "; restore the right file, or delete it to make a new key (sample_hmac values "
                  "then no longer match earlier alerts)");
    }
    if ((info.st_mode & (S_IRWXG | S_IRWXO)) != 0) {
        log_warning("control", path + ": sample HMAC key is readable by others than its owner; "
                                      "chmod 600 it");
    }
    return key;
}

/// Writes a fresh key next to its final name and links it into place, so a crash never
/// leaves a short key file, and a key another process created first is kept.
Status create_key(const std::string& path, std::array<uint8_t, 32>& key) {
    if (RAND_bytes(key.data(), static_cast<int>(key.size())) != 1) {
        return make_error(path + ": cannot get random bytes for the sample HMAC key");
    }
    const std::string temp = path + ".new." + std::to_string(getpid());
    const int fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) {
        return make_error(temp + ": cannot create sample HMAC key: " + errno_text(errno));
    }
    const bool written = fchmod(fd, 0600) == 0
            && ::write(fd, key.data(), key.size()) == static_cast<ssize_t>(key.size())
            && fsync(fd) == 0;
    const int write_errno = errno;
    ::close(fd);
    if (!written) {
        ::unlink(temp.c_str());
        return make_error(temp + ": cannot write sample HMAC key: " + errno_text(write_errno));
    }
    const int linked = ::link(temp.c_str(), path.c_str());
    const int link_errno = errno;
    ::unlink(temp.c_str());
    if (linked != 0 && link_errno != EEXIST) {
        return make_error(path + ": cannot create sample HMAC key: " + errno_text(link_errno));
    }
    if (linked != 0) {
        auto existing = read_key(path);
        if (!existing) {
            return make_error(existing.error());
        }
        key = *existing;
    }
    return Ok{};
}

}  // namespace

std::string format_timestamp(double seconds) {
    if (!std::isfinite(seconds) || seconds < 0) {
        seconds = 0;
    }
    int64_t micros = std::llround(std::min(seconds, static_cast<double>(kMaxTimestampS)) * 1e6);
    const auto whole = static_cast<time_t>(micros / 1000000);
    micros %= 1000000;
    tm parts{};
    gmtime_r(&whole, &parts);
    std::array<char, 128> text{};  // roomy enough for any int, as -Wformat-truncation wants
    snprintf(text.data(), text.size(), "%04d-%02d-%02dT%02d:%02d:%02d.%06d+0000",
            parts.tm_year + 1900, parts.tm_mon + 1, parts.tm_mday, parts.tm_hour, parts.tm_min,
            parts.tm_sec, static_cast<int>(micros));
    return text.data();
}

std::string proto_name(uint8_t proto) {
    switch (proto) {
    case kProtoTcp:
        return "TCP";
    case kProtoUdp:
        return "UDP";
    case kProtoIcmp:
        return "ICMP";
    case kProtoIcmp6:
        return "IPv6-ICMP";
    default:
        break;
    }
    return std::to_string(proto);
}

std::string community_id(uint8_t ip_version, const std::array<uint8_t, 16>& src,
        const std::array<uint8_t, 16>& dst, uint8_t proto, uint16_t src_port, uint16_t dst_port,
        uint16_t seed) {
    if (ip_version != 4 && ip_version != 6) {
        return "";  // the spec allows an empty ID for what it does not cover
    }
    const size_t addr_len = ip_version == 6 ? 16 : 4;
    const bool has_ports = proto == kProtoTcp || proto == kProtoUdp || proto == kProtoSctp
            || proto == kProtoIcmp || proto == kProtoIcmp6;

    // ICMP: src_port carries the type, dst_port the code.
    bool one_way = false;
    if (proto == kProtoIcmp || proto == kProtoIcmp6) {
        uint8_t counterpart = 0;
        const auto type = static_cast<uint8_t>(src_port);
        if (icmp_counterpart(proto, type, counterpart)) {
            dst_port = counterpart;
        } else {
            one_way = true;
        }
    }

    const int order = memcmp(src.data(), dst.data(), addr_len);
    const bool swap = !one_way && (order > 0 || (order == 0 && has_ports && src_port > dst_port));
    const auto& first = swap ? dst : src;
    const auto& second = swap ? src : dst;
    const uint16_t first_port = swap ? dst_port : src_port;
    const uint16_t second_port = swap ? src_port : dst_port;

    std::array<uint8_t, 2 + 16 + 16 + 2 + 4> input{};
    size_t len = 0;
    input[len++] = static_cast<uint8_t>(seed >> 8);
    input[len++] = static_cast<uint8_t>(seed);
    std::copy_n(first.begin(), addr_len, input.begin() + static_cast<ptrdiff_t>(len));
    len += addr_len;
    std::copy_n(second.begin(), addr_len, input.begin() + static_cast<ptrdiff_t>(len));
    len += addr_len;
    input[len++] = proto;
    input[len++] = 0;
    if (has_ports) {
        input[len++] = static_cast<uint8_t>(first_port >> 8);
        input[len++] = static_cast<uint8_t>(first_port);
        input[len++] = static_cast<uint8_t>(second_port >> 8);
        input[len++] = static_cast<uint8_t>(second_port);
    }

    std::array<unsigned char, EVP_MAX_MD_SIZE> digest{};
    unsigned int digest_len = 0;
    if (EVP_Digest(input.data(), len, digest.data(), &digest_len, EVP_sha1(), nullptr) != 1) {
        return "";
    }
    std::array<unsigned char, 4 * ((EVP_MAX_MD_SIZE + 2) / 3) + 1> encoded{};
    const int encoded_len =
            EVP_EncodeBlock(encoded.data(), digest.data(), static_cast<int>(digest_len));
    return "1:"
            + std::string(reinterpret_cast<const char*>(encoded.data()),
                    static_cast<size_t>(std::max(encoded_len, 0)));
}

std::string mask_value(std::string_view value) {
    // Four characters or fewer: the tail would be the whole value, so nothing is shown.
    constexpr size_t kShown = 4;
    std::string masked(value.size(), '*');
    if (value.size() > kShown) {
        std::copy(value.end() - kShown, value.end(), masked.end() - kShown);
    }
    return masked;
}

Result<SampleKey> SampleKey::load_or_create(const std::string& state_dir) {
    if (state_dir.empty()) {
        return make_error("state_dir is empty; cannot keep the sample HMAC key");
    }
    std::error_code ec;
    const std::filesystem::path dir(state_dir);
    if (!std::filesystem::exists(dir, ec)) {
        std::filesystem::create_directories(dir, ec);
        if (ec) {
            return make_error(state_dir + ": cannot create state directory: " + ec.message());
        }
        std::filesystem::permissions(
                dir, std::filesystem::perms::owner_all, std::filesystem::perm_options::replace, ec);
        if (ec) {
            return make_error(
                    state_dir + ": cannot set state directory mode 0700: " + ec.message());
        }
    } else if (!std::filesystem::is_directory(dir, ec)) {
        return make_error(state_dir + ": state_dir is not a directory");
    }

    const std::string path = (dir / kKeyFileName).string();
    SampleKey key;
    if (::access(path.c_str(), F_OK) == 0) {
        auto loaded = read_key(path);
        if (!loaded) {
            return make_error(loaded.error());
        }
        key.key_ = *loaded;
        return key;
    }
    auto created = create_key(path, key.key_);
    if (!created) {
        return make_error(created.error());
    }
    return key;
}

std::string SampleKey::hmac_hex(std::string_view value) const {
    std::array<unsigned char, EVP_MAX_MD_SIZE> mac{};
    unsigned int mac_len = 0;
    if (HMAC(EVP_sha256(), key_.data(), static_cast<int>(key_.size()),
                reinterpret_cast<const unsigned char*>(value.data()), value.size(), mac.data(),
                &mac_len)
            == nullptr) {
        return "";
    }
    static constexpr std::string_view kHex = "0123456789abcdef";
    std::string hex;
    hex.reserve(static_cast<size_t>(mac_len) * 2);
    for (unsigned int i = 0; i < mac_len; ++i) {
        hex.push_back(kHex[mac[i] >> 4]);
        hex.push_back(kHex[mac[i] & 0x0F]);
    }
    return hex;
}

std::string format_ip(uint8_t ip_version, const std::array<uint8_t, 16>& address) {
    std::array<char, INET6_ADDRSTRLEN> text{};
    const int family = ip_version == 6 ? AF_INET6 : AF_INET;
    if (ip_version != 4 && ip_version != 6) {
        return "";
    }
    if (inet_ntop(family, address.data(), text.data(), text.size()) == nullptr) {
        return "";
    }
    return text.data();
}

std::string alert_to_json(const AlertRecord& record) {
    // ordered_json keeps Suricata's field order, which people reading the file expect.
    nlohmann::ordered_json json;
    json["timestamp"] = format_timestamp(record.timestamp_s);
    json["flow_id"] = record.flow_id;
    json["event_type"] = "alert";
    if (record.vlan_count > 0) {
        auto& vlan = json["vlan"] = nlohmann::ordered_json::array();
        for (size_t i = 0; i < std::min<size_t>(record.vlan_count, record.vlan.size()); ++i) {
            vlan.push_back(record.vlan[i]);
        }
    }
    json["src_ip"] = format_ip(record.ip_version, record.src);
    const bool icmp = record.proto == kProtoIcmp || record.proto == kProtoIcmp6;
    const bool ports =
            record.proto == kProtoTcp || record.proto == kProtoUdp || record.proto == kProtoSctp;
    if (ports) {
        json["src_port"] = record.src_port;
    }
    json["dest_ip"] = format_ip(record.ip_version, record.dst);
    if (ports) {
        json["dest_port"] = record.dst_port;
    }
    json["proto"] = proto_name(record.proto);
    if (icmp) {
        json["icmp_type"] = record.src_port;
        json["icmp_code"] = record.dst_port;
    }
    const std::string cid = community_id(record.ip_version, record.src, record.dst, record.proto,
            record.src_port, record.dst_port);
    if (!cid.empty()) {
        json["community_id"] = cid;
    }

    json["alert"] = {
            {"action", record.action},
            {"signature_id", record.signature_id},
            {"signature", record.signature},
            {"category", record.category},
            {"severity", eve_severity(record.severity)},
    };

    auto& exfil = json["exfil"];
    exfil["detector"] = record.detector;
    exfil["class"] = record.cls;
    exfil["confidence"] = detectors::confidence_name(record.confidence);
    exfil["bytes"] = record.bytes;
    exfil["count"] = record.count;
    if (!record.sample.empty()) {
        exfil["sample"] = record.sample;
    }
    if (!record.sample_hmac.empty()) {
        exfil["sample_hmac"] = record.sample_hmac;
    }
    if (!record.response.empty()) {
        exfil["response"] = record.response;
    }
    const std::pair<const char*, const std::string*> texts[] = {{"app_proto", &record.app_proto},
            {"file_name", &record.file_name}, {"server_name", &record.server_name},
            {"user", &record.user}, {"domain", &record.domain}, {"reason", &record.reason}};
    for (const auto& [name, value] : texts) {
        if (!value->empty()) {
            exfil[name] = *value;
        }
    }
    if (record.window_s > 0) {
        exfil["window_s"] = record.window_s;
    }
    if (record.threshold > 0) {
        exfil["threshold"] = record.threshold;
    }
    if (!record.edm_table.empty()) {
        exfil["edm"] = {{"table", record.edm_table}, {"columns", record.edm_columns},
                {"records", record.edm_records}};
    }

    const auto asset = [](const std::string& name, const std::string& classification) {
        nlohmann::ordered_json out = {{"name", name}};
        if (!classification.empty()) {
            out["classification"] = classification;
        }
        return out;
    };
    if (!record.src_asset.empty()) {
        json["src_asset"] = asset(record.src_asset, record.src_asset_classification);
    }
    if (!record.dst_asset.empty()) {
        json["dest_asset"] = asset(record.dst_asset, record.dst_asset_classification);
    }

    // Replace, never throw, on bytes that are not UTF-8 (names from config, payload samples).
    return json.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
}

Result<AlertWriter> AlertWriter::open(const std::string& path) {
    AlertWriter writer;
    if (path == "-") {
        writer.fd_ = STDOUT_FILENO;
        return writer;
    }
    const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
    if (fd < 0) {
        return make_error(path + ": cannot open alerts file: " + errno_text(errno));
    }
    writer.fd_ = fd;
    writer.owned_ = true;
    writer.path_ = path;
    return writer;
}

void AlertWriter::close_file() noexcept {
    if (owned_ && fd_ >= 0) {
        ::close(fd_);
    }
    fd_ = -1;
}

Status AlertWriter::reopen() {
    if (!owned_) {
        return Ok{};
    }
    auto fresh = open(path_);
    if (!fresh) {
        return make_error(fresh.error() + (fd_ >= 0 ? " (still writing to the old file)" : ""));
    }
    // The old file removed rather than moved aside: what went to it since the last check is
    // lost (as recover_removed() counts it).
    struct stat st {};
    const uint64_t since = std::exchange(written_since_check_, 0);
    if (fd_ >= 0 && fstat(fd_, &st) == 0 && st.st_nlink == 0) {
        written_ -= since;
        failed_ += since;
    }
    close_file();
    fd_ = std::exchange(fresh->fd_, -1);
    lost_ = false;
    return Ok{};
}

std::optional<std::string> AlertWriter::recover_removed() {
    if (!owned_) {
        return std::nullopt;
    }
    const uint64_t since = std::exchange(written_since_check_, 0);
    const bool just_removed = !lost_;
    if (just_removed) {
        struct stat st {};
        if (fd_ < 0 || fstat(fd_, &st) != 0 || st.st_nlink > 0) {
            return std::nullopt;  // still there, or moved aside by rotation
        }
        // Unlinked: what was written to it since the last check is gone with it.
        written_ -= since;
        failed_ += since;
        close_file();
        lost_ = true;
    }
    std::error_code ec;
    const std::filesystem::path folder = std::filesystem::path(path_).parent_path();
    if (!folder.empty() && !std::filesystem::exists(folder, ec)) {
        std::filesystem::create_directories(folder, ec);
        if (!ec) {
            std::filesystem::permissions(folder, std::filesystem::perms(0750),
                    std::filesystem::perm_options::replace, ec);
        }
    }
    auto fresh = open(path_);
    if (!fresh) {
        // Said when the file goes, then quiet until it can be created again.
        if (!just_removed) {
            return std::nullopt;
        }
        return path_ + " was removed and cannot be created again (" + fresh.error()
                + "); alert records are counted as lost until it can";
    }
    fd_ = std::exchange(fresh->fd_, -1);
    lost_ = false;
    return path_ + (just_removed ? " was removed; created it again" : " created again") + " ("
            + std::to_string(failed_) + " alert records lost so far)";
}

AlertWriter::AlertWriter(AlertWriter&& other) noexcept
    : fd_(std::exchange(other.fd_, -1)),
      owned_(std::exchange(other.owned_, false)),
      lost_(std::exchange(other.lost_, false)),
      path_(std::move(other.path_)),
      written_(std::exchange(other.written_, 0)),
      failed_(std::exchange(other.failed_, 0)),
      written_since_check_(std::exchange(other.written_since_check_, 0)),
      failing_(std::exchange(other.failing_, 0)) {}

AlertWriter& AlertWriter::operator=(AlertWriter&& other) noexcept {
    if (this != &other) {
        close_file();
        fd_ = std::exchange(other.fd_, -1);
        owned_ = std::exchange(other.owned_, false);
        lost_ = std::exchange(other.lost_, false);
        path_ = std::move(other.path_);
        written_ = std::exchange(other.written_, 0);
        failed_ = std::exchange(other.failed_, 0);
        written_since_check_ = std::exchange(other.written_since_check_, 0);
        failing_ = std::exchange(other.failing_, 0);
    }
    return *this;
}

AlertWriter::~AlertWriter() {
    close_file();
}

void AlertWriter::write(const AlertRecord& record) {
    write_json(alert_to_json(record));
}

void AlertWriter::write_json(std::string line) {
    if (fd_ < 0) {
        failed_ += lost_ ? 1 : 0;  // removed and not created again yet
        return;
    }
    line.push_back('\n');
    // One write per record (O_APPEND), repeated for what a short write left. A record the
    // disk cannot take is cut off again, so the file never holds half a line that the next
    // record would run into.
    if (!owned_) {
        fflush(stdout);  // stdout: after what the program printed through stdio before
    }
    const off_t before = owned_ ? ::lseek(fd_, 0, SEEK_END) : -1;
    size_t done = 0;
    int error = 0;
    while (done < line.size()) {
        const ssize_t n = ::write(fd_, line.data() + done, line.size() - done);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            error = n < 0 ? errno : EIO;
            break;
        }
        done += static_cast<size_t>(n);
    }
    if (error == 0) {
        ++written_;
        ++written_since_check_;
        if (failing_ != 0) {
            log_info("control",
                    path_ + ": writing alert records again after " + std::to_string(failing_)
                            + " could not be written");
            failing_ = 0;
        }
        return;
    }
    if (done > 0 && before >= 0) {
        (void)::ftruncate(fd_, before);
    }
    ++failed_;
    // A full disk fails every record: said when writes start failing, then every 1000th.
    if (failing_++ % 1000 == 0) {
        log_error("control",
                "cannot write alert record (" + std::to_string(failing_)
                        + " lost since writes began to fail): " + errno_text(error));
    }
}

}  // namespace exfiltap::control
