#!/usr/bin/env bash
# Throughput of brandsim against the plain-Rust yardstick ../shared/floor/floor,
# run alternately (floor, brandsim, floor, brandsim, ...) so both see the same
# noise of a shared machine. Prints user-days/s, the brandsim/floor ratio of wall
# times (median and range of the rounds), the ratio of CPU times (steadier on a
# loaded machine), and brandsim's peak memory per user. The floor is $FLOOR, else
# ../shared/floor/floor (or ../../shared/floor/floor); skipped where absent. See
# BENCHMARKS.md, "The matrix".
#
# The matrix (one command; every class at every size and thread count):
#   scripts/bench_vs_floor.sh [--classes sparse,busy,...] [--sizes 1e5,1e6,1e7]
#                             [--threads 1,2] [--rounds 3] [--rounds-large 1]
#                             [--portable] [--markdown]
#   --rounds-large: rounds at 10^7 users and more (default 1: keep the run short)
#   --portable: BRANDSIM_PORTABLE=1 (the draws of a CPU without AVX-512)
#   --markdown: one table row per case, for BENCHMARKS.md
# One scenario file as before:
#   scripts/bench_vs_floor.sh SCENARIO [POPULATION] [ROUNDS]
#
# Classes (add one to CLASSES below: a base file, key edits, and whether the
# channel budgets scale with the population so each user gets the same
# impressions at every size):
#   sparse      the knowledge platform as bundled (budgets fixed: sparser as it grows)
#   busy        scenarios/busy_market.toml, about 0.33 impressions per user and day
#   bass        bass.toml: everyone clicks and buys once (p = 0.01 per day)
#   registered  bass.toml with conversion_rate = 0, dormancy = 0.01: everyone
#               registers, nobody converts
#   monthly     bass.toml with renewal_days = 30, churn Beta(0.1, 10): everyone subscribes
#   daily       the same with renewal_days = 1
#   campaigns   scenarios/campaign_calendar.toml (365 days, budgets fixed); the
#               floor, which has no calendar, runs it without campaigns, schedule
#               and `available` (every item on sale all year)
#   network     scenarios/network_seeding.toml: word of mouth on a per-replication
#               Barabasi-Albert graph (mean degree 10) and 500 users seeded on day
#               14; the floor, which has neither, runs it without both
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

python3 - "$out" "$@" <<'PY'
import json, os, re, resource, statistics, subprocess, sys, time

out, args = sys.argv[1], sys.argv[2:]
# The yardstick: $FLOOR, else ../shared/floor/floor beside the repository (or
# beside its parent, for a git worktree in a subdirectory).
floor = os.environ.get("FLOOR") or next(
    (f for f in ("../shared/floor/floor", "../../shared/floor/floor") if os.access(f, os.X_OK)),
    "../shared/floor/floor")
brandsim = "target/release/brandsim"
have_floor = os.access(floor, os.X_OK)

# name: (file, {key: value} edits of the first "key = ..." line, scale budgets)
CLASSES = {
    "sparse": ("scenarios/knowledge_platform.toml", {}, False),
    "busy": ("scenarios/busy_market.toml", {}, True),
    "bass": ("scenarios/bass.toml", {}, True),
    "registered": ("scenarios/bass.toml", {"conversion_rate": "0.0", "dormancy": "0.01"}, True),
    "monthly": ("scenarios/bass.toml", {"renewal_days": "30", "churn_alpha": "0.1", "churn_beta": "10"}, True),
    "daily": ("scenarios/bass.toml", {"renewal_days": "1", "churn_alpha": "0.1", "churn_beta": "10"}, True),
    "campaigns": ("scenarios/campaign_calendar.toml", {}, False),
    "network": ("scenarios/network_seeding.toml", {}, False),
}

def option(name, default):
    if name in args:
        i = args.index(name)
        value = args[i + 1]
        del args[i:i + 2]
        return value
    return default

def flag(name):
    if name in args:
        args.remove(name)
        return True
    return False

classes = option("--classes", ",".join(CLASSES)).split(",")
sizes = [int(float(s)) for s in option("--sizes", "1e5,1e6,1e7").split(",")]
threads_list = [int(t) for t in option("--threads", "1,2").split(",")]
rounds = int(option("--rounds", "3"))
rounds_large = int(option("--rounds-large", "1"))
portable = flag("--portable")
markdown = flag("--markdown")
env = dict(os.environ)
if portable:
    env["BRANDSIM_PORTABLE"] = "1"

if args:  # the single-file form: SCENARIO [POPULATION] [ROUNDS]
    CLASSES = {"file": (args[0], {}, False)}
    classes = ["file"]
    sizes = [int(float(args[1]))] if len(args) > 1 else [1_000_000]
    rounds = rounds_large = int(args[2]) if len(args) > 2 else 3

