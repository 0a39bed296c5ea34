"""The library API (what the CLI and, next, `fedfina serve` call), without the CLI."""

from pathlib import Path

import fedfina_cli

from .conftest import HINDI, HINDI_ID, load_sample


def test_process_runs_the_pipeline_and_records_it(workspace):
    settings = fedfina_cli.load_settings()
    job = fedfina_cli.Job(HINDI_ID, payload=load_sample(HINDI), label="test")
    seen = []
    outcomes = fedfina_cli.process([job], settings, on_done=seen.append)
    assert [o.status for o in outcomes] == ["completed"] and seen == outcomes
    assert outcomes[0].ran == ["fetch", "summarize", "report", "email"]
    assert workspace.rows("select status, claimed_by from conversation_processing") == [
        {"status": "completed", "claimed_by": None}]
    assert workspace.rows("select command from runs") == [{"command": "library"}]
    again = fedfina_cli.process([job], settings)  # done stages are skipped, no second email
    assert again[0].skipped == ["fetch", "summarize", "report", "email"] and len(workspace.emails()) == 1


def test_the_cli_layers_stay_below_it():
    """Nothing below cli/ imports typer or rich: the server uses the same library."""
    root = Path(fedfina_cli.__file__).parent
    for path in root.rglob("*.py"):
        if path.parent.name == "cli":
            continue
        text = path.read_text(encoding="utf-8")
        for library in ("typer", "rich"):
            assert f"import {library}" not in text and f"from {library}" not in text, (path, library)


FLOORS = {"cli": 5, "server": 4, "pipeline": 3, "ledger": 2, "services": 2, "mail": 2, "report": 2, "core": 1}


def _imports(root: Path) -> dict[str, set[str]]:
    """Each module of the package (dotted name) and the package modules it imports, anywhere in it."""
    import ast

    found: dict[str, set[str]] = {}
    for path in root.rglob("*.py"):
        module = ".".join(("fedfina_cli", *path.relative_to(root).with_suffix("").parts)).removesuffix(".__init__")
        names: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("fedfina_cli"):
                names.add(node.module)
            elif isinstance(node, ast.Import):
                names.update(a.name for a in node.names if a.name.startswith("fedfina_cli"))
        found[module] = names
    return found


def test_imports_go_down_the_floors_only():
    """cli -> server -> pipeline -> ledger, services, mail, report -> core: nothing reaches up
    (the package root is the library API above them all; lower floors take facts from core.meta)."""
    root = Path(fedfina_cli.__file__).parent
    upward = []
    for module, names in _imports(root).items():
        parts = module.split(".")
        if len(parts) < 3:
            continue  # the package root re-exports the library API
        for name in names:
            target = name.split(".")
            floor = FLOORS.get(target[1]) if len(target) > 1 else 6  # the root: above everything
            if floor is not None and floor > FLOORS[parts[1]]:
                upward.append(f"{module} imports {name}")
    assert upward == []


def _module_level_imports(root: Path) -> dict[str, set[str]]:
    """Each module's package imports made when it is imported (not inside functions or TYPE_CHECKING)."""
    import ast

    found: dict[str, set[str]] = {}
    for path in root.rglob("*.py"):
        module = ".".join(("fedfina_cli", *path.relative_to(root).with_suffix("").parts)).removesuffix(".__init__")
        names: set[str] = set()
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("fedfina_cli"):
                names.add(node.module)  # and each name, which may be a module: from fedfina_cli.core import x
                names.update(f"{node.module}.{alias.name}" for alias in node.names)
            elif isinstance(node, ast.Import):
                names.update(a.name for a in node.names if a.name.startswith("fedfina_cli"))
        found[module] = names
    return {module: {n for n in names if n in found and n != module} for module, names in found.items()}


def test_no_import_cycle_outside_the_cli():
    """cli/ registers its commands by importing app.py from each command module; nowhere else does a
    module import, at import time, a module that imports it back."""
    graph = {m: deps for m, deps in _module_level_imports(Path(fedfina_cli.__file__).parent).items()
             if not m.startswith("fedfina_cli.cli") and m != "fedfina_cli"}
    cycles = []

    def visit(module: str, path: list[str]) -> None:
        for dep in sorted(graph.get(module, ())):
            if dep in path:
                cycles.append(" -> ".join([*path[path.index(dep):], dep]))
            elif dep in graph and dep not in done:
                visit(dep, [*path, dep])
        done.add(module)

    done: set[str] = set()
    for module in sorted(graph):
        if module not in done:
            visit(module, [module])
    assert cycles == []


def test_other_commands_do_not_import_the_server_libraries():
    """FastAPI, uvicorn and prometheus-client cost start-up time: only `serve` imports them."""
    import subprocess
    import sys

    code = ("import sys\nfrom fedfina_cli.cli.app import app\n"
            "try:\n    app(['--help'])\nexcept SystemExit:\n    pass\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in "
            "('fastapi', 'uvicorn', 'prometheus_client', 'starlette')))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip().splitlines()[-1] == "[]"


def test_opening_an_up_to_date_sqlite_ledger_does_not_import_sqlite_utils(tmp_path):
    """sqlite-utils (with pluggy and dateutil) is 40 ms of every process: only a ledger that
    needs a migration, or asks for ``ledger.db``, imports it."""
    import subprocess
    import sys

    code = ("import sys\nfrom pathlib import Path\nfrom fedfina_cli.ledger.ledger import Ledger\n"
            "path = Path(sys.argv[1])\n"
            "Ledger(path).close()\nprint('first', 'sqlite_utils' in sys.modules)\n"
            "del sys.modules['sqlite_utils']\n"
            "Ledger(path).close()\nLedger(path, read_only=True).close()\n"
            "print('again', 'sqlite_utils' in sys.modules)\n")
    result = subprocess.run([sys.executable, "-c", code, str(tmp_path / "l.db")], capture_output=True, text=True,
                            check=True)
    assert result.stdout.split() == ["first", "True", "again", "False"]


def test_a_report_worker_re_running_the_command_script_does_not_import_the_cli():
    """multiprocessing's spawn re-runs the script that started the parent (the installed
    `fedfina`) in each report worker, as __mp_main__, without calling main(): that must not
    import the CLI (typer, rich, every command's module; about 0.13 s of CPU a run)."""
    import subprocess
    import sys
    from pathlib import Path

    script = Path(sys.executable).parent / "fedfina"
    assert script.is_file(), "the installed fedfina command"
    code = ("import runpy, sys\n"
            "runpy.run_path(sys.argv[1], run_name='__mp_main__')  # as multiprocessing.spawn does\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('typer', 'rich', 'click')"
            " or m.startswith('fedfina_cli.cli')))")
    result = subprocess.run([sys.executable, "-c", code, str(script)], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_the_fedfina_command_collects_garbage_less_often_than_python_by_default():
    """core/collector.py: set by the installed command before any command runs."""
    import subprocess
    import sys
    from pathlib import Path

    from fedfina_cli.core.collector import THRESHOLDS

    script = Path(sys.executable).parent / "fedfina"
    code = ("import gc, runpy, sys\n"
            "sys.argv = [sys.argv[1], '--help']\n"
            "try:\n"
            "    runpy.run_path(sys.argv[0], run_name='__main__')\n"
            "except SystemExit:\n"
            "    pass\n"
            "print(gc.get_threshold(), file=sys.stderr)")
    result = subprocess.run([sys.executable, "-c", code, str(script)], capture_output=True, text=True, check=True)
    assert result.stderr.strip().splitlines()[-1] == str(THRESHOLDS)
