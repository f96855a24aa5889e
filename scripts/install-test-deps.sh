#!/usr/bin/env bash
# System packages the test suite and the bench use, installed only where missing (Debian; needs root or sudo).
set -euo pipefail
need=()
command -v redis-server >/dev/null || need+=(redis-server)
[ -x /usr/lib/chromium/chromium ] || need+=(chromium)   # the web page's browser test (Playwright drives it)
command -v espeak-ng >/dev/null || need+=(espeak-ng)    # the fallback voice's test
command -v promtool >/dev/null || need+=(prometheus)    # promtool checks the shipped alerting rules
command -v wrk >/dev/null || need+=(wrk)                # make bench: the cached 32-client load (Python's client tops out first)
if [ ${#need[@]} -eq 0 ]; then exit 0; fi
SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
if ! command -v apt-get >/dev/null; then
  echo "install-test-deps: please install ${need[*]} (tests that need them will skip)" >&2; exit 0
fi
echo "install-test-deps: installing ${need[*]}" >&2
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
