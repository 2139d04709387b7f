// libFuzzer target for FtpParser. The input is a script of records: a control byte (bit 0:
// direction; bits 1-2 == 3: a gap in that direction instead of data), a length byte, then
// that many bytes of data. Checks no read out of bounds (ASan), no undefined behaviour
// (UBSan), no hang, and that every event is well formed.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>

#include "detectors/ftp_parser.h"

namespace {

using exfiltap::detectors::AppDir;
using exfiltap::detectors::AppEvent;
using exfiltap::detectors::AppEventKind;

void check(bool condition) {
    if (!condition) {
        std::abort();
    }
}

class CheckingSink final : public exfiltap::detectors::AppEventSink {
public:
    void on_app_event(const AppEvent& event) noexcept override {
        check(event.name_view().size() < AppEvent::kNameCap);
        check(event.user_view().size() < AppEvent::kUserCap);
        check(event.kind == AppEventKind::Login || event.kind == AppEventKind::FileTransfer
                || event.kind == AppEventKind::FtpDataChannel);
        check(event.data_addr_len == 0 || event.data_addr_len == 4 || event.data_addr_len == 16);
        check(event.kind == AppEventKind::FtpDataChannel || event.data_addr_len == 0);
        ++count;
    }
    size_t count = 0;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    exfiltap::detectors::FtpParser parser;
    CheckingSink sink;
    size_t at = 0;
    while (at + 2 <= size && !parser.done()) {
        const uint8_t control = data[at];
        const size_t want = data[at + 1];
        at += 2;
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
