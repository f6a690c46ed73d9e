"""The `campaigns` command line. Every mistake of the user's is one line on stderr and an exit code.

One module per command group; importing them registers their commands on the app.
"""

from __future__ import annotations

import errno
import json
import os
import sys
from typing import NoReturn

import click

from pipelines.cli import control, importing, inspecting, reporting, sandbox, suppression  # noqa: F401 - they register their commands
from pipelines.cli.app import app
from pipelines.errors import CampaignError, ExitCode
from pipelines.redact import redact

__all__ = ["app", "main"]

STORAGE_ERRNOS = {errno.ENOSPC, errno.EROFS, errno.EACCES, errno.EPERM, errno.EDQUOT, errno.EFBIG}


def _traceback(exc: BaseException) -> None:
    """CAMPAIGNS_DEBUG=1: the traceback, secrets redacted like every other text the tool prints."""
    import traceback

    sys.stderr.write(redact("".join(traceback.format_exception(exc))))


def entry() -> NoReturn:
    """The `campaigns` script and `python -m pipelines`: main(), then leave the process (pipelines.runtime.leave)."""
    try:
        main()
        code = 0
    except SystemExit as exit:
        code = exit.code
    from pipelines.runtime import leave

    leave(code)


def main() -> None:
    """Entry point: run the app and turn every failure into one line and an exit code.

    Usage mistakes exit 2 with click's message; our errors exit with their code; anything
    else is a bug (exit 1). With --json an error is also one JSON object on stdout; with
    `--log-format json` (watch) the error line itself is a JSON event, like every other line.
    """
    debug = os.environ.get("CAMPAIGNS_DEBUG") == "1"  # read before any setting is: tracebacks of settings errors too
    argv = sys.argv[1:]
    as_json = "--json" in argv
    json_log = "--log-format=json" in argv or any(a == "--log-format" and b == "json" for a, b in zip(argv, argv[1:]))

    def say(line: str, code: int) -> None:
        if json_log:
            from pipelines.logs import EventLog

            EventLog("json").error("command_failed", message=line, exit_code=code)
        else:
            sys.stderr.write(f"campaigns: {redact(line)}\n")

    def fail(message: str, code: int, reported: bool = False) -> None:
        if as_json and not reported:  # a command that printed its result put the error in it
            print(json.dumps({"error": message, "exit_code": int(code)}))
        sys.exit(code)

    from pipelines.runtime import tune

    tune(os.environ.get("ARROW_DEFAULT_MEMORY_POOL"))  # the process is the CLI's: allocator, malloc arenas, GC
    try:
        code = app.main(standalone_mode=False, prog_name="campaigns")
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except (click.exceptions.Abort, KeyboardInterrupt):
        say("interrupted", 130)
        sys.exit(130)
    except BrokenPipeError:  # the reader went away (`| head`): nothing to say, and nobody to say it to
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(141)
    except click.ClickException as exc:  # a usage mistake: click's own "Usage: … Error: …"
        if json_log:
            say(f"error: {exc.format_message()}", ExitCode.USAGE)
        else:
            exc.show()
        fail(redact(exc.format_message()), ExitCode.USAGE)
    except CampaignError as exc:
        if debug:
            _traceback(exc)
        message = redact(str(exc))
        say(f"error: {message}", exc.exit_code)
        fail(message, exc.exit_code, getattr(exc, "reported", False))
    except Exception as exc:  # a bug of ours: still one line, traceback on request
        if debug:
            _traceback(exc)
        if isinstance(exc, OSError) and exc.errno in STORAGE_ERRNOS:  # a local file the system refused to write
            where = f" {exc.filename}" if exc.filename else ""
            message = f"cannot write{where}: {exc.strerror}; free space or fix permissions, then run again"
            say(f"error: {message}", ExitCode.STORAGE)
            fail(message, ExitCode.STORAGE)
        message = f"internal error: {type(exc).__name__}: {redact(str(exc).splitlines()[0]) if str(exc) else ''}"
        say(f"{message} (set CAMPAIGNS_DEBUG=1 for the traceback, and please report it)", ExitCode.INTERNAL)
        fail(message, ExitCode.INTERNAL)
    sys.exit(code if isinstance(code, int) else 0)
