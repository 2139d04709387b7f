// Wire-format constants and big-endian loads shared by decode, reassembly and the offline
// reader. Pure header, no DPDK; every function is noexcept and reads only what it is given.
#pragma once

#include <cstdint>

namespace exfiltap::dataplane::wire {

inline constexpr uint32_t kIpv4MinHeaderLen = 20;
inline constexpr uint32_t kIpv6HeaderLen = 40;
inline constexpr uint32_t kIpv6FragmentHeaderLen = 8;
inline constexpr uint16_t kIpv4MoreFragments = 0x2000;
inline constexpr uint16_t kIpv4FragOffsetMask = 0x1fff;

// IPv6 extension headers walked by decode and reassembly.
inline constexpr uint8_t kIpv6HopByHop = 0;
inline constexpr uint8_t kIpv6Routing = 43;
inline constexpr uint8_t kIpv6Fragment = 44;
inline constexpr uint8_t kIpv6Ah = 51;
inline constexpr uint8_t kIpv6DestOptions = 60;
inline constexpr uint8_t kIpv6Mobility = 135;
inline constexpr uint8_t kIpv6Hip = 139;
inline constexpr uint8_t kIpv6Shim6 = 140;

// Bounds an extension-header walk, so a chain of tiny headers costs a fixed amount of work.
// Sixteen is far more than any legitimate sender stacks; it also keeps l4_offset within 16
// bits (16 headers of at most 2,048 bytes each).
inline constexpr unsigned kMaxIpv6Extensions = 16;

inline uint16_t load16(const uint8_t* p) noexcept {
    return static_cast<uint16_t>((p[0] << 8) | p[1]);
}

inline uint32_t load32(const uint8_t* p) noexcept {
    return (static_cast<uint32_t>(load16(p)) << 16) | load16(p + 2);
}

}  // namespace exfiltap::dataplane::wire
