#include "control/metrics.h"

#include <pthread.h>
#include <sched.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <prometheus/metric_family.h>

#include "tests/http_get.h"

#include <yaml-cpp/yaml.h>

namespace exfiltap::control {
namespace {

using testing::http_get;

/// The plainest launcher: a std::thread, joined once the job has built the exposer.
Status run_in_std_thread(std::function<void()> job) {
    std::thread(std::move(job)).join();
    return Ok{};
}

MetricsConfig loopback_any_port() {
    MetricsConfig config;
    config.listen = "127.0.0.1:0";
    return config;
}

std::unique_ptr<MetricsExporter> start_ok(MetricsProvider provider) {
    auto exporter =
            MetricsExporter::start(loopback_any_port(), std::move(provider), run_in_std_thread);
    EXPECT_TRUE(exporter.ok()) << exporter.error();
    return exporter.ok() ? std::move(exporter.value()) : nullptr;
}

std::string scrape(const MetricsExporter& exporter) {
    auto response = http_get("127.0.0.1", exporter.port(), "/metrics");
    EXPECT_TRUE(response.ok()) << response.error();
    if (!response.ok()) {
        return {};
    }
    EXPECT_EQ(response->status, 200) << response->headers;
    return response->body;
}

std::vector<std::string> lines_of(const std::string& text) {
    std::vector<std::string> lines;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);) {
        lines.push_back(line);
    }
    return lines;
}

bool has_line(const std::string& text, const std::string& line) {
    const auto lines = lines_of(text);
    return std::find(lines.begin(), lines.end(), line) != lines.end();
}

MetricsSnapshot full_snapshot() {
    MetricsSnapshot s;
    s.traffic = {{"0", "rx", 1000, 64000}, {"0", "tx", 990, 63000}};
    s.dropped = {{"blocked", 7}, {"overlap", 2}};
    s.would_drop = {{"policy", 3}};
    s.port_errors = {{"0", 5, 1}};
    s.malformed = {{"truncated_ipv4", 4}};
    s.workers = {{"0", 12, 340, 2, 123456, 0.25}, {"1", 8, 300, 0, 99999, 0.5}};
    s.evictions = {{"0", "idle", 300}, {"0", "table_full", 6}};
    s.detections = {{"content", "iban", "low", 9, 3}};
    s.blocklist = {{"exact", 11, 21}, {"prefix", 2, 0}};
    s.commands = {{"block", "ok", 4}, {"block", "nok", 1}};
    s.output_drops = {{"syslog", 17}};
    s.reloads = {{"applied", 6}, {"refused", 2}};
    s.app_flows = {{"http", 40}, {"dns", 12}};
    s.app_exhausted = {{"parser_slots", 2}, {"body_decoders", 0}};
    s.behaviour_tables = {{"hosts", 30, 1}, {"domains", 8, 0}};
    s.edm_work = {{"words", 9000}, {"records", 50}};
    s.edm_exhausted = {{"state_slots", 3}, {"hit_list", 0}};
    s.edm_rows = {{"customers", 1000000}};
    s.version = "0.1.0";
    return s;
}

// Config

struct ParsedMetrics {
    MetricsConfig config;
    std::string problems;
};

ParsedMetrics parse_section(const std::string& yaml) {
    const YAML::Node root = YAML::Load(yaml);
    config_reader::Problems problems("test.yaml", true);
    config_reader::Entry section{"metrics", root["metrics"], {"metrics", 0}, 0};
    ParsedMetrics parsed;
    apply_metrics(problems, section, parsed.config);
    parsed.problems = problems.joined();
    return parsed;
}

TEST(MetricsConfigTest, DefaultListensOnLoopbackOnly) {
    const MetricsConfig config;
    EXPECT_TRUE(config.enabled);
    EXPECT_EQ(config.listen, "127.0.0.1:9477");
}

TEST(MetricsConfigTest, ReadsListenAndEnabled) {
    const auto parsed = parse_section("metrics:\n  listen: \"10.0.0.5:9100\"\n  enabled: no\n");
    EXPECT_EQ(parsed.problems, "");
    EXPECT_EQ(parsed.config.listen, "10.0.0.5:9100");
    EXPECT_FALSE(parsed.config.enabled);
}

