// Proprietary content leaving (the source_code and document content classes), one capture per
// case, PREFIX-<case>.pcap, each one HTTP POST from 10.20.0.5 (inside) to 203.0.113.80:80
// unless the case says otherwise. The integration test's config names the organisation
// "Example Corp" and the project "BLUEBIRD".
//
//   code-licensed   a C++ source file whose licence header names Example Corp: source_code,
//                   high confidence, sample ending in "Corp"
//   code-plain      the same file without the header: source_code, low confidence
//   pdf-labelled    a PDF whose metadata carries a sensitivity label 40 KB in: document
//                   "pdf", high confidence
//   office-zip      an OOXML spreadsheet's zip (part names in the clear): document "xlsx", low
//   prose           a report in plain text with a few parentheses: nothing
//   code-internal   the licensed source file to 10.20.0.9 (inside): nothing (not outbound)
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "tests/gen/scenario_common.h"
#include "tests/gen/scenarios.h"

namespace exfiltap::gen {
namespace {

std::string source_file(bool licence, int functions) {
    std::string out;
    if (licence) {
        out += "// Copyright (c) 2021-2026 Example Corp. All rights reserved.\n"
               "// Proprietary and confidential: BLUEBIRD settlement engine.\n\n";
    }
    out += "#include <cstdint>\n#include <vector>\n#include \"ledger/book.h\"\n\n"
           "namespace ledger {\n\n";
    for (int i = 0; i < functions; ++i) {
        const std::string n = std::to_string(i);
        out += "int64_t settle_" + n + "(Book& book, uint32_t from, uint32_t to, int64_t v) {\n"
               "    if (v <= 0 || from == to) {\n"
               "        return -1;\n"
               "    }\n"
               "    // Two entries, one transfer.\n"
               "    book.post(Entry{from, -v});\n"
               "    book.post(Entry{to, v});\n"
               "    for (const Entry& e : book.pending()) {\n"
               "        if (e.account == to && !e.cleared) {\n"
               "            book.clear(e);\n"
               "        }\n"
               "    }\n"
               "    return book.balance(to) + " + n + ";\n"
               "}\n\n";
    }
    out += "}  // namespace ledger\n";
    return out;
}

std::string prose(size_t bytes) {
    static constexpr std::string_view kText =
            "The quarterly review (held in March) found that revenue grew in every region; "
            "the team will revisit the forecast for next year after the audit. ";
    std::string out;
    while (out.size() < bytes) {
        out += kText;
    }
    return out;
}

std::string pdf(bool labelled) {
    std::string out =
            "%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Type /Catalog /Pages 2 0 R >>\n"
            "endobj\n2 0 obj\n<< /Length 40000 >>\nstream\n";
    out += prose(40000);
    out += "\nendstream\nendobj\n3 0 obj\n<< /Type /Metadata /Subtype /XML >>\nstream\n";
    if (labelled) {
        out += "<pdfx:MSIP_Label_3a4f9c21-77b0-4f6e-9d1e-0c2b5a8e6f10_Name>Restricted"
               "</pdfx:MSIP_Label_3a4f9c21-77b0-4f6e-9d1e-0c2b5a8e6f10_Name>\n";
    }
    out += "endstream\nendobj\n%%EOF\n";
    return out;
}

std::string office_zip() {
    std::string out;
    for (const std::string_view part : {"[Content_Types].xml", "_rels/.rels", "xl/workbook.xml",
                 "xl/worksheets/sheet1.xml", "docProps/core.xml"}) {
        out += std::string("PK\x03\x04\x14\x00\x06\x00\x08\x00", 10);
        out += std::string(18, '\x11');
        out += part;
        out += std::string(600, '\x5a');  // stands in for the deflated part
    }
    return out;
}

void post(std::vector<std::unique_ptr<Flow>>& flows, Rng& rng, const IpAddr& client_ip,
        const IpAddr& server_ip, std::string_view content_type, const std::string& body) {
    const Endpoint client{inside_host(rng, client_ip), ephemeral_port(rng)};
    const Endpoint server{
            server_ip.inside() ? inside_host(rng, server_ip) : outside_host(rng, server_ip), 80};
    auto s = std::make_unique<TcpSession>(tcp_config(rng, client, server), rng, kBaseTimeUs);
    s->connect();
    s->send(Side::kClient,
            "POST /upload HTTP/1.1\r\nHost: files.example.net\r\nContent-Type: "
                    + std::string(content_type)
                    + "\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body);
    s->pause(2000);
    s->send(Side::kServer, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
    s->pause(500);
    s->close(Side::kClient);
    flows.push_back(std::move(s));
}

}  // namespace

std::vector<std::string> run_proprietary(const std::string& prefix, uint64_t seed) {
    const IpAddr inside = IpAddr::v4(10, 20, 0, 5);
    const IpAddr outside = IpAddr::v4(203, 0, 113, 80);
    const IpAddr inside2 = IpAddr::v4(10, 20, 0, 9);
    struct Case {
        std::string_view name;
        IpAddr server;
        std::string_view type;
        std::string body;
    };
    const std::vector<Case> cases = {
            {"code-licensed", outside, "text/x-c++src", source_file(true, 30)},
            {"code-plain", outside, "text/x-c++src", source_file(false, 30)},
            {"pdf-labelled", outside, "application/pdf", pdf(true)},
            {"office-zip", outside,
                    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                    office_zip()},
            {"prose", outside, "text/plain", prose(60000)},
            {"code-internal", inside2, "text/x-c++src", source_file(true, 30)},
    };
    std::vector<std::string> written;
    Rng rng(seed);
    for (const Case& c : cases) {
        std::vector<std::unique_ptr<Flow>> flows;
        post(flows, rng, inside, c.server, c.type, c.body);
        const std::string path = prefix + "-" + std::string(c.name) + ".pcap";
        write_flows(path, flows);
        written.push_back(path);
    }
    return written;
}

}  // namespace exfiltap::gen
