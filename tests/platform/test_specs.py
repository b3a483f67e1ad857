"""specs: the designed operator set and the synthetic networks (no torch needed)."""

from __future__ import annotations

from groupconv.platform.specs import make_spec, network_specs, operator_specs, roofline_specs, spec_kernel


def test_designed_set_prefix_covers_every_kernel():
    specs = operator_specs(threads=1)
    kernels = {spec_kernel(s, 1) for s in specs}
    assert {"conv_mkldnn", "conv_slow", "conv_dw", "norm", "activation", "pool", "matmul", "cat", "copy",
            "elementwise", "softmax", "attention", "mha", "encoder_layer", "rnn", "rnn_loop", "conv_transpose",
            "embedding", "transpose"} <= kernels
    first = {spec_kernel(s, 1) for s in specs[:60]}
    assert first == kernels  # a 60-point budget already reaches every kernel
    assert len({s.key for s in specs}) == len(specs)
    # synthetic networks only, of every family: none of the validation architectures
    assert {s.kind for s in network_specs()} == {"plain", "dwsep", "resgroup", "mixer", "widedw", "bottleneck",
                                                  "encoder", "decoder", "rnn", "audio1d", "skipnet", "mhablock"}
    first_nets = {s.kind for s in network_specs()[:24]}
    assert {"encoder", "decoder", "rnn", "audio1d", "skipnet", "plain"} <= first_nets  # every family early


def test_spec_key_is_canonical_and_roofline_has_compute_and_memory_points():
    a = make_spec("op", "conv", h=8, cin=4)
    b = make_spec("op", "conv", cin=4, h=8)
    assert a == b and a.key == "op:conv:cin=4,h=8" and a.p == {"cin": 4, "h": 8}
    kinds = {s.kind for s in roofline_specs()}
    assert {"tiny", "linear", "conv", "copy", "add"} <= kinds


def test_every_operator_kind_builds_and_runs_the_kernel_its_spec_names():
    """One spec of every kind of the designed set, built and traced on the CPU: the op its
    row would describe runs the kernel type ``spec_kernel`` orders it under (a pad is a copy,
    a reordering copy a transpose, a plain clone a copy)."""
    import torch

    from groupconv.networks import count_module
    from groupconv.platform.modules import build_spec, one_copy
    from groupconv.platform.models import features_of
    from groupconv.platform.predict import collapse_loops

    firsts = {}
    for s in operator_specs(threads=1):
        key = s.kind if s.kind != "permute" else f"permute:{'to' in s.p}"
        firsts.setdefault(key, s)
    assert {"pad", "clone", "copy", "permute:True", "permute:False"} <= set(firsts)
    for s in firsts.values():
        module, x, copies = build_spec(s, "cpu", torch.float32)
        counted = one_copy(module, copies)
        with torch.no_grad():
            ops = collapse_loops(count_module(counted, (x,), device="cpu"), counted).ops
        feats = [features_of(o) for o in ops]
        f0 = max(feats, key=lambda f: (f.kernel != "view", f.macs, f.bytes))
        if s.kind in ("mha", "enclayer", "permute") and f0.kernel in ("matmul", "attention", "view"):
            continue  # an odd head count: no fast path (not fitted); a permute already contiguous
        assert f0.kernel == spec_kernel(s, 1), s.key