TEST(MetricsConfigTest, EmptySectionKeepsDefaults) {
    const auto parsed = parse_section("metrics:\n");
    EXPECT_EQ(parsed.problems, "");
    EXPECT_EQ(parsed.config.listen, "127.0.0.1:9477");
}

struct RefusedCase {
    const char* yaml;
    const char* problem;  // the whole first problem line, or its start when it ends in "..."
};

class MetricsConfigRefusesTest : public ::testing::TestWithParam<RefusedCase> {};

TEST_P(MetricsConfigRefusesTest, NamesFileLineAndKeyAndKeepsTheDefault) {
    const auto parsed = parse_section(GetParam().yaml);
    std::string expected = GetParam().problem;
    const std::string first_line = parsed.problems.substr(0, parsed.problems.find('\n'));
    if (expected.ends_with("...")) {
        expected.resize(expected.size() - 3);
        EXPECT_EQ(first_line.substr(0, expected.size()), expected) << parsed.problems;
    } else {
        EXPECT_EQ(first_line, expected) << parsed.problems;
    }
    EXPECT_EQ(parsed.config.listen, "127.0.0.1:9477");
}

INSTANTIATE_TEST_SUITE_P(BadValues, MetricsConfigRefusesTest,
        ::testing::Values(
                RefusedCase{"metrics:\n  enabled: yes\n  listen: 127.0.0.1\n",
                        "test.yaml:3: metrics.listen: expected HOST:PORT with an IP address, such "
                        "as 127.0.0.1:9477 or [::1]:9477, got '127.0.0.1'"},
                RefusedCase{"metrics:\n  listen: \"[::1]:9100\"\n",
                        "test.yaml:2: metrics.listen: IPv6 listen addresses are not supported..."},
                RefusedCase{"metrics:\n  listen: 127.0.0.1:0\n",
                        "test.yaml:2: metrics.listen: port 0 would let the kernel pick..."},
                RefusedCase{"metrics:\n  listen: [127.0.0.1, 9477]\n",
                        "test.yaml:2: metrics.listen: expected a string, got a list"},
                RefusedCase{"metrics:\n  port: 9477\n",
                        "test.yaml:2: metrics.port: unknown key, expected one of enabled, listen"},
                RefusedCase{"metrics:\n  enabled: maybe\n",
                        "test.yaml:2: metrics.enabled: expected true or false, got 'maybe'"}));

TEST(MetricsListenTest, ParsesIpv4AndBracketedIpv6) {
    const auto v4 = parse_listen("10.1.2.3:9477");
    ASSERT_TRUE(v4.ok()) << v4.error();
    EXPECT_EQ(v4->host, "10.1.2.3");
    EXPECT_EQ(v4->port, 9477);
    EXPECT_FALSE(v4->ipv6);
    const auto v6 = parse_listen("[::1]:65535");
    ASSERT_TRUE(v6.ok()) << v6.error();
    EXPECT_EQ(v6->host, "::1");
    EXPECT_EQ(v6->port, 65535);
    EXPECT_TRUE(v6->ipv6);
}

TEST(MetricsListenTest, RefusesWhatIsNotHostPort) {
    for (const char* bad : {"", "9477", ":9477", "localhost:9477", "127.0.0.1:", "127.0.0.1:65536",
                 "127.0.0.1:-1", "127.0.0.1:94a7", "::1:9477", "[::1]", "[127.0.0.1]:9477",
                 "127.0.0.1:9477s", "256.0.0.1:80", "127.0.0.1:0000009477"}) {
        EXPECT_FALSE(parse_listen(bad).ok()) << bad;
    }
}

// Families

