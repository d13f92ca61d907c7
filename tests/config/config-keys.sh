#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# config-keys.sh SOURCE_DIR -- every page that lists the keys of mmapq.ini
# lists exactly those of the key table, common/config/keys.def, in its
# order, each with its default:
#   * the key table of systemd/OPERATIONS.md, Configuration ("| `[SECTION]
#     KEY` | `DEFAULT` | ..." rows; an empty default is an empty cell);
#   * mmapq.ini(5), config/mmapq.ini.5 (under ".SH [SECTION]", a ".TP" and
#     then ".BR KEY \" = \" DEFAULT");
#   * config/mmapq.ini itself ("KEY = DEFAULT" under "[SECTION]").
# A key added to the table and missing from a page, or a page keeping a
# key or a default the table no longer has, fails with the difference.
# Exit 0 pass, 1 fail.
set -u
src=${1:?usage: config-keys.sh SOURCE_DIR}
def=$src/common/config/keys.def
fail=0

# "SECTION KEY DEFAULT" a line, in the table's order: the first line of each
# X(...) entry holds the section, key, type and default
from_def() {
	sed -n 's/^X("\([a-z_]*\)", *"\([a-z_]*\)", *[A-Z_0-9]*, *"\([^"]*\)".*/\1 \2 \3/p' "$def" | sed 's/ $//'
}

from_operations() {
	awk '/^## / { on = ($0 == "## Configuration"); next }
	     on && /^\| `\[[a-z_]+\] [a-z_]+` \|/ {
		split($0, c, "|")
		k = c[2]; gsub(/[`[\]]/, "", k); gsub(/^ +| +$/, "", k)
		d = c[3]; gsub(/`/, "", d); gsub(/^ +| +$/, "", d)
		print k " " d
	     }' "$src/systemd/OPERATIONS.md" | sed 's/ $//'
}

from_man() {
	awk '/^\.SH / { s = ""; if (match($0, /^\.SH \[[a-z_]+\]$/)) s = substr($0, 6, length($0) - 6); next }
	     s != "" && prev == ".TP" && /^\.BR [a-z_]+ " = "/ {
		line = $0; sub(/^\.BR /, "", line)
		k = line; sub(/ .*/, "", k)
		d = line; sub(/^[a-z_]+ " = " ?/, "", d)
		gsub(/\\f[BIRP]/, "", d); gsub(/\\-/, "-", d)
		print s " " k " " d
	     }
	     { prev = $0 }' "$src/config/mmapq.ini.5" | sed 's/ $//'
}

from_ini() {
	awk '/^\[[a-z_]+\]$/ { s = substr($0, 2, length($0) - 2); next }
	     /^[a-z_]+ *=/ { k = $0; sub(/ *=.*/, "", k); d = $0; sub(/^[^=]*= */, "", d); print s " " k " " d }' \
		"$src/config/mmapq.ini" | sed 's/ $//'
}

want=$(from_def)
n=$(wc -l <<<"$want")
if [ -z "$want" ] || [ "$n" -lt 10 ]; then
	echo "config_keys: FAIL: $def: $n keys read (the table could not be read)"
	exit 1
fi
check() {
	local name=$1 got=$2
	if [ "$got" = "$want" ]; then
		echo "config_keys: PASS: $name: the $n keys of keys.def, in order, with their defaults"
	else
		echo "config_keys: FAIL: $name and keys.def differ (section, key, default; - keys.def, + $name):"
		diff -u --label keys.def --label "$name" <(echo "$want") <(echo "$got") | tail -n +3
		fail=1
	fi
}
check systemd/OPERATIONS.md "$(from_operations)"
check config/mmapq.ini.5 "$(from_man)"
check config/mmapq.ini "$(from_ini)"
exit $fail
