"""Surgical planning from a measured defect: the stepped ADM composite and the fat-graft plan.

Public entry points: :func:`adm_plan` (returns a frozen :class:`AdmPlan`; ``save`` writes printable
1:1 templates, the stacked composite as STL, a layer map and ``adm_plan.json``) and :func:`fat_plan`
(a frozen :class:`FatPlan`: volume to inject per zone and sessions). Both start from a
``scan analyze`` output folder or a :class:`hemiface.scan.ScanAnalysis`, so the plan follows the
analysis' defect exactly.
"""

from ._adm import ADM_OUTPUT_NAMES, AdmLayer, AdmPiece, AdmPlan, PlanError, adm_plan
from ._fat import FAT_COLUMNS, FAT_OUTPUT_NAMES, FatPlan, FatZone, fat_plan
from ._flatten import FlatPiece, FlattenError
from ._layers import ROUNDING, VolumeBound

__all__ = [
    "ADM_OUTPUT_NAMES", "AdmLayer", "AdmPiece", "AdmPlan", "FAT_COLUMNS", "FAT_OUTPUT_NAMES", "FatPlan", "FatZone",
    "FlatPiece", "FlattenError", "PlanError", "ROUNDING", "VolumeBound", "adm_plan", "fat_plan",
]
