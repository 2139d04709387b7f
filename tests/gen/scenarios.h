#pragma once

#include <cstdint>

#include "tests/gen/capture.h"
#include "tests/gen/expect.h"

namespace exfiltap::gen {

// Fixed start of every capture: 2026-03-02T10:00:00Z.
inline constexpr uint64_t kBaseTimeUs = 1772445600ull * 1000000;

inline constexpr uint64_t kLargeDefaultPackets = 250000;

// A few hundred packets, each flow showing one situation the tap must get right (see
// scenario_demo.cc). The seed changes values, ports and timing, not the addresses.
void run_demo(Capture& capture, Expectations& expect, uint64_t seed);

// Thousands of flows, exactly `packets` packets (every TCP flow closed), rare sensitive
// values spread over the capture.
void run_large(Capture& capture, Expectations& expect, uint64_t seed, uint64_t packets);

}  // namespace exfiltap::gen
