// The application layer of one worker (DESIGN.md "Detection", behaviour): identifies each
// TCP flow's protocol from its first bytes (port as fallback), feeds both directions'
// in-order bytes to that protocol's parser, passes decoded objects (HTTP bodies, MIME parts)
// to a content stream of their own, looks for archives at object starts, parses DNS over UDP,
// and ties FTP data connections to the command that announced them. What the parsers report
// leaves as AppEvents through the worker's event ring.
//
// Thread: the owning worker only; created on the control thread before it starts. No
// allocation, lock or syscall after creation: parser state comes from a fixed slot pool
// (a flow without a slot goes on unparsed, counted), zlib state from an InflatePool.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "common/counter.h"
#include "dataplane/decode.h"
#include "dataplane/flow_table.h"
#include "detectors/app_event.h"
#include "detectors/content_scanner.h"

namespace exfiltap::detectors {
class InflatePool;
}

namespace exfiltap::dataplane {

inline constexpr uint32_t kNoApp = UINT32_MAX;

/// Flow::app_status values.
enum class AppStatus : uint8_t {
    /// No payload parsed yet (a slot is taken with the first payload byte).
    None = 0,
    /// A slot holds the flow's identification and parser state.
    Active = 1,
    /// Nothing more to learn (parser done, or not a parsed protocol): no slot.
    Done = 2,
    /// No slot was free when the flow first carried payload: it goes on unparsed.
    Exhausted = 3,
};

/// Counters of the application layer, written by the worker only.
struct AppCounters {
    std::array<Counter, detectors::kAppProtoCount> flows_by_proto;
    Counter events;
    Counter slots_exhausted;
    Counter decoders_exhausted;
    Counter bodies_capped;  // decoding stopped at the output or ratio cap (bombs)
    Counter bodies_failed;  // corrupt compressed data
    Counter objects;
    Counter object_bytes;
    Counter dns_messages;
    Counter dns_malformed;
    Counter ftp_data_linked;
};

/// What the application layer needs from its worker.
class AppHost {
public:
    /// Sends an application event for `flow`; `from_server` puts the flow's server as the
    /// event's source (DNS answers keep the querier as source: they pass false).
    virtual void emit_app_event(
            const Flow& flow, const detectors::AppEvent& event, bool from_server) noexcept = 0;
    /// Opens a content stream for a decoded object of `flow` (on the current database);
    /// false when content inspection is off or stream memory is exhausted (counted).
    /// `edm_only`: the stream runs exact data match alone (HttpPlainBody objects).
    virtual bool open_object_stream(
            detectors::ContentStream& stream, uint8_t& db_slot, bool edm_only) noexcept = 0;
    /// Whether exact data match runs on the current database (plain bodies are wanted).
    virtual bool edm_enabled() const noexcept = 0;
    /// Scans decoded object bytes of `flow` direction `dir` (findings go out with the flow).
    virtual void scan_object(Flow& flow, unsigned dir, detectors::ContentStream& stream,
            std::span<const uint8_t> data) noexcept = 0;
    /// Closes an object stream opened by open_object_stream() and reports its findings.
    virtual void close_object_stream(Flow& flow, unsigned dir, detectors::ContentStream& stream,
            uint8_t db_slot) noexcept = 0;

protected:
    ~AppHost() = default;
};

struct AppLayerConfig {
    /// Flows whose parser state is held at once (each slot is a few KiB).
    uint32_t slots = 8192;
    /// Concurrent HTTP body decoders (zlib, ~45 KiB each).
    uint32_t decoders = 64;
};

class AppLayer {
public:
    /// Control thread, before the worker starts.
    static std::unique_ptr<AppLayer> create(const AppLayerConfig& config, AppHost& host);
    ~AppLayer();
    AppLayer(const AppLayer&) = delete;
    AppLayer& operator=(const AppLayer&) = delete;
    AppLayer(AppLayer&&) = delete;
    AppLayer& operator=(AppLayer&&) = delete;

    /// A flow was just created from `info` (its first packet): an FTP data connection that
    /// an FTP control flow announced is recognised here.
    void on_new_flow(Flow& flow, const PacketInfo& info, uint64_t now_ns) noexcept;

    /// Whether the flow's in-order TCP bytes should still be delivered (both directions).
    static bool wants_stream(const Flow& flow) noexcept {
        return flow.app_status == static_cast<uint8_t>(AppStatus::None)
                || flow.app_status == static_cast<uint8_t>(AppStatus::Active);
    }

    /// In-order TCP bytes of direction `dir` (0: from the client); `gap_before` says bytes
    /// were lost before them.
    void on_stream(Flow& flow, unsigned dir, std::span<const uint8_t> bytes, bool gap_before,
            uint64_t now_ns) noexcept;

    /// A UDP datagram of `flow` in direction `dir` (DNS is parsed here).
    void on_datagram(Flow& flow, unsigned dir, const PacketInfo& info,
            std::span<const uint8_t> payload) noexcept;

    /// The flow is leaving the table: parsers flush, FTP data links report, the slot is
    /// freed.
    void on_flow_end(Flow& flow) noexcept;
    /// The TCP connection closed (both FINs, or a RST): an FTP data connection's bytes are
    /// final, so its transfer is reported now, not when the closed flow times out.
    void on_flow_closed(Flow& flow) noexcept;

    const AppCounters& counters() const noexcept { return counters_; }
    uint32_t slots_in_use() const noexcept { return slots_in_use_; }

private:
    struct Slot;
    class Events;
    class Objects;
    struct Expected;

    AppLayer(const AppLayerConfig& config, AppHost& host);
    Slot* slot_for(Flow& flow) noexcept;
    void release(Flow& flow) noexcept;
    void identify(Flow& flow, Slot& slot, unsigned dir, std::span<const uint8_t> bytes) noexcept;
    void start_parser(Flow& flow, Slot& slot) noexcept;
    void feed(Flow& flow, Slot& slot, unsigned dir, std::span<const uint8_t> bytes) noexcept;
    /// An Archive event when `head` (a stream's or object's first bytes) starts with an
    /// archive signature; the entropy is measured on `sample` (the first piece, if larger).
    void check_archive(Flow& flow, unsigned dir, std::span<const uint8_t> head,
            std::span<const uint8_t> sample) noexcept;
    void on_parser_event(Flow& flow, const detectors::AppEvent& event) noexcept;
    void link_ftp_transfer(Flow& control, const detectors::AppEvent& transfer) noexcept;
    /// `closed`: the data connection closed (reported now); otherwise it is ending (reported
    /// unless it was at its close, or again when bytes came after that close).
    void report_ftp_data(Flow& data, Slot& slot, bool closed) noexcept;
    /// Sets expected_[i].used and its bit in expected_used_.
    void set_expected_used(size_t i, bool used) noexcept;

    AppLayerConfig config_;
    AppHost& host_;
    // Declared before the slots: parsers hold decoders of the pool until they are gone.
    std::unique_ptr<detectors::InflatePool> inflate_;
    std::unique_ptr<Slot[]> slots_;
    std::vector<uint32_t> free_;
    uint32_t slots_in_use_ = 0;
    std::unique_ptr<Expected[]> expected_;
    // Bit i: expected_[i].used. Every flow's start and end look through the channels; with
    // none in use (nearly always) they look at nothing (exfiltap-bench new-1m).
    uint32_t expected_used_ = 0;
    uint64_t now_ns_ = 0;
    AppCounters counters_;
};

}  // namespace exfiltap::dataplane
