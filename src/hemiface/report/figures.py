"""Journal-style figures for study reports: paired before/after plots, distributions of change,
the 3D discrepancy change, and a CONSORT-style study flow diagram.

Every function returns a new :class:`matplotlib.figure.Figure` (no pyplot state,
nothing shown) with labelled axes, units, and the number of patients in the
panel titles, tick labels or legends. Inputs are not modified. Changes are
follow-up minus baseline.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from ._errors import ReportError

#: Readers' names of the usual surgical techniques; others are shown with underscores as spaces.
TECHNIQUE_LABELS = {"fat_grafting": "Fat grafting", "free_flap": "Free flap", "adm": "ADM"}
#: Flow steps in order, with the box text and the exclusion reason between a step and the one before it.
FLOW_STEPS = (
    ("screened", "Patients screened", None),
    ("with_initial_surgery", "With an initial surgery", "no_initial_surgery"),
    ("in_inclusion_window", "Initial surgery in the inclusion window", "outside_inclusion_window"),
    ("with_baseline", "With a baseline visit", "no_baseline_visit"),
    ("with_followup", "With a follow-up visit", "no_followup_visit"),
    ("eligible", "Eligible", None),
)
_REASON_TEXT = {
    "no_initial_surgery": "no initial surgery recorded",
    "outside_inclusion_window": "initial surgery outside the window",
    "no_baseline_visit": "no baseline visit in the window",
    "no_followup_visit": "no follow-up visit at the interval",
}
_GREY = "0.55"
_PALETTE = ("#1b6ca8", "#d1495b", "#2e8b57", "#8d6a9f", "#e09f3e", "#555555")


def group_label(value) -> str:
    """A reader's name for a group (technique) value."""
    return TECHNIQUE_LABELS.get(str(value), str(value).replace("_", " "))


def _style(ax) -> None:
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    ax.tick_params(labelsize=8)


def _new_figure(width_in: float, height_in: float):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width_in, height_in), layout="constrained")
    return fig


def _require(endpoints: pd.DataFrame, columns: Sequence[str]) -> None:
    if not isinstance(endpoints, pd.DataFrame):
        raise ReportError(f"endpoints must be a pandas DataFrame; got {type(endpoints).__name__}")
    missing = [c for c in columns if c not in endpoints.columns]
    if missing:
        raise ReportError(f"the endpoint table lacks column(s) {missing}; it has {list(endpoints.columns)}")


def _groups(endpoints: pd.DataFrame, group: str, order: Sequence | None) -> list:
    present = [g for g in pd.unique(endpoints[group].dropna())]
    if order is None:
        return sorted(present, key=str)
    return [g for g in order if g in present] + sorted((g for g in present if g not in order), key=str)


def _box(ax, data: list[np.ndarray], positions: Sequence[float], width: float = 0.35) -> None:
    keep = [(d, p) for d, p in zip(data, positions) if len(d)]
    if not keep:
        return
    ax.boxplot([d for d, _ in keep], positions=[p for _, p in keep], widths=width, showfliers=False,
               patch_artist=True, manage_ticks=False,
               boxprops=dict(facecolor="none", edgecolor="black", linewidth=0.9),
               medianprops=dict(color="black", linewidth=1.4), whiskerprops=dict(linewidth=0.9),
               capprops=dict(linewidth=0.9))