TEST(MetricsFamiliesTest, EveryDeclaredFamilyIsPresentWithItsType) {
    const auto families = to_families(MetricsSnapshot{});
    ASSERT_EQ(families.size(), kMetricSpecs.size());
    for (size_t i = 0; i < families.size(); ++i) {
        EXPECT_EQ(families[i].name, kMetricSpecs[i].name);
        EXPECT_FALSE(families[i].help.empty());
        const bool counter = families[i].type == prometheus::MetricType::Counter;
        EXPECT_EQ(counter, kMetricSpecs[i].type == MetricType::Counter) << families[i].name;
    }
}

TEST(MetricsFamiliesTest, NamesFollowTheConventions) {
    std::set<std::string_view> seen;
    for (const MetricSpec& spec : kMetricSpecs) {
        EXPECT_TRUE(seen.insert(spec.name).second) << "declared twice: " << spec.name;
        EXPECT_EQ(spec.name.rfind("exfiltap_", 0), 0U) << spec.name;
        const bool ends_total = spec.name.ends_with("_total");
        EXPECT_EQ(ends_total, spec.type == MetricType::Counter) << spec.name;
    }
    EXPECT_EQ(kMetricNames.size(), 30U);
}

// Exporter over HTTP

TEST(MetricsExporterTest, ServesExactSamplesAndTypes) {
    auto exporter = start_ok([](MetricsSnapshot& s) { s = full_snapshot(); });
    ASSERT_NE(exporter, nullptr);
    ASSERT_NE(exporter->port(), 0);
    const std::string body = scrape(*exporter);
    for (const char* line : {
                 "# HELP exfiltap_packets_total Packets received (rx) or sent (tx) per port.",
                 "# TYPE exfiltap_packets_total counter",
                 R"(exfiltap_packets_total{port="0",direction="rx"} 1000)",
                 R"(exfiltap_packets_total{port="0",direction="tx"} 990)",
                 R"(exfiltap_bytes_total{port="0",direction="rx"} 64000)",
                 R"(exfiltap_dropped_packets_total{reason="blocked"} 7)",
                 R"(exfiltap_dropped_packets_total{reason="overlap"} 2)",
                 R"(exfiltap_would_drop_packets_total{reason="policy"} 3)",
                 R"(exfiltap_port_missed_packets_total{port="0"} 5)",
                 R"(exfiltap_port_nombuf_total{port="0"} 1)",
                 R"(exfiltap_malformed_packets_total{reason="truncated_ipv4"} 4)",
                 "# TYPE exfiltap_flows_active gauge",
                 R"(exfiltap_flows_active{worker="0"} 12)",
                 R"(exfiltap_flows_created_total{worker="1"} 300)",
                 R"(exfiltap_flows_evicted_total{worker="0",reason="table_full"} 6)",
                 R"(exfiltap_stream_gaps_total{worker="0"} 2)",
                 R"(exfiltap_scanned_bytes_total{worker="0"} 123456)",
                 R"(exfiltap_findings_total{detector="content",class="iban",severity="low"} 9)",
                 R"(exfiltap_alerts_total{detector="content",class="iban",severity="low"} 3)",
                 "# TYPE exfiltap_blocklist_entries gauge",
                 R"(exfiltap_blocklist_entries{kind="exact"} 11)",
                 R"(exfiltap_blocklist_hits_total{kind="exact"} 21)",
                 R"(exfiltap_control_commands_total{command="block",result="nok"} 1)",
                 R"(exfiltap_config_reloads_total{result="applied"} 6)",
                 R"(exfiltap_config_reloads_total{result="refused"} 2)",
                 "# TYPE exfiltap_worker_busy_ratio gauge",
                 R"(exfiltap_worker_busy_ratio{worker="0"} 0.25)",
                 R"(exfiltap_worker_busy_ratio{worker="1"} 0.5)",
                 R"(exfiltap_output_dropped_records_total{output="syslog"} 17)",
                 R"(exfiltap_app_flows_total{proto="http"} 40)",
                 R"(exfiltap_app_exhausted_total{resource="parser_slots"} 2)",
                 "# TYPE exfiltap_behaviour_table_entries gauge",
                 R"(exfiltap_behaviour_table_entries{table="hosts"} 30)",
                 R"(exfiltap_behaviour_table_evictions_total{table="hosts"} 1)",
                 R"(exfiltap_edm_work_total{stage="records"} 50)",
                 R"(exfiltap_edm_exhausted_total{resource="state_slots"} 3)",
                 "# TYPE exfiltap_edm_index_rows gauge",
                 R"(exfiltap_edm_index_rows{table="customers"} 1000000)",
                 "# TYPE exfiltap_build_info gauge",
                 R"(exfiltap_build_info{version="0.1.0"} 1)",
         }) {
        EXPECT_TRUE(has_line(body, line)) << "missing: " << line << "\nin:\n" << body;
    }
    // The Exposer adds its own exposer_* families; ours are the declared ones, each once.
    size_t types = 0;
    for (const auto& line : lines_of(body)) {
        types += line.rfind("# TYPE exfiltap_", 0) == 0 ? 1 : 0;
    }
    EXPECT_EQ(types, kMetricSpecs.size());
}

