#!/usr/bin/env bash
# Runs cluster/decide's tests (scenarios, properties, 10,000 random fault
# schedules) and says how many schedules ran; on a failure, the whole output.
set -uo pipefail
cd "$(dirname "$0")/.."
start=$(date +%s)
out=$(go test -count=1 -timeout 10m -v ./cluster/decide 2>&1)
rc=$?
if [ $rc -ne 0 ]; then
	echo "$out"
	exit $rc
fi
scenarios=$(echo "$out" | grep -c -- '--- PASS: TestScenarios/')
echo "$out" | grep -E '^decide: explored'
echo "decide: $scenarios scenario files passed; cluster/decide took $(( $(date +%s) - start )) s"
echo "$out" | grep -E '^ok'
