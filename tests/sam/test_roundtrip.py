"""SAM CLI's own deploy path, round trip, against moto in server mode: `sam package`,
`sam deploy --template-file <translated>`, `sam list resources`, `sam delete`.

moto does not run the SAM transform, so the deployed template is the translated one, with
the kit's template shims (edakit/deploy.py) applied, as the local cloud deploys it.
https://docs.aws.amazon.com/serverless-application-model/latest/developerguide/using-sam-cli-package.html
https://docs.aws.amazon.com/serverless-application-model/latest/developerguide/sam-cli-command-reference-sam-deploy.html
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest

from edakit import deploy
from edakit.paths import SAM_APP
from edakit.template import read_template, translate

BIN = Path(sys.executable).parent
STACK = "edakit-roundtrip"
BUCKET = "edakit-artifacts"


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen([str(BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while True:  # wait for the server to accept connections (a real wait for a real process)
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    pytest.fail("moto_server did not start")
                time.sleep(0.1)
        # "localhost": moto reads a template back from S3 only from an amazonaws.com or a
        # localhost URL, and SAM CLI builds the template's URL from the endpoint.
        yield f"http://localhost:{port}"
    finally:
        server.terminate()
        server.wait(timeout=10)


@pytest.fixture(scope="module")
def env(endpoint: str) -> dict[str, str]:
    return {**os.environ, "AWS_ENDPOINT_URL": endpoint, "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1",
            "SAM_CLI_TELEMETRY": "0", "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}


def _sam(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BIN / "sam"), *args], cwd=SAM_APP, capture_output=True, text=True, env=env, timeout=300)


def _client(service: str, endpoint: str):
    return boto3.client(service, endpoint_url=endpoint, region_name="us-east-1",
                        aws_access_key_id="testing", aws_secret_access_key="testing")


def test_package_deploy_list_delete(env: dict[str, str], endpoint: str, tmp_path: Path) -> None:
    _client("s3", endpoint).create_bucket(Bucket=BUCKET)

    packaged = tmp_path / "packaged.yaml"
    done = _sam(env, "package", "--template-file", "template.yaml", "--s3-bucket", BUCKET,
                "--output-template-file", str(packaged))
    assert done.returncode == 0, done.stdout + done.stderr
    sam = read_template(packaged)
    code_uris = {r["Properties"]["CodeUri"] for r in sam["Resources"].values() if r["Type"] == "AWS::Serverless::Function"}
    assert code_uris and all(uri.startswith(f"s3://{BUCKET}/") for uri in code_uris)
    keys = [o["Key"] for o in _client("s3", endpoint).list_objects_v2(Bucket=BUCKET)["Contents"]]
    assert {uri.rsplit("/", 1)[1] for uri in code_uris} <= set(keys)

    cloudformation = translate(sam, "us-east-1")
    cloudformation = deploy.shim_event_bus_ref(cloudformation)
    cloudformation = deploy.shim_archive_event_pattern(cloudformation)
    cloudformation = deploy.shim_fifo_queue_names(cloudformation, STACK)
    translated = tmp_path / "translated.json"
    translated.write_text(json.dumps(cloudformation))

    # Over 51,200 bytes, a template goes through S3 (--s3-bucket): CloudFormation reads it from there.
    # https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/cloudformation-limits.html
    done = _sam(env, "deploy", "--template-file", str(translated), "--stack-name", STACK, "--s3-bucket", BUCKET,
                "--capabilities", "CAPABILITY_IAM", "--no-confirm-changeset", "--no-fail-on-empty-changeset")
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"Successfully created/updated stack - {STACK}" in done.stdout

    cfn = _client("cloudformation", endpoint)
    assert cfn.describe_stacks(StackName=STACK)["Stacks"][0]["StackStatus"] == "CREATE_COMPLETE"
    summaries = cfn.list_stack_resources(StackName=STACK)["StackResourceSummaries"]
    # moto's CloudFormation skips these types (the local cloud creates them with a shim); its
    # change-set path still lists each, with no logical id, type or physical id.
    skipped = {k for k, r in cloudformation["Resources"].items() if r["Type"] in deploy.DEFERRED_TYPES}
    named = {r["LogicalResourceId"] for r in summaries if r["LogicalResourceId"]}
    assert named == set(cloudformation["Resources"]) - skipped
    assert len(summaries) - len(named) == len(skipped)
    functions = [k for k, r in cloudformation["Resources"].items() if r["Type"] == "AWS::Lambda::Function"]
    names = {f["FunctionName"] for f in _client("lambda", endpoint).list_functions()["Functions"]}
    assert len(names) == len(functions) >= 4

    done = _sam(env, "list", "resources", "--stack-name", STACK, "--template-file", str(translated), "--output", "json")
    assert done.returncode == 0, done.stdout + done.stderr
    listed = {r["LogicalResourceId"]: r["PhysicalResourceId"] for r in json.loads(done.stdout)}
    assert set(functions) <= set(listed)
    assert {listed[f] for f in functions} == names

    done = _sam(env, "delete", "--stack-name", STACK, "--no-prompts")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Deleted successfully" in done.stdout
    remaining = [s for s in cfn.list_stacks()["StackSummaries"] if s["StackName"] == STACK and s["StackStatus"] != "DELETE_COMPLETE"]
    assert remaining == []
    assert _client("lambda", endpoint).list_functions()["Functions"] == []
