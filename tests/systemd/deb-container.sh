#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# SPDX-License-Identifier: MIT
#
# deb-container.sh [--keep] BUILD_DIR -- the Debian packages as an
# administrator gets them, installed into a real Debian 12 under a real
# systemd 252:
#
#   1. dpkg-buildpackage -us -uc -b in a clean copy of the source tree (the
#      files git tracks and the untracked ones it does not ignore: no build
#      directories; without git, the tree less build*/ and .git): the
#      packages mmapq, libmmapq2 and libmmapq-dev, and a build log without
#      a single warning;
#   2. lintian on the .changes: no error (E:) and no warning (W:); the info
#      (I:) and pedantic (P:) tags are printed, and are exactly those
#      systemd/OPERATIONS.md explains (its table of tags, for the unit
#      files it names);
#   3. the packages as files: /etc/mmapq/mmapq.ini a conffile and the
#      directory /etc/mmapq/mmapq.ini.d, libmmapq2's SONAME and symbols file
#      (every function it exports, at 2.0.0) and the dependencies on it,
#      NEWS.Debian for an upgrade from mmapq 0.x, no RPATH or RUNPATH in the
#      programs, no fault points, the postinst running systemd-sysusers
#      before systemd-tmpfiles before starting the units, the prerm stopping
#      every unit file of the package (a template: all its instances);
#   4. a Debian 12 root made by mmdebstrap from Debian's packages (systemd,
#      the packages' dependencies, a compiler and pkg-config), cached in
#      MMAPQ_ROOT_CACHE (default /var/cache/mmapq-test) under a key made of
#      its recipe and package list: built once per machine, reused after;
#   5. that root booted read-only under a throw-away overlay (nspawn
#      --volatile=overlay: the cache is never written) with systemd as PID 1,
#      in a cgroup sandbox of its own (sandbox.sh, as run-in-container.sh),
#      running deb-scenario.sh: apt install, mmapq.target running, records
#      in the journal, libmmapq-dev and a program built against it, the
#      operations guide's fan-out example, apt remove and apt purge with every unit
#      and an instance of every template running.
#
# Results in BUILD_DIR/deb-results (env MMAPQ_RESULTDIR), emptied first: the
# build and lintian logs, mmdebstrap's log, the scenario's output and
# diagnostics.  Exit status: 0 pass, 1 fail, 77 skipped (not root, or
# systemd-nspawn, mmdebstrap, dpkg-buildpackage, debhelper or lintian
# missing: tests/deps.sh --test installs them), 124 when the boot exceeded
# MMAPQ_CONTAINER_TIMEOUT seconds (default 600).  --keep leaves the work
# directory (source copy, packages, unit files) in place.
set -u

die() { echo "deb-container: $*" >&2; exit 1; }
skip() { echo "deb-container: SKIP: $*" >&2; exit 77; }

