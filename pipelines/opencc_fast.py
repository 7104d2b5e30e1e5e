"""opencc-python-reimplemented's conversion (``OpenCC(config).convert``), same output, several times faster.

Written by hand because no library offers it: the package is the pure-Python OpenCC that the Chinese chain uses,
and its converter searches every chunk for the longest dictionary key by trying every key length at every position
(``StringTree.__findMatch``: about 14 slices and dict lookups per character for ``TSPhrases.txt``), then builds a
tree node per match.  This module applies the same rules with the same dictionaries (read from the package's own
loaded ``OpenCC`` object):

* the string is cut at the package's separators (``split_chars_re``); each chunk is converted on its own;
* per dictionary group of the config's chain (the joined result of one group is the input of the next), per
  dictionary of the group in order: in a segment, the longest key wins, the leftmost among equally long ones; the
  text left and right of it are segments searched again with keys no longer than that match (the package's
  ``length_hint``); a segment without any match goes on to the group's next dictionary with no length cap, matched
  text is final for the group; a value listing several mappings gives its first;
* faster because all key occurrences of a dictionary are found in one Aho-Corasick pass (``pyahocorasick``, which
  the spam step uses too) over the chunks joined by ``\\x00`` (no key holds it), so chunks without a key skip the
  search, and a group's last dictionary whose keys are all single characters (``TSCharacters.txt``) is one
  ``str.translate``.

``tests/test_fast_paths.py`` checks the output equals ``OpenCC.convert`` on real Chinese documents.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right

__all__ = ["FastOpenCC"]

OPENCC_VERSION = "0.1.7"  # the opencc-python-reimplemented whose StringTree rules FastOpenCC follows


class _Dictionary:
    """One OpenCC dictionary (``(max_len, min_len, mapping)`` as the package loads it), prepared for lookups."""

    def __init__(self, loaded: tuple[int, int, dict[str, str]]):
        import ahocorasick

        self.max_len, self.min_len, mapping = loaded
        self.values = {key: value.split(" ")[0] for key, value in mapping.items()}  # first of several mappings
        single = all(len(key) == 1 for key in mapping)
        self.table = {ord(key): value for key, value in self.values.items()} if single else None
        self.automaton = ahocorasick.Automaton()
        for key in mapping:
            self.automaton.add_word(key, len(key))
        self.automaton.make_automaton()

    def key_starts(self, text: str) -> dict[int, list[int]]:
        """Position -> lengths (ascending) of the keys occurring in ``text`` there (overlapping ones too)."""
        starts: dict[int, list[int]] = {}
        if len(self.automaton) == 0:
            return starts
        for end, n in self.automaton.iter(text):
            starts.setdefault(end - n + 1, []).append(n)
        for lengths in starts.values():
            lengths.sort()
        return starts

    def split(self, text: str) -> list[tuple[str, bool]]:
        """``text`` as pieces ``(converted value, True)`` for matches and ``(original text, False)`` for the gaps,
        in order (the package's tree, read in order)."""
        starts = self.key_starts(text)
        if not starts:
            return [(text, False)]
        positions = sorted(starts)
        matches: list[tuple[int, int]] = []
        stack: list[tuple[int, int, int | None]] = [(0, len(text), None)]
        while stack:
            a, b, hint = stack.pop()
            cap = min(b - a, self.max_len) if not hint else min(b - a, self.max_len, hint)
            best, where = 0, -1
            for j in positions[bisect_left(positions, a) : bisect_left(positions, b)]:
                allowed = min(cap, b - j)
                for n in reversed(starts[j]):
                    if n <= allowed:
                        if n > best:
                            best, where = n, j
                        break
            if where < 0 or best < self.min_len:
                continue
            matches.append((where, best))
            if where > a:
                stack.append((a, where, best))
            if where + best < b:
                stack.append((where + best, b, best))
        if not matches:
            return [(text, False)]
        matches.sort()
        pieces: list[tuple[str, bool]] = []
        pos = 0
        for j, n in matches:
            if j > pos:
                pieces.append((text[pos:j], False))
            pieces.append((self.values[text[j : j + n]], True))
            pos = j + n
        if pos < len(text):
            pieces.append((text[pos:], False))
        return pieces


class FastOpenCC:
    """``OpenCC(config).convert(text)`` of opencc-python-reimplemented, computed as described in the module doc."""

    @staticmethod
    def usable() -> bool:
        """True for the opencc-python-reimplemented whose rules this class re-implements."""
        from importlib.metadata import version

        return version("opencc-python-reimplemented") == OPENCC_VERSION

    def __init__(self, converter):
        converter.convert("")  # loads the dictionaries (the package does it lazily)
        self.split_chars_re = converter.split_chars_re
        self.groups = [[_Dictionary(d) for d in group] for group in converter._dict_chain_data]

    def convert(self, text: str) -> str:
        parts = self.split_chars_re.split(text)
        chunks = parts[0::2]  # the text between separators; the separators (odd parts) are kept as they are
        for group in self.groups:
            chunks = self._apply_group(chunks, group)
        parts[0::2] = chunks
        return "".join(parts)

    def _apply_group(self, chunks: list[str], group: list[_Dictionary]) -> list[str]:
        """One dictionary group on every chunk.  The chunks are joined with ``\\x00`` (no key holds it, so no
        occurrence crosses it) only to find, in one pass, the chunks holding a key of the group's first
        dictionary; every other chunk only meets the group's later dictionaries."""
        if not group:
            return chunks
        first, rest = group[0], group[1:]
        joined = "\x00".join(chunks)
        if first.table is not None and not rest and 0 not in first.table:
            return joined.translate(first.table).split("\x00")
        hits = first.key_starts(joined)
        if not hits:
            return self._apply_group(chunks, rest)
        offsets, pos = [], 0
        for chunk in chunks:
            offsets.append(pos)
            pos += len(chunk) + 1
        touched = {bisect_right(offsets, start) - 1 for start in hits}
        out = self._apply_group(chunks, rest)  # right for the chunks without a key of `first`
        for i in touched:
            out[i] = self._apply(chunks[i], group)
        return out

    def _apply(self, text: str, group: list[_Dictionary]) -> str:
        """One dictionary group on one segment: matches are final, gaps go on to the next dictionary."""
        if not group:
            return text
        first, rest = group[0], group[1:]
        if first.table is not None and not rest:
            return text.translate(first.table)
        return "".join(value if matched else self._apply(value, rest) for value, matched in first.split(text))
