"""template.yaml as the local stack loads it: read once for each version of the file, each load its own."""

from __future__ import annotations

import os
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
    first.resources.clear()
    first.document["Parameters"]["PublicDomain"]["Default"] = "changed.example"
    assert second.resources
    assert Template.load().resources
    assert second.document == Template.load().document
    assert Template.load().parameter_defaults()["PublicDomain"] == "minid.example.no"


def test_a_template_changed_since_it_was_loaded_is_read_again(tmp_path: Path) -> None:
    path = tmp_path / "template.yaml"
    path.write_text(TEMPLATE.format(name="first"))
    assert Template.load(path).resources["Queue"]["Properties"]["QueueName"] == "first"
    before = path.stat()
    path.write_text(TEMPLATE.format(name="other"))  # the same size, in place
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns + 1_000_000))
    assert Template.load(path).resources["Queue"]["Properties"]["QueueName"] == "other"
    replacement = tmp_path / "new.yaml"
    replacement.write_text(TEMPLATE.format(name="third"))
    os.utime(replacement, ns=(before.st_atime_ns, path.stat().st_mtime_ns))
    replacement.replace(path)  # another file in its place, with the same size and time
    assert Template.load(path).resources["Queue"]["Properties"]["QueueName"] == "third"


def test_a_template_that_cannot_be_read_is_refused_each_time_until_mended(tmp_path: Path) -> None:
    path = tmp_path / "template.yaml"
    path.write_text("Resources: [unclosed\n")
    for _ in range(2):
        with pytest.raises(ValueError, match="cannot be read"):
            Template.load(path)
    path.write_text(TEMPLATE.format(name="mended"))
    assert Template.load(path).resources["Queue"]["Properties"]["QueueName"] == "mended"
