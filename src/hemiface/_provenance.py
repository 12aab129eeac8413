"""What a result was computed from: input hashes, versions, parameters, time."""

from __future__ import annotations

import datetime as _dt
import hashlib
import platform
from pathlib import Path

from . import __version__


def sha256_file(path: str | Path, *, chunk_bytes: int = 1 << 20) -> str:
    """Hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(chunk_bytes), b""):
            digest.update(block)
    return digest.hexdigest()


def library_versions() -> dict[str, str]:
    import numpy
    import scipy
    import trimesh

    versions = {
        "hemiface": __version__,
        "python": platform.python_version(),
        "numpy": numpy.__version__,
        "scipy": scipy.__version__,
        "trimesh": trimesh.__version__,
    }
    try:
        from importlib.metadata import version

        versions["open3d"] = version("open3d-cpu")
    except Exception:  # pragma: no cover - open3d installed under another name
        pass
    return versions


def provenance(inputs: dict[str, dict], parameters: dict) -> dict:
    """A provenance record. ``inputs`` maps a role ("scan") to {"file": name, "sha256": ...}.

    Only file *names* are recorded, never full paths, which can carry patient names.
    """
    return {
        "inputs": inputs,
        "hemiface_version": __version__,
        "versions": library_versions(),
        "parameters": parameters,
        "timestamp_utc": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }
