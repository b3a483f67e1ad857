"""``groupconv figures``: a bad output folder is one line with exit code 2, before any drawing."""

import pytest

from groupconv.cli import main


@pytest.mark.parametrize(
    "out, message",
    [
        ("{file}", "output folder '{file}' exists and is not a folder"),
        ("{file}/sub", "Not a directory: {file}/sub"),
    ],
)
def test_output_folder_that_cannot_be_one_exits_2(tmp_path, capsys, out, message):
    file = tmp_path / "runs.csv"
    file.write_text("x\n")
    code = main(["figures", "--out", out.format(file=file), "--only", "e2gc_fig3"])
    captured = capsys.readouterr()
    assert code == 2 and captured.out == ""
    assert captured.err == f"groupconv: error: {message.format(file=file)}\n"  # no progress bar either


def test_figures_are_written_and_listed(tmp_path, capsys):
    assert main(["figures", "--out", str(tmp_path / "new" / "figs"), "--only", "e2gc_fig3"]) == 0
    printed = capsys.readouterr().out.split()
    assert sorted(printed) == sorted(str(tmp_path / "new" / "figs" / f"e2gc_fig3.{ext}") for ext in ("png", "svg", "pdf"))
    assert all((tmp_path / "new" / "figs" / f"e2gc_fig3.{ext}").stat().st_size > 1000 for ext in ("png", "svg", "pdf"))


def test_empty_output_folder_is_an_error(capsys):
    from groupconv.cli import main

    assert main(["figures", "--out", "", "--only", "e2gc_fig3"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "output folder must be a path, got ''" in err
