"""Lets the sam_app tests import the Lambda code (`shop`) the way Lambda does: from sam-app/src."""

import sys
from pathlib import Path

SAM_APP_SRC = Path(__file__).resolve().parents[2] / "sam-app" / "src"
if str(SAM_APP_SRC) not in sys.path:
    sys.path.insert(0, str(SAM_APP_SRC))
# The shared fakes (shop_fakes.py) sit beside the tests.
HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))
