"""The ``url`` filter step: datatrove's ``URLFilter`` for sources whose documents may lack a url."""

from __future__ import annotations

from datatrove.data import Document
from datatrove.pipeline.filters import URLFilter

__all__ = ["OptionalURLFilter"]


class OptionalURLFilter(URLFilter):
    """datatrove ``URLFilter`` (UT1 block lists shipped with datatrove) for sources that may lack urls.

    Documents without ``metadata["url"]`` pass (counted as stat ``no_url``) unless ``require_url``; datatrove's
    own filter asserts.  The public-suffix list is tldextract's bundled snapshot: no network fetch.
    """

    def __init__(self, require_url: bool = False, **kwargs):
        super().__init__(**kwargs)
        from tldextract import TLDExtract

        self.require_url = require_url
        self.tldextractor = TLDExtract(suffix_list_urls=(), cache_dir=None)

    # The UT1 lists take ~5 s to load and datatrove loads them again in every task's copy of the step; one
    # process keeps one read-only copy per configuration instead.
    _loaded: dict[tuple, tuple] = {}
    _LISTS = ("block_listed_domains", "block_listed_url", "banned_words", "banned_subwords", "soft_banned_words")

    def download_data(self):
        if self._downloaded or not self.use_integrated_lists:
            return
        key = tuple(frozenset(getattr(self, name)) for name in self._LISTS)
        cached = OptionalURLFilter._loaded.get(key)
        if cached is None:
            super().download_data()
            OptionalURLFilter._loaded[key] = tuple(getattr(self, n) for n in self._LISTS) + (
                self.banned_subwords_automaton,
            )
            return
        *lists, self.banned_subwords_automaton = cached
        for name, value in zip(self._LISTS, lists):
            setattr(self, name, value)
        self._downloaded = True

    def filter(self, document: Document) -> bool | tuple[bool, str]:
        if not document.metadata.get("url"):
            if self.require_url:
                return False, "no_url"
            self.stat_update("no_url")
            return True
        return super().filter(document)
