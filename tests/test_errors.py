"""One exceptions module: every error the product raises has one base the CLI catches."""

import importlib
import inspect
import pkgutil
import warnings

import pytest

import scalerepro
from scalerepro import cli, errors


def package_modules():
    for info in pkgutil.iter_modules(scalerepro.__path__):
        yield importlib.import_module(f"scalerepro.{info.name}")


def test_errors_and_warnings_are_defined_only_in_the_errors_module():
    strays = [f"{m.__name__}.{name}" for m in package_modules() for name, obj in vars(m).items()
              if inspect.isclass(obj) and issubclass(obj, (BaseException, Warning)) and obj.__module__ == m.__name__
              and m is not errors]
    assert not strays, f"define these in scalerepro.errors: {strays}"


def test_every_error_derives_from_the_common_base_and_keeps_its_builtin_one():
    classes = [c for c in vars(errors).values() if inspect.isclass(c) and c.__module__ == errors.__name__]
    errs = [c for c in classes if issubclass(c, BaseException)]
    warns = [c for c in classes if issubclass(c, Warning)]
    assert errs and warns
    assert all(issubclass(c, errors.ScalereproError) for c in errs if not issubclass(c, Warning))
    assert all(issubclass(c, errors.ScalereproWarning) for c in warns)
    # code that catches the built-in kind still does
    assert issubclass(errors.InputError, ValueError) and issubclass(errors.RunFailed, RuntimeError)


def test_the_cli_prints_any_product_error_as_one_line(monkeypatch, capsys):
    def deep_failure(args):
        raise errors.IsoflopError("budget 1e21 has 2 sizes; at least 3 are needed")

    parser = cli.build_parser()
    args = parser.parse_args(["list"])
    monkeypatch.setattr(cli, "build_parser", lambda: parser)
    monkeypatch.setattr(args, "func", deep_failure, raising=False)
    monkeypatch.setattr(parser, "parse_args", lambda argv=None: args)
    assert cli.main(["list"]) == 2
    err = capsys.readouterr().err
    assert err == "scalerepro: error: budget 1e21 has 2 sizes; at least 3 are needed\n"


def test_a_bug_keeps_its_traceback(monkeypatch):
    parser = cli.build_parser()
    args = parser.parse_args(["list"])
    monkeypatch.setattr(args, "func", lambda a: [][0], raising=False)
    monkeypatch.setattr(parser, "parse_args", lambda argv=None: args)
    monkeypatch.setattr(cli, "build_parser", lambda: parser)
    with pytest.raises(IndexError):
        cli.main(["list"])


def test_fit_warnings_are_product_warnings():
    with pytest.warns(errors.ScalereproWarning):
        warnings.warn("ill-conditioned", errors.FitWarning)
