"""The package's shape: imports run one way, with no cycle, and the CLI starts without torch.

The layers, bottom to top (docs/architecture.md draws them):

    version errors files parsing option      the option languages, the declarations and defaults, the
    config signals machine                   stop signals and the machine's memory: no torch
    engine  nets  images device report sweep the shared engine and the building blocks
    stylize           attributes              the two products, which never import each other
    feedforward                               networks trained on the transfer's terms, above stylize
    video             guidance                video: frames held to each other, above stylize (and
                                              feedforward, for --model); guidance: attribute terms in
                                              a transfer, above both
    studio                                    the local web app over a transfer's events: above
                                              stylize and guidance, never imports click
    cluster                                   transfers and videos on a Ray cluster's workers, above
                                              stylize, guidance, feedforward and video
    cli                                       the click commands: nothing imports them
"""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "styleforge"

#: Modules that must import nothing heavy (torch, numpy, PIL), even lazily.
LIGHT = {
    "styleforge",
    "styleforge.version",
    "styleforge.errors",
    "styleforge.files",
    "styleforge.parsing",
    "styleforge.option",
    "styleforge.config",
    "styleforge.signals",
    "styleforge.machine",
    # the guidance's options, which the CLI checks before any heavy import
    "styleforge.guidance",
    "styleforge.guidance.config",
    "styleforge.feedforward",
    "styleforge.feedforward.config",
}
#: package -> the styleforge packages it may never import (at the top or inside a function).
FORBIDDEN = {
    "styleforge.engine": (
        "styleforge.studio",
        "styleforge.feedforward",
        "styleforge.stylize",
        "styleforge.attributes",
        "styleforge.guidance",
        "styleforge.cli",
        "styleforge.nets",
        "styleforge.images",
        "styleforge.report",
        "styleforge.cluster",
    ),
    "styleforge.nets": (
        "styleforge.studio",
        "styleforge.feedforward",
        "styleforge.stylize",
        "styleforge.attributes",
        "styleforge.guidance",
        "styleforge.cli",
        "styleforge.engine",
        "styleforge.cluster",
    ),
    "styleforge.stylize": (
        "styleforge.studio",
        "styleforge.attributes",
        "styleforge.guidance",
        "styleforge.video",
        "styleforge.feedforward",
        "styleforge.cli",
        "styleforge.cluster",
    ),
    # the style losses sit under the transfer's stages: they read features and nothing of a run
    "styleforge.stylize.losses": (
        "styleforge.stylize.run",
        "styleforge.stylize.pyramid",
        "styleforge.stylize.tiled",
        "styleforge.stylize.plan",
        "styleforge.stylize.objective",
        "styleforge.stylize.memory",
        "styleforge.stylize.tiles",
        "styleforge.stylize.regions",
        "styleforge.stylize.extension",
        "styleforge.nets",
        "styleforge.engine",
    ),
    "styleforge.attributes": (
        "styleforge.studio",
        "styleforge.stylize",
        "styleforge.guidance",
        "styleforge.video",
        "styleforge.feedforward",
        "styleforge.cli",
        "styleforge.cluster",
    ),
    # the cluster runs spread the transfers and videos over Ray's workers: above them, below the CLI
    "styleforge.cluster": ("styleforge.cli",),
    # sweep's Ray connection is shared with the cluster runs, which sit far above it
    "styleforge.sweep": (
        "styleforge.stylize",
        "styleforge.guidance",
        "styleforge.video",
        "styleforge.cluster",
        "styleforge.cli",
    ),
    "styleforge.guidance": (
        "styleforge.studio",
        "styleforge.video",
        "styleforge.feedforward",
        "styleforge.cli",
        "styleforge.cluster",
    ),
    "styleforge.video": (
        "styleforge.studio",
        "styleforge.attributes",
        "styleforge.guidance",
        "styleforge.cli",
        "styleforge.cluster",
    ),
    "styleforge.studio": (
        "styleforge.cli",
        "styleforge.attributes",
        "styleforge.video",
        "styleforge.cluster",
    ),
    "styleforge.feedforward": (
        "styleforge.attributes",
        "styleforge.guidance",
        "styleforge.video",
        "styleforge.studio",
        "styleforge.cluster",
        "styleforge.cli",
    ),
}


