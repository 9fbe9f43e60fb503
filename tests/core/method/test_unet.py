import pytest
import torch

from lpip_core.method.unet import PRESETS, ConditionalUNet, UNetConfig, count_parameters, timestep_embedding


def test_tiny_preset_is_under_200k_parameters():
    assert count_parameters(ConditionalUNet(PRESETS["tiny"])) < 200_000


@pytest.mark.parametrize("size", [(16, 16), (8, 24), (32, 16)])
def test_fully_convolutional_on_any_multiple_of_the_downsampling(size):
    net = ConditionalUNet(PRESETS["tiny"])
    x = torch.randn(2, 3, *size)
    assert net(x, x, torch.tensor([3.0, 700.0])).shape == (2, 3, *size)


@pytest.mark.parametrize("preset,patch", [("small", 16), ("base", 32), ("large", 16)])
def test_presets_take_their_patch(preset, patch):
    net = ConditionalUNet(PRESETS[preset]).eval()
    x = torch.randn(1, 3, patch, patch)
    with torch.no_grad():
        assert net(x, x, torch.tensor([10.0])).shape == (1, 3, patch, patch)


def test_patch_the_unet_cannot_take_is_a_clear_error():
    net = ConditionalUNet(PRESETS["base"])  # downsamples by 8
    x = torch.randn(1, 3, 20, 20)
    with pytest.raises(ValueError, match="multiple of 8"):
        net(x, x, torch.tensor([1.0]))


def test_output_depends_on_condition_and_timestep():
    torch.manual_seed(0)
    net = ConditionalUNet(PRESETS["tiny"])
    for p in net.parameters():  # re-draw the zero-initialised output layers
        if not p.any():
            torch.nn.init.normal_(p, 0, 0.05)
    x, lq = torch.randn(1, 3, 16, 16), torch.randn(1, 3, 16, 16)
    t = torch.tensor([100.0])
    base = net(x, lq, t)
    assert not torch.allclose(base, net(x, -lq, t))
    assert not torch.allclose(base, net(x, lq, torch.tensor([900.0])))


def test_timestep_embedding_shape_and_distinctness():
    e = timestep_embedding(torch.tensor([0.0, 1.0, 999.0]), 33)
    assert e.shape == (3, 33)
    assert not torch.allclose(e[0], e[1])


@pytest.mark.parametrize("bad", [dict(channel_mults=()), dict(attention_levels=(5,)), dict(base_channels=12)])
def test_inconsistent_configs_are_refused(bad):
    with pytest.raises(ValueError):
        UNetConfig(**bad)


def test_config_round_trips_through_a_dict():
    cfg = PRESETS["base"]
    assert UNetConfig(**cfg.to_dict()) == cfg
