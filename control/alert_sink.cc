#include "control/alert_sink.h"

#include <cstring>
#include <string>
#include <utility>

#include "detectors/edm_index.h"

namespace exfiltap::control {

namespace {

constexpr uint32_t kOverlapSignatureId = 2100200;
constexpr uint32_t kIncidentSignatureId = 2100400;

uint64_t address_prefix(const std::array<uint8_t, 16>& address) {
    uint64_t v = 0;
    std::memcpy(&v, address.data() + 8, sizeof(v));
    uint64_t w = 0;
    std::memcpy(&w, address.data(), sizeof(w));
    return v ^ (w * 0x9e3779b97f4a7c15ULL);
}

}  // namespace

uint32_t content_signature_id(detectors::ContentClass cls, uint16_t rule) {
    if (cls == detectors::ContentClass::Custom) {
        return 2100100 + rule;
    }
    if (cls == detectors::ContentClass::Edm) {
        return 2100300 + rule;
    }
    return 2100001 + static_cast<uint32_t>(cls);
}

std::string content_signature_text(detectors::ContentClass cls, std::string_view rule_name) {
    switch (cls) {
    case detectors::ContentClass::PaymentCard:
        return "EXFIL payment card number sent to an external network";
    case detectors::ContentClass::UsSsn:
        return "EXFIL US social security number sent to an external network";
    case detectors::ContentClass::Iban:
        return "EXFIL IBAN bank account number sent to an external network";
    case detectors::ContentClass::PrivateKey:
        return "EXFIL private key sent to an external network";
    case detectors::ContentClass::CloudToken:
        return "EXFIL cloud access token sent to an external network";
    case detectors::ContentClass::VcsToken:
        return "EXFIL source-control access token sent to an external network";
    case detectors::ContentClass::Jwt:
        return "EXFIL JSON web token sent to an external network";
    case detectors::ContentClass::PasswordAssignment:
        return "EXFIL password assignment sent to an external network";
    case detectors::ContentClass::ClassificationMarker:
        return "EXFIL classified document marker sent to an external network";
    case detectors::ContentClass::Custom:
        return "EXFIL custom rule '" + std::string(rule_name) + "' matched data sent to an "
               "external network";
    case detectors::ContentClass::Edm:
        return "EXFIL records of the protected table '" + std::string(rule_name)
                + "' sent to an external network";
    case detectors::ContentClass::SourceCode:
        return "EXFIL source code sent to an external network";
    case detectors::ContentClass::Document:
        return "EXFIL office or PDF document sent to an external network";
    }
    return "EXFIL sensitive data sent to an external network";
}

AlertSink::AlertSink(const Config& config, SampleKey key, AlertWriter* writer)
    : config_(config),
      key_(std::move(key)),
      writer_(writer),
      interval_ns_(uint64_t{config.outputs.alert_suppression_s} * 1000000000ULL),
      incidents_(
              config.incidents, [&config](uint8_t version, const std::array<uint8_t, 16>& address) {
                  return config.is_internal(version, address);
              }) {
    incidents_.set_emit(
            [this](Incident& incident, IncidentEvent event) { write_incident(incident, event); });
}

void AlertSink::on_event(const dataplane::WorkerEvent& event) {
    switch (event.type) {
    case dataplane::WorkerEvent::Type::Finding:
        on_finding(event);
        break;
    case dataplane::WorkerEvent::Type::Anomaly:
        on_anomaly(event);
        break;
    case dataplane::WorkerEvent::Type::FlowEnd:
        on_flow_end(event.flow_id);
        break;
    case dataplane::WorkerEvent::Type::FlowRecord:
        break;  // byte counts for top talkers: the daemon's business, not an alert
    case dataplane::WorkerEvent::Type::App:
    case dataplane::WorkerEvent::Type::Progress:
        if (app_handler_) {
            app_handler_(event);
        }
        break;
    }
}

AlertRecord AlertSink::base_record(const dataplane::WorkerEvent& event) {
    AlertRecord record;
    record.timestamp_s = static_cast<double>(event.time_ns) / 1e9;
    record.flow_id = event.flow_id;
    record.ip_version = event.ip_version;
    record.src = event.src;
    record.dst = event.dst;
    record.src_port = event.src_port;
    record.dst_port = event.dst_port;
    record.proto = event.proto;
    record.vlan_count = event.vlan_count;
    record.vlan = {event.vlan[0], event.vlan[1], 0, 0};
    record.bytes = event.direction_bytes;
    // The worker's flow verdict, taken the moment the finding completed.
    if (event.flow_action == dataplane::FlowAction::Drop) {
        record.action = "blocked";
        record.response = "flow dropped";
    } else if (event.flow_action == dataplane::FlowAction::ShadowDrop) {
        record.action = "would_drop";
        record.response = "would drop the flow (shadow policy or passive port)";
    }
    return record;
}

void AlertSink::on_finding(const dataplane::WorkerEvent& event) {
    const detectors::Finding& finding = event.finding;
    const detectors::ContentConfig& content = config_.content;
    AlertRecord record = base_record(event);
    const bool edm = finding.cls == detectors::ContentClass::Edm;
    const std::string_view rule_name =
            edm ? content.edm_table_name(finding.rule) : content.rule_name(finding.rule);
    record.signature_id = content_signature_id(finding.cls, finding.rule);
    record.signature = content_signature_text(finding.cls, rule_name);
    record.severity = content.severity_of(finding.cls, finding.rule);
    record.detector = "content";
    record.cls = std::string(detectors::content_class_name(finding.cls));
    record.confidence = finding.confidence;
    if (!edm) {
        record.sample = mask_value(finding.value_view());
        record.sample_hmac = key_.hmac_hex(finding.value_view());
    }
    if (finding.cls == detectors::ContentClass::Document) {
        // The value is the format's name, a constant: the reason may say it in full.
        record.reason = "a " + std::string(finding.value_view()) + " document ("
                + (finding.confidence == detectors::Confidence::High
                                ? "with a classification or sensitivity label)"
                                : "no label seen)");
    } else if (finding.cls == detectors::ContentClass::SourceCode) {
        record.reason = finding.confidence == detectors::Confidence::High
                ? "dense code with the organisation's licence header or a project code name "
                  "(the sample ends with it)"
                : "dense code tokens, no licence header or project name of the organisation";
    }
    // Custom rules and EDM tables count and suppress apart from each other.
    const bool by_rule = finding.cls == detectors::ContentClass::Custom || edm;
    const std::string key_class = by_rule ? record.cls + ":" + std::string(rule_name) : record.cls;
    const Key key{event.flow_id, event.src_port, address_prefix(event.src), key_class};
    uint64_t distinct = finding.distinct_count;
    uint64_t added = 1;
    if (edm) {
        // A record's count is the records new since the last record of the direction (a
        // body matched in the raw bytes and again as an object adds nothing the second time).
        // A record match carries no value: the table, its matched columns and the count.
        State& st = state_[key];
        distinct = edm_records(st, finding);
        added = distinct - st.edm_counted;
        st.edm_counted = distinct;
        record.edm_table = std::string(rule_name);
        record.edm_records = distinct;
        record.edm_columns = edm_column_names(content, finding.rule, st.edm_columns);
        if (st.edm_high) {
            record.confidence = detectors::Confidence::High;
        }
    }
    account(key, std::move(record), distinct >= content.threshold_of(finding.cls, finding.rule),
            event.time_ns, added);
}

uint64_t AlertSink::edm_records(State& st, const detectors::Finding& finding) {
    // The direction's own stream and its decoded objects each count their records. A body
    // that is both (a chunked one: the raw bytes hold most of it too) must not count twice,
    // and separate objects (bodies of a keep-alive connection, attachments) add up: the
    // direction's total is the larger of the raw count and the objects' sum.
    st.edm_columns |= finding.columns;
    st.edm_high = st.edm_high || finding.confidence == detectors::Confidence::High;
    if (finding.origin == 0) {
        st.edm_raw = std::max<uint64_t>(st.edm_raw, finding.distinct_count);
    } else {
        if (finding.origin != st.edm_origin) {
            st.edm_objects_done += st.edm_object;
            st.edm_object = 0;
            st.edm_origin = finding.origin;
        }
        st.edm_object = std::max<uint64_t>(st.edm_object, finding.distinct_count);
    }
    return std::max(st.edm_raw, st.edm_objects_done + st.edm_object);
}

std::vector<std::string> AlertSink::edm_column_names(
        const detectors::ContentConfig& content, uint16_t rule, uint32_t columns) {
    std::vector<std::string> names;
    const auto& tables = content.edm_tables;
    if (rule >= 1 && rule <= tables.size() && tables[rule - 1].index != nullptr) {
        const auto& schema = tables[rule - 1].index->schema().columns;
        for (size_t i = 0; i < schema.size() && i < 32; ++i) {
            if ((columns & (1U << i)) != 0) {
                names.push_back(schema[i].name);
            }
        }
    }
    return names;
}

void AlertSink::on_anomaly(const dataplane::WorkerEvent& event) {
    AlertRecord record = base_record(event);
    record.signature_id = event.ip_layer ? kOverlapSignatureId + 1 : kOverlapSignatureId;
    record.signature = event.ip_layer ? "EXFIL evasion: IP fragment resent with different content"
                                      : "EXFIL evasion: TCP bytes resent with different content";
    record.category = "Evasion";
    record.severity = detectors::Severity::Medium;
    record.detector = event.ip_layer ? "ip_fragment" : "tcp_overlap";
    record.cls = std::string(dataplane::exception_reason_name(event.reason));
    record.confidence = detectors::Confidence::High;
    if (config_.exceptions.drops(event.reason)) {
        record.action = "blocked";
    }
    const Key key{event.flow_id, event.src_port, address_prefix(event.src), record.cls};
    account(key, std::move(record), true, event.time_ns);
}

void AlertSink::account(
        const Key& key, AlertRecord record, bool armed, uint64_t now_ns, uint64_t added) {
    State& st = state_[key];
    st.latest = std::move(record);
    st.pending += added;
    st.armed = st.armed || armed;
    if (!st.armed || st.pending == 0) {
        return;  // below the class threshold (counted as findings), or nothing new
    }
    if (!st.emitted || now_ns >= st.last_emit_ns + interval_ns_) {
        write(st.latest, st.pending);
        st.pending = 0;
        st.emitted = true;
        st.last_emit_ns = now_ns;
    }
}

void AlertSink::on_flow_end(uint64_t flow_id) {
    auto it = state_.lower_bound(Key{flow_id, 0, 0, std::string()});
    while (it != state_.end() && std::get<0>(it->first) == flow_id) {
        State& st = it->second;
        if (st.armed && st.pending > 0) {
            write(st.latest, st.pending);
        }
        it = state_.erase(it);
    }
}

void AlertSink::flush_all() {
    for (auto& [key, st] : state_) {
        if (st.armed && st.pending > 0) {
            write(st.latest, st.pending);
        }
    }
    state_.clear();
    incidents_.close_all();
}

void AlertSink::write_record(AlertRecord record, uint64_t time_ns) {
    // Detectors that report per event of a flow (an archive, a file written) are suppressed
    // like content classes: one record per flow direction and detector per interval, the
    // rest folded into the next record's count (a flow with 200,000 pipelined uploads must
    // not write 200,000 records). The windowed detectors raise once per window already.
    if (record.detector == "archive_out" || record.detector == "unexpected_file_write") {
        const Key key{record.flow_id, record.src_port, address_prefix(record.src),
                "behaviour:" + record.detector};
        account(key, std::move(record), true, time_ns);
        return;
    }
    write(record, record.count);
}

void AlertSink::write(AlertRecord& record, uint64_t count) {
    record.count = count;
    const auto name_asset = [this](uint8_t version, const std::array<uint8_t, 16>& addr,
                                    std::string& name, std::string& classification) {
        if (!name.empty()) {
            return;  // the detector named it already
        }
        if (const detectors::Asset* asset = config_.assets.find(version, addr)) {
            name = asset->name;
            classification = std::string(detectors::classification_name(asset->classification));
        }
    };
    name_asset(record.ip_version, record.src, record.src_asset, record.src_asset_classification);
    name_asset(record.ip_version, record.dst, record.dst_asset, record.dst_asset_classification);
    if (hook_) {
        hook_(record);
    }
    if (writer_ != nullptr || outputs_ != nullptr) {
        std::string json = alert_to_json(record);
        if (outputs_ != nullptr) {
            outputs_->publish(record, json);
        }
        if (writer_ != nullptr) {
            writer_->write_json(std::move(json));
        }
    }
    const bool content = record.detector == "content" || record.detector == "tcp_overlap"
            || record.detector == "ip_fragment";
    if (content) {
        ++alerts_[record.cls];
    } else {
        ++behaviour_[record.detector];
    }
    incidents_.add(record);
}

void AlertSink::write_incident(Incident& incident, IncidentEvent event) {
    if (incident_hook_) {
        incident_hook_(incident, event);
    }
    ++incident_records_;
    if (writer_ == nullptr && outputs_ == nullptr) {
        return;
    }
    std::string json = incident_to_json(incident, event);
    if (outputs_ != nullptr) {
        // The syslog header and a CEF body are made from an alert record: one standing for
        // the incident, its host as the source.
        AlertRecord record;
        record.timestamp_s = incident.last_seen_s;
        record.ip_version = incident.ip_version;
        record.src = incident.host;
        record.dst = incident.host;
        record.proto = 0;
        record.signature_id = kIncidentSignatureId;
        record.signature = "EXFIL incident " + std::to_string(incident.id) + " "
                + std::string(incident_event_name(event)) + ", score "
                + std::to_string(incident.score);
        record.category = "Incident";
        record.severity = incident.score >= 2 * incidents_.config().open_score
                ? detectors::Severity::Critical
                : detectors::Severity::High;
        record.detector = "incident";
        record.cls = std::string(incident_event_name(event));
        record.src_asset = incident.host_asset;
        record.src_asset_classification = incident.host_classification;
        record.response = incident.response;
        outputs_->publish(record, json);
    }
    if (writer_ != nullptr) {
        writer_->write_json(std::move(json));
    }
}

}  // namespace exfiltap::control