def population_of(text):
    return int(re.search(r"^population\s*=\s*([\d_]+)", text, re.M).group(1).replace("_", ""))

def prepare(name, population):
    """(brandsim's file and --set options, the floor's file) for one case."""
    path, edits, scale = CLASSES[name]
    text = open(path).read()
    for key, value in edits.items():
        text, n = re.subn(rf"^{key}\s*=.*$", f"{key} = {value}", text, count=1, flags=re.M)
        assert n == 1, f"{path} has no {key}"
    if scale:
        factor = population / population_of(text)
        text = re.sub(r"^(daily_budget\s*=\s*)([\d.eE+_-]+)",
                      lambda m: f"{m.group(1)}{float(m.group(2).replace('_', '')) * factor!r}",
                      text, flags=re.M)
    if edits or scale:
        mine = f"{out}/{name}-{population}.toml"
        open(mine, "w").write(text)
    else:
        mine = path  # as bundled: relative files (a schedule) stay reachable
    # The floor simulates version 1 of the model: without the calendar's tables.
    v1 = re.split(r"^\[\[campaigns\]\]|^\[schedule\]|^\[\[variants\]\]|^\[\[seeding\]\]", text, flags=re.M)[0]
    # ... and without a network: its table runs up to the next table.
    v1 = re.sub(r"^\[market\.network\]\n(?:(?!\[).*\n)*", "", v1, flags=re.M)
    v1 = re.sub(r"^(start_date|discount_rate|available)\s*=.*$", "", v1, flags=re.M)
    theirs = f"{out}/{name}-{population}-floor.toml"
    open(theirs, "w").write(v1)
    return mine, theirs

def timed(cmd):
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    result = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return json.loads(result.stdout), cpu

def run_brandsim(file, population, threads):
    data, cpu = timed([brandsim, "run", file, "--set", f"market.population={population}",
                       "--replications", "1", "--threads", str(threads), "--json", "--quiet",
                       "--no-plots", "--force", "--out", f"{out}/study"])
    t = data["throughput"]
    return t["user_days_per_second"], cpu, t.get("peak_memory_bytes_per_user"), t.get("draws")

def run_floor(file, population, threads):
    data, cpu = timed([floor, file, "--population", str(population), "--replications", "1",
                       "--threads", str(threads)])
    return data["user_days_per_second"], cpu

def load():
    return os.getloadavg()[0]

print(f"# {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, load {load():.1f}, "
      f"{'portable draws (BRANDSIM_PORTABLE=1)' if portable else 'draws as detected'}"
      + ("" if have_floor else f"; {floor} not found: brandsim alone, no ratios"))
if markdown:
    print("| class | users | threads | brandsim user-days/s | floor user-days/s | wall ratio, median (range) | CPU ratio | bytes/user | rounds | load |")
    print("|---|---|---|---|---|---|---|---|---|---|")
for name in classes:
    for population in sizes:
        mine, theirs = prepare(name, population)
        for threads in threads_list:
            n = rounds_large if population >= 10_000_000 else rounds
            ours, theirs_speed, ratios, cpu_ratios, peaks, loads = [], [], [], [], [], []
            draws = None
            for _ in range(n):
                loads.append(load())
                if have_floor:
                    f, f_cpu = run_floor(theirs, population, threads)
                    theirs_speed.append(f)
                b, b_cpu, peak, draws = run_brandsim(mine, population, threads)
                ours.append(b)
                peaks.append(peak or float("nan"))
                if have_floor:
                    ratios.append(b / f)
                    cpu_ratios.append(f_cpu / b_cpu)
            median = statistics.median
            wall = (f"**{median(ratios):.2f}** ({min(ratios):.2f}–{max(ratios):.2f})"
                    if ratios else "–")
            cpu = f"{median(cpu_ratios):.2f}" if cpu_ratios else "–"
            floor_speed = f"{median(theirs_speed):.3g}" if theirs_speed else "–"
            if markdown:
                print(f"| {name} | {population:.0e} | {threads} | {median(ours):.3g} | {floor_speed} | "
                      f"{wall} | {cpu} | {max(peaks):.1f} | {n} | {median(loads):.1f} |", flush=True)
            else:
                print(f"{name:<11} users {population:>9} threads {threads}: brandsim {median(ours):.3e} "
                      f"user-days/s, floor {floor_speed}, ratio {wall.replace('**', '')}, CPU ratio {cpu}, "
                      f"peak {max(peaks):.1f} bytes/user, {n} round(s), draws {draws}, load {median(loads):.1f}",
                      flush=True)
PY
