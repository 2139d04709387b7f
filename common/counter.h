// The per-lcore counter: written by exactly one thread (its lcore), read by any thread at
// scrape or summary time. Relaxed load+store, never a read-modify-write, so adding costs a
// plain add on x86.
#pragma once

#include <atomic>
#include <cstdint>

namespace exfiltap {

class Counter {
public:
    /// Only the owning thread calls add().
    void add(uint64_t n = 1) noexcept {
        value_.store(value_.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
    }
    /// Only the owning thread calls set() (gauges).
    void set(uint64_t n) noexcept { value_.store(n, std::memory_order_relaxed); }
    /// Any thread.
    uint64_t get() const noexcept { return value_.load(std::memory_order_relaxed); }

private:
    std::atomic<uint64_t> value_{0};
};

}  // namespace exfiltap
