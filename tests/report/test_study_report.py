"""study_report: every section, every number as in the tables given, the flow, methods from the settings,
patient pages, PDF pages; and the figures' counts."""

import pandas as pd
import pytest
from report_helpers import Html, matches, pdf_pages

from hemiface import __version__
from hemiface.report import ForbiddenContentError, ReportError, figures, study_report
from hemiface.report._study import KNOWN_TABLES, methods_text


@pytest.fixture(scope="module")
def inputs_before(endpoints, tables, flow, settings):
    return endpoints.copy(), {k: v.copy() for k, v in tables.items()}, dict(flow), dict(settings)


@pytest.fixture(scope="module")
def report(endpoints, tables, flow, settings, inputs_before):
    return study_report(endpoints, tables, flow, settings, date="2026-02-03")


@pytest.fixture(scope="module")
def html(report):
    return report.to_html()


def test_every_section_is_there(report, html, tables):
    doc = Html(html)
    assert doc.errors == []
    expected = ["Study flow", "Table 1", "Endpoints", "Figures", "Complications", "Missing data", "Further analyses",
                "Methods"]
    assert doc.h2 == expected == report.sections
    assert set(KNOWN_TABLES) - set(tables) == {"descriptives", "table2", "pose_sensitivity"}
    for key, (_, title) in KNOWN_TABLES.items():
        if key in tables:
            doc.table(title)  # each statistics table given appears once, under its title
    doc.table("Sensitivity per protocol")
    assert "Figure 1. Study flow" in doc.h3 and sum(h.startswith("Figure") for h in doc.h3) == 5
    assert "http://" not in html and "https://" not in html


def test_statistics_tables_show_the_dataframes_numbers(html, tables):
    doc = Html(html)
    for key in set(KNOWN_TABLES) & set(tables):
        shown, given = doc.table(KNOWN_TABLES[key][1]), tables[key]
        assert shown["columns"] == [str(c) for c in given.columns]
        assert len(shown["rows"]) == len(given)
        for row, values in zip(shown["rows"], given.itertuples(index=False)):
            for cell, value in zip(row, values):
                assert matches(cell, value), (key, cell, value)
    within = doc.table(KNOWN_TABLES["within_group"][1])
    assert [r[4] for r in within["rows"]] == ["<0.001", "0.012", "0.080", "<0.001", "0.500", "1.000"]
    assert [r[9] for r in within["rows"]][3:] == ["-3,313", "-2,150", "-1,234,568"]
    assert [r[11] for r in within["rows"]] == ["6", "\u2013", "7", "7", "6", "7"]  # degrees of freedom
    assert [r[14] for r in within["rows"]][:3] == ["HFA-002", "", "HFA-009, HFA-011"]


def test_endpoint_summary_is_computed_from_the_endpoint_table(html, endpoints):
    rows = Html(html).table("Endpoints by technique")["rows"]
    # recomputed here, independently: patients with both visits, per technique
    for label, base, follow, change in (
        ("Symmetry ratio (2D) (%)", "symmetry_ratio_baseline_percent", "symmetry_ratio_followup_percent",
         "symmetry_ratio_change"),
        ("Volumetric discrepancy (3D) (mm\u00b3)", "discrepancy_baseline_mm3", "discrepancy_followup_mm3",
         "discrepancy_change_mm3"),
        ("FACE-Q cheeks (score 0\u2013100)", "faceq_cheeks_baseline", "faceq_cheeks_followup", "faceq_cheeks_change"),
    ):
        for tech, name in (("fat_grafting", "Fat grafting"), ("free_flap", "Free flap"), ("adm", "ADM")):
            sub = endpoints[(endpoints.technique == tech)].dropna(subset=[base, follow, change])
            (row,) = [r for r in rows if r[0] == label and r[1] == name]
            expected = [len(sub), sub[base].mean(), sub[base].std(), sub[follow].mean(), sub[follow].std(),
                        sub[change].mean(), sub[change].std(), sub[change].median()]
            for cell, value in zip(row[2:], expected):
                assert matches(cell, value), (label, name, cell, value)
    n_symmetry = {r[1]: int(r[2]) for r in rows if r[0].startswith("Symmetry")}
    assert n_symmetry == {"Fat grafting": 7, "Free flap": 8, "ADM": 7}  # rows 2 (ADM) and 9 lack a follow-up photo


