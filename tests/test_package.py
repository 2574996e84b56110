import notifier
from notifier import _core


def test_version_comes_from_the_extension() -> None:
    # GIVEN the installed package WHEN imported THEN the Rust extension's version is exposed
    assert notifier.__version__ == _core.__version__
    assert notifier.__version__.count(".") == 2


def test_errors_subclass_stdlib() -> None:
    assert issubclass(_core.DecodeError, ValueError)
    assert issubclass(_core.EncodeError, TypeError)
    assert issubclass(_core.TemplateError, ValueError)