def _modules() -> dict[str, Path]:
    out = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


MODULES = _modules()


def _is_type_checking(node: ast.AST) -> bool:
    return isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)


def _imports(module: str, *, top_level_only: bool) -> set[str]:
    """The modules ``module`` imports (styleforge's resolved to a module of the package)."""
    path = MODULES[module]
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    tree = ast.parse(path.read_text())
    found: set[str] = set()

    def visit(nodes: list[ast.stmt]) -> None:
        for node in nodes:
            if _is_type_checking(node):
                continue
            if isinstance(node, ast.Import):
                found.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")[: len(package.split(".")) - node.level + 1]
                    stem = ".".join(base + ([node.module] if node.module else []))
                else:
                    stem = node.module or ""
                for alias in node.names:
                    full = f"{stem}.{alias.name}"
                    found.add(full if full in MODULES else stem)
            if top_level_only:
                for field in ("body", "orelse", "handlers", "finalbody"):  # if/try blocks at module level
                    if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                        visit([n for n in getattr(node, field, []) if isinstance(n, ast.stmt)])
            else:
                visit([n for n in ast.iter_child_nodes(node) if isinstance(n, ast.stmt)])
                for child in ast.walk(node):
                    if (
                        isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
                        and child is not node
                    ):
                        visit(child.body)

    visit(tree.body)
    return found


def _internal(names: set[str]) -> set[str]:
    out = set()
    for name in names:
        if name == "styleforge" or name.startswith("styleforge."):
            while name not in MODULES:
                name = name.rpartition(".")[0]
            out.add(name)
    return out


def test_the_import_graph_has_no_cycle() -> None:
    graph = {m: _internal(_imports(m, top_level_only=True)) - {m} for m in MODULES}
    # Tarjan-free check: repeatedly remove modules that import nothing left; what remains is cyclic.
    remaining = dict(graph)
    while True:
        leaves = [m for m, deps in remaining.items() if not deps & remaining.keys()]
        if not leaves:
            break
        for m in leaves:
            del remaining[m]
    assert not remaining, f"import cycle among: {sorted(remaining)}"


def test_no_module_imports_the_package_root() -> None:
    """``__version__`` comes from styleforge.version; the root only re-exports (lazily)."""
    offenders = [
        m
        for m in MODULES
        if m != "styleforge" and "styleforge" in _internal(_imports(m, top_level_only=False))
    ]
    assert not offenders


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_layers_import_one_way(package: str) -> None:
    bad = []
    for module in MODULES:
        if module == package or module.startswith(package + "."):
            for target in _internal(_imports(module, top_level_only=False)):
                if target.startswith(FORBIDDEN[package]):
                    bad.append(f"{module} -> {target}")
    assert not bad, bad


def test_feedforward_reaches_stylize_through_its_adapter_alone() -> None:
    """stylize is being reshaped: what feedforward takes from it passes through feedforward/terms.py."""
    bad = [
        f"{module} -> {target}"
        for module in MODULES
        if module.startswith("styleforge.feedforward") and module != "styleforge.feedforward.terms"
        for target in _internal(_imports(module, top_level_only=False))
        if target.startswith("styleforge.stylize")
    ]
    assert not bad, bad


def test_nothing_imports_the_cli() -> None:
    bad = [
        m
        for m in MODULES
        if not m.startswith("styleforge.cli")
        and m != "styleforge.__main__"
        and any(t.startswith("styleforge.cli") for t in _internal(_imports(m, top_level_only=False)))
    ]
    assert not bad


@pytest.mark.parametrize("module", sorted(LIGHT))
def test_the_bottom_layer_imports_nothing_heavy(module: str) -> None:
    heavy = {n.partition(".")[0] for n in _imports(module, top_level_only=False)} & {
        "torch",
        "numpy",
        "PIL",
        "click",
    }
    assert not heavy
    assert _internal(_imports(module, top_level_only=False)) <= LIGHT


_NO_TORCH = """
import sys
from click.testing import CliRunner
from styleforge.cli import cli
runner = CliRunner()
for args in ARGS:
    result = runner.invoke(cli, args)
    print(result.exit_code, (result.output.strip().splitlines() or [""])[-1])
print("torch" in sys.modules, "numpy" in sys.modules)
"""

