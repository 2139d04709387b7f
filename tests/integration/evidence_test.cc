// Evidence files from an offline run (--evidence): the pcapng file holds exactly the
// packets of the asked flows, with their original times and lengths, and tshark reads it.
#include <stdio.h>
#include <sys/wait.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include <gtest/gtest.h>

#include "tests/integration/harness.h"

namespace exfiltap::testing {
namespace {

std::string demo_pcap() {
    const char* pcap = getenv("EXFILTAP_DEMO_PCAP");
    return pcap != nullptr ? pcap : "";
}

/// An IPv4 TCP/UDP endpoint pair as text, either direction the same.
using FlowTuple = std::tuple<std::string, int, std::string, int>;

FlowTuple canonical(const std::string& a, int ap, const std::string& b, int bp) {
    return std::make_pair(a, ap) < std::make_pair(b, bp) ? FlowTuple{a, ap, b, bp}
                                                         : FlowTuple{b, bp, a, ap};
}

/// The tuple of an untagged Ethernet IPv4 TCP or UDP frame; false for anything else.
bool tuple_of(const std::string& frame, FlowTuple& out) {
    const auto* p = reinterpret_cast<const uint8_t*>(frame.data());
    if (frame.size() < 14 + 20 + 4 || p[12] != 0x08 || p[13] != 0x00) {
        return false;
    }
    const uint8_t* ip = p + 14;
    const size_t ihl = (ip[0] & 0x0f) * 4U;
    if ((ip[9] != 6 && ip[9] != 17) || frame.size() < 14 + ihl + 4) {
        return false;
    }
    char src[16];
    char dst[16];
    snprintf(src, sizeof(src), "%u.%u.%u.%u", ip[12], ip[13], ip[14], ip[15]);
    snprintf(dst, sizeof(dst), "%u.%u.%u.%u", ip[16], ip[17], ip[18], ip[19]);
    const uint8_t* l4 = ip + ihl;
    out = canonical(src, (l4[0] << 8) | l4[1], dst, (l4[2] << 8) | l4[3]);
    return true;
}

struct EvidencePacketRead {
    uint64_t time_ns = 0;
    uint32_t caplen = 0;
    uint32_t len = 0;
};

uint32_t u32_at(const std::string& bytes, size_t at) {
    uint32_t v = 0;
    std::memcpy(&v, bytes.data() + at, sizeof(v));
    return v;
}

/// The enhanced packet blocks of a pcapng file (little-endian, as exfiltap writes it).
std::vector<EvidencePacketRead> read_pcapng(const std::string& path, std::string& comment) {
    std::ifstream in(path, std::ios::binary);
    const std::string bytes{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
    std::vector<EvidencePacketRead> packets;
    size_t at = 0;
    while (at + 12 <= bytes.size()) {
        const uint32_t type = u32_at(bytes, at);
        const uint32_t length = u32_at(bytes, at + 4);
        if (length < 12 || at + length > bytes.size()) {
            ADD_FAILURE() << "bad block length " << length << " at " << at;
            break;
        }
        if (type == 0x0A0D0D0A && bytes.size() > at + 28) {
            const uint32_t option_len = u32_at(bytes, at + 24) >> 16;
            comment = bytes.substr(at + 28, option_len);
        } else if (type == 6) {
            EvidencePacketRead p;
            p.time_ns = (uint64_t{u32_at(bytes, at + 12)} << 32) | u32_at(bytes, at + 16);
            p.caplen = u32_at(bytes, at + 20);
            p.len = u32_at(bytes, at + 24);
            packets.push_back(p);
        }
        at += length;
    }
    return packets;
}

int tshark_count(const std::string& path) {
    const std::string command = "tshark -r '" + path + "' 2>/dev/null | wc -l";
    FILE* pipe = popen(command.c_str(), "r");
    if (pipe == nullptr) {
        return -1;
    }
    int count = -1;
    if (fscanf(pipe, "%d", &count) != 1) {
        count = -1;
    }
    const int status = pclose(pipe);
    return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? count : -1;
}

TEST(EvidenceOfflineTest, FileHoldsExactlyThePacketsOfTheAskedFlows) {
    const std::string pcap = demo_pcap();
    ASSERT_FALSE(pcap.empty()) << "EXFILTAP_DEMO_PCAP not set";
    const RunOutput first = run_exfiltap(pcap);
    ASSERT_EQ(first.exit_code, 0) << first.out;
    ASSERT_GE(first.alerts.size(), 2U);

    // Two flows that alerted: their ids and endpoints.
    std::set<uint64_t> ids;
    std::set<FlowTuple> tuples;
    for (const auto& alert : first.alerts) {
        if (ids.size() == 2 || ids.count(alert["flow_id"].get<uint64_t>()) > 0) {
            continue;
        }
        ids.insert(alert["flow_id"].get<uint64_t>());
        tuples.insert(canonical(
                alert["src_ip"], alert["src_port"], alert["dest_ip"], alert["dest_port"]));
    }
    ASSERT_EQ(tuples.size(), 2U);
    std::string id_arg;
    for (const uint64_t id : ids) {
        id_arg += (id_arg.empty() ? "" : ",") + std::to_string(id);
    }

    const RunOutput second = run_exfiltap(pcap, {"--evidence", id_arg});
    ASSERT_EQ(second.exit_code, 0) << second.out;
    const std::string dir = second.dir + "/state/evidence";
    std::vector<std::string> files;
    for (const auto& item : std::filesystem::directory_iterator(dir)) {
        files.push_back(item.path().string());
    }
    ASSERT_EQ(files.size(), 1U);
    EXPECT_EQ(std::filesystem::status(files[0]).permissions() & std::filesystem::perms::all,
            std::filesystem::perms::owner_read | std::filesystem::perms::owner_write
                    | std::filesystem::perms::group_read);

    // What the capture holds for those flows.
    std::ifstream raw(pcap, std::ios::binary);
    uint32_t magic = 0;
    raw.read(reinterpret_cast<char*>(&magic), sizeof(magic));
    const uint64_t frac_ns = magic == 0xa1b23c4d ? 1 : 1000;
    uint64_t expected_packets = 0;
    uint64_t expected_bytes = 0;
    uint64_t first_ns = UINT64_MAX;
    uint64_t last_ns = 0;
    for (const PcapRecord& record : read_pcap(pcap)) {
        FlowTuple tuple;
        if (!tuple_of(record.data, tuple) || tuples.count(tuple) == 0) {
            continue;
        }
        const uint64_t ns = record.sec * 1000000000ULL + record.frac * frac_ns;
        expected_packets += 1;
        expected_bytes += record.len;
        first_ns = std::min(first_ns, ns);
        last_ns = std::max(last_ns, ns);
    }
    ASSERT_GT(expected_packets, 0U);

    std::string comment;
    const std::vector<EvidencePacketRead> packets = read_pcapng(files[0], comment);
    ASSERT_EQ(packets.size(), expected_packets);
    uint64_t bytes = 0;
    for (const auto& p : packets) {
        bytes += p.len;
        EXPECT_EQ(p.caplen, p.len);  // demo frames are below the default snap length
    }
    EXPECT_EQ(bytes, expected_bytes);
    EXPECT_EQ(packets.front().time_ns, first_ns);
    EXPECT_EQ(packets.back().time_ns, last_ns);
    EXPECT_EQ(comment, "exfiltap evidence for offline; flows " + id_arg);

    const int counted = tshark_count(files[0]);
    if (counted < 0 && system("command -v tshark >/dev/null") != 0) {
        GTEST_SKIP() << "tshark is not installed (scripts/setup.sh installs it)";
    }
    EXPECT_EQ(counted, static_cast<int>(expected_packets));
}

TEST(EvidenceOfflineTest, RefusesFlowIdsThatAreNotNumbers) {
    const std::string pcap = demo_pcap();
    ASSERT_FALSE(pcap.empty()) << "EXFILTAP_DEMO_PCAP not set";
    const RunOutput run = run_exfiltap(pcap, {"--evidence", "12,abc"});
    EXPECT_EQ(run.exit_code, 2);
    EXPECT_NE(run.out.find("--evidence takes flow ids"), std::string::npos) << run.out;
}

}  // namespace
}  // namespace exfiltap::testing
