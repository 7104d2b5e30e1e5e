"""Write the small SFT demo sample that ``recipes/blocks/demo.yaml`` builds (no download, no shared data needed).

    python -m shardsmith.demo.sft_sample out/sft_demo        # then
    SFT_DEMO_DATA=out/sft_demo shardsmith build recipes/blocks/demo.yaml --out out/sft-demo-shards

Files: ``demo_zh.jsonl`` (Alpaca shape, Chinese; holds one English row and one exact duplicate on purpose),
``demo_en.json`` (Alpaca JSON array, English; one empty reply), ``demo_chat.jsonl`` (ShareGPT multi-turn, mixed
languages; one conversation ending with a user turn). A build therefore shows every kind of counted drop.
``demo_pref.jsonl`` (prompt / chosen / rejected, for ``recipes/blocks/demo-pref.yaml``): for the questions above and
120 seeded arithmetic questions (zh + en), the answer is chosen and an evasive reply in the same language rejected (a
preference that carries over to held-out questions); one pair is identical and one has an empty rejected answer.
"""

from __future__ import annotations

import json
import random
import sys
from pathlib import Path

ZH = [
    ("什么是机器学习？", "机器学习是人工智能的一个分支，它让计算机从数据中学习规律，而不是依靠人工编写的规则。"),
    ("请用一句话介绍长城。", "长城是中国古代修建的军事防御工程，东起山海关，西至嘉峪关，全长两万多公里。"),
    ("把下面的句子改写得更正式：我明天不来了。", "我明日将无法出席，敬请谅解。"),
    ("列出三种常见的水果。", "苹果、香蕉和橙子。"),
    ("为什么天空是蓝色的？", "因为大气中的气体分子对短波长的蓝光散射得更强，这种现象叫做瑞利散射。"),
    ("计算 12 乘以 8。", "12 乘以 8 等于 96。"),
    ("写一句关于春天的诗。", "春风又绿江南岸，桃花映水笑盈盈。"),
    ("如何保持良好的睡眠？", "保持规律的作息，睡前避免使用手机，卧室保持安静、黑暗和凉爽，下午之后少喝咖啡。"),
]
EN = [
    ("What is the capital of France?", "The capital of France is Paris."),
    ("Give three tips for staying healthy.", "Eat a balanced diet, exercise regularly, and get enough sleep."),
    ("Translate 'good morning' into Spanish.", "'Good morning' in Spanish is 'buenos días'."),
    ("What is 15 divided by 3?", "15 divided by 3 is 5."),
    ("Name a primary color.", "Red is a primary color."),
    ("Explain photosynthesis in one sentence.", "Photosynthesis is the process by which plants use sunlight, water "
     "and carbon dioxide to make glucose and release oxygen."),
]
CHAT = [
    [("human", "Hi! Who wrote Hamlet?"), ("gpt", "Hamlet was written by William Shakespeare."),
     ("human", "When was it written?"), ("gpt", "Around 1599 to 1601.")],
    [("human", "你好，能推荐一本书吗？"), ("gpt", "可以读一读《活着》，作者是余华。"),
     ("human", "它讲的是什么？"), ("gpt", "它讲述了福贵一生的苦难与坚韧。")],
    [("human", "Tell me a joke."), ("gpt", "Why did the scarecrow win an award? He was outstanding in his field."),
     ("human", "Another one?")],  # ends with a user turn: counted drop 'ends_with_user'
]

EVASIVE_ZH = ["我不知道。", "这个问题我没法回答。", "你可以自己查一查。", "也许吧，很难说。"]
EVASIVE_EN = ["I don't know.", "I cannot answer that.", "You could look it up yourself.", "Maybe, it is hard to say."]


def write_demo_sample(dest: str | Path) -> Path:
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    zh = [{"instruction": q, "input": "", "output": a} for q, a in ZH]
    zh.append({"instruction": "Write a haiku about the sea.", "input": "",
               "output": "Waves fold into foam, the grey sea breathes in and out, gulls stitch wind to sky."})
    zh.append(dict(zh[0]))  # planted exact duplicate
    with open(dest / "demo_zh.jsonl", "w", encoding="utf-8") as f:
        for r in zh:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    en = [{"instruction": q, "input": "", "output": a} for q, a in EN]
    en.append({"instruction": "Say nothing.", "input": "", "output": ""})  # empty reply: counted drop 'empty_turn'
    (dest / "demo_en.json").write_text(json.dumps(en, ensure_ascii=False, indent=2), encoding="utf-8")
    with open(dest / "demo_chat.jsonl", "w", encoding="utf-8") as f:
        for i, turns in enumerate(CHAT):
            rec = {"id": f"chat_{i}", "conversations": [{"from": a, "value": b} for a, b in turns]}
            f.write(json.dumps(rec, ensure_ascii=False) + "\n")
    with open(dest / "demo_pref.jsonl", "w", encoding="utf-8") as f:
        rng = random.Random(7)
        arithmetic = []
        for k in range(120):
            x, y = rng.randint(2, 99), rng.randint(2, 99)
            arithmetic.append((f"{x} 加 {y} 等于多少？", f"{x} 加 {y} 等于 {x + y}。", True) if k % 2 else
                              (f"What is {x} plus {y}?", f"{x} plus {y} is {x + y}.", False))
        qa = [(q, a, True) for q, a in ZH] + [(q, a, False) for q, a in EN] + arithmetic
        for i, (q, a, zh_) in enumerate(qa):
            dodge = EVASIVE_ZH[i % len(EVASIVE_ZH)] if zh_ else EVASIVE_EN[i % len(EVASIVE_EN)]
            f.write(json.dumps({"id": f"pref_{i}", "prompt": q, "chosen": a, "rejected": dodge}, ensure_ascii=False)
                    + "\n")
        f.write(json.dumps({"id": "pref_same", "prompt": EN[0][0], "chosen": EN[0][1], "rejected": EN[0][1]}) + "\n")
        f.write(json.dumps({"id": "pref_empty", "prompt": EN[1][0], "chosen": EN[1][1], "rejected": " "}) + "\n")
    return dest


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print("usage: python -m shardsmith.demo.sft_sample DEST_DIR", file=sys.stderr)
        return 2
    print(write_demo_sample(argv[0]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
