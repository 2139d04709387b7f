// libFuzzer target for the DNS parser: the input is one DNS message (parse_dns, dns_event)
// and, framed as a TCP stream cut in chunks whose size the last byte chooses, the input
// of DnsTcpParser in both directions. Checks: no read out of bounds (ASan), no undefined
// behaviour (UBSan), and what parse_dns reports stays inside its bounds.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>

#include "detectors/dns_parser.h"

namespace {

using exfiltap::detectors::AppDir;
using exfiltap::detectors::AppEvent;
using exfiltap::detectors::AppEventSink;
using exfiltap::detectors::DnsMessage;
using exfiltap::detectors::DnsTcpParser;

void check(bool condition) {
    if (!condition) {
        std::abort();
    }
}

struct CheckingSink : AppEventSink {
    void on_app_event(const AppEvent& event) noexcept override {
        check(event.name_view().size() < AppEvent::kNameCap);
        ++events;
    }
    size_t events = 0;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::span<const uint8_t> input(data, size);

    DnsMessage m;
    if (exfiltap::detectors::parse_dns(input, m)) {
        check(m.name_len <= DnsMessage::kNameCap);
        check(m.name[m.name_len] == '\0');
        check(m.name_truncated || m.name_view().size() < DnsMessage::kNameCap + 1);
        for (const char c : m.name_view()) {
            check(c >= 0x20 && c < 0x7f && !(c >= 'A' && c <= 'Z'));
        }
        AppEvent event;
        exfiltap::detectors::dns_event(m, size, event);
        check(event.name_view() == m.name_view());
    }

    // The same bytes as a TCP stream in chunks of 1..16 bytes, alternating directions.
    DnsTcpParser parser;
    CheckingSink sink;
    const size_t step = size == 0 ? 1 : (data[size - 1] % 16U) + 1U;
    size_t at = 0;
    unsigned turn = 0;
    while (at < size && !parser.done()) {
        const size_t n = size - at < step ? size - at : step;
        const AppDir dir = (turn++ % 3U == 2U) ? AppDir::ToClient : AppDir::ToServer;
        parser.on_data(dir, input.subspan(at, n), sink, nullptr);
        at += n;
    }
    parser.on_end(sink, nullptr);
    check(parser.done());
    return 0;
}
