#include "detectors/public_suffix.h"

#include <cerrno>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <system_error>
#include <vector>

namespace exfiltap::detectors {
namespace {

std::string lower_ascii(std::string_view text) {
    std::string out(text);
    for (char& c : out) {
        if (c >= 'A' && c <= 'Z') {
            c = static_cast<char>(c - 'A' + 'a');
        }
    }
    return out;
}

std::string_view last_label(std::string_view name) {
    const size_t dot = name.rfind('.');
    return dot == std::string_view::npos ? name : name.substr(dot + 1);
}

/// Start offsets of each label of `name` ("a.b.c" gives 0, 2, 4).
std::vector<size_t> label_starts(std::string_view name) {
    std::vector<size_t> starts{0};
    for (size_t i = 0; i < name.size(); ++i) {
        if (name[i] == '.') {
            starts.push_back(i + 1);
        }
    }
    return starts;
}

constexpr uintmax_t kMaxFileBytes = 16 * 1000 * 1000;

}  // namespace

Result<PublicSuffixList> PublicSuffixList::load_file(const std::string& path) {
    // A device (/dev/zero) or a directory would be read forever or fail oddly: only a
    // regular file of a sane size is a list (Debian's is about 230 KB).
    std::error_code ec;
    const auto status = std::filesystem::status(path, ec);
    if (status.type() == std::filesystem::file_type::not_found) {
        return make_error(path + ": cannot open the public suffix list: no such file");
    }
    if (ec || !std::filesystem::is_regular_file(status)) {
        return make_error(path + ": not a regular file; the public suffix list is a text file");
    }
    const auto size = std::filesystem::file_size(path, ec);
    if (ec || size > kMaxFileBytes) {
        return make_error(path + ": larger than " + std::to_string(kMaxFileBytes / 1000000)
                + " MB; the public suffix list is about 0.25 MB");
    }
    std::ifstream in(path, std::ios::binary);
    if (!in) {
        return make_error(path + ": cannot open the public suffix list: "
                + std::generic_category().message(errno));
    }
    std::ostringstream text;
    text << in.rdbuf();
    if (in.bad()) {
        return make_error(path + ": cannot read the public suffix list");
    }
    PublicSuffixList list = parse(text.str());
    if (list.empty()) {
        return make_error(path + ": holds no public suffix rules; is this the list?");
    }
    return list;
}

PublicSuffixList PublicSuffixList::parse(std::string_view text) {
    PublicSuffixList list;
    size_t at = 0;
    while (at < text.size()) {
        size_t end = text.find('\n', at);
        if (end == std::string_view::npos) {
            end = text.size();
        }
        std::string_view line = text.substr(at, end - at);
        at = end + 1;
        // A rule is the first word of its line; the rest (and comment lines) are ignored.
        const size_t space = line.find_first_of(" \t\r");
        if (space != std::string_view::npos) {
            line = line.substr(0, space);
        }
        if (line.empty() || line.starts_with("//")) {
            continue;
        }
        std::string rule = lower_ascii(line);
        list.tlds_.emplace(last_label(rule));
        if (rule.starts_with("!")) {
            list.exception_.insert(rule.substr(1));
        } else if (rule.starts_with("*.")) {
            list.wildcard_.insert(rule.substr(2));
        } else if (rule != "*") {
            list.exact_.insert(std::move(rule));
        }
    }
    return list;
}

std::string_view PublicSuffixList::registered_domain(std::string_view name, bool* listed) const {
    const std::vector<size_t> starts = label_starts(name);
    const size_t labels = starts.size();
    if (empty()) {
        if (listed != nullptr) {
            *listed = true;
        }
        return labels <= 2 ? name : name.substr(starts[labels - 2]);
    }
    if (listed != nullptr) {
        *listed = tlds_.count(std::string(last_label(name))) != 0;
    }
    // The public suffix starts at label `suffix`; the prevailing rule is the one with the
    // most labels, so candidates are tried from the longest down. Without a match the
    // implicit rule "*" makes the last label the suffix.
    size_t suffix = labels - 1;
    for (size_t i = 0; i < labels; ++i) {
        const std::string candidate(name.substr(starts[i]));
        if (exception_.count(candidate) != 0) {
            suffix = i + 1;
            break;
        }
        if (exact_.count(candidate) != 0) {
            suffix = i;
            break;
        }
        if (i + 1 < labels && wildcard_.count(std::string(name.substr(starts[i + 1]))) != 0) {
            suffix = i;
            break;
        }
    }
    if (suffix == 0 || suffix >= labels) {
        return name;
    }
    return name.substr(starts[suffix - 1]);
}

}  // namespace exfiltap::detectors
