"""Text normalisation at the head of the default chains: HTML entities and mojibake, via datatrove's ftfy step."""

from __future__ import annotations

import functools
import re
import unicodedata

from datatrove.pipeline.formatters import FTFYFormatter

NORMALIZATION_FORMS = ("NFC", "NFKC", "NFD", "NFKD")


class NormalizeFormatter(FTFYFormatter):
    """datatrove's ``FTFYFormatter`` with the options a crawl needs before language ID and the Chinese rules.

    Crawled pages carry their text as HTML numeric entities (``&#21313;&#22823;`` is 十大) or as UTF-8 decoded as
    Latin-1 (``Ã©tÃ©`` is été); language ID, the CJK ratio and the spam lexicon then see ASCII soup.  Options
    (recipe params of the ``normalize`` step, same names as ftfy's ``TextFixerConfig``):

    * ``unescape_html=True`` (forced; ftfy's and datatrove's ``"auto"`` skips any text containing ``<``, and
      extracted web text often does: ``a < b``, leftover tags).  Entities that end in ``;`` are decoded, and
      ftfy repeats its fixes until the text stops changing, so double-escaped ``&amp;lt;`` becomes ``<``;
      ``this&not that`` (no ``;``) stays as written.
    * ``fix_encoding=True`` with its helpers (``restore_byte_a0``, ``replace_lossy_sequences``,
      ``decode_inconsistent_utf8``, ``fix_c1_controls``, ``fix_surrogates``, ``remove_control_chars``; always on):
      repairs mojibake, the main point of ftfy.
    * ``remove_terminal_escapes=True``: ANSI colour codes from scraped logs are noise to every later rule.
    * ``fix_latin_ligatures=True`` (datatrove's default is False): ``ﬁ``/``ﬂ`` come from PDF typesetting, not from
      authors; ``ﬁnancial`` would otherwise miss stop words, lexicons and the tokenizer's merges for "fi".
    * ``fix_line_breaks=True``: ``\\r\\n``, ``\\r``, U+2028/2029/0085 become ``\\n``; Gopher, C4 and FineWeb split
      lines on ``\\n`` only, so a page with old Mac line ends would be judged as one line.
    * ``normalization="NFC"``: composes decomposed accents (``e`` + U+0301 = ``é``) so identical words are
      identical strings.  Not NFKC: it rewrites full-width CJK punctuation ``，（）：`` to ASCII, circled digits and
      units (``①``, ``㎡``) and superscripts, changing what Chinese text looks like.  (NFC does map the CJK
      compatibility ideographs U+F900-FAFF to their unified forms, which is what a t2s/LID step wants anyway.)
    * ``uncurl_quotes=False``: curly quotes are real typography; a model should keep seeing them.
    * ``fix_character_width=False``: it would turn full-width ``，。！`` into half-width ASCII punctuation, which
      is wrong for Chinese and Japanese (and Chinese filters count ``，。`` as sentence punctuation).

    Stats: ``changed`` counts documents whose text the step altered.  A formatter never drops a document.
    """

    name = "🧹 Normalize (ftfy)"

    def __init__(
        self,
        unescape_html: bool | str = True,
        fix_encoding: bool = True,
        remove_terminal_escapes: bool = True,
        fix_latin_ligatures: bool = True,
        fix_line_breaks: bool = True,
        normalization: str | None = "NFC",
        uncurl_quotes: bool = False,
        fix_character_width: bool = False,
    ):
        flags = {
            "fix_encoding": fix_encoding,
            "remove_terminal_escapes": remove_terminal_escapes,
            "fix_latin_ligatures": fix_latin_ligatures,
            "fix_line_breaks": fix_line_breaks,
            "uncurl_quotes": uncurl_quotes,
            "fix_character_width": fix_character_width,
        }
        for key, value in flags.items():
            if not isinstance(value, bool):
                raise ValueError(f"normalize `{key}` must be true or false, got {value!r}")
        if unescape_html not in (True, False, "auto"):
            raise ValueError(f"normalize `unescape_html` must be true, false or 'auto', got {unescape_html!r}")
        if normalization is not None and normalization not in NORMALIZATION_FORMS:
            raise ValueError(
                f"normalize `normalization` must be one of {', '.join(NORMALIZATION_FORMS)} or null, "
                f"got {normalization!r}"
            )
        super().__init__(unescape_html=unescape_html, normalization=normalization, **flags)

    def format(self, text: str) -> str:
        fixed = self.fix(text)
        if fixed != text:
            self.stat_update("changed")
        return fixed

    def fix(self, text: str) -> str:
        """``ftfy.fix_text(text, config)`` (datatrove's ``FTFYFormatter.format``), skipping what cannot change.

        ftfy fixes a text line by line (its segments: up to and including each ``\\n``), each with
        ``fix_and_explain``.  A segment holding no character any enabled fixer acts on (:func:`ftfy_triggers`) and
        already in the normalization form comes out of ``fix_and_explain`` as it went in, so it is kept without the
        call; the others go through ftfy's own ``fix_and_explain`` with the same config, in ftfy's own segment
        loop.  Falls back to ``ftfy.fix_text`` itself for another ftfy version or for ``uncurl_quotes`` /
        ``fix_character_width`` (they act on common characters).  ``tests/test_fast_paths.py`` checks the result
        equals ``ftfy.fix_text`` on real documents.
        """
        config = self.config
        triggers = ftfy_triggers()
        if triggers is None or config.uncurl_quotes or config.fix_character_width:
            return super().format(text)
        if self._unchanged(text, triggers):
            return text
        from ftfy import fix_and_explain

        out, pos = [], 0
        while pos < len(text):  # ftfy.fix_text's own loop
            textbreak = text.find("\n", pos) + 1 or len(text)
            textbreak = min(textbreak, pos + config.max_decode_length)
            segment = text[pos:textbreak]
            if config.unescape_html == "auto" and "<" in segment:
                config = config._replace(unescape_html=False)
            out.append(segment if self._unchanged(segment, triggers) else fix_and_explain(segment, config)[0])
            pos = textbreak
        return "".join(out)

    def _unchanged(self, text: str, triggers: re.Pattern) -> bool:
        form = self.config.normalization
        return not triggers.search(text) and (form is None or unicodedata.is_normalized(form, text))


