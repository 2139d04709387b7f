// Feeds the behaviour engine (detectors/behaviour.h) from the workers' App and Progress
// events and turns its findings into alert records (DESIGN.md "Detection", behaviour).
// Progress events carry a flow's byte totals; the feed keeps the last totals per flow (a
// bounded LRU table) and hands the engine the growth, with the flow's protocol and TLS
// server name. Offline and live runs use it the same way; only the daemon keeps baselines
// in the state directory.
//
// Thread: the control thread only.
#pragma once

#include <cstdint>
#include <list>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "common/result.h"
#include "control/alert_sink.h"
#include "control/config.h"
#include "dataplane/worker.h"
#include "detectors/behaviour.h"

namespace exfiltap::control {

class BehaviourFeed {
public:
    /// `config` is copied where the engine needs it; `sink` must outlive the feed.
    BehaviourFeed(const Config& config, AlertSink& sink);

    /// An App or Progress event (others are ignored). Held until advance() passes its time,
    /// then handed to the engine in packet-time order.
    void on_event(const dataplane::WorkerEvent& event);

    /// Packet time moved on to `time_ns` (the workers' lowest): windows close, findings go
    /// out as alert records.
    void advance(uint64_t time_ns);

    /// Writes what is pending (end of run).
    void flush();

    /// A reload: thresholds, assets, networks and sanctioned ranges; state is kept.
    void reconfigure(const Config& config);

    /// Baselines from / to STATE_DIR/baselines.txt (written to a temporary file, synced and
    /// renamed). A missing file is not an error; a corrupt one is moved aside and reported.
    Status load_baselines(const std::string& state_dir);
    Status save_baselines(const std::string& state_dir) const;

    detectors::BehaviourStats stats() const { return engine_->stats(); }
    /// Flows whose totals are tracked, and flows forgotten because the table was full.
    size_t tracked_flows() const { return flows_.size(); }
    uint64_t flows_forgotten() const { return forgotten_; }

private:
    struct FlowState {
        uint64_t to_server = 0;
        uint64_t to_client = 0;
        std::string sni;
        std::list<uint64_t>::iterator lru;
    };

    FlowState& flow_state(uint64_t flow_id);
    void process_until(uint64_t time_ns);
    void process(const dataplane::WorkerEvent& event);
    void warn_suffixes() const;
    void emit_findings();

    static constexpr size_t kMaxFlows = 262144;
    static constexpr size_t kMaxPending = 1U << 18;

    AlertSink& sink_;
    std::unique_ptr<detectors::AssetInventory> assets_;
    std::unique_ptr<detectors::BehaviourEngine> engine_;
    std::unordered_map<uint64_t, FlowState> flows_;
    std::list<uint64_t> lru_;                      // least recently used first
    std::vector<dataplane::WorkerEvent> pending_;  // not yet in time order
    uint64_t forgotten_ = 0;
};

/// Signature id of a behaviour detector's alerts (2200001 + the detector's number).
uint32_t behaviour_signature_id(detectors::BehaviourDetector detector) noexcept;

}  // namespace exfiltap::control