def paired_plot(endpoints: pd.DataFrame, baseline: str, followup: str, *, group: str = "technique",
                label: str = "", unit: str = "", order: Sequence | None = None):
    """Before/after per group: one line per patient (spaghetti) over a box plot at each visit.

    Only patients with both values are drawn; each panel's title gives their number.

    Parameters
    ----------
    endpoints : DataFrame
        One row per patient, with the ``baseline``, ``followup`` and ``group`` columns.
    baseline, followup : str
        Column names of the two visits' values.
    label, unit : str
        The measure's name and unit for the y-axis ("Symmetry ratio", "%").
    order : sequence, optional
        Group order [default: sorted].
    """
    _require(endpoints, [baseline, followup, group])
    groups = _groups(endpoints, group, order)
    fig = _new_figure(max(2.3 * max(len(groups), 1), 3.5), 3.4)
    axes = fig.subplots(1, max(len(groups), 1), sharey=True, squeeze=False)[0]
    for ax, g in zip(axes, groups or [None]):
        _style(ax)
        rows = endpoints[endpoints[group] == g] if g is not None else endpoints.iloc[:0]
        pairs = rows[[baseline, followup]].apply(pd.to_numeric, errors="coerce").dropna().to_numpy(float)
        for before, after in pairs:
            ax.plot([0, 1], [before, after], color=_GREY, linewidth=0.7, alpha=0.8, marker="o", markersize=2.5,
                    zorder=1)
        _box(ax, [pairs[:, 0], pairs[:, 1]] if len(pairs) else [], [0, 1], width=0.3)
        ax.set_xticks([0, 1], ["Baseline", "Follow-up"])
        ax.set_xlim(-0.5, 1.5)
        ax.set_title(f"{group_label(g) if g is not None else 'No data'} (n = {len(pairs)})", fontsize=9)
        if not len(pairs):
            ax.text(0.5, 0.5, "no patient with both visits", transform=ax.transAxes, ha="center", fontsize=8)
    axes[0].set_ylabel(f"{label or baseline} ({unit})" if unit else (label or baseline), fontsize=9)
    return fig


def change_plot(endpoints: pd.DataFrame, change: str, *, group: str = "technique", label: str = "", unit: str = "",
                order: Sequence | None = None, ax=None):
    """Distribution of the change (follow-up minus baseline) per group: box plot and every patient's value.

    The dashed line marks no change. Tick labels give each group's n (patients with a value).
    """
    _require(endpoints, [change, group])
    groups = _groups(endpoints, group, order)
    fig = None
    if ax is None:
        fig = _new_figure(max(1.4 * len(groups) + 1.6, 3.2), 3.4)
        ax = fig.add_subplot()
    _style(ax)
    rng = np.random.default_rng(0)
    data = [pd.to_numeric(endpoints.loc[endpoints[group] == g, change], errors="coerce").dropna().to_numpy(float)
            for g in groups]
    for i, values in enumerate(data):
        ax.scatter(i + rng.uniform(-0.12, 0.12, len(values)), values, s=9, color=_PALETTE[i % len(_PALETTE)],
                   alpha=0.75, linewidths=0, zorder=2)
    _box(ax, data, list(range(len(groups))), width=0.5)
    ax.axhline(0.0, color="0.3", linewidth=0.7, linestyle="--", zorder=0)
    ax.set_xticks(range(len(groups)), [f"{group_label(g)}\n(n = {len(d)})" for g, d in zip(groups, data)])
    ax.set_xlim(-0.6, max(len(groups), 1) - 0.4)
    ax.set_ylabel(f"Change in {label or change} ({unit})" if unit else f"Change in {label or change}", fontsize=9)
    return fig if fig is not None else ax.figure


