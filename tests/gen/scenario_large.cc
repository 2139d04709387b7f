// The large capture: thousands of HTTP uploads and downloads (1 KB to 2 MB, text and
// binary), internal transfers and DNS lookups, interleaved in time, with rare sensitive
// values. The packet count is exact: near the end flows are made smaller, and the last few
// packets are DNS lookups, so every TCP flow in the file is complete.

#include <deque>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "tests/gen/scenario_common.h"
#include "tests/gen/scenarios.h"
#include "tests/gen/sensitive.h"
#include "tests/gen/udp_flow.h"

namespace exfiltap::gen {
namespace {

constexpr size_t kOutboundCards = 20;
constexpr size_t kOutboundSsns = 10;
constexpr size_t kInboundCards = 4;
constexpr size_t kInternalSsns = 3;
constexpr uint64_t kMinTcpPackets = 10;  // handshake, one request, one answer, teardown
constexpr size_t kMinValueBody = 6000;   // room to put two values across segment boundaries
constexpr uint16_t kTaggedSubnet = 30;   // inside hosts 10.20.30.0/24 sit on VLAN 30
constexpr uint16_t kTaggedVlan = 30;

enum class Kind {
    kDns,
    kUpload,
    kDownload,
    kInternal,
};

struct Planned {
    ValueClass cls;
    std::string digits;
    std::string shown;
    uint64_t due;  // may be placed once this many packets are planned
    bool straddle;
};

struct Placed {
    ValueClass cls;
    std::string digits;
    Endpoint from;
    Endpoint to;
    std::string note;
};

struct Candidate {
    std::unique_ptr<Flow> flow;
    std::deque<Planned>* source = nullptr;  // values taken from the front of this list
    std::vector<Placed> placed;
};

class Large {
public:
    Large(Capture& capture, Expectations& expect, uint64_t seed, uint64_t target);
    void run();

private:
    void plan_values();
    Candidate dns_flow(bool answered);
    Candidate http_flow(Kind kind, uint64_t body_size);
    Candidate build(Kind kind, uint64_t body_size);
    uint64_t body_size();
    Endpoint client_endpoint(const Host& client, const Endpoint& server, uint8_t proto);
    std::string text_with_values(TextStyle style, size_t len, size_t head_len, size_t mss,
            std::vector<Planned>& values, std::vector<std::string>& notes);
    void accept(Candidate candidate);

