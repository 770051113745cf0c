"""template.yaml as the local stack loads it: read once for each version of the file, each load its own."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from local.template import Template

TEMPLATE = """\
AWSTemplateFormatVersion: "2010-09-09"
Resources:
  Queue:
    Type: AWS::SQS::Queue
    Properties:
      QueueName: {name}
"""


def test_each_load_of_the_template_has_a_document_of_its_own() -> None:
    first, second = Template.load(), Template.load()
    assert first.document == second.document
    domain = first.parameter_defaults()["PublicDomain"]
    first.resources.clear()
    first.document["Parameters"]["PublicDomain"]["Default"] = f"changed.{domain}"
    assert second.resources
    assert Template.load().resources
    assert second.document == Template.load().document
    assert Template.load().parameter_defaults()["PublicDomain"] == domain


def test_a_template_changed_since_it_was_loaded_is_read_again(tmp_path: Path) -> None:
    path = tmp_path / "template.yaml"
    path.write_text(TEMPLATE.format(name="first"))
    assert Template.load(path).resources["Queue"]["Properties"]["QueueName"] == "first"
    before = path.stat()
    path.write_text(TEMPLATE.format(name="other"))  # in place, the same size, its times put back as they were
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert Template.load(path).resources["Queue"]["Properties"]["QueueName"] == "other"
    replacement = tmp_path / "new.yaml"
    replacement.write_text(TEMPLATE.format(name="third"))
    os.utime(replacement, ns=(before.st_atime_ns, before.st_mtime_ns))
    replacement.replace(path)  # another file in its place, with the same size and times
    assert Template.load(path).resources["Queue"]["Properties"]["QueueName"] == "third"
    path.write_text(TEMPLATE.format(name="first"))  # back as it was first
    assert Template.load(path).resources["Queue"]["Properties"]["QueueName"] == "first"


# not UTF-8: read as Latin-1, or with the byte replaced, it would be a template
@pytest.mark.parametrize("text", ["Resources: [unclosed\n", None, b"Resources:\n  Q:\n    Type: caf\xe9\n"])
def test_a_template_that_cannot_be_read_is_refused_as_such(tmp_path: Path, text: str | bytes | None) -> None:
    path = tmp_path / "template.yaml"
    if isinstance(text, str):
        path.write_text(text)
    elif isinstance(text, bytes):
        path.write_bytes(text)
    with pytest.raises(ValueError, match=f"^{re.escape(str(path))} cannot be read"):
        Template.load(path)
