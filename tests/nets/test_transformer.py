"""The feed-forward transformation network: any size in, the same size out in [0, 1]; seeded weights;
instance normalisation per image; recorded statistics reproduce the image's own."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from styleforge.errors import InvalidParameter
from styleforge.nets.transformer import InstanceNorm, TransformerNet


@pytest.mark.parametrize("shape", [(1, 3, 32, 32), (2, 3, 37, 50), (1, 3, 5, 3), (1, 3, 1, 9)])
def test_any_size_in_the_same_size_out_in_the_unit_range(shape: tuple[int, ...]) -> None:
    net = TransformerNet(4, 1)
    with torch.no_grad():
        out = net(torch.rand(shape))
    assert out.shape == shape
    assert float(out.min()) >= 0 and float(out.max()) <= 1


def test_seeded_weights_leave_the_global_generator_alone() -> None:
    torch.manual_seed(123)
    before = torch.get_rng_state()
    a, b, c = TransformerNet(4, 2, seed=1), TransformerNet(4, 2, seed=1), TransformerNet(4, 2, seed=2)
    assert torch.equal(torch.get_rng_state(), before)
    for key, value in a.state_dict().items():
        assert torch.equal(value, b.state_dict()[key]), key
    assert any(not torch.equal(v, c.state_dict()[k]) for k, v in a.state_dict().items())
    assert all(p.device.type == "cpu" for p in a.parameters())


def test_the_layout_johnson_et_al_describe() -> None:
    net = TransformerNet(8, 3)
    convs = [m for m in net.modules() if isinstance(m, nn.Conv2d)]
    assert [(c.in_channels, c.out_channels, c.kernel_size[0], c.stride[0]) for c in convs[:3]] == [
        (3, 8, 9, 1),
        (8, 16, 3, 2),
        (16, 32, 3, 2),
    ]
    assert (convs[-1].in_channels, convs[-1].out_channels, convs[-1].kernel_size[0]) == (8, 3, 9)
    assert not any(isinstance(m, nn.ConvTranspose2d) for m in net.modules())  # upsample + conv
    assert all(isinstance(m, nn.ReflectionPad2d) for m in net.modules() if isinstance(m, nn.ZeroPad2d))
    assert len(net.norms()) == 3 + 2 * 3 + 2 and net.shape() == {"width": 8, "blocks": 3}


def test_each_image_of_a_batch_is_normalised_on_its_own() -> None:
    net = TransformerNet(4, 1)
    x = torch.rand(3, 3, 20, 24)
    together = net(x)
    alone = torch.cat([net(x[i : i + 1]) for i in range(3)])
    torch.testing.assert_close(together, alone, rtol=1e-5, atol=1e-6)


def test_recorded_statistics_reproduce_the_images_own() -> None:
    net = TransformerNet(4, 1)
    with torch.no_grad():
        for norm in net.norms():  # not the identity, so that the statistics matter
            norm.weight.uniform_(0.5, 1.5)
            if norm.bias is not None:
                norm.bias.uniform_(-0.2, 0.2)
    x = torch.rand(1, 3, 24, 24)
    stats = net.statistics(x)
    assert len(stats) == len(net.norms()) and all(norm.record is None for norm in net.norms())
    with net.fixed_statistics(stats):
        fixed = net(x)
        other = net(torch.rand(1, 3, 24, 24))
    assert all(norm.fixed is None for norm in net.norms())
    torch.testing.assert_close(fixed, net(x), rtol=1e-4, atol=1e-5)
    assert not torch.allclose(other, net(other), atol=1e-3)  # another image's statistics: not its own


def test_instance_norm_matches_torchs() -> None:
    norm = InstanceNorm(5)
    reference = nn.InstanceNorm2d(5, affine=True)
    with torch.no_grad():
        norm.weight.uniform_(0.5, 2)
        norm.bias.uniform_(-1, 1)
        reference.weight.copy_(norm.weight)
        reference.bias.copy_(norm.bias)
    x = torch.randn(2, 5, 7, 9)
    torch.testing.assert_close(norm(x), reference(x))
    norm.record = []
    torch.testing.assert_close(norm(x[:1]), reference(x[:1]), rtol=1e-5, atol=1e-5)  # the recording path


@pytest.mark.parametrize("width, blocks", [(0, 5), (16, -1), (16.0, 5), (True, 5)])
def test_a_bad_shape_is_refused(width: object, blocks: object) -> None:
    with pytest.raises(InvalidParameter):
        TransformerNet(width, blocks)  # type: ignore[arg-type]


def test_no_parameter_is_cancelled_by_a_normalisation() -> None:
    """A bias before an instance norm (directly, or through the residual stream) gets no gradient."""
    net = TransformerNet(4, 2)
    net(torch.rand(2, 3, 24, 24)).square().mean().backward()
    dead = [name for name, p in net.named_parameters() if p.grad is None or float(p.grad.abs().max()) < 1e-7]
    assert not dead, dead
    biases = [name for name, _ in net.named_parameters() if name.endswith("bias")]
    assert "up.6.1.bias" in biases and not any(
        name.startswith("residual") and ".4." in name for name in biases
    )
