"""specs: the designed operator set and the synthetic networks (no torch needed)."""

from __future__ import annotations

from groupconv.platform.specs import make_spec, network_specs, operator_specs, roofline_specs, spec_kernel


def test_designed_set_prefix_covers_every_kernel():
    specs = operator_specs(threads=1)
    kernels = {spec_kernel(s, 1) for s in specs}
    assert {"conv_mkldnn", "conv_slow", "conv_dw", "norm", "activation", "pool", "matmul", "cat", "copy",
            "elementwise", "softmax", "attention", "mha", "encoder_layer", "rnn", "rnn_loop", "conv_transpose",
            "embedding"} <= kernels
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
