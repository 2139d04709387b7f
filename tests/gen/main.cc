// exfiltap-gen: writes a deterministic test capture and, optionally, its ground truth.
//
//   exfiltap-gen --scenario demo --out demo.pcap --expect demo.json
//   exfiltap-gen --scenario large --out large.pcap --packets 250000 --seed 7
//   exfiltap-gen --scenario behaviour --out DIR/bh
//       (--out is a prefix: writes DIR/bh-<detector>-alert.pcap and DIR/bh-<detector>-near.pcap
//        for each behaviour detector; --expect and --packets do not apply)
//   exfiltap-gen --scenario edm --out DIR/edm --rows 1000000
//       (--out is a prefix: writes DIR/edm-customers.csv, DIR/edm-customers.yaml and the
//        captures DIR/edm-<capture>.pcap of kEdmCases; --expect and --packets do not apply)

#include <cstdint>
#include <exception>
#include <iostream>
#include <string>

#include "tests/gen/capture.h"
#include "tests/gen/expect.h"
#include "tests/gen/pcap_writer.h"
#include "tests/gen/scenarios.h"

#include <CLI/CLI.hpp>

int main(int argc, char** argv) {
    using namespace exfiltap::gen;
    CLI::App app{"exfiltap-gen: deterministic test captures for exfiltap"};
    std::string scenario;
    std::string out_path;
    std::string expect_path;
    uint64_t seed = 1;
    uint64_t packets = kLargeDefaultPackets;
    uint64_t rows = kEdmDefaultRows;
    app.add_option("--scenario", scenario, "demo, large, behaviour, edm or proprietary")
            ->required()
            ->check(CLI::IsMember({"demo", "large", "behaviour", "edm", "proprietary"}));
    app.add_option("--out", out_path, "pcap file to write (behaviour, edm: path prefix)")
            ->required();
    app.add_option("--expect", expect_path, "JSON file for the expected findings");
    app.add_option("--seed", seed, "PRNG seed; same arguments give the same bytes")
            ->capture_default_str();
    auto* packets_opt = app.add_option("--packets", packets, "packets to write (large only)")
                                ->capture_default_str();
    auto* rows_opt = app.add_option("--rows", rows, "rows of the customer table (edm only)")
                             ->capture_default_str();
    CLI11_PARSE(app, argc, argv);

    try {
        if (scenario != "edm" && rows_opt->count() != 0) {
            std::cerr << "exfiltap-gen: --rows applies to the edm scenario; ignored\n";
        }
        if (scenario == "edm") {
            if (!expect_path.empty() || packets_opt->count() != 0) {
                std::cerr << "exfiltap-gen: --expect and --packets do not apply to the "
                             "edm scenario; ignored\n";
            }
            for (const std::string& line : run_edm(out_path, seed, rows)) {
                std::cout << line << '\n';
            }
            return 0;
        }
        if (scenario == "proprietary") {
            for (const std::string& path : run_proprietary(out_path, seed)) {
                std::cout << path << '\n';
            }
            return 0;
        }
        if (scenario == "behaviour") {
            if (!expect_path.empty() || packets_opt->count() != 0) {
                std::cerr << "exfiltap-gen: --expect and --packets do not apply to the "
                             "behaviour scenario; ignored\n";
            }
            for (const std::string& path : run_behaviour(out_path, seed)) {
                std::cout << path << '\n';
            }
            return 0;
        }
        if (scenario == "demo" && packets_opt->count() != 0) {
            std::cerr << "exfiltap-gen: --packets applies to the large scenario; ignored\n";
        }
        PcapWriter writer(out_path);
        Capture capture(writer);
        Expectations expect;
        if (scenario == "demo") {
            run_demo(capture, expect, seed);
        } else {
            run_large(capture, expect, seed, packets);
        }
        capture.finish();
        writer.close();
        if (!expect_path.empty()) {
            expect.write(
                    expect_path, scenario, seed, writer.packets(), writer.bytes(), capture.flows());
        }
        std::cout << scenario << ": " << writer.packets() << " packets, " << writer.bytes()
                  << " bytes, " << capture.flows() << " flows, " << expect.outbound()
                  << " outbound values, " << expect.not_outbound() << " not outbound\n";
    } catch (const std::exception& e) {
        std::cerr << "exfiltap-gen: " << e.what() << '\n';
        return 1;
    }
    return 0;
}
