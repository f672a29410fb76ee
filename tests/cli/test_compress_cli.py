"""`pqlr-compress`: bad flags and values give one line and exit 2, before any data is touched."""
import subprocess
import sys

import pytest

from pqlr.cli.compress import main

FSDD = "fsdd:../shared/data/fsdd/recordings"


@pytest.mark.parametrize("argv, needle", [
    (["--sparse", "1.2"], "--sparse must be in [0, 1)"),
    (["--wbits", "3"], "3"),
    (["--abits", "5"], "5"),
    (["--rank", "0"], "--rank must be >= 1"),
    (["--model", "resnet9000"], "unknown model 'resnet9000'"),
    (["--teacher", "gpt-9"], "unknown teacher 'gpt-9'"),
    (["--dataset", "fsdd:/nonexistent/fsdd"], "/nonexistent/fsdd"),
    (["--dataset", "imagenet"], "imagenet"),
    (["--output", "model.onnx"], "--output must name a .bin"),
    (["--ram", "lots"], "lots"),
    (["--epochs", "-1"], "--epochs must be >= 0"),
    (["--finetune-lr", "0"], "learning rates must be positive"),
    (["--sparse", "abc"], "invalid float value"),
    (["--target", "esp99"], "unknown hardware profile 'esp99'"),
    (["--target", "esp32-c6", "--ram", "1MB"], "exceeds the SRAM of esp32-c6"),
    (["--model", "tinybert-6l", "--target", "nrf52840", "--sparse", "0", "--wbits", "8"], "nrf52840 has"),
    (["--teacher", "examples/models/resnet8.py:ResNet9"], "resnet8.py defines no 'ResNet9'"),
    (["--model", "README.md:Net"], "a model file must be a Python file, path/to/file.py:ClassName"),
])
def test_bad_input_one_line_exit_2(argv, needle, capsys, tmp_path):
    try:
        code = main([*argv, "--quiet"] + ([] if "--output" in argv else ["--output", str(tmp_path / "m.bin")]))
    except SystemExit as e:          # argparse usage errors
        code = e.code
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert needle in err
    assert len(err.splitlines()) == 1, err
    assert "Traceback" not in err
    assert not (tmp_path / "m.bin").exists()


def test_usage_errors_exit_2_via_console_script(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "pqlr", "compress", "--wbits", "3", "--output", str(tmp_path / "m.bin")],
                          capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr


def test_help_teaches():
    proc = subprocess.run([sys.executable, "-c", "from pqlr.cli.compress import main; main(['--help'])"],
                          capture_output=True, text=True)
    assert proc.returncode == 0
    for flag in ("--sparse", "--wbits", "--rank", "--teacher", "--ram", "--recipe", "--resume"):
        assert flag in proc.stdout
    assert "pqlr-compress --model tinybert --dataset kws_chinese" in proc.stdout


