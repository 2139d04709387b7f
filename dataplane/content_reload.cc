#include "dataplane/content_reload.h"

#include <algorithm>
#include <string>

#include <hs/hs.h>

namespace exfiltap::dataplane {

ContentReloader::ContentReloader(std::shared_ptr<const detectors::PatternDatabase> initial) {
    if (initial != nullptr) {
        live_.push_back(std::move(initial));
    }
}

ContentReloader::~ContentReloader() {
    // Offers never adopted still own their scratch.
    for (auto& offer : offers_) {
        if (offer != nullptr && offer->scratch != nullptr) {
            hs_free_scratch(offer->scratch);
        }
    }
}

bool ContentReloader::pending() const {
    return std::any_of(offers_.begin(), offers_.end(), [](const auto& o) { return o != nullptr; });
}

Status ContentReloader::publish(
        std::shared_ptr<const detectors::PatternDatabase> db, const std::vector<Worker*>& workers) {
    poll(workers);
    if (pending()) {
        return make_error("a content reload is still being adopted by the workers; try again");
    }
    for (const Worker* w : workers) {
        if (db->stream_size() > w->stream_block_bytes()) {
            return make_error("the new content database needs " + std::to_string(db->stream_size())
                    + " bytes of stream state per flow direction, the running pools hold "
                    + std::to_string(w->stream_block_bytes()) + "; restart exfiltap to apply it");
        }
    }
    // One prototype grown for every database a stream may still use, cloned per worker.
    hs_scratch_t* prototype = nullptr;
    live_.push_back(db);
    for (const auto& live : live_) {
        if (!live->grow_scratch(prototype).ok()) {
            live_.pop_back();
            if (prototype != nullptr) {
                hs_free_scratch(prototype);
            }
            return make_error("cannot allocate Hyperscan scratch for the new database");
        }
    }
    std::vector<hs_scratch_t*> clones;
    for (size_t i = 0; i < workers.size(); ++i) {
        hs_scratch_t* clone = nullptr;
        if (hs_clone_scratch(prototype, &clone) != HS_SUCCESS) {
            for (hs_scratch_t* c : clones) {
                hs_free_scratch(c);
            }
            hs_free_scratch(prototype);
            live_.pop_back();
            return make_error("cannot clone Hyperscan scratch for the workers");
        }
        clones.push_back(clone);
    }
    hs_free_scratch(prototype);
    ++generation_;
    offers_.resize(workers.size());
    offered_.assign(workers.size(), false);
    for (size_t i = 0; i < workers.size(); ++i) {
        auto offer = std::make_unique<ContentGeneration>();
        offer->id = generation_;
        offer->db = db;
        offer->scratch = clones[i];
        offers_[i] = std::move(offer);
    }
    poll(workers);
    return Ok{};
}

void ContentReloader::poll(const std::vector<Worker*>& workers) {
    for (size_t i = 0; i < workers.size(); ++i) {
        Worker* w = workers[i];
        if (hs_scratch_t* old = w->collect_retired(); old != nullptr) {
            hs_free_scratch(old);
        }
        if (i >= offers_.size() || offers_[i] == nullptr) {
            continue;
        }
        if (!offered_[i]) {
            offered_[i] = w->offer_content(offers_[i].get());
        } else if (w->adopted_generation() >= offers_[i]->id) {
            offers_[i].reset();  // the worker moved the database out and took the scratch
        }
    }
    // A database only this list still holds has no stream left anywhere.
    if (live_.size() > 1) {
        live_.erase(std::remove_if(live_.begin(), live_.end() - 1,
                            [](const auto& db) { return db.use_count() == 1; }),
                live_.end() - 1);
    }
}

}  // namespace exfiltap::dataplane
