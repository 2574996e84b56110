"""An emulated Lambda context object, as the Python runtime hands it to a handler.

Only what handlers use: the remaining time (from a configured timeout and an injectable
clock), the request id and the function's identity.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

__all__ = ["LambdaContext"]


@dataclass
class LambdaContext:
    """The context of one emulated invocation.

    ``get_remaining_time_in_millis()`` counts down from ``timeout_s`` seconds after the
    context was created, measured with ``clock`` (``time.monotonic`` unless injected).
    """

    function_name: str = "notifier"
    timeout_s: float = 60.0
    memory_limit_in_mb: int = 1024
    region: str = "us-east-1"
    account_id: str = "123456789012"
    clock: Callable[[], float] = time.monotonic
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    function_version: str = "$LATEST"
    log_group_name: str = ""
    log_stream_name: str = ""
    started_at: float = field(default=-1.0)

    def __post_init__(self) -> None:
        if self.started_at < 0:
            self.started_at = self.clock()
        if not self.log_group_name:
            self.log_group_name = f"/aws/lambda/{self.function_name}"
        if not self.log_stream_name:
            self.log_stream_name = f"local/[{self.function_version}]{self.aws_request_id[:8]}"

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:{self.region}:{self.account_id}:function:{self.function_name}"

    def get_remaining_time_in_millis(self) -> int:
        """Milliseconds left before the emulated Lambda would kill this invocation (>= 0)."""
        left = self.timeout_s - (self.clock() - self.started_at)
        return max(0, int(left * 1000))

    def elapsed_s(self) -> float:
        """Seconds since the invocation started (by the context's clock)."""
        return self.clock() - self.started_at
