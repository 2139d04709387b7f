#include "tests/integration/harness.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <pcap/pcap.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tests/schema_validator.h"

namespace exfiltap::testing {

namespace fs = std::filesystem;

namespace {

std::string make_temp_dir() {
    std::string tmpl = (fs::temp_directory_path() / "exfiltap_it_XXXXXX").string();
    if (mkdtemp(tmpl.data()) == nullptr) {
        return "/tmp";
    }
    return tmpl;
}

std::string quote(const std::string& s) {
    std::string q = "'";
    for (char c : s) {
        if (c == '\'') {
            q += "'\\''";
        } else {
            q += c;
        }
    }
    return q + "'";
}

RunOutput run_command(const std::string& dir, const std::vector<std::string>& args) {
    RunOutput run;
    run.dir = dir;
    std::string cmd = quote(EXFILTAP_BINARY);
    for (const std::string& a : args) {
        cmd += " " + quote(a);
    }
    cmd += " 2>&1";
    FILE* pipe = popen(cmd.c_str(), "r");
    if (pipe == nullptr) {
        return run;
    }
    std::array<char, 4096> buf{};
    size_t n = 0;
    while ((n = fread(buf.data(), 1, buf.size(), pipe)) > 0) {
        run.out.append(buf.data(), n);
    }
    const int status = pclose(pipe);
    run.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    return run;
}

}  // namespace

RunOutput run_exfiltap_raw(const std::vector<std::string>& args) {
    return run_command(make_temp_dir(), args);
}

RunOutput run_exfiltap(const std::string& pcap, const std::vector<std::string>& extra) {
    const std::string dir = make_temp_dir();
    std::vector<std::string> args = {"--pcap", pcap, "--write", dir + "/out.pcap", "--alerts",
            dir + "/alerts.json", "--summary-json", dir + "/summary.json", "--set",
            "state_dir=" + dir + "/state"};
    args.insert(args.end(), extra.begin(), extra.end());
    RunOutput run = run_command(dir, args);
    std::ifstream alerts(dir + "/alerts.json");
    std::string line;
    while (std::getline(alerts, line)) {
        if (!line.empty()) {
            nlohmann::json record = nlohmann::json::parse(line);
            const bool incident = record.value("event_type", "") == "incident";
            (incident ? run.incidents : run.alerts).push_back(std::move(record));
        }
    }
    std::ifstream summary(dir + "/summary.json");
    if (summary) {
        summary >> run.summary;
    }
    return run;
}

bool shared_required() {
    const char* v = getenv("EXFILTAP_REQUIRE_SHARED");
    return v != nullptr && std::string(v) == "1";
}

std::string shared_file(const std::string& relative) {
    const char* env = getenv("EXFILTAP_SHARED_DIR");
    const fs::path base = env != nullptr && *env != '\0'
            ? fs::path(env)
            : fs::path(EXFILTAP_SOURCE_ROOT) / ".." / "shared";
    const fs::path p = base / relative;
    return fs::exists(p) ? p.string() : std::string();
}

std::vector<nlohmann::json> alerts_of(const RunOutput& run, const std::string& cls) {
    std::vector<nlohmann::json> out;
    for (const auto& a : run.alerts) {
        if (a.contains("exfil") && a["exfil"].value("class", "") == cls) {
            out.push_back(a);
        }
    }
    return out;
}

nlohmann::json load_schema(const std::string& name) {
    std::ifstream in(std::string(EXFILTAP_SOURCE_ROOT) + "/schema/" + name);
    return nlohmann::json::parse(in, nullptr, false);
}

RunOutput run_checked(const std::string& pcap, const std::string& config) {
    static const nlohmann::json alert_schema = load_schema("alert.schema.json");
    static const nlohmann::json incident_schema = load_schema("incident.schema.json");
    EXPECT_TRUE(alert_schema.is_object()) << "schema/alert.schema.json missing or not JSON";
    EXPECT_TRUE(incident_schema.is_object()) << "schema/incident.schema.json missing or not JSON";
    RunOutput run = run_exfiltap(pcap, {"--config", config});
    EXPECT_EQ(run.exit_code, 0) << pcap << "\n" << run.out;
    for (size_t i = 0; i < run.alerts.size(); ++i) {
        EXPECT_THAT(validate(alert_schema, run.alerts[i]), ::testing::IsEmpty())
                << pcap << " alert " << i + 1 << ": " << run.alerts[i].dump();
    }
    for (size_t i = 0; i < run.incidents.size(); ++i) {
        EXPECT_THAT(validate(incident_schema, run.incidents[i]), ::testing::IsEmpty())
                << pcap << " incident record " << i + 1 << ": " << run.incidents[i].dump();
    }
    return run;
}

std::string dump_alerts(const RunOutput& run) {
    std::string text;
    for (const auto& a : run.alerts) {
        text += a.dump() + "\n";
    }
    return text.empty() ? "(no alerts)\n" + run.out : text;
}

std::vector<std::string> sample_tails(const std::vector<nlohmann::json>& alerts) {
    std::vector<std::string> tails;
    for (const auto& a : alerts) {
        const std::string s = a["exfil"].value("sample", "");
        tails.push_back(s.size() >= 4 ? s.substr(s.size() - 4) : s);
    }
    return tails;
}

std::vector<PcapRecord> read_pcap(const std::string& path) {
    std::vector<PcapRecord> records;
    std::array<char, PCAP_ERRBUF_SIZE> err{};
    // Read in the file's own precision: ask for micro first, then check the magic.
    std::ifstream raw(path, std::ios::binary);
    std::array<unsigned char, 4> magic{};
    raw.read(reinterpret_cast<char*>(magic.data()), 4);
    const uint32_t m =
            magic[0] | (magic[1] << 8) | (magic[2] << 16) | (static_cast<uint32_t>(magic[3]) << 24);
    const bool nano = m == 0xa1b23c4d || m == 0x4d3cb2a1;
    pcap_t* p = pcap_open_offline_with_tstamp_precision(path.c_str(),
            nano ? PCAP_TSTAMP_PRECISION_NANO : PCAP_TSTAMP_PRECISION_MICRO, err.data());
    if (p == nullptr) {
        return records;
    }
    pcap_pkthdr* h = nullptr;
    const u_char* d = nullptr;
    while (pcap_next_ex(p, &h, &d) == 1) {
        PcapRecord r;
        r.sec = uint64_t{static_cast<uint32_t>(h->ts.tv_sec)};  // unsigned in the file
        r.frac = static_cast<uint64_t>(h->ts.tv_usec);
        r.caplen = h->caplen;
        r.len = h->len;
        r.data.assign(reinterpret_cast<const char*>(d), h->caplen);
        records.push_back(std::move(r));
    }
    pcap_close(p);
    return records;
}

std::string sample_hmac(const std::string& state_dir, const std::string& value) {
    std::ifstream in(state_dir + "/sample_hmac.key", std::ios::binary);
    std::string key((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    std::array<unsigned char, EVP_MAX_MD_SIZE> md{};
    unsigned int md_len = 0;
    HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
            reinterpret_cast<const unsigned char*>(value.data()), value.size(), md.data(), &md_len);
    std::string hex;
    std::array<char, 3> b{};
    for (unsigned i = 0; i < md_len; ++i) {
        snprintf(b.data(), b.size(), "%02x", md[i]);
        hex += b.data();
    }
    return hex;
}

}  // namespace exfiltap::testing
