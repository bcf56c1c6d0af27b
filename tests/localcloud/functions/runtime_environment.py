"""Reads the function's environment twice: when Lambda imports the module, and during a call."""

from __future__ import annotations

import os
from typing import Any

#: Read at import, as module-level configuration is in real handlers.
GREETING_AT_IMPORT = os.environ.get("GREETING")


def handler(event: Any, context: Any) -> dict[str, Any]:
    return {
        "at_import": GREETING_AT_IMPORT,
        "at_call": os.environ.get("GREETING"),
        "function_name_variable": os.environ.get("AWS_LAMBDA_FUNCTION_NAME"),
    }
