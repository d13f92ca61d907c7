#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# version.sh SOURCE_DIR BUILD_DIR -- one version, CMake's: the VERSION of
# project() in SOURCE_DIR/CMakeLists.txt is
#   * what `--version` prints first for mmapq-producer, mmapq-consumer and
#     mmapqctl (BUILD_DIR/daemons);
#   * the library's: libmmapq.so.VERSION, mmapq.pc's Version: and the CMake
#     package's version file; its SONAME libmmapq.so.N is the one Debian's
#     package libmmapqN (debian/control, debian/libmmapqN.symbols,
#     .install) is named after;
#   * the top entry of debian/changelog (its upstream part);
#   * the version in every .deb file name the tracked documents and scripts
#     give (NAME_VERSION_ARCH.deb; VERSION, * and $version stand for any).
# Prints one line per disagreement.  Exit 0 pass, 1 fail.
set -u
src=${1:?usage: version.sh SOURCE_DIR BUILD_DIR}
build=${2:?usage: version.sh SOURCE_DIR BUILD_DIR}
fail=0
bad() { echo "version: FAIL: $*"; fail=1; }

version=$(sed -n 's/^project(mmapq VERSION \([0-9][0-9.]*\)[ )].*/\1/p' "$src/CMakeLists.txt")
[ -n "$version" ] || { echo "version: FAIL: no project(mmapq VERSION ...) in $src/CMakeLists.txt"; exit 1; }

for p in mmapq-producer mmapq-consumer mmapqctl; do
	got=$("$build/daemons/$p" --version 2>&1 | head -n 1)
	[ "$got" = "$p $version" ] || bad "$p --version says '$got', want '$p $version'"
done

lib=$build/common/queue/libmmapq.so.$version
if [ ! -e "$lib" ]; then
	bad "no $lib: the library's version is not $version ($(cd "$build/common/queue" && echo libmmapq.so.*))"
	soname=
else
	soname=$(readelf -d "$lib" | sed -n 's/.*Library soname: \[\(.*\)\]/\1/p')
fi
got=$(sed -n 's/^Version: //p' "$build/common/queue/mmapq.pc")
[ "$got" = "$version" ] || bad "mmapq.pc: Version: $got, want $version"
got=$(sed -n 's/^set(PACKAGE_VERSION "\(.*\)")$/\1/p' "$build/common/queue/mmapqConfigVersion.cmake")
[ "$got" = "$version" ] || bad "mmapqConfigVersion.cmake: PACKAGE_VERSION $got, want $version"

# the Debian library package is named after the SONAME's number
n=${soname#libmmapq.so.}
case $n in
'' | *[!0-9]*) bad "$lib: SONAME '$soname' is not libmmapq.so.N" ;;
*)
	pkgs=$(sed -n 's/^Package: \(libmmapq[0-9][0-9]*\)$/\1/p' "$src/debian/control")
	[ "$pkgs" = "libmmapq$n" ] || bad "debian/control: library package '$pkgs', the SONAME is $soname (libmmapq$n)"
	syms=$src/debian/libmmapq$n.symbols
	if [ ! -r "$syms" ]; then
		bad "no $syms for $soname"
	else
		got=$(head -n 1 "$syms")
		[ "$got" = "$soname libmmapq$n #MINVER#" ] || bad "$syms: first line '$got', want '$soname libmmapq$n #MINVER#'"
	fi
	grep -q -F "libmmapq.so.$n*" "$src/debian/libmmapq$n.install" 2>/dev/null ||
		bad "debian/libmmapq$n.install does not install libmmapq.so.$n*"
	;;
esac

top=$(sed -n '1s/^mmapq (\([^)]*\)).*/\1/p' "$src/debian/changelog")
[ "${top%-*}" = "$version" ] || bad "debian/changelog: top entry '$top', want $version (or $version-N)"

# .deb file names in what git tracks (the changelog, history, aside)
files=$(git -C "$src" ls-files --cached --others --exclude-standard 2>/dev/null | grep -v '^debian/changelog$')
[ -n "$files" ] || files=$(cd "$src" && find . -type f ! -path './.git/*' ! -path './build*' ! -name changelog | sed 's|^\./||')
ndeb=0
while IFS=: read -r file line name; do
	ndeb=$((ndeb + 1))
	v=$(sed -E 's/^[a-z0-9.+-]+_(.*)_[^_]+\.deb$/\1/' <<<"$name")
	# shellcheck disable=SC2016 # the placeholders are literal
	case $v in
	"$version" | VERSION | '*' | '$version' | '${version}') ;;
	*) bad "$file:$line: $name: version $v, want $version (or VERSION, *)" ;;
	esac
done < <(cd "$src" && printf '%s\n' "$files" |
	xargs -d '\n' grep -n -o -E "[a-z0-9.+-]*mmapq[a-z0-9.+-]*_[^_[:space:]/\`]+_[^_[:space:]/\`.]+\.deb" 2>/dev/null)

if [ $fail = 0 ]; then
	echo "version: PASS: $version: the three programs' --version, libmmapq.so.$version ($soname, Debian's libmmapq$n), mmapq.pc, the CMake package, debian/changelog, $ndeb .deb names"
fi
exit $fail
