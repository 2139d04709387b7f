// The demo capture: one flow per situation, small enough to read in Wireshark.
//
//  (a) HTTP POST of a CSV with three cards (Visa, Mastercard, Amex) and two SSNs, outbound;
//      the Mastercard number and the first SSN are cut across segment boundaries.
//  (b) HTTP PUT, outbound: a Discover number cut across two segments that arrive swapped,
//      an SSN cut across a segment that is later retransmitted with the same bytes.
//  (c) Benign browsing: GETs with HTML answers, no card-like numbers.
//  (d) A download whose page holds a card number: inbound, not exfiltration.
//  (e) An internal-to-internal upload holding an SSN: internal, not exfiltration.
//  (f) DNS lookups over UDP.
//  (g) IPv6 (fd00::/8 to 2001:db8::/32) upload of a card number, outbound.
//  (h) 802.1Q-tagged (VLAN 120) upload of an SSN, outbound.

#include <algorithm>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "tests/gen/scenario_common.h"
#include "tests/gen/scenarios.h"
#include "tests/gen/sensitive.h"
#include "tests/gen/udp_flow.h"

namespace exfiltap::gen {
namespace {

constexpr uint16_t kVlan = 120;

IpAddr v4(uint8_t a, uint8_t b, uint8_t c, uint8_t d) {
    return IpAddr::v4(a, b, c, d);
}

class Demo {
public:
    Demo(Expectations& expect, uint64_t seed)
        : rng_(seed),
          value_rng_(rng_.fork()),
          values_(value_rng_),
          expect_(expect),
          resolver_(outside_host(rng_, v4(198, 51, 100, 53))) {}

    void build();
    void write(Capture& capture);

private:
    void next(uint64_t lo_ms, uint64_t hi_ms) { t_ += rng_.range(lo_ms * 1000, hi_ms * 1000); }
    std::unique_ptr<TcpSession> open(
            const Host& client, const Host& server, uint16_t port, uint16_t vlan = 0);
    void finish(std::unique_ptr<TcpSession> session, Side closes_first);
    void dns(const Host& client, std::string_view name, const IpAddr& answer);
    void browse(const Host& client, const Host& server, std::string_view site,
            const std::vector<std::pair<std::string, size_t>>& pages);
    void csv_upload();         // (a)
    void disordered_upload();  // (b)
    void inbound_receipt();    // (d)
    void internal_transfer();  // (e)
    void ipv6_checkout();      // (g)
    void vlan_form();          // (h)
    void record(ValueClass cls, const std::string& digits, const TcpSession& s, std::string note);

