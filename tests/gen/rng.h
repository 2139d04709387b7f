#pragma once

#include <cstddef>
#include <cstdint>

namespace exfiltap::gen {

// Deterministic pseudo-random numbers: xoshiro256** seeded through splitmix64. The sequence
// depends on the seed only (no std::random_device, no library distributions, whose output
// differs between standard libraries), so the same arguments give byte-identical captures.
class Rng {
public:
    explicit Rng(uint64_t seed) noexcept {
        for (auto& word : s_) {
            word = splitmix64(seed);
        }
    }

    uint64_t next() noexcept {
        const uint64_t result = rotl(s_[1] * 5, 7) * 9;
        const uint64_t t = s_[1] << 17;
        s_[2] ^= s_[0];
        s_[3] ^= s_[1];
        s_[1] ^= s_[2];
        s_[0] ^= s_[3];
        s_[2] ^= t;
        s_[3] = rotl(s_[3], 45);
        return result;
    }

    // Uniform in [0, n); n > 0. Rejection keeps it unbiased.
    uint64_t below(uint64_t n) noexcept {
        const uint64_t threshold = (0 - n) % n;
        for (;;) {
            const uint64_t r = next();
            if (r >= threshold) {
                return r % n;
            }
        }
    }

    // Uniform in [lo, hi], both included.
    uint64_t range(uint64_t lo, uint64_t hi) noexcept { return lo + below(hi - lo + 1); }

    // Uniform in [0, 1).
    double unit() noexcept { return static_cast<double>(next() >> 11) * 0x1.0p-53; }

    bool chance(double p) noexcept { return unit() < p; }

    // Roughly log-uniform in [lo, hi] (lo > 0): a power-of-two octave first, then a value
    // inside it, so sizes spread over orders of magnitude. Integer arithmetic only: libm's
    // log and exp may round differently elsewhere and the output must not.
    uint64_t log_uniform(uint64_t lo, uint64_t hi) noexcept {
        int octaves = 0;
        while ((lo << (octaves + 1)) <= hi) {
            ++octaves;
        }
        const uint64_t base = lo << below(static_cast<uint64_t>(octaves) + 1);
        const uint64_t top = base * 2 - 1 < hi ? base * 2 - 1 : hi;
        return range(base, top);
    }

    // An independent generator derived from this one, so one flow's consumption of numbers
    // does not shift the next flow's.
    Rng fork() noexcept { return Rng(next()); }

    template <typename T, size_t N>
    const T& pick(const T (&items)[N]) noexcept {
        return items[below(N)];
    }

private:
    static uint64_t rotl(uint64_t x, int k) noexcept { return (x << k) | (x >> (64 - k)); }

    static uint64_t splitmix64(uint64_t& x) noexcept {
        uint64_t z = (x += 0x9e3779b97f4a7c15ULL);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
        return z ^ (z >> 31);
    }

    uint64_t s_[4];
};

}  // namespace exfiltap::gen