TEST(MetricsExporterTest, EscapesLabelValues) {
    auto exporter = start_ok([](MetricsSnapshot& s) {
        s.commands = {{"we\"ird\\cmd\nx", "nok", 1}};
        s.version = "1.0 \"rc\"";
    });
    ASSERT_NE(exporter, nullptr);
    const std::string body = scrape(*exporter);
    EXPECT_TRUE(has_line(body,
            "exfiltap_control_commands_total{command=\"we\\\"ird\\\\cmd\\nx\",result=\"nok\"} 1"))
            << body;
    EXPECT_TRUE(has_line(body, "exfiltap_build_info{version=\"1.0 \\\"rc\\\"\"} 1")) << body;
}

TEST(MetricsExporterTest, SecondScrapeSeesGrownValues) {
    std::atomic<uint64_t> packets{100};
    auto exporter = start_ok([&](MetricsSnapshot& s) {
        s.traffic = {{"1", "rx", packets.load(), packets.load() * 60}};
    });
    ASSERT_NE(exporter, nullptr);
    EXPECT_TRUE(
            has_line(scrape(*exporter), "exfiltap_packets_total{port=\"1\",direction=\"rx\"} 100"));
    packets = 9'007'199'254'740'992ULL;  // 2^53: the largest count a double holds exactly
    const std::string second = scrape(*exporter);
    EXPECT_TRUE(has_line(
            second, "exfiltap_packets_total{port=\"1\",direction=\"rx\"} 9007199254740992"))
            << second;
}

TEST(MetricsExporterTest, ThrowingProviderAnswersWithNoSeriesAndKeepsServing) {
    std::atomic<int> calls{0};
    auto exporter = start_ok([&](MetricsSnapshot& s) {
        if (calls.fetch_add(1) == 0) {
            s.version = "half";
            throw std::runtime_error("counters not ready");
        }
        s.version = "0.1.0";
    });
    ASSERT_NE(exporter, nullptr);
    EXPECT_EQ(scrape(*exporter).find("exfiltap_"), std::string::npos);
    EXPECT_TRUE(has_line(scrape(*exporter), "exfiltap_build_info{version=\"0.1.0\"} 1"));
}

TEST(MetricsExporterTest, RefusesIpv6ByName) {
    MetricsConfig config;
    config.listen = "[::1]:0";
    const auto exporter = MetricsExporter::start(
            config, [](MetricsSnapshot&) {}, run_in_std_thread);
    ASSERT_FALSE(exporter.ok());
    EXPECT_EQ(exporter.error(),
            "metrics.listen: IPv6 listen addresses are not supported (the HTTP server library "
            "is built without IPv6); use an IPv4 address such as 127.0.0.1:9477");
}

TEST(MetricsExporterTest, BadListenAddressIsAnErrorNotAnException) {
    MetricsConfig config;
    config.listen = "localhost:9477";
    bool ran = false;
    const auto exporter = MetricsExporter::start(
            config, [](MetricsSnapshot&) {},
            [&](const std::function<void()>& job) {
                ran = true;
                job();
                return Status(Ok{});
            });
    ASSERT_FALSE(exporter.ok());
    EXPECT_EQ(exporter.error(),
            "metrics.listen: expected HOST:PORT with an IP address, such as 127.0.0.1:9477 or "
            "[::1]:9477, got 'localhost:9477'");
    EXPECT_FALSE(ran);
}

