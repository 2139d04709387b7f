// Content database reload (DESIGN.md "Reload"), control-thread side. A new database serves
// new flow directions; streams opened before finish on their own database. Each worker gets
// a clone of a prototype scratch that was grown for every live database, so one scratch
// serves old and new streams alike. A worker's replaced scratch is freed here once the
// worker has adopted the new one; a database is released once no worker has a stream on it.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "common/result.h"
#include "dataplane/worker.h"
#include "detectors/content_scanner.h"

namespace exfiltap::dataplane {

class ContentReloader {
public:
    /// `initial` is the database the workers were created with.
    explicit ContentReloader(std::shared_ptr<const detectors::PatternDatabase> initial);
    ~ContentReloader();
    ContentReloader(const ContentReloader&) = delete;
    ContentReloader& operator=(const ContentReloader&) = delete;
    ContentReloader(ContentReloader&&) = delete;
    ContentReloader& operator=(ContentReloader&&) = delete;

    /// Offers `db` to every worker. Fails (nothing changes) while an earlier reload is still
    /// being adopted, or when the database's stream state does not fit the workers' pools
    /// (a restart is needed then).
    Status publish(std::shared_ptr<const detectors::PatternDatabase> db,
            const std::vector<Worker*>& workers);

    /// Call often (each reader loop, each control tick): re-offers to workers that were busy,
    /// frees replaced scratches and releases databases no worker uses any more.
    void poll(const std::vector<Worker*>& workers);

    /// True while some worker has not adopted the latest database.
    bool pending() const;
    uint64_t generation() const { return generation_; }
    /// Databases still alive (current and those with open streams somewhere).
    size_t live_databases() const { return live_.size(); }

private:
    std::vector<std::shared_ptr<const detectors::PatternDatabase>> live_;
    std::vector<std::unique_ptr<ContentGeneration>> offers_;  // per worker, until adopted
    std::vector<bool> offered_;
    uint64_t generation_ = 0;
};

}  // namespace exfiltap::dataplane
