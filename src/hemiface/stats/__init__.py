"""Statistical analysis plan (placeholder docstring, completed below)."""
from ._errors import StatsError
from ._inference import GROUP_COLUMNS, MIN_N, PAIRED_COLUMNS, TESTS, compare_groups, paired_change
from ._ancova import ANCOVA_ASSUMPTION_COLUMNS, ANCOVA_CHECKS, ANCOVA_COLUMNS, AncovaResult, ancova
from ._categorical import RATE_COLUMNS, RATE_TEST_COLUMNS, ComplicationsResult, clopper_pearson, complications_by_group, freeman_halton_k_by_2
