"""Statistical analysis plan (placeholder docstring, completed below)."""
from ._errors import StatsError
from ._inference import GROUP_COLUMNS, MIN_N, PAIRED_COLUMNS, TESTS, compare_groups, paired_change
