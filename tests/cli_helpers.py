"""Helpers shared by the CLI tests: run a command and check success or a clean user error."""

from __future__ import annotations

from typing import Any

from typer.testing import CliRunner, Result

from fewmol.cli import app

runner = CliRunner()


def invoke(args: list[Any]) -> Result:
    """Run ``fewmol ARGS`` (every item str()-ed) in-process."""
    return runner.invoke(app, [str(a) for a in args])


def cli_ok(args: list[Any]) -> Result:
    """Run and require exit 0."""
    result = invoke(args)
    assert result.exit_code == 0, result.output
    return result


def cli_user_error(result: Result | list[Any], *fragments: str) -> str:
    """Require a user error: exit 2, no traceback, stderr starting 'error:' with ``fragments``.

    ``result`` may be the argument list, which is run first. Returns stderr, unwrapped.
    """
    if isinstance(result, list):
        result = invoke(result)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    err = " ".join(result.stderr.split())
    assert err.startswith("error:"), err
    for f in fragments:
        assert f in err, (f, err)
    return err
