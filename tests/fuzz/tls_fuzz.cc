// libFuzzer target for the TLS ClientHello parser: the input is the client's byte stream,
// fed in chunks whose size the last byte chooses (server bytes in between are ignored by
// the parser but fed too); also client_hello_sni() on the raw input. Checks: no read out of
// bounds (ASan), no undefined behaviour (UBSan), at most one event, and the SNI it returns
// lies inside the input.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>
#include <string_view>

#include "detectors/tls_parser.h"

namespace {

using exfiltap::detectors::AppDir;
using exfiltap::detectors::AppEvent;
using exfiltap::detectors::AppEventKind;
using exfiltap::detectors::AppEventSink;
using exfiltap::detectors::AppProto;
using exfiltap::detectors::TlsParser;

void check(bool condition) {
    if (!condition) {
        std::abort();
    }
}

struct CheckingSink : AppEventSink {
    void on_app_event(const AppEvent& event) noexcept override {
        check(event.kind == AppEventKind::ProtocolSeen && event.proto == AppProto::Tls);
        for (const char c : event.name_view()) {
            check(c >= 0x20 && c < 0x7f && !(c >= 'A' && c <= 'Z'));
        }
        ++events;
    }
    size_t events = 0;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::span<const uint8_t> input(data, size);

    std::string_view sni;
    if (exfiltap::detectors::client_hello_sni(input, sni)) {
        const auto* begin = reinterpret_cast<const char*>(data);
        check(sni.data() >= begin && sni.data() + sni.size() <= begin + size);
    }

    TlsParser parser;
    CheckingSink sink;
    const size_t step = size == 0 ? 1 : (data[size - 1] % 32U) + 1U;
    size_t at = 0;
    while (at < size && !parser.done()) {
        const size_t n = size - at < step ? size - at : step;
        parser.on_data(AppDir::ToServer, input.subspan(at, n), sink, nullptr);
        parser.on_data(AppDir::ToClient, input.subspan(at, n), sink, nullptr);
        at += n;
    }
    parser.on_end(sink, nullptr);
    check(parser.done());
    check(sink.events <= 1);
    return 0;
}
