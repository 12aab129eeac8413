"""Make docs/images/zones.png: the aesthetic zones on the symmetric template and on a real face.

Run from the repository root: ``PYTHONPATH=src python docs/make_zones_figure.py`` (about 30 s:
the real face's landmarks are detected).
"""

from __future__ import annotations

from pathlib import Path

from hemiface import datasets
from hemiface.scan import ZONE_NAMES, analyze_scan
from hemiface.scan._render import _pyplot, _zone_anchor, draw_zones

OUT = Path(__file__).parent / "images" / "zones.png"


def main() -> None:
    cases = [
        ("symmetric template (meshmonk)\nlandmarks: its landmark file",
         analyze_scan(datasets.sample_path("template"), affected="left",
                      landmarks=datasets.sample_landmarks_path("template"), uncertainty=False)),
        ("real face (meshmonk demo face)\nlandmarks: detected (--orient auto)",
         analyze_scan(datasets.sample_path("demoface"), affected="left", orient="auto", uncertainty=False)),
    ]
    plt = _pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(11.5, 6.8), dpi=110)
    for ax, (title, r) in zip(axes, cases):
        labels, _, xs, ys = draw_zones(ax, r.render_vertices, r.depth_faces, r.depth_values_mm, r.zone_layout,
                                       len(ZONE_NAMES))
        for k, name in enumerate(ZONE_NAMES):
            for side in (1.0, -1.0):
                at = _zone_anchor(labels, xs, ys, k, side)
                if at is not None:
                    ax.text(*at, name.replace("_", "\n"), ha="center", va="center", fontsize=6.5, color="0.1")
        given = sorted(n for n, s in r.zone_layout.sources.items() if s == "given")
        ax.set_title(f"{title} ({len(given)} of {len(r.zone_layout.sources)} zone landmarks given)", fontsize=9)
    axes[0].set_ylabel("mm")
    fig.savefig(OUT, format="png", metadata={"Software": None}, bbox_inches="tight")
    plt.close(fig)
    print(OUT)


if __name__ == "__main__":
    main()
