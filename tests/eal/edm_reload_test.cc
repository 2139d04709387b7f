// Reload of the exact data match index during an offline replay (DESIGN.md "Reload", issue
// #9): EDM rides on the content database, so a reload swaps the index like the patterns. A
// flow direction opened before the reload finishes on the old index and loses no record; one
// opened after it uses the new database; no packet is lost while the swap happens; the old
// database is let go once its last stream has closed.
//
// The table and captures come from `exfiltap-gen --scenario edm --rows 1000` (meson builds
// them and passes their prefix in EXFILTAP_EDM_SMALL_PREFIX); the index is built here from
// the CSV with a fixed key.
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <gtest/gtest.h>

#include "dataplane/content_reload.h"
#include "dataplane/eal_setup.h"
#include "dataplane/offline.h"
#include "dataplane/pcap_io.h"
#include "detectors/content_scanner.h"
#include "detectors/edm_index.h"

namespace exfiltap::dataplane {
namespace {

using detectors::ContentClass;
using detectors::EdmColumnType;
using detectors::EdmIndex;
using detectors::PatternDatabase;

constexpr detectors::SipKey kKey{0x0706050403020100ULL, 0x0f0e0d0c0b0a0908ULL};
constexpr uint64_t kTableRows = 1000;
constexpr uint32_t kCsv50Records = 50;
constexpr uint64_t kCsv50Packets = 13;
constexpr uint32_t kAllColumns = 0x1f;  // the five columns of the customers table
// Packets 1-3 are the handshake, 4-6 the request in full-size segments: once 5 are through,
// the client's stream is open with two thirds of the rows scanned.
constexpr uint64_t kMidRequest = 5;
// Packet 1 is the SYN: no payload yet, so no stream is open.
constexpr uint64_t kBeforeFlow = 1;

std::string edm_prefix() {
    const char* env = getenv("EXFILTAP_EDM_SMALL_PREFIX");
    return env != nullptr ? std::string(env) : std::string();
}

// One CSV line split into fields: a field in double quotes may hold commas, "" is a quote.
std::vector<std::string> split_csv(std::string_view line) {
    std::vector<std::string> fields(1);
    bool quoted = false;
    for (size_t i = 0; i < line.size(); ++i) {
        const char c = line[i];
        if (quoted) {
            if (c == '"' && i + 1 < line.size() && line[i + 1] == '"') {
                fields.back() += '"';
                ++i;
            } else if (c == '"') {
                quoted = false;
            } else {
                fields.back() += c;
            }
        } else if (c == '"') {
            quoted = true;
        } else if (c == ',') {
            fields.emplace_back();
        } else {
            fields.back() += c;
        }
    }
    return fields;
}

// The schema the generator writes to edm-small-customers.yaml.
detectors::EdmSchema customers_schema() {
    detectors::EdmSchema schema;
    schema.table = "customers";
    schema.columns = {{"account_number", EdmColumnType::Number}, {"full_name", EdmColumnType::Name},
            {"email", EdmColumnType::Email}, {"street_address", EdmColumnType::Address},
            {"city", EdmColumnType::Text}};
    schema.primary = 0;
    return schema;
}

struct ReplayResult {
    uint64_t edm_findings = 0;
    uint64_t edm_findings_after_reload = 0;
    uint32_t last_records = 0;  // distinct_count of the last EDM finding
    uint16_t last_rule = 0;
    uint32_t last_columns = 0;
    uint64_t generation = 0;
    std::vector<uint64_t> adopted;  // per worker, at the end
    std::vector<unsigned> live_per_worker;
    size_t live_after = 0;
    uint64_t packets_read = 0;
    uint64_t packets_written = 0;
    uint64_t packets_dropped = 0;
    uint64_t rx_packets = 0;
    uint64_t tx_packets = 0;
    uint64_t worker_drops = 0;  // exception and policy drops of every worker
    uint64_t events_dropped = 0;
    uint64_t findings_lost = 0;
    uint64_t edm_state_exhausted = 0;
    bool output_same_as_input = false;
};

// Whether two captures hold the same frames with the same times, in the same order.
bool same_packets(const std::string& a, const std::string& b) {
    auto ra = PcapReader::open(a);
    auto rb = PcapReader::open(b);
    if (!ra.ok() || !rb.ok()) {
        return false;
    }
    CapturedPacket pa;
    CapturedPacket pb;
    while (true) {
        const bool more_a = ra->next(pa);
        const bool more_b = rb->next(pb);
        if (more_a != more_b) {
            return false;
        }
        if (!more_a) {
            return ra->error().empty() && rb->error().empty();
        }
        if (pa.time_ns != pb.time_ns || pa.caplen != pb.caplen || pa.wire_len != pb.wire_len
                || !std::equal(pa.data, pa.data + pa.caplen, pb.data)) {
            return false;
        }
    }
}

class EdmReloadTest : public ::testing::Test {
protected:
    void SetUp() override {
        prefix_ = edm_prefix();
        if (prefix_.empty()) {
            GTEST_SKIP() << "EXFILTAP_EDM_SMALL_PREFIX not set: run through meson test "
                            "(it generates the edm-small captures)";
        }
        dir_ = ::testing::TempDir() + "edm_reload_test_" + std::to_string(getpid());
        std::filesystem::create_directories(dir_);
        index_ = build_index(prefix_ + "-customers.csv", dir_ + "/customers.edm");
        ASSERT_NE(index_, nullptr);
        ASSERT_EQ(index_->rows(), kTableRows);
    }