def test_flow_counts_and_analysed_numbers(html, endpoints, flow):
    rows = Html(html).table("Study flow counts")["rows"]
    shown = {step: int(n) for step, n in rows}
    assert shown["Patients screened"] == 31 and shown["Eligible"] == 24
    assert shown["Analysed: 2D photographs"] == endpoints["symmetry_ratio_change"].notna().sum() == 22
    assert shown["Analysed: 3D scans"] == endpoints["discrepancy_change_mm3"].notna().sum() == 23


def test_methods_are_written_from_the_settings(html, flow, settings):
    text = " ".join(" ".join(Html(html).text).split())
    for phrase in ("between 2021-01-01 and 2022-12-31", "at most 60 days before", "at least 12 calendar months",
                   "mediapipe face_mesh 0.10.21", "a line fitted through the midline landmarks",
                   "deeper than 3.5 mm", f"hemiface {__version__}", "\u03b1 = 0.05"):
        assert phrase in text, phrase
    assert "(default)" not in text.split("confidence")[0].split("2D photographs")[0]
    other = dict(settings, midline="pupils", threshold_mm=5.0, test_selection="Welch's t-test throughout.")
    text = " ".join(methods_text(other, flow).split())
    assert "perpendicular bisector" in text and "deeper than 5 mm" in text and "Welch's t-test throughout." in text
    # a value the settings leave out is never guessed (the study layer passes them all: tests/study)
    text = " ".join(methods_text({}, flow).split())
    for phrase in ("at most (not recorded) before", "deeper than (not recorded) is", "yaw beyond (not recorded)",
                   "\u03b1 = (not recorded)", "midline was (not recorded)"):
        assert phrase in text, phrase
    assert "(default)" not in text and "4 mm" not in text and "90 days" not in text


def test_fallback_tables_from_the_endpoints(endpoints, flow, settings):
    doc = Html(study_report(endpoints, {}, flow, settings).to_html())
    table1 = doc.table(KNOWN_TABLES["table1"][1])
    (patients,) = [r for r in table1["rows"] if r[0] == "Patients"]
    assert patients[2:] == ["8", "8", "8", "24"]
    (female,) = [r for r in table1["rows"] if r[0] == "Sex: female"]
    counts = endpoints[endpoints.sex == "female"].technique.value_counts()
    assert female[2:] == [str(counts.get(t, 0)) for t in ("fat_grafting", "free_flap", "adm")] + [str(counts.sum())]
    comp = doc.table(KNOWN_TABLES["complications"][1])
    for row, tech in zip(comp["rows"], ("fat_grafting", "free_flap", "adm")):
        sub = endpoints[endpoints.technique == tech]
        assert int(row[2]) == (sub.complications_followup_n > 0).sum()
        assert int(row[4]) == sub.major_complication.sum()
        assert matches(row[3], 100 * (sub.complications_followup_n > 0).mean())
    assert "Missing data" not in doc.h2


