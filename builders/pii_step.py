"""E-mail and IP address replacement as an opt-in block step (``pii: true`` in a block recipe; off by default).

The step is the mixes' own: ``pipelines/pii.py``'s ``PIIStep`` (datatrove's ``PIIFormatter`` plus IPv6, with its
replacement addresses and its counts), applied to every message of each kept conversation (a preference pair: both
sides) after the filters and the teacher and before rendering, so the written documents — and the token lengths the
length step counts — are the replaced text. A formatter: it never drops. Per source, the manifest's ``filters`` row
of step ``pii`` holds ``changed`` (conversations it altered) and ``replacements`` per kind (email, ipv4, ipv6, zeros
included), read from the datatrove step's own stats (``pipelines.stats.step_changes``, as the mixes read them).
"""

from __future__ import annotations

from shardsmith.pipelines.pii import PIIStep
from shardsmith.pipelines.stats import step_changes
from shardsmith.schemas.records import Conversation

from .block import BlockStep, Item, SourceBooks, Verdict


class PiiBlockStep(BlockStep):
    name = timing = "pii"

    def decide_all(self, items: list[Item], books: SourceBooks) -> list[Verdict]:
        self.pii = PIIStep()  # one per source: its stats are that source's counts
        self.changed = 0
        for it in items:
            new = [self._replaced(c) for c in it.convs()]
            self.changed += any(n is not c for n, c in zip(new, it.convs()))
            it.conv = new[0]
            if it.rejected is not None:
                it.rejected = new[1]
        return [None] * len(items)

    def _replaced(self, conv: Conversation) -> Conversation:
        """``conv`` itself when no message changed, else a copy with the replaced messages."""
        messages = [m.model_copy(update={"content": fixed}) if (fixed := self.pii.format(m.content)) != m.content
                    else m for m in conv.messages]
        if all(a is b for a, b in zip(messages, conv.messages)):
            return conv
        return conv.model_copy(update={"messages": messages})

    def run(self, items: list[Item], books: SourceBooks) -> list[Item]:
        kept = super().run(items, books)
        totals = {key: stat.total for key, stat in self.pii.stats.stats.items()}
        counts = {**step_changes({"stats": totals}), "changed": self.changed}
        books.steps[-1] = books.steps[-1].model_copy(update=counts)
        return kept
