"""Test-suite set-up: one torch thread per test process (the suite runs two processes on two cores;
more threads than cores makes every training step many times slower on a shared machine)."""
import pytest
import torch

torch.set_num_threads(1)


EXAMPLES = __import__("pathlib").Path(__file__).resolve().parents[1] / "examples" / "models"


@pytest.fixture(scope="session")
def example():
    """example(file, cls, **kw): a model of examples/models/<file>.py, built as the pipeline builds
    a user's model (pqlr.models.zoo.load_user_model) with the class's own defaults."""
    import importlib.util

    def make(file: str, cls: str, **kw):
        spec = importlib.util.spec_from_file_location(f"example_{file}", EXAMPLES / f"{file}.py")
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        return getattr(mod, cls)(**kw)
    return make
