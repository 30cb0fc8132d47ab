"""Calibrate on last quarter's data, then compare two campaign plans on the
calibrated market: brandsim from a notebook (each `# %%` is a cell).

Run from the repository root after `pip install ./python`:

    python examples/python/calibrate_and_compare.py

It takes a few minutes on 2 cores at full settings; BRANDSIM_EXAMPLE_QUICK=1 runs
it with few replications and iterations (what the tests do). Outputs go to
BRANDSIM_EXAMPLE_OUT (default runs/python-example/). The plot needs matplotlib.
"""

# %% Setup
import os
from pathlib import Path

import brandsim

QUICK = os.environ.get("BRANDSIM_EXAMPLE_QUICK") == "1"
OUT = Path(os.environ.get("BRANDSIM_EXAMPLE_OUT", "runs/python-example"))
OUT.mkdir(parents=True, exist_ok=True)

# %% Calibrate three guesses of the scenario to last quarter's daily series
guess = brandsim.Scenario.from_file("scenarios/last_quarter.toml")
calibration = brandsim.calibrate(
    guess,
    "scenarios/data/last_quarter.csv",
    {
        "market.word_of_mouth": (0, 2),
        "content.python-course.click_rate": (0, 1),
        "brand.value": (-3, 3),
    },
    replications=2 if QUICK else 8,
    starts=1,
    max_iterations=10 if QUICK else 200,
    plots=False,
)
print(calibration.text)
print(calibration.estimates)

# %% Two campaign plans on the calibrated market, 20 more a day each
market = calibration.scenario.to_dict()
market["variants"] = [
    {"name": "more-ads", "set": {"channels.ads.daily_budget": 40.0}},
    {"name": "more-social", "set": {"channels.social.daily_budget": 30.0}},
]
plans = brandsim.Scenario.from_dict(market, name="last_quarter_plans")
comparison = brandsim.compare(
    plans, replications=8 if QUICK else 64, metric="profit", plots=False
)
print(comparison.text)
comparison.save(OUT / "compare")

# %% The paired difference in profit, replication by replication
differences = comparison.paired_differences("profit")
table = comparison.table
profit = {
    plan: table[(table["arm"] == plan) & (table["metric"] == "profit")].iloc[0]
    for plan in ("more-ads", "more-social")
}
for plan, row in profit.items():
    print(
        f"{plan}: {row['difference']:+.0f} profit over the quarter "
        f"[{row['difference_ci_low']:+.0f}, {row['difference_ci_high']:+.0f}], "
        f"better in {row['p_beats_base']:.0%} of the paired replications"
    )

# %% Plot it (if matplotlib is installed)
try:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
except ImportError:
    print("matplotlib is not installed; no plot")
else:
    fig, ax = plt.subplots(figsize=(7, 4))
    for i, (plan, row) in enumerate(profit.items()):
        ax.scatter([i] * len(differences), differences[plan], alpha=0.5, label=plan)
        low, high = row["difference_ci_low"], row["difference_ci_high"]
        ax.errorbar(i + 0.15, row["difference"],
                    yerr=[[row["difference"] - low], [high - row["difference"]]],
                    fmt="o", color="black", capsize=4)
    ax.axhline(0, color="grey", linewidth=0.8)
    ax.set_xticks([0, 1], ["more ads", "more social"])
    ax.set_ylabel("profit minus base, same replication")
    ax.set_title("Paired difference in profit (dots: replications; bar: mean, 95% CI)")
    fig.tight_layout()
    fig.savefig(OUT / "paired_difference.png", dpi=120)
    print(f"wrote {OUT / 'paired_difference.png'}")