    void TearDown() override {
        if (!dir_.empty()) {
            std::filesystem::remove_all(dir_);
        }
    }

    // Indexes every row of the CSV under kKey, writes the index to `out` and loads it back.
    static std::shared_ptr<const EdmIndex> build_index(
            const std::string& csv, const std::string& out) {
        std::ifstream in(csv);
        std::string line;
        if (!std::getline(in, line)) {
            ADD_FAILURE() << csv << ": no header";
            return nullptr;
        }
        const detectors::EdmSchema schema = customers_schema();
        const std::vector<std::string> header = split_csv(line);
        EXPECT_EQ(header.size(), schema.columns.size()) << line;
        for (size_t i = 0; i < header.size() && i < schema.columns.size(); ++i) {
            EXPECT_EQ(header[i], schema.columns[i].name);
        }
        detectors::EdmIndexBuilder builder(schema, kKey, false);
        uint64_t rows = 0;
        while (std::getline(in, line)) {
            if (!line.empty() && line.back() == '\r') {
                line.pop_back();
            }
            if (line.empty()) {
                continue;
            }
            const std::vector<std::string> fields = split_csv(line);
            if (fields.size() != schema.columns.size()) {
                ADD_FAILURE() << csv << ": row " << rows + 1 << " has " << fields.size()
                              << " fields";
                return nullptr;
            }
            const std::vector<std::string_view> values(fields.begin(), fields.end());
            auto added = builder.add_row(values);
            if (!added.ok()) {
                ADD_FAILURE() << added.error();
                return nullptr;
            }
            EXPECT_TRUE(*added) << "row " << rows + 1 << " skipped: " << line;
            ++rows;
        }
        EXPECT_EQ(rows, kTableRows);
        if (const auto st = builder.write(out); !st.ok()) {
            ADD_FAILURE() << st.error();
            return nullptr;
        }
        auto loaded = EdmIndex::load(out, kKey);
        if (!loaded.ok()) {
            ADD_FAILURE() << loaded.error();
            return nullptr;
        }
        return *loaded;
    }

    // The built-in patterns, plus the customers table when `edm`.
    std::shared_ptr<const PatternDatabase> database(bool edm) const {
        detectors::ContentConfig config;
        if (edm) {
            detectors::EdmTableRules table;
            table.index = index_;
            table.path = dir_ + "/customers.edm";
            config.edm_tables.push_back(table);
        }
        auto db = PatternDatabase::compile(config);
        EXPECT_TRUE(db.ok()) << (db.ok() ? "" : db.error());
        return db.ok() ? *db : nullptr;
    }

    std::string capture(const std::string& name) const { return prefix_ + "-" + name + ".pcap"; }

