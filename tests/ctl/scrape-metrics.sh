#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# scrape-metrics.sh BUILD_DIR -- the metrics endpoint as a real Prometheus
# sees it, on 127.0.0.1 only, without systemd: systemd-socket-activate
# plays mmapq-metrics.socket (one `mmapqctl metrics --http` per connection,
# the connection as its stdin and stdout, as Accept=yes does), Debian's
# prometheus scrapes it every second.
#
#   - `promtool check metrics` finds nothing wrong with the text;
#   - the gauges in bytes (size, max_record, depth, each consumer's lag),
#     the clean mark and the salvages are the queue's;
#   - Prometheus reports the target up and stores the queue's counters:
#     published 10, depth 6, each consumer's lag; 5 more records show up in
#     a later scrape;
#   - anything but GET /metrics gets 404/405, and a queue that cannot be
#     read a 503 naming it (never a half answer).
#
# Nothing sleeps: each wait is for the next line of the endpoint's log (a
# scrape answered), with a deadline.
# Exit 0 pass, 1 fail, 77 skip (prometheus, promtool, curl or
# systemd-socket-activate missing: tests/deps.sh --test installs them).
set -u
build=${1:?usage: scrape-metrics.sh BUILD_DIR}
bin=$build/daemons
for t in prometheus promtool curl systemd-socket-activate; do
	command -v "$t" >/dev/null || { echo "scrape-metrics: SKIP: no $t" >&2; exit 77; }
done
work=$(mktemp -d /tmp/mmapq-metrics.XXXXXX) || exit 1
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
	wait 2>/dev/null
	rm -rf "$work"
}
trap cleanup EXIT
fail=0
pass() { echo "scrape-metrics: PASS: $*"; }
failed() { echo "scrape-metrics: FAIL: $*"; fail=1; }

