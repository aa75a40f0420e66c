"""Models orbis can sample from; the built-in one is :class:`SuperResolutionModel`."""

from .sr_model import SuperResolutionModel, build_unet, resolution_label

__all__ = ["SuperResolutionModel", "build_unet", "resolution_label"]
