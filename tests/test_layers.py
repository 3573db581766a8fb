"""Dependencies point one way (shared/DESIGN.md): a package imports only packages of lower layers.

Entry points (a package's __main__, run.py, recommend.py, submission/write.py, and the body of a
module's `main()`) parse arguments, load one config and call a stage, so they may import anything.
Every other import, at module level or inside a function, is checked."""
import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LAYERS = {  # lower number = earlier in the data flow MPD -> artifacts -> models -> scores -> submission
    "common": 0,
    "preprocess": 1,
    "mmcf": 2, "submission": 2,
    "charcnn": 3,  # MMCF's title model, trained against the autoencoders
    "sources": 3,  # every candidate model; the sequence model borrows the autoencoders' vocabulary rule
    "ensemble": 4,  # the reranker takes the sources' lists
    "report": 5,
    "pipeline": 6,
}
ENTRY_MODULES = {"submission.write"}  # run.py and recommend.py sit outside the layered packages


def _modules():
    for path in sorted(ROOT.rglob("*.py")):
        rel = path.relative_to(ROOT)
        if rel.parts[0] in LAYERS:
            yield ".".join(rel.with_suffix("").parts), path


def _checked_imports(tree: ast.AST):
    """(line, imported top-level package) outside `main()` functions."""
    skip: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef) and node.name == "main":
            skip |= {id(n) for n in ast.walk(node)}
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.lineno, node.module.split(".")[0]
        elif isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name.split(".")[0]


@pytest.mark.parametrize("module,path", list(_modules()), ids=lambda v: v if isinstance(v, str) else "")
def test_no_import_from_a_later_stage(module, path):
    package = module.split(".")[0]
    if module in ENTRY_MODULES or module.endswith(".__main__"):
        return
    bad = [f"line {line}: {package} (layer {LAYERS[package]}) imports {dep} (layer {LAYERS[dep]})"
           for line, dep in _checked_imports(ast.parse(path.read_text()))
           if dep in LAYERS and dep != package and LAYERS[dep] >= LAYERS[package]]
    assert not bad, f"{path.relative_to(ROOT)}: " + "; ".join(bad)


def test_the_checker_sees_a_backward_import(tmp_path):
    tree = ast.parse("from pipeline.stages import x\n\ndef main():\n    import ensemble\n\ndef f():\n    import report\n")
    assert sorted(dep for _, dep in _checked_imports(tree)) == ["pipeline", "report"]
    assert len(list(_modules())) > 40  # every package's modules are checked


LIGHT_COMMANDS = ["run", "recommend", "preprocess.build", "preprocess.challenge", "sources.__main__",
                  "submission.write", "submission.evaluate"]


def test_commands_that_never_train_do_not_import_torch():
    """Reading a config and the registry must stay light: importing torch costs about a second and
    200 MB at every start (preprocess.build's 20K run was 4.7 s with it, 3.7 s without)."""
    import subprocess
    import sys

    code = (f"import importlib, sys; [importlib.import_module(m) for m in {LIGHT_COMMANDS!r}]; "
            "print(sorted(m for m in ('torch', 'lightgbm', 'implicit') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", f"heavy libraries imported at start-up: {out.stdout.strip()}"
