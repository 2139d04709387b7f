#include "tests/gen/expect.h"

#include <algorithm>
#include <fstream>
#include <stdexcept>
#include <utility>

#include <nlohmann/json.hpp>

namespace exfiltap::gen {
namespace {

bool is_outbound(const Endpoint& from, const Endpoint& to) {
    return from.host.ip.inside() && !to.host.ip.inside();
}

}  // namespace

void Expectations::add(ValueClass cls, const std::string& digits, const Endpoint& from,
        const Endpoint& to, uint8_t proto, std::string note) {
    values_.push_back(Value{cls, digits, from, to, proto, std::move(note)});
}

size_t Expectations::outbound() const {
    return static_cast<size_t>(std::count_if(values_.begin(), values_.end(),
            [](const Value& v) { return is_outbound(v.from, v.to); }));
}

void Expectations::write(const std::string& path, const std::string& scenario, uint64_t seed,
        uint64_t packets, uint64_t bytes, uint64_t flows) const {
    using Json = nlohmann::ordered_json;
    Json outbound = Json::array();
    Json not_outbound = Json::array();
    for (const Value& v : values_) {
        Json item;
        item["class"] = v.cls == ValueClass::kPaymentCard ? "payment_card" : "us_ssn";
        item["value"] = v.digits;
        if (!is_outbound(v.from, v.to)) {
            item["why"] = v.from.host.ip.inside() ? "internal" : "inbound";
        }
        item["src_ip"] = v.from.host.ip.str();
        item["src_port"] = v.from.port;
        item["dest_ip"] = v.to.host.ip.str();
        item["dest_port"] = v.to.port;
        item["proto"] = v.proto == kProtoTcp ? "TCP" : "UDP";
        item["note"] = v.note;
        (is_outbound(v.from, v.to) ? outbound : not_outbound).push_back(std::move(item));
    }
    Json doc;
    doc["scenario"] = scenario;
    doc["seed"] = seed;
    doc["packets"] = packets;
    doc["bytes"] = bytes;
    doc["flows"] = flows;
    doc["outbound_findings"] = std::move(outbound);
    doc["not_outbound"] = std::move(not_outbound);
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out << doc.dump(2) << '\n';
    out.close();
    if (!out) {
        throw std::runtime_error("cannot write " + path);
    }
}

}  // namespace exfiltap::gen
