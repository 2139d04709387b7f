#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

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

// The behaviour detectors, in the order of detectors/behaviour.h.
inline constexpr std::array<std::string_view, 9> kBehaviourDetectorNames = {"external_upload",
        "internal_transfer", "baseline_deviation", "encrypted_asymmetry", "archive_out",
        "unexpected_file_write", "external_login", "mail_attachment_out", "dns_tunnel"};

// One capture per behaviour detector that must raise it and one near miss that must not:
// PREFIX-<detector>-alert.pcap and PREFIX-<detector>-near.pcap (see scenario_behaviour.cc
// for each case and the config it is sized for). Returns the paths written.
std::vector<std::string> run_behaviour(const std::string& prefix, uint64_t seed);

}  // namespace exfiltap::gen
