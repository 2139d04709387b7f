#include "control/summary.h"

#include <sys/resource.h>

#include <cinttypes>
#include <cstdio>

#include "detectors/app_event.h"
#include "detectors/behaviour.h"
#include "detectors/content_types.h"

namespace exfiltap::control {

RunSummary summarize(const std::string& input, const dataplane::OfflineResult& result,
        const std::map<std::string, uint64_t>& alerts_by_class,
        const std::map<std::string, uint64_t>& behaviour_by_detector) {
    RunSummary s;
    s.input = input;
    s.packets = result.packets_read;
    s.bytes = result.bytes_read;
    s.packets_written = result.packets_written;
    s.packets_dropped = result.packets_dropped;
    s.elapsed_s = result.elapsed_s;
    s.packets_per_second = result.elapsed_s > 0 ? static_cast<double>(s.packets) / s.elapsed_s : 0;
    s.capture_span_s = result.last_ns > result.first_ns
            ? static_cast<double>(result.last_ns - result.first_ns) / 1e9
            : 0;
    s.workers = static_cast<unsigned>(result.counters.size());
    s.dpdk_heap_bytes = result.dpdk_heap_bytes;
    rusage usage{};
    if (getrusage(RUSAGE_SELF, &usage) == 0) {
        s.peak_rss_bytes = static_cast<uint64_t>(usage.ru_maxrss) * 1024;
    }

    auto& c = s.counters;
    for (const char* name : {"flows_created", "flows_timed_out", "flows_evicted_full",
                 "flows_no_slot", "non_ip", "fragments", "fragments_reassembled", "checksum_bad",
                 "checksum_offload", "stream_gaps", "stream_gap_bytes", "retransmitted_bytes",
                 "conflicting_overlaps", "stream_memory_exhausted", "content_memory_exhausted",
                 "scanned_bytes", "findings_lost", "events_dropped", "malformed_total"}) {
        c[name] = 0;
    }
    for (size_t k = 0; k < detectors::kContentClassCount; ++k) {
        const auto cls =
                std::string(detectors::content_class_name(static_cast<detectors::ContentClass>(k)));
        s.findings[cls] = 0;
        s.alerts[cls] = 0;
    }
    for (const dataplane::WorkerCounters* w : result.counters) {
        c["flows_created"] += w->flows_created.get();
        c["flows_timed_out"] += w->flows_timed_out.get();
        c["flows_evicted_full"] += w->flows_evicted_full.get();
        c["flows_no_slot"] += w->flows_no_slot.get();
        c["non_ip"] += w->non_ip.get();
        c["fragments"] += w->fragments.get();
        c["fragments_reassembled"] += w->fragments_reassembled.get();
        c["checksum_bad"] += w->checksum_bad.get();
        c["checksum_offload"] += w->checksum_offload.get();
        c["stream_gaps"] += w->stream_gaps.get();
        c["stream_gap_bytes"] += w->stream_gap_bytes.get();
        c["retransmitted_bytes"] += w->retransmitted_bytes.get();
        c["conflicting_overlaps"] += w->conflicting_overlaps.get();
        c["stream_memory_exhausted"] += w->stream_memory_exhausted.get();
        c["content_memory_exhausted"] += w->content_memory_exhausted.get();
        c["scanned_bytes"] += w->scanned_bytes.get();
        c["findings_lost"] += w->findings_lost.get();
        c["events_dropped"] += w->events_dropped.get();
        for (size_t r = 1; r < dataplane::kMalformedCount; ++r) {
            const uint64_t n = w->malformed[r].get();
            if (n > 0) {
                s.malformed[std::string(
                        dataplane::malformed_name(static_cast<dataplane::Malformed>(r)))] += n;
                c["malformed_total"] += n;
            }
        }
        for (size_t k = 0; k < detectors::kContentClassCount; ++k) {
            s.findings[std::string(detectors::content_class_name(
                    static_cast<detectors::ContentClass>(k)))] += w->findings[k].get();
        }
    }
    for (size_t r = 0; r < dataplane::kExceptionReasonCount; ++r) {
        const auto name = std::string(dataplane::kExceptionReasonNames[r]);
        s.exceptions[name] = 0;
        s.exceptions_dropped[name] = 0;
        for (const dataplane::WorkerCounters* w : result.counters) {
            s.exceptions[name] += w->exceptions[r].get();
            s.exceptions_dropped[name] += w->dropped[r].get();
        }
    }
    for (const dataplane::ReassemblyStats* r : result.reassembly) {
        auto& f = s.fragment_anomalies;
        f["duplicates"] += r->duplicates;
        f["conflicting_overlaps"] += r->conflicting_overlaps;
        f["too_many_fragments"] += r->too_many_fragments;
        f["oversize"] += r->oversize;
        f["invalid"] += r->invalid;
        f["memory_exhausted"] += r->memory_exhausted;
        f["timed_out"] += r->timed_out;
        f["discarded"] += r->discarded;
    }
    for (const auto& [cls, n] : alerts_by_class) {
        s.alerts[cls] = n;
    }
    for (size_t p = 0; p < detectors::kAppProtoCount; ++p) {
        const auto name =
                std::string(detectors::app_proto_name(static_cast<detectors::AppProto>(p)));
        s.protocols[name] = 0;
        for (const dataplane::AppCounters* a : result.app) {
            s.protocols[name] += a->flows_by_proto[p].get();
        }
    }
    for (const char* name : {"events", "slots_exhausted", "decoders_exhausted", "bodies_capped",
                 "bodies_failed", "objects", "object_bytes", "dns_messages", "dns_malformed",
                 "ftp_data_linked"}) {
        s.app[name] = 0;
    }
    for (const dataplane::AppCounters* a : result.app) {
        s.app["events"] += a->events.get();
        s.app["slots_exhausted"] += a->slots_exhausted.get();
        s.app["decoders_exhausted"] += a->decoders_exhausted.get();
        s.app["bodies_capped"] += a->bodies_capped.get();
        s.app["bodies_failed"] += a->bodies_failed.get();
        s.app["objects"] += a->objects.get();
        s.app["object_bytes"] += a->object_bytes.get();
        s.app["dns_messages"] += a->dns_messages.get();
        s.app["dns_malformed"] += a->dns_malformed.get();
        s.app["ftp_data_linked"] += a->ftp_data_linked.get();
    }
    for (const char* name : {"words", "words_unknown", "primary_hits", "value_hits", "records",
                 "state_exhausted", "hits_overwritten", "candidates_dropped"}) {
        s.edm[name] = 0;
    }
    for (const detectors::EdmCounters* e : result.edm) {
        s.edm["words"] += e->words.get();
        s.edm["words_unknown"] += e->words_unknown.get();
        s.edm["primary_hits"] += e->primary_hits.get();
        s.edm["value_hits"] += e->value_hits.get();
        s.edm["records"] += e->records.get();
        s.edm["state_exhausted"] += e->state_exhausted.get();
        s.edm["hits_overwritten"] += e->hits_overwritten.get();
        s.edm["candidates_dropped"] += e->candidates_dropped.get();
    }
    for (size_t d = 0; d < detectors::kBehaviourDetectorCount; ++d) {
        s.behaviour[std::string(detectors::behaviour_detector_name(
                static_cast<detectors::BehaviourDetector>(d)))] = 0;
    }
    for (const auto& [detector, n] : behaviour_by_detector) {
        s.behaviour[detector] = n;
    }
    return s;
}

std::string summary_text(const RunSummary& s) {
    std::string out;
    char line[256];
    auto add = [&](const char* fmt, auto... args) {
        snprintf(line, sizeof(line), fmt, args...);
        out += line;
    };
    add("exfiltap offline summary: %s\n", s.input.c_str());
    add("  packets        %" PRIu64 " (%" PRIu64 " bytes), written %" PRIu64 ", dropped %" PRIu64
        "\n",
            s.packets, s.bytes, s.packets_written, s.packets_dropped);
    add("  time           %.3f s on %u worker(s): %.0f packets/s; capture spans %.3f s\n",
            s.elapsed_s, s.workers, s.packets_per_second, s.capture_span_s);
    const auto& c = s.counters;
    add("  flows          %" PRIu64 " created, %" PRIu64 " timed out, %" PRIu64
        " evicted (table full)\n",
            c.at("flows_created"), c.at("flows_timed_out"), c.at("flows_evicted_full"));
    add("  streams        %" PRIu64 " bytes scanned, %" PRIu64 " gaps (%" PRIu64 " bytes), %" PRIu64
        " retransmitted bytes, %" PRIu64 " conflicting overlaps\n",
            c.at("scanned_bytes"), c.at("stream_gaps"), c.at("stream_gap_bytes"),
            c.at("retransmitted_bytes"), c.at("conflicting_overlaps"));
    add("  other          %" PRIu64 " non-IP, %" PRIu64 " fragments (%" PRIu64
        " datagrams rebuilt), %" PRIu64 " bad checksums, %" PRIu64 " offload checksums\n",
            c.at("non_ip"), c.at("fragments"), c.at("fragments_reassembled"), c.at("checksum_bad"),
            c.at("checksum_offload"));
    std::string anomalies;
    for (const auto& [reason, n] : s.fragment_anomalies) {
        if (n > 0) {
            anomalies += " " + reason + "=" + std::to_string(n);
        }
    }
    if (!anomalies.empty()) {
        add("  fragments     %s\n", anomalies.c_str());
    }
    std::string exceptions;
    for (const auto& [reason, n] : s.exceptions) {
        if (n > 0) {
            exceptions += " " + reason + "=" + std::to_string(n) + " (dropped "
                    + std::to_string(s.exceptions_dropped.at(reason)) + ")";
        }
    }
    if (!exceptions.empty()) {
        add("  exceptions    %s\n", exceptions.c_str());
    }
    add("  malformed      %" PRIu64 "\n", c.at("malformed_total"));
    for (const auto& [reason, n] : s.malformed) {
        add("    %-28s %" PRIu64 "\n", reason.c_str(), n);
    }
    add("  findings / alerts by class\n");
    for (const auto& [cls, n] : s.findings) {
        add("    %-28s %" PRIu64 " findings, %" PRIu64 " alerts\n", cls.c_str(), n,
                s.alerts.count(cls) != 0 ? s.alerts.at(cls) : 0);
    }
    std::string protocols;
    for (const auto& [name, n] : s.protocols) {
        if (n > 0) {
            protocols += " " + name + "=" + std::to_string(n);
        }
    }
    add("  protocols     %s\n", protocols.empty() ? " none" : protocols.c_str());
    add("  app layer      %" PRIu64 " events, %" PRIu64 " decoded objects (%" PRIu64
        " bytes), %" PRIu64 " DNS messages (%" PRIu64 " malformed), %" PRIu64
        " FTP data connections linked\n",
            s.app.at("events"), s.app.at("objects"), s.app.at("object_bytes"),
            s.app.at("dns_messages"), s.app.at("dns_malformed"), s.app.at("ftp_data_linked"));
    if (s.edm.at("words") > 0) {
        add("  exact data     %" PRIu64 " words, %" PRIu64 " primary hits, %" PRIu64
            " value hits, %" PRIu64 " records\n",
                s.edm.at("words"), s.edm.at("primary_hits"), s.edm.at("value_hits"),
                s.edm.at("records"));
    }
    if (s.edm.at("state_exhausted") + s.edm.at("hits_overwritten") + s.edm.at("candidates_dropped")
            > 0) {
        add("  WARNING        exact data match: %" PRIu64
            " flow directions without state "
            "(edm.state_slots), %" PRIu64 " value hits overwritten, %" PRIu64
            " waiting records dropped\n",
                s.edm.at("state_exhausted"), s.edm.at("hits_overwritten"),
                s.edm.at("candidates_dropped"));
    }
    add("  behaviour alerts by detector\n");
    for (const auto& [detector, n] : s.behaviour) {
        add("    %-28s %" PRIu64 "\n", detector.c_str(), n);
    }
    if (s.app.at("slots_exhausted") + s.app.at("decoders_exhausted") + s.app.at("bodies_capped")
                    + s.app.at("bodies_failed")
            > 0) {
        add("  WARNING        %" PRIu64 " flows unparsed (parser slots exhausted), %" PRIu64
            " bodies not decoded (decoders exhausted), %" PRIu64
            " decoded only in part (1 MiB or 100:1 cap), %" PRIu64 " corrupt\n",
                s.app.at("slots_exhausted"), s.app.at("decoders_exhausted"),
                s.app.at("bodies_capped"), s.app.at("bodies_failed"));
    }
    if (c.at("findings_lost") + c.at("events_dropped") + c.at("stream_memory_exhausted")
                    + c.at("content_memory_exhausted")
            > 0) {
        add("  WARNING        %" PRIu64 " findings lost, %" PRIu64 " events dropped, %" PRIu64
            " stream memory exhausted, %" PRIu64 " content memory exhausted\n",
                c.at("findings_lost"), c.at("events_dropped"), c.at("stream_memory_exhausted"),
                c.at("content_memory_exhausted"));
    }
    add("  memory         DPDK heap %.1f MiB in use, process peak RSS %.1f MiB\n",
            static_cast<double>(s.dpdk_heap_bytes) / 1048576.0,
            static_cast<double>(s.peak_rss_bytes) / 1048576.0);
    return out;
}

nlohmann::json summary_json(const RunSummary& s) {
    nlohmann::json j;
    j["input"] = s.input;
    j["packets"] = s.packets;
    j["bytes"] = s.bytes;
    j["packets_written"] = s.packets_written;
    j["packets_dropped"] = s.packets_dropped;
    j["elapsed_s"] = s.elapsed_s;
    j["packets_per_second"] = s.packets_per_second;
    j["capture_span_s"] = s.capture_span_s;
    j["workers"] = s.workers;
    j["flows"] = s.counters.at("flows_created");
    j["counters"] = s.counters;
    j["malformed"] = s.malformed;
    j["fragment_anomalies"] = s.fragment_anomalies;
    j["exceptions"] = {{"seen", s.exceptions}, {"dropped", s.exceptions_dropped}};
    j["findings"] = s.findings;
    j["alerts"] = s.alerts;
    j["protocols"] = s.protocols;
    j["app"] = s.app;
    j["behaviour"] = s.behaviour;
    j["edm"] = s.edm;
    j["memory"] = {{"dpdk_heap_bytes", s.dpdk_heap_bytes}, {"peak_rss_bytes", s.peak_rss_bytes}};
    return j;
}

}  // namespace exfiltap::control
