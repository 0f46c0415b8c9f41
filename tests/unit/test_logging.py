"""FastStream's log lines come out as our JSON, with their tracebacks, and its known harmless
supervisor noise at the level it deserves."""

from __future__ import annotations

import json
import logging

import pytest
import structlog

from shared.logging import BUS_LOGGER, configure_logging


def _supervisor_error(error: BaseException) -> None:
    try:
        raise error
    except BaseException as exc:
        logging.getLogger(BUS_LOGGER).error(
            "Task-11 raised an exception, retrying...\nIf this behavior causes issues, …",
            exc_info=exc,
        )


def test_faststream_lines_are_json_with_known_noise_toned_down(
    capsys: pytest.CaptureFixture[str],
) -> None:
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    saved_structlog = structlog.get_config()
    try:
        configure_logging("reports", "INFO")
        bus = logging.getLogger(BUS_LOGGER)
        bus.setLevel(logging.DEBUG)  # what FastStream does with log_level=DEBUG
        bus.info("callback for Task-14 is being executed...")
        bus.debug("Received")
        _supervisor_error(TimeoutError())
        _supervisor_error(ValueError("a real bug"))
        err = capsys.readouterr().err
    finally:
        # configure_logging points structlog at this test's captured stderr: undo it all.
        root.handlers, root.level = saved
        structlog.configure(**saved_structlog)
        structlog.contextvars.unbind_contextvars("service")
    lines = [json.loads(line) for line in err.splitlines()]  # each line is one JSON object
    assert [(entry["level"], entry["msg"].splitlines()[0]) for entry in lines] == [
        ("warning", "pull fetch timed out; the consumer task was restarted"),
        ("error", "Task-11 raised an exception, retrying..."),
    ]
    assert "exception" not in lines[0]
    assert "ValueError: a real bug" in str(lines[1].get("exception", ""))
