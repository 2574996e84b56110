"""The embedded AWS and the project's own emulation of what it lacks.

- ``moto_server``: moto in server mode (a real HTTP AWS emulator) started in-process.
- ``provision``: the demo's tables, queues and SES identity on any AWS-compatible endpoint.
- ``esm``, ``context``: the project's own emulation of the Lambda event source mapping for
  DynamoDB Streams and of the Lambda context (moto runs neither).
- ``faults``: an SES fault-injection reverse proxy (throttling, 5xx, lost responses).
- ``demo``: ``notifier demo``.
- ``environ``: environment variables patched for a block.

Nothing here is imported by the Lambda handler.
"""