TEST(MetricsExporterTest, PortInUseIsAnErrorNamingTheAddress) {
    auto first = start_ok([](MetricsSnapshot&) {});
    ASSERT_NE(first, nullptr);
    MetricsConfig config;
    config.listen = "127.0.0.1:" + std::to_string(first->port());
    const auto second = MetricsExporter::start(
            config, [](MetricsSnapshot&) {}, run_in_std_thread);
    ASSERT_FALSE(second.ok());
    EXPECT_EQ(second.error().rfind("metrics: cannot listen on " + config.listen + ": ", 0), 0U)
            << second.error();
}

TEST(MetricsExporterTest, LauncherFailureIsAnError) {
    const auto exporter = MetricsExporter::start(
            loopback_any_port(), [](MetricsSnapshot&) {},
            [](const std::function<void()>&) { return Status(make_error("no ctrl thread")); });
    ASSERT_FALSE(exporter.ok());
    EXPECT_EQ(exporter.error(), "metrics: cannot start the exporter thread: no ctrl thread");
}

TEST(MetricsExporterTest, LauncherDroppingTheJobIsAnErrorNotAHang) {
    const auto exporter = MetricsExporter::start(
            loopback_any_port(), [](MetricsSnapshot&) {},
            [](const std::function<void()>&) { return Status(Ok{}); });
    ASSERT_FALSE(exporter.ok());
    EXPECT_EQ(exporter.error(), "metrics: the exporter thread ended without starting the exporter");
}

std::set<std::string> thread_ids() {
    std::set<std::string> ids;
    for (const auto& task : std::filesystem::directory_iterator("/proc/self/task")) {
        ids.insert(task.path().filename().string());
    }
    return ids;
}

std::string cpus_allowed(const std::string& tid) {
    std::ifstream status("/proc/self/task/" + tid + "/status");
    for (std::string line; std::getline(status, line);) {
        if (line.rfind("Cpus_allowed_list:", 0) == 0) {
            return line.substr(line.find_first_not_of(" \t", 18));
        }
    }
    return {};
}

/// A launcher whose thread runs on `cpu` only.
Status run_pinned(int cpu, std::function<void()> job) {
    std::thread thread([cpu, job = std::move(job)] {
        cpu_set_t set;
        CPU_ZERO(&set);
        CPU_SET(cpu, &set);
        if (pthread_setaffinity_np(pthread_self(), sizeof(set), &set) == 0) {
            job();
        }
    });
    thread.join();
    return Ok{};
}

TEST(MetricsExporterTest, ServerThreadsInheritTheLaunchedThreadsAffinity) {
    if (sysconf(_SC_NPROCESSORS_ONLN) < 2) {
        GTEST_SKIP() << "needs two CPUs to tell affinities apart";
    }
    const auto before = thread_ids();
    // The launcher pins its thread to the last CPU, as rte_ctrl_thread_create keeps control
    // threads off the worker cores; the test thread itself keeps every CPU.
    const int cpu = static_cast<int>(sysconf(_SC_NPROCESSORS_ONLN)) - 1;
    auto exporter = MetricsExporter::start(
            loopback_any_port(), [](MetricsSnapshot&) {},
            [cpu](std::function<void()> job) { return run_pinned(cpu, std::move(job)); });
    ASSERT_TRUE(exporter.ok()) << exporter.error();
    size_t server_threads = 0;
    for (const auto& tid : thread_ids()) {
        if (before.count(tid) == 0) {
            ++server_threads;
            EXPECT_EQ(cpus_allowed(tid), std::to_string(cpu)) << "thread " << tid;
        }
    }
    EXPECT_GE(server_threads, 2U);  // civetweb's master thread and its workers
}

}  // namespace
}  // namespace exfiltap::control
