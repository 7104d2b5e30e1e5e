"""``pii: true`` in a block recipe: the mixes' PII step (``pipelines/pii.py``: datatrove's ``PIIFormatter`` + IPv6)
replaces e-mail and public IP addresses in every message before rendering, and the manifest counts them per source.
The reference is that step itself, run on the same messages; off by default (the written text is the source's)."""

from __future__ import annotations

import pytest
from test_builders_helpers import build_recipe, load_manifest, write_jsonl

from shardsmith.builders.writer import inspect_documents
from shardsmith.pipelines.pii import PIIStep

ROWS = [
    {"instruction": "Write to me at john.doe@example.com please.", "output": "Sure: jane@company.org, or ping 8.8.8.8."},
    {"instruction": "My router is 192.168.0.1, is that public?", "output": "No: 192.168.0.1 is a private address."},
    {"instruction": "What is 2606:4700:4700::1111?", "output": "A public resolver; std::vector is no address."},
    {"instruction": "Nothing personal here.", "output": "Nothing to replace."},
]
PII = ["john.doe@example.com", "jane@company.org", "8.8.8.8", "2606:4700:4700::1111"]


def _recipe(pii: bool | None) -> dict:
    recipe = {"kind": "sft", "name": "pii", "tokenizer": {"name": "gpt2"}, "template": "chatml",
              "validation": {"fraction": 0}, "decontaminate": False,
              "sources": [{"name": "rows", "paths": ["rows.jsonl"], "shape": "alpaca", "language": "en"}]}
    return recipe if pii is None else {**recipe, "pii": pii}


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("pii")
    write_jsonl(tmp / "rows.jsonl", ROWS)
    return {"on": build_recipe(tmp, _recipe(True), name="on.yaml"), "off": build_recipe(tmp, _recipe(None), name="off.yaml")}


def test_pii_true_writes_what_the_mixes_pii_step_writes_and_counts_it(built):
    reference = PIIStep()
    expected = [reference.format(r[k]) for r in ROWS for k in ("instruction", "output")]
    texts = [d["text"] for d in inspect_documents(built["on"])]
    assert all(any(e in t for t in texts) for e in expected)
    assert not any(p in t for p in PII for t in texts)
    assert sum("192.168.0.1" in t for t in texts) == 1  # private: kept, like the mixes
    row = next(s for s in load_manifest(built["on"])["filters"]["rows"] if s["step"] == "pii")
    totals = {k[len("replaced_"):]: int(v.total) for k, v in reference.stats.stats.items() if k.startswith("replaced_")}
    assert row["replacements"] == totals == {"email": 2, "ipv4": 1, "ipv6": 1}
    assert (row["read"], row["kept"], row["changed"]) == (4, 4, 2)


def test_pii_is_off_by_default(built):
    texts = [d["text"] for d in inspect_documents(built["off"])]
    assert all(any(p in t for t in texts) for p in PII)
    assert not any(s["step"] == "pii" for s in load_manifest(built["off"])["filters"]["rows"])
