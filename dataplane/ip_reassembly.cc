#include "dataplane/ip_reassembly.h"

#include <algorithm>
#include <cstring>

#include "dataplane/wire.h"

// Fragment data is not kept fragment by fragment: each datagram has a page table indexed by
// datagram offset (64 pages of 1 KiB cover 65,535 bytes) and a sorted list of the byte ranges
// held so far, merged as they touch. A fragment is compared with the held bytes it shares
// (first copy wins) and only its new bytes are written. So overlapping garbage costs no more
// memory than the range it covers, a datagram never holds more than 64 pages however small
// its fragments are, and the range list is never longer than the fragments accepted.

namespace exfiltap::dataplane {
namespace {

using namespace wire;  // NOLINT(google-build-using-namespace): the wire vocabulary

constexpr uint32_t kNone = UINT32_MAX;
constexpr uint32_t kUnknownEnd = UINT32_MAX;
constexpr uint32_t kMaxIpLength = 65535;
constexpr uint32_t kPagesPerDatagram =
        (kMaxIpLength + IpReassembler::kPageBytes - 1) / IpReassembler::kPageBytes;
// Eight-byte pieces of 65,535 bytes: more fragments than this cannot all bring new bytes.
constexpr uint32_t kMaxFragmentsLimit = 8192;
// A datagram table this large would not fit in memory anyway; keeps the arithmetic in range.
constexpr uint32_t kMaxDatagramsLimit = 1u << 22;
// Evictions one add() may do to find pages: a fragment needs at most kPagesPerDatagram + 1
// pages and evicting a datagram that holds data frees at least one.
constexpr uint32_t kMaxEvictionsPerAdd = 2 * kPagesPerDatagram + 2;

constexpr uint16_t kIpv4OffsetMask = kIpv4FragOffsetMask;
// Reserved and DF bits: what stays of the flags and offset word in the rebuilt header.
constexpr uint16_t kIpv4KeptFlags = 0xc000;

void store16(uint8_t* p, uint32_t v) noexcept {
    p[0] = static_cast<uint8_t>(v >> 8);
    p[1] = static_cast<uint8_t>(v);
}

uint16_t ipv4_header_checksum(const uint8_t* ip, uint32_t header_len) noexcept {
    uint32_t acc = 0;
    for (uint32_t i = 0; i + 1 < header_len; i += 2) {
        acc += load16(ip + i);
    }
    while ((acc >> 16) != 0) {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    return static_cast<uint16_t>(~acc);
}

// Seeded multiply-xorshift over 8-byte words (`n` is a multiple of 8). Not a MAC: the seed
// only keeps a sender from choosing ids that share a bucket without knowing it.
uint32_t hash_words(const void* p, size_t n, uint64_t seed) noexcept {
    uint64_t h = seed;
    for (size_t i = 0; i < n; i += 8) {
        uint64_t w = 0;
        std::memcpy(&w, static_cast<const uint8_t*>(p) + i, 8);
        h = (h ^ w) * 0x9e3779b97f4a7c15ULL;
        h ^= h >> 29;
    }
    h ^= h >> 32;
    h *= 0xd6e8feb86659fd93ULL;
    h ^= h >> 32;
    return static_cast<uint32_t>(h);
}

uint32_t round_up_pow2(uint32_t n) noexcept {
    uint32_t p = 1;
    while (p < n) {
        p <<= 1;
    }
    return p;
}

}  // namespace

struct IpReassembler::Fragment {
    const uint8_t* data = nullptr;
    uint32_t offset = 0;
    uint32_t len = 0;
    bool more = false;
    uint8_t version = 0;
    uint32_t l3_offset = 0;
    // Frame bytes that make the rebuilt header: up to the IPv4 data, or up to the IPv6
    // fragment header (which the rebuilt frame leaves out).
    uint32_t header_len = 0;
    // IPv6: where the byte naming the fragment header sits, and the fragment's next header.
    uint32_t next_header_at = 0;
    uint8_t next_header = 0;
};

struct IpReassembler::Datagram {
    enum class State : uint8_t {
        Free,
        Active,
        // Given up: no data, the key kept until the timeout to absorb the other fragments.
        Failed,
    };

