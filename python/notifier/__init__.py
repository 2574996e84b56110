"""notifier: exactly-once notifications from DynamoDB Streams.

Subpackages load lazily so a Lambda cold start pays only for what a handler uses:

- ``notifier.ddb``: the fast DynamoDB-JSON decoder (Rust), usable on its own.
- ``notifier.templates``: MiniJinja template sets rendered in Rust.
- ``notifier.handler``: the Lambda handler (decode -> route -> claim -> render -> send -> commit).
"""

from notifier._core import __version__

__all__ = ["__version__"]
