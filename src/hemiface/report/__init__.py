"""Reports: a :class:`Report` of tables, figures and text saved as one self-contained HTML file or a PDF.

Public: :class:`Report`, :func:`study_report` (the study's results: flow
diagram, Table 1, endpoint tables, figures, complications, methods and
per-patient pages), :func:`patient_report` (a one-page PDF for the clinical
chart from a ``scan analyze``, ``scan compare`` or ``photo analyze`` folder),
:mod:`hemiface.report.figures` (journal-style figures) and
:func:`format_value` (the tables' number formatting).
"""

from . import figures
from ._errors import ForbiddenContentError, ReportError
from ._format import column_kind, column_label, format_table, format_value
from ._journal import JournalTable, format_p, journal_ancova, journal_table_one, journal_table_two, journal_tables
from ._patient import patient_report
from ._report import Report
from ._study import appendix_display, report_tables, study_report

__all__ = [
    "JournalTable", "format_p", "journal_ancova", "journal_table_one", "journal_table_two", "journal_tables",
    "ForbiddenContentError", "Report", "ReportError", "column_kind", "column_label", "figures", "format_table",
    "appendix_display", "format_value", "patient_report", "report_tables", "study_report",
]
