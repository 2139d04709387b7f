#include "detectors/inflate_pool.h"

#define ZLIB_CONST
#include <zlib.h>

#include <algorithm>
#include <array>
#include <limits>

#include "detectors/app_event.h"

namespace exfiltap::detectors {

namespace {

constexpr size_t kArenaAlign = 16;

enum class SlotPhase : uint8_t {
    Sniff,    // Deflate: waiting for the two bytes that tell zlib-wrapped from raw
    Running,  // zlib initialised
    Done,     // status_ holds the final status
};

}  // namespace

struct InflateSlot {
    z_stream stream{};
    InflatePool* pool = nullptr;
    size_t arena_used = 0;
    uint32_t live_allocs = 0;
    bool initialised = false;
    SlotPhase phase = SlotPhase::Done;
    InflateStatus status = InflateStatus::Ok;
    InflateCoding coding = InflateCoding::Gzip;
    uint8_t sniff_len = 0;
    std::array<uint8_t, 2> sniff{};
    uint64_t in_bytes = 0;
    uint64_t out_bytes = 0;
    alignas(kArenaAlign) std::array<uint8_t, kInflateChunkBytes> out{};
    alignas(kArenaAlign) std::array<uint8_t, InflatePool::kArenaBytes> arena{};

    // zlib's allocator: a bump pointer inside the arena. zlib frees everything together in
    // inflateEnd(), so the arena is rewound when the last block goes.
    static voidpf zalloc(voidpf opaque, uInt items, uInt size) noexcept {
        auto* slot = static_cast<InflateSlot*>(opaque);
        const uint64_t bytes = uint64_t{items} * size;
        const uint64_t rounded = (bytes + kArenaAlign - 1) / kArenaAlign * kArenaAlign;
        if (rounded > slot->arena.size() - slot->arena_used) {
            return Z_NULL;
        }
        void* block = slot->arena.data() + slot->arena_used;
        slot->arena_used += static_cast<size_t>(rounded);
        ++slot->live_allocs;
        slot->pool->arena_high_water_ = std::max(slot->pool->arena_high_water_, slot->arena_used);
        return block;
    }

    static void zfree(voidpf opaque, voidpf /*address*/) noexcept {
        auto* slot = static_cast<InflateSlot*>(opaque);
        if (slot->live_allocs > 0 && --slot->live_allocs == 0) {
            slot->arena_used = 0;
        }
    }

    void reset(InflateCoding new_coding) noexcept {
        stream = z_stream{};
        stream.zalloc = &InflateSlot::zalloc;
        stream.zfree = &InflateSlot::zfree;
        stream.opaque = this;
        arena_used = 0;
        live_allocs = 0;
        initialised = false;
        coding = new_coding;
        phase = new_coding == InflateCoding::Deflate ? SlotPhase::Sniff : SlotPhase::Running;
        status = InflateStatus::Ok;
        sniff_len = 0;
        in_bytes = 0;
        out_bytes = 0;
    }

    bool init(int window_bits) noexcept {
        if (inflateInit2(&stream, window_bits) != Z_OK) {
            return false;
        }
        initialised = true;
        return true;
    }

    void finish(InflateStatus final_status) noexcept {
        phase = SlotPhase::Done;
        status = final_status;
        if (final_status == InflateStatus::Capped) {
            ++pool->capped_;
        } else if (final_status == InflateStatus::Failed) {
            ++pool->failed_;
        }
    }

    // Runs zlib over `in` until the input is used up, the stream ends, or a cap or an error
    // stops it. zlib returns Z_OK only after progress and stops when either buffer runs out,
    // so a call that leaves output room has taken all the input.
    void run(std::span<const uint8_t> in, InflateOutputFn out_fn, void* context) noexcept {
        while (!in.empty() && phase == SlotPhase::Running) {
            // avail_in is 32 bits: feed huge spans in slices.
            const size_t slice = std::min<size_t>(in.size(), std::numeric_limits<uInt>::max());
            stream.next_in = in.data();
            stream.avail_in = static_cast<uInt>(slice);
            do {
                stream.next_out = out.data();
                stream.avail_out = static_cast<uInt>(out.size());
                const uInt before_in = stream.avail_in;
                const int rc = ::inflate(&stream, Z_NO_FLUSH);
                in_bytes += before_in - stream.avail_in;
                if (!deliver(out.size() - stream.avail_out, out_fn, context)) {
                    finish(InflateStatus::Capped);
                } else if (rc == Z_STREAM_END) {
                    finish(InflateStatus::Finished);
                } else if (rc == Z_BUF_ERROR) {
                    break;  // no progress possible without more input
                } else if (rc != Z_OK) {
                    finish(InflateStatus::Failed);
                }
            } while (phase == SlotPhase::Running && stream.avail_out == 0);
            in = in.subspan(slice - stream.avail_in);
            if (phase == SlotPhase::Running && stream.avail_in != 0) {
                finish(InflateStatus::Failed);  // zlib kept input without an error: give up
            }
        }
    }

