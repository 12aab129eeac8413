"""The blinded rating panel's results as a journal prints them, and the methods sentence of each round.

Like :mod:`hemiface.report._journal`, nothing here is computed: the tables only lay out the tidy tables
of :func:`hemiface.study.rating_analysis` (``rating_summary``, ``rating_distribution``, ``rating_within``,
``rating_between``, ``rating_agreement``), one set per completed round, so the report and ``study
analyze``'s workbook cannot disagree. A round is described by a plain mapping (``round_id``, ``name``,
``scale`` with the scale's ``name``, ``design``, ``blinded``, ``values``, ``labels``, ``question``,
``description``; ``n_raters``, ``n_patients``, ``n_items``, ``measure``, ``agreement_note``,
``within_tested``, ``between_tested``).
"""

from __future__ import annotations

from typing import Mapping, Sequence

import pandas as pd

from ._errors import ReportError
from ._journal import JournalTable, _group_label, _num, _order, format_p
from ._journal import TEST_NOTES as _TEST_NOTES

#: The ICC form the report gives first (a panel of raters drawn from a population of raters).
REPORTED_ICC = "ICC(2,1)"
#: Agreement rows shown in the body, in order (every form is in the appendix and the workbook).
BODY_AGREEMENT_FORMS = (REPORTED_ICC, "ICC(2,k)", "unweighted", "linear", "quadratic", "fleiss")
#: The rating panel's tidy tables (sheet names of ``study analyze``), in order: made by
#: :func:`hemiface.study.rating_analysis`, laid out here.
RATING_TABLES = ("rating_summary", "rating_distribution", "rating_within", "rating_between", "rating_agreement")
_MEASURE_TEXT = {"mean_score": "score, mean over the raters", "change": "change in symmetry score, follow-up minus baseline"}
_WORDS = {1: "One", 2: "Two", 3: "Three", 4: "Four", 5: "Five", 6: "Six", 7: "Seven", 8: "Eight", 9: "Nine", 10: "Ten"}


def _rows(tables: Mapping[str, pd.DataFrame], name: str, round_id) -> pd.DataFrame:
    table = tables.get(name)
    if table is None or "round_id" not in table:
        return pd.DataFrame()
    return table[table["round_id"] == round_id]


def rating_table_scores(tables: Mapping[str, pd.DataFrame], round_: Mapping, *,
                        order: Sequence | None = None) -> JournalTable:
    """Each technique's (and all patients') scores: n, mean ± SD, median [IQR], the change within each
    technique and the comparison between techniques (p on the first line)."""
    summary = _rows(tables, "rating_summary", round_["round_id"])
    if summary.empty:
        raise ReportError(f"no rating_summary rows for rating round {round_['round_id']}")
    within = _rows(tables, "rating_within", round_["round_id"])
    between = _rows(tables, "rating_between", round_["round_id"])
    measure = str(summary["measure"].iloc[0])
    columns = ["Technique", "n", "Mean \u00b1 SD", "Median [IQR]", "p (within)", "p (between techniques)"]
    marks: dict[str, str] = {}

    def mark(test: str) -> str:
        marks.setdefault(test, "\u1d43\u1d47\u1d9c"[len(marks)])
        return marks[test]

    b = between[between["selected"].astype(bool)] if len(between) else between
    p_between = f"{format_p(b['p_value'].iloc[0])}{mark(str(b['test'].iloc[0]))}" if len(b) else ""
    rows = [dict.fromkeys(columns, "") | {"Technique": f"Patient {_MEASURE_TEXT.get(measure, measure)}",
                                          "p (between techniques)": p_between}]
    sources = [b]
    for g in _order(summary["technique"], order):
        r = summary[summary["technique"] == g].iloc[0]
        w = within[within["technique"] == g] if len(within) else within
        p_within = f"{format_p(w['p_value'].iloc[0])}{mark(str(w['test'].iloc[0]))}" if len(w) else ""
        rows.append({"Technique": f"\u2003{_group_label(g)}", "n": str(int(r["n_patients"])),
                     "Mean \u00b1 SD": f"{_num(r['mean'], 2)} \u00b1 {_num(r['sd'], 2)}",
                     "Median [IQR]": f"{_num(r['median'], 2)} [{_num(r['q1'], 2)}, {_num(r['q3'], 2)}]",
                     "p (within)": p_within, "p (between techniques)": ""})
        sources += [summary[summary["technique"] == g], w]
    scale = round_["scale"]
    notes = [f"Scale: {scale['description']}. n: patients; a patient's score is the mean of the {round_['n_raters']} "
             "raters' scores" + (" (symmetry of the follow-up photograph minus that of the baseline one)"
                                 if measure == "change" else "") + "."]
    notes += [f"{m} {_TEST_NOTES.get(t, t.replace('_', ' '))}"
              + (" of the scores against 0 (no change)" if t == "wilcoxon" and measure != "change" else "") + "."
              for t, m in marks.items()]
    source = pd.concat([s for s in sources if len(s)], ignore_index=True) if any(len(s) for s in sources) else pd.DataFrame()
    return JournalTable(pd.DataFrame(rows, columns=columns), tuple(notes), source)