def test_patient_pages_and_pdf(tmp_path, report, endpoints, tables, flow, settings, results):
    pages = [
        {"patient_id": "HFA-001", "depth_map": results["scan_analyze"] / "depth_map.png"},
        {"patient_id": "HFA-004", "overlay_baseline": results["photo_analyze"] / "overlay.png"},
    ]
    without = report.save_pdf(tmp_path / "without.pdf")
    with_pages = study_report(endpoints, tables, flow, settings, patient_pages=pages, forbidden=["Doe_Jane"])
    assert with_pages.sections[-2:] == ["Patient HFA-001", "Patient HFA-004"]
    # one page each (the depth map's title band, which names the scan file, is cropped: the guard would not see it)
    assert pdf_pages(with_pages.save_pdf(tmp_path / "with.pdf")) == pdf_pages(without) + 2
    doc = Html(with_pages.to_html())
    tables_shown = [t for t in doc.tables if t.get("caption") == "Measurements"]
    assert len(tables_shown) == 2
    row = endpoints[endpoints.patient_id == "HFA-004"].iloc[0]
    (sym,) = [r for r in tables_shown[1]["rows"] if r[0].startswith("Symmetry")]
    for cell, col in zip(sym[1:], ("symmetry_ratio_baseline_percent", "symmetry_ratio_followup_percent",
                                   "symmetry_ratio_change")):
        assert matches(cell, row[col])
    text = " ".join(" ".join(doc.text).split())
    assert f"Follow-up interval (days): {row.followup_interval_days}" in text
    assert str(row.initial_surgery_date.date()) not in text  # no dates on patient pages
    with pytest.raises(ReportError, match="patient_id"):
        study_report(endpoints, tables, flow, settings, patient_pages=[{"depth_map": "x.png"}])


def test_forbidden_names_stop_the_study_report(tmp_path, endpoints, tables, flow, settings):
    named = endpoints.copy()
    named.loc[0, "technique"] = "fat_grafting (Dr Who's list)"
    with pytest.raises(ForbiddenContentError):
        study_report(named, tables, flow, settings, forbidden=["Dr Who"]).save_pdf(tmp_path / "r.pdf")
    assert not (tmp_path / "r.pdf").exists()


def test_inputs_are_not_modified(report, endpoints, tables, flow, settings, inputs_before):
    before = inputs_before
    pd.testing.assert_frame_equal(endpoints, before[0])
    for k in tables:
        pd.testing.assert_frame_equal(tables[k], before[1][k])
    assert flow == before[2] and settings == before[3]


# -- figures --------------------------------------------------------------------------------------

def _texts(fig):
    return [t.get_text() for ax in fig.axes for t in [*ax.texts, ax.title, *ax.get_xticklabels()]] + \
        [t.get_text() for ax in fig.axes if ax.get_legend() for t in ax.get_legend().get_texts()]


def test_flow_diagram_counts(flow):
    fig = figures.flow_diagram({**flow, "analysed_2d": 22, "analysed_3d": 23},
                               not_analysed={"2d": {"no_followup_photo": 1, "pose_flagged": 1}})
    text = "\n".join(_texts(fig))
    for line in ("Patients screened\n(n = 31)", "Eligible\n(n = 24)", "Excluded (n = 2):\ninitial surgery outside",
                 "Analysed: 2D photographs\n(n = 22)\nnot analysed (n = 2):\nno followup photo (n = 1)",
                 "Analysed: 3D scans\n(n = 23)\nnot analysed (n = 1)"):
        assert line in text, line
    # without reasons, the differences between steps are drawn as exclusions
    plain = "\n".join(_texts(figures.flow_diagram({k: v for k, v in flow.items() if k != "excluded"})))
    assert plain.count("Excluded (n = 2)") == 3 and "Excluded (n = 1)" in plain


@pytest.mark.parametrize("bad, message", [
    ({"with_baseline": 29}, "exceeds"), ({"screened": -1}, "whole number"), ({"eligible": 2.5}, "whole number"),
    ({"analysed_3d": 25}, "exceeds eligible"), ({"excluded": {"no_baseline_visit": 3}}, "different tables"),
])
def test_flow_diagram_refuses_inconsistent_counts(flow, bad, message):
    with pytest.raises(ReportError, match=message):
        figures.flow_diagram({**flow, **bad})
    with pytest.raises(ReportError, match="lacks"):
        figures.flow_diagram({"screened": 3})


