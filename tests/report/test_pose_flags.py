"""The study report's list of photograph pairs whose head pose differs between the visits (issue 13)."""

import pandas as pd

from hemiface.report._study import POSE_FLAG_COLUMNS, pose_flagged_pairs


def test_flagged_pairs_are_listed_and_others_not():
    endpoints = pd.DataFrame({
        "patient_id": ["P1", "P2", "P3"], "technique": ["fat_grafting"] * 3,
        "yaw_difference_deg": [4.5, 1.0, float("nan")], "pitch_difference_deg": [0.0, 0.5, float("nan")],
        "roll_difference_deg": [0.1, 0.0, float("nan")], "pose_differs": [True, False, None],
        "pose_flags": ["yaw_differs_by_more_than_3_deg", "", None], "symmetry_ratio_change": [8.0, 2.0, float("nan")],
    })
    flagged = pose_flagged_pairs(endpoints)
    assert tuple(flagged.columns) == POSE_FLAG_COLUMNS
    assert flagged["patient_id"].tolist() == ["P1"]
    assert pose_flagged_pairs(endpoints.drop(columns=["pose_differs"])).empty


def test_report_shows_the_pose_sensitivity_analysis(endpoints, flow):
    """With flagged pairs: the flagged list, then the sensitivity analysis as a journal table whose cells are the
    selected tests of analyze_endpoints' pose_sensitivity rows (n, left out, estimate and CI, p), its complete
    rows in the appendix, and the methods naming the limit the endpoint table flagged with."""
    from report_helpers import Html

    from hemiface.report import study_report
    from hemiface.report._journal import format_p
    from hemiface.report._study import APPENDIX_TITLES, KNOWN_TABLES, report_tables
    from hemiface.stats import analyze_endpoints

    ep = endpoints.copy()
    ep["pose_differs"] = pd.Series([False] * len(ep), dtype=object)
    ep.loc[[0, 3, 4], "pose_differs"] = True
    for col in ("yaw_difference_deg", "pitch_difference_deg", "roll_difference_deg"):
        ep[col] = 0.0
    ep.loc[[0, 3, 4], "yaw_difference_deg"] = 4.0
    ep["pose_flags"] = ["yaw_differs_by_more_than_3_deg" if v is True else "" for v in ep["pose_differs"]]
    tidy = analyze_endpoints(ep, order=["fat_grafting", "free_flap", "adm"])
    sens = tidy["pose_sensitivity"]
    shown, captions = report_tables(tidy, order=["fat_grafting", "free_flap", "adm"])
    settings = {"pose": {"max_pose_difference_deg": 3.0}}
    html = study_report(ep, shown, flow, settings, captions=captions, date="2026-02-03").to_html()
    doc = Html(html)
    assert doc.errors == []
    body = doc.table(KNOWN_TABLES["pose_sensitivity"][1])
    selected = sens[sens["selected"].astype(bool)]
    within = selected[selected.group != "between"].set_index("group")
    rows = {r[0]: r for r in body["rows"]}
    for group, label in (("fat_grafting", "Fat grafting"), ("free_flap", "Free flap"), ("adm", "ADM"), ("all", "All")):
        r, t = rows[f"{label}: change"], within.loc[group]
        assert r[1] == str(int(t.n)) and r[2] == str(int(t.n_excluded))
        assert r[3] == f"{t.estimate:.1f} ({t.ci_low:.1f} to {t.ci_high:.1f})".replace("-", "\u2212")
        assert r[5] == format_p(t.p_value)
    assert sum(int(r[2]) for k, r in rows.items() if k.endswith(": change") and not k.startswith("All")) == 3
    (between,) = [r for k, r in rows.items() if k.startswith("Difference in change")]
    assert between[2] == "3" and "kruskal" in between[4]  # three techniques: Kruskal-Wallis
    doc.table(f"Appendix. {APPENDIX_TITLES['pose_sensitivity']}")
    assert "differ by more than 3\u00b0 were flagged and listed, and the 2D endpoint was analysed again" in html
