#include "tests/bench/bench_packets.h"

#include <algorithm>
#include <array>
#include <cstring>
#include <string>
#include <utility>

#include "dataplane/decode.h"
#include "dataplane/pcap_io.h"

namespace exfiltap::bench {

namespace {

constexpr uint32_t kEthBytes = 14;
constexpr uint32_t kIpBytes = 20;
constexpr uint32_t kTcpBytes = 20;
constexpr uint32_t kHeaderBytes = kEthBytes + kIpBytes + kTcpBytes;
constexpr uint32_t kMinFrame = 60;  // 64 bytes on the wire with the FCS
constexpr uint64_t kFrameGapNs = 1000;
constexpr uint64_t kPassGapNs = 1000000000ULL;
// The byte of each IP address that new-flow passes XOR: the third byte of IPv4 (inside
// every default internal /8, /12 and /16), the eighth of IPv6 (inside a /64).
constexpr uint32_t kShiftByte4 = 2;
constexpr uint32_t kShiftByte6 = 7;

void put16(uint8_t* p, uint16_t v) {
    p[0] = static_cast<uint8_t>(v >> 8);
    p[1] = static_cast<uint8_t>(v);
}

void put32(uint8_t* p, uint32_t v) {
    put16(p, static_cast<uint16_t>(v >> 16));
    put16(p + 2, static_cast<uint16_t>(v));
}

uint16_t get16(const uint8_t* p) {
    return static_cast<uint16_t>((p[0] << 8) | p[1]);
}

uint32_t get32(const uint8_t* p) {
    return (uint32_t{get16(p)} << 16) | get16(p + 2);
}

uint32_t sum16(const uint8_t* p, uint32_t len, uint32_t sum) {
    for (uint32_t i = 0; i + 1 < len; i += 2) {
        sum += get16(p + i);
    }
    if ((len & 1U) != 0) {
        sum += uint32_t{p[len - 1]} << 8;
    }
    return sum;
}

uint16_t fold(uint32_t sum) {
    while ((sum >> 16) != 0) {
        sum = (sum & 0xffffU) + (sum >> 16);
    }
    return static_cast<uint16_t>(~sum);
}

// RFC 1624: a checksum after one 16-bit word of what it covers changed.
void replace16(uint8_t* checksum, uint16_t old_word, uint16_t new_word) {
    uint32_t sum = static_cast<uint16_t>(~get16(checksum));
    sum += static_cast<uint16_t>(~old_word);
    sum += new_word;
    put16(checksum, fold(sum));
}

struct Endpoints {
    std::array<uint8_t, 4> client{};
    std::array<uint8_t, 4> server{};
    uint16_t client_port = 0;
    uint16_t server_port = 0;
};

Endpoints endpoints(uint32_t flow, uint16_t server_port) {
    Endpoints e;
    e.client = {10, static_cast<uint8_t>(flow >> 16), static_cast<uint8_t>(flow >> 8),
            static_cast<uint8_t>(flow)};
    e.server = {203, 0, 113, static_cast<uint8_t>(1 + flow % 250)};
    e.client_port = static_cast<uint16_t>(1024 + flow % 60000);
    e.server_port = server_port;
    return e;
}

// An Ethernet/IPv4/TCP frame with valid checksums, padded to the Ethernet minimum.
std::vector<uint8_t> tcp_frame(const Endpoints& e, bool from_client, uint32_t seq, uint32_t ack,
        uint8_t flags, const uint8_t* payload, uint32_t payload_len) {
    const uint32_t ip_len = kIpBytes + kTcpBytes + payload_len;
    std::vector<uint8_t> f(std::max(kEthBytes + ip_len, kMinFrame), 0);
    const std::array<uint8_t, 12> macs = {2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2};
    std::copy(macs.begin(), macs.end(), f.begin());
    put16(&f[12], 0x0800);
    uint8_t* ip = &f[kEthBytes];
    ip[0] = 0x45;
    put16(ip + 2, static_cast<uint16_t>(ip_len));
    put16(ip + 6, 0x4000);  // DF
    ip[8] = 64;
    ip[9] = dataplane::kProtoTcp;
    const auto& src = from_client ? e.client : e.server;
    const auto& dst = from_client ? e.server : e.client;
    std::copy(src.begin(), src.end(), ip + 12);
    std::copy(dst.begin(), dst.end(), ip + 16);
    put16(ip + 10, fold(sum16(ip, kIpBytes, 0)));
    uint8_t* tcp = ip + kIpBytes;
    put16(tcp, from_client ? e.client_port : e.server_port);
    put16(tcp + 2, from_client ? e.server_port : e.client_port);
    put32(tcp + 4, seq);
    put32(tcp + 8, ack);
    tcp[12] = 5 << 4;
    tcp[13] = flags;
    put16(tcp + 14, 65535);
    if (payload_len > 0) {
        std::memcpy(tcp + kTcpBytes, payload, payload_len);
    }
    uint32_t sum = sum16(ip + 12, 8, 0) + dataplane::kProtoTcp + kTcpBytes + payload_len;
    put16(tcp + 16, fold(sum16(tcp, kTcpBytes + payload_len, sum)));
    return f;
}

// Deterministic text: words, spaces, sentence ends and line breaks, like a document.
class TextSource {
public:
    void fill(uint8_t* out, uint32_t len) {
        for (uint32_t i = 0; i < len; ++i) {
            if (pos_ >= word_.size()) {
                next_word();
            }
            out[i] = static_cast<uint8_t>(word_[pos_++]);
        }
    }

private:
    void next_word() {
        static constexpr std::array<const char*, 24> kWords = {"the", "quarterly", "report",
                "shows", "revenue", "growth", "across", "regions", "and", "customer", "accounts",
                "with", "margin", "forecast", "for", "next", "year", "team", "meeting", "notes",
                "project", "budget", "review", "summary"};
        state_ = state_ * 6364136223846793005ULL + 1442695040888963407ULL;
        const auto r = static_cast<uint32_t>(state_ >> 33);
        word_ = r % 97 == 0 ? ".\n" : (r % 13 == 0 ? ". " : " ");
        word_ += kWords[r % kWords.size()];
        pos_ = 0;
    }

