// The fuzz targets' assertion: aborts (a crash for libFuzzer, which keeps the input) naming
// the target and the line of the check that failed.
#pragma once

#include <cstdio>
#include <cstdlib>

namespace exfiltap::fuzz {

inline void check(bool condition, const char* target, int line) {
    if (!condition) {
        std::fprintf(stderr, "%s: check at line %d failed\n", target, line);
        std::abort();
    }
}

}  // namespace exfiltap::fuzz
