"""The model every command loads when no --model is given. A module of its own, importing nothing,
so the terminal's first line (blocks.first_line) names it before even dataclasses are imported."""

DEFAULT_MODEL = "efficientnet_lite0"
