"""``fat_plan``: how much fat to graft per zone, given the share that survives, and in how many sessions.

For each zone of the affected side with deficit ``V`` (mm3, the zone's defect volume from the analysis):

    to inject = V * (1 + overcorrection) / retention

``retention`` is the fraction of grafted fat that survives (reported at about 0.31 to 0.60 at one
year, depending on processing), ``overcorrection`` the planned excess over the deficit. With a limit
``L`` (ml) on what one session injects -- all zones together, as harvest and recipient tolerance
limit a session -- the plan needs ``ceil(total / L)`` sessions, each injecting every zone's volume
divided by that number. 1 ml = 1000 mm3.

Zones are the measurements' keys ``zone_<name>_defect_volume_mm3``; an analysis without zones is
planned as one zone, "hemiface", from ``defect_volume_mm3``, and the plan says so.
"""

from __future__ import annotations

import json
import math
import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .._outputs import staged_outputs
from .._provenance import provenance
from .._validate import OptionError
from ..scan import read_measurements

#: Files ``FatPlan.save`` writes, the JSON last.
FAT_OUTPUT_NAMES = ("fat_plan.png", "fat_plan.json")
ZONE_KEY = re.compile(r"^zone_(.+)_defect_volume_mm3$")
MM3_PER_ML = 1000.0
#: Columns of ``FatPlan.table()`` (frozen: reports and studies read them).
FAT_COLUMNS = ("zone", "deficit_mm3", "deficit_ml", "inject_mm3", "inject_ml", "sessions", "per_session_ml")


@dataclass(frozen=True)
class FatZone:
    """One zone's deficit and what to inject (mm3 and ml)."""

    zone: str
    deficit_mm3: float
    inject_mm3: float
    sessions: int

    @property
    def deficit_ml(self) -> float:
        return self.deficit_mm3 / MM3_PER_ML

    @property
    def inject_ml(self) -> float:
        return self.inject_mm3 / MM3_PER_ML

    @property
    def per_session_ml(self) -> float:
        return self.inject_ml / self.sessions if self.sessions else 0.0

    def to_dict(self) -> dict:
        return {c: getattr(self, c) for c in FAT_COLUMNS}


@dataclass(frozen=True)
class FatPlan:
    """Result of :func:`fat_plan`."""

    zones: tuple[FatZone, ...]
    zones_source: str  # "zones" or "hemiface (no zone volumes in the analysis)"
    retention: float
    overcorrection: float
    max_per_session_ml: float | None
    sessions: int
    source: str
    provenance: dict

    @property
    def total_deficit_mm3(self) -> float:
        return float(sum(z.deficit_mm3 for z in self.zones))

    @property
    def total_inject_mm3(self) -> float:
        return float(sum(z.inject_mm3 for z in self.zones))

    def table(self):
        """One row per zone, columns :data:`FAT_COLUMNS`."""
        import pandas as pd

        return pd.DataFrame([z.to_dict() for z in self.zones], columns=list(FAT_COLUMNS))

    def to_dict(self) -> dict:
        return {
            "formula": "inject = deficit * (1 + overcorrection) / retention; sessions = ceil(total inject / "
                       "max_per_session_ml), every zone spread evenly over them; 1 ml = 1000 mm3",
            "retention": self.retention, "overcorrection": self.overcorrection,
            "max_per_session_ml": self.max_per_session_ml, "zones_source": self.zones_source,
            "zones": [z.to_dict() for z in self.zones],
            "total_deficit_mm3": self.total_deficit_mm3, "total_deficit_ml": self.total_deficit_mm3 / MM3_PER_ML,
            "total_inject_mm3": self.total_inject_mm3, "total_inject_ml": self.total_inject_mm3 / MM3_PER_ML,
            "sessions": self.sessions,
            "provenance": self.provenance,
        }

    def save(self, out_dir: str | os.PathLike, *, overwrite: bool = False) -> Path:
        """Write fat_plan.json and fat_plan.png (a bar chart per zone), both or neither."""
        out_dir = Path(out_dir)
        with staged_outputs(out_dir, FAT_OUTPUT_NAMES, overwrite=overwrite) as stage:
            _figure(stage / "fat_plan.png", self)
            (stage / "fat_plan.json").write_text(json.dumps(self.to_dict(), indent=2) + "\n", encoding="utf-8")
        return out_dir


