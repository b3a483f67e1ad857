"""groupconv.vocab: the names are defined once and every package uses that definition."""

from __future__ import annotations

import pytest

from groupconv import vocab


def test_dtype_sizes_are_torchs():
    torch = pytest.importorskip("torch")
    for name, size in vocab.DTYPE_BYTES.items():
        assert torch.empty(0, dtype=getattr(torch, name)).element_size() == size, name
    assert set(vocab.FLOAT_DTYPES) <= set(vocab.DTYPE_BYTES)


def test_every_package_uses_the_one_definition():
    from groupconv.approx import structures
    from groupconv.cost import layer
    from groupconv.design import options
    from groupconv.fit import data
    from groupconv.measure import schema, workloads
    from groupconv.networks import catalogue

    assert layer.DTYPE_BYTES is vocab.DTYPE_BYTES
    assert catalogue.ARCHITECTURES is vocab.ARCHITECTURES and catalogue.VARIANTS is vocab.VARIANTS
    assert data.MODELLED_METHODS is vocab.LAYER_METHODS and workloads.LAYER_METHODS is vocab.LAYER_METHODS
    assert workloads.DTYPES is vocab.FLOAT_DTYPES
    assert options.DESIGN_METHODS is vocab.DESIGN_METHODS and structures.METHODS is vocab.GROUPED_METHODS
    assert schema.ROW_METHODS == (*vocab.LAYER_METHODS, "network")
    assert set(vocab.GROUPED_METHODS) <= set(vocab.DESIGN_METHODS) <= set(vocab.LAYER_METHODS)


def test_nn_builds_every_layer_method():
    pytest.importorskip("torch")
    from groupconv import nn

    assert nn.METHODS is vocab.LAYER_METHODS
    for method in vocab.LAYER_METHODS:
        groups = {"dense": None, "dw": None}.get(method, 2)
        layer = nn.make_layer(method, 4, 8, 3, groups)
        assert layer.in_channels == 4 and layer.out_channels == 8
