// rte_flow drop rules for exact blocks (DESIGN.md "Response": where a port accepts drop
// rules, exact entries are also offloaded). A rule drops ingress packets from one source
// address: pattern ETH / IPV4 or IPV6 with the source address in spec and a full mask,
// action DROP.
//
// Thread: the control thread (rte_flow calls are not for the data path). The software block
// table stays authoritative: a rule that cannot be installed only costs the worker a lookup.
#pragma once

#include <array>
#include <cstdint>
#include <string>

#include <rte_flow.h>

#include "common/result.h"

namespace exfiltap::dataplane {

/// One drop rule with everything it points to inside: attr, pattern and actions stay valid as
/// long as the object does. Copies point at their own specs.
struct FlowDropRule {
    /// `src`: network order, IPv4 in the first 4 bytes. `ip_version` other than 4 is IPv6.
    FlowDropRule(uint8_t ip_version, const std::array<uint8_t, 16>& src);
    FlowDropRule(const FlowDropRule& other);
    FlowDropRule& operator=(const FlowDropRule& other);
    ~FlowDropRule() = default;

    uint8_t ip_version = 4;
    rte_flow_attr attr{};
    rte_flow_item_ipv4 ipv4_spec{};
    rte_flow_item_ipv4 ipv4_mask{};
    rte_flow_item_ipv6 ipv6_spec{};
    rte_flow_item_ipv6 ipv6_mask{};
    /// ETH (any), IPV4 or IPV6 (source), END.
    std::array<rte_flow_item, 3> pattern{};
    /// DROP, END.
    std::array<rte_flow_action, 2> actions{};

private:
    void link();
};

/// What a port accepts, per family: ok, or the driver's reason.
struct FlowOffloadSupport {
    Status v4 = Ok{};
    Status v6 = Ok{};
};

/// Asks the port (configured and started) whether it takes a drop rule for an IPv4 and an
/// IPv6 source: rte_flow_validate, then a rule for a documentation address (192.0.2.1,
/// 2001:db8::1) created and destroyed at once, because some drivers (net_tap without the
/// kernel's multiq and flower support) validate rules they cannot install.
FlowOffloadSupport probe_flow_offload(uint16_t port_id);

/// Installs the rule; the error carries the driver's reason.
Result<rte_flow*> install_drop_rule(uint16_t port_id, const FlowDropRule& rule);

/// Destroys a rule install_drop_rule() returned.
Status remove_drop_rule(uint16_t port_id, rte_flow* flow);

}  // namespace exfiltap::dataplane