_CLI_CASES = [
    ["--help"],
    ["--version"],
    ["transfer", "--help"],
    ["train-attrs", "--help"],
    ["score", "--help"],
    ["sweep", "transfer", "--help"],
    ["video", "--help"],
    ["train-stylizer", "--help"],
    ["transfer", "c.jpg", "--style", "s.jpg", "-o", "out.png", "--style-loss", "nope"],
    ["transfer", "c.jpg", "--style", "s.jpg:-1", "-o", "out.png"],
    ["transfer", "c.jpg", "--style", "s.jpg", "-o", "out.png", "--optimizer", "adam:0"],
    ["transfer", "c.jpg", "--style", "s.jpg", "-o", "out.png", "--size", "big"],
    ["train-attrs", "-o", "run", "--backbone", "nope"],
    ["train-stylizer", "--data", "d", "--style", "s.jpg", "-o", "run", "--style-loss", "nope"],
    ["video", "clip.mp4", "--style", "s.jpg", "-o", "out.mp4", "--temporal-weight", "-1"],
]


def _run_cli_cases(python: str, env: dict[str, str]) -> list[str]:
    code = _NO_TORCH.replace("ARGS", repr(_CLI_CASES))
    done = subprocess.run(
        [python, "-c", code], capture_output=True, text=True, env=env, cwd=ROOT, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip().splitlines()


def _check_cli_lines(lines: list[str]) -> None:
    codes = [int(line.split(" ", 1)[0]) for line in lines[:-1]]
    assert codes == [0] * 8 + [2] * 7, lines
    assert all(line.split(" ", 1)[1].startswith("error: ") for line in lines[8:-1]), lines
    assert "--style-loss" in lines[8] and "--style" in lines[9] and "--optimizer" in lines[10]
    assert "--style-loss" in lines[-3] and "--temporal-weight" in lines[-2]
    assert lines[-1] == "False False", "torch or numpy was imported"


def test_help_and_argument_errors_do_not_import_torch() -> None:
    _check_cli_lines(_run_cli_cases(sys.executable, dict(os.environ)))


def _python310() -> str | None:
    for candidate in [
        shutil.which("python3.10"),
        *sorted(Path("/root/.pyenv/versions").glob("3.10*/bin/python3.10")),
    ]:
        if candidate and subprocess.run([str(candidate), "-c", "pass"], capture_output=True).returncode == 0:
            return str(candidate)
    return None


@pytest.fixture(scope="module")
def python310(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A Python 3.10 venv with the CLI's torch-free dependencies (click, tomli), or a skip."""
    python = _python310()
    if python is None:
        pytest.skip("no Python 3.10 interpreter on this machine")
    where = tmp_path_factory.mktemp("py310") / "venv"
    subprocess.run([python, "-m", "venv", str(where)], check=True, capture_output=True)
    target = str(where / "bin" / "python")
    pip = subprocess.run(
        [target, "-m", "pip", "install", "--quiet", "click>=8.1", "tomli>=1.1"],
        capture_output=True,
        text=True,
    )
    if pip.returncode != 0:
        pytest.skip(
            f"could not install click and tomli for Python 3.10: {pip.stderr.strip().splitlines()[-1:]}"
        )
    return target


def test_python_3_10_compiles_every_module(python310: str) -> None:
    """The oldest Python pyproject.toml promises: every file's syntax (torch has no 3.10 build here)."""
    done = subprocess.run(
        [python310, "-m", "compileall", "-q", "-d", "x", str(PACKAGE)],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPYCACHEPREFIX": str(Path(python310).parents[1] / "pyc")},
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_python_3_10_runs_the_cli_start_and_reads_toml(python310: str, tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    _check_cli_lines(_run_cli_cases(python310, env))
    toml = tmp_path / "run.toml"
    toml.write_text('[transfer]\nsize = 96\nstyle-loss = "nope"\n')
    code = (
        "from click.testing import CliRunner; from styleforge.cli import cli; "
        "r = CliRunner().invoke(cli, ['transfer', 'c.jpg', '--style', 's.jpg', '-o', 'o.png', "
        f"'--config', {str(toml)!r}]); "
        "print(r.exit_code, r.output.strip())"
    )
    done = subprocess.run([python310, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("2 error: --style-loss: 'nope'"), done.stdout
