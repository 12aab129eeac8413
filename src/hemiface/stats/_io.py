"""Writing the analysis tables: one XLSX workbook (a sheet per table) or one CSV per table."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Mapping

import pandas as pd

from .. import logger
from .._errors import OutputExistsError
from .._outputs import staged_outputs
from ._errors import StatsError

_BAD_SHEET_CHARS = set("[]:*?/\\")


def _check_names(tables: Mapping[str, pd.DataFrame]) -> None:
    if not tables:
        raise StatsError("no tables to write")
    for name, t in tables.items():
        if not isinstance(t, pd.DataFrame):
            raise StatsError(f"table {name!r} is a {type(t).__name__}, not a pandas DataFrame")
        if not name or len(name) > 31 or _BAD_SHEET_CHARS & set(name) or name != name.strip("'"):
            raise StatsError(f"table name {name!r} cannot be a sheet name: 1-31 characters, none of []:*?/\\ "
                             "and no leading or trailing apostrophe")
        if not all(c.isalnum() or c in "_-." for c in name):
            raise StatsError(f"table name {name!r} must be letters, digits, '_', '-' or '.' (it also names a file)")
    lowered = [n.lower() for n in tables]
    if len(set(lowered)) != len(lowered):
        raise StatsError("table names must differ ignoring case (Excel sheet names do)")


def write_workbook(tables: Mapping[str, pd.DataFrame], path, *, overwrite: bool = False) -> Path:
    """Write ``tables`` to one XLSX workbook, one sheet per table, in the given order.

    The workbook is written to a temporary file beside ``path`` and renamed into
    place only when complete, so ``path`` is never half-written. Missing values
    are empty cells; columns and row order are those of the tables.

    Parameters
    ----------
    tables : mapping of str to pandas.DataFrame
        Sheet name (1-31 characters of letters, digits, ``_-.``) to table, e.g.
        the output of :func:`analyze_endpoints`.
    path : path-like
        The ``.xlsx`` file to write.
    overwrite : bool
        Replace an existing file; otherwise an existing ``path`` raises
        :class:`~hemiface._errors.OutputExistsError`.

    Returns
    -------
    pathlib.Path
        The written file.
    """
    path = Path(path)
    _check_names(tables)
    if path.suffix.lower() != ".xlsx":
        raise StatsError(f"{path}: a workbook must end in .xlsx")
    if path.exists() and not overwrite:
        raise OutputExistsError(f"{path}: exists; pass overwrite=True (--overwrite) to replace it")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}-", suffix=".xlsx", dir=path.parent)
    os.close(fd)
    try:
        with pd.ExcelWriter(tmp, engine="openpyxl") as writer:
            for name, t in tables.items():
                t.to_excel(writer, sheet_name=name, index=False)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    logger.info("wrote %s (%d sheets)", path, len(tables))
    return path


def write_csv(tables: Mapping[str, pd.DataFrame], out_dir, *, overwrite: bool = False) -> list[Path]:
    """Write each table to ``out_dir/<name>.csv`` (UTF-8, no index, missing values empty).

    All files are written to a staging folder first and moved into place only
    when every one is complete. Existing files raise unless ``overwrite``.

    Returns
    -------
    list of pathlib.Path
        The written files, in table order.
    """
    _check_names(tables)
    out_dir = Path(out_dir)
    names = [f"{n}.csv" for n in tables]
    with staged_outputs(out_dir, names, overwrite=overwrite) as stage:
        for (name, t), fname in zip(tables.items(), names):
            t.to_csv(stage / fname, index=False)
    return [out_dir / n for n in names]
