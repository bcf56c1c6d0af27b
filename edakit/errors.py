"""Errors the kit shows to a learner: each says what is wrong and what to do."""

from __future__ import annotations

import traceback
from pathlib import Path


class EdakitError(Exception):
    """Base of every error the kit raises on purpose; its message is meant for the learner."""


class TemplateError(EdakitError):
    """The SAM template cannot be read or translated."""


class UnsupportedResourceError(EdakitError):
    """The template uses a resource type or an event source the local cloud cannot run."""

    def __init__(self, logical_id: str, resource_type: str, hint: str = "", *, kind: str = "resource type") -> None:
        self.logical_id = logical_id
        self.resource_type = resource_type
        message = f"{logical_id} ({resource_type}): the local cloud cannot run this {kind}."
        if hint:
            message += f" {hint}"
        super().__init__(message)


#: What to do about a handler that cannot be found (the usual cause: Handler or CodeUri).
CHECK_HANDLER = "Check the function's Handler (module.function, dotted module path) and CodeUri."
#: What to do about a handler module that raised while it was imported.
FIX_IMPORT = ("The module raised while Lambda imported it (a cold start): fix that line, "
              "or add the package it needs to the environment (requirements).")


class HandlerImportError(EdakitError):
    """A function's handler cannot be imported or is not callable."""

    def __init__(self, logical_id: str, handler: str, code_dir: str, reason: str, hint: str = CHECK_HANDLER) -> None:
        self.logical_id = logical_id
        self.handler = handler
        super().__init__(f"{logical_id}: cannot load handler '{handler}' from {code_dir}: {reason}. {hint}")


def import_failure(exc: BaseException, code_dir: Path) -> str:
    """`ErrorType: message (file.py, line N)`, naming the learner's line that raised during import."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename.startswith(str(code_dir))]
    where = f" ({Path(frames[-1].filename).relative_to(code_dir)}, line {frames[-1].lineno})" if frames else ""
    return f"{type(exc).__name__}: {exc}{where}"


class DeploymentError(EdakitError):
    """The translated template could not be deployed into the emulator."""


class StillBusyError(EdakitError):
    """run_until_idle() reached its time limit with work still pending."""
