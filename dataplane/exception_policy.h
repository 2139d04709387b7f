// The exception policy (DESIGN.md "Exception policy"): every situation in which the tap
// cannot do its job on a packet has a counted reason and a configured action, forward or
// drop (drop acts in inline mode and offline; passive mode only counts). Pure header: the
// config loader uses it without DPDK.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace exfiltap::dataplane {

enum class ExceptionReason : uint8_t {
    Undecodable = 0,            // a malformed or truncated header
    FragmentUnreassembled = 1,  // a fragment reassembly rejects (overlap, too many, oversize)
    ConflictingOverlap = 2,     // TCP bytes resent with other content: an evasion sign
    FlowTableFull = 3,          // a new flow evicted another to get a slot
    StreamMemoryExhausted = 4,  // reorder, stream or decoder memory ran out: uninspected
    RxOverload = 5,             // the NIC missed packets (counted from port statistics)
};
inline constexpr size_t kExceptionReasonCount = 6;

inline constexpr std::array<std::string_view, kExceptionReasonCount> kExceptionReasonNames = {
        "undecodable", "fragment_unreassembled", "conflicting_overlap", "flow_table_full",
        "stream_memory_exhausted", "rx_overload"};

inline std::string_view exception_reason_name(ExceptionReason reason) noexcept {
    return kExceptionReasonNames[static_cast<size_t>(reason)];
}

/// Action per reason. Defaults fail open, except conflicting overlaps, which fail closed.
struct ExceptionPolicy {
    std::array<bool, kExceptionReasonCount> drop{false, false, true, false, false, false};

    bool drops(ExceptionReason reason) const noexcept { return drop[static_cast<size_t>(reason)]; }
};

}  // namespace exfiltap::dataplane
