#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# install.sh BUILD_DIR -- installing from source, without root:
#   1. `cmake --install` into a temporary DESTDIR puts every file where systemd
#      252 looks for it for the build's prefix: the units (single queue and
#      templates) in PREFIX/lib/systemd/system, sysusers.d and tmpfiles.d in
#      PREFIX/lib/... (for the prefix /usr: where `pkg-config systemd` says,
#      as Debian wants), the configuration in SYSCONFDIR/mmapq/mmapq.ini and
#      its drop-in directory mmapq.ini.d/, empty;
#   2. `uninstall` (same DESTDIR) after mmapq.ini was edited and a drop-in
#      written into that directory (as OPERATIONS.md does: no mkdir): every
#      installed file is gone, the edited mmapq.ini and the drop-in stay;
#   3. install and `uninstall` again with mmapq.ini as shipped: nothing is
#      left, not even /etc/mmapq (nor mmapq.ini.d in it);
#   4. configure-only: prefix /usr gets pkg-config's directories and
#      /etc/mmapq; /usr/local gets /usr/local/lib/... and /usr/local/etc/mmapq;
#      /opt/mmapq (which systemd does not search) is warned about; the bash
#      completion goes to pkg-config bash-completion's completionsdir for
#      /usr, PREFIX/share/bash-completion/completions for the others.
# Step 1 also loads the installed completion through bash-completion's own
# loader (mmapq-producer and mmapq-consumer are links to mmapqctl).
# Exit 0 pass, 1 fail.
set -u
build=$(cd "${1:?usage: install.sh BUILD_DIR}" && pwd) || exit 1
src=$(cd "$(dirname "$0")/../.." && pwd)
fail=0
pass() { echo "install: PASS: $*"; }
failed() { echo "install: FAIL: $*"; fail=1; }
# shellcheck source=/dev/null
. "$build/systemd/mmapq-test.env"
work=$(mktemp -d /tmp/mmapq-install.XXXXXX) || exit 1
trap 'rm -rf "$work"' EXIT
stage=$work/stage

# Where systemd wants them for a prefix: PREFIX/lib/..., except for /usr.
want_dirs() { # PREFIX -> "unitdir sysusersdir tmpfilesdir"
	if [ "$1" = /usr ]; then
		echo "$(pkg-config --variable=systemdsystemunitdir systemd)" \
			"$(pkg-config --variable=sysusersdir systemd)" "$(pkg-config --variable=tmpfilesdir systemd)"
	else
		echo "$1/lib/systemd/system $1/lib/sysusers.d $1/lib/tmpfiles.d"
	fi
}

# Where bash-completion wants them for a prefix: its completionsdir for /usr
# (pkg-config bash-completion; that directory if bash-completion is not
# installed), PREFIX/share/bash-completion/completions (found through
# $XDG_DATA_DIRS) otherwise.
want_completionsdir() { # PREFIX -> dir
	local d=""
	[ "$1" = /usr ] && d=$(pkg-config --variable=completionsdir bash-completion 2>/dev/null)
	[ -n "$d" ] || d=$1/share/bash-completion/completions
	echo "$d"
}

# ---- 1. what goes where ----------------------------------------------------
DESTDIR=$stage cmake --install "$build" >"$work/install.log" 2>&1 ||
	{ cat "$work/install.log"; echo "install: FAIL: cmake --install"; exit 1; }