    uint64_t state_ = 0x2545f4914f6cdd1dULL;
    std::string word_;
    size_t pos_ = 0;
};

// Digit runs of card length whose Luhn check fails, grouped and separated as cards are
// written, with a valid-looking issuer prefix so the validator runs to the Luhn step.
class DigitSource {
public:
    /// `valid`: numbers that pass the Luhn check (card findings) instead of failing it.
    explicit DigitSource(bool valid = false) : valid_(valid) {}

    /// The next number alone, as a card is written ("4556 7375 8689 9855").
    std::string next_number() {
        next_run();
        run_.pop_back();  // its separator
        return run_;
    }

    void fill(uint8_t* out, uint32_t len) {
        for (uint32_t i = 0; i < len; ++i) {
            if (pos_ >= run_.size()) {
                next_run();
            }
            out[i] = static_cast<uint8_t>(run_[pos_++]);
        }
    }

private:
    void next_run() {
        std::array<int, 16> d{};
        d[0] = 4;
        for (size_t i = 1; i < 15; ++i) {
            state_ = state_ * 6364136223846793005ULL + 1442695040888963407ULL;
            d[i] = static_cast<int>((state_ >> 33) % 10);
        }
        // Luhn: the check digit that would pass, then one that does not.
        int sum = 0;
        for (size_t i = 0; i < 15; ++i) {
            int v = d[14 - i];
            if (i % 2 == 0) {
                v *= 2;
                v = v > 9 ? v - 9 : v;
            }
            sum += v;
        }
        d[15] = ((10 - sum % 10) % 10 + (valid_ ? 0 : 1)) % 10;
        run_.clear();
        const char sep = (state_ >> 40) % 3 == 0 ? '-' : ' ';
        for (size_t i = 0; i < 16; ++i) {
            if (i > 0 && i % 4 == 0) {
                run_ += sep;
            }
            run_ += static_cast<char>('0' + d[i]);
        }
        run_ += (state_ >> 44) % 4 == 0 ? '\n' : ' ';
        pos_ = 0;
    }

