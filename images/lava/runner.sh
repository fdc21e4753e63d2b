# ktrial's in-guest case runner for LAVA (images/lava/README.md). `ktrial lava` writes a plan:
# this file followed by one kt_* call per command the host's scenario runner would send over
# SSH, in the same order. Every command's raw result goes to the console as KTREC lines for
# the host to judge with its own code; the in-guest judgement below only steers (stop a case
# at its first unexpected step) and tells LAVA each case's pass or fail.
KT=/tmp/ktrial-lava
kt_vars=$KT/suite
kt_seq=0
kt_failed=0

# A command with @KTV@name@ markers for values captured in the guest: the marker replaced by
# the value, or nothing printed (exit 1) when a variable is unset.
kt_fill() {
	awk -v dir=$kt_vars 'BEGIN { RS = "\001" } {
		out = ""; s = $0
		while (match(s, /@KTV@[A-Za-z0-9_.-]+@/)) {
			name = substr(s, RSTART + 5, RLENGTH - 6); f = dir "/" name
			v = ""; got = 0
			while ((getline line < f) > 0) { v = v (got ? "\n" : "") line; got = 1 }
			close(f)
			if (!got) exit 1
			out = out substr(s, 1, RSTART - 1) v; s = substr(s, RSTART + RLENGTH)
		}
		# The dot keeps trailing newlines through the command substitution of the caller.
		printf "%s.", out s
	}'
}

# Print a file as base64 in console-sized KTREC lines.
kt_emit() {
	{ base64 < "$2" | tr -d '\n'; echo; } | fold -w 160 | while read -r part; do
		[ -z "$part" ] || echo "KTREC $kt_seq $1 $part"
	done
}

# kt_exec TIMEOUT_S COMMAND: run it, emit its record, leave exit status in kt_rc.
kt_exec() {
	kt_seq=$((kt_seq + 1))
	printf '%s' "$2" > $KT/cmd
	timeout "$1" /bin/sh -c "$2" > $KT/out 2> $KT/err < /dev/null
	kt_rc=$?
	kt_timedout=0
	if [ $kt_rc -eq 143 ] || [ $kt_rc -eq 124 ]; then kt_timedout=1; fi
	kt_emit c $KT/cmd
	kt_emit o $KT/out
	kt_emit e $KT/err
	echo "KTEND $kt_seq $kt_rc $kt_timedout"
}

# kt_step TIMEOUT_S COMMAND JUDGE [TOLERANT]: one step, skipped after a failure unless
# TOLERANT (cleanup), or when a variable it needs is unset.
kt_step() {
	if [ $kt_failed -eq 1 ] && [ -z "$4" ]; then return; fi
	if ! cmd=$(printf '%s' "$2" | kt_fill); then
		[ -n "$4" ] || kt_failed=1
		return 0
	fi
	cmd=${cmd%.}
	spec=$(printf '%s' "$3" | kt_fill) || spec=-
	spec=${spec%.}
	kt_exec "$1" "$cmd"
	if [ $kt_timedout -eq 1 ] || ! kt_judge "$spec"; then kt_failed=1; fi
}

# Judge the last command's result: pass (and store captures) or fail. JUDGE is one line:
# KIND NPRE NACT|OUTCOME|ARG|check...|capture...  with checks "c FIELD eq|re TEXT" and
# captures "v NAME FIELD", fields separated by tabs.
kt_judge() {
	KT_SPEC="$1" awk -v rc=$kt_rc -v dir=$kt_vars -v errfile=$KT/err -f $KT/judge.awk $KT/out
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