read -r unitdir sysusersdir tmpfilesdir <<<"$(want_dirs "$MMAPQ_PREFIX")"
# the SONAME's number: the library version's major (libmmapq.so.2)
soversion=${MMAPQ_LIB_VERSION%%.*}
compdir=$(want_completionsdir "$MMAPQ_PREFIX")
expected=(
	"$MMAPQ_BINDIR/mmapq-producer" "$MMAPQ_BINDIR/mmapq-consumer" "$MMAPQ_BINDIR/mmapqctl"
	"$MMAPQ_PREFIX/share/man/man8/mmapq-producer.8" "$MMAPQ_PREFIX/share/man/man8/mmapq-consumer.8"
	"$MMAPQ_PREFIX/share/man/man1/mmapqctl.1" "$MMAPQ_PREFIX/share/man/man5/mmapq.ini.5"
	"$MMAPQ_PREFIX/share/man/man7/mmapq-protocol.7"
	"$compdir/mmapqctl" "$compdir/mmapq-producer" "$compdir/mmapq-consumer"
	"$sysusersdir/mmapq.conf" "$tmpfilesdir/mmapq.conf" "$MMAPQ_CONFIG"
	"$MMAPQ_LIBDIR/libmmapq.so" "$MMAPQ_LIBDIR/libmmapq.so.$soversion" "$MMAPQ_LIBDIR/libmmapq.so.$MMAPQ_LIB_VERSION"
	"$MMAPQ_INCLUDEDIR/mmapq.h" "$MMAPQ_LIBDIR/pkgconfig/mmapq.pc"
	"$MMAPQ_LIBDIR/cmake/mmapq/mmapqConfig.cmake" "$MMAPQ_LIBDIR/cmake/mmapq/mmapqConfigVersion.cmake"
	"$MMAPQ_LIBDIR/cmake/mmapq/mmapqTargets.cmake" "$MMAPQ_LIBDIR/cmake/mmapq/mmapqTargets-$MMAPQ_BUILD_TYPE.cmake"
)
for m in "$src"/common/queue/man/*.3; do
	expected+=("$MMAPQ_MANDIR/man3/$(basename "$m")")
done
for u in mmapq.target mmapq-producer.socket mmapq-producer.service mmapq-consumer.service \
	mmapq@.target mmapq-producer@.socket mmapq-producer@.service mmapq-consumer@.service \
	mmapq-consumer-named@.service mmapq-metrics.socket mmapq-metrics@.service mmapq-metrics@.socket \
	mmapq-metrics-serve@.service \
	mmapq-consumer-nats.service mmapq-consumer-nats@.service; do
	expected+=("$unitdir/$u")
done
(cd "$stage" && find . \( -type f -o -type l \) | sed 's#^\.##' | sort) >"$work/installed"
printf '%s\n' "${expected[@]}" | sort >"$work/expected"
if diff -u "$work/expected" "$work/installed" >"$work/diff"; then
	pass "prefix $MMAPQ_PREFIX: exactly the ${#expected[@]} expected files (units in $unitdir, $sysusersdir, $tmpfilesdir)"
else
	failed "prefix $MMAPQ_PREFIX: installed files differ from the expected ones:"; cat "$work/diff"
fi
# the drop-in directory, empty, beside mmapq.ini (OPERATIONS.md writes into it)
out=$(stat -c '%F %a' "$stage$MMAPQ_CONFIG.d" 2>&1)
if [ "$out" = "directory 755" ] && [ -z "$(ls -A "$stage$MMAPQ_CONFIG.d")" ]; then
	pass "$MMAPQ_CONFIG.d: an empty directory, 0755"
else
	failed "$MMAPQ_CONFIG.d: '$out' $(find "$stage$MMAPQ_CONFIG.d" -mindepth 1 -printf '%f ' 2>/dev/null)"
fi
# the completion: one file, the daemons' names links to it, each found by
# bash-completion's loader where the prefix's directory is searched
links=""
for c in mmapq-producer mmapq-consumer; do
	[ -L "$stage$compdir/$c" ] && [ "$(readlink "$stage$compdir/$c")" = mmapqctl ] || links="$links $c"
done
if [ -z "$links" ]; then
	pass "bash completion: $compdir/mmapqctl, mmapq-producer and mmapq-consumer links to it"
else
	failed "bash completion: not a link to mmapqctl in $compdir:$links"
fi
helpers=/usr/share/bash-completion/bash_completion
if [ -r "$helpers" ] && [ "${compdir%/bash-completion/completions}" != "$compdir" ]; then
	for c in mmapqctl mmapq-producer mmapq-consumer; do
		spec=$(XDG_DATA_DIRS=$stage${compdir%/bash-completion/completions} BASH_COMPLETION_USER_DIR=$work/none \
			bash --norc --noprofile -c '. "$1" && __load_completion "$2" && complete -p "$2"' \
			bash "$helpers" "$c" 2>&1)
		case $spec in
			"complete -F _mmapq"*" $c") pass "bash-completion's loader finds $c: $spec" ;;
			*) failed "bash-completion's loader, $c: '$spec'" ;;
		esac
	done
else
	echo "install: (bash-completion's loader not tried: $helpers missing, or $compdir not a completions dir)"
fi

# ---- 1b. nothing of the tests in what is installed ----------------------------
# The fault points of the crash tests (MMAPQ_FAULT) exist only in the
# test-only mmapq_faults and daemons/faults/: never in an installed program
# or library, whatever the build was configured with.
bad=""
for f in "$stage$MMAPQ_BINDIR"/* "$stage$MMAPQ_LIBDIR"/libmmapq.so.$MMAPQ_LIB_VERSION; do
	if nm "$f" 2>/dev/null | grep -qw mmapq_fault || nm -D "$f" 2>/dev/null | grep -qw mmapq_fault ||
	   grep -q MMAPQ_FAULT "$f"; then
		bad="$bad $f"
	fi
done
[ -z "$bad" ] && pass "no fault points in the installed programs and libmmapq (nm, strings)" ||
	failed "fault points installed in:$bad"
# libmmapq exports exactly the functions mmapq.h declares
want=$(sed -n 's/^MMAPQ_API [^(]*[ *]\(mmapq_[a-z_]*\)(.*/\1/p' "$stage$MMAPQ_INCLUDEDIR/mmapq.h" | sort | tr '\n' ' ')
have=$(nm -D --defined-only "$stage$MMAPQ_LIBDIR/libmmapq.so.$MMAPQ_LIB_VERSION" | awk '$2 == "T" { sub(/@.*/, "", $3); print $3 }' | sort -u | tr '\n' ' ')
# libmmapq 2: every function at LIBMMAPQ_2, its default version (a later
# interface change adds a node; the symbols file of the Debian package,
# debian/libmmapq2.symbols, lists exactly what the library exports)
versions=$(nm -D --defined-only "$stage$MMAPQ_LIBDIR/libmmapq.so.$MMAPQ_LIB_VERSION" |
	awk '$2 == "T" && $3 !~ /@@LIBMMAPQ_2$/ { print $3 }' | sort | tr '\n' ' ')
