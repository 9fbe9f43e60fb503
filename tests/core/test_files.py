"""lpip_core.files: what an 8-bit image file holds."""
import torch

from lpip_core.files import from_pil, quantize_8bit, to_pil


def test_quantize_8bit_is_what_a_saved_file_gives_back():
    x = torch.rand(1, 3, 9, 7, generator=torch.Generator().manual_seed(0)) * 1.4 - 0.2  # some outside [0, 1]
    q = quantize_8bit(x)
    assert torch.equal(q, from_pil(to_pil(x)))
    assert torch.equal(quantize_8bit(q), q) and q.dtype == x.dtype and not torch.equal(q, x.clamp(0, 1))
