"""Out-of-memory errors during training, turned into the batch size to try next.

On a GPU the first sign of a too-large batch (or image size) is a long
`ResourceExhaustedError` (TensorFlow) or `XlaRuntimeError: RESOURCE_EXHAUSTED` (JAX).
`batch_size_hint` catches it and says what to change.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator


class OutOfMemoryError(MemoryError):
    """Training ran out of (GPU) memory; `suggested_batch_size` is the one to try next."""

    def __init__(self, message: str, batch_size: int | None, suggested_batch_size: int | None):
        super().__init__(message)
        self.batch_size = batch_size
        self.suggested_batch_size = suggested_batch_size


def is_out_of_memory(error: BaseException) -> bool:
    """Whether `error` is an accelerator out-of-memory error from TensorFlow, JAX or PyTorch."""
    if isinstance(error, OutOfMemoryError):
        return False  # already explained
    tf = sys.modules.get("tensorflow")
    if tf is not None and isinstance(error, tf.errors.ResourceExhaustedError):
        return True
    text = str(error)
    return "RESOURCE_EXHAUSTED" in text or type(error).__name__ == "OutOfMemoryError" or "out of memory" in text.lower()


def next_batch_size(batch_size: int) -> int:
    """Half the batch size (at least 1)."""
    return max(1, int(batch_size) // 2)


@contextlib.contextmanager
def batch_size_hint(batch_size: int | None) -> Iterator[None]:
    """Re-raises an out-of-memory error inside the block as `OutOfMemoryError` with the next batch size."""
    try:
        yield
    except Exception as error:
        if not is_out_of_memory(error):
            raise
        first_line = (str(error).strip().splitlines() or [type(error).__name__])[0][:200]
        if batch_size and batch_size > 1:
            smaller = next_batch_size(batch_size)
            advice = (
                f"Try batch_size={smaller} (half of {batch_size}): e.g. tlkit.to_tf(data, batch_size={smaller}). "
                "If that still fails, lower image_size or pick a smaller backbone."
            )
        elif batch_size == 1:
            smaller = None
            advice = "The batch size is already 1: lower image_size or pick a smaller backbone."
        else:
            smaller = None
            advice = "Halve the batch size (tlkit.to_tf(data, batch_size=...)), or lower image_size."
        raise OutOfMemoryError(
            f"Out of accelerator memory during training ({first_line}). {advice} Restart the runtime first to "
            "free the memory the failed attempt holds; with a workdir, training resumes from its last finished epoch.",
            batch_size,
            smaller,
        ) from error
