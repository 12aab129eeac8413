"""The study report of a registry: 600 patients, 570 of them without 3D scans (issue 15's scale).

Found by the 600-patient benchmark: the appendix listed the 570 patients missing a 3D endpoint in one
table cell, taller than an A4 page, so the PDF could not be laid out. A report cell now lists
``MAX_IDS_SHOWN`` ids and counts the rest; the tidy tables (workbook, CSV) keep every id.
"""

import numpy as np
import pandas as pd
from report_helpers import Html, endpoint_rows, pdf_pages

from hemiface.report import study_report
from hemiface.report._study import MAX_IDS_SHOWN, report_tables
from hemiface.stats import analyze_endpoints


def test_a_600_patient_report_lays_out_and_keeps_every_id_in_the_tidy_tables(tmp_path):
    n = 600
    ep = endpoint_rows(n, seed=11)
    three_d = [c for c in ep.columns if c.startswith("discrepancy_")] + ["defect_volume_baseline_mm3", "volume_gain_mm3"]
    ep.loc[30:, three_d] = np.nan
    ep.loc[30:, "missing_3d_reason"] = "no 3D scan at baseline"
    ep["pose_differs"] = pd.Series([False] * n, dtype=object)
    ep.loc[::5, "pose_differs"] = True  # 120 pairs left out of the sensitivity analysis
    for col in ("yaw_difference_deg", "pitch_difference_deg", "roll_difference_deg"):
        ep[col] = 0.0
    ep["pose_flags"] = ""
    tidy = analyze_endpoints(ep)
    flow = {"screened": n, "with_initial_surgery": n, "in_inclusion_window": n, "with_baseline": n,
            "with_followup": n, "eligible": n, "excluded": {}}
    shown, captions = report_tables(tidy)
    report = study_report(ep, shown, flow, {}, captions=captions, date="2026-02-03")
    pdf = report.save_pdf(tmp_path / "report.pdf")
    assert pdf_pages(pdf) > 5
    # Every id stays in the tidy table; the report's cells list a dozen and count the rest.
    d = tidy["descriptives"]
    row = d[(d.endpoint == "discrepancy_mm3") & (d.group == "all") & (d.timepoint == "change")].iloc[0]
    assert row.n_missing == 570 and len(row.missing_ids.split(";")) == 570
    html = report.to_html()
    assert Html(html).errors == []
    assert f"and {570 - MAX_IDS_SHOWN} more (every id in the workbook)" in html
    assert f"and {120 - MAX_IDS_SHOWN} more (every id in the workbook)" in html  # the pose sensitivity's left out
    assert "HFA-599" not in html.split("Missing endpoints")[0]  # listed only in the missing table's own rows
