#!/bin/sh
# Checks deploy/prometheus with promtool: `check rules` on the rules and `test rules` on their
# unit tests. Exit 77 (meson: skipped) without promtool, unless EXFILTAP_REQUIRE_SHARED=1.
set -eu
dir=${1:?usage: promtool_check.sh DEPLOY_PROMETHEUS_DIR}
if ! command -v promtool >/dev/null 2>&1; then
    if [ "${EXFILTAP_REQUIRE_SHARED:-}" = 1 ]; then
        echo "promtool_check: EXFILTAP_REQUIRE_SHARED=1 but promtool is missing (apt-get install prometheus)" >&2
        exit 1
    fi
    echo "promtool_check: SKIP: promtool is missing (apt-get install prometheus)"
    exit 77
fi
cd "$dir"
promtool check rules exfiltap-rules.yml
promtool test rules exfiltap-rules.test.yml
