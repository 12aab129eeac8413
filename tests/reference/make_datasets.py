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

# ---- Agreement between raters (tests/stats/test_agreement_reference.py); wide: one row per subject,
# one column per rater. A separate generator, so that the datasets above stay as they were.
agree = np.random.default_rng(20261201)


def _ratings(latent, offsets, noise, low, high):
    """Integer ratings on low..high: each rater sees the latent value with an offset and noise (ties by design)."""
    cols = {f"r{j + 1}": np.clip(np.round(latent + off + agree.normal(0, noise, latent.size)), low, high).astype(int)
            for j, off in enumerate(offsets)}
    return pd.DataFrame({"subject": [f"s{i + 1:02d}" for i in range(latent.size)], **cols})


# Shrout & Fleiss (1979), Table 2: six targets rated by four judges (their ICCs: .17 .29 .71 .44 .62 .91).
pd.DataFrame({"subject": [f"t{i}" for i in range(1, 7)], "j1": [9, 6, 8, 7, 10, 6], "j2": [2, 1, 4, 1, 5, 2],
              "j3": [5, 3, 6, 2, 6, 4], "j4": [8, 2, 8, 6, 9, 7]}).to_csv(HERE / "agreement_shrout_fleiss.csv",
                                                                      index=False)
# Two raters, improvement scale -2..+2 (ordinal, many ties), 40 pairs; one rating missing (s07, rater 2).
two = _ratings(agree.normal(0.6, 1.0, 40), (0.0, 0.3), 0.6, -2, 2)
two["r2"] = two["r2"].astype("Int64")
two.loc[6, "r2"] = pd.NA
two.to_csv(HERE / "agreement_two_raters.csv", index=False)
# Three raters, improvement scale -2..+2, 25 pairs.
_ratings(agree.normal(0.5, 1.1, 25), (0.0, -0.4, 0.3), 0.7, -2, 2).to_csv(HERE / "agreement_three_raters.csv",
                                                                            index=False)
# Four raters, symmetry 1..5, 30 photos; rater 4 systematically harsher (absolute agreement < consistency).
_ratings(agree.normal(3.0, 1.0, 30), (0.0, 0.2, -0.2, -0.9), 0.5, 1, 5).to_csv(HERE / "agreement_five_point.csv",
                                                                                 index=False)
# Fleiss' kappa example of Wikipedia ("Fleiss' kappa", worked example): 10 subjects, 14 raters, 5 categories,
# given as counts per category; kappa = 0.210 (P-bar 0.378, P-bar_e 0.213). Rater identity does not enter.
counts = [[0, 0, 0, 0, 14], [0, 2, 6, 4, 2], [0, 0, 3, 5, 6], [0, 3, 9, 2, 0], [2, 2, 8, 1, 1],
          [7, 7, 0, 0, 0], [3, 2, 6, 3, 0], [2, 5, 3, 2, 2], [6, 5, 2, 1, 0], [0, 2, 2, 3, 7]]
wiki = np.array([np.repeat(np.arange(1, 6), c) for c in counts])
pd.DataFrame({"subject": [f"s{i + 1:02d}" for i in range(10)],
              **{f"r{j + 1}": wiki[:, j] for j in range(14)}}).to_csv(HERE / "agreement_fleiss_wikipedia.csv",
                                                                      index=False)
