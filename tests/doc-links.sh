#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# doc-links.sh SOURCE_DIR -- every relative link of the Markdown documents
# the tree holds (git ls-files: tracked, or untracked and not ignored)
# resolves: [text](path), [text](path#anchor), [text](#anchor) and images.
# The path must exist, relative to the document; an anchor must be the
# GitHub anchor of a heading of the document it points to (lower case,
# punctuation but '-' and '_' dropped, spaces as '-', a repeated heading
# with -1, -2, ...).  Links to http(s) and mailto are not followed, and
# nothing inside ``` fences counts.  Prints one line per broken link.
# Exit 0 pass, 1 fail, 77 skipped (not a git work tree: no list of
# documents).
set -u
src=${1:?usage: doc-links.sh SOURCE_DIR}
docs=$(git -C "$src" ls-files --cached --others --exclude-standard -- '*.md' 2>/dev/null) ||
	{ echo "doc-links: SKIP: $src is not a git work tree"; exit 77; }
[ -n "$docs" ] || { echo "doc-links: FAIL: no Markdown document in $src"; exit 1; }

# the anchors of a document's headings, one a line
anchors() {
	awk '
		/^```/ { fence = !fence; next }
		fence || !/^#+ / { next }
		{
			h = $0; sub(/^#+ +/, "", h); h = tolower(h)
			gsub(/[^a-z0-9 _-]/, "", h); gsub(/ /, "-", h)
			a = h; if (seen[h]++) a = h "-" (seen[h] - 1)
			print a
		}' "$1"
}

# the link targets of a document, "LINE<TAB>TARGET" a line
links() {
	awk '
		/^```/ { fence = !fence; next }
		fence { next }
		{
			s = $0
			while (match(s, /\]\([^)[:space:]]+\)/)) {
				print NR "\t" substr(s, RSTART + 2, RLENGTH - 3)
				s = substr(s, RSTART + RLENGTH)
			}
		}' "$1"
}

fail=0 n=0
while IFS= read -r doc; do
	dir=$(dirname "$src/$doc")
	while IFS=$'\t' read -r line target; do
		case "$target" in http://* | https://* | mailto:*) continue ;; esac
		n=$((n + 1))
		path=${target%%#*}
		anchor=
		case "$target" in *'#'*) anchor=${target#*#} ;; esac
		file=$src/$doc
		if [ -n "$path" ]; then
			file=$dir/$path
			if [ ! -e "$file" ]; then
				echo "$doc:$line: $target: no such file"; fail=1; continue
			fi
		fi
		if [ -n "$anchor" ]; then
			if [ -d "$file" ] || ! anchors "$file" | grep -qxF -- "$anchor"; then
				echo "$doc:$line: $target: no heading with that anchor"; fail=1
			fi
		fi
	done < <(links "$src/$doc")
done <<<"$docs"
if [ $fail = 0 ]; then
	echo "doc-links: PASS: $n relative links in $(wc -l <<<"$docs") documents resolve"
fi
exit $fail
