"""Our config validator against ``jsonschema`` on the same schema and documents.

Walks ``document.SCHEMA`` and, for every keyword a node uses, builds documents that break it
and that meet it, then asks both validators.  A keyword with no probe here fails the test:
our validator silently ignores what it does not know, so a new keyword must be taught to it
(and given a probe) before the schema may use it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import jsonschema
from twisted.trial.unittest import SynchronousTestCase

from openclaw_tw.config import document

# Keywords that do not constrain a value.
ANNOTATIONS = frozenset({"title", "description", "$schema", "default", "examples", "$comment"})
SAMPLES: list[Any] = [None, True, 0, 7, 2.5, 3.0, "text", [], ["x"], {}, {"k": 1}]
UNKNOWN = "zzUnknownKey"

Place = Callable[[Any], Any]  # puts a value where the node under test sits, in a document


def probes(node: dict[str, Any], where: str, place: Place) -> Iterator[tuple[str, Any]]:
    """(label, document) pairs exercising every keyword of ``node`` and, recursively, of its
    subschemas; raises AssertionError for a keyword nobody probes."""
    for keyword, arg in node.items():
        if keyword in ANNOTATIONS:
            continue
        label = f"{where or '<root>'} {keyword}"
        if keyword == "type":
            for value in SAMPLES:
                yield f"{label} {value!r}", place(value)
        elif keyword == "enum":
            for value in [*arg, "zz-not-listed", 1]:
                yield f"{label} {value!r}", place(value)
        elif keyword in ("minimum", "maximum"):
            for value in (arg - 1, arg, arg + 1, arg - 0.5, arg + 0.5):
                yield f"{label} {value!r}", place(value)
        elif keyword == "items":
            yield from probes(arg, f"{where}[]", lambda v, p=place: p([v]))
            yield f"{label} two items", place([None, None])
        elif keyword == "properties":
            for key, sub in arg.items():
                yield from probes(sub, f"{where}.{key}", lambda v, p=place, k=key: p({k: v}))
        elif keyword == "additionalProperties":
            yield f"{label} unknown key", place({UNKNOWN: 1})
            if isinstance(arg, dict):
                yield from probes(arg, f"{where}.*", lambda v, p=place: p({UNKNOWN: v}))
        else:
            raise AssertionError(f"{label}: a keyword our validator does not check")


class SchemaAgreesWithJsonschema(SynchronousTestCase):
    def test_the_schema_is_valid_draft7(self) -> None:
        jsonschema.Draft7Validator.check_schema(document.SCHEMA)

    def test_same_verdict_on_every_probe(self) -> None:
        reference = jsonschema.Draft7Validator(document.SCHEMA)
        docs = list(probes(document.SCHEMA, "", lambda v: v))
        self.assertGreater(len(docs), 500)  # the walk reached the nested nodes
        disagreements = []
        for label, doc in docs:
            ours = not document.schema_issues(doc)
            theirs = reference.is_valid(doc)
            if ours != theirs:
                disagreements.append(f"{label}: ours {ours}, jsonschema {theirs}")
        self.assertEqual(disagreements, [])

    def test_an_unknown_keyword_is_caught(self) -> None:
        """The guard itself: a keyword we do not implement makes the walk fail."""
        node = {"type": "object", "properties": {"name": {"type": "string", "maxLength": 3}}}
        with self.assertRaises(AssertionError) as caught:
            list(probes(node, "", lambda v: v))
        self.assertIn("maxLength", str(caught.exception))
        # a keyword we know in a form we do not implement (a schema for extra keys) is a
        # disagreement on the probes, so the differential test catches it
        node = {"type": "object", "additionalProperties": {"type": "string"}}
        reference = jsonschema.Draft7Validator(node)
        differ = []
        for label, doc in probes(node, "", lambda v: v):
            issues: list[dict[str, str]] = []
            document._walk(node, doc, "", issues)
            if (not issues) != reference.is_valid(doc):
                differ.append(label)
        self.assertIn(".* type 7", differ)
