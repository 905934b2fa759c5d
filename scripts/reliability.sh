#!/usr/bin/env bash
# Runs the reliability tests (faults, kill -9, load, hostile input, secrets,
# fuzzing) against the real Prometheus and Alertmanager of .bin/, with -v,
# and prints the figures of RELIABILITY.md as a Markdown table, from the
# "RELIABILITY kind=..." lines and the subtests the tests log.
#
#   scripts/reliability.sh             # about 10 minutes on 2 cores
#   FUZZTIME=2m scripts/reliability.sh # longer fuzzing
#   KEEP=dir scripts/reliability.sh    # keep the test logs in dir
#
# Any failing test fails the script (its log's tail is shown).
set -euo pipefail
cd "$(dirname "$0")/.."

FUZZTIME=${FUZZTIME:-30s}
logs=${KEEP:-$(mktemp -d)}
mkdir -p "$logs"
export PATH="$PWD/.bin:$PATH" SLOGATE_BIN_DIR="$PWD/.bin"
for tool in prometheus alertmanager promtool amtool; do
	[ -x ".bin/$tool" ] || { echo "reliability: .bin/$tool missing: run make tools" >&2; exit 1; }
done

run() {
	local name=$1
	shift
	echo "reliability: go test $*" >&2
	if ! go test -count=1 -v "$@" >"$logs/$name.log" 2>&1; then
		tail -60 "$logs/$name.log" >&2
		echo "reliability: $name failed (log: $logs/$name.log)" >&2
		exit 1
	fi
}

run e2e -race -timeout 30m -run '^(TestKill9Random|TestKill9DuringRun|TestPrometheusFaultCycle|TestHAReplicas|TestHARollingRestart|TestHAPostgresDown|TestHAShards|TestReloadAndOutage|TestLoad|TestSecretsNeverLeak|TestHostileReload|TestStorageFull|TestStorageReadOnly|TestStoragePathUnusable|TestHostileBackend|TestSilentBackendClosesGate)$' ./e2e/
run evaluator -race -timeout 20m -run '^TestPrometheusFaults$' ./evaluator/
run notifier -race -timeout 10m -run '^TestAlertmanager' ./evaluator/notifier/
run store -race -timeout 10m -run '^(TestCrashSafety|TestDamaged.*|TestTruncated.*|TestFlipped.*|TestCheck.*)$' ./evaluator/store/
run promapi -race -timeout 10m -run '^(TestLargeAnswerRefused|TestBackendTextIsBounded)$' ./evaluator/promapi/
run hostile -race -timeout 10m -run 'Hostile' ./slo/ ./config/
run fuzz-load -run '^$' -fuzz '^FuzzLoad$' -fuzztime "$FUZZTIME" ./slo/
run fuzz-tolerance -run '^$' -fuzz '^FuzzParseTolerance$' -fuzztime "$FUZZTIME" ./slo/
run fuzz-api -run '^$' -fuzz '^FuzzAPI$' -fuzztime "$FUZZTIME" ./web/

# field LOG KIND KEY: the value of KEY= on the first RELIABILITY line of KIND.
field() {
	grep -h "RELIABILITY kind=$2 " "$logs/$1.log" | head -1 | grep -o "$3=[^ ]*" | head -1 | cut -d= -f2
}
# passed LOG REGEXP: how many "--- PASS" lines match.
passed() { grep -cE -- "--- PASS: $2" "$logs/$1.log" || true; }
# execs LOG: the executions of a fuzz run, from its last progress line.
execs() { grep -o 'execs: [0-9]*' "$logs/$1.log" | tail -1 | cut -d' ' -f2; }

prom_eval=$(passed evaluator 'TestPrometheusFaults/')
prom_e2e=$(field e2e prometheus-faults-e2e total)
prom_kinds=$(grep -h 'RELIABILITY kind=prometheus-fault-e2e ' "$logs/e2e.log" | grep -o 'fault="[^"]*"' | cut -d'"' -f2 | awk '!seen[$0]++' | paste -sd, - | sed 's/,/, /g')
am_faults=$(grep -c 'RELIABILITY kind=alertmanager-fault ' "$logs/notifier.log" || true)
am_kinds=$(grep -h 'RELIABILITY kind=alertmanager-fault ' "$logs/notifier.log" | grep -o 'fault="[^"]*"' | cut -d'"' -f2 | paste -sd, - | sed 's/,/, /g')
am_outage=$(passed notifier 'TestAlertmanagerOutage ')
store_rounds=$(grep -c 'round [0-9]*: killed after ack' "$logs/store.log" || true)
hostile=$(( $(passed hostile 'TestHostile[A-Za-z]*/') + $(passed e2e 'TestHostileReload/') ))
lost=$(( $(field e2e kill9 lost) + $(field e2e kill9-postgres lost) ))

