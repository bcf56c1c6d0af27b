"""The offline verification chain: what can be checked about a stage without an AWS account.

`python -m edakit verify [template]` (and `make verify` for sam-app/) runs, in order:

1. `sam validate --lint`: the SAM template, as SAM CLI reads it;
2. cfn-lint on the translated template: CloudFormation's own limits, which the SAM-level
   lint does not see (a BatchSize over the limit, a visibility timeout shorter than the
   function's timeout);
3. checkov on the translated template (security rules), from its own environment
   `.venv-checkov`, with the skips listed and justified in one file;
4. a deployment on the local cloud: every function's handler is imported (a cold start),
   so a misspelled handler fails here, as it would at its first invocation on AWS.

Each step says what it found in words that name the mistake; nothing is a traceback.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .errors import EdakitError
from .paths import ROOT, SAM_APP

BIN = Path(sys.executable).parent
CHECKOV = ROOT / ".venv-checkov" / "bin" / "checkov"
ENV = {**os.environ, "AWS_DEFAULT_REGION": os.environ.get("AWS_DEFAULT_REGION", "us-east-1"),
       "SAM_CLI_TELEMETRY": "0"}


@dataclass
class Step:
    name: str
    ok: bool
    details: str = ""

    def __str__(self) -> str:
        mark = "ok  " if self.ok else "FAIL"
        text = f"  [{mark}] {self.name}"
        if self.details:
            text += "\n" + "\n".join(f"         {line}" for line in self.details.splitlines())
        return text


def _run(command: list[str], timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, capture_output=True, text=True, env=ENV, timeout=timeout)


def sam_validate(template: Path) -> Step:
    done = _run([str(BIN / "sam"), "validate", "--lint", "-t", str(template)])
    output = (done.stdout + done.stderr).strip()
    return Step("sam validate --lint", done.returncode == 0, "" if done.returncode == 0 else output)


def translated(template: Path, directory: Path) -> Path:
    """The template after the SAM transform, as CloudFormation would receive it (JSON)."""
    from .template import load_stage

    path = directory / "translated.json"
    path.write_text(json.dumps(load_stage(template, ENV["AWS_DEFAULT_REGION"]).cloudformation, indent=1))
    return path


def cfn_lint(cloudformation: Path) -> Step:
    """cfn-lint's findings, each as `Resource.Property: message (rule)`. SAM names what it
    generates after the function and its event: OrderProcessingFunctionOrdersQueue is the
    event source mapping of OrderProcessingFunction's event OrdersQueue."""
    name = "cfn-lint on the translated template"
    done = _run([str(BIN / "cfn-lint"), "--format", "json", str(cloudformation)])
    if done.returncode == 0:
        return Step(name, True)
    try:
        matches = json.loads(done.stdout)
    except json.JSONDecodeError:
        return Step(name, False, (done.stdout + done.stderr).strip())
    findings = []
    for match in matches:
        path = [str(part) for part in match.get("Location", {}).get("Path", [])]
        where = ".".join(path[1:]) if path[:1] == ["Resources"] else ".".join(path)
        message = re.sub(r"is not one of \[([^\]]{200,})\]",
                         lambda m: f"is not one of the {m.group(1).count(',') + 1} names allowed here (no such resource?)",
                         match["Message"])
        findings.append(f"{where}: {message} ({match['Rule']['Id']})")
    return Step(name, False, "\n".join(findings))


def checkov_failures(cloudformation: Path) -> list[tuple[str, str]]:
    """(check id, logical id) of every failed checkov check on a translated template (JSON)."""
    if not CHECKOV.exists():
        raise EdakitError(f"{CHECKOV} is missing: `make checkov-env` installs checkov in its own environment.")
    done = _run([str(CHECKOV), "-f", str(cloudformation), "--framework", "cloudformation", "--skip-download",
                 "--quiet", "--compact", "-o", "json"])
    try:
        report = json.loads(done.stdout) if done.stdout.strip() else {}
    except json.JSONDecodeError:
        raise EdakitError(f"checkov did not report: {(done.stdout + done.stderr).strip()[-500:]}") from None
    if done.returncode not in (0, 1):
        raise EdakitError(f"checkov failed to run: {done.stderr.strip()[-500:]}")
    if isinstance(report, list):
        report = next((r for r in report if r.get("check_type") == "cloudformation"), {})
    failed = (report.get("results") or {}).get("failed_checks", [])
    return sorted({(f["check_id"], f["resource"].rsplit(".", 1)[-1]) for f in failed})


