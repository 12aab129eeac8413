"""Statistical analysis plan: within-group change, between-technique comparison, complications, Table 1.

Every function returns tidy :class:`pandas.DataFrame` s whose column names are
frozen, tested module constants. Tests are two-sided. Missing data are never
dropped silently: every result row gives its ``n`` and the ids of the patients
left out (``n_missing``, ``missing_ids``), and :func:`analyze_endpoints` adds a
``missing`` table saying who is missing from what and why. Paired data of
unequal length raise :class:`StatsError`; a pair with a NaN on either side is
excluded and listed.

Public functions
----------------
:func:`paired_change`
    Paired t and Wilcoxon signed-rank on after - before (columns :data:`PAIRED_COLUMNS`).
:func:`compare_groups`
    Welch t and Mann-Whitney U for two groups, Kruskal-Wallis for more (columns :data:`GROUP_COLUMNS`).
:func:`ancova`
    ``followup ~ baseline + C(group)`` with assumption checks (:data:`ANCOVA_COLUMNS`,
    :data:`ANCOVA_ASSUMPTION_COLUMNS`).
:func:`complications_by_group`
    Rates with Clopper-Pearson intervals; Fisher's exact (2 groups) or
    Fisher-Freeman-Halton exact (more) (:data:`RATE_COLUMNS`, :data:`RATE_TEST_COLUMNS`).
:func:`table_one`
    Baseline characteristics by group (:data:`TABLE_ONE_COLUMNS`).
:func:`icc`, :func:`weighted_kappa`, :func:`fleiss_kappa`, :func:`rater_agreement`
    Agreement between raters (a blinded rating panel): the six ICC forms with F-based 95%
    intervals, Cohen's weighted kappa for two raters, Fleiss' kappa for more (:data:`AGREEMENT_COLUMNS`).
:func:`analyze_endpoints`
    All of the above on the study's endpoint table; returns the tables of :data:`TABLE_COLUMNS`.
:func:`write_workbook`, :func:`write_csv`
    Save the tables (XLSX, one sheet per table; or one CSV per table), never half-written.

The test selection rule
-----------------------
* Fewer than :data:`MIN_N` (3) complete observations (paired) or values in any
  group: normality cannot be assessed; the rows say "cannot test" and no test
  is selected.
* Paired: Shapiro-Wilk on the differences, p >= 0.05 selects ``paired_t``,
  otherwise ``wilcoxon``.
* Two groups: Shapiro-Wilk in each group, all p >= 0.05 selects ``welch_t``,
  otherwise ``mann_whitney``.
* More than two groups: ``kruskal``.
* The ANCOVA is always reported as the sensitivity analysis of the
  between-group comparison, with its assumption checks.

The rank tests follow R's ``wilcox.test`` defaults: zero differences are
dropped (Wilcoxon's method, not Pratt's); the exact null distribution is used
when n < 50 (each group, for two samples) and there are no ties or zeros;
otherwise the normal approximation with tie-corrected variance and continuity
correction. Hodges-Lehmann estimates and intervals are those of
``wilcox.test(conf.int = TRUE)``. ``tests/reference`` holds the R script and
the numbers the tests reproduce.

The endpoint table (input of :func:`analyze_endpoints`)
-------------------------------------------------------
One row per eligible patient with ``patient_id``, ``technique``,
``affected_side``, ``sex``, ``age_at_surgery_years``, ``guerrerosantos_stage``,
``age_at_onset_years``, ``years_since_onset``, ``initial_surgery_date``,
``baseline_date``, ``followup_date``, ``followup_interval_days``,
``symmetry_ratio_baseline_percent``, ``symmetry_ratio_followup_percent``,
``symmetry_ratio_change``, ``discrepancy_{baseline,followup,change}_mm3``,
``discrepancy_{baseline,followup,change}_percent``,
``defect_volume_baseline_mm3``, ``volume_gain_mm3``, ``volume_gain_registration_sd_mm3`` and
``discrepancy_change_registration_sd_mm3`` (``scan compare``'s SDs from the registration alone),
``volume_gain_uncertainty_mm3`` and ``discrepancy_change_uncertainty_mm3`` (the registration's and
what the face region's edge may cut off, in quadrature),
``complications_followup`` (';'-separated types, '' for none, NaN unknown),
``complications_followup_n``, ``major_complication`` (bool),
``missing_2d_reason``, ``missing_3d_reason``, and for each FACE-Q scale
``faceq_<scale>_{baseline,followup,change}``. Changes are follow-up minus
baseline; a ``*_change`` column that disagrees raises.

Endpoints (table ``endpoints``, rows :data:`ENDPOINTS` plus one per FACE-Q
scale): ``symmetry_ratio`` (2D), ``discrepancy_percent`` (the primary 3D
measure) and ``discrepancy_mm3`` (3D endpoints are analysed on the subset of
patients with scans at both visits; the others are listed in ``missing`` with
``missing_3d_reason``), ``faceq_<scale>``.

Tables of :func:`analyze_endpoints`
-----------------------------------
``endpoints``
    endpoint, label, unit, baseline_column, followup_column, change_column,
    reason_column, population.
``table1``
    :data:`TABLE_ONE_COLUMNS`: variable, level, group, n, n_missing,
    missing_ids, summary_type, summary, mean, sd, median, q1, q3, count, percent.
``descriptives``
    endpoint, group, timepoint (baseline, followup, change), n, n_missing,
    missing_ids, mean, sd, median, q1, q3, min, max; on the patients with both
    values (the analysis set of the tests).
``within_group``
    endpoint, group (each technique and "all"), then :data:`PAIRED_COLUMNS`:
    test, selected, statistic, statistic_name, df, p_value, estimate,
    estimate_name, ci_low, ci_high, conf_level, effect_size, effect_size_name,
    n, n_missing, missing_ids, normality_p, method_note.
``between_groups``
    endpoint, then :data:`GROUP_COLUMNS` (the paired columns plus comparison,
    group_sizes); the compared value is the change.
``ancova``
    endpoint, then :data:`ANCOVA_COLUMNS`: term, estimate, se, statistic,
    statistic_name, df, df_resid, p_value, ci_low, ci_high, conf_level, n,
    n_missing, missing_ids, method_note.
``ancova_assumptions``
    endpoint, then :data:`ANCOVA_ASSUMPTION_COLUMNS`: check, statistic,
    statistic_name, df, df_resid, p_value, passed, method_note.
``complications``
    :data:`RATE_COLUMNS`: outcome, group, n, n_missing, missing_ids, events,
    rate, ci_low, ci_high, conf_level. Outcomes: any_complication,
    major_complication and complication_type:<type> for each type seen.
``complication_tests``
    :data:`RATE_TEST_COLUMNS`: outcome, test, p_value, effect_size,
    effect_size_name, ci_low, ci_high, conf_level, comparison, n, n_missing,
    missing_ids, method_note.
``missing``
    :data:`MISSING_COLUMNS`: patient_id, group, endpoint, timepoint, reason.
``outcomes``
    :data:`OUTCOME_COLUMNS`: the follow-up outcomes analysed (:data:`OUTCOMES`: graft
    retention, achieved share of the planned gain), present when the endpoint table has
    their columns: outcome, label, unit, column, population_column, reason_column, population.
``outcome_descriptives``
    :data:`OUTCOME_DESCRIPTIVE_COLUMNS`: outcome, group (each technique with a patient in the
    outcome's population, and "all"), n, n_missing, missing_ids, mean, sd, median, q1, q3,
    min, max. Population: patients with a value in ``population_column`` (e.g. a recorded
    injected volume); missing values among them are listed in ``missing``.
``outcome_between_groups``
    outcome, then :data:`GROUP_COLUMNS`: the outcome compared between the techniques of its
    population by the same selection rule as the changes.

Values of ``test``: :data:`TESTS` (paired_t, wilcoxon, welch_t, mann_whitney,
kruskal); complication tests: fisher_exact, fisher_freeman_halton. Effect
sizes: cohen_dz, rank_biserial, hedges_g, epsilon_squared, odds_ratio.
Estimates: mean_change, pseudomedian_change, mean_difference,
hodges_lehmann_shift. Signs: changes are follow-up minus baseline; two-group
differences are first group minus second.
"""

