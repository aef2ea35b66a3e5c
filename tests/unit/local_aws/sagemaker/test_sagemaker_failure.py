"""local_aws.sagemaker.failure: a FailureReason keeps the whole exception text and its cause, within 1024 chars."""

from __future__ import annotations

import traceback

import torch

from local_aws.constants import FAILURE_REASON_MAX_CHARS
from local_aws.sagemaker.failure import clip, fold, last_exception, script_error

COMMAND = "/usr/bin/python3 -m torch.distributed.run --nproc_per_node 1 train.py --epochs 1"


def _traceback_of(fn: object) -> list[str]:
    """The lines Python prints to stderr for the exception ``fn()`` raises."""
    try:
        fn()  # type: ignore[operator]
    except Exception:
        return traceback.format_exc().splitlines()
    raise AssertionError("expected an exception")


def _state_dict_mismatch() -> None:
    model = torch.nn.Sequential(torch.nn.Linear(4, 2))
    other = torch.nn.Sequential(torch.nn.Linear(3, 2)).state_dict()
    model.load_state_dict(other | {"head.bias": torch.zeros(1)})


def test_a_real_state_dict_mismatch_keeps_every_mismatch_line() -> None:
    """torch's multi-line ``Error(s) in loading state_dict`` message survives whole, folded onto one line."""
    lines = ["epoch 1 starting", *_traceback_of(_state_dict_mismatch)]
    reason = last_exception(lines)
    assert reason is not None
    assert reason.startswith("RuntimeError: Error(s) in loading state_dict for Sequential:")
    assert "size mismatch for 0.weight: copying a param with shape torch.Size([2, 3])" in reason
    assert 'Unexpected key(s) in state_dict: "head.bias"' in reason
    assert "\n" not in reason and "\t" not in reason
    assert "File " not in reason  # frames are not part of the reason


def test_script_error_of_a_real_traceback_fits_failure_reason() -> None:
    """The toolkit's ExecuteUserScriptError text names exit code, message and command; clipped it stays useful."""
    text = "AlgorithmError: " + script_error(1, _traceback_of(_state_dict_mismatch), COMMAND)
    assert text.startswith('AlgorithmError: ExecuteUserScriptError:\nExitCode 1\nErrorMessage "RuntimeError: Error(s)')
    assert text.endswith(f'Command "{COMMAND}"')
    reason = clip(text)
    assert len(reason) <= FAILURE_REASON_MAX_CHARS
    assert "size mismatch for 0.weight" in reason


def test_a_direct_cause_is_kept_after_the_final_exception() -> None:
    """``raise ... from exc``: the reason is the final exception followed by its cause."""

    def chained() -> None:
        try:
            {}["fc.bias"]
        except KeyError as exc:
            raise ValueError("checkpoint does not match the model") from exc

    assert last_exception(_traceback_of(chained)) == (
        "ValueError: checkpoint does not match the model (caused by KeyError: 'fc.bias')"
    )


def test_an_exception_during_handling_is_not_reported_as_a_cause() -> None:
    """Implicit chaining ("During handling ...") is not a cause: only the final exception is the reason."""

    def during() -> None:
        try:
            raise OSError("disk full")
        except OSError:
            raise RuntimeError("cleanup failed")  # noqa: B904 (implicit chaining is what is tested)

    assert last_exception(_traceback_of(during)) == "RuntimeError: cleanup failed"


def test_the_last_traceback_in_the_log_wins() -> None:
    """A log with several tracebacks (a retry, another rank) reports the last one."""
    first = _traceback_of(lambda: int("x"))
    second = _traceback_of(lambda: [][1])
    assert last_exception([*first, "retrying", *second]) == "IndexError: list index out of range"


def test_no_traceback_means_no_exception() -> None:
    """Plain log lines give no exception text."""
    assert last_exception(["loading data", "Killed"]) is None


def test_script_error_without_a_traceback_uses_the_last_line_or_the_signal() -> None:
    """Without a traceback: the last non-blank line, or for a signal death with no output, the signal."""
    assert 'ErrorMessage "Killed"' in script_error(137, ["loading", "Killed", "  "], "python train.py")
    assert 'ErrorMessage "killed by signal 9"' in script_error(-9, [], "python train.py")
    assert 'ErrorMessage ""' in script_error(1, [], "python train.py")


def test_log_lines_after_a_blank_line_are_not_part_of_the_exception() -> None:
    """What a launcher prints after the traceback, past a blank line, is not the script's exception message."""
    lines = [*_traceback_of(lambda: int("x")), "", "[torchrun] child 0 exited with code 1"]
    assert last_exception(lines) == "ValueError: invalid literal for int() with base 10: 'x'"


def test_fold_and_clip() -> None:
    """fold makes one line of any whitespace; clip cuts to the limit with an ellipsis, and only when needed."""
    assert fold(" a\n\tb  c \n") == "a b c"
    assert clip("x" * 1024) == "x" * 1024
    clipped = clip("x" * 2000)
    assert len(clipped) == FAILURE_REASON_MAX_CHARS and clipped.endswith("…")
    assert clip("abcdef", 4) == "abc…"
