#include "control/worker_setup.h"

namespace exfiltap::control {

dataplane::NetworkSet internal_networks(const Config& config) {
    dataplane::NetworkSet internal;
    for (const Prefix& prefix : config.internal_networks) {
        internal.add(prefix.ip_version, prefix.addr, prefix.length);
    }
    return internal;
}

dataplane::WorkerConfig worker_template(const Config& config, const dataplane::NetworkSet& internal,
        std::shared_ptr<const detectors::PatternDatabase> patterns) {
    constexpr uint64_t kSecond = 1000000000ULL;
    dataplane::WorkerConfig w;
    w.socket_id = 0;
    w.internal = &internal;
    w.patterns = std::move(patterns);
    w.flows.capacity = config.flows.table_size;
    w.flows.vlan_in_key = config.flows.vlan_in_key;
    w.flows.timeout_ns = {config.flows.tcp_timeout_s * kSecond,
            config.flows.tcp_closed_timeout_s * kSecond, config.flows.udp_timeout_s * kSecond,
            config.flows.other_timeout_s * kSecond, config.flows.tcp_embryonic_timeout_s * kSecond};
    w.exceptions = config.exceptions;
    w.reorder_flow_bytes = config.flows.reorder_flow_bytes;
    w.reorder_worker_bytes = config.flows.reorder_worker_bytes;
    w.app_layer = config.flows.parsers;
    w.edm_state_slots = config.edm.state_slots;
    w.app.slots = config.flows.parser_slots;
    w.app.decoders = config.flows.body_decoders;
    switch (config.flows.checksum_validation) {
    case ChecksumValidation::Yes:
        w.checksum = dataplane::ChecksumMode::Yes;
        break;
    case ChecksumValidation::No:
        w.checksum = dataplane::ChecksumMode::No;
        break;
    case ChecksumValidation::Auto:
        w.checksum = dataplane::ChecksumMode::Auto;
        break;
    }
    return w;
}

}  // namespace exfiltap::control
