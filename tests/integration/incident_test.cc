// Incidents end to end: the behaviour captures of exfiltap-gen (tests/gen/scenario_behaviour.cc)
// joined into one story of one host over simulated hours. Each capture is moved an hour after
// the previous one and its workstation renamed to the story's host, with the IPv4 and TCP/UDP
// checksums adjusted: an outside FTP login to 10.20.3.21, then that host writes 2.1 MB to the
// file server over SMB, sends three archives out and uploads 2.1 MB. The run must write one
// incident whose findings come in that order with the alerts' flow ids; the near miss (the
// same host doing only the internal write) writes none. Every record is held to its schema.
#include <pcap/pcap.h>
#include <unistd.h>

#include <array>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tests/integration/harness.h"
#include "tests/schema_validator.h"

namespace exfiltap::testing {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

constexpr std::string_view kConfig = R"(assets:
  - name: workstations
    prefixes: [10.20.1.0/24]
    classification: internal
  - name: file-server
    prefixes: [10.20.9.10/32]
    classification: confidential
    roles: [file-server]
  - name: dmz
    prefixes: [10.20.3.0/24]
    classification: internal
behaviour:
  external_upload:
    window_s: 3600
    host_bytes: {public: 2000000, internal: 2000000, confidential: 2000000, restricted: 2000000}
  internal_transfer:
    window_s: 3600
    flow_bytes: 2000000
    host_bytes: 0
  external_login:
    window_s: 600
    service_sources: 5
    user_sources: 3
    source_failures: 3
    success_after_failures: 2
incidents:
  open_score: 50
)";

constexpr uint32_t kHost = 0x0a140315;  // 10.20.3.21, the FTP server logged into
constexpr int64_t kHourS = 3600;

/// RFC 1624 incremental update of a ones' complement checksum for a 16-bit word change.
uint16_t checksum_update(uint16_t sum, uint16_t old_word, uint16_t new_word) {
    uint32_t s = static_cast<uint16_t>(~sum) + static_cast<uint16_t>(~old_word) + new_word;
    s = (s & 0xffff) + (s >> 16);
    s = (s & 0xffff) + (s >> 16);
    return static_cast<uint16_t>(~s);
}

uint16_t be16_at(const u_char* p) {
    return static_cast<uint16_t>((p[0] << 8) | p[1]);
}

void put_be16(u_char* p, uint16_t v) {
    p[0] = static_cast<u_char>(v >> 8);
    p[1] = static_cast<u_char>(v);
}

/// Renames `from` to kHost in an untagged Ethernet/IPv4 frame, fixing the checksums.
void rename_host(u_char* frame, uint32_t caplen, uint32_t from) {
    constexpr uint32_t kEth = 14;
    if (caplen < kEth + 20 || be16_at(frame + 12) != 0x0800) {
        return;
    }
    u_char* ip = frame + kEth;
    const uint32_t ihl = (ip[0] & 0x0f) * 4U;
    const uint8_t proto = ip[9];
    u_char* l4 = ip + ihl;
    const bool first_fragment = (be16_at(ip + 6) & 0x1fff) == 0;
    u_char* l4_sum = nullptr;
    if (first_fragment && proto == 6 && caplen >= kEth + ihl + 18) {
        l4_sum = l4 + 16;
    } else if (first_fragment && proto == 17 && caplen >= kEth + ihl + 8 && be16_at(l4 + 6) != 0) {
        l4_sum = l4 + 6;
    }
    for (const uint32_t offset : {12U, 16U}) {
        u_char* addr = ip + offset;
        const uint32_t value = (uint32_t{addr[0]} << 24) | (uint32_t{addr[1]} << 16)
                | (uint32_t{addr[2]} << 8) | addr[3];
        if (value != from) {
            continue;
        }
        for (const uint32_t half : {0U, 2U}) {
            const uint16_t old_word = be16_at(addr + half);
            const auto new_word = static_cast<uint16_t>(kHost >> (half == 0 ? 16 : 0));
            put_be16(ip + 10, checksum_update(be16_at(ip + 10), old_word, new_word));
            if (l4_sum != nullptr) {
                put_be16(l4_sum, checksum_update(be16_at(l4_sum), old_word, new_word));
            }
            put_be16(addr + half, new_word);
        }
    }
}

struct Part {
    std::string capture;       // behaviour case name
    uint32_t workstation = 0;  // renamed to kHost; 0: none
};

/// Writes the parts one after the other into `out`, part i moved i hours later.
void join_captures(
        const std::string& prefix, const std::vector<Part>& parts, const std::string& out) {
    std::array<char, PCAP_ERRBUF_SIZE> err{};
    pcap_t* dead =
            pcap_open_dead_with_tstamp_precision(DLT_EN10MB, 65535, PCAP_TSTAMP_PRECISION_MICRO);
    pcap_dumper_t* dumper = pcap_dump_open(dead, out.c_str());
    ASSERT_NE(dumper, nullptr) << pcap_geterr(dead);
    for (size_t i = 0; i < parts.size(); ++i) {
        const std::string path = prefix + "-" + parts[i].capture + "-alert.pcap";
        pcap_t* in = pcap_open_offline_with_tstamp_precision(
                path.c_str(), PCAP_TSTAMP_PRECISION_MICRO, err.data());
        ASSERT_NE(in, nullptr) << err.data();
        pcap_pkthdr* header = nullptr;
        const u_char* data = nullptr;
        while (pcap_next_ex(in, &header, &data) == 1) {
            std::vector<u_char> frame(data, data + header->caplen);
            if (parts[i].workstation != 0) {
                rename_host(frame.data(), header->caplen, parts[i].workstation);
            }
            pcap_pkthdr moved = *header;
            moved.ts.tv_sec += static_cast<time_t>(i) * kHourS;
            pcap_dump(reinterpret_cast<u_char*>(dumper), &moved, frame.data());
        }
        pcap_close(in);
    }
    pcap_dump_close(dumper);
    pcap_close(dead);
}