def rating_table_distribution(tables: Mapping[str, pd.DataFrame], round_: Mapping, *,
                              order: Sequence | None = None) -> JournalTable:
    """The single ratings by score: n (%) per technique (and photograph, on the symmetry scale)."""
    dist = _rows(tables, "rating_distribution", round_["round_id"])
    if dist.empty:
        raise ReportError(f"no rating_distribution rows for rating round {round_['round_id']}")
    groups = [(g, k) for g in _order(dist["technique"], order) for k in dict.fromkeys(dist["kind"])
              if ((dist["technique"] == g) & (dist["kind"] == k)).any()]
    kind_text = {"baseline": "baseline photograph", "followup": "follow-up photograph"}
    headers = {(g, k): _group_label(g) + (f", {kind_text[k]}" if k in kind_text else "") for g, k in groups}
    rows = []
    for score in dict.fromkeys(dist["score"]):
        at = dist[dist["score"] == score]
        signed = 0 in round_["scale"]["values"] and score > 0  # -2..+2 scales: "+1", as the raters' scale reads
        row = {"Score": f"{'+' if signed else ''}{_num(score, 0)} {at['label'].iloc[0]}"}
        for (g, k), header in headers.items():
            cell = at[(at["technique"] == g) & (at["kind"] == k)]
            row[header] = f"{int(cell['n'].iloc[0])} ({_num(cell['percent'].iloc[0])})" if len(cell) else "\u2013"
        rows.append(row)
    notes = [f"Ratings, n (%), of the {round_['n_raters']} raters together (each rating counted once)."]
    return JournalTable(pd.DataFrame(rows, columns=["Score", *headers.values()]), tuple(notes), dist.copy())


def rating_table_agreement(tables: Mapping[str, pd.DataFrame], round_: Mapping) -> JournalTable:
    """Agreement between the raters: the reported ICC form, the mean-of-k form and the kappas, with intervals."""
    agreement = _rows(tables, "rating_agreement", round_["round_id"])
    shown = agreement[agreement["form"].isin(BODY_AGREEMENT_FORMS)].copy()
    shown["_order"] = shown["form"].map(BODY_AGREEMENT_FORMS.index)
    shown = shown.sort_values("_order", kind="stable")
    levels = set(pd.to_numeric(shown["conf_level"], errors="coerce").dropna().round(6))
    header = f"Estimate ({100 * levels.pop():g}% CI)" if len(levels) == 1 else "Estimate (CI)"
    rows, undefined = [], False
    for r in shown.itertuples():
        label = f"{r.form}, {r.description.split(' (McGraw')[0]}" if r.measure == "icc" else r.description
        ci = ""
        if pd.notna(r.ci_low) and pd.notna(r.ci_high):
            ci = f" ({_num(r.ci_low, 2)} to {_num(r.ci_high, 2)})"
            if header == "Estimate (CI)":
                ci = f" ({100 * float(r.conf_level):g}% CI {_num(r.ci_low, 2)} to {_num(r.ci_high, 2)})"
        elif pd.notna(r.estimate) and r.measure != "fleiss_kappa":  # hemiface.stats leaves NaN where it is undefined
            ci, undefined = " (interval not defined)\u1d43", True
        rows.append({"Measure": label, header: f"{_num(r.estimate, 2)}{ci}", "p": format_p(r.p_value),
                     "Items": str(int(r.n_subjects)), "Raters": str(int(r.n_raters))})
    notes = [f"{REPORTED_ICC} (Shrout & Fleiss; McGraw & Wong's ICC(A,1)) is the agreement of single raters drawn "
             "from a population of raters; ICC(2,k) that of the mean of the k raters. p: test of no agreement. "
             "Items: rated photograph pairs (or photographs) with every rater's score. Every ICC form is in the "
             "appendix and the workbook (sheet rating_agreement)."]
    if undefined:
        notes.append("\u1d43 The F-based interval is not defined here (a negative ICC in a small sample); the "
                     "workbook's rating_agreement sheet says why (method_note).")
    table = pd.DataFrame(rows, columns=["Measure", header, "p", "Items", "Raters"])
    return JournalTable(table, tuple(notes), shown.drop(columns="_order"))


