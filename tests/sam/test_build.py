"""`sam build` makes the finished system's deployable artifacts with the runtime's Python and the
locked dependencies, and the main scenario runs on the local cloud from those artifacts
(the build directory), not from the source tree.
https://docs.aws.amazon.com/serverless-application-model/latest/developerguide/sam-cli-command-reference-sam-build.html
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from edakit.paths import ROOT, SAM_APP
from edakit.template import read_template

BIN = Path(sys.executable).parent
ENV = {**os.environ, "AWS_DEFAULT_REGION": "us-east-1", "SAM_CLI_TELEMETRY": "0",
       # sam build looks for the runtime's interpreter (python3.12) on PATH: the venv's.
       "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}


def _pins(path: Path) -> dict[str, str]:
    pins = {}
    for line in path.read_text().splitlines():
        match = re.match(r"^([A-Za-z0-9_.-]+)(?:\[[^\]]*\])?==([^\s;#]+)", line.strip())
        if match:
            pins[match.group(1).lower().replace("_", "-")] = match.group(2)
    return pins


@pytest.fixture(scope="session")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Built once per test process, into a directory of its own (a second build into the same
    directory can fail while SAM clears it)."""
    build = tmp_path_factory.mktemp("sam-build") / "build"
    done = subprocess.run(
        # Not cached (samconfig.toml's default for `make deploy`): a cached build keeps its
        # dependencies in .aws-sam/deps, which an interrupted build can leave half-written.
        [str(BIN / "sam"), "build", "--no-cached", "--template-file", str(SAM_APP / "template.yaml"),
         "--build-dir", str(build)],
        cwd=SAM_APP, capture_output=True, text=True, env=ENV, timeout=600,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return build


def test_every_function_gets_an_artifact_with_the_locked_dependencies(built: Path) -> None:
    """Each function's CodeUri in the built template is its own directory, holding the shop
    package and exactly the pinned dependencies, at the versions the kit's tests ran with."""
    template = read_template(built / "template.yaml")
    functions = {k: v for k, v in template["Resources"].items() if v["Type"] == "AWS::Serverless::Function"}
    assert functions
    wanted = _pins(SAM_APP / "src" / "requirements.txt")
    locked = _pins(ROOT / "requirements.lock")
    assert {name: locked.get(name) for name in wanted} == wanted, "sam-app/src/requirements.txt must match requirements.lock"
    for logical_id, function in functions.items():
        artifact = built / function["Properties"]["CodeUri"]
        assert (artifact / "shop" / "handlers").is_dir(), logical_id
        installed = {}
        for info in artifact.glob("*.dist-info"):
            name, version = info.name.removesuffix(".dist-info").rsplit("-", 1)
            installed[name.lower().replace("_", "-")] = version
        # Every installed package is pinned (nothing transitive floats) and at its pin.
        assert installed == wanted, logical_id


def test_the_scenario_runs_from_the_built_artifacts(built: Path, tmp_path: Path) -> None:
    """The demo scenario deployed from the built template.yaml loads the shop's code from the
    artifacts (the source tree is not on the path) and loses no order."""
    done = subprocess.run(
        [sys.executable, "-m", "edakit", "demo", str(built / "template.yaml"), "--rate", "3", "--seconds", "4"],
        cwd=tmp_path, capture_output=True, text=True, timeout=300,
        env={**os.environ, "PYTHONPATH": str(ROOT), "AWS_DEFAULT_REGION": "us-east-1"},
    )
    assert done.returncode == 0, done.stdout + done.stderr
    shop_code = re.search(r"shop code: (\S+)", done.stdout)
    assert shop_code, done.stdout
    assert Path(shop_code.group(1)).is_relative_to(built), shop_code.group(1)
    assert re.search(r"orders placed\s+12\b", done.stdout), done.stdout
    assert re.search(r"lost\s+0\b", done.stdout), done.stdout


def test_the_built_template_keeps_the_sources_configuration(built: Path) -> None:
    """sam build rewrites only where the code is; every resource and property else is kept."""
    source = yaml.safe_load(yaml.dump(read_template(SAM_APP / "template.yaml")))
    output = read_template(built / "template.yaml")
    assert set(output["Resources"]) == set(source["Resources"])
    for logical_id, resource in source["Resources"].items():
        expected = dict(resource.get("Properties", {}))
        actual = dict(output["Resources"][logical_id].get("Properties", {}))
        if resource["Type"] == "AWS::Serverless::Function":
            expected.pop("CodeUri", None)
            assert actual.pop("CodeUri") == logical_id
        assert actual == expected, logical_id
