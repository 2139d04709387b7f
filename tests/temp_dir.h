// A private temporary folder for a test, removed with everything in it.
#pragma once

#include <stdlib.h>

#include <filesystem>
#include <string>

namespace exfiltap::test_support {

class TempDir {
public:
    /// Creates /tmp/<prefix>_XXXXXX; path() is empty when that failed.
    explicit TempDir(const std::string& prefix = "exfiltap") {
        std::string pattern = "/tmp/" + prefix + "_XXXXXX";
        if (mkdtemp(pattern.data()) != nullptr) {
            path_ = pattern;
        }
    }
    ~TempDir() {
        if (!path_.empty()) {
            std::error_code ec;
            std::filesystem::remove_all(path_, ec);
        }
    }
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;
    TempDir(TempDir&&) = delete;
    TempDir& operator=(TempDir&&) = delete;

    const std::string& path() const { return path_; }
    /// PATH/name.
    std::string file(const std::string& name) const { return path_ + "/" + name; }

private:
    std::string path_;
};

}  // namespace exfiltap::test_support
