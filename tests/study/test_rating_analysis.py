"""The rating panel's results in `study analyze` and the study report, against ratings chosen by hand.

Two completed rounds on the six-patient panel study (tests/rating_helpers.py) and one that is not
complete: a blinded comparison (two raters, each rater's score per patient chosen below and turned
into the response on whichever side the follow-up photograph was shown) and a symmetry round (three
raters, every photograph rated). The expected patients' scores, their summaries and the distribution
are worked out here from the chosen scores; the Mann-Whitney p is scipy's (R's wilcox.test with ties:
normal approximation, continuity correction), independent of hemiface's rank code.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from rating_helpers import PATIENTS, TECHNIQUES, make_rating_study
from scipy import stats as st

#: Blinded comparison: each rater's score (follow-up versus baseline, -2..+2) per patient.
PAIR_SCORES = {"Dr A": dict(RQ101=2, RQ102=1, RQ103=1, RQ104=0, RQ105=-1, RQ106=1),
               "Dr B": dict(RQ101=1, RQ102=1, RQ103=2, RQ104=0, RQ105=-1, RQ106=0)}
#: Symmetry round: baseline photographs 2, follow-up 4; rater C rates the free-flap baselines 3.
SYM_RATERS = ("Rater A", "Rater B", "Rater C")


def _symmetry_value(rater: str, file_name: str) -> int:
    pid = file_name.split("_")[0].upper()
    if file_name.endswith("_post.png"):
        return 4
    return 3 if rater == "Rater C" and TECHNIQUES[pid] == "free_flap" else 2


@pytest.fixture(scope="module")
def panel(tmp_path_factory, backend):  # backend: made again on each database
    from hemiface.study import create_round, open_study, rating_photo, record_rating, submit_ratings

    folder = make_rating_study(tmp_path_factory.mktemp("panel"))
    with open_study(folder) as study:
        pairs = create_round(study, "pairs", scale="comparison_5", raters=list(PAIR_SCORES), seed=5)
        for invite in pairs.invites:
            for position in range(1, pairs.n_items + 1):
                right = rating_photo(study, invite.token, position, "right")[0].name
                pid = right.split("_")[0].upper()
                score = PAIR_SCORES[invite.name][pid]
                record_rating(study, invite.token, position, score if right.endswith("_post.png") else -score)
            submit_ratings(study, invite.token)
        sym = create_round(study, "symmetry", scale="symmetry_5", raters=list(SYM_RATERS), seed=6)
        for invite in sym.invites:
            for position in range(1, sym.n_items + 1):
                name = rating_photo(study, invite.token, position, "photo")[0].name
                record_rating(study, invite.token, position, _symmetry_value(invite.name, name))
            submit_ratings(study, invite.token)
        unfinished = create_round(study, "unfinished", scale="improvement_4", raters=["Dr C", "Dr D"], seed=7)
        record_rating(study, unfinished.invites[0].token, 1, 3)
    return folder


@pytest.fixture(scope="module")
def analysis(panel):
    from hemiface.study import open_study, study_analysis

    with open_study(panel) as study:
        return study_analysis(study)


def _pair_patient_scores() -> pd.Series:
    return pd.DataFrame(PAIR_SCORES).mean(axis=1)


def test_rating_tables_hold_the_hand_worked_numbers(analysis):
    from hemiface.stats import rater_agreement
    from hemiface.study import RATING_TABLES, rating_table_columns

    _endpoints, tables, ratings = analysis
    assert [r["name"] for r in ratings.rounds] == ["pairs", "symmetry"]  # the unfinished round is left out
    assert [(r["n_raters"], r["n_patients"], r["n_items"]) for r in ratings.rounds] == [(2, 6, 6), (3, 6, 12)]
    for name, columns in rating_table_columns().items():
        assert tuple(tables[name].columns) == columns and name in RATING_TABLES
        assert set(tables[name]["round"]) == {"pairs", "symmetry"} or name == "rating_between" and len(tables[name]) == 2

    summary = tables["rating_summary"].set_index(["round", "technique"])
    scores = _pair_patient_scores()  # 1.5, 1, 1.5, 0, -1, 0.5
    for tech, pids in (("fat_grafting", PATIENTS[:3]), ("free_flap", PATIENTS[3:]), ("all", PATIENTS)):
        x = scores[list(pids)].to_numpy()
        row = summary.loc[("pairs", tech)]
        assert row.measure == "mean_score" and row.n_patients == len(x) and row.n_raters == 2
        assert row["mean"] == pytest.approx(x.mean()) and row["sd"] == pytest.approx(x.std(ddof=1))
        assert (row.q1, row["median"], row.q3) == pytest.approx(tuple(np.percentile(x, [25, 50, 75])))
    assert summary.loc[("pairs", "fat_grafting"), "mean"] == pytest.approx(4 / 3)
    # symmetry: every follow-up 4; baselines 2 (fat grafting) and (2 + 2 + 3) / 3 (free flap)
    assert summary.loc[("symmetry", "fat_grafting"), "mean"] == pytest.approx(2.0)
    assert summary.loc[("symmetry", "free_flap"), "mean"] == pytest.approx(5 / 3)
    assert summary.loc[("symmetry", "free_flap"), "measure"] == "change"

    dist = tables["rating_distribution"]
    pair_dist = dist[(dist["round"] == "pairs") & (dist.technique == "fat_grafting")].set_index("score")
    assert pair_dist.n.to_dict() == {-2: 0, -1: 0, 0: 0, 1: 4, 2: 2}  # Dr A 2, 1, 1 and Dr B 1, 1, 2
    assert pair_dist.loc[2, "label"] == "follow-up clearly more symmetric"
    sym = dist[(dist["round"] == "symmetry") & (dist.technique == "free_flap") & (dist.kind == "baseline")]
    assert sym.set_index("score").n.to_dict() == {1: 0, 2: 6, 3: 3, 4: 0, 5: 0}
    assert sym.set_index("score").percent[3] == pytest.approx(100 / 3)

    between = tables["rating_between"].set_index("round")
    x, y = scores[list(PATIENTS[:3])], scores[list(PATIENTS[3:])]
    assert between.loc["pairs", "test"] == "mann_whitney" and bool(between.loc["pairs", "selected"])
    assert between.loc["pairs", "statistic"] == 9.0  # every fat-grafting score above every free-flap score
    expected_p = st.mannwhitneyu(x, y, method="asymptotic", use_continuity=True).pvalue  # ties: as R
    assert between.loc["pairs", "p_value"] == pytest.approx(expected_p, rel=1e-10)
    within = tables["rating_within"]
    assert set(within.test) == {"wilcoxon"} and len(within) == 6  # per technique and all, both rounds

    agreement = tables["rating_agreement"]
    wide = pd.DataFrame({r: {f"{p}:pair": s for p, s in v.items()} for r, v in PAIR_SCORES.items()}).astype(float)
    expected = rater_agreement(wide, categories=range(-2, 3))
    got = agreement[agreement["round"] == "pairs"].drop(columns=["round_id", "round", "scale"]).reset_index(drop=True)
    pd.testing.assert_frame_equal(got, expected)
    assert list(agreement[agreement["round"] == "symmetry"].form)[-1] == "fleiss"  # three raters


def test_study_analyze_writes_the_rating_tables(panel, analysis, tmp_path):
    from openpyxl import load_workbook
    from typer.testing import CliRunner

    from hemiface.cli import app
    from hemiface.study import RATING_TABLES

    out = tmp_path / "analysis"
    run = CliRunner().invoke(app, ["study", "analyze", str(panel), "--out", str(out)])
    assert run.exit_code == 0, run.output
    assert "rating round 'pairs': 6 patients, 2 raters; ICC(2,1)" in run.output
    sheets = load_workbook(out / "analysis.xlsx", read_only=True).sheetnames
    for name in RATING_TABLES:
        assert name in sheets
        written = pd.read_csv(out / f"{name}.csv", keep_default_na=False, na_values=[""])
        assert list(written.columns) == list(analysis[1][name].columns) and len(written) == len(analysis[1][name])
    summary = pd.read_csv(out / "rating_summary.csv")
    pd.testing.assert_series_equal(summary["mean"], analysis[1]["rating_summary"]["mean"], check_names=False)


def _word_tables(doc) -> dict:
    """The Word document's tables under the title in the paragraph before each: list of rows."""
    from docx.table import Table
    from docx.text.paragraph import Paragraph

    out, title = {}, None
    for child in doc.element.body.iterchildren():
        if child.tag.endswith("}p"):
            title = Paragraph(child, doc).text.strip() or title
        elif child.tag.endswith("}tbl"):
            out[title] = [[c.text for c in r.cells] for r in Table(child, doc).rows]
    return out


