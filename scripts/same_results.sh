#!/usr/bin/env bash
# Checks that two brandsim binaries give bit-identical results on every bundled
# scenario: usage `scripts/same_results.sh OLD_BINARY NEW_BINARY [run options]`
# (default options: 8 replications of the file's population). Compares
# replications.csv and daily.csv of each scenario, and every arm of
# strategies.toml's comparison; prints one line per scenario and exits 1 on a
# difference. Columns the new binary adds (e.g. `seeded`) are left out: the
# new file is compared on the old file's columns.
set -euo pipefail
old=$1
new=$2
shift 2
options=("$@")
[ ${#options[@]} -eq 0 ] && options=(-r 8)
cd "$(dirname "$0")/.."
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
status=0
# The CSV file $2 restricted to the columns of $1's header, in $1's order.
old_columns() {
    awk -F, 'NR == FNR { if (FNR == 1) for (i = 1; i <= NF; i++) wanted[i] = $i; next }
        FNR == 1 { for (i = 1; i <= NF; i++) at[$i] = i }
        { line = ""; for (k = 1; k in wanted; k++) line = line (k > 1 ? "," : "") $(at[wanted[k]]); print line }' "$1" "$2"
}
for scenario in scenarios/*.toml; do
    name=$(basename "$scenario" .toml)
    # A scenario that uses keys the old binary does not know has nothing to compare.
    if ! "$old" validate "$scenario" >/dev/null 2>&1; then
        echo "new: $name (the old binary refuses it)"
        continue
    fi
    for which in old new; do
        binary=${!which}
        "$binary" run "$scenario" -q --no-plots "${options[@]}" --out "$work/$which-$name" >/dev/null
    done
    if cmp -s "$work/old-$name/replications.csv" <(old_columns "$work/old-$name/replications.csv" "$work/new-$name/replications.csv") &&
        cmp -s "$work/old-$name/daily.csv" <(old_columns "$work/old-$name/daily.csv" "$work/new-$name/daily.csv"); then
        echo "same: $name"
    else
        echo "DIFFERENT: $name"
        status=1
    fi
done
for which in old new; do
    binary=${!which}
    "$binary" compare scenarios/strategies.toml -q --no-plots "${options[@]}" --out "$work/$which-compare" >/dev/null
done
# The first 10 columns are those of every version (later ones were added).
# Rows of metrics the old binary does not have (`seeded`) are left out.
metrics_of_old="$(cut -d, -f2 "$work/old-compare/compare.csv" | sort -u)"
if cmp -s <(cut -d, -f1-10 "$work/old-compare/compare.csv") \
    <(awk -F, 'NR == FNR { known[$1] = 1; next } FNR == 1 || ($2 in known)' <(echo "$metrics_of_old") "$work/new-compare/compare.csv" | cut -d, -f1-10); then
    echo "same: compare strategies"
else
    echo "DIFFERENT: compare strategies"
    status=1
fi
exit $status
