"""Writing outputs so that nothing is ever half-written.

Outputs are produced in a staging folder beside the destination and moved into
place with :func:`os.replace` only when every file is complete.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Sequence

from ._errors import OutputExistsError
from . import logger


def check_writable(out_dir: Path, names: Sequence[str], *, overwrite: bool) -> None:
    """Refuse early (before any work) when outputs exist and overwrite is off."""
    if out_dir.exists() and not out_dir.is_dir():
        raise OutputExistsError(f"{out_dir}: exists and is not a folder")
    existing = [n for n in names if (out_dir / n).exists()]
    if existing and not overwrite:
        raise OutputExistsError(
            f"{out_dir}: already holds {', '.join(existing)}; pass --overwrite to replace them"
        )


@contextmanager
def staged_outputs(out_dir: Path, names: Sequence[str], *, overwrite: bool) -> Iterator[Path]:
    """Yield a staging folder; on success move ``names`` from it into ``out_dir``.

    On any exception the staging folder is removed and ``out_dir`` is untouched.
    The last name in ``names`` is moved last, so its presence marks a complete set.
    """
    out_dir = Path(out_dir)
    check_writable(out_dir, names, overwrite=overwrite)
    out_dir.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=".hemiface-staging-", dir=out_dir))
    try:
        yield stage
        missing = [n for n in names if not (stage / n).is_file()]
        if missing:
            raise RuntimeError(f"internal error: outputs not produced: {missing}")
        check_writable(out_dir, names, overwrite=overwrite)
        for name in names:
            os.replace(stage / name, out_dir / name)
            logger.info("wrote %s", out_dir / name)
    finally:
        shutil.rmtree(stage, ignore_errors=True)