@dataclass(frozen=True)
class Skip:
    """A checkov check the template is allowed to fail, with its reason; on some resources only,
    or on all of them (resources is None)."""

    check: str
    why: str
    resources: tuple[str, ...] | None = None

    def covers(self, check: str, resource: str) -> bool:
        return check == self.check and (self.resources is None or resource in self.resources)


def load_skips(path: Path) -> list[Skip]:
    """checkov-skips.yaml: check id -> its reason, or {why, resources} for some resources only.
    A skip without a reason is refused: every skip is a decision someone must be able to read."""
    import yaml

    document = yaml.safe_load(path.read_text()) or {}
    if not isinstance(document, dict):
        raise EdakitError(f"{path}: expected a mapping of check id to reason")
    skips = []
    for check, value in document.items():
        why, resources = (value.get("why"), value.get("resources")) if isinstance(value, dict) else (value, None)
        if not str(why or "").strip():
            raise EdakitError(f"{path}: the skip of {check} has no reason; say why the check does not apply")
        skips.append(Skip(str(check), str(why), tuple(resources) if resources else None))
    return skips


def unexplained(failures: list[tuple[str, str]], skips: list[Skip]) -> list[tuple[str, str]]:
    """The failures no skip covers."""
    return [f for f in failures if not any(s.covers(*f) for s in skips)]


def stale(failures: list[tuple[str, str]], skips: list[Skip]) -> list[str]:
    """Skips that cover no failure any more: they must go, so the list never outlives its reasons."""
    return [s.check for s in skips if not any(s.covers(*f) for f in failures)]


def checkov(cloudformation: Path, skips_file: Path | None) -> Step:
    name = "checkov on the translated template"
    try:
        skips = load_skips(skips_file) if skips_file is not None and skips_file.exists() else []
        failures = checkov_failures(cloudformation)
    except EdakitError as error:
        return Step(name, False, str(error))
    problems = [f"{check} on {resource}: failed, and not in {skips_file.name if skips_file else 'checkov-skips.yaml'}"
                for check, resource in unexplained(failures, skips)]
    problems += [f"{check}: skipped, but it no longer fails; remove it from {skips_file.name}"
                 for check in stale(failures, skips)] if skips_file else []
    if problems:
        return Step(name, False, "\n".join(problems))
    return Step(name, True, f"{len(skips)} skipped check(s), each with its reason in {skips_file.name}" if skips else "")


def local_cloud(template: Path) -> Step:
    from .cloud import LocalCloud

    try:
        with LocalCloud.from_template(template) as cloud:
            count = len(cloud.functions)
    except EdakitError as error:
        return Step("deploy on the local cloud (every handler imported)", False, str(error))
    return Step("deploy on the local cloud (every handler imported)", True, f"{count} functions loaded")


def verify(template: Path, *, skips_file: Path | None = None, with_checkov: bool = True,
           report: Callable[[Step], None] = lambda step: None) -> list[Step]:
    """Run the chain on `template`; every step runs, so one mistake does not hide another."""
    steps = [sam_validate(template)]
    report(steps[-1])
    with tempfile.TemporaryDirectory() as directory:
        try:
            cloudformation = translated(template, Path(directory))
        except EdakitError as error:
            steps.append(Step("SAM transform", False, str(error)))
            report(steps[-1])
            return steps
        steps.append(cfn_lint(cloudformation))
        report(steps[-1])
        if with_checkov:
            steps.append(checkov(cloudformation, skips_file))
            report(steps[-1])
    steps.append(local_cloud(template))
    report(steps[-1])
    return steps


def default_skips(template: Path) -> Path | None:
    """The justified checkov skips next to the template (or its real file, for a link)."""
    for directory in (template.parent, template.resolve().parent):
        candidate = directory / "checkov-skips.yaml"
        if candidate.exists():
            return candidate
    return None


def main(argv: list[str]) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m edakit verify", description=__doc__.split("\n")[0])
    parser.add_argument("template", nargs="?", default=str(SAM_APP / "template.yaml"))
    parser.add_argument("--no-checkov", action="store_true", help="skip checkov (it needs .venv-checkov)")
    args = parser.parse_args(argv)
    template = Path(args.template)
    if template.is_dir():
        template = template / "template.yaml"
    if not template.exists():
        print(f"error: {template} does not exist; give a stage's template.yaml or its directory", file=sys.stderr)
        return 2
    print(f"Verifying {template} offline:")
    steps = verify(template, skips_file=default_skips(template), with_checkov=not args.no_checkov, report=print)
    failed = [s.name for s in steps if not s.ok]
    print("all checks passed" if not failed else f"{len(failed)} check(s) failed: {', '.join(failed)}")
    return 1 if failed else 0

