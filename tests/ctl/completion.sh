#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# completion.sh BUILD_DIR -- the bash completion (daemons/completion/, as
# configured into BUILD_DIR), loaded into a real non-interactive bash with
# bash-completion's helpers, its function called as readline would call it
# (COMP_WORDS split at COMP_WORDBREAKS, COMP_CWORD, COMP_LINE, COMP_POINT),
# and COMPREPLY compared with what the programs' own --help says:
#   * mmapqctl's commands are the ones under "Commands:";
#   * "-" offers exactly the long options --help lists for each program, and
#     for mmapqctl, before a command, those that are not a command's own;
#     after each command, the common ones and that command's own (an option
#     whose help starts "CMD:" or "CMD and CMD:");
#   * file names after --config/-c, --queue/-q, --socket (also as --OPT=);
#     nothing after --count, --timeout, or a command's arguments;
#   * instance names after --instance/-i: the *.ini files of a temporary
#     configuration directory but mmapq.ini, names with ':' as readline wants
#     them; with --config FILE on the line, those beside FILE.
# Exit 0 pass, 1 fail, 77 skip (bash-completion is not installed:
# tests/deps.sh --test installs it).
set -u
build=$(cd "${1:?usage: completion.sh BUILD_DIR}" && pwd) || exit 1
helpers=/usr/share/bash-completion/bash_completion
script=$build/daemons/completion/mmapqctl
bin=$build/daemons
[ -r "$helpers" ] || { echo "completion: SKIP: $helpers missing (package bash-completion)" >&2; exit 77; }
[ -r "$script" ] || { echo "completion: FAIL: $script missing"; exit 1; }
work=$(mktemp -d /tmp/mmapq-completion.XXXXXX) || exit 1
trap 'rm -rf "$work"' EXIT
fail=0 checks=0
failed() { echo "completion: FAIL: $*"; fail=1; }