class IncidentTest : public ::testing::Test {
protected:
    void SetUp() override {
        const char* prefix = getenv("EXFILTAP_BEHAVIOUR_PREFIX");  // NOLINT: no threads
        ASSERT_NE(prefix, nullptr) << "EXFILTAP_BEHAVIOUR_PREFIX not set (meson test sets it)";
        prefix_ = prefix;
        dir_ = ::testing::TempDir() + "/incident_test_" + std::to_string(getpid());
        std::filesystem::create_directories(dir_);
        config_ = dir_ + "/exfiltap.yaml";
        std::ofstream(config_) << kConfig;
    }

    void TearDown() override { std::filesystem::remove_all(dir_); }

    RunOutput run_story(const std::vector<Part>& parts, const std::string& name) {
        const std::string pcap = dir_ + "/" + name + ".pcap";
        join_captures(prefix_, parts, pcap);
        return run_checked(pcap, config_);
    }

    std::string prefix_;
    std::string dir_;
    std::string config_;
};

TEST_F(IncidentTest, WholeStoryMakesOneIncidentWithFindingsInOrder) {
    const RunOutput run =
            run_story({{"external_login", 0}, {"internal_transfer", 0x0a140114},
                              {"archive_out", 0x0a140132}, {"external_upload", 0x0a14010a}},
                    "story");
    ASSERT_FALSE(run.incidents.empty()) << run.out;
    std::set<uint64_t> ids;
    for (const auto& record : run.incidents) {
        ids.insert(record["incident"]["id"].get<uint64_t>());
    }
    EXPECT_THAT(ids, ElementsAre(1U));
    EXPECT_EQ(run.incidents.front()["incident"]["event"], "opened");
    const auto& last = run.incidents.back()["incident"];
    EXPECT_EQ(last["event"], "closed");
    EXPECT_EQ(last["close_reason"], "end of run");
    EXPECT_EQ(last["host"]["ip"], "10.20.3.21");
    EXPECT_EQ(last["host"]["asset"], "dmz");
    EXPECT_EQ(last["stages"],
            nlohmann::json::array({"access", "staging", "packing", "exfiltration"}));
    // Scores only rise, and the whole story scores above the open score.
    uint64_t previous = 0;
    for (const auto& record : run.incidents) {
        EXPECT_GE(record["incident"]["score"].get<uint64_t>(), previous);
        previous = record["incident"]["score"].get<uint64_t>();
    }
    EXPECT_GT(previous, 50U);

    // The findings: every alert of the host, in packet-time order, with the alerts' flow ids.
    std::map<std::string, std::set<uint64_t>> alert_flows;
    size_t host_alerts = 0;
    for (const auto& alert : run.alerts) {
        if (alert["src_ip"] == "10.20.3.21" || alert["dest_ip"] == "10.20.3.21") {
            alert_flows[alert["exfil"]["detector"].get<std::string>()].insert(
                    alert["flow_id"].get<uint64_t>());
            ++host_alerts;
        }
    }
    const auto& findings = last["findings"];
    ASSERT_EQ(findings.size(), host_alerts);
    EXPECT_EQ(last["finding_count"], host_alerts);
    std::vector<std::string> stage_order;
    std::string previous_time;
    for (const auto& f : findings) {
        const std::string detector = f["detector"].get<std::string>();
        EXPECT_TRUE(alert_flows[detector].count(f["flow_id"].get<uint64_t>()) == 1) << f.dump();
        EXPECT_GE(f["timestamp"].get<std::string>(), previous_time);
        previous_time = f["timestamp"].get<std::string>();
        if (stage_order.empty() || stage_order.back() != f["stage"]) {
            stage_order.push_back(f["stage"].get<std::string>());
        }
    }
    EXPECT_THAT(stage_order, ElementsAre("access", "staging", "packing", "exfiltration"));
    EXPECT_EQ(findings.front()["detector"], "external_login");
    EXPECT_EQ(findings.back()["detector"], "external_upload");
    EXPECT_EQ(findings.back()["src_ip"], "10.20.3.21");
}

TEST_F(IncidentTest, InternalWorkAloneMakesNoIncident) {
    const RunOutput run = run_story({{"internal_transfer", 0x0a140114}}, "near");
    size_t host_alerts = 0;
    for (const auto& alert : run.alerts) {
        host_alerts += alert["src_ip"] == "10.20.3.21" ? 1 : 0;
    }
    EXPECT_GE(host_alerts, 1U) << run.out;  // the write alone is still an alert
    EXPECT_THAT(run.incidents, IsEmpty());
}

}  // namespace
}  // namespace exfiltap::testing
