"""edakit: the kit's tooling, above all the local cloud that runs a stage offline on moto."""

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
