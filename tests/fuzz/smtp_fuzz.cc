// libFuzzer target for SmtpParser (and the MIME walker and decoders behind it). The input is
// a conversation: each control byte says the direction and length of the piece that follows
// (bit 0: 0 client, 1 server; bits 1-7: length - 1), 0xff marks a gap in the next piece's
// direction. Checks what a worker relies on: no read out of bounds (ASan), no undefined
// behaviour (UBSan), objects never nest and are all ended when the flow ends, every event's
// text fields are NUL-terminated printable ASCII, and the parser stays within its pool slot.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <new>
#include <span>

#include "detectors/smtp_parser.h"

namespace {

using exfiltap::detectors::AppDir;
using exfiltap::detectors::AppEvent;
using exfiltap::detectors::AppEventSink;
using exfiltap::detectors::ObjectKind;
using exfiltap::detectors::ObjectSink;
using exfiltap::detectors::SmtpParser;

void check(bool condition) {
    if (!condition) {
        std::abort();
    }
}

template <size_t N>
void check_text(const std::array<char, N>& field) {
    size_t n = 0;
    while (n < N && field[n] != '\0') {
        check(field[n] >= 0x20 && field[n] < 0x7f);
        ++n;
    }
    check(n < N);
}

class Events final : public AppEventSink {
public:
    void on_app_event(const AppEvent& e) noexcept override {
        check_text(e.user);
        check_text(e.host);
        check_text(e.name);
        check_text(e.method);
    }
};

class Objects final : public ObjectSink {
public:
    void object_begin(ObjectKind kind, AppDir dir) noexcept override {
        check(!open);
        check(kind == ObjectKind::MimePart && dir == AppDir::ToServer);
        open = true;
    }
    void object_data(std::span<const uint8_t> data) noexcept override {
        check(open);
        check(!data.empty());
        volatile uint8_t sink = data[0] ^ data[data.size() - 1];
        (void)sink;
    }
    void object_end() noexcept override {
        check(open);
        open = false;
    }
    bool open = false;
};

}  // namespace

static_assert(sizeof(SmtpParser) <= 4096);

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    alignas(SmtpParser) static unsigned char slot[sizeof(SmtpParser)];
    auto* parser = new (slot) SmtpParser();
    Events events;
    Objects objects;
    // Odd inputs run without an object sink (count-only decoding).
    ObjectSink* sink = (size % 2 == 0) ? &objects : nullptr;
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
        parser->on_data(dir, {data + at, len}, events, sink);
        at += len;
    }
    parser->on_end(events, sink);
    check(!objects.open);
    parser->~SmtpParser();
    return 0;
}
