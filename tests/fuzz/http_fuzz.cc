// libFuzzer target for HttpParser. The input is a script of segments: a control byte (bit 0:
// direction, bit 1: a gap before the segment, bits 2-7: length class) and then the segment's
// bytes. Checks what a worker relies on: no read out of bounds (ASan), no undefined
// behaviour (UBSan), objects that never nest, printable NUL-terminated event fields, and
// decoder slots that all return to the pool.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>

#include "detectors/http_parser.h"

namespace {

using exfiltap::detectors::AppDir;
using exfiltap::detectors::AppEvent;
using exfiltap::detectors::AppEventSink;
using exfiltap::detectors::HttpParser;
using exfiltap::detectors::InflatePool;
using exfiltap::detectors::ObjectKind;
using exfiltap::detectors::ObjectSink;

void check(bool condition) {
    if (!condition) {
        std::abort();
    }
}

template <size_t N>
void check_field(const std::array<char, N>& field) {
    size_t n = 0;
    while (n < N && field[n] != '\0') {
        check(field[n] >= 0x20 && field[n] < 0x7f);
        ++n;
    }
    check(n < N);
}

class Events : public AppEventSink {
public:
    void on_app_event(const AppEvent& event) noexcept override {
        check_field(event.method);
        check_field(event.user);
        check_field(event.host);
        check_field(event.name);
    }
};

class Objects : public ObjectSink {
public:
    void object_begin(ObjectKind, AppDir) noexcept override {
        check(!open_);
        open_ = true;
    }
    void object_data(std::span<const uint8_t> data) noexcept override {
        check(open_);
        check(!data.empty());
        volatile uint8_t sink = data.front();
        sink = data.back();
        (void)sink;
    }
    void object_end() noexcept override {
        check(open_);
        open_ = false;
    }
    bool open() const { return open_; }

private:
    bool open_ = false;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    static InflatePool pool(2);
    Events events;
    Objects objects;
    {
        HttpParser parser(&pool);
        // The first byte picks whether objects are wanted at all.
        const bool with_objects = size > 0 && (data[0] & 1) != 0;
        ObjectSink* sink = with_objects ? &objects : nullptr;
        size_t at = size > 0 ? 1 : 0;
        while (at < size) {
            const uint8_t control = data[at++];
            const auto dir = (control & 1) != 0 ? AppDir::ToClient : AppDir::ToServer;
            if ((control & 2) != 0) {
                parser.on_gap(dir);
            }
            // Length classes: small segments often, whole rest sometimes.
            const size_t cls = control >> 2;
            size_t len = cls == 63 ? size - at : cls < 32 ? cls + 1 : (cls - 31) * 64;
            len = len < size - at ? len : size - at;
            parser.on_data(dir, std::span<const uint8_t>(data + at, len), events, sink);
            at += len;
            if (parser.done()) {
                break;
            }
        }
        parser.on_end(events, sink);
        check(!objects.open());
    }
    check(pool.in_use() == 0);
    return 0;
}
