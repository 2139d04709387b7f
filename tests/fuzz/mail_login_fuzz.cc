// libFuzzer target for Pop3Parser and ImapParser (and the SASL user-name decoder). The first
// byte picks the parser (bit 0: 0 POP3, 1 IMAP); the rest is a conversation framed as in
// smtp_fuzz.cc (control byte: bit 0 direction, bits 1-7 length - 1; 0xff a gap). Checks: no
// read out of bounds (ASan), no undefined behaviour (UBSan), Login events only, with a
// NUL-terminated printable user name, and no event after done() or on_end for a done flow.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <new>
#include <span>

#include "detectors/mail_login_parser.h"

namespace {

using exfiltap::detectors::AppDir;
using exfiltap::detectors::AppEvent;
using exfiltap::detectors::AppEventKind;
using exfiltap::detectors::AppEventSink;
using exfiltap::detectors::AppProto;
using exfiltap::detectors::ImapParser;
using exfiltap::detectors::Pop3Parser;

void check(bool condition) {
    if (!condition) {
        std::abort();
    }
}

class Events final : public AppEventSink {
public:
    void on_app_event(const AppEvent& e) noexcept override {
        check(e.kind == AppEventKind::Login);
        check(e.proto == AppProto::Pop3 || e.proto == AppProto::Imap);
        size_t n = 0;
        while (n < e.user.size() && e.user[n] != '\0') {
            check(e.user[n] >= 0x20 && e.user[n] < 0x7f);
            ++n;
        }
        check(n < e.user.size());
        ++count;
    }
    size_t count = 0;
};

template <typename Parser>
void run(const uint8_t* data, size_t size) {
    static_assert(sizeof(Parser) <= 4096);
    alignas(Parser) static unsigned char slot[sizeof(Parser)];
    auto* parser = new (slot) Parser();
    Events events;
    size_t at = 0;
    while (at < size) {
        const uint8_t control = data[at++];
        if (control == 0xff) {
            if (at < size) {
                parser->on_gap((data[at] & 1) != 0 ? AppDir::ToClient : AppDir::ToServer);
            }
            continue;
        }
        const AppDir dir = (control & 1) != 0 ? AppDir::ToClient : AppDir::ToServer;
        const size_t len = std::min<size_t>((control >> 1) + 1U, size - at);
        const bool was_done = parser->done();
        const size_t before = events.count;
        parser->on_data(dir, {data + at, len}, events, nullptr);
        check(!was_done || events.count == before);
        at += len;
    }
    const bool was_done = parser->done();
    const size_t before = events.count;
    parser->on_end(events, nullptr);
    check(!was_done || events.count == before);
    parser->~Parser();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    if (size == 0) {
        return 0;
    }
    if ((data[0] & 1) == 0) {
        run<Pop3Parser>(data + 1, size - 1);
    } else {
        run<ImapParser>(data + 1, size - 1);
    }
    return 0;
}