def _count(n: int) -> str:
    return _WORDS.get(int(n), str(int(n)))


def rating_methods_text(round_: Mapping) -> str:
    """The methods sentence of a round: who rated, what, on which scale, how it was blinded, which agreement."""
    scale = round_["scale"]
    n_raters, n_patients = int(round_["n_raters"]), int(round_["n_patients"])
    who = f"{_count(n_raters)} rater{'s' if n_raters != 1 else ''}"
    if scale["design"] == "pair":
        what = (f"the baseline and follow-up photographs of {n_patients} patients side by side "
                f"({round_['n_items']} pairs)")
        if scale["blinded"]:
            shown = ("Each rater saw the pairs in their own random order, each pair with the follow-up photograph "
                     "on a random side, and was not told which photograph was the follow-up")
        else:
            shown = ("Each rater saw the pairs in their own random order, baseline on the left and follow-up on the "
                     "right, labelled (the raters knew which photograph was the follow-up)")
    else:
        what = (f"each of the {round_['n_items']} baseline and follow-up photographs of {n_patients} patients "
                "on its own")
        shown = "Each rater saw the photographs, baseline and follow-up mixed, in their own random order"
    values = scale["values"]
    score = "A patient's score is the mean over the raters" + (
        "; a patient's change is the follow-up photograph's score minus the baseline photograph's"
        if scale["design"] == "single" else "")
    tests = [t for t, done in (
        ("techniques were compared with the Mann\u2013Whitney U test (Kruskal\u2013Wallis with more than two)",
         round_.get("between_tested")),
        ("the change within each technique was tested with the Wilcoxon signed-rank test"
         + ("" if scale["design"] == "single" else " of the scores against 0 (no change)"),
         round_.get("within_tested")),
    ) if done]
    text = (f"Blinded rating (round \u201c{round_['name']}\u201d). {who} rated, independently and each through a "
            f"personal link that showed only their own ratings, {what}, answering \u201c{scale['question']}\u201d "
            f"on a {len(values)}-point scale. Scale: {scale['description']}. {shown}; no patient identifier, date, "
            f"technique or file name was shown. Ratings were final once submitted. {score}. "
            + (f"Scores are ordinal: {' and '.join(tests)}. " if tests else ""))
    if n_raters >= 2:
        kappa = ("Cohen's weighted kappa (linear and quadratic weights)" if n_raters == 2
                 else "Fleiss' kappa")
        text += (f"Agreement between the raters is given as the intraclass correlation {REPORTED_ICC} (two-way random "
                 "effects, absolute agreement, single rater; Shrout & Fleiss 1979) with its F-based 95% confidence "
                 f"interval, and as {kappa}.")
    else:
        text += f"Agreement between raters could not be assessed: {round_.get('agreement_note', 'one rater')}."
    return text


def rating_tables(tables: Mapping[str, pd.DataFrame], rounds: Sequence[Mapping], *,
                  order: Sequence | None = None) -> list[tuple[Mapping, dict[str, JournalTable]]]:
    """Each round with its laid-out tables ``scores``, ``distribution`` and (with two raters or more) ``agreement``."""
    out = []
    for round_ in rounds:
        laid = {"scores": rating_table_scores(tables, round_, order=order),
                "distribution": rating_table_distribution(tables, round_, order=order)}
        if len(_rows(tables, "rating_agreement", round_["round_id"])):
            laid["agreement"] = rating_table_agreement(tables, round_)
        out.append((round_, laid))
    return out


def is_rating_table(key: str) -> bool:
    """Whether a statistics table is one of the rating panel's (placed in the "Blinded rating" section)."""
    return key in RATING_TABLES
