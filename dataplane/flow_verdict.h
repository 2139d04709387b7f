// What a worker does to a flow the moment it finds exfiltration in it (DESIGN.md "Response",
// first level): the control thread compiles the response policy into this table, and the
// worker applies it to the finding's flow at once, the packet that completed the finding
// included, without a round trip to the control thread.
#pragma once

#include <array>
#include <cstdint>

#include "detectors/content_types.h"

namespace exfiltap::dataplane {

enum class FlowAction : uint8_t {
    None = 0,
    /// Shadow policy: counted as would_drop, nothing dropped.
    ShadowDrop = 1,
    /// The rest of the flow is dropped (inline), counted as would_drop (passive).
    Drop = 2,
};

struct FlowVerdictPolicy {
    struct Entry {
        FlowAction action = FlowAction::None;
        /// Send TCP resets both ways when the flow is dropped.
        bool reset = false;
        /// Distinct values in the flow direction before the verdict applies (the class
        /// threshold, so the verdict and the alert agree).
        uint32_t min_distinct = 1;
    };
    std::array<Entry, detectors::kContentClassCount> content{};
    /// Indexed by custom rule index, 0-based (Finding::rule - 1).
    std::array<Entry, detectors::kMaxCustomRules> custom{};
    Entry tcp_overlap{};
    Entry ip_fragment{};

    const Entry& for_finding(const detectors::Finding& finding) const noexcept {
        // Finding::rule is 1-based for custom rules, 0 for the built-in classes.
        if (finding.cls == detectors::ContentClass::Custom && finding.rule >= 1
                && finding.rule <= custom.size()) {
            return custom[finding.rule - 1U];
        }
        return content[static_cast<size_t>(finding.cls)];
    }
};

}  // namespace exfiltap::dataplane
