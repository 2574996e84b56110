"""Operator commands (``notifier redrive``, ``inspect``, ``invoke``, ``generate-event``,
``local up``): one module per command, each with ``add_arguments(parser)`` and ``run(args)``.
docs/OPERATIONS.md documents them."""
