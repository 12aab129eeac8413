"""Errors of the study tools."""

from __future__ import annotations

from dataclasses import dataclass

from .._errors import HemifaceError


class StudyError(HemifaceError, ValueError):
    """A study folder, its settings or its database is missing, malformed or inconsistent."""


class StaleEditError(HemifaceError, RuntimeError):
    """An edit started from an older version than the one saved since (another person or tab saved first)."""


class StudyExistsError(HemifaceError, FileExistsError):
    """``study init`` would write over an existing study or a non-empty folder."""


@dataclass(frozen=True)
class Problem:
    """One problem found in an import: where it is (file, spreadsheet row, column) and what is wrong.

    ``row`` is the spreadsheet row number as a person sees it: the header is row 1,
    the first data row is row 2. ``row`` and ``column`` are None for problems of a
    whole file.
    """

    file: str
    row: int | None
    column: str | None
    message: str

    def __str__(self) -> str:
        where = [self.file]
        if self.row is not None:
            where.append(f"row {self.row}")
        if self.column is not None:
            where.append(f"column {self.column}")
        return f"{', '.join(where)}: {self.message}"

    def to_dict(self) -> dict:
        return {"file": self.file, "row": self.row, "column": self.column, "message": self.message}


class StudyImportError(HemifaceError, ValueError):
    """An import found problems; nothing was imported. ``problems`` lists every one."""

    def __init__(self, problems):
        self.problems = tuple(problems)
        n = len(self.problems)
        lines = [f"{n} problem{'s' if n != 1 else ''} found; nothing was imported"]
        shown = 100  # hemiface.study._import.MAX_PROBLEMS_SHOWN
        lines += [f"  {p}" for p in self.problems[:shown]]
        if n > shown:
            lines.append(f"  ... and {n - shown:,} more problems (the first {shown} are listed)")
        super().__init__("\n".join(lines))
