"""The offline verification chain (edakit/verify.py) catches a seeded mistake in the finished
system's template and names it: the resource, the property and what is wrong.

Each case edits a copy of sam-app/template.yaml, checks the edit really changed it, and runs
the step of the chain that must catch it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pytest

from edakit.paths import SAM_APP
from edakit.verify import CHECKOV, cfn_lint, checkov, local_cloud, sam_validate, translated, verify


@dataclass(frozen=True)
class Mistake:
    id: str
    pattern: str          # a regex on the template text, replaced once
    replacement: str
    step: str             # which step of the chain must catch it
    expected: str         # a regex the step's message must match
    doc: str              # the AWS page that sets the rule


MISTAKES = [
    Mistake(
        "batch-size-over-the-limit",
        r"(?m)^(\s+)BatchSize: 10$", r"\1BatchSize: 20000", "cfn-lint",
        r"OrderProcessingFunctionOrdersQueue\.Properties\.BatchSize: 20000 is greater than the maximum of 10000",
        "https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/aws-resource-lambda-eventsourcemapping.html",
    ),
    Mistake(
        "visibility-timeout-shorter-than-the-function",
        r"(?m)^(\s+)VisibilityTimeout: 90$", r"\1VisibilityTimeout: 5", "cfn-lint",
        r"VisibilityTimeout|visibility timeout",
        "https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-configure.html",
    ),
    Mistake(
        "misspelled-handler",
        r"shop\.handlers\.inventory\.lambda_handler", "shop.handlers.inventroy.lambda_handler", "local cloud",
        r"InventoryFunction: cannot load handler 'shop\.handlers\.inventroy\.lambda_handler'.*no file shop/handlers/inventroy\.py",
        "https://docs.aws.amazon.com/lambda/latest/dg/python-handler.html",
    ),
    Mistake(
        "unencrypted-queue",
        r"(  OrdersQueue:\n    Type: AWS::SQS::Queue\n    Properties:\n)      KmsMasterKeyId: !Ref ShopKey[^\n]*\n", r"\1",
        "checkov",
        r"CKV_AWS_27 on OrdersQueue: failed, and not in checkov-skips\.yaml",
        "https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-server-side-encryption.html",
    ),
    Mistake(
        "reference-to-a-missing-resource",
        r"Queue: !GetAtt OrdersQueue\.Arn", "Queue: !GetAtt OrderQueue.Arn", "cfn-lint",
        r"OrderProcessingFunctionOrdersQueue\.Properties\.EventSourceArn\.Fn::GetAtt\.0: 'OrderQueue' is not one of the \d+ names allowed here \(no such resource\?\)",
        "https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/intrinsic-function-reference-getatt.html",
    ),
]


def seeded(tmp_path: Path, mistake: Mistake) -> Path:
    text = (SAM_APP / "template.yaml").read_text().replace("CodeUri: src/", f"CodeUri: {SAM_APP / 'src'}/")
    broken, count = re.subn(mistake.pattern, mistake.replacement, text, count=1)
    assert count == 1 and broken != text, f"the seeded mistake {mistake.id} must change the template"
    path = tmp_path / "template.yaml"
    path.write_text(broken)
    return path


@pytest.mark.parametrize("mistake", MISTAKES, ids=[m.id for m in MISTAKES])
def test_the_chain_names_the_seeded_mistake(mistake: Mistake, tmp_path: Path) -> None:
    """Each mistake breaks a documented rule (see `mistake.doc`); the step that owns the rule
    fails and its message names the mistake."""
    template = seeded(tmp_path, mistake)
    if mistake.step == "sam validate":
        step = sam_validate(template)
    elif mistake.step == "cfn-lint":
        step = cfn_lint(translated(template, tmp_path))
    elif mistake.step == "checkov":
        if not CHECKOV.exists():
            pytest.skip("checkov is not installed: run `make checkov-env` (make test does)")
        step = checkov(translated(template, tmp_path), SAM_APP / "checkov-skips.yaml")
    else:
        step = local_cloud(template)
    assert not step.ok, f"{mistake.id} was not caught by {step.name}"
    assert re.search(mistake.expected, step.details, re.S), step.details
    assert "Traceback" not in step.details


def test_the_untouched_template_passes_the_chain() -> None:
    """Without a mistake, every step passes (checkov is tested with its own environment)."""
    steps = verify(SAM_APP / "template.yaml", with_checkov=False)
    assert [s.name for s in steps if not s.ok] == [], "\n".join(str(s) for s in steps)
