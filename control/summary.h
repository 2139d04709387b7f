// The end-of-run summary of offline mode: what a person reads on the terminal, and the same
// figures as JSON (--summary-json). Control thread.
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include "dataplane/offline.h"

#include <nlohmann/json.hpp>

namespace exfiltap::control {

struct RunSummary {
    std::string input;
    uint64_t packets = 0;
    uint64_t bytes = 0;
    uint64_t packets_written = 0;
    uint64_t packets_dropped = 0;
    double elapsed_s = 0;
    double packets_per_second = 0;
    double capture_span_s = 0;
    unsigned workers = 0;
    std::map<std::string, uint64_t> counters;            // flows_created, stream_gaps, ...
    std::map<std::string, uint64_t> malformed;           // by reason, only non-zero
    std::map<std::string, uint64_t> fragment_anomalies;  // reassembly, by reason
    std::map<std::string, uint64_t> exceptions;          // exception policy: seen by reason
    std::map<std::string, uint64_t> exceptions_dropped;  // and dropped by reason
    std::map<std::string, uint64_t> findings;            // by class
    std::map<std::string, uint64_t> alerts;              // by class
    std::map<std::string, uint64_t> protocols;           // flows by application protocol
    std::map<std::string, uint64_t> app;                 // application layer counters
    std::map<std::string, uint64_t> behaviour;           // behaviour alerts by detector
    std::map<std::string, uint64_t> edm;                 // exact data match work
    uint64_t dpdk_heap_bytes = 0;
    uint64_t peak_rss_bytes = 0;
};

/// Sums the workers' counters and the reader's figures.
RunSummary summarize(const std::string& input, const dataplane::OfflineResult& result,
        const std::map<std::string, uint64_t>& alerts_by_class,
        const std::map<std::string, uint64_t>& behaviour_by_detector = {});

std::string summary_text(const RunSummary& summary);
nlohmann::json summary_json(const RunSummary& summary);

}  // namespace exfiltap::control
