"""Table 1 and Table 2 as a journal prints them: every number is the statistics' tidy table's, laid out.

Each cell is read back and compared with the row of ``analyze_endpoints`` it came from (at the
printed rounding), so the report and ``study analyze``'s workbook cannot disagree. A rendered HTML
and PDF page of each table is saved next to the test's temporary folder as an artefact.
"""

import logging
import re

import numpy as np
import pandas as pd
import pytest
from report_helpers import Html

from hemiface.report import Report, format_p, journal_ancova, journal_table_one, journal_table_two, journal_tables
from hemiface.report._journal import TEST_NOTES
from hemiface.report.figures import group_label
from hemiface.stats import analyze_endpoints

log = logging.getLogger(__name__)
ORDER = ("fat_grafting", "free_flap", "adm")
NUM = r"\u2212?[\d,]+(?:\.\d+)?"


def _f(text: str) -> float:
    return float(text.replace("\u2212", "-").replace(",", ""))


@pytest.fixture(scope="module")
def tables(endpoints):
    return analyze_endpoints(endpoints)


def test_format_p():
    assert [format_p(p) for p in (0.0004, 0.00099, 0.001, 0.0456, 0.5, np.nan, None)] == [
        "< 0.001", "< 0.001", "0.001", "0.046", "0.500", "\u2013", "\u2013"]


def test_table_one_numbers_are_the_tidy_tables(tables):
    t1 = tables["table1"]
    j = journal_table_one(t1, order=ORDER)
    sizes = t1[t1.variable == "patients"].set_index("group")["n"]
    groups = [*ORDER, "all"]
    assert list(j.table.columns[1:]) == [f"{lab} (n = {sizes[g]})" for lab, g in
                                         zip(("Fat grafting", "Free flap", "ADM", "All"), groups)]
    rows = j.table.set_index("Characteristic")
    assert "Age at surgery, y, " + ("mean \u00b1 SD" if (t1[t1.variable == "age_at_surgery_years"].summary_type
                                                     == "mean_sd").all() else "median [IQR]") in rows.index
    for variable, label, decimals in (("age_at_surgery_years", "Age at surgery, y", 1),
                                      ("followup_interval_days", "Follow-up interval, d", 0)):
        tidy = t1[t1.variable == variable].set_index("group")
        (row_label,) = [r for r in rows.index if r.startswith(label + ",")]
        for col, g in zip(j.table.columns[1:], groups):
            numbers = [_f(x) for x in re.findall(NUM, rows.loc[row_label, col])]
            r = tidy.loc[g]
            expected = [r["mean"], r["sd"]] if r.summary_type == "mean_sd" else [r["median"], r["q1"], r["q3"]]
            assert numbers == pytest.approx([round(float(x), decimals) for x in expected], abs=1e-9), (variable, g)
    tidy = t1[(t1.variable == "sex") & (t1.level == "female")].set_index("group")
    for col, g in zip(j.table.columns[1:], groups):
        count, percent = re.fullmatch(r"(\d+) \((" + NUM + r")\)", rows.loc["\u2003Female", col]).groups()
        assert int(count) == tidy.loc[g, "count"] and _f(percent) == pytest.approx(round(tidy.loc[g, "percent"], 1))
    assert "Sex, n (%)" in rows.index and "Guerrerosantos stage, n (%)" in rows.index
    assert "Shapiro" in j.caption  # the footnote names the rule that chose mean or median


def test_table_two_numbers_are_the_selected_tests(tables):
    j = journal_table_two(tables["endpoints"], tables["descriptives"], tables["within_group"],
                          tables["between_groups"], order=ORDER)
    within = tables["within_group"][tables["within_group"].selected.astype(bool)]
    between = tables["between_groups"][tables["between_groups"].selected.astype(bool)]
    desc = tables["descriptives"]
    marks = dict(re.findall(r"(\S) ([^.]+)\.", " ".join(j.footnotes[1:])))
    current, checked = None, 0
    labels = {f"{d.label}, {d.unit.replace('mm3', 'mm³')}": d.endpoint for d in tables["endpoints"].itertuples()}
    for row in j.table.itertuples(index=False):
        cells = list(row)
        if not cells[0].startswith("\u2003"):  # an endpoint's first line: the comparison between techniques
            current = labels[cells[0]]
            b = between[between.endpoint == current].iloc[0]
            p_text, mark = cells[6][:-1], cells[6][-1]
            assert p_text == format_p(b.p_value) and marks[mark] == TEST_NOTES[b.test]
            continue
        group = {"Fat grafting": "fat_grafting", "Free flap": "free_flap", "ADM": "adm", "All": "all"}[cells[0][1:]]
        w = within[(within.endpoint == current) & (within.group == group)].iloc[0]
        decimals = 0 if "mm³" in [k for k, v in labels.items() if v == current][0] else 1
        assert int(cells[1]) == w.n
        est, lo, hi = (_f(x) for x in re.findall(NUM, cells[4]))
        assert (est, lo, hi) == pytest.approx(tuple(round(float(v), decimals) for v in (w.estimate, w.ci_low, w.ci_high)))
        assert cells[5][:-1] == format_p(w.p_value) and marks[cells[5][-1]] == TEST_NOTES[w.test]
        for cell, tp in ((cells[2], "baseline"), (cells[3], "followup")):
            d = desc[(desc.endpoint == current) & (desc.group == group) & (desc.timepoint == tp)].iloc[0]
            assert [_f(x) for x in re.findall(NUM, cell)] == pytest.approx([round(d["mean"], decimals),
                                                                            round(d["sd"], decimals)])
        checked += 1
    assert checked == len(within) and checked >= 12
    assert j.table.columns[4] == "Change (95% CI)"


