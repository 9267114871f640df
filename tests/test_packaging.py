"""What a user installs is what the tests test.

The first release passed CI while `pip install .` shipped without the app's screens, because the tests
imported the checkout. These tests fail when the modules come from the checkout, when the installed
files or the wheel miss a module or data file of the source tree, when the console script is gone,
and when a project module's ImportError is turned into a friendly message.
"""

from __future__ import annotations

import ast
import importlib.metadata
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]  # the checkout: read as files only, never imported
TOP_LEVEL = ("sdd_tui",)  # the one top-level package: the engine and presets live inside it
DATA_SUFFIXES = (".py", ".toml", ".tcss", ".css", ".json", ".html")
USER_CODE = "<a plugin module of the user's>"  # core/plugins.py: a missing one is a one-line error
OPTIONAL_EXTRAS = {"ray", "pynvml", "pandas", "numpy", USER_CODE}  # may be missing: a one-line error names the fix
HEAVY = ("torch", "ray", "matplotlib", "sklearn")


def source_files() -> set[str]:
    """Every module and data file of the package, as 'sdd_tui/core/history/store.py'."""
    found = set()
    for top in TOP_LEVEL:
        for path in (REPO / top).rglob("*"):
            if path.is_file() and "__pycache__" not in path.parts and path.suffix in DATA_SUFFIXES:
                found.add(path.relative_to(REPO).as_posix())
    return found


def test_the_tests_import_the_installed_package_not_the_checkout():
    import sdd_tui
    from sdd_tui import core, presets

    for module in (core, presets, sdd_tui):
        where = Path(module.__file__).resolve()
        # a venv inside the checkout (CI's `.venv`) is fine: what must not happen is the source folder itself
        assert (REPO / module.__name__.replace(".", "/")) not in where.parents, (
            f"{module.__name__} was imported from the checkout ({where}); install the project "
            f"(pip install '.[test]') and run the venv's `pytest`, not `python -m pytest` in the checkout")


def test_every_source_module_and_data_file_is_installed():
    installed = {f.as_posix() for f in importlib.metadata.files("sdd-tui") or []}
    missing = sorted(source_files() - installed)
    assert not missing, f"installed package lacks {missing}; fix [tool.setuptools] in pyproject.toml"