SANDBOX_KEEP=0
if [ "${1:-}" = "--keep" ]; then SANDBOX_KEEP=1; shift; fi
[ $# -eq 1 ] || die "usage: deb-container.sh [--keep] BUILD_DIR"
build=$(cd "$1" 2>/dev/null && pwd) || die "no build directory '$1'"
here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/../.." && pwd)
limit=${MMAPQ_CONTAINER_TIMEOUT:-600}
resultdir=${MMAPQ_RESULTDIR:-$build/deb-results}
cache=${MMAPQ_ROOT_CACHE:-/var/cache/mmapq-test}

# ---- can we run at all? ---------------------------------------------------
[ "$(id -u)" -eq 0 ] || skip "needs root (systemd-nspawn, cgroups, mmdebstrap)"
for t in systemd-nspawn:systemd-container mmdebstrap:mmdebstrap dpkg-buildpackage:dpkg-dev \
	dh:debhelper lintian:lintian; do
	command -v "${t%%:*}" >/dev/null || skip "${t%%:*} is missing (Debian package ${t#*:}; tests/deps.sh --test installs it)"
done

SANDBOX_LIMIT=$limit
SANDBOX_RESULTDIR=$resultdir
SANDBOX_TAG=deb-container
# shellcheck source=sandbox.sh
. "$here/sandbox.sh"
# First, so that a machine whose cgroups we may not write skips at once.
sandbox_start

fail=0
pass() { echo "deb-container: PASS: $*"; }
failed() { echo "deb-container: FAIL: $*"; fail=1; }
t0=$(date +%s)
elapsed() { echo "$(($(date +%s) - t0)) s"; }

sandbox_mkwork /tmp/mmapq-deb.XXXXXX
work=$SANDBOX_WORK
mkdir -p "$resultdir" || die "cannot create $resultdir"
find "$resultdir" -mindepth 1 -delete

# ---- 1. the packages, from a clean copy of the tree -------------------------
version=$(sed -n '1s/^mmapq (\([^)]*\)).*/\1/p' "$src/debian/changelog")
[ -n "$version" ] || die "no version in $src/debian/changelog"
copy=$work/src/mmapq-$version
mkdir -p "$copy"
if git -C "$src" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
	# what `git archive` would take, plus the changes not yet committed
	# (less the files deleted but not yet committed, which git still lists)
	(cd "$src" && git ls-files -z --cached --others --exclude-standard |
		while IFS= read -r -d '' f; do
			if [ -e "$f" ] || [ -L "$f" ]; then printf '%s\0' "$f"; fi
		done | xargs -0 cp -a --parents -t "$copy") || die "cannot copy the source tree"
else
	tar -C "$src" --exclude='./build*' --exclude=./.git --exclude=./Testing -cf - . |
		tar -C "$copy" -xf - || die "cannot copy the source tree"
fi
echo "deb-container: dpkg-buildpackage -us -uc -b in $copy" >&2
if (cd "$copy" && DEB_BUILD_OPTIONS="parallel=2 ${DEB_BUILD_OPTIONS:-}" \
	dpkg-buildpackage -us -uc -b) >"$resultdir/build.log" 2>&1; then
	pass "dpkg-buildpackage -us -uc -b ($(elapsed))"
else
	tail -40 "$resultdir/build.log"
	die "dpkg-buildpackage failed (log: $resultdir/build.log)"
fi
debs=$work/debs
mkdir -p "$debs"
arch=$(dpkg --print-architecture)
for p in mmapq libmmapq2 libmmapq-dev; do
	f=$work/src/${p}_${version}_$arch.deb
	[ -f "$f" ] || die "dpkg-buildpackage made no $f"
	cp "$f" "$debs/"
done
pass "packages: $(cd "$debs" && echo *.deb)"
# Warnings are errors, here too: the compiler's, CMake's and debhelper's.
if grep -n -i -E 'warning' "$resultdir/build.log" >"$work/warnings"; then
	failed "the package build warns:"; head -20 "$work/warnings"
else
	pass "no warning in the package build's log"
fi

# ---- 2. lintian --------------------------------------------------------------
changes=$work/src/mmapq_${version}_$arch.changes
lintian --display-info --pedantic --fail-on error,warning "$changes" >"$resultdir/lintian.log" 2>&1
rc=$?
grep -v '^running with root privileges' "$resultdir/lintian.log" | sed 's/^/    lintian: /'
if [ $rc = 0 ] && ! grep -q -E '^[EW]: ' "$resultdir/lintian.log"; then
	pass "lintian: no error, no warning ($(grep -c -E '^[IP]: ' "$resultdir/lintian.log") info/pedantic tags, above)"
else
	failed "lintian (exit $rc): errors or warnings, above"
fi
# The info and pedantic tags are exactly those systemd/OPERATIONS.md explains:
# each tag of its table, for each unit file the paragraph above the table
# names.  A new tag, or one gone, fails until the guide says so.
doc=$src/systemd/OPERATIONS.md
lintian_doc=$(awk '/^lintian \(/ { on = 1 } on && /^## / { exit } on' "$doc")
tags_want=$(for t in $(sed -n 's/^| `\([a-z0-9.+-]*\)` |.*/\1/p' <<<"$lintian_doc"); do
	for u in $(sed -n '/^|/q; p' <<<"$lintian_doc" | grep -o '`mmapq[a-z@-]*\.service`' | tr -d '`'); do
		echo "mmapq: $t [lib/systemd/system/$u]"
	done
done | sort)
tags_got=$(sed -n 's/^[IP]: //p' "$resultdir/lintian.log" | sort)
if [ -n "$tags_want" ] && [ "$tags_want" = "$tags_got" ]; then
	pass "lintian: the $(wc -l <<<"$tags_got") info tags are those systemd/OPERATIONS.md explains"
else
	failed "lintian's info and pedantic tags (+) are not those systemd/OPERATIONS.md explains (-):"
	diff <(echo "$tags_want") <(echo "$tags_got")
fi

# ---- 3. the packages as files --------------------------------------------------
x=$work/extract
for p in mmapq libmmapq2 libmmapq-dev; do
	dpkg-deb -x "$debs/${p}_${version}_$arch.deb" "$x" || die "dpkg-deb -x $p"
	dpkg-deb -e "$debs/${p}_${version}_$arch.deb" "$work/control-$p" || die "dpkg-deb -e $p"
done
conffiles=$(cat "$work/control-mmapq/conffiles" 2>/dev/null)
if [ "$conffiles" = /etc/mmapq/mmapq.ini ]; then pass "conffiles of mmapq: $conffiles"
else failed "conffiles of mmapq: '$conffiles', want /etc/mmapq/mmapq.ini"; fi
# In /usr the library is found by the dynamic linker's default path; an
# RPATH/RUNPATH to a system directory is what Debian forbids (lintian's
# custom-library-search-path), and the from-source install's $ORIGIN
# RUNPATH must not leak into the package.
bad=""
for f in "$x"/usr/bin/* "$x"/usr/lib/*/libmmapq.so.2.*; do
	readelf -d "$f" | grep -q -E 'RPATH|RUNPATH' && bad="$bad ${f#"$x"}"
done
if [ -z "$bad" ]; then pass "no RPATH or RUNPATH in the packaged programs and libmmapq"
else failed "RPATH/RUNPATH in:$bad"; fi
bad=""
for f in "$x"/usr/bin/* "$x"/usr/lib/*/libmmapq.so.2.*; do
	{ nm -D "$f" | grep -qw mmapq_fault || grep -q MMAPQ_FAULT "$f"; } && bad="$bad ${f#"$x"}"
done
if [ -z "$bad" ]; then pass "no fault points in the packaged programs and libmmapq (nm, strings)"
else failed "fault points in:$bad"; fi
# The user first (tmpfiles names it as the owner of /var/lib/mmapq, the
# units run as it), then the directory, then the units.
order=$(grep -n -o -E 'systemd-sysusers|systemd-tmpfiles|deb-systemd-invoke' "$work/control-mmapq/postinst" |
	awk -F: '!seen[$2]++ { printf "%s ", $2 }')
if [ "$order" = "systemd-sysusers systemd-tmpfiles deb-systemd-invoke " ]; then
	pass "postinst: $order(in this order)"
else failed "postinst runs: '$order'"; fi

# On removal the prerm stops every unit file of the package: each unit, and
# for a template NAME@.TYPE every instance ('NAME@*.TYPE'); the one
# dh_installsystemd adds stops only the units that are not templates.
# (its commands with continuation lines joined)
stop=$(sed -e ':a' -e '/\\$/{N;s/\\\n//;ba' -e '}' "$work/control-mmapq/prerm" |
	grep -E '^[[:space:]]*deb-systemd-invoke stop ' | tr -s '[:space:]' ' ')
n=0
missing=""
for f in "$x"/lib/systemd/system/* "$x"/usr/lib/systemd/system/*; do
	[ -f "$f" ] || continue
	n=$((n + 1))
	u=$(basename "$f")
	u="'${u/@./@*.}'"
	[[ "$stop" == *" $u"* ]] || missing="$missing $u"
done
if [ $n -gt 0 ] && [ -z "$missing" ]; then
	pass "prerm: stops every one of the $n unit files of mmapq (templates as NAME@*.TYPE)"
else
	failed "prerm: not stopped ($n unit files):${missing:- no unit file in the package}"
	grep -n 'deb-systemd-invoke' "$work/control-mmapq/prerm"
fi
# The library's ABI as the packages say it: the symbols file lists every
# function at LIBMMAPQ_2 with the version that brought it (2.0.0 for all of
# libmmapq 2.0), and a program built against it (mmapq's own) depends on
# the libmmapq2 that has them.
soname=$(readelf -d "$x"/usr/lib/*/libmmapq.so.2.* | sed -n 's/.*Library soname: \[\(.*\)\]/\1/p')
exported=$(nm -D --defined-only "$x"/usr/lib/*/libmmapq.so.2.* | awk '$2 == "T" { print $3 }' | sed 's/@@/@/' | sort)
listed=$(sed -n 's/^ \(mmapq_[^ ]*\) .*/\1/p' "$work/control-libmmapq2/symbols" 2>/dev/null | sort)
if [ "$soname" = libmmapq.so.2 ] && [ -n "$exported" ] && [ "$exported" = "$listed" ] &&
	! grep -E '^ mmapq_' "$work/control-libmmapq2/symbols" | grep -v -q ' 2\.0\.0$'; then
	pass "libmmapq2: SONAME $soname, its symbols file lists the $(wc -l <<<"$exported") functions it exports, each at 2.0.0"
else
	failed "libmmapq2: SONAME '$soname'; exported and listed in its symbols file differ, or a version is not 2.0.0:"
	diff <(echo "$exported") <(echo "$listed") | head -10
	head -5 "$work/control-libmmapq2/symbols" 2>/dev/null
fi
dep=$(dpkg-deb -f "$debs/mmapq_${version}_$arch.deb" Depends)
if grep -q -E '(^|, )libmmapq2 \(>= 2\.0\.0\)(,|$)' <<<"$dep"; then
	pass "mmapq depends on libmmapq2 (>= 2.0.0)"
else
	failed "mmapq's Depends: '$dep', want libmmapq2 (>= 2.0.0)"
fi
dep=$(dpkg-deb -f "$debs/libmmapq-dev_${version}_$arch.deb" Depends)
if grep -q -E "(^|, )libmmapq2 \\(= $version\\)(,|\$)" <<<"$dep"; then
	pass "libmmapq-dev depends on libmmapq2 (= $version)"
else
	failed "libmmapq-dev's Depends: '$dep', want libmmapq2 (= $version)"
fi
# What an upgrade from mmapq 0.x asks of the administrator (the queue file
# and the configuration keys), where apt-listchanges shows it
if zcat -f "$x"/usr/share/doc/mmapq/NEWS.Debian* 2>/dev/null | grep -q 'mmapqctl recreate'; then
	pass "mmapq has NEWS.Debian, naming mmapqctl recreate"
else
	failed "mmapq has no NEWS.Debian naming mmapqctl recreate"
fi
# The drop-in directory of the operations guide's and mmapq-consumer(8)'s examples
if dpkg-deb -c "$debs/mmapq_${version}_$arch.deb" | grep -E '^d.* \./etc/mmapq/mmapq\.ini\.d/$' >/dev/null; then
	pass "mmapq has the directory /etc/mmapq/mmapq.ini.d"
else
	failed "mmapq has no directory /etc/mmapq/mmapq.ini.d"
fi

# ---- 4. the Debian root, cached ------------------------------------------------
# Its packages: systemd (PID 1, journald, sysusers, tmpfiles), gcc,
# libc6-dev and pkgconf for building against libmmapq-dev, and every
# dependency of the three packages (first alternative, versions dropped),
# so that the container installs them with no network at all.
deps=$(for p in mmapq libmmapq2 libmmapq-dev; do
	dpkg-deb -f "$debs/${p}_${version}_$arch.deb" Depends | tr ',' '\n'
done | sed -e 's/|.*//' -e 's/(.*)//' -e 's/:any//' -e 's/[[:space:]]//g' |
	grep -v -x -E 'mmapq|libmmapq2|libmmapq-dev|' | sort -u)
# shellcheck disable=SC2086 # one package a word
include=$(printf '%s\n' systemd gcc libc6-dev pkgconf $deps | sort -u | paste -sd, -)
suite=bookworm
recipe="mmdebstrap --variant=apt --include=$include $suite"
key=$(printf '%s\n' "$recipe" | sha256sum | cut -c1-16)
root=$cache/root-$key
mkdir -p "$cache" || die "cannot create $cache"
# One build at a time per machine; a second run waits for it and reuses it.
exec {lockfd}>"$cache/lock"
flock "$lockfd" || die "cannot lock $cache/lock"
if [ -f "$root/.mmapq-root-ok" ]; then
	pass "cached Debian root $root (packages: $include)"
else
	rm -rf --one-file-system "$root.tmp"
	echo "deb-container: building a Debian $suite root: $recipe" >&2
	t=$(date +%s)
	if mmdebstrap --variant=apt "--include=$include" "$suite" "$root.tmp" >"$resultdir/mmdebstrap.log" 2>&1; then
		printf '%s\n' "$recipe" >"$root.tmp/.mmapq-root-ok"
		mv "$root.tmp" "$root" || die "cannot move $root.tmp to $root"
		pass "built the Debian root $root in $(($(date +%s) - t)) s (packages: $include)"
	else
		tail -20 "$resultdir/mmdebstrap.log"
		rm -rf --one-file-system "$root.tmp"
		die "mmdebstrap failed (log: $resultdir/mmdebstrap.log)"
	fi
fi
# Roots of other package lists that no run used for two weeks go.
touch "$root"
find "$cache" -mindepth 1 -maxdepth 1 -name 'root-*' ! -path "$root" -mtime +14 \
	-exec rm -rf --one-file-system {} +
exec {lockfd}>&-

# ---- 5. boot it: deb-scenario.sh -------------------------------------------------
testdir=$work/test
units=$work/units
mkdir -p "$testdir" "$units"
cp "$here/lib.sh" "$here/deb-scenario.sh" "$src/common/queue/examples/producer.c" "$testdir/"
cp -a "$debs" "$testdir/debs"
# lib.sh's paths, as the packages install them
printf 'MMAPQ_BINDIR=/usr/bin\nMMAPQ_CONFIG=/etc/mmapq/mmapq.ini\n' >"$testdir/mmapq-test.env"
sandbox_test_units "$units" deb-scenario.sh
# The root's own /etc/systemd/system stays (the packages enable units in
# it): the two test units are bound in as files.  Everything the scenario
# writes lands in the overlay, which goes with the container.
sandbox_boot "$root" --volatile=overlay "--bind-ro=$testdir:/mmapq-test" \
	"--bind-ro=$units/mmapq-test.target:/etc/systemd/system/mmapq-test.target" \
	"--bind-ro=$units/mmapq-test.service:/etc/systemd/system/mmapq-test.service"
rc=$?
[ $rc = 0 ] || fail=1
echo "deb-container: total $(elapsed)" >&2
if [ $fail = 0 ]; then echo "deb-container: PASS"; else echo "deb-container: FAILED"; fi
[ $rc = 124 ] || [ $rc = 137 ] && exit 124
exit $fail
