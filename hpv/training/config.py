"""Training configs: frozen, named, registered. `cpu` trains the default pipeline on this 2-core
machine in tens of minutes; `gpu` is the larger run for a machine with an accelerator."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from hpv.errors import ConfigError
from hpv.registry import Registry


@dataclass(frozen=True)
class DataConfig:
    synthetic_sequences: int = 48  # seeded synthetic signing, used when real poses are absent or too few
    frames: int = 40  # frames per synthetic sequence; real sequences are cut to at most this
    real: bool = True  # use the fingerspelling poses of `spoken-to-signed` when installed
    max_real: int = 120  # real sequences to use at most (0: none)
    hr_sequences: int = 12  # training sequences that also get 768x768 ground truth (upscaler)
    hr_eval_sequences: int = 16  # val and test sequences (first by id) with it, for evaluation
    styles: bool = True  # synthetic arms cycle through rest / face / cross / wide / mixed, not only signing
    variant_every: int = 3  # every n-th sequence also comes mirrored, jittered or with keypoints missing (0: none)
    seed: int = 0

    def __post_init__(self):
        if self.synthetic_sequences + self.max_real < 10:
            raise ConfigError("data: need at least 10 sequences to split into train / val / test")


@dataclass(frozen=True)
class Budget:
    steps: int
    batch: int
    clip: int = 1  # frames per clip; > 1 trains a recurrent stage with its state carried
    lr: float = 2e-3
    crop: int = 0  # low-resolution crop side for upscalers (0: whole frame)
    # Share of upscaler crops centred on a hand (the rest lie anywhere): uniform crops of a
    # 128x128 frame rarely hold a hand, yet the hands are where looks are scored.
    hand_crops: float = 0.0

    def __post_init__(self):
        if self.steps < 0 or self.batch < 1 or self.clip < 1 or self.lr <= 0:
            raise ConfigError(f"budget {self}: steps >= 0, batch >= 1, clip >= 1, lr > 0")
        if not 0.0 <= self.hand_crops <= 1.0:
            raise ConfigError(f"budget {self}: hand_crops is a share of crops, in [0, 1]")


@dataclass(frozen=True)
class LossConfig:
    person_weight: float = 3.0  # person pixels (dilated ground-truth silhouette) count 1 + this
    gradient_weight: float = 1.0  # L1 of image gradients: edges and fingers
    ssim_weight: float = 0.2  # 1 - SSIM
    hand_weight: float = 3.0  # pixels inside the hands' boxes (from the keypoints) count this much more
    # Part stages: the same loss on their colour alone (not blended by their alpha), this much. The
    # blended loss alone lets a colour that starts worse than the context get little gradient where
    # alpha is low, and alpha stays low there: the shipped hand generator's alpha averaged 0.26 on
    # the hand's skin and 0.59 around it, showing the blurry whole-body hand through.
    colour_weight: float = 0.0

    def __post_init__(self):
        if min(self.person_weight, self.gradient_weight, self.ssim_weight, self.hand_weight, self.colour_weight) < 0:
            raise ConfigError(f"loss weights must be >= 0; got {self}")


@dataclass(frozen=True)
class TrainConfig:
    name: str
    data: DataConfig
    generator: Budget
    refiner: Budget  # per refinement step k: step k trains on what steps < k produce
    upscaler: Budget
    baseline_generator: Budget
    baseline_upscaler: Budget
    temporal_weight: float = 0.5
    adversarial_weight: float = 0.0  # PatchGAN; 0 turns it off (CPU default)
    loss: LossConfig = LossConfig()
    grad_clip: float = 1.0  # gradient norm clipped to this (0: off); long runs collapse without it
    eval_every: int = 200
    checkpoint_every: int = 100
    seed: int = 0
    init: str = "seeded"  # "seeded": fresh initialisation; "shipped": continue from the package's weights
    # Part generators (pipelines with parts): crops of the first `part_sequences` training sequences.
    parts: Budget = Budget(steps=0, batch=16, lr=1e-3)
    part_sequences: int = 160
    part_stages: tuple[str, ...] = ()  # the part stages to train (empty: all of the pipeline's)

    def __post_init__(self):
        if self.init not in ("seeded", "shipped"):
            raise ConfigError(f"training config {self.name}: init must be 'seeded' or 'shipped', got {self.init!r}")

    def scaled(self, factor: float) -> TrainConfig:
        """Every step count times `factor` (at least 1; a stage that does not train stays at 0):
        quick runs and tests."""
        def s(b: Budget) -> Budget:
            return dataclasses.replace(b, steps=max(1, int(b.steps * factor)) if b.steps else 0)
        return dataclasses.replace(
            self, generator=s(self.generator), refiner=s(self.refiner), upscaler=s(self.upscaler),
            baseline_generator=s(self.baseline_generator), baseline_upscaler=s(self.baseline_upscaler),
            parts=s(self.parts),
            eval_every=max(1, int(self.eval_every * factor)),
            checkpoint_every=max(1, int(self.checkpoint_every * factor)))

    def trains_cascade(self, baseline: bool = False) -> bool:
        """Whether the whole-frame stages train at all (a parts-only config skips their data)."""
        budgets = ((self.baseline_generator, self.baseline_upscaler) if baseline
                   else (self.generator, self.refiner, self.upscaler))
        return any(b.steps for b in budgets)

    def to_json(self) -> dict:
        return dataclasses.asdict(self)


CONFIGS: Registry[TrainConfig] = Registry("training config")

CONFIGS.add("cpu", TrainConfig(  # the default pipeline in ~60 min of a 2-core CPU (more when the cores are shared)
    name="cpu",
    data=DataConfig(synthetic_sequences=60, hr_sequences=16),
    generator=Budget(steps=2000, batch=4, clip=4, lr=1.5e-3),
    refiner=Budget(steps=700, batch=8, lr=1e-3),
    upscaler=Budget(steps=1500, batch=8, lr=1e-3, crop=32),
    baseline_generator=Budget(steps=600, batch=2, clip=2, lr=5e-4),
    baseline_upscaler=Budget(steps=1500, batch=8, lr=1e-3, crop=32),
    eval_every=250,
))
CONFIGS.add("cpu-continue", TrainConfig(  # ~50 min more of the cpu run, from the shipped weights
    name="cpu-continue",
    data=DataConfig(synthetic_sequences=60, hr_sequences=16),
    generator=Budget(steps=1500, batch=4, clip=4, lr=6e-4),
    refiner=Budget(steps=500, batch=8, lr=4e-4),
    upscaler=Budget(steps=2000, batch=8, lr=6e-4, crop=32),
    baseline_generator=Budget(steps=600, batch=2, clip=2, lr=2e-4),
    baseline_upscaler=Budget(steps=1500, batch=8, lr=5e-4, crop=32),
    eval_every=250, init="shipped",
))
# ~45 min more (more when the cores are shared), from the shipped weights: the width-16 upscaler
# (started from the leading slices of the width-24 one) and hands weighing more. The shipped weights
# come from it; its generator phase ran 200 steps of a 1500-step schedule, then the run was resumed
# with the step count cut to 200 (a resume follows the new count from where it stopped).
CONFIGS.add("cpu-looks", TrainConfig(
    name="cpu-looks",
    data=DataConfig(synthetic_sequences=60, hr_sequences=16),
    generator=Budget(steps=200, batch=4, clip=4, lr=5e-4),
    refiner=Budget(steps=300, batch=8, lr=3e-4),
    upscaler=Budget(steps=2000, batch=8, lr=1e-3, crop=32),  # the width-16 upscaler starts from slices of the width-24 one
    baseline_generator=Budget(steps=600, batch=2, clip=2, lr=2e-4),
    baseline_upscaler=Budget(steps=1500, batch=8, lr=5e-4, crop=32),
    loss=LossConfig(hand_weight=5.0),
    eval_every=250, init="shipped",
))
# From the shipped (cpu-looks) weights: hands weigh more in every phase's loss, and half the
# upscaler's crops are centred on a hand.
CONFIGS.add("cpu-hands", TrainConfig(
    name="cpu-hands",
    data=DataConfig(synthetic_sequences=60, hr_sequences=16),
    generator=Budget(steps=1500, batch=4, clip=4, lr=5e-4),
    refiner=Budget(steps=300, batch=8, lr=3e-4),
    upscaler=Budget(steps=2000, batch=8, lr=6e-4, crop=32, hand_crops=0.5),
    baseline_generator=Budget(steps=600, batch=2, clip=2, lr=2e-4),
    baseline_upscaler=Budget(steps=1500, batch=8, lr=5e-4, crop=32),
    loss=LossConfig(hand_weight=8.0),
    eval_every=250, init="shipped",
))
# From the shipped (cpu-hands) weights, generator kept: more refiner steps, and three upscaler
# crops in four centred on a hand.
_hands = CONFIGS.get("cpu-hands")
CONFIGS.add("cpu-hands-2", dataclasses.replace(
    _hands, name="cpu-hands-2",
    generator=dataclasses.replace(_hands.generator, steps=0),
    refiner=dataclasses.replace(_hands.refiner, steps=600),
    upscaler=dataclasses.replace(_hands.upscaler, steps=3000, hand_crops=0.75),
))
CONFIGS.add("cpu-parts", dataclasses.replace(
    # The part generators of the default pipeline, from the shipped whole-frame stages (not trained
    # again): ~35 min of these 2 cores, most of it the crops (the pipeline run over 160 training
    # sequences and their ground truth drawn at 768).
    _hands, name="cpu-parts",
    generator=dataclasses.replace(_hands.generator, steps=0),
    refiner=dataclasses.replace(_hands.refiner, steps=0),
    upscaler=dataclasses.replace(_hands.upscaler, steps=0),
    parts=Budget(steps=3000, batch=16, lr=1e-3),
    loss=LossConfig(),
    eval_every=250,
))
CONFIGS.add("cpu-parts-hands", dataclasses.replace(
    # The hand generator alone (the face's weights kept), e.g. after its width changed.
    CONFIGS.get("cpu-parts"), name="cpu-parts-hands", part_stages=("hand_gen",),
))
CONFIGS.add("cpu-parts-hands-2", dataclasses.replace(
    # 3000 more hand generator steps from the shipped weights, the hands' boxes in the crop weighing 8x.
    CONFIGS.get("cpu-parts-hands"), name="cpu-parts-hands-2", parts=Budget(steps=3000, batch=16, lr=5e-4),
    loss=LossConfig(hand_weight=8.0),
))
CONFIGS.add("cpu-parts-face", dataclasses.replace(
    # The face generator alone at its 96x96 crop, from the shipped 64x64 face weights (the stage is
    # fully convolutional: the same tensors fit), the hand generator's kept.
    CONFIGS.get("cpu-parts"), name="cpu-parts-face", part_stages=("face_gen",),
    parts=Budget(steps=3000, batch=16, lr=5e-4),
))
CONFIGS.add("cpu-parts-face-2", dataclasses.replace(
    # 3000 more face generator steps from the shipped 96x96 face weights, at a lower rate.
    CONFIGS.get("cpu-parts-face"), name="cpu-parts-face-2", parts=Budget(steps=3000, batch=16, lr=3e-4),
))
CONFIGS.add("cpu-parts-hands-3", dataclasses.replace(
    # 4500 more hand generator steps from the shipped (cpu-parts-hands-2) weights at a lower rate.
    CONFIGS.get("cpu-parts-hands-2"), name="cpu-parts-hands-3", parts=Budget(steps=4500, batch=16, lr=3e-4),
))
CONFIGS.add("cpu-parts-face-3", dataclasses.replace(
    # 3000 more face generator steps from the shipped (cpu-parts-face-2) weights at a lower rate.
    CONFIGS.get("cpu-parts-face-2"), name="cpu-parts-face-3", parts=Budget(steps=3000, batch=16, lr=1.5e-4),
))
CONFIGS.add("cpu-parts-colour", dataclasses.replace(
    # Both part generators from the shipped weights, their colour also scored alone (colour_weight),
    # the hands' boxes weighing 8x as in cpu-parts-hands-2. Tried, not shipped: the hand's alpha
    # opened up, but its colour is no better than what alpha hid (hand-box PSNR at 768 23.60 ->
    # 23.31), and the face's crop validation PSNR fell (29.28 -> 29.13 at 2250 of 3000 steps).
    CONFIGS.get("cpu-parts"), name="cpu-parts-colour", parts=Budget(steps=3000, batch=16, lr=5e-4),
    loss=LossConfig(hand_weight=8.0, colour_weight=1.0),
))
CONFIGS.add("gpu", TrainConfig(
    name="gpu",
    data=DataConfig(synthetic_sequences=200, frames=64, max_real=600, hr_sequences=80),
    generator=Budget(steps=20000, batch=16, clip=8, lr=2e-3),
    refiner=Budget(steps=5000, batch=32, lr=1e-3),
    upscaler=Budget(steps=8000, batch=16, lr=1e-3, crop=48),
    baseline_generator=Budget(steps=20000, batch=8, clip=8, lr=2e-4),
    baseline_upscaler=Budget(steps=8000, batch=16, lr=1e-3, crop=48),
    adversarial_weight=0.01,
    eval_every=1000, checkpoint_every=500,
))
# tests and smoke runs. Measured niced on this 2-core machine: `hpv train --config tiny` 20 s idle,
# 37 s with both cores busy (load 5); with --small 7 s. Most of it is rendering data and setup, not steps.
CONFIGS.add("tiny", TrainConfig(
    name="tiny",
    data=DataConfig(synthetic_sequences=10, frames=6, real=False, hr_sequences=2),
    generator=Budget(steps=6, batch=2, clip=3),
    refiner=Budget(steps=4, batch=2),
    upscaler=Budget(steps=4, batch=2, crop=8),
    baseline_generator=Budget(steps=3, batch=1, clip=2, lr=2e-4),
    baseline_upscaler=Budget(steps=3, batch=2, crop=8),
    eval_every=3, checkpoint_every=2,
))
