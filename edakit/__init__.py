"""edakit: the kit's tooling, above all the local cloud that runs a stage offline on moto."""

import sys as _sys

# moto's CloudFormation imports jsonschema, whose optional IRI format checker
# (rfc3987_syntax) compiles a grammar at import: 1.2 s of every notebook's start.
# jsonschema skips that checker when the import fails, and nothing in the kit
# validates the "iri" format, so the kit declines the import.
_sys.modules.setdefault("rfc3987_syntax", None)  # type: ignore[arg-type]

from .cloud import LocalCloud
from .errors import (
    DeploymentError,
    EdakitError,
    HandlerImportError,
    StillBusyError,
    TemplateError,
    UnsupportedResourceError,
)
from .runtime import Invocation, LambdaContext

__all__ = [
    "DeploymentError",
    "EdakitError",
    "HandlerImportError",
    "Invocation",
    "LambdaContext",
    "LocalCloud",
    "StillBusyError",
    "TemplateError",
    "UnsupportedResourceError",
]
