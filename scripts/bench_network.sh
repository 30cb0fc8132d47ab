#!/usr/bin/env bash
# The cost of word of mouth on a social network: scenarios/network_seeding.toml
# (Barabasi-Albert graph, q_net 0.3, 500 users seeded by degree on day 14) at
# mean degree 10 and 50, against the same market without a network (mean-field
# word of mouth q = 0.3, the 500 users seeded at random), alternately, ROUNDS
# rounds of R replications (default 2) on one thread, per-replication graphs
# (GRAPH=fixed: one graph for the study). Speeds are user-days per CPU second,
# which a busy machine disturbs far less than wall time: of the whole process
# (parsing, graph generation, simulation, outputs with network.json), and of
# the simulation of days 15..179 alone (the CPU time of a 180-day run minus that
# of the same run cut to 15 days). Memory is the peak resident size from
# summary.json, per user, above the process before simulating.
#
#   [REPLICATIONS=R] [GRAPH=per-replication|fixed] scripts/bench_network.sh [POPULATION] [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/.."
population=${1:-1000000}
rounds=${2:-3}
cargo build --release --quiet
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

python3 - "$population" "$rounds" "$out" "${REPLICATIONS:-2}" "${GRAPH:-per-replication}" <<'PY'
import json, os, statistics, subprocess, sys
population, rounds, out, replications, graph = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
text = open("scenarios/network_seeding.toml").read()
text = text[: text.index("[[variants]]")].replace('graph = "per-replication"', f'graph = "{graph}"')
start = text.index("[market.network]")
end = text.index("\n\n", start)
plain = (text[:start] + text[end + 2 :]).replace(
    "word_of_mouth = 0.0 ", "word_of_mouth = 0.3 ").replace('rule = "top-degree"', 'rule = "random"')
scenarios = {"no network": plain, "degree 10": text,
             "degree 50": text.replace("mean_degree = 10", "mean_degree = 50")}
for name, body in scenarios.items():
    open(f"{out}/{name}.toml", "w").write(body)

def run(name, i, days=180):
    cmd = ["target/release/brandsim", "run", f"{out}/{name}.toml", "--set",
           f"market.population={population}", "--set", f"simulation.days={days}",
           "-r", replications, "-t", "1",
           "--json", "-q", "--no-plots", "-o", f"{out}/run-{i}"]
    pid = os.fork()
    if pid == 0:
        fd = os.open(f"{out}/summary-{i}.json", os.O_WRONLY | os.O_CREAT)
        os.dup2(fd, 1)
        os.execv(cmd[0], cmd)
    _, status, usage = os.wait4(pid, 0)
    assert status == 0, f"{cmd} failed"
    summary = json.load(open(f"{out}/summary-{i}.json"))
    throughput = summary["throughput"]
    cpu = usage.ru_utime + usage.ru_stime
    above = throughput["peak_memory_bytes"] - throughput["start_memory_bytes"]
    return throughput["user_days"], cpu, above / int(population)

speeds = {name: [] for name in scenarios}
engine = {name: [] for name in scenarios}
memory = {name: [] for name in scenarios}
i = 0
for _ in range(rounds):
    for name in scenarios:
        user_days, cpu, per_user = run(name, i)
        short_days, short_cpu, _ = run(name, i + 1, days=15)
        speeds[name].append(user_days / cpu)
        engine[name].append((user_days - short_days) / max(cpu - short_cpu, 1e-3))
        memory[name].append(per_user)
        i += 2
base = statistics.median(speeds["no network"])
base_engine = statistics.median(engine["no network"])
print(f"{population} users, 180 days, {replications} replications a run, 1 thread, "
      f"{graph} graphs, median of {rounds} rounds; user-days per CPU second")
for name in scenarios:
    speed, days = statistics.median(speeds[name]), statistics.median(engine[name])
    print(f"{name:>10}: whole process {speed:.3e} ({speed / base:.2f}x), "
          f"days 15..179 {days:.3e} ({days / base_engine:.2f}x), "
          f"peak {max(memory[name]):.1f} bytes/user above the start")
PY