# A free port on 127.0.0.1 (nothing answers a connection to it).
free_port() {
	local p
	for _ in $(seq 1 50); do
		p=$((20000 + RANDOM % 20000))
		(: >"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { echo "$p"; return 0; }
	done
	return 1
}

# The endpoint's own log (systemd-socket-activate: "Listening on ...", and
# "Child N died with code C" when a scrape is answered) arrives through a
# FIFO: each line is an event to wait for with `read -t`.
mkfifo "$work/activate.fifo" || exit 1

# next_line SECONDS REGEX: until a line of the endpoint's log matches.
next_line() {
	local line end=$((SECONDS + $1))
	while [ $SECONDS -lt $end ]; do
		IFS= read -r -t $((end - SECONDS)) -u "$logfd" line || return 1
		echo "$line" >>"$work/activate.log"
		[[ $line =~ $2 ]] && return 0
	done
	return 1
}

cfg=$work/mmapq.ini
printf '[queue]\npath = %s/queue\nsize = 64K\nmax_record = 1K\n' "$work" >"$cfg"
seq 1 10 | "$bin/mmapq-producer" --config "$cfg" || { echo "scrape-metrics: producer failed"; exit 1; }
# two consumers: default has read 4 records, audit (registered at the
# oldest kept, 4) the other 6: the queue keeps 6 (96 bytes: 16 each),
# default lags 6, audit 0
"$bin/mmapq-consumer" --config "$cfg" --count 4 >/dev/null || { echo "scrape-metrics: consumer failed"; exit 1; }
"$bin/mmapq-consumer" --config "$cfg" --name audit --count 6 >/dev/null ||
	{ echo "scrape-metrics: consumer audit failed"; exit 1; }

port=$(free_port) || { echo "scrape-metrics: no free port"; exit 1; }
systemd-socket-activate -l "127.0.0.1:$port" --accept --inetd -- \
	"$bin/mmapqctl" --config "$cfg" metrics --http 2>"$work/activate.fifo" &
pids+=($!)
exec {logfd}<"$work/activate.fifo"
next_line 10 "^Listening on" || { echo "scrape-metrics: the endpoint did not listen"; exit 1; }

# ---- the text itself
curl -sS "http://127.0.0.1:$port/metrics" >"$work/metrics.txt" || failed "curl /metrics"
out=$(promtool check metrics <"$work/metrics.txt" 2>&1)
if [ -z "$out" ]; then pass "promtool check metrics: clean"; else failed "promtool check metrics: $out"; fi
grep -qx "mmapq_published_records_total{queue=\"$work/queue\"} 10" "$work/metrics.txt" &&
	grep -qx "mmapq_depth_records{queue=\"$work/queue\"} 6" "$work/metrics.txt" &&
	grep -qx "mmapq_attached{queue=\"$work/queue\",role=\"producer\"} 0" "$work/metrics.txt" &&
	grep -qx "mmapq_consumers_registered{queue=\"$work/queue\"} 2" "$work/metrics.txt" &&
	grep -qx "mmapq_consumer_lag_records{queue=\"$work/queue\",consumer=\"default\"} 6" "$work/metrics.txt" &&
	grep -qx "mmapq_consumer_lag_records{queue=\"$work/queue\",consumer=\"audit\"} 0" "$work/metrics.txt" &&
	grep -qx "mmapq_consumer_consumed_records_total{queue=\"$work/queue\",consumer=\"audit\"} 6" "$work/metrics.txt" &&
	grep -qx "mmapq_consumer_position{queue=\"$work/queue\",consumer=\"audit\"} 10" "$work/metrics.txt" &&
	pass "published 10, depth 6, no producer attached; consumers default (lag 6) and audit (lag 0, consumed 6, at 10)" ||
	{ failed "the metrics do not say published 10, depth 6, lags 6 and 0:"; cat "$work/metrics.txt"; }
grep -qx "mmapq_size_bytes{queue=\"$work/queue\"} 65536" "$work/metrics.txt" &&
	grep -qx "mmapq_max_record_bytes{queue=\"$work/queue\"} 1024" "$work/metrics.txt" &&
	grep -qx "mmapq_depth_bytes{queue=\"$work/queue\"} 96" "$work/metrics.txt" &&
	grep -qx "mmapq_used_ratio{queue=\"$work/queue\"} 0.00146484375" "$work/metrics.txt" &&
	grep -qx "mmapq_consumer_lag_bytes{queue=\"$work/queue\",consumer=\"default\"} 96" "$work/metrics.txt" &&
	grep -qx "mmapq_consumer_lag_bytes{queue=\"$work/queue\",consumer=\"audit\"} 0" "$work/metrics.txt" &&
	grep -qx "mmapq_clean{queue=\"$work/queue\"} 1" "$work/metrics.txt" &&
	grep -qx "mmapq_salvages_total{queue=\"$work/queue\"} 0" "$work/metrics.txt" &&
	pass "in bytes: size 65536, max_record 1024, depth 96 (0.15%), lags 96 and 0; clean, no salvage" ||
	{ failed "the metrics in bytes, the clean mark or the salvages are not as the queue is:"; cat "$work/metrics.txt"; }
code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/")
[ "$code" = 404 ] && pass "GET / -> 404" || failed "GET / -> $code"
code=$(curl -s -o /dev/null -w '%{http_code}' -X POST "http://127.0.0.1:$port/metrics")
[ "$code" = 405 ] && pass "POST /metrics -> 405" || failed "POST /metrics -> $code"

# the three requests above were answered: their lines, read now, are not
# taken for scrapes below
for _ in 1 2 3; do
	next_line 10 "^Child .* died with code" || failed "a request above was not answered"
done

# ---- a real Prometheus scraping it every second
pport=$(free_port) || { echo "scrape-metrics: no free port"; exit 1; }
cat >"$work/prometheus.yml" <<EOF
global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: mmapq
    static_configs:
      - targets: ['127.0.0.1:$port']
EOF
prometheus --config.file="$work/prometheus.yml" --storage.tsdb.path="$work/tsdb" \
	--web.listen-address="127.0.0.1:$pport" >"$work/prometheus.log" 2>&1 &
pids+=($!)
# its first scrape (after its start and its first target discovery, about
# 5 s) is the sign it runs
next_line 60 "^Child .* died with code" ||
	{ failed "prometheus did not scrape"; tail -20 "$work/prometheus.log"; exit 1; }

# query EXPR: the value of the first series of an instant query, or nothing
query() {
	curl -sS -G "http://127.0.0.1:$pport/api/v1/query" --data-urlencode "query=$1" |
		sed -n 's/.*"value":\[[0-9.]*,"\([^"]*\)"\].*/\1/p'
}
# until_value EXPR WANT: each answered scrape is a chance; at most 20 of them.
until_value() {
	local got
	for _ in $(seq 1 20); do
		next_line 10 "^Child .* died with code" || break
		got=$(query "$1")
		[ "$got" = "$2" ] && return 0
	done
	echo "    $1 = '$got' (want $2)"
	return 1
}
until_value 'up{job="mmapq"}' 1 && pass "Prometheus: the target is up" || failed "Prometheus: target not up"
until_value 'mmapq_published_records_total{job="mmapq"}' 10 &&
	pass "Prometheus stored mmapq_published_records_total = 10" || failed "published total not stored"
until_value 'mmapq_depth_records{job="mmapq"}' 6 && pass "Prometheus stored mmapq_depth_records = 6" ||
	failed "depth not stored"
until_value 'mmapq_consumer_lag_records{job="mmapq",consumer="default"}' 6 &&
	until_value 'mmapq_consumer_lag_records{job="mmapq",consumer="audit"}' 0 &&
	until_value 'mmapq_consumer_lag_bytes{job="mmapq",consumer="default"}' 96 &&
	pass "Prometheus stored each consumer's lag (default 6 records, 96 bytes; audit 0)" ||
	failed "consumer lags not stored"
seq 11 15 | "$bin/mmapq-producer" --config "$cfg" || failed "second producer"
until_value 'mmapq_published_records_total{job="mmapq"}' 15 &&
	until_value 'mmapq_consumer_lag_records{job="mmapq",consumer="audit"}' 5 &&
	pass "a later scrape shows the 5 new records (15; audit lags 5)" || failed "the new records did not show"
until_value 'scrape_samples_scraped{job="mmapq"}' "$(grep -c '^mmapq_' "$work/metrics.txt")" &&
	pass "every sample of the endpoint was stored" || failed "samples scraped differ from the text"

# ---- a queue that cannot be read: 503 with the reason, nothing else
printf 'garbage' >"$work/queue"
body=$(curl -s -w '\n%{http_code}' "http://127.0.0.1:$port/metrics")
case "$body" in
"$work/queue: "*503) pass "a broken queue file -> 503 naming it" ;;
*) failed "a broken queue file -> '$body'" ;;
esac

[ $fail = 0 ] && echo "scrape-metrics: PASS" || echo "scrape-metrics: FAILED"
exit $fail
