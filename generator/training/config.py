"""The training configuration, apart from the training code.

Kept free of torch so the command line can take its defaults from here (one place for them)
without importing torch at start-up.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class TrainConfig:
    """Everything that decides the weights (saved beside them in ``orbis_model.json``)."""

    channels: tuple[int, ...] = (32, 64, 128, 128)
    unshuffle: int = 2
    attention: bool = False  # the study: no measurable gain, 10 % slower
    resolution_embedding: bool = True
    crop: int = 64
    batch: int = 16
    lr: float = 1e-3
    residual_scale: float = 0.1
    teacher_minutes: float = 35.0
    teacher_steps: int = 20000
    distil_minutes: float = 20.0
    distil_steps: int = 6000
    distil_lr: float = 2e-4
    teacher_sampling_steps: int = 4
    student_steps: int = 1
    spectral_weight: float = 0.1
    #: weight of the patch discriminator's hinge loss in the distillation (0: none)
    adversarial_weight: float = 0.0
    other_kernels: float = 0.3
    checkpoint_every: int = 200
    seed: int = 0
    threads: int = 0  # 0: torch's default
    version: str = "2"
    #: condition on the geography's features (model v3; needs training set v3)
    conditions: bool = False
    #: a model folder whose weights the run starts from ("" : random; v3 starts from v2)
    init_from: str = ""
    notes: dict[str, str] = field(default_factory=dict)