    Rng rng_;
    Rng value_rng_;
    ValueSource values_;
    Expectations& expect_;
    Host resolver_;
    uint64_t t_ = kBaseTimeUs + 150000;
    std::vector<std::unique_ptr<Flow>> flows_;
};

std::unique_ptr<TcpSession> Demo::open(
        const Host& client, const Host& server, uint16_t port, uint16_t vlan) {
    const Endpoint c{client, ephemeral_port(rng_)};
    const Endpoint s{server, port};
    auto session = std::make_unique<TcpSession>(tcp_config(rng_, c, s, vlan), rng_, t_);
    session->connect();
    return session;
}

void Demo::finish(std::unique_ptr<TcpSession> session, Side closes_first) {
    session->pause(rng_.range(100, 2000));
    session->close(closes_first);
    flows_.push_back(std::move(session));
}

void Demo::record(
        ValueClass cls, const std::string& digits, const TcpSession& s, std::string note) {
    expect_.add(cls, digits, s.config().client, s.config().server, kProtoTcp, std::move(note));
}

void Demo::dns(const Host& client, std::string_view name, const IpAddr& answer) {
    const Endpoint c{client, ephemeral_port(rng_)};
    const Endpoint s{resolver_, 53};
    auto flow = std::make_unique<UdpFlow>(c, s, rng_);
    const auto id = static_cast<uint16_t>(rng_.next());
    const uint16_t qtype = answer.is_v6 ? 28 : 1;
    flow->add(t_, true, dns_query(id, name, qtype));
    const uint64_t answered = t_ + 2ull * resolver_.delay_us + rng_.range(200, 4000);
    flow->add(answered, false, dns_response(id, name, qtype, 300, answer));
    flows_.push_back(std::move(flow));
    t_ = answered + rng_.range(100, 500);
}

void Demo::browse(const Host& client, const Host& server, std::string_view site,
        const std::vector<std::pair<std::string, size_t>>& pages) {
    auto session = open(client, server, 80);
    for (size_t i = 0; i < pages.size(); ++i) {
        const bool more = i + 1 < pages.size();
        HttpExchange ex;
        ex.request = http_request_head(rng_, HttpRequest{"GET", site, pages[i].first, "", 0, more});
        ex.response.keep_alive = more;
        std::string title(word(rng_));
        title[0] = static_cast<char>(title[0] - 'a' + 'A');
        ex.response_body = html_page(rng_, title + " " + std::string(word(rng_)), pages[i].second);
        run_exchange(*session, rng_, ex);
        if (more) {
            session->pause(rng_.range(400000, 2500000));  // the user reads
        }
    }
    finish(std::move(session), Side::kClient);
}

void Demo::csv_upload() {
    const Host client = inside_host(rng_, v4(10, 20, 1, 15));
    const Host server = outside_host(rng_, v4(203, 0, 113, 10));
    const std::string visa = values_.card(CardBrand::kVisa);
    const std::string mc = values_.card(CardBrand::kMastercard);
    const std::string amex = values_.card(CardBrand::kAmex);
    const std::string ssn1 = values_.ssn();
    const std::string ssn2 = values_.ssn();

    std::string body = "name,card,exp\n";
    body += person_name(rng_) + "," + format_card(visa, Separator::kDash) + ",09/28\n";
    body += person_name(rng_) + ",";
    const size_t mc_at = body.size();
    body += mc + ",02/27\n";
    body += person_name(rng_) + "," + format_card(amex, Separator::kSpace) + ",11/29\n";
    body += "\nname,ssn,dept\n" + person_name(rng_) + ",";
    const size_t ssn_at = body.size();
    body += format_ssn(ssn1) + ",finance\n";
    body += person_name(rng_) + "," + format_ssn(ssn2) + ",logistics\n";
    body += "\nnotes\n" + filler_text(rng_, TextStyle::kProse, 2600);

    HttpExchange ex;
    const std::string head = http_request_head(rng_,
            HttpRequest{"POST", "upload.example.net", "/api/v1/import", "text/csv", body.size()});
    ex.request = head + body;
    // The head goes out alone; the body is written row by row, so segment boundaries fall
    // inside the Mastercard number (after 7 digits) and the first SSN (after "ddd-d").
    ex.request_cuts = {head.size(), head.size() + mc_at + 7, head.size() + ssn_at + 5};
    ex.response = HttpResponse{201, "Created", "application/json"};
    ex.response_body = "{\"status\":\"imported\",\"rows\":5}";

    auto session = open(client, server, 80);
    run_exchange(*session, rng_, ex);
    record(ValueClass::kPaymentCard, visa, *session, "(a) Visa 4-4-4-4 with dashes");
    record(ValueClass::kPaymentCard, mc, *session, "(a) Mastercard, split across segments 2/3");
    record(ValueClass::kPaymentCard, amex, *session, "(a) Amex 4-6-5 with spaces");
    record(ValueClass::kUsSsn, ssn1, *session, "(a) SSN split across segments 3/4");
    record(ValueClass::kUsSsn, ssn2, *session, "(a) SSN");
    finish(std::move(session), Side::kServer);
}

void Demo::disordered_upload() {
    const Host client = inside_host(rng_, v4(10, 20, 2, 41));
    const Host server = outside_host(rng_, v4(203, 0, 113, 45));
    const std::string discover = values_.card(CardBrand::kDiscover);
    const std::string ssn = values_.ssn();
    constexpr size_t kBody = 14000;
    constexpr size_t kMss = 1460;
    const std::string head = http_request_head(rng_,
            HttpRequest{"PUT", "backup.example.org", "/backup/notes/2026-03-02.txt",
                    "text/plain; charset=utf-8", kBody});

    // Segments (0-based) cut at multiples of the MSS from the head's first byte. The card
    // straddles segments 1/2, which go out swapped; the SSN straddles 4/5, and segment 4 is
    // retransmitted.
    std::vector<Insert> inserts;
    inserts.push_back(Insert{2 * kMss - head.size() - 9,
            "Payment card on file: ", format_card(discover, Separator::kSpace), " (exp 10/28)\n"});
    inserts.push_back(Insert{5 * kMss - head.size() - 4, "Tax record SSN ", format_ssn(ssn), "\n"});
    HttpExchange ex;
    ex.request = head + compose_text(rng_, TextStyle::kProse, kBody, inserts);
    ex.request_disorder.swaps = {1};
    ex.request_disorder.retransmits = {4};
    ex.response = HttpResponse{201, "Created", "text/plain"};
    ex.response_body = "created\n";

    auto session = open(client, server, 8080);
    run_exchange(*session, rng_, ex);
    record(ValueClass::kPaymentCard, discover, *session,
            "(b) Discover, split across segments that arrive out of order");
    record(ValueClass::kUsSsn, ssn, *session,
            "(b) SSN, split across segments, first part retransmitted");
    finish(std::move(session), Side::kServer);
}

void Demo::inbound_receipt() {
    const Host client = inside_host(rng_, v4(10, 20, 3, 7));
    const Host server = outside_host(rng_, v4(198, 51, 100, 80));
    const std::string visa = values_.card(CardBrand::kVisa);
    std::string page = html_page(rng_, "Order receipt", 5200);
    const std::string receipt = "<p>Order 20417 for " + person_name(rng_)
            + "</p>\n<p>Card charged: " + format_card(visa, Separator::kSpace)
            + ", exp 06/28</p>\n";
    page.insert(page.find("</h1>\n") + 6, receipt);

    HttpExchange ex;
    ex.request = http_request_head(
            rng_, HttpRequest{"GET", "shop.example.com", "/account/orders/20417/receipt"});
    ex.response_body = page;
    auto session = open(client, server, 80);
    run_exchange(*session, rng_, ex);
    expect_.add(ValueClass::kPaymentCard, visa, session->config().server, session->config().client,
            kProtoTcp, "(d) card in a downloaded page");
    finish(std::move(session), Side::kServer);
}

void Demo::internal_transfer() {
    const Host client = inside_host(rng_, v4(10, 20, 4, 12));
    const Host server = inside_host(rng_, v4(10, 20, 8, 20));
    const std::string ssn = values_.ssn();
    std::string body = "name,ssn,dept\n" + person_name(rng_) + "," + format_ssn(ssn) + ",payroll\n";
    body += "\nitem,qty,price,location\n" + filler_text(rng_, TextStyle::kCsv, 5200);

    HttpExchange ex;
    ex.request = http_request_head(rng_,
            HttpRequest{"POST", "hr-files.corp.example", "/hr/import", "text/csv", body.size()});
    ex.request += body;
    ex.response = HttpResponse{200, "OK", "application/json"};
    ex.response_body = "{\"status\":\"ok\"}";
    auto session = open(client, server, 8080);
    run_exchange(*session, rng_, ex);
    record(ValueClass::kUsSsn, ssn, *session, "(e) SSN sent between two inside hosts");
    finish(std::move(session), Side::kServer);
}

void Demo::ipv6_checkout() {
    const Host client = inside_host(rng_, IpAddr::v6({0xfd00, 0x20, 0, 0, 0, 0, 0, 0x15}));
    const Host server = outside_host(rng_, IpAddr::v6({0x2001, 0xdb8, 0x40, 0, 0, 0, 0, 0x80}));
    const std::string visa = values_.card(CardBrand::kVisa);
    std::string note = filler_text(rng_, TextStyle::kProse, 1900);
    note.pop_back();
    const std::string body = "{\"order\":\"A-20417\",\"name\":\"" + person_name(rng_)
            + "\",\"card\":\"" + visa + "\",\"exp\":\"07/29\",\"note\":\"" + note + "\"}";

    HttpExchange ex;
    ex.request = http_request_head(rng_,
            HttpRequest{"POST", "pay.example.net", "/checkout", "application/json", body.size()});
    ex.request += body;
    ex.response = HttpResponse{200, "OK", "application/json"};
    ex.response_body = "{\"status\":\"approved\"}";
    auto session = open(client, server, 80);
    run_exchange(*session, rng_, ex);
    record(ValueClass::kPaymentCard, visa, *session, "(g) card over IPv6");
    finish(std::move(session), Side::kServer);
}

void Demo::vlan_form() {
    const Host client = inside_host(rng_, v4(10, 20, 5, 30));
    const Host server = outside_host(rng_, v4(203, 0, 113, 60));
    const std::string ssn = values_.ssn();
    const std::string body = "first=Grace&last=Walsh&ssn=" + format_ssn(ssn)
            + "&plan=standard&dependents=2&consent=yes";

    HttpExchange ex;
    ex.request = http_request_head(rng_,
            HttpRequest{"POST", "benefits.example.org", "/enroll",
                    "application/x-www-form-urlencoded", body.size()});
    ex.request += body;
    ex.response_body = html_page(rng_, "Enrollment received", 1200);
    auto session = open(client, server, 80, kVlan);
    run_exchange(*session, rng_, ex);
    record(ValueClass::kUsSsn, ssn, *session, "(h) SSN in an 802.1Q VLAN 120 flow");
    finish(std::move(session), Side::kServer);
}

void Demo::build() {
    const Host browser = inside_host(rng_, v4(10, 20, 1, 23));
    const Host reader = inside_host(rng_, v4(10, 20, 6, 44));
    const Host www = outside_host(rng_, v4(198, 51, 100, 20));
    const Host docs = outside_host(rng_, v4(198, 51, 100, 21));
    const Host news = outside_host(rng_, v4(203, 0, 113, 30));

    dns(browser, "www.example.com", www.ip);
    browse(browser, www, "www.example.com", {{"/", 9000}, {"/garden/", 14000}});
    next(150, 400);
    dns(inside_host(rng_, v4(10, 20, 1, 15)), "upload.example.net", v4(203, 0, 113, 10));
    csv_upload();
    next(100, 300);
    dns(browser, "news.example.org", news.ip);
    browse(browser, news, "news.example.org", {{"/articles/harbor-festival", 6000}});
    next(200, 500);
    disordered_upload();
    next(200, 500);
    inbound_receipt();
    next(100, 400);
    internal_transfer();
    next(100, 400);
    ipv6_checkout();
    next(100, 400);
    vlan_form();
    next(100, 400);
    dns(reader, "docs.example.com", docs.ip);
    browse(reader, docs, "docs.example.com",
            {{"/guide/", 20000}, {"/guide/install", 4000}, {"/guide/faq", 7000}});
    next(300, 900);
    browse(browser, news, "news.example.org", {{"/articles/page2", 11000}});
    next(200, 600);
    browse(reader, www, "www.example.com", {{"/recipes/", 16000}, {"/recipes/onion-soup", 9000}});
}

void Demo::write(Capture& capture) {
    std::stable_sort(flows_.begin(), flows_.end(),
            [](const auto& a, const auto& b) { return a->packet_ts_us(0) < b->packet_ts_us(0); });
    for (auto& flow : flows_) {
        capture.emit_before(flow->packet_ts_us(0));
        capture.add(std::move(flow));
    }
    flows_.clear();
}

}  // namespace

void run_demo(Capture& capture, Expectations& expect, uint64_t seed) {
    Demo demo(expect, seed);
    demo.build();
    demo.write(capture);
}

}  // namespace exfiltap::gen
