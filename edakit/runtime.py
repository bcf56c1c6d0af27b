"""The Lambda execution environment, played in-process: handler loading, context, env and logs."""

from __future__ import annotations

import contextlib
import contextvars
import importlib.util
import io
import json
import os
import sys
import traceback
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any, Callable, Iterator, TextIO

from .errors import FIX_IMPORT, HandlerImportError, import_failure

#: Virtual seconds an invocation takes unless the cloud is told otherwise.
DEFAULT_DURATION = 0.1


@dataclass
class Invocation:
    """One call of a function: what it was given and what it did."""

    function: str
    event: Any
    time: float
    request_id: str
    trigger: str
    result: Any = None
    error: str | None = None
    duration: float = DEFAULT_DURATION
    logs: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.error is None


class LambdaContext:
    """The context object Lambda passes to a Python handler.

    https://docs.aws.amazon.com/lambda/latest/dg/python-context.html
    """

    def __init__(self, function: "Function", request_id: str, deadline: float, now: Callable[[], float]) -> None:
        self.function_name = function.name
        self.function_version = "$LATEST"
        self.invoked_function_arn = function.arn
        self.memory_limit_in_mb = function.memory
        self.aws_request_id = request_id
        self.log_group_name = function.log_group
        self.log_stream_name = function.log_stream
        self.identity = None
        self.client_context = None
        self._deadline = deadline
        self._now = now

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - self._now()) * 1000))


_current_output: contextvars.ContextVar[io.StringIO | None] = contextvars.ContextVar(
    "edakit_function_output", default=None
)


#: The logical id of the function whose code is running now (during its import or an
#: invocation), so that whoever watches AWS calls (edakit.iam) knows whose role makes them.
running_function: contextvars.ContextVar[str | None] = contextvars.ContextVar("edakit_running_function", default=None)


@contextlib.contextmanager
def running(logical_id: str) -> Iterator[None]:
    token = running_function.set(logical_id)
    try:
        yield
    finally:
        running_function.reset(token)


class FunctionOutput(io.TextIOBase):
    """Stands in for sys.stdout/sys.stderr: during an invocation, writes go to its log.

    Loggers that a handler module creates at import (Powertools Logger keeps a
    reference to sys.stdout) bind to this object, so their lines reach the
    function's log group, as in Lambda, instead of the learner's screen.
    """

    def __init__(self, fallback: TextIO) -> None:
        self.fallback = fallback

    def write(self, text: str) -> int:  # type: ignore[override]
        buffer = _current_output.get()
        if buffer is not None:
            return buffer.write(text)
        return self.fallback.write(text)

    def flush(self) -> None:
        if _current_output.get() is None:
            self.fallback.flush()

    def isatty(self) -> bool:
        return False

    def __getattr__(self, name: str) -> Any:
        # Anything else is the real stream's: Jupyter's kernel calls set_parent() on
        # sys.stdout before each cell so that output lands under the right cell.
        return getattr(self.fallback, name)

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return "utf-8"


@contextlib.contextmanager
def captured_output() -> Iterator[io.StringIO]:
    buffer = io.StringIO()
    token = _current_output.set(buffer)
    try:
        yield buffer
    finally:
        _current_output.reset(token)


@contextlib.contextmanager
def environment(variables: dict[str, str]) -> Iterator[None]:
    saved = os.environ.copy()
    os.environ.update(variables)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def error_payload(exc: BaseException) -> dict[str, Any]:
    """The response payload Lambda's Python runtime returns for an unhandled error."""
    frames = traceback.extract_tb(exc.__traceback__)
    return {
        "errorMessage": str(exc),
        "errorType": type(exc).__name__,
        "requestId": "",
        "stackTrace": [f'  File "{f.filename}", line {f.lineno}, in {f.name}\n    {f.line}\n' for f in frames],
    }


