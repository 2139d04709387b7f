#include "dataplane/flow_offload.h"

#include <cstring>

#include <rte_errno.h>

namespace exfiltap::dataplane {

namespace {

// TEST-NET-1 and the IPv6 documentation prefix: no real traffic comes from them, so the
// probe rule drops nothing while it exists.
constexpr std::array<uint8_t, 16> kProbeV4 = {192, 0, 2, 1};
constexpr std::array<uint8_t, 16> kProbeV6 = {
        0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};

std::string flow_error_text(int ret, const rte_flow_error& error) {
    std::string text = error.message != nullptr ? error.message : "no reason given";
    text += " (" + std::string(rte_strerror(ret < 0 ? -ret : ret)) + ", error type "
            + std::to_string(static_cast<int>(error.type)) + ")";
    return text;
}

// rte_flow_validate, then one real create and destroy: some drivers (net_tap without the
// kernel's multiq/flower support) validate rules they can never install.
Status probe_rule(uint16_t port_id, const FlowDropRule& rule) {
    const std::string what = "port " + std::to_string(port_id) + " refuses an IPv"
            + std::to_string(rule.ip_version) + " source drop rule: ";
    rte_flow_error error{};
    const int ret = rte_flow_validate(
            port_id, &rule.attr, rule.pattern.data(), rule.actions.data(), &error);
    if (ret != 0) {
        return make_error(what + flow_error_text(ret, error));
    }
    rte_flow* flow =
            rte_flow_create(port_id, &rule.attr, rule.pattern.data(), rule.actions.data(), &error);
    if (flow == nullptr) {
        return make_error(
                what + "validated but not installed: " + flow_error_text(rte_errno, error));
    }
    const int destroyed = rte_flow_destroy(port_id, flow, &error);
    if (destroyed != 0) {
        return make_error(what + "probe rule not removed: " + flow_error_text(destroyed, error));
    }
    return Ok{};
}

}  // namespace

FlowDropRule::FlowDropRule(uint8_t version, const std::array<uint8_t, 16>& src)
    : ip_version(version == 4 ? 4 : 6) {
    attr.ingress = 1;
    if (ip_version == 4) {
        std::memcpy(&ipv4_spec.hdr.src_addr, src.data(), 4);
        std::memset(&ipv4_mask.hdr.src_addr, 0xff, 4);
    } else {
        std::memcpy(ipv6_spec.hdr.src_addr, src.data(), 16);
        std::memset(ipv6_mask.hdr.src_addr, 0xff, 16);
    }
    link();
}

FlowDropRule::FlowDropRule(const FlowDropRule& other)
    : ip_version(other.ip_version),
      attr(other.attr),
      ipv4_spec(other.ipv4_spec),
      ipv4_mask(other.ipv4_mask),
      ipv6_spec(other.ipv6_spec),
      ipv6_mask(other.ipv6_mask) {
    link();
}

FlowDropRule& FlowDropRule::operator=(const FlowDropRule& other) {
    if (this != &other) {
        ip_version = other.ip_version;
        attr = other.attr;
        ipv4_spec = other.ipv4_spec;
        ipv4_mask = other.ipv4_mask;
        ipv6_spec = other.ipv6_spec;
        ipv6_mask = other.ipv6_mask;
        link();
    }
    return *this;
}

void FlowDropRule::link() {
    // ETH without spec matches any frame; the IP item narrows it to the source address.
    pattern[0] = rte_flow_item{};
    pattern[0].type = RTE_FLOW_ITEM_TYPE_ETH;
    pattern[1] = rte_flow_item{};
    if (ip_version == 4) {
        pattern[1].type = RTE_FLOW_ITEM_TYPE_IPV4;
        pattern[1].spec = &ipv4_spec;
        pattern[1].mask = &ipv4_mask;
    } else {
        pattern[1].type = RTE_FLOW_ITEM_TYPE_IPV6;
        pattern[1].spec = &ipv6_spec;
        pattern[1].mask = &ipv6_mask;
    }
    pattern[2] = rte_flow_item{};
    pattern[2].type = RTE_FLOW_ITEM_TYPE_END;
    actions[0] = rte_flow_action{};
    actions[0].type = RTE_FLOW_ACTION_TYPE_DROP;
    actions[1] = rte_flow_action{};
    actions[1].type = RTE_FLOW_ACTION_TYPE_END;
}

FlowOffloadSupport probe_flow_offload(uint16_t port_id) {
    FlowOffloadSupport support;
    support.v4 = probe_rule(port_id, FlowDropRule(4, kProbeV4));
    support.v6 = probe_rule(port_id, FlowDropRule(6, kProbeV6));
    return support;
}

Result<rte_flow*> install_drop_rule(uint16_t port_id, const FlowDropRule& rule) {
    rte_flow_error error{};
    rte_flow* flow =
            rte_flow_create(port_id, &rule.attr, rule.pattern.data(), rule.actions.data(), &error);
    if (flow == nullptr) {
        return make_error("port " + std::to_string(port_id)
                + ": drop rule not installed: " + flow_error_text(rte_errno, error));
    }
    return flow;
}

Status remove_drop_rule(uint16_t port_id, rte_flow* flow) {
    rte_flow_error error{};
    const int ret = rte_flow_destroy(port_id, flow, &error);
    if (ret != 0) {
        return make_error("port " + std::to_string(port_id)
                + ": drop rule not removed: " + flow_error_text(ret, error));
    }
    return Ok{};
}

}  // namespace exfiltap::dataplane
