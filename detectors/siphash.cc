// SipHash-2-4 from the paper's description: the state v0..v3 starts from the key and four
// constants, every 8-byte little-endian block m is xored into v3, two SipRounds run, m is
// xored into v0; the last block holds the remaining bytes and the length (mod 256) in its
// top byte; finalisation xors 0xff into v2, runs four rounds and folds v0^v1^v2^v3.
#include "detectors/siphash.h"

#include <bit>
#include <cstring>

namespace exfiltap::detectors {
namespace {

constexpr uint64_t kInit0 = 0x736f6d6570736575ULL;  // "somepseu"
constexpr uint64_t kInit1 = 0x646f72616e646f6dULL;  // "dorandom"
constexpr uint64_t kInit2 = 0x6c7967656e657261ULL;  // "lygenera"
constexpr uint64_t kInit3 = 0x7465646279746573ULL;  // "tedbytes"

inline uint64_t load_le64(const uint8_t* p) noexcept {
    uint64_t v = 0;
    std::memcpy(&v, p, sizeof(v));
    if constexpr (std::endian::native == std::endian::big) {
        v = __builtin_bswap64(v);
    }
    return v;
}

struct State {
    uint64_t v0;
    uint64_t v1;
    uint64_t v2;
    uint64_t v3;

    explicit State(const SipKey& key) noexcept
        : v0(key.k0 ^ kInit0), v1(key.k1 ^ kInit1), v2(key.k0 ^ kInit2), v3(key.k1 ^ kInit3) {}

    void round() noexcept {
        v0 += v1;
        v1 = std::rotl(v1, 13);
        v1 ^= v0;
        v0 = std::rotl(v0, 32);
        v2 += v3;
        v3 = std::rotl(v3, 16);
        v3 ^= v2;
        v0 += v3;
        v3 = std::rotl(v3, 21);
        v3 ^= v0;
        v2 += v1;
        v1 = std::rotl(v1, 17);
        v1 ^= v2;
        v2 = std::rotl(v2, 32);
    }

    void compress(uint64_t m) noexcept {
        v3 ^= m;
        round();
        round();
        v0 ^= m;
    }

    uint64_t finish(uint64_t last) noexcept {
        compress(last);
        v2 ^= 0xff;
        round();
        round();
        round();
        round();
        return v0 ^ v1 ^ v2 ^ v3;
    }
};

/// Up to 7 bytes as the low bytes of a little-endian word.
inline uint64_t load_tail(const uint8_t* p, size_t n) noexcept {
    uint64_t v = 0;
    for (size_t i = 0; i < n; ++i) {
        v |= static_cast<uint64_t>(p[i]) << (8 * i);
    }
    return v;
}

}  // namespace

SipKey SipKey::from_bytes(std::span<const uint8_t, 16> bytes) noexcept {
    return SipKey{load_le64(bytes.data()), load_le64(bytes.data() + 8)};
}

uint64_t siphash24(const SipKey& key, std::span<const uint8_t> data) noexcept {
    State s(key);
    const uint8_t* p = data.data();
    const size_t n = data.size();
    const size_t blocks = n / 8;
    for (size_t i = 0; i < blocks; ++i) {
        s.compress(load_le64(p + 8 * i));
    }
    const uint64_t last = load_tail(p + 8 * blocks, n % 8) | (static_cast<uint64_t>(n) << 56);
    return s.finish(last);
}

uint64_t siphash24_tagged(const SipKey& key, uint8_t tag, std::span<const uint8_t> data) noexcept {
    // The message is tag, data[0], data[1], ...: block k holds data[8k-1 .. 8k+6], the first
    // block the tag and data[0..6].
    State s(key);
    const uint8_t* p = data.data();
    const size_t n = data.size() + 1;
    const size_t blocks = n / 8;
    if (blocks == 0) {
        const uint64_t last = tag | (load_tail(p, n - 1) << 8) | (static_cast<uint64_t>(n) << 56);
        return s.finish(last);
    }
    s.compress(tag | (load_tail(p, 7) << 8));
    for (size_t k = 1; k < blocks; ++k) {
        s.compress(load_le64(p + 8 * k - 1));
    }
    const uint64_t last = load_tail(p + 8 * blocks - 1, n % 8) | (static_cast<uint64_t>(n) << 56);
    return s.finish(last);
}

SipHasher::SipHasher(const SipKey& key) noexcept {
    const State s(key);
    v_[0] = s.v0;
    v_[1] = s.v1;
    v_[2] = s.v2;
    v_[3] = s.v3;
}

void SipHasher::update(std::span<const uint8_t> data) noexcept {
    State s(SipKey{});
    s.v0 = v_[0];
    s.v1 = v_[1];
    s.v2 = v_[2];
    s.v3 = v_[3];
    const uint8_t* p = data.data();
    size_t n = data.size();
    total_ += n;
    while (tail_len_ != 0 && n > 0) {
        tail_ |= static_cast<uint64_t>(*p) << (8 * tail_len_);
        ++p;
        --n;
        if (++tail_len_ == 8) {
            s.compress(tail_);
            tail_ = 0;
            tail_len_ = 0;
        }
    }
    while (n >= 8) {
        s.compress(load_le64(p));
        p += 8;
        n -= 8;
    }
    if (n > 0) {
        tail_ = load_tail(p, n);
        tail_len_ = static_cast<unsigned>(n);
    }
    v_[0] = s.v0;
    v_[1] = s.v1;
    v_[2] = s.v2;
    v_[3] = s.v3;
}

uint64_t SipHasher::finish() const noexcept {
    State s(SipKey{});
    s.v0 = v_[0];
    s.v1 = v_[1];
    s.v2 = v_[2];
    s.v3 = v_[3];
    return s.finish(tail_ | (total_ << 56));
}

}  // namespace exfiltap::detectors
