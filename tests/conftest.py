import logging
import sys
from pathlib import Path

import pytest

# The tests log their validation figures at INFO; hemiface's own step-by-step log stays quiet.
logging.getLogger("hemiface").setLevel(logging.WARNING)

sys.path.insert(0, str(Path(__file__).parent))
DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="session")
def template_phantom():
    """The symmetric meshmonk template with a 5,000 mm3 defect carved into the left cheek."""
    from hemiface import datasets

    return datasets.make_phantom("template", side="left", volume_mm3=5000.0)