@pytest.mark.slow
def test_the_wheel_holds_every_source_module_and_data_file(tmp_path):
    if not (REPO / "pyproject.toml").exists():
        pytest.fail(f"no checkout at {REPO} to build a wheel from")
    # a copy without build/ and *.egg-info: a stale build folder must not hide a missing package
    source = tmp_path / "src"
    for top in TOP_LEVEL:
        shutil.copytree(REPO / top, source / top, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO / name, source / name)
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(tmp_path), str(source)],
                           capture_output=True, text=True)
    assert built.returncode == 0, built.stderr[-2000:]
    (wheel,) = tmp_path.glob("sdd_tui-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    missing = sorted(source_files() - names)
    assert not missing, f"the wheel lacks {missing}; fix [tool.setuptools] in pyproject.toml"


def test_no_project_import_error_is_turned_into_a_message():
    """Only an optional extra's ImportError may become a message; a missing project module must crash.

    Offenders: an `except ImportError` around anything but imports of optional extras, and a broad
    `except Exception` (or bare) around an import of the project's own modules.
    """
    offenders = []
    for relative in sorted(source_files()):
        if not relative.endswith(".py"):
            continue
        tree = ast.parse((REPO / relative).read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if not isinstance(node, ast.Try):
                continue
            imported = {name.split(".")[0] for stmt in node.body for name in _imported_names(stmt)}
            caught = {name for handler in node.handlers for name in _caught(handler)}
            if caught & {"ImportError", "ModuleNotFoundError"} and (not imported or not imported <= OPTIONAL_EXTRAS):
                offenders.append(f"{relative}:{node.lineno} turns ImportError of {sorted(imported) or 'a call'} "
                                 "into something else")
            elif caught & {"Exception", "BaseException", "*"} and imported & set(TOP_LEVEL):
                offenders.append(f"{relative}:{node.lineno} catches every error of importing {sorted(imported)}")
    assert not offenders, offenders


def _caught(handler: ast.ExceptHandler) -> set[str]:
    if handler.type is None:
        return {"*"}
    names = handler.type.elts if isinstance(handler.type, ast.Tuple) else [handler.type]
    return {getattr(n, "id", getattr(n, "attr", "?")) for n in names}


def _imported_names(stmt: ast.stmt) -> list[str]:
    names = []
    for node in ast.walk(stmt):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level:
            names.append("sdd_tui")  # `from .store import Store` inside the package: the project's own
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.append(node.module)
        elif isinstance(node, ast.Call) and node.args and (getattr(node.func, "id", None) == "__import__"
                                                           or getattr(node.func, "attr", None) == "import_module"):
            argument = node.args[0]  # a name in the code, or a user's plugin module held in a variable
            names.append(argument.value if isinstance(argument, ast.Constant) else USER_CODE)
    return names


def console_script() -> Path:
    script = Path(sys.executable).parent / "sdd-tui"
    assert script.exists(), f"no console script at {script}: the project is not installed in this environment"
    return script


def test_version_from_the_console_script_is_the_distribution_version(tmp_path):
    shown = subprocess.run([str(console_script()), "--version"], capture_output=True, text=True, cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.strip() == f"sdd-tui {importlib.metadata.version('sdd-tui')}"


def test_install_completion_writes_a_bash_completion(tmp_path):
    env = {**os.environ, "HOME": str(tmp_path), "SHELL": "/bin/bash"}
    done = subprocess.run([str(console_script()), "--install-completion", "bash"], capture_output=True, text=True,
                          env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    written = (tmp_path / ".bashrc").read_text() + "".join(
        p.read_text() for p in tmp_path.rglob("*") if p.is_file() and p.name != ".bashrc")
    assert "_SDD_TUI_COMPLETE" in written


QUICK_PROBE = ("import sys\nfrom typer.testing import CliRunner\nfrom sdd_tui.cli import app\n"
               "result = CliRunner().invoke(app, sys.argv[1:])\nassert result.exit_code == 0, result.output\n"
               f"print(sorted({{m.split('.')[0] for m in sys.modules}} & set({HEAVY!r}) | {{'sdd_tui.core.config'}} & set(sys.modules)))")


def imported_heavy(command: list[str], cwd: Path) -> str:
    """The heavy modules `sdd-tui COMMAND` imported, as the printed list ('[]': none)."""
    shown = subprocess.run([sys.executable, "-P", "-c", QUICK_PROBE, *command], capture_output=True, text=True,
                           env=os.environ, cwd=cwd)
    assert shown.returncode == 0, shown.stderr[-2000:]
    return shown.stdout.strip().splitlines()[-1]


@pytest.mark.parametrize("command", [["--help"], ["presets"], ["runs"]])
def test_quick_commands_import_no_heavy_library(command, home, tmp_path):
    """`--help`, `presets` and `runs` answer in a fraction of a second: no torch, Ray, matplotlib, sklearn,
    and no config models built (sdd_tui.core.config's pydantic models cost about 0.2 s)."""
    assert imported_heavy(command, tmp_path) == "[]"


@pytest.mark.slow
def test_runs_and_runs_show_of_a_stored_run_import_no_heavy_library(home, tmp_path, run_experiment, smoke_config):
    run_id, status, _ = run_experiment(smoke_config(), home)
    assert status == "finished"
    for command in (["runs"], ["runs", "show", run_id], ["runs", "--where", "noise.rate=0.2"]):
        assert imported_heavy(command, tmp_path) == "[]", command


MODEL_PROBE = """
import sys
import sdd_tui.core.engine.experiment
from sdd_tui.core.config import ModelConfig
from sdd_tui.core.engine.models import build_model
build_model(ModelConfig(name="mlp", hidden=[8]), (64,), 10, seed=0)
print("mlp", "torchvision.models" in sys.modules)
model = build_model(ModelConfig(name="resnet18", width=0.0625), (3, 8, 8), 10, seed=0)
print("resnet18", "torchvision.models" in sys.modules, type(model).__name__)
"""


@pytest.mark.slow
def test_an_mlp_run_imports_no_torchvision_models(tmp_path):
    """`torchvision.models` imports torch._dynamo (about 2 s): a run of an MLP (each member process of an
    MLP sweep) never pays it; a ResNet still gets torchvision's blocks."""
    shown = subprocess.run([sys.executable, "-P", "-c", MODEL_PROBE], capture_output=True, text=True, cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr[-2000:]
    assert shown.stdout.split() == ["mlp", "False", "resnet18", "True", "CifarResNet"], shown.stdout


USERS_WORLD = {  # a research repository's own top-level packages, with the names sdd-tui once installed
    "core/__init__.py": "WHOSE = 'the user'\n",
    "core/errors.py": "raise ImportError('sdd-tui imported the user\\'s own core.errors')\n",
    "core/config.py": "raise ImportError('sdd-tui imported the user\\'s own core.config')\n",
    "presets/__init__.py": "raise ImportError('sdd-tui imported the user\\'s own presets')\n",
    "myplugin.py": ("import torch\nfrom core import WHOSE\n\n"
                    "def vectors(data):\n    assert WHOSE == 'the user'\n"
                    "    x = torch.randn(96, 16, generator=torch.Generator().manual_seed(0))\n"
                    "    y = torch.arange(96) % 4\n    return x[:64], y[:64], x[64:], y[64:]\n"),
}


@pytest.mark.slow
def test_the_package_lives_beside_a_users_own_core_and_presets(tmp_path):
    """From a folder with its own `core/` and `presets/` (common in research code), every way in works,
    and the user's packages are theirs: sdd-tui never imports them, a plugin still can."""
    for name, text in USERS_WORLD.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    env = {**os.environ, "SDD_TUI_HOME": str(tmp_path / "home")}

    def run(*command: str) -> subprocess.CompletedProcess:
        done = subprocess.run(command, capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300)
        assert done.returncode == 0, f"{command}: {done.stdout[-1000:]}{done.stderr[-2000:]}"
        return done

    run(str(console_script()), "--preset", "smoke")
    run(str(console_script()), "--preset", "smoke", "--set", "data.name=myplugin:vectors")
    # `python -c` and `python -m` put the working directory first on sys.path, as a notebook there does
    rows = run(sys.executable, "-c", "from sdd_tui import load_runs; print(len({r['run_id'] for r in load_runs()}))")
    assert rows.stdout.split()[-1] == "2"
    assert "sdd-tui" in run(sys.executable, "-m", "sdd_tui", "--help").stdout


def test_the_distribution_installs_no_top_level_name_but_sdd_tui():
    tops = {f.parts[0] for f in importlib.metadata.files("sdd-tui") or [] if f.parts[0] != ".."}  # ../bin/sdd-tui
    assert {t for t in tops if not t.endswith(".dist-info")} == {"sdd_tui"}, tops
