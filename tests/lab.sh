#!/bin/sh
# The lab, done properly: the consumer waits (no sleep(5)) for ten integers
# that the producer reads with "scanf" semantics, and prints them in order.
#   tests/lab.sh BUILD_DIR
set -eu
bin="${1:?usage: tests/lab.sh BUILD_DIR}/daemons"
dir=$(mktemp -d /tmp/mmapq-lab.XXXXXX)
trap 'rm -rf "$dir"' EXIT
q="$dir/temp"

echo "== consumer started; it waits for records (no sleeping)"
"$bin/mmapq-consumer" --queue "$q" --count 10 > "$dir/out" &
consumer=$!
echo "== producer: echo 1 2 3 4 5 6 7 8 9 10 | mmapq-producer --queue $q"
echo 1 2 3 4 5 6 7 8 9 10 | "$bin/mmapq-producer" --queue "$q"
wait "$consumer"
echo "== consumer printed:"
cat "$dir/out"
expected=$(seq 1 10)
[ "$(cat "$dir/out")" = "$expected" ] || { echo "lab: FAILED: output differs from 1..10" >&2; exit 1; }
echo "== mmapqctl status"
"$bin/mmapqctl" --queue "$q" status
echo "== ls -l (the lab showed 40 bytes; this file has a header page and a byte ring of frames, 4 MiB as shipped)"
ls -l "$q"
echo "lab: OK"