    Key key{};
    uint64_t created_ns = 0;
    uint32_t hash = 0;
    uint32_t hash_next = kNone;
    uint32_t older = kNone;
    uint32_t newer = kNone;
    // End of the fragmentable part, known from the last fragment (MF clear).
    uint32_t end = kUnknownEnd;
    uint32_t fragments = 0;
    uint32_t range_count = 0;
    uint32_t page_count = 0;
    uint16_t header_len = 0;
    uint16_t l3_offset = 0;
    State state = State::Free;
    bool header_saved = false;
};

IpReassembler::IpReassembler(const IpReassemblyConfig& config)
    : config_(config), oldest_(kNone), newest_(kNone) {
    config_.max_datagrams = std::clamp<uint32_t>(config_.max_datagrams, 1, kMaxDatagramsLimit);
    config_.max_fragments_per_datagram =
            std::clamp<uint32_t>(config_.max_fragments_per_datagram, 1, kMaxFragmentsLimit);
    config_.max_datagram_bytes = std::clamp<uint32_t>(config_.max_datagram_bytes, 1, kMaxIpLength);
    page_count_ = static_cast<uint32_t>(
            std::clamp<size_t>(config_.memory_bytes / kPageBytes, 1, UINT32_MAX - 1));

    const size_t slots = config_.max_datagrams;
    const uint32_t bucket_count = round_up_pow2(config_.max_datagrams);
    bucket_mask_ = bucket_count - 1;
    const size_t range_slots = slots * config_.max_fragments_per_datagram;
    const size_t page_slots = slots * kPagesPerDatagram;

    datagrams_ = std::make_unique<Datagram[]>(slots);
    buckets_ = std::make_unique<uint32_t[]>(bucket_count);
    free_slots_ = std::make_unique<uint32_t[]>(slots);
    ranges_ = std::make_unique<Range[]>(range_slots);
    page_tables_ = std::make_unique<uint32_t[]>(page_slots);
    headers_ = std::make_unique<uint8_t[]>(slots * kMaxHeaderBytes);
    pages_ = std::make_unique<uint8_t[]>(size_t{page_count_} * kPageBytes);
    free_pages_ = std::make_unique<uint32_t[]>(page_count_);
    out_ = std::make_unique<uint8_t[]>(kMaxFrameBytes);

    std::fill_n(buckets_.get(), bucket_count, kNone);
    std::fill_n(page_tables_.get(), page_slots, kNone);
    // Free lists are stacks: low indexes come out first, which keeps tests readable.
    for (uint32_t i = 0; i < config_.max_datagrams; ++i) {
        free_slots_[i] = config_.max_datagrams - 1 - i;
    }
    free_slot_count_ = config_.max_datagrams;
    for (uint32_t i = 0; i < page_count_; ++i) {
        free_pages_[i] = page_count_ - 1 - i;
    }
    free_page_count_ = page_count_;

    footprint_ = slots * (sizeof(Datagram) + sizeof(uint32_t) + kMaxHeaderBytes)
            + size_t{bucket_count} * sizeof(uint32_t) + range_slots * sizeof(Range)
            + page_slots * sizeof(uint32_t) + size_t{page_count_} * (kPageBytes + sizeof(uint32_t))
            + kMaxFrameBytes;
}

IpReassembler::~IpReassembler() = default;

IpReassembler::Range* IpReassembler::ranges(uint32_t slot) noexcept {
    return ranges_.get() + size_t{slot} * config_.max_fragments_per_datagram;
}

const IpReassembler::Range* IpReassembler::ranges(uint32_t slot) const noexcept {
    return ranges_.get() + size_t{slot} * config_.max_fragments_per_datagram;
}

uint32_t* IpReassembler::page_table(uint32_t slot) noexcept {
    return page_tables_.get() + size_t{slot} * kPagesPerDatagram;
}

const uint32_t* IpReassembler::page_table(uint32_t slot) const noexcept {
    return page_tables_.get() + size_t{slot} * kPagesPerDatagram;
}

uint8_t* IpReassembler::page(uint32_t index) noexcept {
    return pages_.get() + size_t{index} * kPageBytes;
}

const uint8_t* IpReassembler::page(uint32_t index) const noexcept {
    return pages_.get() + size_t{index} * kPageBytes;
}

// The IP fields are read from the frame, bounded by the captured length: `info` gives the
// version, where L3 starts and the VLAN ids. A fragment whose datagram is not wholly captured
// cannot be used (its missing bytes would be guessed).
bool IpReassembler::parse(const uint8_t* frame, uint32_t len, const PacketInfo& info,
        Fragment& frag, Key& key) noexcept {
    const uint32_t l3 = info.l3_offset;
    if (frame == nullptr || l3 >= len) {
        return false;
    }
    const uint8_t* ip = frame + l3;
    const uint32_t captured = len - l3;
    frag.l3_offset = l3;
    frag.version = info.ip_version;
    key.version = info.ip_version;
    key.vlan_count = info.vlan_count;
    key.vlan = info.vlan;

    if (info.ip_version == 4) {
        if (captured < kIpv4MinHeaderLen || (ip[0] >> 4) != 4) {
            return false;
        }
        const uint32_t header_len = static_cast<uint32_t>(ip[0] & 0x0f) * 4;
        const uint32_t total_len = load16(ip + 2);
        if (header_len < kIpv4MinHeaderLen || total_len < header_len || total_len > captured) {
            return false;
        }
        const uint16_t word = load16(ip + 6);
        frag.offset = static_cast<uint32_t>(word & kIpv4OffsetMask) * 8;
        frag.more = (word & kIpv4MoreFragments) != 0;
        frag.data = ip + header_len;
        frag.len = total_len - header_len;
        frag.header_len = l3 + header_len;
        key.id = load16(ip + 4);
        key.proto = ip[9];
        std::memcpy(key.src.data(), ip + 12, 4);
        std::memcpy(key.dst.data(), ip + 16, 4);
        return frag.more || frag.offset != 0;
    }

    if (info.ip_version != 6 || captured < kIpv6HeaderLen || (ip[0] >> 4) != 6) {
        return false;
    }
    const uint32_t end = l3 + kIpv6HeaderLen + load16(ip + 4);
    if (end > len) {
        return false;
    }
    std::memcpy(key.src.data(), ip + 8, 16);
    std::memcpy(key.dst.data(), ip + 24, 16);
    uint8_t next = ip[6];
    uint32_t next_at = l3 + 6;
    uint32_t pos = l3 + kIpv6HeaderLen;
    // The first fragment header that is not atomic (RFC 6946) splits the packet, as in
    // decode_packet(); headers before it are the unfragmentable part.
    for (unsigned walked = 0; walked < kMaxIpv6Extensions && is_ipv6_extension(next); ++walked) {
        if (end - pos < 2) {
            return false;
        }
        const uint8_t* ext = frame + pos;
        const uint32_t ext_len = ipv6_extension_len(next, ext);
        if (ext_len > end - pos) {
            return false;
        }
        if (next == kIpv6Fragment) {
            const uint16_t word = load16(ext + 2);
            const uint32_t offset = word & 0xfff8u;
            const bool more = (word & 1u) != 0;
            if (more || offset != 0) {
                frag.offset = offset;
                frag.more = more;
                frag.data = ext + kIpv6FragmentHeaderLen;
                frag.len = end - (pos + kIpv6FragmentHeaderLen);
                frag.header_len = pos;
                frag.next_header_at = next_at;
                frag.next_header = ext[0];
                key.id = load32(ext + 4);
                return true;
            }
        }
        next = ext[0];
        next_at = pos;
        pos += ext_len;
    }
    return false;
}

uint32_t IpReassembler::find(const Key& key, uint32_t hash) const noexcept {
    for (uint32_t slot = buckets_[hash & bucket_mask_]; slot != kNone;
            slot = datagrams_[slot].hash_next) {
        const Datagram& d = datagrams_[slot];
        if (d.hash == hash && std::memcmp(&d.key, &key, sizeof(Key)) == 0) {
            return slot;
        }
    }
    return kNone;
}

uint32_t IpReassembler::create(const Key& key, uint32_t hash, uint64_t now_ns) noexcept {
    if (free_slot_count_ == 0) {
        evict(oldest_);
    }
    const uint32_t slot = free_slots_[--free_slot_count_];
    Datagram& d = datagrams_[slot];
    d = Datagram{};
    d.key = key;
    d.hash = hash;
    d.created_ns = now_ns;
    d.state = Datagram::State::Active;

    uint32_t& bucket = buckets_[hash & bucket_mask_];
    d.hash_next = bucket;
    bucket = slot;

    d.older = newest_;
    if (newest_ != kNone) {
        datagrams_[newest_].newer = slot;
    } else {
        oldest_ = slot;
    }
    newest_ = slot;
    ++in_use_;
    ++stats_.datagrams_started;
    return slot;
}

void IpReassembler::give_up(uint32_t slot) noexcept {
    Datagram& d = datagrams_[slot];
    if (d.page_count != 0) {
        uint32_t* table = page_table(slot);
        for (uint32_t p = 0; p < kPagesPerDatagram; ++p) {
            if (table[p] != kNone) {
                free_pages_[free_page_count_++] = table[p];
                table[p] = kNone;
            }
        }
        pages_in_use_ -= d.page_count;
        d.page_count = 0;
    }
    d.range_count = 0;
    d.state = Datagram::State::Failed;
}

void IpReassembler::release(uint32_t slot) noexcept {
    give_up(slot);
    Datagram& d = datagrams_[slot];

    uint32_t* link = &buckets_[d.hash & bucket_mask_];
    while (*link != slot) {
        link = &datagrams_[*link].hash_next;
    }
    *link = d.hash_next;

    if (d.older != kNone) {
        datagrams_[d.older].newer = d.newer;
    } else {
        oldest_ = d.newer;
    }
    if (d.newer != kNone) {
        datagrams_[d.newer].older = d.older;
    } else {
        newest_ = d.older;
    }

    d.state = Datagram::State::Free;
    free_slots_[free_slot_count_++] = slot;
    --in_use_;
}

void IpReassembler::evict(uint32_t slot) noexcept {
    // A given-up datagram was counted when it failed; only lost incomplete ones count here.
    if (datagrams_[slot].state == Datagram::State::Active) {
        ++stats_.memory_exhausted;
    }
    release(slot);
}

bool IpReassembler::expired(uint32_t slot, uint64_t now_ns) const noexcept {
    const uint64_t created = datagrams_[slot].created_ns;
    // Time that runs backwards (capture reordering) expires nothing.
    return now_ns >= created && now_ns - created >= config_.timeout_ns;
}

bool IpReassembler::reserve_pages(uint32_t slot, uint32_t begin, uint32_t end) noexcept {
    uint32_t* table = page_table(slot);
    const uint32_t first = begin / kPageBytes;
    const uint32_t last = (end - 1) / kPageBytes;
    uint32_t needed = 0;
    for (uint32_t p = first; p <= last; ++p) {
        needed += table[p] == kNone ? 1 : 0;
    }
    for (uint32_t evicted = 0; free_page_count_ < needed; ++evicted) {
        uint32_t victim = oldest_;
        if (victim == slot) {
            victim = datagrams_[slot].newer;
        }
        if (victim == kNone || evicted == kMaxEvictionsPerAdd) {
            return false;
        }
        evict(victim);
    }
    // Every page the fragment touches that has none yet receives new bytes: held bytes
    // always have their page.
    for (uint32_t p = first; p <= last; ++p) {
        if (table[p] == kNone) {
            table[p] = free_pages_[--free_page_count_];
            ++pages_in_use_;
            ++datagrams_[slot].page_count;
        }
    }
    return true;
}

bool IpReassembler::held_equal(
        uint32_t slot, uint32_t off, const uint8_t* src, uint32_t n) const noexcept {
    const uint32_t* table = page_table(slot);
    while (n != 0) {
        const uint32_t in_page = off % kPageBytes;
        const uint32_t chunk = std::min(n, kPageBytes - in_page);
        if (std::memcmp(page(table[off / kPageBytes]) + in_page, src, chunk) != 0) {
            return false;
        }
        off += chunk;
        src += chunk;
        n -= chunk;
    }
    return true;
}

void IpReassembler::write(uint32_t slot, uint32_t off, const uint8_t* src, uint32_t n) noexcept {
    const uint32_t* table = page_table(slot);
    while (n != 0) {
        const uint32_t in_page = off % kPageBytes;
        const uint32_t chunk = std::min(n, kPageBytes - in_page);
        std::memcpy(page(table[off / kPageBytes]) + in_page, src, chunk);
        off += chunk;
        src += chunk;
        n -= chunk;
    }
}

void IpReassembler::add_range(uint32_t slot, uint32_t begin, uint32_t end) noexcept {
    Datagram& d = datagrams_[slot];
    Range* r = ranges(slot);
    const uint32_t n = d.range_count;
    // Ranges [i, j) touch or overlap the new one and merge into it.
    uint32_t i = 0;
    while (i < n && r[i].end < begin) {
        ++i;
    }
    uint32_t j = i;
    while (j < n && r[j].begin <= end) {
        ++j;
    }
    if (i < j) {
        begin = std::min(begin, r[i].begin);
        end = std::max(end, r[j - 1].end);
    }
    // Callers add only while range_count < max_fragments_per_datagram, so one more fits.
    std::memmove(r + i + 1, r + j, (n - j) * sizeof(Range));
    r[i] = Range{begin, end};
    d.range_count = n - (j - i) + 1;
}

// How far the fragmentable part may reach: the configured cap, and what leaves the IPv4
// total length or IPv6 payload length within 16 bits with the header the rebuilt frame gets
// (the smallest possible one until the first fragment is seen).
uint32_t IpReassembler::limit(uint32_t slot, const Fragment& frag) const noexcept {
    const Datagram& d = datagrams_[slot];
    uint32_t header_len = 0;
    uint32_t l3 = 0;
    if (d.header_saved) {
        header_len = d.header_len;
        l3 = d.l3_offset;
    } else if (frag.offset == 0) {
        header_len = frag.header_len;
        l3 = frag.l3_offset;
    }
    uint32_t ip_part = 0;
    if (frag.version == 4) {
        ip_part = header_len == 0 ? kIpv4MinHeaderLen : header_len - l3;
    } else if (header_len != 0) {
        ip_part = header_len - l3 - kIpv6HeaderLen;
    }
    return std::min(config_.max_datagram_bytes, kMaxIpLength - ip_part);
}

void IpReassembler::save_header(
        uint32_t slot, const uint8_t* frame, const Fragment& frag) noexcept {
    Datagram& d = datagrams_[slot];
    uint8_t* header = headers_.get() + size_t{slot} * kMaxHeaderBytes;
    std::memcpy(header, frame, frag.header_len);
    if (frag.version == 6) {
        // The fragment header goes: whatever named it now names what it carried.
        header[frag.next_header_at] = frag.next_header;
    }
    d.header_len = static_cast<uint16_t>(frag.header_len);
    d.l3_offset = static_cast<uint16_t>(frag.l3_offset);
    d.header_saved = true;
}

ReassembledFrame IpReassembler::rebuild(uint32_t slot) noexcept {
    const Datagram& d = datagrams_[slot];
    uint8_t* out = out_.get();
    std::memcpy(out, headers_.get() + size_t{slot} * kMaxHeaderBytes, d.header_len);
    uint8_t* ip = out + d.l3_offset;
    const uint32_t ip_header_len = d.header_len - d.l3_offset;
    if (d.key.version == 4) {
        store16(ip + 2, ip_header_len + d.end);
        store16(ip + 6, load16(ip + 6) & kIpv4KeptFlags);
        store16(ip + 10, 0);
        store16(ip + 10, ipv4_header_checksum(ip, ip_header_len));
    } else {
        store16(ip + 4, ip_header_len - kIpv6HeaderLen + d.end);
    }
    const uint32_t* table = page_table(slot);
    uint8_t* data = out + d.header_len;
    for (uint32_t off = 0; off < d.end; off += kPageBytes) {
        std::memcpy(data + off, page(table[off / kPageBytes]), std::min(kPageBytes, d.end - off));
    }
    return ReassembledFrame{out, d.header_len + d.end};
}

uint64_t* IpReassembler::counter(FragmentStatus status) noexcept {
    switch (status) {
    case FragmentStatus::Duplicate:
        return &stats_.duplicates;
    case FragmentStatus::Overlap:
        return &stats_.overlaps;
    case FragmentStatus::ConflictingOverlap:
        return &stats_.conflicting_overlaps;
    case FragmentStatus::TooManyFragments:
        return &stats_.too_many_fragments;
    case FragmentStatus::Oversize:
        return &stats_.oversize;
    case FragmentStatus::MemoryExhausted:
        return &stats_.memory_exhausted;
    case FragmentStatus::DatagramFailed:
        return &stats_.discarded;
    case FragmentStatus::Invalid:
        return &stats_.invalid;
    case FragmentStatus::Held:
    case FragmentStatus::NotFragment:
        break;
    }
    return nullptr;
}

uint32_t IpReassembler::lookup(const Key& key, uint64_t now_ns) noexcept {
    const uint32_t hash = hash_words(&key, sizeof(Key), config_.hash_seed);
    const uint32_t slot = find(key, hash);
    if (slot == kNone) {
        return create(key, hash, now_ns);
    }
    if (!expired(slot, now_ns)) {
        return slot;
    }
    if (datagrams_[slot].state == Datagram::State::Active) {
        ++stats_.timed_out;
    }
    release(slot);
    return create(key, hash, now_ns);
}

// Anything that leaves two ways to read the datagram: a size past its limits, a second end,
// bytes past the end.
FragmentStatus IpReassembler::check_bounds(uint32_t slot, const Fragment& frag) const noexcept {
    const Datagram& d = datagrams_[slot];
    const uint32_t frag_end = frag.offset + frag.len;
    const uint32_t held_end = d.range_count == 0 ? 0 : ranges(slot)[d.range_count - 1].end;
    const bool end_known = d.end != kUnknownEnd;
    const uint32_t cap = limit(slot, frag);
    if (frag_end > cap || held_end > cap || (end_known && d.end > cap)) {
        return FragmentStatus::Oversize;
    }
    if (frag.more) {
        return end_known && frag_end > d.end ? FragmentStatus::Invalid : FragmentStatus::Held;
    }
    return (end_known && d.end != frag_end) || held_end > frag_end ? FragmentStatus::Invalid
                                                                   : FragmentStatus::Held;
}

// Compares the fragment with the held bytes it shares; returns how many it shares and sets
// `conflict` when one of them differs.
uint32_t IpReassembler::compare_shared(
        uint32_t slot, const Fragment& frag, bool& conflict) const noexcept {
    const Range* r = ranges(slot);
    const uint32_t frag_end = frag.offset + frag.len;
    uint32_t shared = 0;
    conflict = false;
    for (uint32_t i = 0; i < datagrams_[slot].range_count && r[i].begin < frag_end; ++i) {
        const uint32_t b = std::max(r[i].begin, frag.offset);
        const uint32_t e = std::min(r[i].end, frag_end);
        if (b < e) {
            shared += e - b;
            conflict = conflict || !held_equal(slot, b, frag.data + (b - frag.offset), e - b);
        }
    }
    return shared;
}

// Writes the bytes of the fragment no held range has (the first copy of a byte stays).
void IpReassembler::write_new(uint32_t slot, const Fragment& frag) noexcept {
    const Range* r = ranges(slot);
    const uint32_t frag_end = frag.offset + frag.len;
    uint32_t cur = frag.offset;
    for (uint32_t i = 0; i < datagrams_[slot].range_count && r[i].begin < frag_end; ++i) {
        if (r[i].end <= cur) {
            continue;
        }
        if (r[i].begin > cur) {
            write(slot, cur, frag.data + (cur - frag.offset), r[i].begin - cur);
        }
        cur = r[i].end;
    }
    if (cur < frag_end) {
        write(slot, cur, frag.data + (cur - frag.offset), frag_end - cur);
    }
    add_range(slot, frag.offset, frag_end);
}

FragmentStatus IpReassembler::take(
        uint32_t slot, const uint8_t* frame, const Fragment& frag) noexcept {
    Datagram& d = datagrams_[slot];
    bool conflict = false;
    const uint32_t shared = compare_shared(slot, frag, conflict);
    FragmentStatus status = FragmentStatus::Duplicate;
    if (shared < frag.len) {
        if (d.fragments >= config_.max_fragments_per_datagram) {
            return FragmentStatus::TooManyFragments;
        }
        if (!reserve_pages(slot, frag.offset, frag.offset + frag.len)) {
            return FragmentStatus::MemoryExhausted;
        }
        write_new(slot, frag);
        ++d.fragments;
        if (frag.offset == 0 && !d.header_saved) {
            save_header(slot, frame, frag);
        }
        status = shared == 0 ? FragmentStatus::Held : FragmentStatus::Overlap;
    }
    if (!frag.more) {
        d.end = frag.offset + frag.len;
    }
    return conflict ? FragmentStatus::ConflictingOverlap : status;
}

bool IpReassembler::complete(uint32_t slot) const noexcept {
    const Datagram& d = datagrams_[slot];
    return d.end != kUnknownEnd && d.header_saved && d.range_count == 1
            && ranges(slot)[0].begin == 0 && ranges(slot)[0].end == d.end;
}

ReassemblyResult IpReassembler::add(
        const uint8_t* frame, uint32_t len, const PacketInfo& info, uint64_t now_ns) noexcept {
    ReassemblyResult result;
    if (!info.fragment) {
        return result;
    }
    ++stats_.fragments;

    // Check the fragment on its own: a bad one changes no datagram.
    Fragment frag;
    Key key{};
    if (!parse(frame, len, info, frag, key) || frag.len == 0 || (frag.more && frag.len % 8 != 0)
            || (frag.offset == 0 && frag.header_len > kMaxHeaderBytes)) {
        result.status = FragmentStatus::Invalid;
        ++stats_.invalid;
        return result;
    }

    // Find or start its datagram; one given up earlier only counts it.
    const uint32_t slot = lookup(key, now_ns);
    if (datagrams_[slot].state == Datagram::State::Failed) {
        result.status = FragmentStatus::DatagramFailed;
        ++stats_.discarded;
        return result;
    }

    // Keep its new bytes, or give the datagram up.
    result.status = check_bounds(slot, frag);
    if (result.status == FragmentStatus::Held) {
        result.status = take(slot, frame, frag);
    }
    if (uint64_t* reason = counter(result.status); reason != nullptr) {
        ++*reason;
    }
    switch (result.status) {
    case FragmentStatus::TooManyFragments:
    case FragmentStatus::Oversize:
    case FragmentStatus::MemoryExhausted:
    case FragmentStatus::Invalid:
        give_up(slot);
        return result;
    default:
        break;
    }

    // Complete: one range from 0 to the known end.
    if (complete(slot)) {
        result.frame = rebuild(slot);
        ++stats_.datagrams_completed;
        release(slot);
    }
    return result;
}

void IpReassembler::expire(uint64_t now_ns, uint32_t budget) noexcept {
    for (uint32_t done = 0; done < budget && oldest_ != kNone && expired(oldest_, now_ns); ++done) {
        if (datagrams_[oldest_].state == Datagram::State::Active) {
            ++stats_.timed_out;
        }
        release(oldest_);
    }
}

}  // namespace exfiltap::dataplane
