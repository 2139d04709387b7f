// The shipped list of sanctioned destinations (DESIGN.md "Response"): address blocks that
// their operators publish as stable and as the home of their software update or backup
// services. Compiled in, so an installed binary has it; `response.sanctioned.defaults: false`
// leaves it out. An entry goes in only with the operator's own publication named next to it:
// most update services (Windows Update, Linux distribution mirrors) come from CDNs whose
// addresses change and are deliberately not published, and a range guessed from DNS answers
// would exempt whoever else shares the CDN.
#include <array>
#include <string>
#include <string_view>

#include "control/policy.h"

namespace exfiltap::control {
namespace {

struct Shipped {
    std::string_view name;
    std::string_view prefix;
};

constexpr std::array<Shipped, 1> kShipped = {{
        // Apple's own block: Apple support article HT203609 (Apple push notifications behind
        // a firewall) tells administrators to allow 17.0.0.0/8 and states that Apple owns it.
        // It holds Apple's software update catalogue and iCloud, including iCloud device
        // backup; update downloads that Apple serves through CDNs lie outside it and are not
        // exempted. Sites that count uploads to personal iCloud storage as exfiltration set
        // defaults: false.
        {"apple", "17.0.0.0/8"},
}};

}  // namespace

std::vector<SanctionedPrefix> default_sanctioned() {
    std::vector<SanctionedPrefix> list;
    list.reserve(kShipped.size());
    for (const Shipped& shipped : kShipped) {
        auto prefix = Prefix::parse(std::string(shipped.prefix));
        if (prefix) {  // the unit test checks that every shipped entry parses
            list.push_back(SanctionedPrefix{std::string(shipped.name), *prefix});
        }
    }
    return list;
}

}  // namespace exfiltap::control
