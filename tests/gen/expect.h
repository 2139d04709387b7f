#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "tests/gen/flow.h"

namespace exfiltap::gen {

enum class ValueClass {
    kPaymentCard,
    kUsSsn,
};

// Ground truth of one capture: every sensitive value the generator put into a flow
// direction, sorted by where it went. A value counts once per flow direction.
class Expectations {
public:
    // Records value (digits only) sent from one end to the other. Direction by address:
    // inside to outside is outbound, outside to inside inbound, inside to inside internal.
    void add(ValueClass cls, const std::string& digits, const Endpoint& from, const Endpoint& to,
            uint8_t proto, std::string note);

    // Writes the expect file. Throws std::runtime_error on I/O errors.
    void write(const std::string& path, const std::string& scenario, uint64_t seed,
            uint64_t packets, uint64_t bytes, uint64_t flows) const;

    size_t outbound() const;
    size_t not_outbound() const { return values_.size() - outbound(); }

private:
    struct Value {
        ValueClass cls;
        std::string digits;
        Endpoint from;
        Endpoint to;
        uint8_t proto;
        std::string note;
    };

    std::vector<Value> values_;
};

}  // namespace exfiltap::gen
