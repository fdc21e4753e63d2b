# ktrial's in-guest case runner for LAVA (images/lava/README.md). `ktrial lava` writes a plan:
# this file followed by one kt_* call per command of the suite's program, the one the host's
# SSH runner executes, in the same order. Every value is a word of its own, and no value is
# read as shell text here: a command runs as its words (or, for a plain sh step, its script
# runs with /bin/sh -c, as over SSH). Every command's raw result goes to the console as
# KTREC lines for the host to judge with its own code; the in-guest judgement below only
# steers (stop a case at its first unexpected step) and tells LAVA each case's pass or fail.
KT=${KT:-/tmp/ktrial-lava}
kt_vars=$KT/suite
kt_seq=0
kt_failed=0

# kt_fill WORD: the word with each @KTV@name@ marker replaced by the value captured as name,
# left in kt_word; fails when a value is unset.
kt_fill() {
	kt_rest=$1
	kt_word=
	while :; do
		case $kt_rest in *@KTV@*@*) ;; *) break ;; esac
		kt_name=${kt_rest#*@KTV@}
		kt_name=${kt_name%%@*}
		[ -f "$kt_vars/$kt_name" ] || return 1
		# The dot keeps trailing newlines through the command substitution.
		kt_value=$(cat "$kt_vars/$kt_name"; echo .)
		kt_word=$kt_word${kt_rest%%@KTV@*}${kt_value%.}
		kt_rest=${kt_rest#*@KTV@*@}
	done
	kt_word=$kt_word$kt_rest
}

# Print a file as base64 in console-sized KTREC lines.
kt_emit() {
	{ base64 < "$2" | tr -d '\n'; echo; } | fold -w 160 | while read -r part; do
		[ -z "$part" ] || echo "KTREC $kt_seq $1 $part"
	done
}

# kt_exec TIMEOUT_S sh SCRIPT, or kt_exec TIMEOUT_S argv WORD...: run the script with
# /bin/sh -c or the words as a command, emit its record, leave its exit status in kt_rc.
kt_exec() {
	kt_seq=$((kt_seq + 1))
	kt_limit=$1
	kt_kind=$2
	shift 2
	if [ "$kt_kind" = sh ]; then
		printf '%s' "$1" > "$KT/cmd"
		kt_record=c
		set -- /bin/sh -c "$1"
	else
		# Each word ended by a NUL: the host puts them together as its own shell line.
		printf '%s\000' "$@" > "$KT/cmd"
		kt_record=a
	fi
	timeout "$kt_limit" "$@" > "$KT/out" 2> "$KT/err" < /dev/null
	kt_rc=$?
	kt_timedout=0
	if [ $kt_rc -eq 143 ] || [ $kt_rc -eq 124 ]; then kt_timedout=1; fi
	kt_emit $kt_record "$KT/cmd"
	kt_emit o "$KT/out"
	kt_emit e "$KT/err"
	echo "KTEND $kt_seq $kt_rc $kt_timedout"
}

# kt_step TOLERANT TIMEOUT_S N JUDGE... COMMAND: one step, judged by judge.awk with the N
# words of JUDGE (the program's judging data); COMMAND as for kt_exec. Skipped after a
# failure in the case unless TOLERANT is t (cleanup); not run when a value it needs is unset
# (a failure unless TOLERANT).
kt_step() {
	kt_tolerant=$1
	kt_limit_s=$2
	kt_njudge=$3
	shift 3
	if [ $kt_failed -eq 1 ] && [ "$kt_tolerant" != t ]; then return 0; fi
	# Each word with its captured values filled in, still a word of its own.
	for kt_w do
		shift
		case $kt_w in
		*@KTV@*@*)
			if ! kt_fill "$kt_w"; then
				[ "$kt_tolerant" = t ] || kt_failed=1
				return 0
			fi
			kt_w=$kt_word
			;;
		esac
		set -- "$@" "$kt_w"
	done
	kt_command "$@"
	if [ $kt_timedout -eq 1 ] || ! awk -v words=$kt_njudge -v rc=$kt_rc -v dir="$kt_vars" -f "$KT/judge.awk" -- "$KT/out" "$KT/err" "$@"; then kt_failed=1; fi
}

# The step's command: its words after the judging words.
kt_command() {
	shift $kt_njudge
	kt_exec "$kt_limit_s" "$@"
}

# A suite starts with no variables; a case starts with the suite's (its captures stay its own).
kt_suite() { rm -rf $KT/suite; mkdir -p $KT/suite; kt_vars=$KT/suite; kt_failed=0; echo "KTSUITE $kt_seq $1"; }
kt_case() { kt_failed=0; kt_case_id=$1; kt_vars=$KT/case; rm -rf $kt_vars; cp -r $KT/suite $kt_vars; echo "KTCASE $kt_seq $1"; }
kt_suite_cleanup() { kt_failed=0; kt_vars=$KT/suite; echo "KTCASE $kt_seq cleanup"; }
kt_case_end() {
	if [ $kt_failed -eq 0 ]; then r=pass; else r=fail; fi
	lava-test-case "$kt_case_id" --result $r 2>/dev/null || echo "KTRESULT $kt_case_id $r"
}
kt_skip() { lava-test-case "$1" --result skip 2>/dev/null || echo "KTRESULT $1 skip"; }
