"""The one-pixel attack's settings, checked before a search starts, and its query budget.

The budget is counted in model evaluations per image, the clean image included: for DE the
paper's (1 + popsize x (maxiter + 1)); the faster searches (probe, random) get a fraction of it,
smaller on large images, where one query costs about as many times more as the image has pixels.
"""
from __future__ import annotations

from dataclasses import dataclass

from common.errors import UserError

STRATEGIES = ("probe", "paper", "best1bin", "random")
FITNESSES = ("auto", "margin", "prob")
LARGE = 64 * 64  # pixels: above this the probe's default budget is a hundredth of the paper's
# Ceilings: beyond them a number is a typo, not a search (and would overflow int64 or the memory)
MAX_PIXELS = 1024 * 1024  # pixels (K): at most the largest model input's pixels (and its image's: check_image)
MAX_POPSIZE = 100_000  # popsize: 250 times the paper's
MAX_MAXITER = 1_000_000  # maxiter: the paper runs 100
MAX_QUERIES = 10 ** 10  # max_queries: days of queries on any machine
GENE_BYTES = 64  # bytes per gene (5 per pixel) per candidate at the peak of a generation: the
# population, its trial copy, their discretised int64 rows, the crossover mask (de.py, problem.py)


@dataclass
class OnePixelConfig:
    """Settings of the attack.

    strategy "probe" (default): every position with its farthest RGB-cube corner colour, then the
    other corners at the most promising positions, then DE (best1bin, population probe.SEEDS) seeded
    with the best candidates seen, any position and colour; stops at the first win. "random":
    Sparse-RS with one pixel (Croce et al. 2022): random positions x random corner colours.
    "paper": the paper's DE (population 400, 100 generations). "best1bin": scipy's DE.
    """

    pixels: int = 1  # K, pixels changed per image
    popsize: int = 400  # DE: candidates per image (the paper's 400; peers' popsize x 5 dimensions)
    maxiter: int = 100  # DE: generations after the initial population
    max_queries: int = 0  # model evaluations per image, clean image included; 0 = strategy default
    fitness: str = "auto"  # "margin": goal logit minus best other; "prob": the paper's; auto: DE prob
    strategy: str = "probe"  # "paper": x_r1 + F (x_r2 - x_r3), no crossover; "best1bin": scipy's
    mutation: float = 0.5  # F of the paper strategy
    dither: tuple[float, float] = (0.5, 1.0)  # best1bin: F drawn per image and generation, as scipy
    crossover: float = 1.0  # best1bin: binomial crossover rate (torchattacks and ART run 1.0)
    untargeted_stop: float = 0.05  # stop an image when the true class falls below this
    targeted_stop: float = 0.5  # stop an image when the target class rises above this
    stop_on_flip: bool = False  # also stop as soon as the prediction flips (the peers' criterion)
    batch: int = 0  # images per forward pass; 0 = chosen from the image size and device
    seed: int | None = 0  # None = not reproducible
    dedupe: bool = True  # don't re-evaluate a child that is pixel-for-pixel its parent or a sibling
    fast: bool = True  # CPU, long runs: score with a frozen TorchScript copy (conv+BN folded, mkldnn)

    def check(self) -> "OnePixelConfig":
        if self.strategy not in STRATEGIES:
            raise UserError(f"strategy must be one of {', '.join(STRATEGIES)}, not {self.strategy!r}", "strategy")
        if not 1 <= self.pixels <= MAX_PIXELS:
            raise UserError(f"pixels must be from 1 to {MAX_PIXELS}, not {self.pixels}", "pixels")
        if not 5 <= self.popsize <= MAX_POPSIZE:
            raise UserError(f"popsize must be from 5 (DE needs distinct donors) to {MAX_POPSIZE}, not {self.popsize}",
                            "popsize")
        if self.fitness not in FITNESSES:
            raise UserError(f"fitness must be one of {', '.join(FITNESSES)}, not {self.fitness!r}", "fitness")
        if self.max_queries < 0 or self.max_queries == 1 or self.max_queries > MAX_QUERIES:
            raise UserError(f"max_queries must be 0 (default) or from 2 to {MAX_QUERIES}, not {self.max_queries}",
                            "max_queries")
        if self.is_de and self.max_queries and self.max_queries < self.popsize + 1:
            raise UserError(f"max_queries {self.max_queries} cannot hold DE's first population: "
                            f"give at least popsize + 1 = {self.popsize + 1}", ("max_queries", "popsize"))
        if not 0 <= self.maxiter <= MAX_MAXITER:
            raise UserError(f"maxiter must be from 0 to {MAX_MAXITER}, not {self.maxiter}", "maxiter")
        if self.batch < 0:
            raise UserError(f"batch must be 0 (auto) or more, not {self.batch}", "batch")
        if not 0.0 < self.crossover <= 1.0:
            raise UserError(f"crossover rate must lie in (0, 1], not {self.crossover}")
        if not (0.0 < self.untargeted_stop <= 1.0 and 0.0 <= self.targeted_stop < 1.0):
            raise UserError("stop thresholds must be probabilities")
        return self

    def check_image(self, images: int, h: int, w: int) -> None:
        """Settings against the images they search (before the search): K at most the pixels of
        one, and the population of every image at once within the memory free."""
        from common.memory import check_fits

        if self.pixels > h * w:
            raise UserError(f"pixels {self.pixels} is more than the {h} x {w} = {h * w} pixels of the images "
                            f"(the attack runs at the model's input size)", "pixels")
        population = self.popsize if self.is_de else 1
        check_fits(float(images) * population * 5 * self.pixels * GENE_BYTES,
                   f"popsize {self.popsize} with pixels {self.pixels} on {images} images", "popsize or pixels",
                   param=("popsize", "pixels", "popsize", "pixels"))

    @property
    def is_de(self) -> bool:
        return self.strategy in ("paper", "best1bin")

    @property
    def fitness_used(self) -> str:
        return self.fitness if self.fitness != "auto" else ("prob" if self.is_de else "margin")

    def budget_for(self, pixels: int) -> int:
        """The budget for images of `pixels` pixels (H x W): --max-queries if given; else for DE the
        paper's, for probe and random a tenth of it, a hundredth for images of more than LARGE
        pixels (a query costs about as many times more as the image has pixels)."""
        if self.max_queries:
            return self.max_queries
        full = 1 + self.popsize * (self.maxiter + 1)
        if self.is_de:
            return full
        return 1 + full // (100 if pixels > LARGE else 10)
