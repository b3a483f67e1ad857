"""torch.distributed: two real gloo processes give the table and weights of one process on all data."""

from __future__ import annotations

import os
import socket
import traceback

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn

from groupconv.approx.network import approximability_of_model, convert_model
from groupconv.errors import GroupConvError


def _model(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(4, 8, 3, padding=1), nn.ReLU(),
        nn.Conv2d(8, 8, 3, padding=1), nn.ReLU(),
        nn.Conv2d(8, 16, 3, stride=2, padding=1),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 3),
    ).double()


def _data():
    g = torch.Generator().manual_seed(5)
    return torch.randn(36, 4, 8, 8, dtype=torch.float64, generator=g)


def _platform():
    from groupconv.platform import Platform
    from groupconv.platform.models import Roofline

    return Platform(device="cpu", metadata={"threads": 1}, roofline=Roofline(2e9, 4e9, 1e-6), time_models={})


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank, world, port, case, out_dir):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), GROUPCONV_DIST_TIMEOUT_S="60")
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=world)
    result: dict = {}
    try:
        x = _data()
        shard = x[:20] if rank == 0 else x[20:]  # uneven shards
        model = _model()
        if case == "design":
            from groupconv.design.options import option_table

            table = option_table(model, _platform(), [shard[:5], shard[5:]], groups=(2, 4))
            result = {"rows": table.to_frame().to_dict("records")}
        elif case == "ok":
            table = approximability_of_model(model, [shard[:7], shard[7:]], groups=(2, 4))
            new, _ = convert_model(model, shard, "gc", 2)
            seq, _ = convert_model(model, shard, "bgc", 4, sequential=True)
            result = {"rows": table.records(), "state": {k: v.clone() for k, v in new.state_dict().items()},
                      "seq": {k: v.clone() for k, v in seq.state_dict().items()}}
        else:
            if case == "shape" and rank == 1:
                shard = torch.randn(5, 4, 6, 6, dtype=torch.float64)
            if case == "model" and rank == 1:
                model = _model(seed=1)
            if case == "empty" and rank == 1:
                shard = []
            if case == "fails" and rank == 1:
                shard = torch.randn(5, 3, 8, 8, dtype=torch.float64)
            if case == "absent":
                os.environ["GROUPCONV_DIST_TIMEOUT_S"] = "3"
                if rank == 1:  # never joins the collectives
                    import time

                    time.sleep(8)
                    raise GroupConvError("rank 1 stayed away")
            try:
                approximability_of_model(model, shard, groups=(2,))
                result = {"error": None}
            except GroupConvError as exc:
                result = {"error": str(exc)}
    except GroupConvError as exc:
        result = {"error": str(exc)}
    except Exception:  # report anything else to the parent
        result = {"crash": traceback.format_exc()}
    finally:
        dist.destroy_process_group()
    torch.save(result, os.path.join(out_dir, f"rank{rank}.pt"))


def _spawn(case, tmp_path):
    mp.spawn(_worker, args=(2, _free_port(), case, str(tmp_path)), nprocs=2, join=True)
    out = [torch.load(tmp_path / f"rank{r}.pt", weights_only=False) for r in range(2)]
    for r in out:
        assert "crash" not in r, r.get("crash")
    return out


def test_two_gloo_ranks_equal_one_process_on_all_the_data(tmp_path):
    ranks = _spawn("ok", tmp_path)
    model, x = _model(), _data()
    one = approximability_of_model(model, x, groups=(2, 4)).records()
    new, _ = convert_model(model, x, "gc", 2)
    seq, _ = convert_model(model, x, "bgc", 4, sequential=True)
    for r in ranks:
        assert len(r["rows"]) == len(one)
        for a, b in zip(r["rows"], one):
            assert (a["layer"], a["method"], a["groups"], a["samples"]) == (b["layer"], b["method"], b["groups"], 36)
            energy = b["E"] / b["rel_output_E"] if b["rel_output_E"] > 0 else 0.0
            assert a["E"] == pytest.approx(b["E"], rel=1e-10, abs=1e-13 * energy)
        for key, ref in ((k, v) for k, v in new.state_dict().items()):
            np.testing.assert_allclose(r["state"][key].numpy(), ref.numpy(), rtol=1e-10, atol=1e-12)
        for key, ref in seq.state_dict().items():
            np.testing.assert_allclose(r["seq"][key].numpy(), ref.numpy(), rtol=1e-10, atol=1e-12)
    for key in new.state_dict():  # every rank holds the same weights
        assert torch.equal(ranks[0]["state"][key], ranks[1]["state"][key])


@pytest.mark.parametrize("case, message", [
    ("shape", "ranks disagree: rank 0 has inputs (*, 4, 8, 8) float64"),
    ("model", "ranks disagree"),
    ("empty", "rank 1: data yielded no samples"),
    ("fails", "rank 1: data do not fit the model"),
    ("absent", "did not complete within 3 s"),
])
def test_a_rank_with_other_data_or_model_fails_on_every_rank(tmp_path, case, message):
    ranks = _spawn(case, tmp_path)
    for r in ranks if case != "absent" else ranks[:1]:  # "absent": rank 0 times out, in one line
        assert r["error"] is not None and message in r["error"], r
        assert "\n" not in r["error"]


def test_two_gloo_ranks_give_the_design_table_of_one_process(tmp_path):
    pytest.importorskip("groupconv.platform")
    from groupconv.design.options import option_table

    ranks = _spawn("design", tmp_path)
    one = option_table(_model(), _platform(), _data(), groups=(2, 4))
    ref = one.to_frame().to_dict("records")
    for r in ranks:
        assert len(r["rows"]) == len(ref)
        for a, b in zip(r["rows"], ref):
            assert (a["layer"], a["method"], a["groups"]) == (b["layer"], b["method"], b["groups"])
            for key in ("rel_output_E", "network_E"):
                assert a[key] == pytest.approx(b[key], rel=1e-9, abs=1e-13), key
