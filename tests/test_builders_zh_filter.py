"""Must-show: a zh-only build over the real Chinese + English SFT samples mixed into one input keeps the Chinese
conversations and drops the English ones; precision / recall against the sources' declared language are printed
with the disagreements (the Chinese sets hold English and code rows: they are listed, not hidden). Planted exact and
near duplicates are removed; the manifest's counts add up."""

from __future__ import annotations

import gzip
import json
from collections import Counter

from conftest import need_data
from test_builders_helpers import build_recipe, load_manifest, write_jsonl

from shardsmith.builders.writer import inspect_documents

ZH = {"belle_2m": "sft_zh_belle/train_2M_CN_sample.json", "belle_3_5m": "sft_zh_belle/train_3.5M_CN_sample.json",
      "firefly": "sft_zh_firefly/firefly-train-1.1M_sample.jsonl", "alpaca_zh": "sft_alpaca_zh_demo/alpaca_zh_demo.json",
      "ruozhiba": "sft_zh_better_ruozhiba/ruozhiba_qa.json"}
EN = {"alpaca_en": "sft_alpaca_en_demo/alpaca_en_demo.json",
      "oasst1": "sft_oasst1_en_pairs/oasst1_en_instruction_response_pairs.json",
      "alpaca_orig": "sft_alpaca_original_fixture/alpaca.json", "dolly": "sft_alpaca_original_fixture/dolly.json",
      "rasbt": "sft_rasbt_ch07/instruction-data.json"}
LIMIT = 300


def test_zh_only_precision_recall_dedup_counts(tmp_path):
    root = need_data("sft_zh_belle", "sft_zh_firefly", "sft_alpaca_zh_demo", "sft_zh_better_ruozhiba",
                     "sft_alpaca_en_demo", "sft_oasst1_en_pairs", "sft_alpaca_original_fixture", "sft_rasbt_ch07")
    # planted duplicates of alpaca_zh rows 0..9: exact copies, copies differing in spacing/case/punctuation/width,
    # and near copies (a few characters changed in a long answer)
    src = json.loads((root / ZH["alpaca_zh"]).read_text(encoding="utf-8"))
    planted = []
    for r in src[:4]:
        planted.append(dict(r))
    for r in src[4:7]:
        planted.append({**r, "instruction": "  " + r["instruction"].replace("，", ",") + " ", "output": r["output"] + "。"})
    long_rows = [r for r in src[:LIMIT] if len(r["output"]) > 300][:3]
    for r in long_rows:
        out = r["output"]
        planted.append({**r, "output": out[:100] + "此外" + out[100:]})
    write_jsonl(tmp_path / "planted.jsonl", planted)

    sources = [{"name": n, "paths": [str(root / p)], "language": "zh", "limit": LIMIT} for n, p in ZH.items()]
    sources += [{"name": n, "paths": [str(root / p)], "language": "en", "limit": LIMIT} for n, p in EN.items()]
    sources.append({"name": "planted", "paths": ["planted.jsonl"], "language": "zh"})
    out = build_recipe(tmp_path, {
        "kind": "sft", "name": "zh-only-real", "seed": 3, "tokenizer": {"name": "gpt2"}, "template": "qwen",
        "validation": {"fraction": 0.05},
        "filters": {"language": {"keep": ["zh"], "rule": "char_share", "min_share": 0.5},
                    "dedup": {"exact": True, "near": True, "threshold": 0.8}},
        "sources": sources})
    m = load_manifest(out)
    rep = m["language_report"]
    vs = rep["vs_declared"]

    # ---- the report the issue asks for ------------------------------------------------------------------------
    print(f"\nzh-only build over {sum(c['read'] for c in m['counts'].values())} conversations "
          f"({LIMIT} per source): precision {vs['precision']:.4f}  recall {vs['recall']:.4f}  "
          f"(tp {vs['tp']} fp {vs['fp']} fn {vs['fn']} tn {vs['tn']})")
    for name, s in rep["sources"].items():
        print(f"  {name:12s} declared {s['declared']}  kept {s['kept']:4d}  dropped {s['dropped']:4d}  detected {s['detected']}")
    print(f"disagreements ({rep['disagreements_total']}):")
    for d in rep["disagreements"]:
        print(f"  [{d['source']}/{d['id']}] declared {d['declared']} decided {d['decided']} kept={d['kept']} "
              f"share={d['share']} | U: {d['user'][:70]!r} | A: {d['assistant'][:50]!r}")

    assert vs["precision"] >= 0.99 and vs["recall"] >= 0.9
    for name in EN:
        assert m["counts"][name]["kept"] <= 2, (name, m["counts"][name])
    for name in ZH:
        assert m["counts"][name]["kept"] >= 0.8 * LIMIT - 30
    assert set(m["languages"]) <= {"zh"}
    # every disagreement is listed (in the report file too), none hidden
    lines = (out / "reports" / "language_disagreements.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(lines) == rep["disagreements_total"] == vs["fp"] + vs["fn"]

    # ---- planted duplicates ----------------------------------------------------------------------------------
    pl = m["counts"]["planted"]
    assert pl["kept"] == 0, pl
    assert pl["dropped"].get("duplicate", 0) == 7 and pl["dropped"].get("near_duplicate", 0) == len(long_rows)

    # ---- counts add up, per source and per step ----------------------------------------------------------------
    total_kept = 0
    for name, c in m["counts"].items():
        assert c["read"] == c["kept"] + sum(c["dropped"].values()), name
        steps = m["filters"][name]
        assert steps[0]["read"] == c["read"] and steps[-1]["kept"] == c["kept"]
        for a, b in zip(steps, steps[1:]):
            assert a["kept"] == b["read"]
        total_kept += c["kept"]
    assert m["splits"]["train"]["documents"] + m["splits"]["validation"]["documents"] == total_kept
    assert m["splits"]["validation"]["documents"] >= 1
    assert sum(m["languages"].values()) == total_kept
    rejected = Counter()
    for f in (out / "rejected").glob("*.jsonl.gz"):
        for line in gzip.open(f, "rt", encoding="utf-8"):
            rejected[json.loads(line)["reason"]] += 1
    dropped = Counter()
    for c in m["counts"].values():
        dropped.update(c["dropped"])
    assert rejected == dropped

    # ---- decoded example: loss exactly on the reply + <|im_end|> + EOS ----------------------------------------------
    doc = inspect_documents(out, "validation", limit=1)[0]
    assert doc["text"].startswith("<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n")
    reply = doc["text"].split("<|im_start|>assistant\n", 1)[1]
    assert doc["loss_runs"] == [reply]
    assert reply.endswith("<|im_end|><|endoftext|>")
