"""Judging a model: PSNR / SSIM (`metrics`) and the
paper's tables on held-out faces (`evaluate`)."""