def discrepancy_change_plot(endpoints: pd.DataFrame, *, group: str = "technique", order: Sequence | None = None):
    """3D hemiface volume discrepancy: baseline against follow-up (left) and its change per group (right).

    Left, one point per patient; points below the dashed identity line became
    more symmetric. Discrepancy > 0 means the affected hemiface has less volume
    than the unaffected one.
    """
    cols = ["discrepancy_baseline_mm3", "discrepancy_followup_mm3", "discrepancy_change_mm3"]
    _require(endpoints, cols + [group])
    groups = _groups(endpoints, group, order)
    fig = _new_figure(8.0, 3.6)
    left, right = fig.subplots(1, 2, width_ratios=[1.1, 1])
    _style(left)
    lo, hi = np.inf, -np.inf
    for i, g in enumerate(groups):
        rows = endpoints.loc[endpoints[group] == g, cols[:2]].apply(pd.to_numeric, errors="coerce").dropna()
        x, y = rows[cols[0]].to_numpy(float), rows[cols[1]].to_numpy(float)
        if len(x):
            lo, hi = min(lo, x.min(), y.min()), max(hi, x.max(), y.max())
        left.scatter(x, y, s=14, color=_PALETTE[i % len(_PALETTE)], alpha=0.8, linewidths=0,
                     label=f"{group_label(g)} (n = {len(x)})")
    if np.isfinite(lo):
        pad = 0.05 * (hi - lo or 1.0)
        left.plot([lo - pad, hi + pad], [lo - pad, hi + pad], color="0.3", linewidth=0.7, linestyle="--", zorder=0)
    left.axhline(0.0, color="0.8", linewidth=0.5, zorder=0)
    left.set_xlabel("Baseline discrepancy (mm\u00b3)", fontsize=9)
    left.set_ylabel("Follow-up discrepancy (mm\u00b3)", fontsize=9)
    if groups:
        left.legend(fontsize=7, frameon=False, loc="upper left")
    change_plot(endpoints, cols[2], group=group, label="discrepancy", unit="mm\u00b3", order=order, ax=right)
    return fig


def _check_flow(flow: Mapping) -> dict:
    if not isinstance(flow, Mapping):
        raise ReportError(f"flow must be a mapping of step -> count; got {type(flow).__name__}")
    missing = [k for k, _, _ in FLOW_STEPS if k not in flow]
    if missing:
        raise ReportError(f"flow lacks {missing}; it needs {[k for k, _, _ in FLOW_STEPS]} (hemiface.study.flow_counts)")
    counts = {}
    known = {k for k, _, _ in FLOW_STEPS} | {"analysed_2d", "analysed_3d"}
    for key, value in flow.items():
        if key not in known:  # "excluded", and e.g. "excluded_patients" of hemiface.study.study_flow
            continue
        if value is None and key.startswith("analysed"):
            continue
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
            raise ReportError(f"flow[{key!r}] must be a whole number >= 0; got {value!r}")
        counts[key] = int(value)
    previous = None
    for key, _, _ in FLOW_STEPS:
        if previous is not None and counts[key] > counts[previous]:
            raise ReportError(f"flow: {key} ({counts[key]}) exceeds {previous} ({counts[previous]}); each step "
                              "counts a subset of the step before")
        previous = key
    for key in ("analysed_2d", "analysed_3d"):
        if key in counts and counts[key] > counts["eligible"]:
            raise ReportError(f"flow: {key} ({counts[key]}) exceeds eligible ({counts['eligible']})")
    excluded = flow.get("excluded") or {}
    if not isinstance(excluded, Mapping):
        raise ReportError(f"flow['excluded'] must map reason -> count; got {type(excluded).__name__}")
    counts["excluded"] = {str(k): int(v) for k, v in excluded.items() if int(v) > 0}
    steps = [k for k, _, _ in FLOW_STEPS]
    for i, (key, _, reason) in enumerate(FLOW_STEPS[1:], 1):
        dropped = counts[steps[i - 1]] - counts[key]
        if reason is not None and reason in excluded and int(excluded[reason]) != dropped:
            raise ReportError(f"flow: excluded[{reason!r}] = {int(excluded[reason])} but {steps[i - 1]} - {key} = "
                              f"{dropped}; the counts come from different tables")
    return counts


