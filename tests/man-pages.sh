#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# man-pages.sh PAGE... -- the man pages (ctest man_pages):
#   * a page that is only a `.so man3/X` link names a page X that exists
#     beside it;
#   * every other page renders without a single groff warning (-ww), and
#     has the sections NAME, SYNOPSIS, DESCRIPTION, EXAMPLES, FILES and
#     SEE ALSO, none of them empty;
#   * the sections man-pages(7) names come in its order (NAME, LIBRARY,
#     SYNOPSIS, DESCRIPTION, OPTIONS, EXIT STATUS, RETURN VALUE, FILES,
#     VERSIONS, EXAMPLES, SEE ALSO, ...); a page's own sections (SIGNALS,
#     JSON OUTPUT, [queue], ...) may come anywhere between them.
# Prints one line per problem.  Exit 0 pass, 1 fail.
set -u
[ $# -gt 0 ] || { echo "usage: man-pages.sh PAGE..." >&2; exit 1; }
fail=0
real=0 links=0
required=(NAME SYNOPSIS DESCRIPTION EXAMPLES FILES "SEE ALSO")
order='NAME|LIBRARY|SYNOPSIS|CONFIGURATION|DESCRIPTION|OPTIONS|EXIT STATUS|RETURN VALUE|ERRORS|ENVIRONMENT|FILES|ATTRIBUTES|VERSIONS|STANDARDS|HISTORY|NOTES|CAVEATS|BUGS|EXAMPLES|AUTHORS|REPORTING BUGS|COPYRIGHT|SEE ALSO'
for f in "$@"; do
	if [ ! -f "$f" ]; then
		echo "$f: no such page"; fail=1; continue
	fi
	target=$(sed -n 's|^[.]so man[0-9]/||p' "$f")
	if [ -n "$target" ]; then
		links=$((links + 1))
		[ -f "$(dirname "$f")/$target" ] || { echo "$f: .so link to a page that does not exist: $target"; fail=1; }
		continue
	fi
	real=$((real + 1))
	out=$(groff -man -ww -z "$f" 2>&1)
	[ -z "$out" ] || { echo "$f: groff: $out"; fail=1; }
	# the section headings, and how many lines each has before the next
	sections=$(awk '
		/^[.]SH / { if (name != "") print name "\t" n; name = substr($0, 5); gsub(/"/, "", name); n = 0; next }
		name != "" && !/^[.]\\"/ { n++ }
		END { if (name != "") print name "\t" n }' "$f")
	# the standard sections' ranks, in the page's order: each above the one before
	out=$(awk -F'\t' -v order="$order" '
		BEGIN { n = split(order, o, "|"); for (i = 1; i <= n; i++) rank[o[i]] = i }
		($1 in rank) { if (rank[$1] < last) print $1 " after " prev; last = rank[$1]; prev = $1 }' <<<"$sections")
	[ -z "$out" ] || { echo "$f: sections out of man-pages(7) order: $out"; fail=1; }
	for s in "${required[@]}"; do
		lines=$(awk -F'\t' -v s="$s" '$1 == s { print $2; exit }' <<<"$sections")
		if [ -z "$lines" ]; then
			echo "$f: no section $s"; fail=1
		elif [ "$lines" -eq 0 ]; then
			echo "$f: section $s is empty"; fail=1
		fi
	done
done
if [ $fail = 0 ]; then
	echo "man_pages: PASS: $real pages without a groff warning, each with ${required[*]} in man-pages(7) order; $links .so links to pages that exist"
fi
exit $fail
