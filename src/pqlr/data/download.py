"""Dataset downloads: streamed HTTP(S) with checksum check, safe archive extraction, the two public KWS sets.

`download` streams to a temp file beside the target, hashing on the way; a size or SHA-256 mismatch
deletes it and raises PqlrError. `extract` refuses archives whose members would land outside the
target folder (absolute paths, `..`, links, devices) before writing anything.
"""
from __future__ import annotations

import hashlib
import os
import tarfile
import tempfile
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from pathlib import Path, PurePosixPath

from tqdm import tqdm

from ..errors import PqlrError

# Speech Commands v0.02 (Warden 2018), CC BY 4.0. SHA-256 and size as published in the checksum
# tables of TensorFlow Datasets and torchaudio for this exact URL.
SPEECH_COMMANDS_URL = "http://download.tensorflow.org/data/speech_commands_v0.02.tar.gz"
SPEECH_COMMANDS_SHA256 = "af14739ee7dc311471de98f5f9d2c9191b18aedfe957f4a6ff791c709868ff58"
SPEECH_COMMANDS_BYTES = 2_428_923_189
# Free Spoken Digit Dataset, CC BY-SA 4.0. GitHub's generated archives carry no stable checksum,
# so `fetch_fsdd` checks the structure instead: recordings/{digit}_{speaker}_{index}.wav.
FSDD_URL = "https://github.com/Jakobovski/free-spoken-digit-dataset/archive/refs/heads/master.zip"
FSDD_MIN_FILES = 3000              # 6 speakers x 10 digits x 50
CHUNK = 1 << 20


def download(url: str, dest, sha256: str | None = None, progress: bool = True, size: int | None = None,
             timeout: float = 60.0) -> Path:
    """Stream `url` to `dest` (a file path, or an existing folder to put the URL's file name in).

    Verifies `sha256` (hex) and `size` (bytes) when given; on mismatch nothing is left at `dest`.
    """
    dest = Path(dest)
    if dest.is_dir():
        name = os.path.basename(urllib.parse.urlparse(url).path)
        if not name:
            raise PqlrError(f"{url}: cannot tell a file name; give a file path as dest")
        dest = dest / name
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
    digest = hashlib.sha256()
    got = 0
    try:
        try:
            with urllib.request.urlopen(url, timeout=timeout) as resp, os.fdopen(fd, "wb") as out:
                total = resp.headers.get("Content-Length")
                bar = tqdm(total=int(total) if total else None, unit="B", unit_scale=True,
                           desc=dest.name, disable=not progress)
                with bar:
                    while chunk := resp.read(CHUNK):
                        out.write(chunk)
                        digest.update(chunk)
                        got += len(chunk)
                        bar.update(len(chunk))
        except (urllib.error.URLError, OSError, ValueError) as e:
            raise PqlrError(f"download of {url} failed: {getattr(e, 'reason', None) or e}") from None
        if size is not None and got != size:
            raise PqlrError(f"{url}: got {got} bytes, expected {size}")
        if sha256 is not None and digest.hexdigest() != sha256.lower():
            raise PqlrError(f"{url}: SHA-256 {digest.hexdigest()} does not match the expected {sha256.lower()}")
        os.replace(tmp, dest)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return dest


def _check_member(name: str, root: Path, archive) -> Path:
    """Where member `name` would land; PqlrError if that is outside `root`."""
    p = PurePosixPath(name.replace("\\", "/"))
    if p.is_absolute() or ".." in p.parts or (p.parts and ":" in p.parts[0]):
        raise PqlrError(f"{archive}: unsafe member path {name!r} (outside the target folder)")
    target = (root / Path(*p.parts)).resolve() if p.parts else root
    if target != root and root not in target.parents:
        raise PqlrError(f"{archive}: unsafe member path {name!r} (outside the target folder)")
    return target


def extract(archive, dest) -> Path:
    """Extract a .tar(.gz|.bz2|.xz) or .zip into folder `dest`, after checking every member is safe."""
    archive, dest = Path(archive), Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    root = dest.resolve()
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as z:
            for info in z.infolist():
                _check_member(info.filename, root, archive)
                if (info.external_attr >> 16) & 0o170000 == 0o120000:
                    raise PqlrError(f"{archive}: refusing symlink member {info.filename!r}")
            z.extractall(root)
        return dest
    try:
        tf = tarfile.open(archive, "r:*")
    except (tarfile.TarError, OSError) as e:
        raise PqlrError(f"{archive}: not a tar or zip archive ({e})") from None
    with tf:
        members = tf.getmembers()
        for m in members:
            _check_member(m.name, root, archive)
            if not (m.isfile() or m.isdir()):
                raise PqlrError(f"{archive}: refusing member {m.name!r} (links and devices are not extracted)")
        tf.extractall(root, members=members, filter="data")
    return dest


def _fetch(url: str, dest, sha256, size, progress, keep_archive: bool) -> Path:
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    archive = download(url, dest, sha256=sha256, size=size, progress=progress)
    try:
        extract(archive, dest)
    finally:
        if not keep_archive and archive.exists():
            archive.unlink()
    return dest


def fetch_speech_commands(dest, url: str | None = None, sha256: str | None = None, size: int | None = None,
                          progress: bool = True, keep_archive: bool = False) -> Path:
    """Download and unpack Speech Commands v0.02 (2.4 GB) into `dest`; returns the dataset folder.
    url/sha256/size default to the official archive's (SPEECH_COMMANDS_*)."""
    if url is None:
        url, sha256, size = SPEECH_COMMANDS_URL, SPEECH_COMMANDS_SHA256, SPEECH_COMMANDS_BYTES
    dest = _fetch(url, dest, sha256, size, progress, keep_archive)
    for need in ("validation_list.txt", "testing_list.txt"):
        if not (dest / need).is_file():
            raise PqlrError(f"{dest}: unpacked archive lacks {need}; not a Speech Commands archive")
    return dest


def fetch_fsdd(dest, url: str | None = None, sha256: str | None = None, progress: bool = True,
               keep_archive: bool = False, min_files: int | None = None) -> Path:
    """Download the FSDD GitHub archive into `dest`; returns its `recordings` folder, checked to hold
    >= min_files (default FSDD_MIN_FILES) `{digit}_{speaker}_{index}.wav` files."""
    import re

    min_files = FSDD_MIN_FILES if min_files is None else min_files
    dest = _fetch(url or FSDD_URL, dest, sha256, None, progress, keep_archive)
    found = sorted(p for p in dest.rglob("recordings") if p.is_dir())
    if not found:
        raise PqlrError(f"{dest}: unpacked archive has no recordings/ folder; not FSDD")
    rec = found[0]
    wavs = [p for p in rec.iterdir() if re.fullmatch(r"\d_[A-Za-z0-9]+_\d+\.wav", p.name)]
    if len(wavs) < min_files:
        raise PqlrError(f"{rec}: {len(wavs)} recordings, expected at least {min_files}")
    return rec

