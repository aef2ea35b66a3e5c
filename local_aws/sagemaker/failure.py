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


def _exception_after(lines: Sequence[str], start: int) -> str | None:
    """The exception text of the traceback whose ``Traceback ...`` line is at ``start - 1``.

    Frames are indented ("  File ...", code lines, carets); the exception text starts at the first unindented line
    and runs until a blank line, a chaining marker or the next traceback (a message's own continuation lines, like
    state_dict's tab-indented mismatches, are kept).
    """
    index = start
    while index < len(lines) and (lines[index].startswith((" ", "\t")) or not lines[index].strip()):
        index += 1
    text: list[str] = []
    while index < len(lines):
        stripped = lines[index].strip()
        if not stripped or stripped == _TRACEBACK or stripped in _CAUSE_MARKERS:
            break
        text.append(lines[index])
        index += 1
    return fold("\n".join(text)) if text else None


def _cause_before(lines: Sequence[str], marker: int) -> str | None:
    """The exception printed above a "direct cause" marker: after its own traceback, or bare when never raised."""
    end = marker
    while end > 0 and not lines[end - 1].strip():
        end -= 1
    tracebacks = [i for i in range(end) if lines[i].strip() == _TRACEBACK]
    boundary = max([i for i in range(end) if lines[i].strip() in _CAUSE_MARKERS], default=-1)
    if tracebacks and tracebacks[-1] > boundary:
        return _exception_after(lines, tracebacks[-1] + 1)
    # A cause that was never raised is printed without a traceback: its text is the paragraph above the marker.
    begin = end
    while begin > 0 and lines[begin - 1].strip() and lines[begin - 1].strip() not in _CAUSE_MARKERS:
        begin -= 1
    return fold("\n".join(lines[begin:end])) or None


def last_exception(lines: Sequence[str]) -> str | None:
    """The final exception of the last traceback in ``lines``, with its direct cause when it was chained.

    Example: ``RuntimeError: Error(s) in loading state_dict for ResNet: size mismatch for fc.weight: ...``
    or ``ValueError: bad shape (caused by KeyError: 'fc.bias')``.
    """
    tracebacks = [i for i, line in enumerate(lines) if line.strip() == _TRACEBACK]
    if not tracebacks:
        return None
    last = tracebacks[-1]
    final = _exception_after(lines, last + 1)
    if final is None:
        return None
    above = last - 1
    while above >= 0 and not lines[above].strip():
        above -= 1
    if above >= 0 and lines[above].strip() == _CAUSE_MARKERS[0]:
        cause = _cause_before(lines, above)
        if cause:
            return f"{final} (caused by {cause})"
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
