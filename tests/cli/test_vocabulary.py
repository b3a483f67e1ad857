"""One vocabulary for every command (issue 19 item 6, issue 17 item 6): one spelling per
option, the old spellings kept as aliases with a one-line note, one strict shape grammar,
-q/-v on every command, warnings labelled by where they come from."""

from __future__ import annotations

import argparse
import warnings

import pytest

from groupconv.cli import build_parser, main
from groupconv.cli._common import shape_arg
from groupconv.cli._output import reporting_warnings
from groupconv.errors import DeadChannelsWarning


@pytest.mark.parametrize("text, shape", [("1,3,224,224", (1, 3, 224, 224)), ("1x3x8x8", (1, 3, 8, 8)),
                                         (" 2,3 ", (2, 3)), ("7", (7,))])
def test_the_shape_grammar_accepts(text, shape):
    assert shape_arg(text) == shape


@pytest.mark.parametrize("text", ["1,3,x", "1,,3,8,8", "x1,3,8,8", "1,3,8,8x", "1,3x8,8", "", ",", "1,0,8",
                                  "1;3", "1, 3", "1.5,3", "1 3 8 8"])
def test_the_shape_grammar_refuses_in_one_line(text, capsys):
    with pytest.raises(argparse.ArgumentTypeError, match="shape"):
        shape_arg(text)
    for argv in (["count", "x.py:f", "--input-shape", text],
                 ["predict", "x.py:f", "--platform", "p.json", "--input-shape", text],
                 ["measure", "model", "x.py:f", "--input-shape", text]):
        with pytest.raises(SystemExit) as exc:
            main(argv)
        err = capsys.readouterr().err
        assert exc.value.code == 2 and err.count("\n") == 1 and repr(text) in err, err


def test_design_takes_the_same_grammar_and_the_old_form_with_a_note(capsys):
    from groupconv.cli.design import _input_shape
    from groupconv.errors import GroupConvError

    assert _input_shape(["4,3,8,8"]) == (4, 3, 8, 8)
    assert capsys.readouterr().err == ""
    assert _input_shape(["4", "3", "8", "8"]) == (4, 3, 8, 8)
    assert capsys.readouterr().err == "groupconv: note: --input-shape 4 3 8 8 is deprecated: use --input-shape 4,3,8,8\n"
    with pytest.raises(GroupConvError, match="'1,3,x'"):
        _input_shape(["1,3,x"])


@pytest.mark.parametrize("argv, old, new", [
    (["count", "mobilenet_v1", "--variant", "e2gc", "--group", "32", "--json"], "--group", "--groups"),
    (["fit", "--paper-table", "e2gc-mobilenet", "--platform", "P100", "--json"], "--platform", "--gpu"),
])
def test_old_spellings_still_work_with_one_note(argv, old, new, capsys):
    assert main(argv) == 0
    new_argv = [new if a == old else a for a in argv]
    out_old = capsys.readouterr()
    assert out_old.err == f"groupconv: note: {old} is deprecated: use {new}\n"
    assert main(new_argv) == 0
    out_new = capsys.readouterr()
    assert out_new.err == "" and out_new.out == out_old.out


def test_every_command_takes_quiet_and_verbose():
    parser = build_parser()
    seen = 0

    def walk(p):
        nonlocal seen
        subs = [a for a in p._actions if isinstance(a, argparse._SubParsersAction)]
        if not subs:
            seen += 1
            assert {"-q", "--quiet", "-v", "--verbose"} <= set(p._option_string_actions), p.prog
        for a in subs:
            for child in a.choices.values():
                walk(child)

    walk(parser)
    assert seen >= 12


def test_unknown_model_is_named_before_the_missing_shape(capsys):
    assert main(["count", "nosuch_arch"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("groupconv: error: unknown model 'nosuch_arch'") and err.count("\n") == 1


def test_warnings_are_grouped_and_labelled_by_their_source(capsys):
    with reporting_warnings(0):
        for i in range(5):
            warnings.warn_explicit(f"group {i}: dead", DeadChannelsWarning, "x.py", 1, module="groupconv.x")
        warnings.warn_explicit("a torch thing", UserWarning, "/v/lib/python3.11/site-packages/torch/nn/x.py", 3)
        # a C++ warning of torch's names the Python caller's file, here one of groupconv's
        import groupconv.nn as caller
        warnings.warn_explicit("padding='same' ... (Triggered internally at Convolution.cpp:1101.)", UserWarning,
                               caller.__file__, 5)
    lines = capsys.readouterr().err.splitlines()
    assert lines == ["groupconv: warning: group 0: dead (DeadChannelsWarning) [and 4 more like it; -v shows all]",
                     "torch: warning: a torch thing",
                     "torch: warning: padding='same' ... (Triggered internally at Convolution.cpp:1101.)"]
    with reporting_warnings(1):
        for i in range(3):
            warnings.warn_explicit(f"group {i}: dead", DeadChannelsWarning, "x.py", 1, module="groupconv.x")
    assert len(capsys.readouterr().err.splitlines()) == 3
    with reporting_warnings(-1):
        warnings.warn_explicit("dead", DeadChannelsWarning, "x.py", 1, module="groupconv.x")
    assert capsys.readouterr().err == ""


def test_recommend_points_to_design_for_a_users_model(capsys):
    assert main(["recommend", "mynet.py:build", "--platform", "p.json"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "groupconv design MODEL" in err


def test_recommend_prints_units(capsys):
    from pathlib import Path

    platform = Path(__file__).resolve().parents[2] / "data" / "platforms" / "cpu-epyc-1t.json"
    assert main(["recommend", "mobilenet_v1", "--platform", str(platform), "--batch", "2"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert " predicted time " in lines[0] and " ms per frame" in lines[0] and "time_s" not in lines[0]
    header = next(l for l in lines if l.strip().startswith("name"))
    assert header.split()[-1] == "time_ms/frame" and "cost" not in header.split()