[ -z "$versions" ] && pass "every function at LIBMMAPQ_2" ||
	failed "functions not at LIBMMAPQ_2: $versions"
symbols=$(sed -n 's/^ \(mmapq_[a-z_]*\)@LIBMMAPQ_2 .*/\1/p' "$src/debian/libmmapq$soversion.symbols" 2>/dev/null |
	sort | tr '\n' ' ')
[ -n "$have" ] && [ "$symbols" = "$have" ] &&
	pass "debian/libmmapq$soversion.symbols lists exactly what the library exports" ||
	failed "debian/libmmapq$soversion.symbols lists '$symbols', the library exports '$have'"
[ -n "$want" ] && [ "$want" = "$have" ] && pass "libmmapq exports exactly the $(wc -w <<<"$want") functions of mmapq.h" ||
	failed "libmmapq exports '$have', mmapq.h declares '$want'"
soname=$(readelf -d "$stage$MMAPQ_LIBDIR/libmmapq.so.$MMAPQ_LIB_VERSION" | sed -n 's/.*Library soname: \[\(.*\)\]/\1/p')
[ "$soname" = "libmmapq.so.$soversion" ] && pass "SONAME libmmapq.so.$soversion" || failed "SONAME '$soname'"
# Below a prefix of their own the programs find libmmapq through a RUNPATH
# relative to themselves (no ldconfig for /usr/local or /opt, and a staged
# or moved tree still works); with the prefix /usr the library is in the
# linker's default path and a RUNPATH is what Debian forbids (the
# deb_container test checks the packages).
if [ "$MMAPQ_PREFIX" = /usr ]; then
	want=""
else
	want="\$ORIGIN/../${MMAPQ_LIBDIR#"$MMAPQ_PREFIX"/}"
fi
for p in mmapq-producer mmapq-consumer mmapqctl; do
	runpath=$(readelf -d "$stage$MMAPQ_BINDIR/$p" | sed -n 's/.*Library r[un]*path: \[\(.*\)\]/\1/p')
	[ "$runpath" = "$want" ] || failed "$p: RUNPATH '$runpath', want '$want'"
done
found=$(env -u LD_LIBRARY_PATH ldd "$stage$MMAPQ_BINDIR/mmapq-producer" |
	sed -n "s/.*libmmapq\\.so\\.$soversion => \\([^ ]*\\).*/\\1/p")
if [ -n "$want" ] && [ -n "$found" ] &&
	[ "$(realpath "$found")" = "$(realpath "$stage$MMAPQ_LIBDIR/libmmapq.so.$soversion")" ] &&
	env -u LD_LIBRARY_PATH "$stage$MMAPQ_BINDIR/mmapq-producer" --version >/dev/null; then
	pass "RUNPATH '$want': the staged programs run with the staged libmmapq ($found)"
elif [ -z "$want" ]; then
	pass "no RUNPATH with the prefix /usr"
else
	failed "the staged mmapq-producer resolves libmmapq.so.$soversion to '$found', want $stage$MMAPQ_LIBDIR/libmmapq.so.$soversion"
fi

