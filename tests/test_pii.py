"""The `pii` step (issue 11, item 3): e-mail and IP addresses replaced as FineWeb's last step, counted in the manifest.

Real C4 and SkyPile documents from ../shared/data, some with planted addresses; the reference is datatrove's own
``PIIFormatter`` run on the same texts (shardsmith's step must give its exact output for e-mails and IPv4).
"""

from __future__ import annotations

import json
import re

import pytest
import yaml
from conftest import need_data
from datatrove.pipeline.formatters import PIIFormatter
from datatrove.pipeline.formatters.pii import public_ip_validator

from shardsmith.pipelines.filter_chains import NAMED_CHAINS, build_filter_steps, filter_chain_info
from shardsmith.pipelines.pii import PIIStep
from shardsmith.pipelines.sources import iter_documents
from shardsmith.schemas.manifest import ShardManifest
from shardsmith.schemas.mix_recipe import FilterChain, SourceSpec

N_DOCS = 60
PLANTED_PUBLIC_V6 = "2606:4700:4700::{:x}"  # Cloudflare's resolver block: global
KEPT = ("10.0.0.7", "192.168.1.20", "127.0.0.1", "fe80::1", "2001:db8::42", "std::vector", "12:30:45")


def plant(text: str, i: int) -> tuple[str, dict[str, int]]:
    """Addresses inserted after the document's first sentence: 2 e-mails, 1 public IPv4, 1 public IPv6 (counted),
    and private / link-local / documentation addresses and look-alikes that must stay."""
    head, sep, tail = text.partition(". ")
    planted = (f" Write to ana.lopez{i}@mail-example{i}.com or desk_{i}@news.co.uk; the mirror is at 8.8.{i}.{i} "
               f"and {PLANTED_PUBLIC_V6.format(i + 1)}, the lab at {', '.join(KEPT)}.")  # fmt: skip
    return head + sep + planted + " " + tail, {"email": 2, "ipv4": 1, "ipv6": 1}


@pytest.fixture(scope="module")
def real_docs() -> dict[str, list[str]]:
    root = need_data("web_c4_demo_llamafactory", "zh_skypile_sample")
    c4 = SourceSpec(name="c4", kind="c4", paths=[str(root / "web_c4_demo_llamafactory")], weight=1)
    zh = SourceSpec(name="zh", kind="skypile", paths=[str(root / "zh_skypile_sample")], weight=1, language="zh")
    return {
        "en": [d.text for d in iter_documents(c4, limit=N_DOCS * 5)],  # the 300 documents: 7 carry real e-mails
        "zh": [d.text for d in iter_documents(zh, limit=N_DOCS)],
    }


def reference_counts(texts: list[str]) -> dict[str, int]:
    """E-mails and public IPv4s as datatrove's own patterns and validator find them."""
    ref = PIIFormatter()
    emails = sum(len(ref.emails_replacer.regex.findall(t)) for t in texts)
    ipv4 = sum(public_ip_validator(m.group(0)) for t in texts for m in ref.ip_replacer.regex.finditer(t))
    return {"email": emails, "ipv4": ipv4}


def test_emails_and_ipv4_exactly_as_datatrove_on_real_documents(real_docs):
    texts = real_docs["en"] + real_docs["zh"]
    texts = [plant(t, i)[0] if i % 5 == 0 else t for i, t in enumerate(texts)]
    ours, ref = PIIStep(remove_ipv6=False), PIIFormatter()
    assert [ours.format(t) for t in texts] == [ref.format(t) for t in texts]
    stats = ours.stats.stats
    expected = reference_counts(texts)
    assert stats["replaced_email"].total == expected["email"] and stats["replaced_ipv4"].total == expected["ipv4"]
    real_emails = reference_counts(real_docs["en"])["email"]
    print(f"real C4 e-mails in {len(real_docs['en'])} documents: {real_emails}")
    assert real_emails >= 7  # real PII, not only the planted addresses


def test_planted_addresses_replaced_private_ones_kept(real_docs):
    step = PIIStep()
    for i, text in enumerate(real_docs["en"][:20] + real_docs["zh"][:20]):
        planted, counts = plant(text, i)
        before = reference_counts([text])
        out = step.format(planted)
        assert f"ana.lopez{i}@" not in out and f"8.8.{i}.{i}" not in out and PLANTED_PUBLIC_V6.format(i + 1) not in out
        assert all(kept in out for kept in KEPT), out
        assert "2001:db8::1" in out or "2001:db8::2" in out  # the IPv6 replacement (documentation prefix)
        found = {k: counts[k] + before.get(k, 0) for k in counts}
        assert {k: step._found.get(k, 0) for k in found} == found, i
    assert step.stats.stats["changed"].total == 40


def test_pii_is_the_last_step_of_every_named_chain_and_can_be_turned_off():
    for name, chain in NAMED_CHAINS.items():
        for language in ("en", "zh"):
            spec = SourceSpec(name="s", kind="generic", paths=["x"], weight=1, language=language, filters=name)
            assert build_filter_steps(spec, None)[-1][0] == "pii", (name, language)
            assert filter_chain_info(spec)["pii"] is True
            off = spec.model_copy(update={"filters": FilterChain(chain=name, pii=False)})
            assert "pii" not in [n for n, _ in build_filter_steps(off, None)]
            assert filter_chain_info(off)["pii"] is False


def test_mix_manifest_counts_replacements_and_records_opt_out(real_docs, tmp_path):
    import pyarrow.parquet as pq

    from shardsmith.pipelines.mixer import run_mix

    texts = [plant(t, i)[0] if i % 3 == 0 else t for i, t in enumerate(real_docs["en"][:N_DOCS])]
    data = tmp_path / "docs.jsonl"
    data.write_text("".join(json.dumps({"id": f"d{i}", "text": t}) + "\n" for i, t in enumerate(texts)))

    def src(name, filters):
        return {"name": name, "kind": "generic", "paths": [str(data)], "weight": 1, "filters": filters}

    recipe = {"name": "pii", "seed": 1, "tokenizer": {"name": "gpt2"}, "validation_fraction": 0.0,
              "dedup": {"enabled": False},  # the three sources read the same file on purpose
              "write_text": "parquet", "sources": [src("only_pii", ["pii"]), src("chain", "encyclopedia"),
                                                   src("opt_out", {"chain": "encyclopedia", "pii": False})]}  # fmt: skip
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe, sort_keys=False))
    out = run_mix(str(path), str(tmp_path / "out"), []).parent
    m = ShardManifest.load(out)

    pii = m.filters["only_pii"][-1]
    expected = reference_counts(texts)
    assert pii.step == "pii" and pii.read == pii.kept == N_DOCS and pii.dropped == 0
    assert pii.replacements == {**expected, "ipv6": N_DOCS // 3}
    changed = sum(PIIFormatter().format(t) != t for t in texts)
    assert pii.changed == changed
    chain = m.filters["chain"][-1]
    assert chain.step == "pii" and chain.changed > 0 and set(chain.replacements) == {"email", "ipv4", "ipv6"}
    assert "pii" not in [s.step for s in m.filters["opt_out"]]
    info = {s.name: s for s in m.sources}
    assert info["only_pii"].pii and info["chain"].pii and info["opt_out"].pii is False

    def exported(name: str) -> str:
        files = sorted((out / "text" / name).glob("*.parquet"))
        return " ".join(t for f in files for t in pq.read_table(f)["text"].to_pylist())

    assert not re.search(r"ana\.lopez\d+@", exported("only_pii") + exported("chain"))
    assert re.search(r"ana\.lopez\d+@", exported("opt_out"))
