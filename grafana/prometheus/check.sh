#!/usr/bin/env bash
# `npm run test:rules`: validates the Prometheus config and rules beside this file and runs the rules' unit tests.
# promtool comes with Debian's prometheus package (.ci/run installs it). Never skipped: without it, this fails.
set -euo pipefail
cd "$(dirname "$0")"
if ! command -v promtool >/dev/null 2>&1; then
  echo "promtool not found: install Debian's prometheus package (apt-get install prometheus)" >&2
  exit 1
fi
promtool check rules alerts.yaml
promtool test rules alerts.test.yaml
promtool check config prometheus.yml
