import logging
import sys
from pathlib import Path

import pytest

# The tests log their validation figures at INFO; hemiface's own step-by-step log stays quiet.
logging.getLogger("hemiface").setLevel(logging.WARNING)

sys.path.insert(0, str(Path(__file__).parent))


@pytest.fixture(autouse=True)
def _reset_hemiface_logger():
    """Undo what a command-line test configured (its stderr handler, level, no propagation)."""
    yield
    log = logging.getLogger("hemiface")
    for handler in [h for h in log.handlers if type(h).__name__ == "_CurrentStderrHandler"]:
        log.removeHandler(handler)
    log.setLevel(logging.WARNING)
    log.propagate = True
DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="session")
def template_phantom():
    """The symmetric meshmonk template with a 5,000 mm3 defect carved into the left cheek."""
    from hemiface import datasets

    return datasets.make_phantom("template", side="left", volume_mm3=5000.0)
