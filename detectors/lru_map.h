// A map with a capacity that evicts its least recently used entry when full; the behaviour
// engine keeps every table of hosts, flows, domains and login keys in one, so its memory
// stays bounded whatever the traffic. Iteration runs from the most to the least recently
// used entry, so it is deterministic for a given sequence of calls.
//
// Threads: the control thread (allocates).
#pragma once

#include <cstddef>
#include <cstdint>
#include <list>
#include <unordered_map>
#include <utility>

namespace exfiltap::detectors {

template <typename Key, typename Value, typename Hash>
class LruMap {
public:
    explicit LruMap(size_t capacity) : capacity_(capacity < 1 ? 1 : capacity) {}

    /// The entry of `key`, now the most recently used; null when absent.
    Value* find(const Key& key) {
        auto it = index_.find(key);
        if (it == index_.end()) {
            return nullptr;
        }
        items_.splice(items_.begin(), items_, it->second);
        return &it->second->second;
    }

    /// The entry of `key`, created (default value) when absent, evicting the least recently
    /// used entry when the map is full. `created` tells which.
    Value& touch(const Key& key, bool& created) {
        if (Value* found = find(key)) {
            created = false;
            return *found;
        }
        created = true;
        if (items_.size() >= capacity_) {
            evict_oldest();
        }
        items_.emplace_front(key, Value{});
        index_.emplace(key, items_.begin());
        return items_.front().second;
    }

    Value& touch(const Key& key) {
        bool created = false;
        return touch(key, created);
    }

    void erase(const Key& key) {
        auto it = index_.find(key);
        if (it != index_.end()) {
            items_.erase(it->second);
            index_.erase(it);
        }
    }

    /// Shrinks (evicting, counted) or grows the capacity.
    void set_capacity(size_t capacity) {
        capacity_ = capacity < 1 ? 1 : capacity;
        while (items_.size() > capacity_) {
            evict_oldest();
        }
    }

    void clear() {
        items_.clear();
        index_.clear();
    }

    size_t size() const noexcept { return items_.size(); }
    uint64_t evictions() const noexcept { return evictions_; }

    /// Calls fn(key, value) from the most to the least recently used, without reordering.
    template <typename Fn>
    void for_each(Fn&& fn) {
        for (auto& [key, value] : items_) {
            fn(key, value);
        }
    }
    template <typename Fn>
    void for_each(Fn&& fn) const {
        for (const auto& [key, value] : items_) {
            fn(key, value);
        }
    }

private:
    void evict_oldest() {
        index_.erase(items_.back().first);
        items_.pop_back();
        ++evictions_;
    }

    using List = std::list<std::pair<Key, Value>>;
    size_t capacity_;
    uint64_t evictions_ = 0;
    List items_;
    std::unordered_map<Key, typename List::iterator, Hash> index_;
};

/// FNV-1a over bytes, the hash of the engine's keys.
inline uint64_t fnv1a(const void* data, size_t len, uint64_t seed = 14695981039346656037ULL) {
    const auto* p = static_cast<const unsigned char*>(data);
    uint64_t h = seed;
    for (size_t i = 0; i < len; ++i) {
        h ^= p[i];
        h *= 1099511628211ULL;
    }
    return h;
}

}  // namespace exfiltap::detectors