    Capture& capture_;
    Expectations& expect_;
    uint64_t target_;
    Rng rng_;
    Rng value_rng_;
    ValueSource values_;
    std::vector<Host> clients_v4_;
    std::vector<Host> clients_v6_;
    std::vector<Host> servers_v4_;
    std::vector<Host> servers_v6_;
    std::vector<Host> internal_servers_;
    Host resolver_;
    std::deque<Planned> outbound_;
    std::deque<Planned> inbound_;
    std::deque<Planned> internal_;
    uint64_t t_ = kBaseTimeUs + 50000;
};

Large::Large(Capture& capture, Expectations& expect, uint64_t seed, uint64_t target)
    : capture_(capture),
      expect_(expect),
      target_(target),
      rng_(seed),
      value_rng_(rng_.fork()),
      values_(value_rng_),
      resolver_(outside_host(rng_, IpAddr::v4(198, 51, 100, 53))) {
    std::set<IpAddr> seen{resolver_.ip};
    auto unique = [&seen](const IpAddr& ip) {
        return seen.insert(ip).second;
    };
    while (clients_v4_.size() < 400) {
        const IpAddr ip = IpAddr::v4(10, 20, static_cast<uint8_t>(rng_.range(1, 60)),
                static_cast<uint8_t>(rng_.range(10, 250)));
        if (unique(ip)) {
            clients_v4_.push_back(inside_host(rng_, ip));
        }
    }
    while (clients_v6_.size() < 24) {
        const IpAddr ip = IpAddr::v6(
                {0xfd00, 0x20, 0, 0, 0, 0, 0, static_cast<uint16_t>(rng_.range(0x10, 0xfff0))});
        if (unique(ip)) {
            clients_v6_.push_back(inside_host(rng_, ip));
        }
    }
    while (servers_v4_.size() < 150) {
        const bool first = rng_.chance(0.5);
        const IpAddr ip = IpAddr::v4(first ? 198 : 203, first ? 51 : 0, first ? 100 : 113,
                static_cast<uint8_t>(rng_.range(1, 254)));
        if (unique(ip)) {
            servers_v4_.push_back(outside_host(rng_, ip));
        }
    }
    while (servers_v6_.size() < 16) {
        const IpAddr ip = IpAddr::v6({0x2001, 0xdb8, static_cast<uint16_t>(rng_.range(1, 0xff)), 0,
                0, 0, 0, static_cast<uint16_t>(rng_.range(1, 0x1ff))});
        if (unique(ip)) {
            servers_v6_.push_back(outside_host(rng_, ip));
        }
    }
    while (internal_servers_.size() < 12) {
        const IpAddr ip = IpAddr::v4(10, 20, 100, static_cast<uint8_t>(rng_.range(10, 60)));
        if (unique(ip)) {
            internal_servers_.push_back(inside_host(rng_, ip));
        }
    }
    plan_values();
}

void Large::plan_values() {
    // Spread over the first 90% of the capture, so they are placed before it ends.
    auto due = [this](size_t i, size_t n) {
        return target_ * 9 / 10 * (2 * i + 1) / (2 * n);
    };
    static constexpr CardBrand kBrands[] = {
            CardBrand::kVisa, CardBrand::kMastercard, CardBrand::kAmex, CardBrand::kDiscover};
    static constexpr Separator kSeps[] = {
            Separator::kNone, Separator::kSpace, Separator::kNone, Separator::kDash};
    auto card = [this](size_t i) {
        const std::string d = values_.card(kBrands[i % 4]);
        return Planned{ValueClass::kPaymentCard, d, format_card(d, kSeps[i / 4 % 4]), 0, false};
    };
    auto ssn = [this]() {
        const std::string d = values_.ssn();
        return Planned{ValueClass::kUsSsn, d, format_ssn(d), 0, false};
    };
    const size_t n = kOutboundCards + kOutboundSsns;
    for (size_t i = 0, c = 0; i < n; ++i) {
        Planned p = i % 3 == 2 ? ssn() : card(c++);
        p.due = due(i, n);
        p.straddle = i % 2 == 0;  // every other one crosses a segment boundary
        outbound_.push_back(std::move(p));
    }
    for (size_t i = 0; i < kInboundCards; ++i) {
        Planned p = card(i + 1);
        p.due = due(i, kInboundCards);
        inbound_.push_back(std::move(p));
    }
    for (size_t i = 0; i < kInternalSsns; ++i) {
        Planned p = ssn();
        p.due = due(i, kInternalSsns);
        p.straddle = i == 0;
        internal_.push_back(std::move(p));
    }
}

uint64_t Large::body_size() {
    const uint64_t u = rng_.below(100);
    if (u < 75) {
        return rng_.log_uniform(1000, 20000);
    }
    if (u < 96) {
        return rng_.log_uniform(20000, 200000);
    }
    return rng_.log_uniform(200000, 2000000);
}

Endpoint Large::client_endpoint(const Host& client, const Endpoint& server, uint8_t proto) {
    for (;;) {
        const Endpoint c{client, ephemeral_port(rng_)};
        if (!capture_.has_flow(FlowKey::of(c, server, proto))) {
            return c;
        }
    }
}

Candidate Large::dns_flow(bool answered) {
    static constexpr const char* kZones[] = {"example.com", "example.net", "example.org"};
    const Host& client = clients_v4_[rng_.below(clients_v4_.size())];
    const Endpoint server{resolver_, 53};
    const Endpoint c = client_endpoint(client, server, kProtoUdp);
    auto flow = std::make_unique<UdpFlow>(c, server, rng_);
    std::string name(word(rng_));
    if (rng_.chance(0.3)) {
        name += std::to_string(rng_.range(1, 9));
    }
    name += ".";
    name += rng_.pick(kZones);
    const auto id = static_cast<uint16_t>(rng_.next());
    flow->add(t_, true, dns_query(id, name, 1));
    if (answered) {
        const IpAddr& answer = servers_v4_[rng_.below(servers_v4_.size())].ip;
        flow->add(t_ + 2ull * resolver_.delay_us + rng_.range(100, 5000), false,
                dns_response(id, name, 1, static_cast<uint32_t>(rng_.range(60, 3600)), answer));
    }
    return Candidate{std::move(flow), nullptr, {}};
}

// Filler text of len bytes with the values in it, each in its own part of the text. A value
// marked straddle is put across a segment boundary (boundaries at multiples of mss from the
// head's first byte) when its part holds one.
std::string Large::text_with_values(TextStyle style, size_t len, size_t head_len, size_t mss,
        std::vector<Planned>& values, std::vector<std::string>& notes) {
    // Never empty, and no suffix is followed by a digit: nothing next to a value can be read as
    // more digits of it.
    static constexpr const char* kCardPrefixes[] = {
            "card ", "Card number: ", "cc=", "ref ", "pay with "};
    static constexpr const char* kSsnPrefixes[] = {"SSN ", "ssn: ", "id ", "employee "};
    static constexpr const char* kSuffixes[] = {"\n", " ", "; ", " exp 04/29\n"};
    std::vector<Insert> inserts;
    for (size_t i = 0; i < values.size(); ++i) {
        const Planned& v = values[i];
        const size_t lo = len * i / values.size() + 40;
        const size_t hi = len * (i + 1) / values.size() - 40;
        const size_t n = v.shown.size();
        size_t at = rng_.range(lo, hi - n);
        if (v.straddle) {
            const size_t first_k = (head_len + lo + n) / mss + 1;
            const size_t last_k = (head_len + hi - n) / mss;
            if (first_k <= last_k) {
                const size_t boundary = rng_.range(first_k, last_k) * mss;
                at = boundary - head_len - rng_.range(1, n - 1);
            }
        }
        const bool split = (head_len + at) / mss != (head_len + at + n - 1) / mss;
        notes.push_back(split ? "large: split across segments" : "large");
        const char* prefix = v.cls == ValueClass::kPaymentCard ? rng_.pick(kCardPrefixes)
                                                               : rng_.pick(kSsnPrefixes);
        std::string suffix = rng_.pick(kSuffixes);
        if (v.cls == ValueClass::kUsSsn && suffix[0] == ' ' && suffix.size() > 1) {
            suffix = "\n";
        }
        inserts.push_back(Insert{at, prefix, v.shown, suffix});
    }
    return compose_text(rng_, style, len, inserts);
}

Candidate Large::http_flow(Kind kind, uint64_t size) {
    static constexpr TextStyle kStyles[] = {TextStyle::kProse, TextStyle::kLog, TextStyle::kCsv};
    static constexpr const char* kTextTypes[] = {
            "text/plain; charset=utf-8", "text/plain; charset=utf-8", "text/csv"};
    static constexpr const char* kUploadPaths[] = {
            "/api/v2/upload", "/sync/push", "/files/", "/collect", "/share/put"};

    // Ends: inside client; outside server (some over IPv6) or an internal one.
    const bool v6 = kind != Kind::kInternal && rng_.chance(0.07);
    const auto& clients = v6 ? clients_v6_ : clients_v4_;
    const auto& servers = kind == Kind::kInternal ? internal_servers_
            : v6                                  ? servers_v6_
                                                  : servers_v4_;
    const Endpoint server{
            servers[rng_.below(servers.size())], rng_.chance(0.7) ? uint16_t{80} : uint16_t{8080}};
    const Host& client_host = clients[rng_.below(clients.size())];
    const Endpoint client = client_endpoint(client_host, server, kProtoTcp);
    const bool tagged = !v6 && client_host.ip.bytes[2] == kTaggedSubnet;
    const TcpConfig config = tcp_config(rng_, client, server, tagged ? kTaggedVlan : 0);
    const bool upload = kind == Kind::kUpload || (kind == Kind::kInternal && rng_.chance(0.5));

    // Values due now ride in this flow: outbound and internal ones in uploads, inbound ones
    // in downloads from outside.
    std::deque<Planned>* source = kind == Kind::kInternal ? (upload ? &internal_ : nullptr)
            : upload                                      ? &outbound_
                                                          : &inbound_;
    std::vector<Planned> carried;
    if (source != nullptr) {
        for (const Planned& p : *source) {
            if (carried.size() == 2 || p.due > capture_.planned_packets()) {
                break;
            }
            carried.push_back(p);
        }
    }
    const bool text = !carried.empty() || rng_.chance(0.6);
    if (!carried.empty()) {
        size = std::max<uint64_t>(size, kMinValueBody);
    }
    const size_t style = rng_.below(3);
    const std::string host = std::string(word(rng_)) + ".example.com";

    std::string path(rng_.pick(kUploadPaths));
    HttpExchange ex;
    std::vector<std::string> notes;
    auto body = [&](size_t head_len) {
        return text ? text_with_values(kStyles[style], size, head_len, config.mss, carried, notes)
                    : binary_blob(rng_, size);
    };
    if (upload) {
        const std::string head = http_request_head(rng_,
                HttpRequest{rng_.chance(0.5) ? "POST" : "PUT", host, path,
                        text ? kTextTypes[style] : "application/octet-stream", size});
        ex.request = head + body(head.size());
        ex.response = HttpResponse{201, "Created", "application/json"};
        ex.response_body = "{\"status\":\"stored\"}";
    } else {
        path = "/" + std::string(word(rng_)) + "/" + std::string(word(rng_))
                + (text ? ".txt" : ".bin");
        ex.request = http_request_head(rng_, HttpRequest{"GET", host, path});
        ex.response.content_type = text ? kTextTypes[style] : "application/octet-stream";
        ex.response_body = body(0);  // inbound values need not straddle
    }

    // Now and then the bulk direction loses its order or repeats a segment.
    Disorder& disorder = upload ? ex.request_disorder : ex.response_disorder;
    const size_t segments = (size + config.mss - 1) / config.mss;
    const bool disordered = segments >= 4 && rng_.chance(0.06);
    if (disordered) {
        if (rng_.chance(0.6)) {
            disorder.swaps.push_back(rng_.below(segments - 2));
        }
        if (disorder.swaps.empty() || rng_.chance(0.4)) {
            disorder.retransmits.push_back(rng_.below(segments - 1));
        }
    }

    auto session = std::make_unique<TcpSession>(config, rng_, t_);
    session->connect();
    run_exchange(*session, rng_, ex);
    session->pause(rng_.range(50, 3000));
    session->close(rng_.chance(0.5) ? Side::kServer : Side::kClient);

    Candidate candidate{nullptr, carried.empty() ? nullptr : source, {}};
    for (size_t i = 0; i < carried.size(); ++i) {
        std::string note = notes[i] + (disordered ? ", flow has reordering/retransmission" : "");
        candidate.placed.push_back(Placed{carried[i].cls, carried[i].digits,
                upload ? client : server, upload ? server : client, std::move(note)});
    }
    candidate.flow = std::move(session);
    return candidate;
}

Candidate Large::build(Kind kind, uint64_t size) {
    return kind == Kind::kDns ? dns_flow(rng_.chance(0.97)) : http_flow(kind, size);
}

void Large::accept(Candidate candidate) {
    for (Placed& p : candidate.placed) {
        expect_.add(p.cls, p.digits, p.from, p.to, kProtoTcp, std::move(p.note));
        candidate.source->pop_front();
    }
    capture_.add(std::move(candidate.flow));
}

void Large::run() {
    while (capture_.planned_packets() < target_) {
        const uint64_t remaining = target_ - capture_.planned_packets();
        t_ += rng_.range(0, 4000);
        capture_.emit_before(t_);

        // The last few packets: DNS, one lone query if one packet is left.
        if (remaining < kMinTcpPackets) {
            accept(dns_flow(remaining >= 2));
            continue;
        }
        const uint64_t u = rng_.below(100);
        const Kind kind = u < 14 ? Kind::kDns
                : u < 20         ? Kind::kInternal
                : u < 50         ? Kind::kUpload
                                 : Kind::kDownload;
        uint64_t size = body_size();
        Candidate candidate = build(kind, size);
        // Too many packets for what is left: smaller until it fits, else a lookup.
        while (candidate.flow->packet_count() > remaining && size > 1000) {
            size = std::max<uint64_t>(size / 3, 1000);
            candidate = build(kind, size);
        }
        if (candidate.flow->packet_count() > remaining) {
            candidate = dns_flow(true);
        }
        accept(std::move(candidate));
    }
    capture_.finish();
}

}  // namespace

void run_large(Capture& capture, Expectations& expect, uint64_t seed, uint64_t packets) {
    Large large(capture, expect, seed, packets);
    large.run();
}

}  // namespace exfiltap::gen
