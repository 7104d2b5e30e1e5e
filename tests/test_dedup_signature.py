"""The fast MinHash signature stage writes byte-identical signature files to datatrove's MinhashDedupSignature on
real English and Chinese documents (same shingles, same hash family, same permutations), with FineWeb's defaults
and with other `dedup.minhash` settings. (Its speed is measured by scripts/bench_dedup.py, not here.)"""

from __future__ import annotations

import json

import pytest
from conftest import need_data
from datatrove.data import Document
from datatrove.pipeline.dedup.minhash import MinhashDedupSignature

from shardsmith.pipelines.dedup import minhash_config
from shardsmith.pipelines.minhash_signature import FastMinhashSignature, minhash_language
from shardsmith.schemas.dedup import DedupSpec

SAMPLES = {  # language -> (dataset folder, file, documents)
    "en": ("web_c4_demo_llamafactory", "c4_demo.jsonl", 50),
    "zh": ("zh_skypile_sample", "2021-31_zh_head_0000_sample.jsonl", 30),
}
OTHER = DedupSpec(minhash={"n_grams": 3, "num_buckets": 4, "hashes_per_bucket": 5, "seed": 7})


def documents(language: str) -> list[Document]:
    folder, name, n = SAMPLES[language]
    root = need_data(folder)
    with open(root / folder / name, encoding="utf-8") as f:
        texts = [json.loads(line)["text"] for _, line in zip(range(n), f)]
    texts += ["", "too short", texts[0]]  # no shingles at all, fewer words than n, a repeat
    texts.append("Café naïve résumé, Ångström: Tiếng Việt có dấu — e\u0301 " + texts[1])  # diacritics dropped
    return [Document(text=t, id=str(i)) for i, t in enumerate(texts)]


def signature_files(step, docs, folder) -> dict[str, bytes]:
    for _ in step.run(iter(docs), rank=0, world_size=1) or ():
        pass
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*.minhash.sig"))}


@pytest.mark.parametrize("language", ["en", "zh"])
@pytest.mark.parametrize("spec", [DedupSpec(), OTHER], ids=["fineweb-defaults", "other-settings"])
def test_signature_files_equal_datatrove(language, spec, tmp_path):
    docs = documents(language)
    config = minhash_config(spec)
    ours = signature_files(FastMinhashSignature(str(tmp_path / "ours"), config, language=language), docs,
                           tmp_path / "ours")
    reference = MinhashDedupSignature(str(tmp_path / "ref"), config, language=minhash_language(language))
    theirs = signature_files(reference, docs, tmp_path / "ref")
    assert len(ours) == spec.minhash.num_buckets and ours == theirs
    record = 8 * spec.minhash.hashes_per_bucket + 4
    assert len(ours["bucket_000/00000.minhash.sig"]) == record * (len(docs) - 2)  # "" and "too short" have none


def test_settings_reach_the_stage():
    default, other = minhash_config(DedupSpec()), minhash_config(OTHER)
    assert (default.n_grams, default.num_buckets, default.hashes_per_bucket, default.seed) == (5, 14, 8, 1)
    assert (other.n_grams, other.num_buckets, other.hashes_per_bucket, other.seed) == (3, 4, 5, 7)
