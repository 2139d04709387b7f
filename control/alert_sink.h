// Turns worker events into alert records (control thread): masks and HMACs values, applies
// each class's threshold and the alert suppression of DESIGN.md ("Alert volume"): one record
// per flow direction, class and detector per suppression interval; later findings raise the
// count of the next record, and what is pending when the flow ends goes out in a final
// record, so every finding reaches the output.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <tuple>

#include "control/alert_writer.h"
#include "control/config.h"
#include "control/incident.h"
#include "control/siem_output.h"
#include "dataplane/worker.h"

namespace exfiltap::control {

class AlertSink {
public:
    /// `config` and `writer` (may be null: count only) must outlive the sink.
    AlertSink(const Config& config, SampleKey key, AlertWriter* writer);

    void on_event(const dataplane::WorkerEvent& event);

    /// Called with every record just before it is written (the daemon's response policy
    /// fills in action and response there).
    void set_hook(std::function<void(AlertRecord&)> hook) { hook_ = std::move(hook); }

    /// Writes every pending record, then closes every open incident (end of run).
    void flush_all();

    /// Writes a record made elsewhere (the behaviour detectors) at packet time `time_ns`:
    /// assets, the hook, the writer and the counts as for content records. Per-event
    /// detectors (archive_out, unexpected_file_write) are suppressed per flow direction like
    /// content classes; windowed detectors are written as they come.
    void write_record(AlertRecord record, uint64_t time_ns);

    /// A flow ended (its last Progress event): pending suppressed records go out.
    void flow_ended(uint64_t flow_id) { on_flow_end(flow_id); }

    /// SIEM outputs (may be null) that get every record written, rendered once with the
    /// file's JSON. Must outlive the sink.
    void set_outputs(SiemOutputs* outputs) { outputs_ = outputs; }

    /// Where App and Progress events go (the behaviour feed); null: ignored.
    void set_app_handler(std::function<void(const dataplane::WorkerEvent&)> handler) {
        app_handler_ = std::move(handler);
    }

    /// Called with each incident record before it is written (the daemon's response policy
    /// acts there and fills in Incident::response).
    void set_incident_hook(std::function<void(Incident&, IncidentEvent)> hook) {
        incident_hook_ = std::move(hook);
    }
    /// The correlator every written record feeds (control/incident.h); its records go to the
    /// file and the outputs like alerts.
    IncidentCorrelator& incidents() { return incidents_; }
    const IncidentCorrelator& incidents() const { return incidents_; }
    /// Incident records written (opened, escalated, closed).
    uint64_t incident_records() const { return incident_records_; }

    /// Records written, by class (content, evasion).
    const std::map<std::string, uint64_t>& alerts() const { return alerts_; }
    /// Records written by the behaviour detectors, by detector.
    const std::map<std::string, uint64_t>& behaviour_alerts() const { return behaviour_; }
    /// Flow directions with suppression state (bounded by flow ends).
    size_t tracked() const { return state_.size(); }

private:
    // flow, sender port, sender address (first 8 bytes suffice with the port), class, rule
    using Key = std::tuple<uint64_t, uint16_t, uint64_t, std::string>;
    struct State {
        AlertRecord latest;    // the most recent finding, ready to write
        uint64_t pending = 0;  // findings not yet in a record
        uint64_t last_emit_ns = 0;
        bool emitted = false;
        bool armed = false;  // the class threshold was reached in this direction
        // Exact data match: records of the direction's own stream and of its decoded
        // objects (one open at a time), and the columns matched in any of them.
        uint64_t edm_raw = 0;
        uint64_t edm_objects_done = 0;
        uint64_t edm_object = 0;
        uint32_t edm_origin = 0;
        uint32_t edm_columns = 0;
        bool edm_high = false;     // some stream saw all of a record's values
        uint64_t edm_counted = 0;  // records already in a record's count or pending
    };

    void on_finding(const dataplane::WorkerEvent& event);
    /// An EDM finding's record total for its flow direction (updates `st`).
    static uint64_t edm_records(State& st, const detectors::Finding& finding);
    static std::vector<std::string> edm_column_names(
            const detectors::ContentConfig& content, uint16_t rule, uint32_t columns);
    void on_anomaly(const dataplane::WorkerEvent& event);
    void on_flow_end(uint64_t flow_id);
    /// `added`: findings (EDM: records) this one adds to the next record's count.
    void account(
            const Key& key, AlertRecord record, bool armed, uint64_t now_ns, uint64_t added = 1);
    void write(AlertRecord& record, uint64_t count);
    void write_incident(Incident& incident, IncidentEvent event);
    static AlertRecord base_record(const dataplane::WorkerEvent& event);

    const Config& config_;
    SampleKey key_;
    AlertWriter* writer_;
    SiemOutputs* outputs_ = nullptr;
    uint64_t interval_ns_;
    std::map<Key, State> state_;
    std::map<std::string, uint64_t> alerts_;
    std::map<std::string, uint64_t> behaviour_;
    std::function<void(AlertRecord&)> hook_;
    std::function<void(const dataplane::WorkerEvent&)> app_handler_;
    std::function<void(Incident&, IncidentEvent)> incident_hook_;
    IncidentCorrelator incidents_;
    uint64_t incident_records_ = 0;
};

/// Suricata-style signature ids and texts of the content classes.
uint32_t content_signature_id(detectors::ContentClass cls, uint16_t rule);
std::string content_signature_text(detectors::ContentClass cls, std::string_view rule_name);

}  // namespace exfiltap::control
