#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# deps-build-depends.sh SOURCE_DIR -- what tests/deps.sh installs for the
# build (its list without --test) is debian/control's Build-Depends: the
# same packages, but for what each side has of its own.  Build-Depends
# leaves out build-essential's make, gcc and libc6-dev (a Debian package
# build has them by definition) and has the packaging's own debhelper-compat and
# dh-sequence-*, which deps.sh installs only with --test (deb_container).
# A package added to one list and not the other fails.
set -eu
src=${1:?usage: deps-build-depends.sh SOURCE_DIR}
control=$src/debian/control
[ -r "$control" ] || { echo "deps_build_depends: FAIL: no $control"; exit 1; }

# Build-Depends: the field and its continuation lines, one name a line,
# without version, architecture and profile qualifiers
from_control() {
	awk '/^Build-Depends:/ { on = 1; sub(/^Build-Depends:/, ""); print; next }
	     on && /^[ \t]/ { print; next }
	     { on = 0 }' "$control" |
		tr ',' '\n' | sed 's/[[(<].*//; s/^[[:space:]]*//; s/[[:space:]]*$//' |
		grep -v -e '^$' -e '^debhelper-compat$' -e '^dh-sequence-' | sort -u
}

want=$(from_control)
got=$("$src/tests/deps.sh" --list | grep -v -x -e make -e gcc -e libc6-dev | sort -u)
if [ -z "$want" ]; then
	echo "deps_build_depends: FAIL: no Build-Depends read from $control"
	exit 1
fi
if [ "$want" != "$got" ]; then
	echo "deps_build_depends: FAIL: tests/deps.sh (build) and $control (Build-Depends) differ:"
	diff -u --label Build-Depends --label deps.sh <(echo "$want") <(echo "$got") || true
	exit 1
fi
echo "deps_build_depends: PASS: ${got//$'\n'/ } (and make, gcc, libc6-dev)"
