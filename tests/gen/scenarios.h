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
inline constexpr std::array<std::string_view, 13> kBehaviourDetectorNames = {"external_upload",
        "internal_transfer", "baseline_deviation", "encrypted_asymmetry", "archive_out",
        "unexpected_file_write", "external_login", "mail_attachment_out", "dns_tunnel",
        "lateral_fanout", "share_enumeration", "first_access", "staging"};

// One capture per behaviour detector that must raise it and one near miss that must not:
// PREFIX-<detector>-alert.pcap and PREFIX-<detector>-near.pcap (see scenario_behaviour.cc
// for each case and the config it is sized for), then the lateral movement story of one host
// and a normal workday: PREFIX-lateral-story-alert.pcap and PREFIX-lateral-workday-near.pcap,
// and the whole attack over hours (outside SSH guessing, fan-out, shares, staging, an HTTPS
// upload) with the same host's workday: PREFIX-lateral-attack-story-alert.pcap and
// PREFIX-lateral-attack-workday-near.pcap.
// Returns the paths written.
std::vector<std::string> run_behaviour(const std::string& prefix, uint64_t seed);

// Proprietary content leaving (scenario_proprietary.cc): PREFIX-<case>.pcap for code-licensed,
// code-plain, pdf-labelled, office-zip, prose and code-internal. Returns the paths written.
std::vector<std::string> run_proprietary(const std::string& prefix, uint64_t seed);

// Exact data match (scenario_edm.cc). Rows of the fake customer table: default, and the range
// --rows accepts.
inline constexpr uint64_t kEdmDefaultRows = 1000000;
inline constexpr uint64_t kEdmMinRows = 1000;
inline constexpr uint64_t kEdmMaxRows = 1000000000;
// The 0-based data row whose street_address is "12 Elm Street, Apt 4", quoted in the CSV. It
// is one of the 50 rows of the csv50 and reordered captures.
inline constexpr uint64_t kEdmQuotedRow = 6;

// One EDM capture, PREFIX-<capture>.pcap, and the records of table "customers" that the EDM
// detector must report for it (a record's primary value account_number and its four other
// values are all in the capture when records > 0); 0: no EDM finding at all.
struct EdmCase {
    std::string_view capture;
    uint32_t records;
};
inline constexpr std::array<EdmCase, 8> kEdmCases = {{
        {"csv50", 50},      // POST text/csv: header + 50 rows, 1460-byte segments
        {"reordered", 50},  // the same request in 90-200 byte segments, swapped, one resent
        {"names-only", 0},  // full_name, street_address, city of 50 rows; no account_number
        {"mixed", 0},       // 50 lines, every value from another row: nothing corroborated
        {"json5", 5},       // POST application/json, 5 rows, keys in another order
        {"benign", 0},      // an HTML page download and a POST of ordinary words
        // One keep-alive connection, two chunked POSTs of 25 other rows each (100-byte
        // chunks): each body is a decoded object of its own and the raw stream holds most
        // rows too; the direction's records are 50.
        {"chunked-keepalive", 50},
        // One keep-alive connection, three form posts (account, name, e-mail last, no line
        // end): each e-mail must end with its body, not run into the next request.
        {"form-keepalive", 3},
}};

// Writes PREFIX-customers.csv (header line and `rows` rows), PREFIX-customers.yaml (its
// schema) and PREFIX-<capture>.pcap for every case of kEdmCases; the same seed and rows give
// the same bytes. Returns one line per file written ("path: what it holds"). Throws
// std::invalid_argument when rows is out of range.
std::vector<std::string> run_edm(const std::string& prefix, uint64_t seed, uint64_t rows);

}  // namespace exfiltap::gen
