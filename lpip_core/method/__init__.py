"""The method itself: the conditional UNet, the noise schedule, the patch grid and its fusion, the
fused DDIM sampler, `restore` and the checkpoint format."""
