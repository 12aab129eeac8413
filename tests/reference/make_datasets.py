"""Write the fixed datasets of the R comparison (run once; the CSVs are committed).

    python tests/reference/make_datasets.py

Seeded, so rerunning rewrites the same files. Every dataset is small and kept
as CSV so that R and Python read exactly the same numbers.
"""

from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).parent
rng = np.random.default_rng(20261121)

# Paired, n = 10, no ties and no zero differences: R's exact signed-rank branch.
before = np.round(rng.normal(60, 8, 10), 1)
after = np.round(before + rng.normal(6, 5, 10), 1)
pd.DataFrame({"before": before, "after": after}).to_csv(HERE / "paired_exact.csv", index=False)

# Paired FACE-Q-like integer scores, n = 17: zero differences and tied |differences|: normal branch.
before = rng.integers(30, 70, 17)
diff = np.array([0, 0, 5, 5, 10, -5, 15, 10, 20, 5, -10, 25, 10, 0, 15, 30, 12])
pd.DataFrame({"before": before, "after": before + diff}).to_csv(HERE / "paired_ties.csv", index=False)

# Paired, n = 60 (>= 50: normal approximation even without ties).
before = np.round(rng.normal(55, 10, 60), 3)
after = np.round(before + rng.normal(3, 6, 60), 3)
pd.DataFrame({"before": before, "after": after}).to_csv(HERE / "paired_large.csv", index=False)

# Two groups, 7 and 9, no ties: exact rank-sum branch.
a = np.round(rng.normal(12, 4, 7), 2)
b = np.round(rng.normal(6, 5, 9), 2)
pd.DataFrame({"group": ["A"] * 7 + ["B"] * 9, "value": np.concatenate([a, b])}).to_csv(
    HERE / "groups_exact.csv", index=False)

# Two groups, 13 and 15, integer values with ties: normal branch.
a = rng.integers(0, 15, 13) + 8
b = rng.integers(0, 15, 15)
pd.DataFrame({"group": ["A"] * 13 + ["B"] * 15, "value": np.concatenate([a, b])}).to_csv(
    HERE / "groups_ties.csv", index=False)

# Three groups of 10 with baseline and follow-up: Kruskal-Wallis and ANCOVA.
g = np.repeat(["adm", "fat", "flap"], 10)
base = np.round(rng.normal(50, 10, 30), 2)
effect = np.select([g == "fat", g == "flap"], [6.0, 11.0], 0.0)
follow = np.round(12 + 0.8 * base + effect + rng.normal(0, 4, 30), 2)
pd.DataFrame({"group": g, "baseline": base, "followup": follow}).to_csv(HERE / "ancova.csv", index=False)

# Complication counts: events / patients per group.
pd.DataFrame({"group": ["A", "B", "C"], "events": [2, 7, 1], "n": [12, 10, 9]}).to_csv(
    HERE / "complications.csv", index=False)