def test_paired_and_change_plots_count_complete_pairs(endpoints):
    fig = figures.paired_plot(endpoints, "symmetry_ratio_baseline_percent", "symmetry_ratio_followup_percent",
                              label="Symmetry ratio", unit="%", order=["fat_grafting", "free_flap", "adm"])
    assert [ax.get_title() for ax in fig.axes] == ["Fat grafting (n = 7)", "Free flap (n = 8)", "ADM (n = 7)"]
    assert fig.axes[0].get_ylabel() == "Symmetry ratio (%)"
    assert sum(len(ax.lines) >= 8 for ax in fig.axes) == 3  # one line per pair at least
    fig = figures.change_plot(endpoints, "discrepancy_change_mm3", label="discrepancy", unit="mm\u00b3")
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == [
        "ADM\n(n = 7)", "Fat grafting\n(n = 8)", "Free flap\n(n = 8)"]
    fig = figures.discrepancy_change_plot(endpoints)
    legend = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert legend == ["ADM (n = 7)", "Fat grafting (n = 8)", "Free flap (n = 8)"]
    assert "mm\u00b3" in fig.axes[0].get_xlabel() and "mm\u00b3" in fig.axes[1].get_ylabel()
    with pytest.raises(ReportError, match="lacks column"):
        figures.change_plot(endpoints, "no_such_change")


def test_minimal_and_empty_endpoint_tables(tmp_path, endpoints, flow):
    minimal = study_report(endpoints[["patient_id", "technique"]], {}, flow, {})
    assert minimal.sections == ["Study flow", "Table 1", "Endpoints", "Figures", "Complications", "Methods"]
    text = " ".join(Html(minimal.to_html()).text)
    assert "no endpoint columns to plot" in text and "No complication data were given." in text
    empty = study_report(endpoints.iloc[:0], {}, {k: 0 for k in flow if k != "excluded"}, {})
    assert pdf_pages(empty.save_pdf(tmp_path / "empty.pdf")) >= 1
    with pytest.raises(ReportError, match="technique"):
        study_report(endpoints.drop(columns="technique"), {}, flow, {})


def test_flow_steps_follow_the_study_module():
    from hemiface.study import EXCLUSION_REASONS, FLOW_KEYS

    assert tuple(k for k, _, _ in figures.FLOW_STEPS) == FLOW_KEYS
    reasons = {r for _, _, r in figures.FLOW_STEPS if r}
    assert reasons == set(EXCLUSION_REASONS) == set(figures._REASON_TEXT)


def test_nested_settings_and_study_flow_extras(endpoints, flow):
    """The endpoint table's attrs shape: {"rules": StudySettings.to_dict(), "parameters": {analysis: {...}}},
    and a flow with hemiface.study.study_flow's list of excluded patients (never shown)."""
    from hemiface.report._study import flat_settings

    settings = {"rules": {"name": "Nested study", "baseline_window_days": 45, "followup_months": 9,
                          "techniques": ["adm", "free_flap", "fat_grafting"]},
                "parameters": {"photo_analyze": {"midline": "fitted", "iris_mm": 12.0},
                               "scan_analyze": {"threshold_mm": 3.0, "floor_mm": 0.5},
                               "scan_compare": {"max_registration_rms_mm": 0.8}}}
    assert flat_settings(settings)["threshold_mm"] == 3.0 and flat_settings({"a": 1, "b": {"a": 2}})["a"] == 1
    text = " ".join(methods_text(settings, flow).split())
    for phrase in ("at most 45 days before", "at least 9 calendar months", "fitted through", "12 mm",
                   "deeper than 3 mm", "more than 0.5 mm", "above 0.8 mm"):
        assert phrase in text, phrase
    extra = {**flow, "analysed_2d": 22, "analysed_3d": 23,
             "excluded_patients": [{"patient_id": "HFA-900", "reason": "no_baseline_visit", "description": "..."}]}
    report = study_report(endpoints[["patient_id", "technique"]], {}, extra, settings)
    doc = Html(report.to_html())
    assert report.study_name == "Nested study"
    assert "HFA-900" not in " ".join(doc.text)
    assert [r[1] for r in doc.table("Study flow counts")["rows"]][-2:] == ["22", "23"]
