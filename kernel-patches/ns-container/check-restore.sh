#!/bin/sh
# Self-check of the restored patch against the damaged text it came from.
#
# The damaged text lost every newline, had every run of whitespace
# collapsed to one space, and had every <...> span (no whitespace inside)
# removed.  Apply the same damage to the restored patch and require the
# result to equal the damaged text exactly.
#
# usage: check-restore.sh [RESTORED_PATCH [DAMAGED_TEXT]]
set -eu
here=$(cd "$(dirname "$0")" && pwd)
restored=${1:-$here/ns-container.patch}
damaged=${2:-$here/ns-container.damaged.txt}

damage() {
	sed -E 's/<[^[:space:]<>]+>//g' "$1" | tr -s ' \t\n' '   ' |
		sed -E 's/^ //; s/ $//'
}

# Without this, a missing input would damage to nothing on both sides and compare equal.
for f in "$restored" "$damaged"; do
	if [ ! -r "$f" ] || [ ! -s "$f" ]; then
		echo "check-restore: $f is missing, unreadable or empty" >&2
		exit 2
	fi
done

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
damage "$restored" > "$tmp/restored"
damage "$damaged" > "$tmp/damaged"
if cmp -s "$tmp/restored" "$tmp/damaged"; then
	echo "check-restore: OK ($(wc -c < "$tmp/damaged") characters match)"
	exit 0
fi
echo "check-restore: MISMATCH (restored vs damaged, one word per line):" >&2
tr ' ' '\n' < "$tmp/restored" > "$tmp/r.words"
tr ' ' '\n' < "$tmp/damaged" > "$tmp/d.words"
diff "$tmp/r.words" "$tmp/d.words" | head -40 >&2 || true
exit 1
