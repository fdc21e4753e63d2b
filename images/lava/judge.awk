# In-guest judgement of one step's result (images/lava/runner.sh kt_step), the guest-side
# counterpart of harness/scenarios/agent.ts interpret() and expect.ts judge()/captureValues().
# It reads the step's judging data from the program (harness/lava/plan.ts judgeWords): how
# the result is read, the outcome, checks and captures. The host re-judges every recorded
# result with its own code; this one only steers the run and gives LAVA a per-case result.
# Operands: the step's stdout and stderr files, then the judging data, -v words of them.
# Exit 0: as expected (captures stored in dir); 1: not.
function hexval(h,   i, v) { v = 0; h = tolower(h); for (i = 1; i <= length(h); i++) v = v * 16 + index("0123456789abcdef", substr(h, i, 1)) - 1; return v }
function ws() { while (P <= length(J) && index(" \t\r\n", substr(J, P, 1))) P++ }
function jstr(   out, c) {
	P++; out = ""
	for (;;) {
		c = substr(J, P, 1)
		if (c == "") { JERR = 1; return out }
		if (c == "\"") { P++; return out }
		if (c == "\\") {
			P++; c = substr(J, P, 1)
			if (c == "n") out = out "\n"; else if (c == "t") out = out "\t"; else if (c == "r") out = out "\r"
			else if (c == "b") out = out "\b"; else if (c == "f") out = out "\f"
			else if (c == "u") { out = out sprintf("%c", hexval(substr(J, P + 1, 4))); P += 4 }
			else out = out c
			P++; continue
		}
		out = out c; P++
	}
}
# Flatten the JSON value at P into F[dotted.path] = its text as expectations see it.
function jval(path,   c, start, k, i) {
	ws(); c = substr(J, P, 1); start = P
	if (c == "{" || c == "[") {
		P++; ws(); i = 0
		if (substr(J, P, 1) == (c == "{" ? "}" : "]")) { P++; F[path] = substr(J, start, P - start); return }
		for (;;) {
			ws()
			if (c == "{") { k = jstr(); ws(); P++ } else k = i++
			jval(path == "" ? k : path "." k)
			ws(); k = substr(J, P, 1); P++
			if (k == "}" || k == "]") break
			if (k != ",") { JERR = 1; return }
		}
		F[path] = substr(J, start, P - start); return
	}
	if (c == "\"") { F[path] = jstr(); return }
	while (P <= length(J) && index(",}] \t", substr(J, P, 1)) == 0) P++
	if (P == start) JERR = 1
	F[path] = substr(J, start, P - start)
}
function parse(line) { split("", F); J = line; P = 1; JERR = 0; if (substr(line, 1, 1) != "{") return 0; jval(""); return !JERR && ("action" in F) && (F["ok"] == "true" || F["ok"] == "false") }
function norm(s) { sub(/\r?\n$/, "", s); return s }
function check(actual, op, text) { return op == "eq" ? actual == text : actual ~ text }
# Each file is read whole: RS is a character that output is taken not to hold.
BEGIN { RS = "\001"; ALL = ""; ERR = ""; nf = words; for (i = 1; i <= nf; i++) S[i] = ARGV[i + 2]; ARGC = 3 }
FILENAME == ARGV[1] { ALL = ALL $0 }
FILENAME == ARGV[2] { ERR = ERR $0 }
END {
	kind = S[1]; n = S[2] + 0; outcome = S[3]; arg = S[4]
	nl = split(ALL, L, "\n")
	if (kind == "sh") { stdout = ALL; final = 0 }
	else if (kind == "sh-in-agent") {
		got = 0; used = 0
		for (i = 1; i <= nl; i++) {
			if (got >= n) {
				if (L[i] ~ /^\{"agent_error"/) exit 1
				if (parse(L[i]) && F["ok"] == "false" && (F["stage"] == "identity" || F["action"] == "exec")) exit 1
				break
			}
			used += length(L[i]) + 1
			if (L[i] == "") continue
			if (!parse(L[i])) exit 1
			if (F["ok"] == "false" && (F["stage"] == "identity" || F["stage"] == "pre")) exit 1
			got++
		}
		if (rc == 3 && got < n) exit 1
		stdout = substr(ALL, used + 1); final = 0
	} else {
		last = ""
		for (i = 1; i <= nl; i++) {
			if (L[i] == "") continue
			if (L[i] ~ /^\{"agent_error"/ || !parse(L[i])) exit 1
			if (F["ok"] == "false" && (F["stage"] == "identity" || F["stage"] == "pre")) exit 1
			last = L[i]
		}
		if (last == "" || !parse(last) || F["index"] != n) exit 1
		final = 1
	}
	if (final) {
		if (outcome == "errno") pass = F["ok"] == "false" && F["errno"] == arg
		else if (outcome == "error") pass = F["ok"] == "false"
		else if (outcome == "any") pass = 1
		else pass = F["ok"] == "true"
	} else {
		code = outcome == "exit" ? arg + 0 : 0
		pass = outcome == "any" || ((outcome == "ok" || outcome == "exit") && rc == code)
		V["stdout"] = stdout; V["output"] = norm(stdout); V["exit"] = rc; V["stderr"] = ERR
	}
	for (i = 5; i <= nf; i++) {
		if (S[i] == "c") {
			f = S[i + 1]
			if (final) { has = f in F; a = f == "output" ? norm(F[f]) : F[f] } else { has = f == "output"; a = V["output"] }
			if (pass && (outcome == "ok" || outcome == "exit") && !(has && check(a, S[i + 2], S[i + 3]))) pass = 0
			i += 3
		} else if (S[i] == "v") i += 2
	}
	if (!pass) exit 1
	for (i = 5; i <= nf; i++) {
		if (S[i] == "c") { i += 3; continue }
		if (S[i] != "v") continue
		f = S[i + 2]
		if (final) { if (!(f in F)) exit 1; a = f == "output" ? norm(F[f]) : F[f] } else { if (!(f in V)) exit 1; a = V[f] }
		printf "%s", a > (dir "/" S[i + 1]); close(dir "/" S[i + 1])
		i += 2
	}
	exit 0
}