    // Hands `produced` bytes of the output buffer on, cut at the output cap; false when the
    // output or ratio cap is reached.
    bool deliver(size_t produced, InflateOutputFn out_fn, void* context) noexcept {
        bool within = true;
        if (produced > kInflateMaxOutputBytes - out_bytes) {
            produced = static_cast<size_t>(kInflateMaxOutputBytes - out_bytes);
            within = false;
        }
        if (produced > 0) {
            out_bytes += produced;
            out_fn(context, std::span<const uint8_t>(out.data(), produced));
        }
        if (out_bytes > kInflateRatioFloorBytes && out_bytes > in_bytes * kInflateMaxRatio) {
            within = false;
        }
        return within;
    }
};

InflatePool::InflatePool(size_t max_decoders)
    : capacity_(max_decoders),
      free_count_(max_decoders),
      slots_(std::make_unique<InflateSlot[]>(max_decoders)),
      free_(std::make_unique<uint32_t[]>(max_decoders)) {
    for (size_t i = 0; i < max_decoders; ++i) {
        slots_[i].pool = this;
        free_[i] = static_cast<uint32_t>(max_decoders - 1 - i);
    }
}

InflatePool::~InflatePool() = default;

size_t InflatePool::slot_bytes() noexcept {
    return sizeof(InflateSlot);
}

InflateSlot* InflatePool::acquire() noexcept {
    if (free_count_ == 0) {
        ++exhausted_;
        return nullptr;
    }
    return &slots_[free_[--free_count_]];
}

void InflatePool::release(InflateSlot* slot) noexcept {
    free_[free_count_++] = static_cast<uint32_t>(slot - slots_.get());
}

Inflater& Inflater::operator=(Inflater&& other) noexcept {
    if (this != &other) {
        end();
        slot_ = other.slot_;
        other.slot_ = nullptr;
    }
    return *this;
}

bool Inflater::begin(InflatePool* pool, InflateCoding coding) noexcept {
    end();
    if (pool == nullptr) {
        return false;
    }
    InflateSlot* slot = pool->acquire();
    if (slot == nullptr) {
        return false;
    }
    slot->reset(coding);
    // Gzip: windowBits 15 + 32 takes a gzip or zlib header, as servers that say "gzip" and
    // send zlib exist.
    if (coding == InflateCoding::Gzip && !slot->init(15 + 32)) {
        slot->finish(InflateStatus::Failed);
    }
    slot_ = slot;
    return true;
}

InflateStatus Inflater::feed(
        std::span<const uint8_t> in, InflateOutputFn out, void* context) noexcept {
    if (slot_ == nullptr) {
        return InflateStatus::Ok;
    }
    InflateSlot& slot = *slot_;
    if (slot.phase == SlotPhase::Sniff) {
        while (slot.sniff_len < slot.sniff.size() && !in.empty()) {
            slot.sniff[slot.sniff_len++] = in.front();
            in = in.subspan(1);
        }
        if (slot.sniff_len < slot.sniff.size()) {
            return InflateStatus::Ok;
        }
        // RFC 1950 header: method 8, window <= 32 KiB, header check a multiple of 31.
        const unsigned cmf = slot.sniff[0];
        const unsigned flg = slot.sniff[1];
        const bool zlib_wrapped =
                (cmf & 0x0f) == 8 && (cmf >> 4) <= 7 && (cmf * 256 + flg) % 31 == 0;
        slot.phase = SlotPhase::Running;
        if (!slot.init(zlib_wrapped ? 15 : -15)) {
            slot.finish(InflateStatus::Failed);
            return slot.status;
        }
        slot.run(std::span<const uint8_t>(slot.sniff.data(), slot.sniff.size()), out, context);
    }
    slot.run(in, out, context);
    return slot.phase == SlotPhase::Done ? slot.status : InflateStatus::Ok;
}

namespace {

void to_object_sink(void* context, std::span<const uint8_t> data) noexcept {
    static_cast<ObjectSink*>(context)->object_data(data);
}

}  // namespace

InflateStatus Inflater::feed(std::span<const uint8_t> in, ObjectSink& out) noexcept {
    return feed(in, &to_object_sink, &out);
}

void Inflater::end() noexcept {
    if (slot_ == nullptr) {
        return;
    }
    if (slot_->initialised) {
        inflateEnd(&slot_->stream);
        slot_->initialised = false;
    }
    slot_->pool->release(slot_);
    slot_ = nullptr;
}

uint64_t Inflater::input_bytes() const noexcept {
    return slot_ == nullptr ? 0 : slot_->in_bytes;
}

uint64_t Inflater::output_bytes() const noexcept {
    return slot_ == nullptr ? 0 : slot_->out_bytes;
}

}  // namespace exfiltap::detectors
