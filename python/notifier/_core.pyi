"""Type stubs for the Rust extension ``notifier._core``."""

__all__ = ["DecodeError", "EncodeError", "TemplateError", "__version__"]

__version__: str

class DecodeError(ValueError):
    """Malformed DynamoDB JSON or stream event; names the record index and attribute path."""

class EncodeError(TypeError):
    """A Python value with no DynamoDB representation (float, NaN, >38 digits, unsupported type)."""

class TemplateError(ValueError):
    """A template that fails to load, compile or render; names the template, file and line."""