# ---- 2. uninstall keeps an edited mmapq.ini and the drop-ins -------------------
ini=$stage$MMAPQ_CONFIG
echo "; edited by the administrator" >>"$ini"
printf '[log]\nlevel = debug\n' >"$ini.d/50-local.ini" || failed "no $MMAPQ_CONFIG.d to write a drop-in into"
cp "$ini" "$work/edited.ini"
DESTDIR=$stage cmake --build "$build" --target uninstall >"$work/uninstall.log" 2>&1 ||
	{ cat "$work/uninstall.log"; failed "cmake --build --target uninstall"; }
left=$(cd "$stage" && find . \( -type f -o -type l \) | sed 's#^\.##' | sort | tr '\n' ' ')
if [ "$left" = "$MMAPQ_CONFIG $MMAPQ_CONFIG.d/50-local.ini " ] && cmp -s "$ini" "$work/edited.ini"; then
	pass "uninstall: every installed file removed; the edited $MMAPQ_CONFIG and its drop-in kept as they were"
else
	failed "uninstall after an edit left: '$left'"; cat "$work/uninstall.log"
fi
grep -q "Keeping: $ini (edited" "$work/uninstall.log" && pass "uninstall says it keeps the edited file" ||
	failed "uninstall did not say it keeps $ini"
# a second install does not overwrite it either
DESTDIR=$stage cmake --install "$build" >"$work/install.log" 2>&1 || failed "cmake --install (again)"
cmp -s "$ini" "$work/edited.ini" && pass "install again: the edited $MMAPQ_CONFIG is not overwritten" ||
	failed "install again overwrote the edited $MMAPQ_CONFIG"

# ---- 3. unedited: nothing left -------------------------------------------------
rm -rf "$stage"
DESTDIR=$stage cmake --install "$build" >"$work/install.log" 2>&1 || failed "cmake --install (fresh)"
DESTDIR=$stage cmake --build "$build" --target uninstall >"$work/uninstall.log" 2>&1 ||
	{ cat "$work/uninstall.log"; failed "uninstall (unedited)"; }
left=$(cd "$stage" && find . \( -type f -o -type l \) | tr '\n' ' ')
if [ -z "$left" ] && [ ! -e "$stage$(dirname "$MMAPQ_CONFIG")" ]; then
	pass "uninstall of an unedited install: no file left, $(dirname "$MMAPQ_CONFIG") (and its mmapq.ini.d) removed"
else
	failed "uninstall of an unedited install left: '$left' $(ls -d "$stage$(dirname "$MMAPQ_CONFIG")" 2>/dev/null)"
fi

# ---- 4. other prefixes (configure only) ------------------------------------------
for prefix in /usr /usr/local /opt/mmapq; do
	b=$work/build-${prefix//\//_}
	if ! cmake -S "$src" -B "$b" -DCMAKE_INSTALL_PREFIX=$prefix -DBUILD_TESTING=OFF >"$b.log" 2>&1; then
		cat "$b.log"; failed "configure with prefix $prefix"; continue
	fi
	# shellcheck source=/dev/null
	got=$(. "$b/systemd/mmapq-test.env" && echo "$MMAPQ_UNITDIR $MMAPQ_SYSUSERSDIR $MMAPQ_TMPFILESDIR $MMAPQ_CONFIG")
	case $prefix in # GNUInstallDirs' sysconfdir
		/usr) etc=/etc ;;
		/opt/*) etc=/etc$prefix ;;
		*) etc=$prefix/etc ;;
	esac
	want="$(want_dirs $prefix) $etc/mmapq/mmapq.ini"
	[ "$got" = "$want" ] && pass "prefix $prefix: $got" || failed "prefix $prefix: got '$got', want '$want'"
	c=$(want_completionsdir $prefix)
	if grep -qx "$c/mmapqctl" "$b/mmapq-installed.txt"; then
		pass "prefix $prefix: bash completion in $c"
	else
		failed "prefix $prefix: bash completion not into $c: $(grep bash-completion "$b/mmapq-installed.txt")"
	fi
	if [ $prefix = /opt/mmapq ]; then
		grep -q "systemd does not look there" "$b.log" && pass "prefix $prefix: configuring warns that systemd does not look there" ||
			failed "prefix $prefix: no warning that systemd does not search $prefix/lib/systemd/system"
	elif grep -q "systemd does not look there" "$b.log"; then
		failed "prefix $prefix: a warning although systemd searches there"; cat "$b.log"
	fi
done

if [ $fail = 0 ]; then echo "install: PASS"; else echo "install: FAILED"; fi
exit $fail
