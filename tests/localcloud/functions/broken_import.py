"""A handler module that cannot be imported: it needs a package that is not installed."""

from __future__ import annotations

import edakit_package_that_does_not_exist  # noqa: F401  (the failure under test)


def handler(event: object, context: object) -> None:
    return None
