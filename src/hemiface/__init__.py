"""hemiface: objective outcome measures for hemifacial atrophy.

The public surface is small: :mod:`hemiface.scan` (3D surface scans),
:mod:`hemiface.datasets` (sample data and phantoms with known truth) and the
``hemiface`` command line. The library never prints; it logs to the
``"hemiface"`` logger.
"""

import logging

__version__ = "0.1.0"

logger = logging.getLogger("hemiface")
logger.addHandler(logging.NullHandler())

from ._errors import HemifaceError  # noqa: E402

__all__ = ["HemifaceError", "__version__", "logger"]