def _check(name: str, value, *, low: float, high: float | None, low_open: bool, hint: str) -> float:
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise OptionError(f"{name} must be a number; got {value!r}") from None
    ok = np.isfinite(x) and (x > low if low_open else x >= low) and (high is None or x <= high)
    if not ok:
        raise OptionError(f"{name} must be {hint}; got {value!r}")
    return x


def zone_deficits(measurements: dict) -> tuple[dict[str, float], str]:
    """Deficit (mm3) per zone from the measurements, and where it came from."""
    zones = {m.group(1): float(v) for k, v in measurements.items() if (m := ZONE_KEY.match(k)) and v is not None}
    if zones:
        return dict(sorted(zones.items())), "zones"
    return {"hemiface": float(measurements["defect_volume_mm3"])}, \
        "hemiface: the analysis has no zone volumes (zone_<name>_defect_volume_mm3), so the whole defect is one zone"


def fat_plan(
    analysis: str | os.PathLike | object,
    *,
    retention: float = 0.5,
    overcorrection: float = 0.2,
    max_per_session_ml: float | None = None,
) -> FatPlan:
    """Plan the fat graft per zone: volume to inject and sessions (see the module docstring for the formula).

    Parameters
    ----------
    analysis : a ``scan analyze`` output folder (its measurements.json), or a ScanAnalysis.
    retention : fraction of the grafted fat that survives, in (0, 1].
    overcorrection : planned excess over the deficit, >= 0 (0.2 = 20 %).
    max_per_session_ml : most fat injected in one session (ml, all zones together); None: one session.
    """
    retention = _check("retention", retention, low=0.0, high=1.0, low_open=True,
                       hint="in (0, 1] (the fraction of grafted fat that survives, e.g. 0.5)")
    overcorrection = _check("overcorrection", overcorrection, low=0.0, high=None, low_open=False,
                            hint=">= 0 (the planned excess over the deficit, e.g. 0.2 for 20 %)")
    if max_per_session_ml is not None:
        max_per_session_ml = _check("max_per_session_ml", max_per_session_ml, low=0.0, high=None, low_open=True,
                                    hint="> 0 ml (or None for no limit)")
    measurements, inputs, source = read_measurements(analysis)
    deficits, zones_source = zone_deficits(measurements)
    inject = {z: max(v, 0.0) * (1.0 + overcorrection) / retention for z, v in deficits.items()}
    total_ml = sum(inject.values()) / MM3_PER_ML
    if total_ml <= 0:
        sessions = 0
    elif max_per_session_ml is None:
        sessions = 1
    else:
        sessions = math.ceil(total_ml / max_per_session_ml - 1e-12)
    zones = tuple(FatZone(z, deficits[z], inject[z], sessions if inject[z] > 0 else 0) for z in deficits)
    params = {"retention": retention, "overcorrection": overcorrection, "max_per_session_ml": max_per_session_ml}
    return FatPlan(zones, zones_source, retention, overcorrection, max_per_session_ml, sessions, source,
                   provenance(inputs, params))


def _figure(path, plan: FatPlan) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [z.zone for z in plan.zones]
    x = np.arange(len(names))
    fig, ax = plt.subplots(figsize=(max(5.0, 1.1 * len(names) + 2.5), 4.2), dpi=120)
    ax.bar(x - 0.2, [z.deficit_ml for z in plan.zones], 0.4, label="deficit", color="#8da0cb")
    bars = ax.bar(x + 0.2, [z.inject_ml for z in plan.zones], 0.4, label="to inject", color="#fc8d62")
    for bar, z in zip(bars, plan.zones):
        if z.sessions > 1:
            for s in range(1, z.sessions):
                y = s * z.per_session_ml
                ax.plot([bar.get_x(), bar.get_x() + bar.get_width()], [y, y], color="white", linewidth=1.0)
        ax.annotate(f"{z.inject_ml:.1f} ml", (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                    ha="center", va="bottom", fontsize=8)
    ax.set_xticks(x, names, rotation=30 if len(names) > 4 else 0, ha="right" if len(names) > 4 else "center")
    ax.set_ylabel("ml")
    limit = "no per-session limit" if plan.max_per_session_ml is None else f"at most {plan.max_per_session_ml:g} ml per session"
    ax.set_title(f"{plan.source}: fat graft plan, retention {plan.retention:g}, overcorrection {plan.overcorrection:g}\n"
                 f"total {plan.total_inject_mm3 / MM3_PER_ML:.1f} ml in {plan.sessions} session(s) ({limit})", fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