def flow_diagram(flow: Mapping, *, not_analysed: Mapping[str, Mapping[str, int]] | None = None):
    """CONSORT-style study flow: screened -> ... -> eligible -> analysed (2D photographs, 3D scans).

    Parameters
    ----------
    flow : mapping
        Counts for :data:`FLOW_STEPS` (the keys of :func:`hemiface.study.flow_counts`), optionally
        ``analysed_2d`` and ``analysed_3d``, and ``excluded``: reason -> count. Other keys are
        ignored (``hemiface.study.study_flow``'s ``excluded_patients`` is never drawn). Known reasons
        (``hemiface.study.EXCLUSION_REASONS``) are drawn beside their step; without them the
        difference between two steps is drawn as "excluded".
    not_analysed : mapping, optional
        ``{"2d": {reason: count}, "3d": {...}}``: why eligible patients were not analysed.
    """
    counts = _check_flow(flow)
    excluded = dict(counts.pop("excluded"))
    fig = _new_figure(7.0, 8.2)
    ax = fig.add_subplot()
    ax.set_axis_off()
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    box = dict(boxstyle="square,pad=0.5", facecolor="white", edgecolor="black", linewidth=0.8)
    side_box = dict(boxstyle="square,pad=0.4", facecolor="white", edgecolor="0.35", linewidth=0.6)
    arrow = dict(arrowstyle="-|>", color="black", linewidth=0.8, shrinkA=0, shrinkB=0, mutation_scale=9)
    analysed = [k for k in ("analysed_2d", "analysed_3d") if k in counts]
    n_rows = len(FLOW_STEPS) + (1 if analysed else 0)
    ys = np.linspace(0.95, 0.06 if analysed else 0.1, n_rows)
    x_main, x_side = 0.3, 0.6
    used = set()
    for i, (key, text, reason) in enumerate(FLOW_STEPS):
        y = ys[i]
        ax.text(x_main, y, f"{text}\n(n = {counts[key]})", ha="center", va="center", fontsize=8.5, bbox=box)
        if i == 0:
            continue
        prev_key = FLOW_STEPS[i - 1][0]
        ax.annotate("", xy=(x_main, y + 0.03), xytext=(x_main, ys[i - 1] - 0.03), arrowprops=arrow)
        dropped = counts[prev_key] - counts[key]
        if reason is not None and reason in excluded:
            n, used = excluded[reason], used | {reason}
            label = f"Excluded (n = {n}):\n{_REASON_TEXT.get(reason, reason.replace('_', ' '))}"
        elif dropped:
            n, label = dropped, f"Excluded (n = {dropped})"
            if key == "eligible":
                others = {r: c for r, c in excluded.items() if r not in used and r not in _REASON_TEXT}
                if others:
                    used |= set(others)
                    label = "Excluded (n = {}):\n".format(dropped) + "\n".join(
                        f"{r.replace('_', ' ')} (n = {c})" for r, c in others.items())
        else:
            continue
        y_mid = (ys[i - 1] + y) / 2
        ax.annotate("", xy=(x_side - 0.012, y_mid), xytext=(x_main, y_mid), arrowprops=arrow)
        ax.text(x_side, y_mid, label, ha="left", va="center", fontsize=7.5, bbox=side_box)
    if analysed:
        y = ys[-1]
        positions = {"analysed_2d": 0.17, "analysed_3d": 0.5} if len(analysed) == 2 else {analysed[0]: x_main}
        names = {"analysed_2d": "Analysed: 2D photographs", "analysed_3d": "Analysed: 3D scans"}
        why = not_analysed or {}
        for key in analysed:
            x = positions[key]
            ax.annotate("", xy=(x, y + 0.035), xytext=(x_main, ys[-2] - 0.03), arrowprops=arrow)
            missing = counts["eligible"] - counts[key]
            reasons = why.get(key.rsplit("_", 1)[1], {})
            extra = ""
            if missing:
                extra = f"\nnot analysed (n = {missing})"
                if reasons:
                    extra += ":\n" + "\n".join(f"{str(r).replace('_', ' ')} (n = {c})" for r, c in reasons.items())
            ax.text(x, y, f"{names[key]}\n(n = {counts[key]}){extra}", ha="center", va="center", fontsize=8, bbox=box)
    return fig
