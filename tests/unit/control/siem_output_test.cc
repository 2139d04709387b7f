// The SIEM output queue and thread against a scripted transport: drops when full, counts what
// could not be sent, reconnects, keeps order. No sockets (siem_transport_test.cc has those).
#include "control/siem_output.h"

#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

namespace exfiltap::control {
namespace {

/// What the scripted transport does and saw; shared with the test.
struct Script {
    std::mutex mutex;
    int connect_failures_left = 0;
    /// For the first send call: deliver this many, lose one, then disconnect (-1: never).
    int break_after = -1;
    std::vector<std::string> received;
    int connects = 0;
};

class ScriptedTransport final : public SiemTransport {
public:
    explicit ScriptedTransport(std::shared_ptr<Script> script) : script_(std::move(script)) {}
    std::string describe() const override { return "scripted"; }
    Status connect() override {
        const std::lock_guard<std::mutex> lock(script_->mutex);
        if (script_->connect_failures_left > 0) {
            --script_->connect_failures_left;
            return make_error("refused");
        }
        ++script_->connects;
        connected_ = true;
        return Ok{};
    }
    bool connected() const override { return connected_; }
    SendOutcome send(std::span<const std::string> messages) override {
        const std::lock_guard<std::mutex> lock(script_->mutex);
        SendOutcome out;
        for (const std::string& m : messages) {
            if (script_->break_after == 0) {
                script_->break_after = -1;
                out.lost = 1;
                out.error = "broken";
                connected_ = false;
                return out;
            }
            if (script_->break_after > 0) {
                --script_->break_after;
            }
            script_->received.push_back(m);
            ++out.delivered;
        }
        return out;
    }
    void close() override { connected_ = false; }

private:
    std::shared_ptr<Script> script_;
    bool connected_ = false;
};

SiemOutputOptions options(uint32_t queue, uint32_t batch = 64) {
    SiemOutputOptions o;
    o.queue_records = queue;
    o.batch = batch;
    o.backoff_min_ms = 1;
    o.backoff_max_ms = 4;
    return o;
}

std::vector<std::string> numbered(size_t n) {
    std::vector<std::string> out;
    for (size_t i = 0; i < n; ++i) {
        out.push_back("m" + std::to_string(i));
    }
    return out;
}

/// Waits (bounded) until the transport has seen `n` messages.
void wait_received(Script& script, size_t n) {
    for (int i = 0; i < 10000; ++i) {
        {
            const std::lock_guard<std::mutex> lock(script.mutex);
            if (script.received.size() >= n) {
                return;
            }
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
}

TEST(SiemOutputTest, FullQueueDropsAndCounts) {
    auto script = std::make_shared<Script>();
    SiemOutput output("syslog", std::make_unique<ScriptedTransport>(script), options(3));

    std::vector<bool> taken;
    for (const std::string& m : numbered(5)) {
        taken.push_back(output.offer(m));
    }

    EXPECT_EQ(taken, (std::vector<bool>{true, true, true, false, false}));
    EXPECT_EQ(output.counts().dropped, 2U);
    EXPECT_EQ(output.lost(), 2U);
}

TEST(SiemOutputTest, QueuedRecordsAreSentInOrderOnceStarted) {
    auto script = std::make_shared<Script>();
    SiemOutput output("redis", std::make_unique<ScriptedTransport>(script), options(10, 2));
    for (const std::string& m : numbered(5)) {
        output.offer(m);
    }

    ASSERT_TRUE(output.start(start_std_thread).ok());
    output.stop(10000);

    EXPECT_EQ(script->received, numbered(5));
    const SiemOutputCounts c = output.counts();
    EXPECT_EQ(c.offered, 5U);
    EXPECT_EQ(c.sent, 5U);
    EXPECT_EQ(c.dropped + c.failed, 0U);
}

TEST(SiemOutputTest, PeerDownAtStopCountsQueuedAsFailed) {
    auto script = std::make_shared<Script>();
    script->connect_failures_left = 1000000;
    SiemOutput output("syslog", std::make_unique<ScriptedTransport>(script), options(10));
    ASSERT_TRUE(output.start(start_std_thread).ok());
    for (const std::string& m : numbered(4)) {
        output.offer(m);
    }

    output.stop(0);

    const SiemOutputCounts c = output.counts();
    EXPECT_EQ(c.sent, 0U);
    EXPECT_EQ(c.failed, 4U);
    EXPECT_EQ(output.lost(), 4U);
}

TEST(SiemOutputTest, ReconnectsAfterRefusalsAndSendsWhatWaited) {
    auto script = std::make_shared<Script>();
    script->connect_failures_left = 3;
    SiemOutput output("syslog", std::make_unique<ScriptedTransport>(script), options(10));
    for (const std::string& m : numbered(6)) {
        output.offer(m);
    }

    ASSERT_TRUE(output.start(start_std_thread).ok());
    // The thread retries on its own (a stop while it is down would give up at once).
    wait_received(*script, 6);
    output.stop(10000);

    EXPECT_EQ(script->received, numbered(6));
    EXPECT_EQ(output.counts().failed, 0U);
}

TEST(SiemOutputTest, BrokenSendLosesOneAndRetriesTheRest) {
    auto script = std::make_shared<Script>();
    script->break_after = 2;
    SiemOutput output("syslog", std::make_unique<ScriptedTransport>(script), options(10, 6));
    for (const std::string& m : numbered(6)) {
        output.offer(m);
    }

    ASSERT_TRUE(output.start(start_std_thread).ok());
    output.stop(10000);

    EXPECT_EQ(script->received, (std::vector<std::string>{"m0", "m1", "m3", "m4", "m5"}));
    const SiemOutputCounts c = output.counts();
    EXPECT_EQ(c.sent, 5U);
    EXPECT_EQ(c.failed, 1U);
    EXPECT_EQ(c.connects, 2U);
}

TEST(SiemOutputTest, OfferAfterStopIsDroppedAndCounted) {
    auto script = std::make_shared<Script>();
    SiemOutput output("redis", std::make_unique<ScriptedTransport>(script), options(10));
    ASSERT_TRUE(output.start(start_std_thread).ok());
    output.stop(1000);

    EXPECT_FALSE(output.offer("late"));

    EXPECT_EQ(output.counts().dropped, 1U);
}

TEST(SiemOutputsTest, OnlyEnabledOutputsAreBuilt) {
    OutputsConfig config;
    config.redis.enabled = true;

    SiemOutputs outputs(config, "0.1.0");

    ASSERT_EQ(outputs.outputs().size(), 1U);
    EXPECT_EQ(outputs.outputs()[0]->name(), "redis");
    EXPECT_EQ(outputs.drops(), (std::vector<std::pair<std::string, uint64_t>>{{"redis", 0}}));
}

}  // namespace
}  // namespace exfiltap::control