def test_ancova_numbers_are_the_model_coefficients(tables):
    """Table 3: per endpoint the F test of technique, per technique its coefficient (CI, t test), all read back."""
    j = journal_ancova(tables["endpoints"], tables["ancova"], order=ORDER)
    an = tables["ancova"]
    labels = {f"{d.label}, {d.unit.replace('mm3', 'mm³')}": d.endpoint for d in tables["endpoints"].itertuples()}
    names = {"Fat grafting": "fat_grafting", "Free flap": "free_flap", "ADM": "adm"}
    reference = set(an.method_note.str.extract(r"reference (\S+)")[0].dropna())
    assert len(reference) == 1
    (reference,) = reference
    current, checked = None, 0
    for row in j.table.itertuples(index=False):
        cells = list(row)
        if not cells[0].startswith("\u2003"):
            current = labels[cells[0]]
            model = an[an.endpoint == current]
            assert cells[3] == format_p(model[model.term == "group"].p_value.iloc[0]) + "\u1d43"
            assert int(cells[1]) == model.n.max()
            continue
        label, versus = cells[0][1:].split(" vs ")
        assert versus == group_label(reference)
        r = an[(an.endpoint == current) & (an.term == f"group[{names[label]}]")].iloc[0]
        decimals = 0 if current.endswith("mm3") else 1
        est, lo, hi = (_f(x) for x in re.findall(NUM, cells[2]))
        assert (est, lo, hi) == pytest.approx(tuple(round(float(v), decimals) for v in (r.estimate, r.ci_low, r.ci_high)))
        assert cells[3] == format_p(r.p_value) + "\u1d47"
        checked += 1
    assert checked == an.term.astype(str).str.startswith("group[").sum() and checked >= 4
    assert j.table.columns[2] == "Adjusted difference (95% CI)"
    assert f"reference: {versus}" in j.caption and "appendix" in j.caption


def test_appendix_tables_keep_every_number(tables):
    """The appendix's display of a tidy table: labels and merged name columns, but every value still there."""
    from hemiface.report import appendix_display

    labels = dict(zip(tables["endpoints"].endpoint, tables["endpoints"].label))
    within = tables["within_group"]
    shown, note = appendix_display(within, labels)
    assert note == "Confidence intervals: 95%." and "conf_level" not in shown
    assert len(shown) == len(within) and list(shown.p_value) == list(within.p_value)
    assert list(shown.endpoint) == [labels[e] for e in within.endpoint]
    for (_, r), text in zip(within.iterrows(), shown.statistic):
        name, value = text.rsplit(" ", 1)
        assert name == r.statistic_name.replace("_", " ") and _f(value) == pytest.approx(r.statistic, rel=5e-3, abs=5e-3)
    for (_, r), text in zip(within.iterrows(), shown.missing_n_and_ids):
        ids = r.missing_ids.split(";") if isinstance(r.missing_ids, str) and r.missing_ids else []
        assert text == str(int(r.n_missing)) + (": " + "; ".join(ids) if ids else "")
    assert not {"statistic_name", "estimate_name", "effect_size_name", "n_missing"} & set(shown.columns)


def test_refuses_a_table_that_is_not_the_statistics(tables):
    from hemiface.report import ReportError

    with pytest.raises(ReportError, match="table1 lacks the column"):
        journal_table_one(pd.DataFrame({"characteristic": ["Age"], "all": [30.0]}))


def test_rendered_pages_are_saved_as_artefacts(tables, tmp_path, report_artifacts):
    """Table 1, Table 2 and Table 3 rendered to HTML and PDF, and each PDF page rasterised to a PNG in
    test-artifacts/report/ (or $HEMIFACE_TEST_ARTIFACTS/report/) for a reader to look at."""
    import pypdfium2

    journal = journal_tables(tables, order=ORDER)
    report = Report("Journal tables")
    for key, title in (("table1", "Table 1. Baseline characteristics"), ("table2", "Table 2. Endpoints"),
                       ("ancova", "Table 3. Follow-up adjusted for baseline (ANCOVA)")):
        report.add_table(journal[key].table, title, caption=journal[key].caption)
    html = tmp_path / "journal_tables.html"
    pdf = tmp_path / "journal_tables.pdf"
    report.save_html(html)
    report.save_pdf(pdf)
    doc = Html(html.read_text(encoding="utf-8"))
    assert not doc.errors
    shown = doc.table("Table 2. Endpoints")
    assert len(shown["rows"]) == len(journal["table2"].table)
    assert pdf.read_bytes().startswith(b"%PDF")
    pages = pypdfium2.PdfDocument(str(pdf))
    saved = []
    for k in range(len(pages)):
        image = pages[k].render(scale=150 / 72).to_pil()
        saved.append(report_artifacts / f"journal_tables_page{k + 1}.png")
        image.save(saved[-1])
        assert image.width > 1000 and image.getextrema()[0][0] < 50  # a page with dark print on it
    log.info("journal tables rendered: %s, %s and %d page image(s) in %s", html, pdf, len(saved), report_artifacts)
    assert len(saved) >= 1
