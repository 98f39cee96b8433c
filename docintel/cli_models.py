"""``docintel models``: start, stop and inspect the vLLM model servers (see models/services.py)."""

from __future__ import annotations

import json
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table

from models import launcher
from models import services as reg

models_app = typer.Typer(help="vLLM model servers: up, down, status.", no_args_is_help=True)
console = Console()


def _fmt(value: float | None, pct: bool = False) -> str:
    if value is None:
        return "-"
    return f"{value * 100:.1f}%" if pct else f"{value:g}"


@models_app.command()
def up(
    profile: str = typer.Option("production", "--profile", "-p", help=f"One of: {', '.join(reg.PROFILES)}."),
    node: Optional[str] = typer.Option(None, "--node", "-n", help=f"One of: {', '.join(reg.NODES)} "
                                       "(default: the profile's node)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the commands (API key masked); start nothing."),
    timeout: Optional[float] = typer.Option(None, help="Seconds to wait for readiness."),
) -> None:
    """Start the profile's servers on this machine under supervisors and wait until they are ready."""
    try:
        result = launcher.up(profile, node, dry_run, timeout=timeout,
                             echo=None if dry_run else (lambda m: console.print(m, markup=False, highlight=False)))
    except (launcher.LauncherError, reg.RegistryError) as exc:
        console.print(f"[red]error:[/red] {exc}", highlight=False)
        raise typer.Exit(1) from None
    if dry_run:
        for st in result:
            # plain print: rich would wrap the command line
            print(f"# {st.name} -> {st.url}" + (f"  (WARNING: {st.error})" if st.error else ""))
            print(st.command)
        return
    _table(result)


@models_app.command()
def down() -> None:
    """Stop the servers started by `up` on this machine (by PID, whole process groups)."""
    stopped = launcher.down()
    console.print(f"stopped: {', '.join(stopped)}" if stopped else "nothing was running")


@models_app.command()
def status(as_json: bool = typer.Option(False, "--json", help="Machine-readable output.")) -> None:
    """Readiness, requests running/waiting and KV-cache use of each server."""
    result = launcher.status()
    if as_json:
        print(json.dumps([st.to_dict() for st in result], indent=2))
    else:
        _table(result)
    if not all(st.ready for st in result):
        raise typer.Exit(3)


def _table(result: list[launcher.ServiceStatus]) -> None:
    table = Table("service", "url", "model", "ready", "state", "running", "waiting", "KV cache", "restarts")
    for st in result:
        table.add_row(st.name, st.url, st.model, "yes" if st.ready else "[red]no[/red]", st.state,
                      _fmt(st.running), _fmt(st.waiting), _fmt(st.kv_cache_usage, pct=True), str(st.restarts))
    console.print(table)