#: The pre-specified test selection rule, as written in reports' methods.
SELECTION_RULE = (
    "Within each group, the paired differences were tested for normality with the Shapiro-Wilk test: the paired "
    "t test was selected when p \u2265 0.05, the Wilcoxon signed-rank test otherwise (both are reported). Between "
    "two techniques, Welch's t test was selected when the changes looked normal in every group (Shapiro-Wilk "
    "p \u2265 0.05), the Mann-Whitney U test otherwise, with the Hodges-Lehmann shift; with more than two "
    "techniques, the Kruskal-Wallis test. Fewer than 3 observations in a group were not tested. The ANCOVA of the "
    "follow-up value adjusted for baseline is the sensitivity analysis."
)


from ._agreement import (
    AGREEMENT_COLUMNS,
    AGREEMENT_MEASURES,
    ICC_CONF_LEVEL,
    ICC_FORMS,
    KAPPA_WEIGHTS,
    fleiss_kappa,
    icc,
    rater_agreement,
    weighted_kappa,
)
from ._ancova import ANCOVA_ASSUMPTION_COLUMNS, ANCOVA_CHECKS, ANCOVA_COLUMNS, AncovaResult, ancova
from ._categorical import (
    RATE_COLUMNS,
    RATE_TEST_COLUMNS,
    ComplicationsResult,
    clopper_pearson,
    complications_by_group,
    freeman_halton_k_by_2,
)
from ._endpoints import (
    COMPLICATION_OUTCOMES,
    DESCRIPTIVE_COLUMNS,
    ENDPOINT_COLUMNS,
    ENDPOINTS,
    MISSING_COLUMNS,
    OUTCOME_COLUMNS,
    OUTCOME_DESCRIPTIVE_COLUMNS,
    OUTCOMES,
    TABLE_COLUMNS,
    Endpoint,
    Outcome,
    analyze_endpoints,
    endpoints_of,
    outcomes_of,
)
from ._errors import StatsError
from ._inference import GROUP_COLUMNS, MIN_N, PAIRED_COLUMNS, TESTS, compare_groups, paired_change
from ._io import write_csv, write_workbook
from ._table_one import DEFAULT_CATEGORICAL, DEFAULT_CONTINUOUS, OVERALL, TABLE_ONE_COLUMNS, table_one

