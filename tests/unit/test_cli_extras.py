"""A command whose optional extra is not installed names the extra (it said "unexpected
ModuleNotFoundError"), with exit 2; a missing module of no extra is still unexpected."""

import pytest

from mlops import cli


@pytest.mark.parametrize(
    ("module", "extra"),
    [("sagemaker.mlops.workflow", "aws"), ("moto", "dev"), ("matplotlib", "report")],
)
def test_a_missing_extra_is_named(monkeypatch, capsys, module, extra):
    def definition(_args):
        raise ModuleNotFoundError(f"No module named {module!r}", name=module)

    monkeypatch.setattr("mlops.cli.pipeline.cmd_definition", definition)
    assert cli.run(["pipeline", "definition"]) == 2
    err = capsys.readouterr().err
    assert f"pip install -e '.[{extra}]'" in err and err.count("\n") == 1
    assert "unexpected" not in err


def test_a_missing_module_of_no_extra_is_unexpected(monkeypatch, capsys):
    def definition(_args):
        raise ModuleNotFoundError("No module named 'nowhere'", name="nowhere")

    monkeypatch.setattr("mlops.cli.pipeline.cmd_definition", definition)
    assert cli.run(["pipeline", "definition"]) == 1
    assert "unexpected ModuleNotFoundError" in capsys.readouterr().err
