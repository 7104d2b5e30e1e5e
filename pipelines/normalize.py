"""Text normalisation at the head of the default chains: HTML entities and mojibake, via datatrove's ftfy step."""

from __future__ import annotations

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
        fixed = super().format(text)
        if fixed != text:
            self.stat_update("changed")
        return fixed
