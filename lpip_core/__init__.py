"""LPIP-Diff: identity-preserving diffusion for face restoration, in pure PyTorch.

The public API: `load_model` a .safetensors checkpoint, `restore` LQ faces with the
overlapping-patch fused DDIM sampler, `degrade` HQ faces the way training does, and
`psnr` / `ssim` to score the result. Never imports ComfyUI.
"""
from .data.degrade import DegradeParams, degrade, random_params
from .evaluation.metrics import psnr, ssim
from .method.checkpoint import CheckpointError, load_model, read_config, save_model
from .method.model import LPIPModel, ModelConfig
from .method.plan import ALREADY_UPSCALED, LOW_RESOLUTION
from .method.restoration import DEFAULT_STEPS, restore
from .method.sampler import SamplingCancelled
from .method.schedule import NoiseSchedule, ScheduleConfig
from .method.unet import PRESETS, ConditionalUNet, UNetConfig

__version__ = "0.1.0"

__all__ = [
    "ALREADY_UPSCALED", "CheckpointError", "ConditionalUNet", "DEFAULT_STEPS", "DegradeParams", "LOW_RESOLUTION",
    "LPIPModel", "ModelConfig", "NoiseSchedule", "PRESETS", "SamplingCancelled", "ScheduleConfig", "UNetConfig",
    "degrade", "load_model", "psnr", "random_params", "read_config", "restore", "save_model", "ssim",
]
