"""Errors the kit shows to a learner: each says what is wrong and what to do."""

from __future__ import annotations


class EdakitError(Exception):
    """Base of every error the kit raises on purpose; its message is meant for the learner."""


class TemplateError(EdakitError):
    """The SAM template cannot be read or translated."""


class UnsupportedResourceError(EdakitError):
    """The template uses a resource type or an event source the local cloud cannot run."""

    def __init__(self, logical_id: str, resource_type: str, hint: str = "") -> None:
        self.logical_id = logical_id
        self.resource_type = resource_type
        message = (
            f"{logical_id} ({resource_type}): the local cloud cannot run this resource type."
        )
        if hint:
            message += f" {hint}"
        super().__init__(message)


class HandlerImportError(EdakitError):
    """A function's handler cannot be imported or is not callable."""

    def __init__(self, logical_id: str, handler: str, code_dir: str, reason: str) -> None:
        self.logical_id = logical_id
        self.handler = handler
        super().__init__(
            f"{logical_id}: cannot load handler '{handler}' from {code_dir}: {reason}. "
            "Check the function's Handler (module.function, dotted module path) and CodeUri."
        )


class DeploymentError(EdakitError):
    """The translated template could not be deployed into the emulator."""


class StillBusyError(EdakitError):
    """run_until_idle() reached its time limit with work still pending."""