@dataclass
class Function:
    """A deployed Lambda function whose code runs in this process."""

    logical_id: str
    name: str
    arn: str
    handler: str
    code_dir: Path
    environment: dict[str, str]
    timeout: float
    memory: int
    region: str
    dead_letter_arn: str | None = None
    duration: float | Callable[[Any], float] = DEFAULT_DURATION
    _entrypoint: Callable[[Any, Any], Any] | None = None
    _module: ModuleType | None = None

    @property
    def log_group(self) -> str:
        return f"/aws/lambda/{self.name}"

    @property
    def log_stream(self) -> str:
        return f"2025/11/28/[$LATEST]{uuid.uuid5(uuid.NAMESPACE_URL, self.arn).hex}"

    def lambda_environment(self) -> dict[str, str]:
        """Environment variables as Lambda sets them, plus the template's own."""
        defined = {
            "AWS_LAMBDA_FUNCTION_NAME": self.name,
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(self.memory),
            "AWS_LAMBDA_LOG_GROUP_NAME": self.log_group,
            "AWS_LAMBDA_LOG_STREAM_NAME": self.log_stream,
            "AWS_REGION": self.region,
            "AWS_DEFAULT_REGION": self.region,
            "AWS_EXECUTION_ENV": "AWS_Lambda_python3.12",
            "LAMBDA_TASK_ROOT": str(self.code_dir),
            "_HANDLER": self.handler,
        }
        return {**defined, **self.environment}

    def load(self) -> None:
        """Import the handler, as a cold start does; fail now rather than at the first event."""
        module_path, _, attr = self.handler.rpartition(".")
        if not module_path or not attr:
            raise HandlerImportError(
                self.logical_id, self.handler, str(self.code_dir), "a handler has the form module.function"
            )
        relative = Path(*module_path.split("."))
        candidates = [self.code_dir / relative.with_suffix(".py"), self.code_dir / relative / "__init__.py"]
        source = next((c for c in candidates if c.is_file()), None)
        if source is None:
            raise HandlerImportError(
                self.logical_id, self.handler, str(self.code_dir), f"no file {relative.with_suffix('.py')}"
            )
        code_root = str(self.code_dir)
        if code_root not in sys.path:
            sys.path.insert(0, code_root)
        # Each function gets its own copy of its handler module, as each Lambda
        # function has its own execution environment: module-level state and
        # environment variables read at import are not shared between functions.
        unique_name = f"_edakit_function_{self.logical_id}"
        spec = importlib.util.spec_from_file_location(unique_name, source)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        module.__package__ = module_path.rpartition(".")[0]
        sys.modules[unique_name] = module
        try:
            with environment(self.lambda_environment()), captured_output(), running(self.logical_id):
                spec.loader.exec_module(module)
        except Exception as exc:  # any import-time failure is the learner's to fix
            sys.modules.pop(unique_name, None)
            raise HandlerImportError(
                self.logical_id, self.handler, str(self.code_dir), import_failure(exc, self.code_dir), FIX_IMPORT
            ) from None
        entrypoint = getattr(module, attr, None)
        if not callable(entrypoint):
            sys.modules.pop(unique_name, None)
            raise HandlerImportError(
                self.logical_id, self.handler, str(self.code_dir), f"module {module_path} has no function {attr}"
            )
        self._module = module
        self._entrypoint = entrypoint

    def unload(self) -> None:
        if self._module is not None:
            sys.modules.pop(self._module.__name__, None)
        self._module = None
        self._entrypoint = None

    def virtual_duration(self, event: Any) -> float:
        return float(self.duration(event) if callable(self.duration) else self.duration)

    def run(self, event: Any, now: Callable[[], float], trigger: str) -> Invocation:
        """Call the handler once; an exception becomes a failed invocation, never a crash."""
        assert self._entrypoint is not None, "load() first"
        request_id = str(uuid.uuid4())
        started = now()
        duration = self.virtual_duration(event)
        context = LambdaContext(self, request_id, started + self.timeout, now)
        invocation = Invocation(self.logical_id, event, started, request_id, trigger, duration=duration)
        with environment(self.lambda_environment()), captured_output() as output, running(self.logical_id):
            try:
                result = self._entrypoint(event, context)
            except Exception as exc:
                invocation.result = error_payload(exc)
                invocation.error = f"{type(exc).__name__}: {exc}"
                traceback.print_exc(file=output)
            else:
                # Lambda serialises the return value to JSON; what cannot be serialised is
                # the runtime's Runtime.MarshalError, not the handler's own exception.
                try:
                    invocation.result = json.loads(json.dumps(result)) if result is not None else None
                except (TypeError, ValueError) as exc:
                    message = f"Unable to marshal response: {exc}"
                    invocation.result = {"errorMessage": message, "errorType": "Runtime.MarshalError",
                                         "requestId": request_id, "stackTrace": []}
                    invocation.error = f"Runtime.MarshalError: {message}"
                    print(f"[ERROR] Runtime.MarshalError: {message}", file=output)
        if invocation.error is None and duration > self.timeout:
            invocation.error = f"Task timed out after {self.timeout:.2f} seconds"
            invocation.result = {"errorMessage": invocation.error, "errorType": "Sandbox.Timedout"}
        invocation.logs = [line for line in output.getvalue().splitlines() if line]
        return invocation
