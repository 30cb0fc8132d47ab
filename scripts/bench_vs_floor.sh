#!/usr/bin/env bash
# Throughput of brandsim against the plain-Rust yardstick ../shared/floor/floor on
# the same scenario and machine, run alternately so both see the same noise.
# Prints user-days/s of each run, the brandsim/floor ratio (median of the rounds)
# and brandsim's peak memory per user. Skips the floor where it is absent.
#
#   scripts/bench_vs_floor.sh [SCENARIO] [POPULATION] [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/.."
scenario=${1:-scenarios/knowledge_platform.toml}
population=${2:-1000000}
rounds=${3:-3}
floor=../shared/floor/floor
cargo build --release --quiet
brandsim=target/release/brandsim
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

python3 - "$scenario" "$population" "$rounds" "$floor" "$brandsim" "$out" <<'PY'
import json, os, statistics, subprocess, sys
scenario, population, rounds, floor, brandsim, out = sys.argv[1:]
rounds = int(rounds)
have_floor = os.access(floor, os.X_OK)
if not have_floor:
    print(f"note: {floor} not found: brandsim alone, no ratios")

def run_brandsim(threads, i):
    cmd = [brandsim, "run", scenario, "--set", f"market.population={population}",
           "--replications", "1", "--threads", str(threads), "--json", "--quiet",
           "--out", f"{out}/b{threads}-{i}"]
    t = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)["throughput"]
    return t["user_days_per_second"], (t.get("peak_memory_bytes_per_user"), t.get("peak_memory_bytes_per_user_above_start"))

def run_floor(threads):
    cmd = [floor, scenario, "--population", population, "--replications", "1", "--threads", str(threads)]
    return json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)["user_days_per_second"]

print(f"scenario {scenario}, population {population}, 1 replication, {rounds} alternating rounds")
speeds = {}
for threads in (1, 2):
    ratios, ours = [], []
    for i in range(rounds):
        f = run_floor(threads) if have_floor else None
        b, mem = run_brandsim(threads, i)
        ours.append(b)
        line = f"  threads {threads} round {i}: brandsim {b:.3e} user-days/s"
        if f:
            ratios.append(b / f)
            line += f", floor {f:.3e}, ratio {b / f:.3f}"
        peak, above = mem
        if peak:
            line += f", peak {peak:.1f} bytes/user"
        if above is not None:
            line += f" ({above:.1f} above the process before simulating)"
        print(line)
    speeds[threads] = statistics.median(ours)
    if ratios:
        print(f"threads {threads}: median brandsim/floor = {statistics.median(ratios):.3f}")
print(f"brandsim 2 threads / 1 thread (medians) = {speeds[2] / speeds[1]:.2f}")
PY
