"""Public BEIR downloads: the zip is md5-checked against the BEIR README, kept as a workspace cache
entry (so a second fetch downloads nothing), unzipped safely and imported."""

from __future__ import annotations

from pathlib import Path

from retrieval_cli.data.imports import import_beir
from retrieval_cli.errors import InputError, RetrievalError
from retrieval_cli.progress import Progress, silent
from retrieval_cli.store import BuildResult, Workspace
from retrieval_cli.store.artifact import file_digest

# ---- public BEIR downloads ----------------------------------------------------------------------
BEIR_URL = "https://public.ukp.informatik.tu-darmstadt.de/thakur/BEIR/datasets/{name}.zip"


BEIR_URL_ENV = "RETRIEVAL_CLI_BEIR_URL"  # a mirror, e.g. file:///data/beir/{name}.zip


# md5 of each zip as published in the BEIR README.
BEIR_MD5 = {
    "msmarco": "444067daf65d982533ea17ebd59501e4",
    "trec-covid": "ce62140cb23feb9becf6270d0d1fe6d1",
    "nfcorpus": "a89dba18a62ef92f7d323ec890a0d38d",
    "nq": "d4d3d2e48787a744b6f6e691ff534307",
    "hotpotqa": "f412724f78b0d91183a0e86805e16114",
    "fiqa": "17918ed23cd04fb15047f73e6c3bd9d9",
    "arguana": "8ad3e3c2a5867cdced806d6503f29b99",
    "webis-touche2020": "46f650ba5a527fc69e0a6521c5a23563",
    "quora": "18fb154900ba42a600f84b839c173167",
    "dbpedia-entity": "c2a39eb420a3164af735795df012ac2c",
    "scidocs": "38121350fc3a4d2f48850f6aff52e4a9",
    "fever": "5a818580227bfb4b35bb6fa46d9b6c03",
    "climate-fever": "8b66f0a9126c521bae2bde127b4dc99d",
    "scifact": "5f7d1de60b170fc8027bb7898e2efca1",
}


def fetch_beir(
    ws: Workspace,
    name: str,
    *,
    artifact_name: str | None = None,
    force: bool = False,
    progress: Progress = silent,
) -> BuildResult:
    """Download a public BEIR zip (md5-checked, cached in the workspace) and import it."""
    import os
    import tempfile
    import urllib.error
    import urllib.request
    import zipfile

    if name not in BEIR_MD5:
        raise InputError(f"unknown BEIR dataset '{name}'; known: {', '.join(sorted(BEIR_MD5))}")
    url = os.environ.get(BEIR_URL_ENV, BEIR_URL).format(name=name)
    zip_name = f"{name}.zip"
    entry = ws.cache("downloads").entry(f"{name}-{BEIR_MD5[name]}")

    def download(folder: Path) -> None:  # into the entry's private folder: two fetches never share one
        partial = folder / zip_name
        try:
            with urllib.request.urlopen(url, timeout=60) as response, open(partial, "wb") as out:
                total = int(response.headers.get("Content-Length") or 0) or None
                done = 0
                for block in iter(lambda: response.read(1 << 20), b""):
                    out.write(block)
                    done += len(block)
                    progress(f"download {name}", done, total)
        except (urllib.error.URLError, OSError, ValueError) as exc:
            reason = getattr(exc, "reason", exc)
            raise RetrievalError(
                f"cannot download {url}: {reason}; offline? download the zip elsewhere, unzip it "
                f"and run: retrieval-cli data import beir DIR --name {name}"
            ) from None
        digest = file_digest(partial, "md5")
        if digest != BEIR_MD5[name]:
            raise RetrievalError(f"checksum mismatch for {url}: md5 {digest}, expected {BEIR_MD5[name]}")

    cached = entry.load() or entry.store({"url": url}, download)
    archive = cached.file(zip_name)
    with tempfile.TemporaryDirectory(dir=entry.path.parent) as tmp:
        try:
            with zipfile.ZipFile(archive) as zipped:
                for member in zipped.namelist():
                    if member.startswith("/") or ".." in Path(member).parts:
                        raise RetrievalError(f"{archive}: unsafe path in zip: {member}")
                zipped.extractall(tmp)
        except zipfile.BadZipFile as exc:
            raise RetrievalError(f"{archive}: not a valid zip ({exc})") from None
        folder = Path(tmp) / name
        if not folder.is_dir():
            folder = next((p.parent for p in Path(tmp).rglob("corpus.jsonl")), Path(tmp))
        return import_beir(ws, folder, artifact_name or name, origin=url, force=force, progress=progress)
