"""``fit`` reads a runs file as strictly as ``measure`` does (issue 17 item 5): each
problem named for what it is, with its line."""

from __future__ import annotations

from groupconv.cli import main

LAYER_HEADER = "workload,in_channels,out_channels,kernel,height,width,groups,batch,method,mode,time_s"
ROW = "layer,8,8,3,4,4,{g},1,{method},forward,{t}"


def _good(n=6):
    return [ROW.format(g=g, method="gc", t=1e-4 * g) for g in (1, 2, 4, 8)[:n]]


def _fit(tmp_path, capsys, text):
    path = tmp_path / "runs.csv"
    path.write_text(text)
    code = main(["fit", str(path), "--model", "macs"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and err[0].startswith("groupconv: error:"), err
    return err[0]


def test_method_weird_is_refused_naming_the_value(tmp_path, capsys):
    rows = _good() + [ROW.format(g=2, method="weird", t=3e-4)]
    line = _fit(tmp_path, capsys, "\n".join([LAYER_HEADER, *rows]) + "\n")
    assert "line 6: method 'weird' is not one of dense, gc, dw, bgc, network" in line


def test_a_short_row_is_a_short_row_with_its_line(tmp_path, capsys):
    rows = _good()
    rows[1] = ",".join(rows[1].split(",")[:5])
    line = _fit(tmp_path, capsys, "\n".join([LAYER_HEADER, *rows]) + "\n")
    assert "line 3: a short row" in line and "5 fields, the header has 11" in line
    assert "time_s" not in line.split("line 3")[1].split("fields")[0]


def test_a_duplicated_header_is_reported_as_such(tmp_path, capsys):
    text = "\n".join([LAYER_HEADER, *_good(), LAYER_HEADER, *_good()]) + "\n"
    line = _fit(tmp_path, capsys, text)
    assert "line 6: the header again (two files concatenated?)" in line
    assert "mix" not in line


def test_a_file_without_time_s_is_reported_as_lacking_time_s(tmp_path, capsys):
    header = LAYER_HEADER.replace(",time_s", ",energy_J")
    rows = [r.rsplit(",", 1)[0] + "," for r in _good()]
    line = _fit(tmp_path, capsys, "\n".join([header, *rows]) + "\n")
    assert "lacks a time_s column and its energy_J column is empty" in line
    header = LAYER_HEADER.replace(",time_s", "")
    rows = [r.rsplit(",", 1)[0] for r in _good()]
    line = _fit(tmp_path, capsys, "\n".join([header, *rows]) + "\n")
    assert "lacks a time_s column and an energy_J column" in line


def test_glued_rows_are_named(tmp_path, capsys):
    rows = _good()
    text = "\n".join([LAYER_HEADER, rows[0] + rows[1], *rows[2:]]) + "\n"
    assert "line 2: two rows glued into one line" in _fit(tmp_path, capsys, text)


def test_a_good_hand_made_file_still_fits(tmp_path, capsys):
    path = tmp_path / "runs.csv"
    path.write_text("\n".join([LAYER_HEADER, *_good()]) + "\n")
    assert main(["fit", str(path), "--model", "macs"]) == 0
