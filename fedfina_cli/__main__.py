"""The `fedfina` command (and `python -m fedfina_cli`).

The installed command's script imports only this module; the CLI (typer, rich and
every command's module) is imported when ``main()`` runs. A report worker process
re-runs that script without calling ``main()`` (multiprocessing's spawn does so for
every process it starts), so it no longer imports the CLI: about 0.13 s of CPU a run.
"""

from __future__ import annotations


def main() -> None:
    from fedfina_cli.cli.app import main as cli  # noqa: PLC0415 - the point of this module
    from fedfina_cli.core.collector import collect_less  # noqa: PLC0415

    collect_less()
    cli()


if __name__ == "__main__":
    main()