cat <<EOF
| figure | value |
|---|---|
| Prometheus faults, evaluator against a real Prometheus (TestPrometheusFaults) | $prom_eval kinds, each checked over several evaluations and recovered |
| Prometheus faults, \`slogate serve\` end to end (TestPrometheusFaultCycle, on bbolt and on PostgreSQL) | $prom_e2e faults on each store: $prom_kinds; gate opened during a fault: 0 |
| Prometheus down and back (TestReloadAndOutage) | $(passed e2e 'TestReloadAndOutage ') |
| Alertmanager faults (slow, 5xx, ...) through faultproxy | $am_faults: $am_kinds; alerts lost: $(grep -h 'RELIABILITY kind=alertmanager-fault ' "$logs/notifier.log" | grep -o 'dropped=[0-9]*' | cut -d= -f2 | awk '{s += $1} END {print s + 0}') |
| Alertmanager down and restarted (TestAlertmanagerOutage) | $am_outage |
| Alertmanager queue bound | capacity $(field notifier alertmanager-queue-bound capacity), $(field notifier alertmanager-queue-bound queued) queued, $(field notifier alertmanager-queue-bound dropped) dropped and $(field notifier alertmanager-queue-bound dropped_counted) counted in slogate_alerts_dropped_total |
| kill -9 of \`slogate serve\` (TestKill9Random + TestKill9DuringRun) | $(field e2e kill9 iterations) random kills ($(field e2e kill9 during_reload) during a reload) + 1 |
| records at stake across those kills | $(field e2e kill9 runs) runs, $(field e2e kill9 timeline_entries) timeline entries, $(field e2e kill9 state_changes) state changes, $(field e2e kill9 reloads) reloads, $(field e2e kill9 requests) requests |
| kill -9 of \`slogate serve\` on PostgreSQL (TestKill9Random/postgres + TestKill9DuringRun/postgres) | $(field e2e kill9-postgres iterations) random kills ($(field e2e kill9-postgres during_reload) during a reload) + 1; $(field e2e kill9-postgres runs) runs, $(field e2e kill9-postgres timeline_entries) timeline entries at stake; lost: $(field e2e kill9-postgres lost) |
| HA: supervising replica killed mid-run, 3 replicas on PostgreSQL (TestHAReplicas) | $(field e2e ha-replica-kill kills) kill survived; measurements gap $(field e2e ha-replica-kill takeover_gap_s) s at a 1 s interval; run aborted $(field e2e ha-replica-kill abort_after_kill_s) s after the kill; runs lost: $(field e2e ha-replica-kill runs_lost); supervised twice: $(field e2e ha-replica-kill supervised_twice) |
| HA: rolling restart of 3 replicas, gate asked 20 times a second (TestHARollingRestart) | $(field e2e ha-rolling-restart restarts) restarts, $(field e2e ha-rolling-restart requests) requests, **failed: $(field e2e ha-rolling-restart failed)** |
| HA: PostgreSQL killed and restarted under 2 replicas (TestHAPostgresDown) | gate 503 unknown with a reason meanwhile; $(field e2e ha-postgres-down timeline_entries_kept) acknowledged timeline entries kept; runs lost: $(field e2e ha-postgres-down runs_lost) |
| kill -9 of a store writer mid-commit (TestCrashSafety) | $store_rounds rounds |
| **records lost** | **$lost** |
| hostile backends, \`slogate serve\` end to end (TestHostileBackend) | $(field e2e hostile-backends total) faults: $(grep -h 'RELIABILITY kind=hostile-backend ' "$logs/e2e.log" | grep -o 'fault="[^"]*"' | cut -d'"' -f2 | paste -sd, - | sed 's/,/, /g'); gate opened during a fault: 0; answers, run and log bounded; peak RSS $(field e2e hostile-backends peak_rss_mib) MiB |
| silent backend: time to gate unknown (TestSilentBackendClosesGate; $(field e2e silent-backend interval) interval, $(field e2e silent-backend timeout) timeout, stale limit $(field e2e silent-backend stale_after)) | $(field e2e silent-backend since_silence_s) s after the backend went silent, its newest data then $(field e2e silent-backend data_age_s) s old |
| damaged store: truncated files, damaged headers, flipped data-page bytes, background check | $(passed store '(TestDamaged|TestTruncated|TestFlipped|TestCheck)[A-Za-z]* ') tests, $(passed store '(TestDamaged|TestTruncated|TestFlipped|TestCheck)[A-Za-z]*/') cases; crashes: 0 |
| oversized and wordy answers, client (TestLargeAnswerRefused, TestBackendTextIsBounded) | $(passed promapi 'TestLargeAnswerRefused/') sizes (100 MB refused as bad_result, allocations bounded); 5 MB errors and warnings cut to 1 KiB, logged once |
| disk full, read-only and unusable storage.path | full: $(passed e2e 'TestStorageFull '), read-only: $(field e2e storage-readonly cases) cases, unusable: $(passed e2e 'TestStoragePathUnusable/') cases; gate opened: 0 |
| load: requests served (8 workers in a second process, reloads every 200 ms) | $(field e2e load answered) of $(field e2e load requests); without an answer: $(field e2e load no_answer); unexpected status: $(field e2e load unexpected_status); 5xx: $(field e2e load status_5xx); reloads: $(field e2e load reloads) |
EOF
grep -h 'RELIABILITY kind=load-latency ' "$logs/e2e.log" | while read -r line; do
	ep=$(echo "$line" | grep -o 'endpoint="[^"]*"' | cut -d'"' -f2)
	get() { echo "$line" | grep -o "$1=[^ ]*" | cut -d= -f2; }
	echo "| load latency, $ep ($(get count) calls) | p50 $(get p50_ms) ms, p99 $(get p99_ms) ms, max $(get max_ms) ms |"
done
cat <<EOF
| hostile inputs tried (definitions, config, reloads into serve) | $hostile |
| secrets checked in logs, /api/*, /metrics, UI, CLI errors | $(field e2e secrets secrets) secrets, $(field e2e secrets responses) responses, $(field e2e secrets commands) commands, $(field e2e secrets prometheus_faults) Prometheus faults; leaks: $(field e2e secrets leaks) |
| fuzz execs, $FUZZTIME each | FuzzLoad $(execs fuzz-load), FuzzParseTolerance $(execs fuzz-tolerance), FuzzAPI $(execs fuzz-api) |
EOF
echo
echo "logs: $logs" >&2
