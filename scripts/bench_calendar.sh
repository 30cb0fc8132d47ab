#!/usr/bin/env bash
# The cost of time-varying values: the knowledge platform with a schedule that
# sets every time-varying key on every day (each day's values differ from the
# day before, so the day's parameters are rebuilt every day) against the same
# scenario without it, alternately, R replications (default 1) on one thread. With OLD=path
# to another brandsim binary, also that binary on the plain scenario (before and
# after a change). Speeds are user-days per CPU second of the process (parsing and
# output included), which a busy machine disturbs far less than wall time.
#
#   [OLD=path] [REPLICATIONS=R] scripts/bench_calendar.sh [POPULATION] [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/.."
population=${1:-1000000}
rounds=${2:-3}
cargo build --release --quiet
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

python3 - "$population" "$rounds" "$out" "${OLD:-}" "${REPLICATIONS:-1}" <<'PY'
import json, statistics, subprocess, sys, re
population, rounds, out, old, replications = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
plain = "scenarios/knowledge_platform.toml"
text = open(plain).read()
# Every time-varying key, at its base value times 1 + 1e-9·(t mod 2): a new value every day.
def names(table):
    return re.findall(r'\[\[' + table + r'\]\]\s*\nname = "([^"]+)"', text)
items, channels, segments = names("content"), names("channels"), names(r"market\.segments")
base = {}
def grab(block_names, table, keys):
    for name in block_names:
        block = text.split(f'name = "{name}"', 1)[1].split("[[", 1)[0]
        for key in keys:
            m = re.search(rf"^{key} = ([0-9.]+)", block, re.M)
            base[f"{table}.{name}.{key}"] = float(m.group(1)) if m else 1.0
grab(channels, "channels", ["daily_budget", "cpm"])
grab(items, "content", ["price", "promotion", "click_rate", "conversion_rate", "quality"])
for key in ["value", "cost_per_day", "topic_match"]:
    base[f"brand.{key}"] = float(re.search(rf"^{key} = ([0-9.]+)", text.split("[brand]")[1], re.M).group(1))
for key in ["word_of_mouth", "dormancy"]:
    base[f"market.{key}"] = float(re.search(rf"^{key} = ([0-9.]+)", text, re.M).group(1))
for s in segments:
    block = text.split(f'name = "{s}"', 1)[1].split("[[", 1)[0]
    weights = dict(re.findall(r"(\w+) = ([0-9.]+)", re.search(r"targeting = \{([^}]*)\}", block).group(1)))
    for c in channels:
        base[f"market.segments.{s}.targeting.{c}"] = float(weights.get(c, 1.0))
keys = list(base) + [f"content.{i}.available" for i in items]
rows = ["day," + ",".join(keys)]
for t in range(180):
    cells = [repr(v * (1 + 1e-9 * (t % 2))) if v != 0 else "0" for v in base.values()]
    rows.append(f"{t}," + ",".join(cells + ["true"] * len(items)))
open(f"{out}/every_key.csv", "w").write("\n".join(rows) + "\n")
open(f"{out}/scheduled.toml", "w").write(text + '\n[schedule]\nfile = "every_key.csv"\n')
print(f"{len(keys)} time-varying keys scheduled on each of 180 days")

def run(binary, scenario, i):
    """User-days per CPU second of the whole process (user + system time from
    wait4): on a shared, overloaded machine the wall time measures the others."""
    import os
    cmd = [binary, "run", scenario, "--set", f"market.population={population}", "-r", replications, "-t", "1",
           "--json", "-q", "--no-plots", "-o", f"{out}/run-{i}"]
    child = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    stdout = child.stdout.read()
    _, status, usage = os.wait4(child.pid, 0)
    assert status == 0, cmd
    user_days = json.loads(stdout)["throughput"]["user_days"]
    return user_days / (usage.ru_utime + usage.ru_stime)

runs = {"plain": [], "schedule on every key": [], "old binary, plain": []}
for i in range(rounds):
    runs["plain"].append(run("target/release/brandsim", plain, f"p{i}"))
    runs["schedule on every key"].append(run("target/release/brandsim", f"{out}/scheduled.toml", f"s{i}"))
    if old:
        runs["old binary, plain"].append(run(old, plain, f"o{i}"))
for name, speeds in runs.items():
    if speeds:
        print(f"{name:24} median {statistics.median(speeds):.3e} user-days per CPU second  ({', '.join(f'{s:.3e}' for s in speeds)})")
p = statistics.median(runs["plain"])
print(f"schedule on every key / plain: {statistics.median(runs['schedule on every key']) / p:.3f}")
if old:
    print(f"plain, this build / old build: {p / statistics.median(runs['old binary, plain']):.3f}")
PY
