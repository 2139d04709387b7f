// libFuzzer target for the behaviour engine's inputs: the saved baselines text (a file in
// the state directory), the public suffix list text, and streams of flow reports and
// application events with arbitrary names, times and addresses. The first byte picks which.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>

#include "detectors/behaviour.h"
#include "detectors/public_suffix.h"

namespace {

using namespace exfiltap::detectors;  // NOLINT(google-build-using-namespace): fuzz target

BehaviourConfig small_config() {
    BehaviourConfig c;
    c.dns_tunnel.public_suffix_list = "";
    c.dns_tunnel.min_queries = 3;
    c.dns_tunnel.min_distinct = 2;
    c.external_login.source_failures = 2;
    c.mail_attachment_out.count = 2;
    c.mail_attachment_out.internal_domains = {"corp.example"};
    c.baseline_deviation.warmup_windows = 1;
    c.baseline_deviation.window_s = 60;
    c.baseline_deviation.floor_bytes = 1;
    c.external_upload.flow_bytes = 1000;
    c.external_upload.host_bytes = {1000, 1000, 1000, 1000};
    c.internal_transfer.flow_bytes = 1000;
    c.internal_transfer.host_bytes = 1000;
    c.encrypted_asymmetry.min_bytes = 100;
    c.limits.max_hosts = 4;
    c.limits.max_flows = 4;
    c.limits.max_domains = 4;
    c.limits.max_login_keys = 4;
    c.limits.max_sources_per_key = 2;
    c.lateral_fanout.scan_hosts = 3;
    c.lateral_fanout.scan_services = 4;
    c.lateral_fanout.warmup_windows = 1;
    c.lateral_fanout.window_s = 60;
    c.lateral_fanout.floor_hosts = 1;
    c.lateral_fanout.floor_services = 1;
    c.share_enumeration.shares = 2;
    c.first_access.warmup_s = 1;
    c.staging.host_bytes = {1000, 1000, 1000, 1000};
    c.staging.warmup_windows = 1;
    c.staging.window_s = 60;
    c.staging.floor_bytes = 1;
    c.limits.max_distinct_per_host = 3;
    c.limits.max_shares_per_host = 2;
    c.limits.max_first_access_pairs = 16;
    return c;
}

BehaviourEngine make_engine() {
    AddressPrefix internal;
    internal.ip_version = 4;
    internal.length = 8;
    internal.addr[0] = 10;
    AddressPrefix sanctioned;
    sanctioned.ip_version = 4;
    sanctioned.length = 24;
    sanctioned.addr = {198, 51, 100};
    // One asset with every source role, restricted, so first_access and staging can fire.
    static const AssetInventory assets = [] {
        AssetInventory inventory;
        Asset vault;
        vault.name = "vault";
        vault.classification = Classification::Restricted;
        vault.roles = (1U << static_cast<unsigned>(AssetRole::FileServer))
                | (1U << static_cast<unsigned>(AssetRole::Database));
        AddressPrefix p;
        p.ip_version = 4;
        p.length = 16;
        p.addr = {10, 51};
        vault.prefixes = {p};
        inventory.add(vault);
        return inventory;
    }();
    return BehaviourEngine(small_config(), &assets, {internal}, {{"updates", sanctioned}});
}

void fuzz_baselines(std::string_view text) {
    BehaviourEngine engine = make_engine();
    if (!engine.load_baselines(text).ok()) {
        return;
    }
    // What loads must save and load again to the same text.
    const std::string saved = engine.save_baselines();
    BehaviourEngine again = make_engine();
    if (!again.load_baselines(saved).ok() || again.save_baselines() != saved) {
        std::abort();
    }
}

void fuzz_suffixes(std::string_view text) {
    const size_t split = text.find('\0');
    const PublicSuffixList list = PublicSuffixList::parse(text.substr(0, split));
    if (split == std::string_view::npos) {
        return;
    }
    std::string_view names = text.substr(split + 1);
    while (!names.empty()) {
        const size_t end = std::min(names.find('\n'), names.size());
        const std::string_view name = names.substr(0, end);
        bool listed = false;
        const std::string_view domain = list.registered_domain(name, &listed);
        if (domain.size() > name.size() || name.substr(name.size() - domain.size()) != domain) {
            std::abort();
        }
        names.remove_prefix(std::min(end + 1, names.size()));
    }
}

/// Records of: kind, 2 address bytes each end, time step, a value, a name.
void fuzz_events(const uint8_t* data, size_t size) {
    BehaviourEngine engine = make_engine();
    uint64_t time_ns = 1700000000ULL * 1000000000ULL;
    size_t at = 0;
    while (size - at >= 10) {
        const uint8_t* r = data + at;
        at += 10;
        FlowTuple flow;
        flow.client = {static_cast<uint8_t>(r[1] & 1 ? 10 : 203), 0, r[2], r[3]};
        flow.server = {static_cast<uint8_t>(r[1] & 2 ? 10 : 198), 51, r[4], r[5]};
        flow.client_port = r[6];
        flow.server_port = static_cast<uint16_t>(r[1] >> 2);
        flow.flow_id = r[3];
        time_ns += static_cast<uint64_t>(r[7]) * (r[1] & 0x80 ? 60000000000ULL : 100000000ULL);
        const uint64_t value = static_cast<uint64_t>(r[8]) << (r[9] & 31);
        const size_t name_len = std::min<size_t>(r[9] >> 2, size - at);
        const std::string name(reinterpret_cast<const char*>(data + at), name_len);
        at += name_len;
        const uint8_t kind = r[0] % 8;
        if (kind == 0) {
            engine.on_flow_bytes(flow, static_cast<AppProto>(r[2] % kAppProtoCount), name, time_ns,
                    value, r[5], (r[6] & 1) != 0);
            continue;
        }
        if (kind == 7) {
            engine.advance(time_ns);
            continue;
        }
        AppEvent e;
        static constexpr AppEventKind kKinds[] = {AppEventKind::Archive, AppEventKind::FileTransfer,
                AppEventKind::Login, AppEventKind::MailMessage, AppEventKind::DnsQuery,
                AppEventKind::TreeConnect};
        e.kind = kKinds[kind - 1];
        e.proto = static_cast<AppProto>(r[4] % kAppProtoCount);
        e.outcome = static_cast<LoginOutcome>(r[5] % 3);
        e.upload = (r[6] & 2) != 0;
        e.qtype = r[8];
        e.bytes = value;
        e.attachments = r[6] & 3;
        e.attachment_bytes = value;
        e.entropy_milli = static_cast<uint16_t>(value & 0x1fff);
        e.set(e.name, name);
        e.set(e.user, name.substr(0, name.size() / 2));
        e.set(e.host, name.substr(name.size() / 2));
        engine.on_app_event(flow, time_ns, e);
    }
    for (const BehaviourFinding& f : engine.take_findings()) {
        if (f.detector.empty() || f.reason.empty()) {
            std::abort();
        }
    }
    const std::string saved = engine.save_baselines();
    BehaviourEngine again = make_engine();
    if (!again.load_baselines(saved).ok()) {
        std::abort();
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    if (size == 0) {
        return 0;
    }
    const std::string_view text(reinterpret_cast<const char*>(data + 1), size - 1);
    switch (data[0] % 3) {
    case 0:
        fuzz_baselines(text);
        break;
    case 1:
        fuzz_suffixes(text);
        break;
    default:
        fuzz_events(data + 1, size - 1);
        break;
    }
    return 0;
}