    // Replays `pcap` on two workers starting with `first`; once `reload_at` packets have been
    // read AND processed, `second` is published, and reading waits until every worker has
    // adopted it. What the workers transmit is written to a file and compared with the input.
    ReplayResult replay_with_reload(const std::string& pcap,
            std::shared_ptr<const PatternDatabase> first,
            std::shared_ptr<const PatternDatabase> second, uint64_t reload_at) const {
        constexpr unsigned kWorkers = 2;
        NetworkSet internal;
        internal.add(4, {10, 0, 0, 0}, 8);
        ContentReloader reloader(first);
        OfflineOptions options;
        options.input = pcap;
        options.output = dir_ + "/out.pcap";
        options.workers = kWorkers;
        options.worker.internal = &internal;
        options.worker.patterns = first;
        options.worker.flows.capacity = 1024;
        options.worker.flows.timeout_ns = {
                60000000000ULL, 30000000000ULL, 60000000000ULL, 60000000000ULL, 30000000000ULL};
        options.worker.payload_slots = 64;
        options.worker.edm_state_slots = 8;
        std::vector<hs_scratch*> scratches;
        for (unsigned i = 0; i < kWorkers; ++i) {
            scratches.push_back(*first->alloc_scratch());
        }
        options.scratches = scratches;
        ReplayResult out;
        bool published = false;
        options.on_event = [&](const WorkerEvent& event) {
            // The flow direction's own stream (origin 0); the request body is matched again as
            // an EDM-only object, whose findings the alert side folds into the same records.
            if (event.type != WorkerEvent::Type::Finding || event.finding.cls != ContentClass::Edm
                    || event.finding.origin != 0) {
                return;
            }
            ++out.edm_findings;
            out.edm_findings_after_reload += published ? 1 : 0;
            out.last_records = event.finding.distinct_count;
            out.last_rule = event.finding.rule;
            out.last_columns = event.finding.columns;
        };
        options.on_tick = [&](const OfflineProgress& progress,
                                  const std::vector<Worker*>& workers) {
            reloader.poll(workers);
            if (!published) {
                if (progress.packets_read < reload_at || progress.packets_done < reload_at) {
                    return reload_at;
                }
                EXPECT_TRUE(reloader.publish(second, workers).ok());
                published = true;
            }
            return reloader.pending() ? reload_at : UINT64_MAX;
        };
        std::vector<std::unique_ptr<Worker>> workers;
        const auto result = run_offline(options, workers);
        EXPECT_TRUE(result.ok()) << (result.ok() ? "" : result.error());
        if (result.ok()) {
            out.packets_read = result->packets_read;
            out.packets_written = result->packets_written;
            out.packets_dropped = result->packets_dropped;
        }
        std::vector<Worker*> list;
        for (auto& w : workers) {
            list.push_back(w.get());
            const WorkerCounters& c = w->counters();
            out.rx_packets += c.rx_packets.get();
            out.tx_packets += c.tx_packets.get();
            for (const Counter& d : c.dropped) {
                out.worker_drops += d.get();
            }
            for (const Counter& d : c.policy_dropped) {
                out.worker_drops += d.get();
            }
            out.events_dropped += c.events_dropped.get();
            out.findings_lost += c.findings_lost.get();
            out.edm_state_exhausted += w->edm_counters().state_exhausted.get();
        }
        reloader.poll(list);
        for (Worker* w : list) {
            out.adopted.push_back(w->adopted_generation());
            out.live_per_worker.push_back(w->live_databases());
            PatternDatabase::free_scratch(w->current_scratch());  // the stopped worker's last
        }
        out.generation = reloader.generation();
        workers.clear();  // releases the workers' last database references
        first.reset();
        second.reset();
        options.worker.patterns.reset();
        reloader.poll({});
        out.live_after = reloader.live_databases();
        out.output_same_as_input = same_packets(pcap, options.output);
        return out;
    }