def test_recipe_loading_and_errors(tmp_path):
    from pqlr.pipeline.recipe import load_recipe
    from pqlr.errors import PqlrError

    good = tmp_path / "r.yaml"
    good.write_text("model: ds-cnn-s\nprune: {sparse: 0.5}\nquant: {wbits: 8, abits: 8}\nlowrank: null\n"
                    "distill: {temperature: 4, alpha: 0.5}\nepochs: 2\n")
    cfg = load_recipe(good, epochs=3)
    assert cfg.model == "ds-cnn-s" and cfg.prune.sparse == 0.5 and cfg.quant.wbits == 8
    assert cfg.lowrank is None and cfg.distill.temperature == 4 and cfg.epochs == 3   # flag beats recipe
    for text, needle in [("modle: x\n", "unknown key(s): modle"), ("prune: {sparsity: 0.5}\n", "unknown key(s) in prune"),
                         ("prune: {sparse: 2}\n", "--sparse"), ("- a\n- b\n", "mapping"), ("a: [\n", "not valid YAML")]:
        bad = tmp_path / "bad.yaml"
        bad.write_text(text)
        with pytest.raises(PqlrError, match=needle.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[")):
            load_recipe(bad)


def test_finetune_lr_reaches_the_fine_tuning_phases_only(monkeypatch):
    """--finetune-lr sets the peak lr of prune/QAT/low-rank/distill training; the first training keeps --lr."""
    import argparse

    from pqlr.cli import Parser
    from pqlr.cli.compress import add_arguments, config_from_args
    from pqlr.pipeline import stages

    p = Parser()
    add_arguments(p)
    seen = []
    monkeypatch.setattr(stages, "train", lambda model, data, tc, **kw: seen.append(tc) or argparse.Namespace(accuracy=0.5, seconds=0.0))
    for argv, want in ((["--lr", "0.01"], 0.01 / 3), (["--lr", "0.01", "--finetune-lr", "1e-4"], 1e-4)):
        cfg = config_from_args(p.parse_args(argv))
        ctx = stages.Context(cfg, data=None)
        stages.train_phase(ctx, model=None, epochs=1, finetune=False)
        stages.train_phase(ctx, model=None, epochs=1)
        first, tune = seen[-2:]
        assert first.lr == 0.01 and first.warmup_epochs == 1.0
        assert tune.lr == pytest.approx(want) and tune.warmup_epochs == stages.FINETUNE_WARMUP_EPOCHS
    assert config_from_args(p.parse_args([])).quant.init == "mse"
    assert config_from_args(p.parse_args(["--quant-init", "minmax"])).quant.init == "minmax"


def test_an_undeployable_user_model_fails_before_training(tmp_path, capsys):
    """capture + a dry-run lowering run before any training: an op PQLR cannot deploy is one line
    naming the node, the op and the user's line, in seconds."""
    import time

    f = tmp_path / "mine.py"
    f.write_text("import torch\nimport torch.nn.functional as F\n\n\n"
                 "class Net(torch.nn.Module):\n"
                 "    def __init__(self, n_classes, input_shape):\n"
                 "        super().__init__()\n"
                 "        self.conv = torch.nn.Conv2d(1, 4, 3, padding=1)\n"
                 "        self.fc = torch.nn.Linear(4, n_classes)\n\n"
                 "    def forward(self, x):\n"
                 "        y = F.interpolate(self.conv(x), scale_factor=2)\n"
                 "        return self.fc(y.mean((2, 3)))\n")
    t0 = time.time()
    code = main(["--model", f"{f}:Net", "--dataset", FSDD, "--per-class", "3", "--epochs", "50", "--quiet",
                 "--output", str(tmp_path / "m.bin")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1, err
    assert "node interpolate (mine.py:12: y = F.interpolate(self.conv(x), scale_factor=2))" in err
    assert "interpolate is not supported" in err and "docs/ops.md" in err
    assert time.time() - t0 < 60 and not (tmp_path / "m").exists()


@pytest.mark.parametrize("who", ["--model", "--teacher"])
def test_a_model_with_the_wrong_outputs_fails_before_training(who, tmp_path, capsys, monkeypatch):
    """A classifier must predict one value per class of the data: said before the first epoch, by the
    student and by a teacher alike, and nothing is written or cached."""
    f = tmp_path / "mine.py"
    f.write_text("import torch\n\n\nclass Seven(torch.nn.Module):\n"
                 "    def __init__(self):\n        super().__init__()\n        self.fc = torch.nn.Linear(490, 7)\n\n"
                 "    def forward(self, x):\n        return self.fc(x.flatten(1))\n")
    student = f"{f}:Seven" if who == "--model" else "ds-cnn-s"
    argv = ["--model", student, "--dataset", FSDD, "--per-class", "3", "--quiet", "--output", str(tmp_path / "m.bin")]
    if who == "--teacher":
        argv += ["--teacher", f"{f}:Seven"]
    monkeypatch.setenv("PQLR_CACHE", str(tmp_path / "cache"))
    code = main(argv)
    err = capsys.readouterr().err.strip().splitlines()     # progress lines, then the error
    assert code == 2 and "error" in err[-1] and not any("error" in e or "training" in e for e in err[:-1]), err
    err = err[-1]
    assert "predicts outputs of shape (7,); the dataset has 10 classes (give the model n_classes=10 outputs)" in err
    assert (who == "--teacher") == ("teacher " in err)
    assert not (tmp_path / "m").exists() and not (tmp_path / "cache").exists()
