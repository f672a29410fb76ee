"""Downloads against a local http.server on 127.0.0.1 (never the internet): checksums, safe extraction, fetchers."""
import hashlib
import io
import os
import tarfile
import zipfile

import pytest

from pqlr.data import download as dl
from pqlr.data import load_dataset
from pqlr.errors import PqlrError

from .conftest import write_tone


def _sha(path):
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


def _tar_with(path, files: dict[str, bytes]):
    with tarfile.open(path, "w:gz") as tf:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))


def test_download_and_checksum(server, tmp_path):
    www, url = server
    (www / "blob.bin").write_bytes(os.urandom(3 << 20))
    (tmp_path / "out").mkdir()
    got = dl.download(f"{url}/blob.bin", tmp_path / "out", sha256=_sha(www / "blob.bin"), progress=False)
    assert got == tmp_path / "out" / "blob.bin" and _sha(got) == _sha(www / "blob.bin")
    with pytest.raises(PqlrError, match="SHA-256 .* does not match"):
        dl.download(f"{url}/blob.bin", tmp_path / "bad.bin", sha256="0" * 64, progress=False)
    with pytest.raises(PqlrError, match="got 3145728 bytes, expected 5$"):
        dl.download(f"{url}/blob.bin", tmp_path / "bad.bin", size=5, progress=False)
    assert not (tmp_path / "bad.bin").exists()
    assert [p for p in os.listdir(tmp_path) if p.endswith(".part")] == []      # no partial file left
    with pytest.raises(PqlrError, match="download of .*missing.bin failed"):
        dl.download(f"{url}/missing.bin", tmp_path / "m.bin", progress=False)


def test_extract_tar_and_zip(tmp_path):
    _tar_with(tmp_path / "a.tar.gz", {"top/x.txt": b"x", "top/sub/y.txt": b"yy"})
    dl.extract(tmp_path / "a.tar.gz", tmp_path / "t")
    assert (tmp_path / "t" / "top" / "sub" / "y.txt").read_bytes() == b"yy"
    with zipfile.ZipFile(tmp_path / "a.zip", "w") as z:
        z.writestr("top/z.txt", "zz")
    dl.extract(tmp_path / "a.zip", tmp_path / "z")
    assert (tmp_path / "z" / "top" / "z.txt").read_text() == "zz"
    (tmp_path / "junk.tar.gz").write_bytes(b"not an archive")
    with pytest.raises(PqlrError, match="not a tar or zip"):
        dl.extract(tmp_path / "junk.tar.gz", tmp_path / "j")


@pytest.mark.parametrize("evil", ["../escape.txt", "/tmp/abs_escape.txt", "ok/../../escape.txt"])
def test_extract_rejects_traversal(tmp_path, evil):
    _tar_with(tmp_path / "evil.tar.gz", {"fine.txt": b"ok", evil: b"pwned"})
    with pytest.raises(PqlrError, match="unsafe member path"):
        dl.extract(tmp_path / "evil.tar.gz", tmp_path / "out")
    with zipfile.ZipFile(tmp_path / "evil.zip", "w") as z:
        z.writestr("fine.txt", "ok")
        z.writestr(evil, "pwned")
    with pytest.raises(PqlrError, match="unsafe member path"):
        dl.extract(tmp_path / "evil.zip", tmp_path / "out2")
    assert not (tmp_path / "escape.txt").exists() and not os.path.exists("/tmp/abs_escape.txt")
    assert not (tmp_path / "out" / "fine.txt").exists()                       # checked before writing anything


def test_extract_rejects_links(tmp_path):
    with tarfile.open(tmp_path / "link.tar.gz", "w:gz") as tf:
        info = tarfile.TarInfo("sneaky")
        info.type, info.linkname = tarfile.SYMTYPE, "/etc/passwd"
        tf.addfile(info)
    with pytest.raises(PqlrError, match="links and devices"):
        dl.extract(tmp_path / "link.tar.gz", tmp_path / "out")


def test_fetch_fsdd(server, tmp_path, monkeypatch):
    www, url = server
    src = tmp_path / "src"
    for name in ("0_ann_0.wav", "1_ann_5.wav", "2_bob_12.wav", "3_cy_7.wav"):
        write_tone(src / name, rate=8000, seconds=0.3)
    with zipfile.ZipFile(www / "master.zip", "w") as z:
        z.writestr("free-spoken-digit-dataset-master/README.md", "FSDD")
        for p in sorted(src.iterdir()):
            z.write(p, f"free-spoken-digit-dataset-master/recordings/{p.name}")
    monkeypatch.setattr(dl, "FSDD_URL", f"{url}/master.zip")
    monkeypatch.setattr(dl, "FSDD_MIN_FILES", 4)
    rec = dl.fetch_fsdd(tmp_path / "fsdd", progress=False)
    assert rec == tmp_path / "fsdd" / "free-spoken-digit-dataset-master" / "recordings"
    assert not (tmp_path / "fsdd" / "master.zip").exists()
    data = load_dataset(f"fsdd:{rec}", progress=False)
    assert data.info["sizes"] == {"train": 1, "val": 2, "test": 1}
    with pytest.raises(PqlrError, match="expected at least 10"):
        dl.fetch_fsdd(tmp_path / "fsdd2", url=f"{url}/master.zip", min_files=10, progress=False)


def test_fetch_speech_commands(server, tmp_path):
    www, url = server
    files = {"./validation_list.txt": b"yes/a_nohash_0.wav\n", "./testing_list.txt": b"no/b_nohash_0.wav\n"}
    _tar_with(www / "sc.tar.gz", files)
    out = dl.fetch_speech_commands(tmp_path / "sc", url=f"{url}/sc.tar.gz", sha256=_sha(www / "sc.tar.gz"),
                                   size=os.path.getsize(www / "sc.tar.gz"), progress=False)
    assert (out / "validation_list.txt").read_text() == "yes/a_nohash_0.wav\n"
    _tar_with(www / "other.tar.gz", {"readme.txt": b"hi"})
    with pytest.raises(PqlrError, match="lacks validation_list.txt"):
        dl.fetch_speech_commands(tmp_path / "o", url=f"{url}/other.tar.gz", progress=False)
    # the official constants are what the default fetch would verify
    assert dl.SPEECH_COMMANDS_URL.endswith("speech_commands_v0.02.tar.gz") and len(dl.SPEECH_COMMANDS_SHA256) == 64
