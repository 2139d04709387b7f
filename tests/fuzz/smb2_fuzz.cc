// libFuzzer target for Smb2Parser. The input is a script of records: a control byte (bit 0:
// direction; bits 1-2 == 3: a gap in that direction instead of data), two length bytes
// (little endian), then that many bytes of data. Checks no read out of bounds (ASan), no
// undefined behaviour (UBSan), no hang, and that every event is well formed.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>

#include "detectors/smb2_parser.h"

namespace {

using exfiltap::detectors::AppDir;
using exfiltap::detectors::AppEvent;
using exfiltap::detectors::AppEventKind;
using exfiltap::detectors::AppProto;

void check(bool condition) {
    if (!condition) {
        std::abort();
    }
}

class CheckingSink final : public exfiltap::detectors::AppEventSink {
public:
    void on_app_event(const AppEvent& event) noexcept override {
        check(event.proto == AppProto::Smb);
        check(event.name_view().size() <= exfiltap::detectors::Smb2Parser::kNameCap);
        if (event.kind == AppEventKind::TreeConnect) {
            // A share path, never empty; nothing else is set.
            check(!event.name_view().empty());
            check(event.bytes == 0 && event.host_view().empty());
            ++count;
            return;
        }
        check(event.kind == AppEventKind::FileTransfer);
        check(event.bytes > 0);
        check(event.host_view().size() <= exfiltap::detectors::Smb2Parser::kShareCap);
        ++count;
    }
    size_t count = 0;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    exfiltap::detectors::Smb2Parser parser;
    CheckingSink sink;
    size_t at = 0;
    while (at + 3 <= size && !parser.done()) {
        const uint8_t control = data[at];
        const size_t want = data[at + 1] | size_t{data[at + 2]} << 8;
        at += 3;
        const AppDir dir = (control & 1) != 0 ? AppDir::ToClient : AppDir::ToServer;
        if ((control & 0x06) == 0x06) {
            parser.on_gap(dir);
            continue;
        }
        const size_t n = want < size - at ? want : size - at;
        parser.on_data(dir, std::span<const uint8_t>(data + at, n), sink, nullptr);
        at += n;
    }
    parser.on_end(sink, nullptr);
    check(parser.done());
    return 0;
}
