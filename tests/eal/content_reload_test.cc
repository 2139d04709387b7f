// Reload of the content database during an offline replay (DESIGN.md "Reload"): flows
// opened before the reload finish on the old database and lose no finding; flows opened
// after it use the new one; old scratches and databases are released once unused.
#include "dataplane/content_reload.h"

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <rte_eal.h>

#include "dataplane/eal_setup.h"
#include "dataplane/offline.h"
#include "detectors/content_scanner.h"

namespace exfiltap::dataplane {
namespace {

std::string shared_case(const std::string& name) {
    const char* env = getenv("EXFILTAP_SHARED_DIR");
    const std::filesystem::path base = env != nullptr && *env != '\0'
            ? std::filesystem::path(env)
            : std::filesystem::path(EXFILTAP_SOURCE_ROOT) / ".." / "shared";
    const auto p = base / "cases" / name;
    return std::filesystem::exists(p) ? p.string() : std::string();
}

bool shared_required() {
    const char* v = getenv("EXFILTAP_REQUIRE_SHARED");
    return v != nullptr && std::string(v) == "1";
}

std::shared_ptr<const detectors::PatternDatabase> database(bool cards) {
    detectors::ContentConfig config;
    config.classes[static_cast<size_t>(detectors::ContentClass::PaymentCard)].enabled = cards;
    auto db = detectors::PatternDatabase::compile(config);
    EXPECT_TRUE(db.ok()) << (db.ok() ? "" : db.error());
    return db.ok() ? *db : nullptr;
}

struct ReplayResult {
    uint64_t card_findings = 0;
    uint64_t generation = 0;
    size_t live_after = 0;
};

// Replays `pcap` on two workers; once `reload_at` packets have been read AND processed, a
// database without the card class is published, and reading waits until every worker has
// adopted it.
ReplayResult replay_with_reload(const std::string& pcap, uint64_t reload_at) {
    NetworkSet internal;
    internal.add(4, {10, 0, 0, 0}, 8);
    auto old_db = database(true);
    ContentReloader reloader(old_db);
    OfflineOptions options;
    options.input = pcap;
    options.workers = 2;
    options.worker.internal = &internal;
    options.worker.patterns = old_db;
    options.worker.flows.capacity = 1024;
    options.worker.flows.timeout_ns = {
            60000000000ULL, 30000000000ULL, 60000000000ULL, 60000000000ULL, 30000000000ULL};
    options.worker.payload_slots = 64;
    std::vector<hs_scratch*> scratches;
    for (int i = 0; i < 2; ++i) {
        scratches.push_back(*old_db->alloc_scratch());
    }
    options.scratches = scratches;
    ReplayResult out;
    bool published = false;
    options.on_event = [&](const WorkerEvent& event) {
        if (event.type == WorkerEvent::Type::Finding
                && event.finding.cls == detectors::ContentClass::PaymentCard) {
            ++out.card_findings;
        }
    };
    uint64_t watermark = 0;
    options.on_tick = [&](const OfflineProgress& progress, const std::vector<Worker*>& workers) {
        // Packet time only moves forward, and every worker reports it.
        EXPECT_GE(progress.packet_time_ns, watermark);
        watermark = progress.packet_time_ns;
        reloader.poll(workers);
        if (!published) {
            if (progress.packets_read < reload_at || progress.packets_done < reload_at) {
                return reload_at;
            }
            EXPECT_TRUE(reloader.publish(database(false), workers).ok());
            published = true;
        }
        return reloader.pending() ? reload_at : UINT64_MAX;
    };
    std::vector<std::unique_ptr<Worker>> workers;
    auto result = run_offline(options, workers);
    EXPECT_TRUE(result.ok()) << (result.ok() ? "" : result.error());
    // At the end every worker, busy or not, has reached the capture's last packet time.
    EXPECT_EQ(watermark, result.ok() ? result->last_ns : 0);
    std::vector<Worker*> list;
    for (auto& w : workers) {
        list.push_back(w.get());
    }
    reloader.poll(list);
    for (Worker* w : list) {
        EXPECT_EQ(w->adopted_generation(), 1U);
        EXPECT_EQ(w->live_databases(), 1U);  // the old database was let go when drained
    }
    out.generation = reloader.generation();
    workers.clear();  // releases the workers' last database references
    old_db.reset();
    options.worker.patterns.reset();
    reloader.poll({});
    out.live_after = reloader.live_databases();
    // The scratches the workers started with were retired at adoption and freed by poll().
    return out;
}

TEST(ContentReloadTest, FlowOpenedBeforeReloadKeepsItsDatabaseAndFindings) {
    const std::string pcap = shared_case("c11_two_pans_one_connection.pcap");
    if (pcap.empty()) {
        if (shared_required()) {
            FAIL() << "cases/c11_two_pans_one_connection.pcap missing";
        }
        GTEST_SKIP() << "shared cases not found";
    }
    // Packet 5 is after the handshake and the first request bytes: the client's stream is
    // open on the old database when the new one (without cards) arrives.
    const ReplayResult r = replay_with_reload(pcap, 5);
    EXPECT_EQ(r.generation, 1U);
    EXPECT_EQ(r.card_findings, 2U);
    EXPECT_EQ(r.live_after, 1U);
}

TEST(ContentReloadTest, FlowOpenedAfterReloadUsesTheNewDatabase) {
    const std::string pcap = shared_case("c11_two_pans_one_connection.pcap");
    if (pcap.empty()) {
        if (shared_required()) {
            FAIL() << "cases/c11_two_pans_one_connection.pcap missing";
        }
        GTEST_SKIP() << "shared cases not found";
    }
    // Packet 1 is the SYN: no payload yet, so the stream opens on the new database.
    const ReplayResult r = replay_with_reload(pcap, 1);
    EXPECT_EQ(r.card_findings, 0U);
}

}  // namespace
}  // namespace exfiltap::dataplane

int main(int argc, char** argv) {
    ::testing::InitGoogleTest(&argc, argv);
    exfiltap::dataplane::EalOptions eal;
    eal.workers = 2;
    eal.memory_mb = 512;
    eal.file_prefix = "exfiltap_reload_test_" + std::to_string(getpid());
    if (const auto st = exfiltap::dataplane::init_eal(eal); !st) {
        fprintf(stderr, "%s\n", st.error().c_str());
        return 1;
    }
    exfiltap::detectors::StreamPool::install_hyperscan_allocator();
    const int rc = RUN_ALL_TESTS();
    rte_eal_cleanup();
    return rc;
}
