"""The zoo's architectures against torchvision's published parameter counts and GFLOPS,
and their MACs against torch's own FlopCounterMode."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

from groupconv.errors import GroupConvError  # noqa: E402
from groupconv.networks import count_module  # noqa: E402
from groupconv.networks.zoo import ZOO, build_zoo, zoo_input_shape  # noqa: E402

# torchvision's model cards (docs/models, "Params" column; torchvision is not installed here,
# these are the published numbers, e.g. https://pytorch.org/vision/stable/models.html).
PUBLISHED_PARAMS = {
    "resnet18": 11_689_512,
    "resnet50": 25_557_032,
    "mobilenet_v2": 3_504_872,
    "shufflenet_v2": 2_278_604,  # shufflenet_v2_x1_0
    "convnext_tiny": 28_589_128,
    "efficientnet_b0": 5_288_548,
}
# torchvision's "GFLOPS" column, which counts multiply-accumulates at 224x224, printed to 2 decimals.
PUBLISHED_GMACS = {
    "resnet18": 1.81,
    "resnet50": 4.09,
    "mobilenet_v2": 0.30,
    "shufflenet_v2": 0.14,
    "convnext_tiny": 4.46,
    "efficientnet_b0": 0.39,
}


def test_zoo_has_at_least_the_six_networks():
    assert set(PUBLISHED_PARAMS) <= set(ZOO)


@pytest.mark.parametrize("name", sorted(PUBLISHED_PARAMS))
def test_parameter_count_is_torchvisions(name):
    module = build_zoo(name, device="meta")
    assert sum(p.numel() for p in module.parameters()) == PUBLISHED_PARAMS[name]


@pytest.mark.parametrize("name", sorted(PUBLISHED_PARAMS))
def test_macs_match_flop_counter_and_published(name):
    """count_module's MACs (forward hooks on conv/linear modules) = FlopCounterMode's
    conv + matmul FLOPs / 2 / batch, and round to torchvision's printed GFLOPS."""
    module = build_zoo(name, device="meta")
    x = torch.zeros(2, 3, 224, 224, device="meta")
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        module(x)
    macs = count_module(module, (2, 3, 224, 224)).macs
    assert 2 * 2 * macs == counter.get_total_flops()
    assert round(macs / 1e9, 2) == PUBLISHED_GMACS[name]


@pytest.mark.parametrize("name", sorted(ZOO))
def test_runs_at_a_small_size_with_other_classes(name):
    """A real forward on CPU at 64x64 with 10 classes: finite logits of the right shape."""
    torch.manual_seed(0)
    module = build_zoo(name, image_size=64, num_classes=10)
    assert not module.training
    assert module.image_size == 64
    with torch.no_grad():
        out = module(torch.randn(zoo_input_shape(module, 2)))
    assert out.shape == (2, 10)
    assert torch.isfinite(out).all()


def test_macs_scale_with_image_area():
    """Every conv's output area scales by (S'/S)^2 when each stage divides evenly: ResNet-18's
    conv MACs at 448 are 4x those at 224 (the classifier's 512*1000 MACs do not scale)."""
    fc = 512 * 1000
    small = count_module(build_zoo("resnet18", device="meta"), (1, 3, 224, 224)).macs
    large = count_module(build_zoo("resnet18", 448, device="meta"), (1, 3, 448, 448)).macs
    assert large - fc == 4 * (small - fc)


def test_bad_arguments_are_one_line_errors():
    with pytest.raises(GroupConvError, match="image_size must be at least 32, got 16"):
        build_zoo("resnet18", image_size=16)
    with pytest.raises(GroupConvError, match="num_classes"):
        build_zoo("resnet18", num_classes=0)
    with pytest.raises(GroupConvError, match="unknown zoo network 'vgg'"):
        build_zoo("vgg")
