"""Pipeline stages: registered PyTorch modules that declare their interface."""

from hpv.stages import espcn, fire_gen, fire_upscaler, part_gen, pix2pix_lstm, refiner  # noqa: F401  (registers)
from hpv.stages.base import STAGES, Stage, StageDef, build_stage, register_stage
from hpv.stages.interface import BATCH, Role, StageInterface, StateBinding, TensorSpec

__all__ = ["STAGES", "Stage", "StageDef", "build_stage", "register_stage", "BATCH", "Role",
           "StageInterface", "StateBinding", "TensorSpec"]