__all__ = [
    "AGREEMENT_COLUMNS",
    "AGREEMENT_MEASURES",
    "ICC_CONF_LEVEL",
    "ICC_FORMS",
    "KAPPA_WEIGHTS",
    "fleiss_kappa",
    "icc",
    "rater_agreement",
    "weighted_kappa",
    "ANCOVA_ASSUMPTION_COLUMNS",
    "SELECTION_RULE",
    "ANCOVA_CHECKS",
    "ANCOVA_COLUMNS",
    "AncovaResult",
    "COMPLICATION_OUTCOMES",
    "ComplicationsResult",
    "DEFAULT_CATEGORICAL",
    "DEFAULT_CONTINUOUS",
    "DESCRIPTIVE_COLUMNS",
    "ENDPOINTS",
    "ENDPOINT_COLUMNS",
    "Endpoint",
    "GROUP_COLUMNS",
    "MIN_N",
    "MISSING_COLUMNS",
    "OUTCOMES",
    "OUTCOME_COLUMNS",
    "OUTCOME_DESCRIPTIVE_COLUMNS",
    "Outcome",
    "OVERALL",
    "PAIRED_COLUMNS",
    "RATE_COLUMNS",
    "RATE_TEST_COLUMNS",
    "StatsError",
    "TABLE_COLUMNS",
    "TABLE_ONE_COLUMNS",
    "TESTS",
    "analyze_endpoints",
    "ancova",
    "clopper_pearson",
    "compare_groups",
    "complications_by_group",
    "endpoints_of",
    "outcomes_of",
    "freeman_halton_k_by_2",
    "paired_change",
    "table_one",
    "write_csv",
    "write_workbook",
]
