// SipHash-2-4 (Aumasson and Bernstein), the keyed hash of exact data match: fast enough to
// run per token on the data path, and without the key a stored hash tells nothing about
// the value.
#pragma once

#include <array>
#include <cstdint>
#include <span>

namespace exfiltap::detectors {

/// A 128-bit SipHash key (two little-endian 64-bit words k0, k1).
struct SipKey {
    uint64_t k0 = 0;
    uint64_t k1 = 0;

    /// The key from 16 bytes, little-endian, as the reference implementation reads it.
    static SipKey from_bytes(std::span<const uint8_t, 16> bytes) noexcept;
};

/// SipHash-2-4 of `data` under `key`; matches the reference test vectors.
uint64_t siphash24(const SipKey& key, std::span<const uint8_t> data) noexcept;

/// SipHash-2-4 of the byte `tag` followed by `data` (the same value as siphash24 of the
/// concatenation), without copying: the EDM word and number hashes prefix a type byte.
uint64_t siphash24_tagged(const SipKey& key, uint8_t tag, std::span<const uint8_t> data) noexcept;

/// SipHash-2-4 over data given in pieces (file checksums); the result equals siphash24 of
/// the pieces' concatenation.
class SipHasher {
public:
    explicit SipHasher(const SipKey& key) noexcept;
    void update(std::span<const uint8_t> data) noexcept;
    /// The hash of everything given so far (the state is not changed).
    uint64_t finish() const noexcept;

private:
    uint64_t v_[4] = {};
    uint64_t tail_ = 0;      // bytes of an incomplete 8-byte block, little-endian
    unsigned tail_len_ = 0;  // 0..7
    uint64_t total_ = 0;     // bytes given
};

}  // namespace exfiltap::detectors
