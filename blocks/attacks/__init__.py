"""Attacks, one per file. Each is a plain function `attack(model, ..., config) -> result dataclass`
taking a blocks.models.Classifier (RGB in [0, 1] in, logits out) and a settings dataclass."""
from blocks.attacks.eot_fgsm import GenerateConfig, GenerateResult, generate_patch
from blocks.attacks.fgsm_sweep import Sweep, epsilon_sweep
