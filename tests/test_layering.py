"""The source tree's data flow: cli -> pipeline -> techniques (compress), deploy, hw, train, models
-> capture, ir, data, runtime -> primitives / io / errors. Every import between PQLR's packages
must follow an allowed edge, and none may hide in a function body (a function-level import that
hides a cycle is a cycle; only the CLI defers imports, to keep `--help` fast)."""
from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "pqlr"
BASE = {"errors", "io", "primitives"}
ALLOWED = {
    "pipeline": {"compress", "deploy", "hw", "train", "models", "capture", "ir", "data", "runtime"},
    "compress": {"capture", "ir"},
    "deploy": {"hw", "ir", "data", "runtime"},
    "hw": {"runtime"},
    "train": {"data"},
    "models": {"capture"},
    "capture": set(),
    "ir": set(),
    "data": set(),
    "runtime": set(),
    "primitives": set(), "io": set(), "errors": set(),
}


def _imports(path: Path):
    """(package of this file, [(imported package, inside a function?)]) for relative imports."""
    rel = path.relative_to(SRC)
    pkg = rel.parts[0].removesuffix(".py")
    tree = ast.parse(path.read_text())
    in_fn = {id(n) for f in ast.walk(tree) if isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef))
             for n in ast.walk(f) if isinstance(n, ast.ImportFrom)}
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level:
            here = list(rel.parts[:-1])
            base = here[:len(here) - (node.level - 1)]
            target = base + (node.module.split(".") if node.module else [node.names[0].name])
            out.append((target[0].removesuffix(".py"), id(node) in in_fn))
    return pkg, out


def test_packages_import_only_downwards():
    bad = []
    for path in sorted(SRC.rglob("*.py")):
        pkg, imports = _imports(path)
        if pkg in ("cli", "__main__", "__init__"):
            continue
        for target, _ in imports:
            if target != pkg and target not in BASE and target not in ALLOWED.get(pkg, set()):
                bad.append(f"{path.relative_to(SRC)} imports {target}")
    assert not bad, "imports against the data flow:\n" + "\n".join(bad)


def test_no_function_level_imports_between_modules():
    bad = [f"{path.relative_to(SRC)} defers an import of {target}"
           for path in sorted(SRC.rglob("*.py")) for pkg, imports in [_imports(path)] if pkg != "cli"
           for target, deferred in imports if deferred]
    assert not bad, "\n".join(bad)
