"""FailureReason text: the useful part of a container's error, within SageMaker's 1,024-character limit.

SageMaker returns the first 1024 characters of ``/opt/ml/output/failure`` as FailureReason; without a failure file
the training toolkit reports ``ExecuteUserScriptError`` with the script's stderr from the first exception line on
(sagemaker-contract.md §1.2). A Python exception's message often spans lines (``Error(s) in loading state_dict for
ResNet:`` followed by the mismatched keys), and a chained exception's cause is what explains it, so the reason keeps
the last traceback's whole exception text and its cause, with whitespace folded, rather than only its first line.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from local_aws.constants import FAILURE_REASON_MAX_CHARS

_TRACEBACK = "Traceback (most recent call last):"
_CAUSE_MARKERS = (
    "The above exception was the direct cause of the following exception:",
    "During handling of the above exception, another exception occurred:",
)
_SPACES = re.compile(r"\s+")


def fold(text: str) -> str:
    """One line: runs of whitespace (newlines, tabs) become one space."""
    return _SPACES.sub(" ", text).strip()


def clip(text: str, limit: int = FAILURE_REASON_MAX_CHARS) -> str:
    """At most ``limit`` characters, marking a cut with an ellipsis."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _exception_blocks(lines: Sequence[str]) -> list[tuple[str, str | None]]:
    """(exception text, marker that precedes the next block) for each traceback in the log, oldest first."""
    blocks: list[tuple[str, str | None]] = []
    index = 0
    while index < len(lines):
        if lines[index].strip() != _TRACEBACK:
            index += 1
            continue
        index += 1
        # Frames are indented ("  File ...", code lines, carets); the exception text starts at the first
        # unindented line and runs until a blank line, a chaining marker or the next traceback.
        while index < len(lines) and (lines[index].startswith((" ", "\t")) or not lines[index].strip()):
            index += 1
        text: list[str] = []
        marker = None
        while index < len(lines):
            line = lines[index]
            stripped = line.strip()
            if stripped == _TRACEBACK:
                break
            if stripped in _CAUSE_MARKERS:
                marker = stripped
                index += 1
                break
            text.append(line)
            index += 1
        if text:
            blocks.append((fold("\n".join(text)), marker))
    return blocks


def last_exception(lines: Sequence[str]) -> str | None:
    """The final exception of the last traceback in ``lines``, with its direct cause when it was chained.

    Example: ``RuntimeError: Error(s) in loading state_dict for ResNet: size mismatch for fc.weight: ...``
    or ``ValueError: bad shape (caused by KeyError: 'fc.bias')``.
    """
    blocks = _exception_blocks(lines)
    if not blocks:
        return None
    final, _ = blocks[-1]
    if len(blocks) >= 2 and blocks[-2][1] == _CAUSE_MARKERS[0]:
        return f"{final} (caused by {blocks[-2][0]})"
    return final


def script_error(exit_code: int | None, lines: Sequence[str], command: str) -> str:
    """What the training toolkit writes for a script that exited non-zero without a failure file."""
    message = last_exception(lines)
    if message is None:
        tail = [line.strip() for line in lines if line.strip()]
        message = tail[-1] if tail else ""
    if exit_code is not None and exit_code < 0 and not message:
        message = f"killed by signal {-exit_code}"
    return f'ExecuteUserScriptError:\nExitCode {exit_code}\nErrorMessage "{message}"\nCommand "{command}"'
