"""A mix whose output folder is a URL (``s3://bucket/mix``, ``hf://...``, ``file:///...``: any fsspec filesystem).

The build runs in a local staging folder, then the finished set is uploaded through datatrove's ``DataFolder``
(``get_datafolder(url)``), ``manifest.json`` last. Why stage rather than write every phase to the URL: the phases'
outputs are written under a temporary name and renamed (a killed task never leaves a half file behind), and the
driver reads their logs and completion markers as local files; object stores have no rename (S3's "move" is a copy
then a delete). What the remote folder guarantees instead: every object appears whole (one PUT), and the manifest,
uploaded after every file it lists, is the set's commit mark: a folder with a ``manifest.json`` holds the whole set.
Re-uploading a set (``--force``) first deletes the old manifest, then the files the new set no longer has.

The staging folder is ``$SHARDSMITH_STAGE`` (default: the system temp folder)
``/shardsmith-stage/<sha256 of the URL>``: a re-run of a killed build resumes there. It is removed after the upload unless ``keep_work``.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path

from shardsmith.schemas.manifest import MANIFEST_NAME


def staging_folder(url: str) -> Path:
    """Where the set for ``url`` is built before the upload; the same folder for the same URL (resume)."""
    base = Path(os.environ.get("SHARDSMITH_STAGE") or tempfile.gettempdir()) / "shardsmith-stage"
    return base / hashlib.sha256(url.rstrip("/").encode()).hexdigest()[:16]


def remote_recipe_sha(folder) -> str | None:
    """The ``recipe_sha256`` of the set already in ``folder`` (a DataFolder), None when it holds no manifest."""
    if not folder.isfile(MANIFEST_NAME):
        return None
    with folder.open(MANIFEST_NAME, "rt") as f:
        return json.load(f).get("recipe_sha256")


def set_files(local: Path) -> list[str]:
    """The files of a finished set (relative, sorted), ``.work`` left out: what the manifest describes."""
    return sorted(rel for rel in (p.relative_to(local).as_posix() for p in local.rglob("*") if p.is_file())
                  if not rel.startswith(".work/"))


def upload_set(local: Path, folder) -> list[str]:
    """Upload the finished set in ``local`` to ``folder`` (a datatrove DataFolder), the manifest last; remove what
    an older set left there. Returns the uploaded files."""
    files = set_files(local)
    if folder.isfile(MANIFEST_NAME):
        folder.rm_file(MANIFEST_NAME)  # from here until the new manifest lands the folder holds no finished set
    stale = set(folder.list_files()) - set(files) if folder.isdir("") else set()
    for rel in files:
        if rel != MANIFEST_NAME:
            _put(local, folder, rel)
    for rel in sorted(stale):
        folder.rm_file(rel)
    _put(local, folder, MANIFEST_NAME)
    return files


def _put(local: Path, folder, rel: str) -> None:
    parent = rel.rpartition("/")[0]
    if parent:
        folder.makedirs(parent, exist_ok=True)  # a local or file:// target needs its folders; S3 ignores this
    folder.put_file(str(local / rel), rel)


def build_mix_at_url(recipe, url: str, force: bool = False, keep_work: bool = False) -> str:
    """Build ``recipe`` into the folder at ``url`` (see the module docstring); returns the manifest's URL. A URL
    already holding this recipe's set is left as it is; another recipe's set needs ``force``."""
    from datatrove.io import get_datafolder

    from shardsmith.pipelines.mixer import MixError, _fingerprint, build_mix

    url = url.rstrip("/")
    folder = get_datafolder(url)
    built = remote_recipe_sha(folder)
    if built is not None and not force:
        if built == _fingerprint(recipe):
            return f"{url}/{MANIFEST_NAME}"
        raise MixError(f"{url}: already holds a shard set built from another recipe; use --force to rebuild")
    stage = staging_folder(url)
    build_mix(recipe, stage, force=force, keep_work=keep_work)
    upload_set(stage, folder)
    if not keep_work:
        shutil.rmtree(stage, ignore_errors=True)
    return f"{url}/{MANIFEST_NAME}"