# complete LINE: the completions bash offers with the cursor at the end of
# LINE, sorted, one per line.
complete_line() {
	MMAPQ_COMPLETION_CONFDIR=$work/etc bash --norc --noprofile -c '
		set -u
		. "$1" || exit 1
		. "$2" || exit 1
		line=$3
		# COMP_WORDS as readline splits them: at blanks, and every
		# COMP_WORDBREAKS character that is not a blank ("=", ":") a word
		# of its own
		COMP_WORDS=()
		word=""
		for ((i = 0; i < ${#line}; i++)); do
			c=${line:i:1}
			case $c in
				" ") [ -n "$word" ] && COMP_WORDS+=("$word"); word="" ;;
				"=" | ":") [ -n "$word" ] && COMP_WORDS+=("$word"); COMP_WORDS+=("$c"); word="" ;;
				*) word+=$c ;;
			esac
		done
		# the word at the cursor: empty after a blank, the break character
		# itself right after one ("--config=": "=")
		if [ -n "$word" ] || [ "${line: -1}" = " " ]; then
			COMP_WORDS+=("$word")
		fi
		COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
		COMP_LINE=$line
		COMP_POINT=${#line}
		cmd=${COMP_WORDS[0]}
		spec=$(complete -p "$cmd" 2>/dev/null || complete -p "${cmd##*/}") || exit 1
		fn=${spec#*-F }
		fn=${fn%% *}
		COMPREPLY=()
		"$fn" "$cmd" "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD - 1]}"
		for r in "${COMPREPLY[@]}"; do printf "%s\n" "$r"; done
	' complete "$helpers" "$script" "$1" | sort
}

# expect LINE WORD...: the completions of LINE are exactly the WORDs.
expect() {
	local line=$1 got want
	shift
	checks=$((checks + 1))
	got=$(complete_line "$line")
	want=$(printf '%s\n' "$@" | sed '/^$/d' | sort)
	[ "$got" = "$want" ] ||
		failed "'$line' completes to '$(tr '\n' ' ' <<<"$got")', want '$(tr '\n' ' ' <<<"$want")'"
}

# ---- what --help says -----------------------------------------------------
# commands PROG: the words under "Commands:"
commands() {
	"$bin/$1" --help | awk '/^Commands:/ { c = 1; next } /^$/ { c = 0 } c && /^  [a-z]/ { print $1 }'
}
# options PROG [CMD]: the long options --help lists; with CMD, for
# mmapqctl: those that are common or CMD's own; with "" those that are common.
options() {
	local prog=$1 cmd=${2-} line opt desc owners
	"$bin/$prog" --help | sed -n '/^Options:/,$p' | while IFS= read -r line; do
		[[ $line =~ ^\ +(-[A-Za-z],\ )?(--[a-z-]+)(\ [A-Z]+)?\ +(.*)$ ]] || continue
		opt=${BASH_REMATCH[2]} desc=${BASH_REMATCH[4]}
		if [ $# -gt 1 ] && [[ $desc =~ ^([a-z]+((, | and )[a-z]+)*): ]]; then
			owners=${BASH_REMATCH[1]//,/}
			owners=" ${owners// and / } "
			if [ -z "$cmd" ] || [[ $owners != *" $cmd "* ]]; then
				continue
			fi
		fi
		echo "$opt"
	done
}

mapfile -t ctl_commands < <(commands mmapqctl)
[ "${#ctl_commands[@]}" -ge 6 ] || failed "mmapqctl --help lists ${#ctl_commands[@]} commands: ${ctl_commands[*]}"
mapfile -t common < <(options mmapqctl "")
[ "${#common[@]}" -ge 6 ] || failed "mmapqctl --help lists ${#common[@]} common options: ${common[*]}"
# each line of --help that names an option is understood by options() (a
# new layout must not make the test compare nothing)
for p in mmapqctl mmapq-producer mmapq-consumer; do
	n_help=$("$bin/$p" --help | sed -n '/^Options:/,$p' | grep -c '^ *-')
	n_opts=$(options "$p" | wc -l)
	[ "$n_help" = "$n_opts" ] || failed "$p --help: $n_help option lines, $n_opts understood"
done

# ---- mmapqctl --------------------------------------------------------------
expect "mmapqctl " "${ctl_commands[@]}"
mapfile -t want < <(printf '%s\n' "${ctl_commands[@]}" | grep '^s')
expect "mmapqctl s" "${want[@]}"
expect "mmapqctl -" "${common[@]}"
expect "mmapqctl --q" --queue
for cmd in "${ctl_commands[@]}"; do
	mapfile -t want < <(options mmapqctl "$cmd")
	expect "mmapqctl $cmd -" "${want[@]}"
	# the command found behind options and their arguments
	expect "mmapqctl --config /x.ini -q /x --instance a $cmd --" "${want[@]}"
	expect "mmapqctl --queue=/x $cmd --" "${want[@]}"
done
# the command's own options only after it, and only its own
expect "mmapqctl --js"
expect "mmapqctl status --js" --json
expect "mmapqctl dump --j" --json
expect "mmapqctl consumers --j" --json
expect "mmapqctl consumer " remove
expect "mmapqctl consumer --js"
expect "mmapq-consumer --na" --name --named-instance
expect "mmapqctl send --j"
expect "mmapqctl export --j"
expect "mmapqctl repair --j"
expect "mmapqctl re" recreate repair
expect "mmapqctl metrics --h" --help --http
expect "mmapqctl status --h" --help
expect "mmapqctl send --t" --timeout
# nothing to offer: a command's arguments, numbers
expect "mmapqctl status "
expect "mmapqctl send "
expect "mmapqctl send --timeout "
expect "mmapqctl send --timeout 5 1 2 "
expect "mmapqctl export "
expect "mmapqctl repair "

# ---- the daemons -----------------------------------------------------------
for p in mmapq-producer mmapq-consumer; do
	mapfile -t want < <(options "$p")
	expect "$p -" "${want[@]}"
	expect "$bin/$p --" "${want[@]}"
	expect "$p "
	expect "$p --queue /x "
done
expect "mmapq-consumer --count "
expect "mmapq-consumer --co" --config --count
expect "mmapq-producer --co" --config

# ---- file names and instances ----------------------------------------------
mkdir -p "$work/etc/mmapq.ini.d" "$work/etc/dir.ini"
for f in mmapq.ini orders.ini audit.ini "x:y.ini" other.conf "backup.ini~" .hidden.ini; do
	: >"$work/etc/$f"
done
for p in mmapqctl mmapq-producer mmapq-consumer; do
	expect "$p --instance " audit orders x:y
	expect "$p -i o" orders
	expect "$p --instance=a" audit
	expect "$p --instance x:" y
done
expect "mmapqctl status --instance " audit orders x:y
# beside the file --config names, as the programs look there
mkdir -p "$work/other"
: >"$work/other/mmapq.ini"
: >"$work/other/billing.ini"
expect "mmapqctl --config $work/other/x.ini --instance " billing
expect "mmapq-consumer --config=$work/other/x.ini -i " billing
expect "mmapqctl -c $work/other/mmapq.ini status --instance b" billing
e=$work/etc
expect "mmapqctl --config $e/o" "$e/orders.ini" "$e/other.conf"
expect "mmapqctl --config=$e/au" "$e/audit.ini"
expect "mmapqctl -c $e/mm" "$e/mmapq.ini" "$e/mmapq.ini.d"
expect "mmapq-consumer --queue $e/b" "$e/backup.ini~"
expect "mmapqctl send --socket $e/au" "$e/audit.ini"
expect "mmapq-producer -q $e/d" "$e/dir.ini"

if [ $fail = 0 ]; then
	echo "completion: PASS: $checks completions agree with the programs' --help (${#ctl_commands[@]} commands, options per program and command, files, instances)"
else
	echo "completion: FAILED"
fi
exit $fail