    std::string prefix_;
    std::string dir_;
    std::shared_ptr<const EdmIndex> index_;
};

TEST_F(EdmReloadTest, FlowOpenedBeforeReloadKeepsItsIndexAndRecords) {
    const ReplayResult r =
            replay_with_reload(capture("csv50"), database(true), database(false), kMidRequest);

    EXPECT_EQ(r.generation, 1U);
    EXPECT_EQ(r.edm_findings, kCsv50Records);    // one finding per record below kEdmReportEach
    EXPECT_GT(r.edm_findings_after_reload, 0U);  // the last segment was matched after the swap
    EXPECT_EQ(r.last_records, kCsv50Records);
    EXPECT_EQ(r.last_rule, 1U);
    EXPECT_EQ(r.last_columns, kAllColumns);
    EXPECT_EQ(r.edm_state_exhausted, 0U);
}

TEST_F(EdmReloadTest, FlowOpenedBeforeReloadToEdmStaysWithoutIt) {
    const ReplayResult r =
            replay_with_reload(capture("csv50"), database(false), database(true), kMidRequest);

    EXPECT_EQ(r.generation, 1U);
    EXPECT_EQ(r.edm_findings, 0U);  // the request's stream opened without the index
}

TEST_F(EdmReloadTest, ReloadMidFlowLosesNoPacket) {
    const ReplayResult r =
            replay_with_reload(capture("csv50"), database(true), database(false), kMidRequest);

    EXPECT_EQ(r.packets_read, kCsv50Packets);
    EXPECT_EQ(r.packets_written, kCsv50Packets);
    EXPECT_EQ(r.packets_dropped, 0U);
    EXPECT_EQ(r.rx_packets, kCsv50Packets);
    EXPECT_EQ(r.tx_packets, kCsv50Packets);
    EXPECT_EQ(r.worker_drops, 0U);
    EXPECT_EQ(r.events_dropped, 0U);
    EXPECT_EQ(r.findings_lost, 0U);
    EXPECT_TRUE(r.output_same_as_input);
}

TEST_F(EdmReloadTest, OldDatabaseIsReleasedAfterDrain) {
    const ReplayResult r =
            replay_with_reload(capture("csv50"), database(true), database(false), kMidRequest);

    ASSERT_EQ(r.adopted.size(), 2U);
    for (size_t i = 0; i < r.adopted.size(); ++i) {
        EXPECT_EQ(r.adopted[i], 1U) << "worker " << i;
        EXPECT_EQ(r.live_per_worker[i], 1U) << "worker " << i;  // the EDM one was let go
    }
    EXPECT_EQ(r.live_after, 1U);
}

TEST_F(EdmReloadTest, FlowOpenedAfterReloadToEdmFindsEveryRecord) {
    const ReplayResult r =
            replay_with_reload(capture("csv50"), database(false), database(true), kBeforeFlow);

    EXPECT_EQ(r.generation, 1U);
    EXPECT_EQ(r.edm_findings, kCsv50Records);
    EXPECT_EQ(r.last_records, kCsv50Records);
    EXPECT_EQ(r.last_rule, 1U);
    EXPECT_EQ(r.last_columns, kAllColumns);
    EXPECT_EQ(r.packets_written, kCsv50Packets);
    EXPECT_EQ(r.packets_dropped, 0U);
}

TEST_F(EdmReloadTest, FlowOpenedAfterReloadWithoutEdmFindsNoRecord) {
    const ReplayResult r =
            replay_with_reload(capture("csv50"), database(true), database(false), kBeforeFlow);

    EXPECT_EQ(r.generation, 1U);
    EXPECT_EQ(r.edm_findings, 0U);
    EXPECT_EQ(r.packets_written, kCsv50Packets);
    EXPECT_EQ(r.packets_dropped, 0U);
}

}  // namespace
}  // namespace exfiltap::dataplane

int main(int argc, char** argv) {
    ::testing::InitGoogleTest(&argc, argv);
    exfiltap::dataplane::EalOptions eal;
    eal.workers = 2;
    eal.memory_mb = 512;
    eal.file_prefix = "exfiltap_edm_reload_test_" + std::to_string(getpid());
    if (const auto st = exfiltap::dataplane::init_eal(eal); !st) {
        fprintf(stderr, "%s\n", st.error().c_str());
        return 1;
    }
    exfiltap::detectors::StreamPool::install_hyperscan_allocator();
    const int rc = RUN_ALL_TESTS();
    exfiltap::dataplane::cleanup_eal();
    return rc;
}
