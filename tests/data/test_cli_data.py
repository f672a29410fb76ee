"""`pqlr data`: synth / info / fetch through the real command line entry point."""
import zipfile

import pytest

from pqlr.cli import main
from pqlr.data import download as dl

from .conftest import FSDD, write_tone


def test_synth_and_info(tmp_path, capsys):
    assert main(["data", "synth", "kws_chinese", "--per-class", "2", "--cache-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "kws_chinese: 12 classes" in out and "hey_kimi" in out
    assert main(["data", "info", "kws_chinese:2", "--cache-dir", str(tmp_path)]) == 0
    assert capsys.readouterr().out.splitlines()[0] == out.splitlines()[0]


@pytest.mark.usefixtures("need_real_data")
def test_info_fsdd_holdout(capsys):
    assert main(["data", "info", f"fsdd:{FSDD}", "--holdout-speaker", "nobody"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "unknown speaker 'nobody'" in err and "Traceback" not in err


def test_bad_input_is_one_line(capsys, tmp_path):
    assert main(["data", "info", "mnist:x"]) == 2
    assert main(["data", "synth", "kws_english", "--per-class", "0", "--cache-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 2 and "unknown dataset spec 'mnist:x'" in err[0] and "--per-class" in err[1]
    with pytest.raises(SystemExit):
        main(["data", "synth", "kws_klingon"])


def test_fetch_fsdd_cli(server, tmp_path, monkeypatch, capsys):
    www, url = server
    with zipfile.ZipFile(www / "master.zip", "w") as z:
        for name in ("0_ann_0.wav", "1_bob_3.wav"):
            write_tone(tmp_path / name, rate=8000, seconds=0.2)
            z.write(tmp_path / name, f"fsdd-master/recordings/{name}")
    monkeypatch.setattr(dl, "FSDD_URL", f"{url}/master.zip")
    monkeypatch.setattr(dl, "FSDD_MIN_FILES", 2)
    assert main(["data", "fetch", "fsdd", "--dest", str(tmp_path / "d")]) == 0
    assert "--dataset fsdd:" in capsys.readouterr().out
    assert (tmp_path / "d" / "fsdd-master" / "recordings" / "1_bob_3.wav").is_file()