FTFY_VERSION = "6.3.1"  # the ftfy whose fixers ftfy_triggers() was read from


@functools.lru_cache(maxsize=1)
def ftfy_triggers() -> re.Pattern | None:
    """One character class holding every character that can make ftfy 6.3.1's ``fix_and_explain`` change a text
    (normalization aside), or None for another ftfy version.

    * ``fix_encoding`` changes nothing unless ``badness.is_bad`` (``BADNESS_RE``) matches.  Every alternative of
      that expression needs at least one character of a class listed in :data:`_BADNESS_REQUIRED` (read off its
      source: e.g. ``[{bad}][...]`` needs a ``bad`` one, ``[...][{end_punctuation}][{start_punctuation}]`` one of
      its first class, ``[ØÙ][{common}...]`` an ``Ø``/``Ù``), so quotes, dashes and ellipses alone (``common``,
      ``start_punctuation``, ``end_punctuation``) cannot make it match;
    * ``unescape_html``: ``&``; ``fix_line_breaks``: CR, U+2028, U+2029, U+0085; ``remove_terminal_escapes``: ESC;
      ``fix_surrogates``: U+D800-DFFF; ``fix_latin_ligatures``: the keys of its table; ``remove_control_chars``:
      the keys of its table; ``fix_c1_controls``: U+0080-009F (category ``c1``).
    """
    import ftfy
    from ftfy import chardata
    from ftfy.badness import MOJIBAKE_CATEGORIES

    if ftfy.__version__ != FTFY_VERSION:
        return None
    categories = "".join(MOJIBAKE_CATEGORIES[name] for name in _BADNESS_REQUIRED[0])
    tables = set(map(chr, chardata.CONTROL_CHARS)) | set(map(chr, chardata.LIGATURES))
    singles = "".join(re.escape(c) for c in sorted(set(_BADNESS_REQUIRED[1]) | tables | set("&\r\x1b\u2028\u2029\x85")))
    return re.compile(f"[{categories}{singles}\ud800-\udfff]")


# ftfy 6.3.1 BADNESS_RE: (categories, literal letters) such that every alternative needs one of them; per
# alternative the class chosen is the rarest in ordinary text (e.g. `[{box}][{end_punctuation}]` -> box)
_BADNESS_REQUIRED = (
    ("c1", "bad", "upper_accented", "lower_accented", "currency", "numeric", "law", "box"),
    "ŒœÂÃÎÐ×ØÙà√≈\u201aвВГРСβΒΓΞΟā",
)