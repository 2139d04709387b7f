// Starts the EAL once per test binary: no hugepages, no PCI, no shared config, a unique
// file prefix, so EAL tests never share runtime files with other processes.
#pragma once

#include <unistd.h>

#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <rte_eal.h>

namespace exfiltap::testing {

class EalEnvironment : public ::testing::Environment {
public:
    void SetUp() override {
        std::vector<std::string> args = {"eal_test", "--no-huge", "--no-pci", "--no-shconf", "-m",
                "256", "--no-telemetry", "-l", "0", "--log-level", "lib.eal:error", "--file-prefix",
                "exfiltap_test_" + std::to_string(getpid())};
        std::vector<char*> argv;
        for (std::string& a : args) {
            argv.push_back(a.data());
        }
        ASSERT_GE(rte_eal_init(static_cast<int>(argv.size()), argv.data()), 0);
    }
    void TearDown() override { rte_eal_cleanup(); }
};

}  // namespace exfiltap::testing
