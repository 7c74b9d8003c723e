"""Started by tests/test_distributed.py under torchrun (2 CPU ranks, gloo): one EOT step's all-reduced
gradient against the same views differentiated in one batch, and a short run's patch on every rank.
Rank 0 writes the figures as JSON to argv[1]."""
import json
import sys

import torch

from blocks.attacks.driver import generate_patch
from blocks.attacks.eot_fgsm import GenerateConfig, objective, step_gradient, view_generator
from blocks.models.digits import load_digits_rgb
from blocks.distributed import join, share
from blocks.models import ModelSpec, load_classifier
from transforms import preset, random_views

torch.set_num_threads(1)
group = join("cpu")
model = load_classifier(ModelSpec(name="digits"), "cpu")
x, y = load_digits_rgb("test")
scenes = x[y != 7][:64]
eot = preset("print", (0.5, 0.6))
cfg = GenerateConfig(target=7, patch_size=16, batch=7, seed=4, autocast="off")  # 4 + 3 views; float32: exact sums
patch = torch.rand(3, 16, 16, generator=torch.Generator().manual_seed(0)).requires_grad_(True)
n = share(cfg.batch, group.world, group.rank)
_, _, _, grad = step_gradient(model, patch, cfg, eot, scenes, view_generator(cfg.seed, group.rank, "cpu"), n,
                              n / cfg.batch)
group.all_sum(grad)
report = {}
if group.is_main:
    # the same views (each rank's own stream, its own share) in one batch, one process
    views = torch.cat([random_views(patch, share(cfg.batch, group.world, r), 32, eot, scenes,
                                    view_generator(cfg.seed, r, "cpu"))[0] for r in range(group.world)])
    loss, _, _ = objective(model(views), cfg)
    (ref,) = torch.autograd.grad(loss, patch)
    report["grad_max_abs_diff"] = (grad - ref).abs().max().item()
    report["grad_max_abs"] = ref.abs().max().item()
    report["grad_sign_agree"] = (grad.sign() == ref.sign()).float().mean().item()
run = generate_patch(model, GenerateConfig(target=7, patch_size=16, steps=12, batch=8, check_every=4, seed=1),
                     eot, scenes, group=group)
patches = group.gather(run.patch)
if group.is_main:
    report["patches_identical"] = all(torch.equal(p, patches[0]) for p in patches)
    report["best_step"] = run.best_step
    report["steps_run"] = len(run.curve)
    with open(sys.argv[1], "w") as f:
        json.dump(report, f)
group.close()