def test_the_report_has_a_blinded_rating_section(panel, analysis, tmp_path):
    import docx
    from typer.testing import CliRunner

    from hemiface.cli import app
    from hemiface.report import format_p

    tables = analysis[1]
    out = tmp_path / "report"
    run = CliRunner().invoke(app, ["study", "report", str(panel), "--out", str(out), "--format", "docx"])
    assert run.exit_code == 0, run.output
    assert sorted(p.name for p in out.iterdir()) == ["report.docx"]  # only the format asked for
    doc = docx.Document(str(out / "report.docx"))
    headings = [p.text for p in doc.paragraphs if p.style.name == "Heading 1"]
    assert "Blinded rating" in headings and headings.index("Blinded rating") < headings.index("Methods")
    assert not any(p.text.startswith("Patient RQ") for p in doc.paragraphs)  # patient pages: HTML and PDF only
    shown = _word_tables(doc)
    header, *rows = shown["Rating round \u201cpairs\u201d: patients' scores by technique"]
    assert header == ["Technique", "n", "Mean \u00b1 SD", "Median [IQR]", "p (within)", "p (between techniques)"]
    rows = {r[0].strip("\u2003 "): r for r in rows}
    assert rows["Fat grafting"][1:4] == ["3", "1.33 \u00b1 0.29", "1.50 [1.25, 1.50]"]
    assert rows["Free flap"][1:4] == ["3", "\u22120.17 \u00b1 0.76", "0.00 [\u22120.50, 0.25]"]
    between = tables["rating_between"].set_index("round").loc["pairs", "p_value"]
    assert rows["Patient score, mean over the raters"][5] == format_p(between) + "\u1d43"
    header, *rows = shown["Rating round \u201csymmetry\u201d: distribution of the ratings"]
    assert header[:3] == ["Score", "Fat grafting, baseline photograph", "Fat grafting, follow-up photograph"]
    (two,) = [r for r in rows if r[0] == "2 clearly asymmetric"]
    assert two[1:] == ["9 (100.0)", "0 (0.0)", "6 (66.7)", "0 (0.0)"]
    _, *rows = shown["Rating round \u201csymmetry\u201d: agreement between the raters"]
    icc = tables["rating_agreement"].set_index(["round", "form"]).loc[("symmetry", "ICC(2,1)")]
    assert rows[0][:2] == ["ICC(2,1), two-way random effects, absolute agreement, single rater",
                           f"{icc.estimate:.2f} ({icc.ci_low:.2f} to {icc.ci_high:.2f})"]
    assert rows[-1][0].startswith("Fleiss' kappa, 3 raters")
    assert "Appendix. Blinded rating: agreement between the raters, every ICC form and kappa" in shown
    text = " ".join(" ".join(p.text for p in doc.paragraphs).split())
    for phrase in ("Two raters rated, independently", "Three raters rated", "follow-up photograph on a random side",
                   "intraclass correlation ICC(2,1) (two-way random effects, absolute agreement, single rater",
                   "Cohen's weighted kappa (linear and quadratic weights)", "as Fleiss' kappa",
                   "techniques were compared with the Mann\u2013Whitney U test",
                   "the change within each technique was tested with the Wilcoxon signed-rank test of the scores"):
        assert phrase in text, phrase
    every = text + " ".join(c for t in shown.values() for r in t for c in r)
    for hidden in ("unfinished", "Dr A", "Rater C"):  # the round not complete; raters are counted, not named
        assert hidden not in every
