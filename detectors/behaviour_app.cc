// The behaviour engine's application-event side: archives leaving, unexpected file writes,
// logins from outside, mail attachments to outside and DNS tunnels.
#include <algorithm>
#include <string>

#include "detectors/behaviour.h"
#include "detectors/behaviour_impl.h"

namespace exfiltap::detectors {
namespace {

std::string endpoint(const FlowTuple& flow, bool server) {
    const std::string text = address_text(flow.ip_version, server ? flow.server : flow.client);
    const uint16_t port = server ? flow.server_port : flow.client_port;
    return flow.ip_version == 6 ? "[" + text + "]:" + std::to_string(port)
                                : text + ":" + std::to_string(port);
}

std::string user_text(std::string_view user) {
    return user.empty() ? std::string() : " as user '" + std::string(user) + "'";
}

/// "7.91" from 7912 (two decimals, truncated).
std::string milli_text(uint32_t milli) {
    const uint32_t hundredths = milli / 10;
    const uint32_t frac = hundredths % 100;
    return std::to_string(hundredths / 100) + "." + (frac < 10 ? "0" : "") + std::to_string(frac);
}

/// "12.3" from 123.
std::string tenths_text(uint64_t tenths) {
    return std::to_string(tenths / 10) + "." + std::to_string(tenths % 10);
}

/// The domain of a mail address ("Bob <bob@Example.COM>" gives "example.com").
std::string mail_domain(std::string_view address) {
    const size_t at = address.rfind('@');
    if (at == std::string_view::npos) {
        return {};
    }
    std::string domain(address.substr(at + 1));
    while (!domain.empty() && (domain.back() == '>' || domain.back() == '.')) {
        domain.pop_back();
    }
    for (char& c : domain) {
        if (c >= 'A' && c <= 'Z') {
            c = static_cast<char>(c - 'A' + 'a');
        }
    }
    return domain;
}

bool domain_within(const std::string& domain, const std::vector<std::string>& internal) {
    return std::any_of(internal.begin(), internal.end(), [&](const std::string& d) {
        return domain == d
                || (domain.size() > d.size() && domain.ends_with(d)
                        && domain[domain.size() - d.size() - 1] == '.');
    });
}

}  // namespace

void BehaviourEngine::Impl::on_app_event(
        const FlowTuple& flow, uint64_t time_ns, const AppEvent& event) {
    advance(time_ns);
    const uint64_t t = now_ns;
    switch (event.kind) {
    case AppEventKind::Archive:
        archive(flow, t, event);
        break;
    case AppEventKind::FileTransfer:
        file_write(flow, t, event);
        break;
    case AppEventKind::Login:
        login(flow, t, event);
        break;
    case AppEventKind::MailMessage:
        mail(flow, t, event);
        break;
    case AppEventKind::DnsQuery:
        dns_query(flow, t, event);
        break;
    case AppEventKind::TreeConnect:
        tree_connect(flow, t, event);
        break;
    default:
        break;
    }
}

void BehaviourEngine::Impl::archive(const FlowTuple& flow, uint64_t time_ns, const AppEvent& ev) {
    const ArchiveOutConfig& c = config.archive_out;
    if (!c.enabled || !ev.upload || !is_internal(flow.ip_version, flow.client)
            || is_internal(flow.ip_version, flow.server)) {
        return;
    }
    if (c.min_entropy_milli > 0 && ev.entropy_milli != 0
            && ev.entropy_milli < c.min_entropy_milli) {
        return;
    }
    BehaviourFinding f = make(BehaviourDetector::ArchiveOut, c.severity, flow, time_ns);
    f.bytes = ev.bytes;
    f.threshold = c.min_entropy_milli;
    f.app_proto = std::string(app_proto_name(ev.proto));
    f.format = std::string(ev.name_view());
    f.entropy_milli = ev.entropy_milli;
    f.reason = address_text(flow.ip_version, flow.client) + " uploaded " + f.format + " data"
            + (ev.entropy_milli != 0 ? " (entropy " + milli_text(ev.entropy_milli) + " bits/byte)"
                                     : std::string())
            + " over " + f.app_proto + " to external " + endpoint(flow, true);
    emit(std::move(f));
}

void BehaviourEngine::Impl::file_write(
        const FlowTuple& flow, uint64_t time_ns, const AppEvent& ev) {
    const UnexpectedFileWriteConfig& c = config.unexpected_file_write;
    // Mail attachments are mail_attachment_out's business, not file writes.
    if (!c.enabled || !ev.upload || ev.bytes < c.min_bytes || ev.proto == AppProto::Smtp) {
        return;
    }
    const bool client_inside = is_internal(flow.ip_version, flow.client);
    const bool server_inside = is_internal(flow.ip_version, flow.server);
    if (!client_inside && !server_inside) {
        return;
    }
    const Asset* server_asset = asset_of(flow.ip_version, flow.server);
    if (server_asset != nullptr && server_asset->has_role(AssetRole::FileServer)) {
        return;
    }
    if (server_inside ? server_asset == nullptr && !c.unlisted_internal
                      : !c.external || ev.bytes < c.external_min_bytes) {
        return;
    }
    BehaviourFinding f = make(BehaviourDetector::UnexpectedFileWrite, c.severity, flow, time_ns);
    f.bytes = ev.bytes;
    f.threshold = c.min_bytes;
    f.app_proto = std::string(app_proto_name(ev.proto));
    f.file_name = std::string(ev.name_view());
    f.user = std::string(ev.user_view());
    std::string where;
    if (!server_inside) {
        where = "external host " + endpoint(flow, true);
    } else if (server_asset != nullptr) {
        where = endpoint(flow, true) + " (asset " + server_asset->name
                + "), which the asset inventory does not list as a file server";
    } else {
        where = endpoint(flow, true) + ", which the asset inventory does not list as a file server";
    }
    f.reason = address_text(flow.ip_version, flow.client) + " wrote '" + f.file_name + "' ("
            + bytes_text(ev.bytes) + ") over " + f.app_proto + user_text(f.user) + " to " + where;
    emit(std::move(f));
}

size_t BehaviourEngine::Impl::note_source(
        LoginState& state, const FlowTuple& flow, uint64_t time_ns) {
    const uint64_t window = window_ns(config.external_login.window_s);
    auto& sources = state.sources;
    sources.erase(std::remove_if(sources.begin(), sources.end(),
                          [&](const LoginSource& s) { return s.last_ns + window <= time_ns; }),
            sources.end());
    auto it = std::find_if(sources.begin(), sources.end(), [&](const LoginSource& s) {
        return s.ip_version == flow.ip_version && s.addr == flow.client;
    });
    if (it != sources.end()) {
        it->last_ns = time_ns;
        return sources.size();
    }
    if (sources.size() >= std::max<uint32_t>(config.limits.max_sources_per_key, 1)) {
        sources.erase(std::min_element(sources.begin(), sources.end(),
                [](const LoginSource& a, const LoginSource& b) { return a.last_ns < b.last_ns; }));
    }
    sources.push_back(LoginSource{flow.ip_version, flow.client, time_ns});
    return sources.size();
}

void BehaviourEngine::Impl::login(const FlowTuple& flow, uint64_t time_ns, const AppEvent& ev) {
    const ExternalLoginConfig& c = config.external_login;
    if (!c.enabled || is_internal(flow.ip_version, flow.client)
            || !is_internal(flow.ip_version, flow.server)) {
        return;
    }
    const uint64_t window = window_ns(c.window_s);
    const std::string proto(app_proto_name(ev.proto));
    const std::string user(ev.user_view());
    const std::string source = address_text(flow.ip_version, flow.client);
    const std::string window_text = " in " + std::to_string(c.window_s) + " s";
    auto finding = [&](uint64_t count, uint64_t threshold, std::string reason) {
        BehaviourFinding f = make(BehaviourDetector::ExternalLogin, c.severity, flow, time_ns);
        f.count = count;
        f.window_s = c.window_s;
        f.threshold = threshold;
        f.app_proto = proto;
        f.user = user;
        f.reason = std::move(reason);
        emit(std::move(f));
    };

    // Each key is finished before the next is touched: touching may evict.
    {
        LoginState& src = logins.touch(LoginKey{
                LoginKeyKind::Source, AppProto::Unknown, flow.ip_version, flow.client, {}});
        auto& fails = src.failures;
        fails.erase(std::remove_if(fails.begin(), fails.end(),
                            [&](uint64_t at) { return at + window <= time_ns; }),
                fails.end());
        if (ev.outcome == LoginOutcome::Failure) {
            // Only the newest failures matter for the counts; keep a bounded tail.
            if (fails.size() >= 1024) {
                fails.erase(fails.begin());
            }
            fails.push_back(time_ns);
            if (c.source_failures > 0 && fails.size() >= c.source_failures
                    && time_ns >= src.rearm_ns) {
                src.rearm_ns = time_ns + window;
                finding(fails.size(), c.source_failures,
                        source + " failed " + std::to_string(fails.size())
                                + " logins to internal services" + window_text + " (threshold "
                                + std::to_string(c.source_failures) + "); latest over " + proto
                                + " to " + endpoint(flow, true) + user_text(user));
            }
        } else if (ev.outcome == LoginOutcome::Attempt) {
            auto& tries = src.attempts;
            tries.erase(std::remove_if(tries.begin(), tries.end(),
                                [&](uint64_t at) { return at + window <= time_ns; }),
                    tries.end());
            if (tries.size() >= 1024) {
                tries.erase(tries.begin());
            }
            tries.push_back(time_ns);
            if (c.source_attempts > 0 && tries.size() >= c.source_attempts
                    && time_ns >= src.attempts_rearm_ns) {
                src.attempts_rearm_ns = time_ns + window;
                finding(tries.size(), c.source_attempts,
                        source + " started " + std::to_string(tries.size()) + " " + proto
                                + " logins with a hidden outcome to internal services" + window_text
                                + " (threshold " + std::to_string(c.source_attempts)
                                + "); latest to " + endpoint(flow, true) + user_text(user));
            }
        } else if (ev.outcome == LoginOutcome::Success && c.success_after_failures > 0
                && fails.size() >= c.success_after_failures && time_ns >= src.success_rearm_ns) {
            src.success_rearm_ns = time_ns + window;
            finding(fails.size(), c.success_after_failures,
                    source + " logged in over " + proto + " to " + endpoint(flow, true)
                            + user_text(user) + " after " + std::to_string(fails.size())
                            + " failed logins" + window_text + " (threshold "
                            + std::to_string(c.success_after_failures) + ")");
        }
    }
    if (c.service_sources > 0) {
        LoginState& service = logins.touch(
                LoginKey{LoginKeyKind::Service, ev.proto, flow.ip_version, flow.server, {}});
        const size_t n = note_source(service, flow, time_ns);
        if (n >= c.service_sources && time_ns >= service.rearm_ns) {
            service.rearm_ns = time_ns + window;
            finding(n, c.service_sources,
                    std::to_string(n) + " external sources tried " + proto + " logins on "
                            + address_text(flow.ip_version, flow.server) + window_text
                            + " (threshold " + std::to_string(c.service_sources) + "); latest "
                            + source + user_text(user));
        }
    }
    if (c.user_sources > 0 && !user.empty()) {
        LoginState& named =
                logins.touch(LoginKey{LoginKeyKind::User, AppProto::Unknown, 0, {}, user});
        const size_t n = note_source(named, flow, time_ns);
        if (n >= c.user_sources && time_ns >= named.rearm_ns) {
            named.rearm_ns = time_ns + window;
            finding(n, c.user_sources,
                    "user '" + user + "' tried logins from " + std::to_string(n)
                            + " external sources" + window_text + " (threshold "
                            + std::to_string(c.user_sources) + "); latest " + source + " over "
                            + proto + " to " + endpoint(flow, true));
        }
    }
}

void BehaviourEngine::Impl::mail(const FlowTuple& flow, uint64_t time_ns, const AppEvent& ev) {
    const MailAttachmentOutConfig& c = config.mail_attachment_out;
    if (!c.enabled || ev.attachments == 0 || !is_internal(flow.ip_version, flow.client)) {
        return;
    }
    const bool server_outside = !is_internal(flow.ip_version, flow.server);
    const std::string domain = mail_domain(ev.name_view());
    const bool recipient_outside = !c.internal_domains.empty() && !domain.empty()
            && !domain_within(domain, c.internal_domains);
    if (!server_outside && !recipient_outside) {
        return;
    }
    HostState& h = host(flow.ip_version, flow.client);
    BucketWindow& count_window = [&]() -> BucketWindow& {
        if (!h.mail_count || h.mail_count->window_s() != c.window_s) {
            h.mail_count = std::make_unique<BucketWindow>(c.window_s);
            h.mail_bytes = std::make_unique<BucketWindow>(c.window_s);
        }
        return *h.mail_count;
    }();
    count_window.add(time_ns, 1);
    h.mail_bytes->add(time_ns, ev.attachment_bytes);
    const uint64_t messages = count_window.total(time_ns);
    const uint64_t bytes = h.mail_bytes->total(time_ns);
    const bool by_count = c.count > 0 && messages >= c.count;
    const bool by_bytes = c.bytes > 0 && bytes >= c.bytes;
    auto& rearm = h.rearm_ns[static_cast<size_t>(BehaviourDetector::MailAttachmentOut)];
    if ((!by_count && !by_bytes) || time_ns < rearm) {
        return;
    }
    rearm = time_ns + window_ns(c.window_s);
    BehaviourFinding f = make(BehaviourDetector::MailAttachmentOut, c.severity, flow, time_ns);
    f.bytes = bytes;
    f.count = messages;
    f.window_s = c.window_s;
    f.threshold = by_count ? c.count : c.bytes;
    f.app_proto = std::string(app_proto_name(ev.proto));
    f.user = std::string(ev.user_view());
    f.file_name = std::string(ev.host_view());
    f.domain = domain;
    f.reason = address_text(flow.ip_version, flow.client) + " sent " + std::to_string(messages)
            + (messages == 1 ? " message" : " messages") + " with attachments (" + bytes_text(bytes)
            + " decoded) to outside recipients in " + std::to_string(c.window_s) + " s (thresholds "
            + std::to_string(c.count) + " messages or " + bytes_text(c.bytes) + "); latest from "
            + f.user + " to " + std::string(ev.name_view()) + " via "
            + (server_outside ? "external " : "internal ") + endpoint(flow, true)
            + (f.file_name.empty() ? std::string() : ", first attachment '" + f.file_name + "'");
    emit(std::move(f));
}

void BehaviourEngine::Impl::dns_query(const FlowTuple& flow, uint64_t time_ns, const AppEvent& ev) {
    auto hit =
            dns.on_query(flow.ip_version, flow.client, ev.name_view(), ev.qtype, ev.bytes, time_ns);
    if (!hit) {
        return;
    }
    const DnsTunnelConfig& c = config.dns_tunnel;
    BehaviourFinding f = make(BehaviourDetector::DnsTunnel, c.severity, flow, time_ns);
    f.bytes = hit->bytes;
    f.count = hit->queries;
    f.window_s = c.window_s;
    f.threshold = c.min_queries;
    f.app_proto = std::string(app_proto_name(AppProto::Dns));
    f.domain = hit->domain;
    f.reason = address_text(flow.ip_version, flow.client) + " sent " + std::to_string(hit->queries)
            + " DNS queries under " + hit->domain + " in "
            + tenths_text(hit->window_ns / (kNsPerS / 10)) + " s: " + std::to_string(hit->distinct)
            + " distinct subdomains, mean label length " + tenths_text(hit->mean_label_len_tenths)
            + ", entropy " + milli_text(hit->entropy_milli) + " bits/char, "
            + std::to_string(hit->type_share_percent) + "% TXT/NULL/CNAME/MX (score "
            + std::to_string(hit->score) + " of 3, needs " + std::to_string(c.min_score)
            + "; window " + std::to_string(c.window_s) + " s, at least "
            + std::to_string(c.min_queries) + " queries and " + std::to_string(c.min_distinct)
            + " distinct); latest query name " + std::to_string(hit->sample.size())
            + " characters long";
    emit(std::move(f));
}

}  // namespace exfiltap::detectors