    uint64_t state_ = 0x9e3779b97f4a7c15ULL;
    std::string run_;
    size_t pos_ = 0;
    bool valid_ = false;
};

}  // namespace

void Traffic::add(const std::vector<uint8_t>& frame, uint32_t seq_step, uint32_t ack_step,
        uint32_t stream, uint64_t time_ns) {
    frames.push_back(Frame{bytes.size(), static_cast<uint32_t>(frame.size()), seq_step, ack_step,
            stream, time_ns});
    bytes.insert(bytes.end(), frame.begin(), frame.end());
    max_len = std::max(max_len, static_cast<uint32_t>(frame.size()));
}

Traffic make_pure_acks(uint32_t flows, PassChange change) {
    Traffic t;
    t.change = change;
    t.bytes.reserve(size_t{flows} * kMinFrame);
    t.frames.reserve(flows);
    constexpr uint32_t kAckStep = 1460;  // as if the server sent one segment each pass
    for (uint32_t f = 0; f < flows; ++f) {
        const Endpoints e = endpoints(f, 443);
        t.add(tcp_frame(e, true, 1000 + f, 5000 + f, dataplane::kTcpAck, nullptr, 0), 0,
                change == PassChange::Advance ? kAckStep : 0, UINT32_MAX, f * kFrameGapNs);
    }
    t.pass_ns = flows * kFrameGapNs + kPassGapNs;
    return t;
}

Traffic make_imix(uint32_t flows, uint32_t rounds) {
    Traffic t;
    t.change = PassChange::Advance;
    TextSource text;
    constexpr std::array<uint32_t, 5> kData = {536, 536, 536, 536, 1460};
    uint32_t per_round = 0;
    for (const uint32_t n : kData) {
        per_round += n;
    }
    const uint32_t per_pass = per_round * rounds;
    std::vector<uint32_t> sent(flows, 0);
    std::vector<uint8_t> payload(1460);
    uint64_t time = 0;
    for (uint32_t r = 0; r < rounds; ++r) {
        for (uint32_t f = 0; f < flows; ++f) {
            const Endpoints e = endpoints(f, 8080);
            const uint32_t seq0 = 1000 + f * 7919;
            const uint32_t ack0 = 900000 + f;
            // 5 data frames (4 x 594 and 1 x 1518 on the wire) and 7 x 64-byte ACKs.
            for (size_t i = 0; i < kData.size(); ++i) {
                text.fill(payload.data(), kData[i]);
                t.add(tcp_frame(e, true, seq0 + sent[f], ack0,
                              dataplane::kTcpAck | dataplane::kTcpPsh, payload.data(), kData[i]),
                        per_pass, 0, f, time);
                time += kFrameGapNs;
                sent[f] += kData[i];
                t.add(tcp_frame(e, false, ack0, seq0 + sent[f], dataplane::kTcpAck, nullptr, 0), 0,
                        per_pass, UINT32_MAX, time);
                time += kFrameGapNs;
            }
            for (int i = 0; i < 2; ++i) {
                t.add(tcp_frame(e, false, ack0, seq0 + sent[f], dataplane::kTcpAck, nullptr, 0), 0,
                        per_pass, UINT32_MAX, time);
                time += kFrameGapNs;
            }
        }
    }
    t.streams = flows;
    t.pass_ns = time + kPassGapNs;
    return t;
}

Traffic make_uploads(uint32_t flows, uint32_t segments, uint32_t segment_bytes, PayloadKind kind) {
    Traffic t;
    t.change = PassChange::Advance;
    TextSource text;
    DigitSource digits;
    DigitSource cards(true);
    const uint32_t per_pass = segments * segment_bytes;
    std::vector<uint8_t> payload(segment_bytes);
    t.bytes.reserve(size_t{flows} * segments * (segment_bytes + kHeaderBytes + 8));
    uint64_t time = 0;
    for (uint32_t s = 0; s < segments; ++s) {
        for (uint32_t f = 0; f < flows; ++f) {
            const Endpoints e = endpoints(f, 9000);
            if (kind == PayloadKind::Text) {
                text.fill(payload.data(), segment_bytes);
            } else if (kind == PayloadKind::Cards) {
                text.fill(payload.data(), segment_bytes);
                const std::string card = " card " + cards.next_number() + " exp 12/29 ";
                if (segment_bytes >= 2 * card.size()) {
                    std::copy(card.begin(), card.end(), payload.begin() + segment_bytes / 2);
                }
            } else {
                digits.fill(payload.data(), segment_bytes);
            }
            t.add(tcp_frame(e, true, 1000 + f * 7919 + s * segment_bytes, 5000,
                          dataplane::kTcpAck | dataplane::kTcpPsh, payload.data(), segment_bytes),
                    per_pass, 0, f, time);
            time += kFrameGapNs;
        }
    }
    t.streams = flows;
    t.pass_ns = time + kPassGapNs;
    return t;
}

Result<Traffic> load_capture(const std::string& path) {
    auto reader = dataplane::PcapReader::open(path);
    if (!reader) {
        return make_error(reader.error());
    }
    if (reader->datalink() != 1) {
        return make_error(path + ": only Ethernet captures are replayed");
    }
    Traffic t;
    t.change = PassChange::ShiftAddresses;
    dataplane::CapturedPacket pkt;
    uint64_t first = 0;
    uint64_t last = 0;
    std::vector<uint8_t> frame;
    while (reader->next(pkt)) {
        if (t.frames.empty()) {
            first = pkt.time_ns;
        }
        last = std::max(last, pkt.time_ns);
        frame.assign(pkt.data, pkt.data + pkt.caplen);
        t.add(frame, 0, 0, UINT32_MAX, pkt.time_ns >= first ? pkt.time_ns - first : 0);
    }
    if (!reader->error().empty()) {
        return make_error(path + ": " + reader->error());
    }
    t.pass_ns = (last - first) + kPassGapNs;
    return t;
}

void change_frame(uint8_t* frame, uint32_t len, PassChange change, const Frame& info,
        unsigned pass) noexcept {
    dataplane::PacketInfo p;
    if (!dataplane::decode_packet(frame, len, p) || p.ip_version == 0) {
        return;
    }
    const bool l4 = !p.fragment || p.first_fragment;
    uint8_t* checksum = nullptr;
    if (l4 && p.l4_proto == dataplane::kProtoTcp && p.l4_offset + 18U <= len) {
        checksum = frame + p.l4_offset + 16;
    } else if (l4 && p.l4_proto == dataplane::kProtoUdp && p.l4_offset + 8U <= len
            && get16(frame + p.l4_offset + 6) != 0) {
        checksum = frame + p.l4_offset + 6;
    }
    if (change == PassChange::Advance) {
        if (p.l4_proto != dataplane::kProtoTcp || checksum == nullptr) {
            return;
        }
        for (const auto& [off, step] :
                {std::pair{4U, info.seq_step}, std::pair{8U, info.ack_step}}) {
            uint8_t* field = frame + p.l4_offset + off;
            const uint32_t old_value = get32(field);
            const uint32_t new_value = old_value + step;
            put32(field, new_value);
            replace16(checksum, static_cast<uint16_t>(old_value >> 16),
                    static_cast<uint16_t>(new_value >> 16));
            replace16(checksum, static_cast<uint16_t>(old_value), static_cast<uint16_t>(new_value));
        }
        return;
    }
    // Pass p's addresses are the capture's XORed with p in one byte (1..255, then again).
    const auto value = [](unsigned n) {
        return static_cast<uint8_t>(n == 0 ? 0 : 1 + (n - 1) % 255);
    };
    const uint8_t delta = value(pass) ^ value(pass - 1);
    const uint32_t src = p.ip_version == 4 ? p.l3_offset + 12U : p.l3_offset + 8U;
    const uint32_t dst = p.ip_version == 4 ? p.l3_offset + 16U : p.l3_offset + 24U;
    const uint32_t byte = p.ip_version == 4 ? kShiftByte4 : kShiftByte6;
    for (const uint32_t addr : {src, dst}) {
        uint8_t* word = frame + ((addr + byte) & ~1U);
        const uint16_t old_word = get16(word);
        frame[addr + byte] ^= delta;
        const uint16_t new_word = get16(word);
        if (p.ip_version == 4) {
            replace16(frame + p.l3_offset + 10, old_word, new_word);
        }
        if (checksum != nullptr) {
            replace16(checksum, old_word, new_word);
        }
    }
}

}  // namespace exfiltap::bench
