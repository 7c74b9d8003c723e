"""Turning what a user types ("chicken", "8", "hen") into a class index of the model.

ImageNet has no class named "chicken" (a substring search finds 83 "prairie chicken", a grouse),
so common words go through an explicit alias table; substring and fuzzy hits are only ever offered
as suggestions, never picked silently.
"""
from __future__ import annotations

import difflib
import re
from pathlib import Path

from common.errors import UserError
from common.goal import Goal

# word -> class names, best first. Only names that exist in the model's labels are used, so the
# table is harmless for models with other classes.
ALIASES: dict[str, list[str]] = {
    "chicken": ["hen", "cock"],
    "rooster": ["cock"],
    "dog": ["golden retriever", "Labrador retriever", "beagle"],
    "puppy": ["golden retriever"],
    "cat": ["tabby", "tiger cat", "Egyptian cat", "Persian cat"],
    "kitten": ["tabby"],
    "pig": ["hog", "piggy bank"],
    "panda": ["giant panda", "lesser panda"],
    "bear": ["brown bear", "American black bear", "ice bear"],
    "fish": ["goldfish", "tench"],
    "shark": ["great white shark", "tiger shark"],
    "bird": ["robin", "goldfinch", "house finch"],
    "duck": ["drake", "red-breasted merganser"],
    "goose": ["goose"],
    "turtle": ["loggerhead", "box turtle", "mud turtle"],
    "frog": ["bullfrog", "tree frog", "tailed frog"],
    "snake": ["king snake", "garter snake", "green snake"],
    "horse": ["sorrel"],
    "cow": ["ox"],
    "sheep": ["ram"],
    "monkey": ["macaque", "spider monkey"],
    "car": ["sports car", "convertible", "cab"],
    "truck": ["pickup", "trailer truck", "fire engine"],
    "bike": ["mountain bike", "bicycle-built-for-two"],
    "bicycle": ["mountain bike", "bicycle-built-for-two"],
    "plane": ["airliner", "warplane"],
    "airplane": ["airliner", "warplane"],
    "boat": ["speedboat", "canoe", "lifeboat"],
    "ship": ["container ship", "liner"],
    "phone": ["cellular telephone", "dial telephone"],
    "computer": ["desktop computer", "laptop", "notebook"],
    "cup": ["coffee mug", "cup"],
    "mug": ["coffee mug"],
    "bottle": ["water bottle", "beer bottle", "wine bottle"],
    "ball": ["soccer ball", "tennis ball", "basketball"],
    "toaster": ["toaster"],
    "banana": ["banana"],
    "apple": ["Granny Smith"],
    "orange": ["orange"],
    "pizza": ["pizza"],
    "stop sign": ["street sign"],
}


def resolve_target(query: str | int, labels: list[str], targeted: bool = True) -> Goal:
    """The Goal for what the user typed: an index, an exact class name (any case) or an alias word;
    become that class, or (targeted=False) stop being it.

    Raises UserError with close names when nothing matches exactly.
    """
    text = str(query).strip()
    if not text:
        raise UserError("empty target: give a class name or index (see `blocks targets QUERY`)")
    if text.lstrip("-").isdigit():
        i = int(text)
        if not 0 <= i < len(labels):
            raise UserError(f"target index {i} out of range: the model has classes 0..{len(labels) - 1}")
        return Goal(i, targeted, labels[i])
    lowered = [name.lower() for name in labels]
    key = text.lower()
    if key in lowered:
        i = lowered.index(key)
        return Goal(i, targeted, labels[i])
    present = [n for n in ALIASES.get(key, []) if n.lower() in lowered]
    if present:
        i = lowered.index(present[0].lower())
        return Goal(i, targeted, labels[i], present[1:])
    hints = suggest(text, labels)
    hint = f"; did you mean: {', '.join(hints)}?" if hints else ""
    raise UserError(f"unknown target {text!r} for this model ({len(labels)} classes){hint}")


FUZZY_CUTOFF = 0.6  # difflib's ratio below which a name is not offered as a likely misspelling


def ranked(text: str, labels: list[str]) -> list[int]:
    """Class indices close to what was typed, closest first: substring hits, then names and alias
    words by difflib's similarity. A misspelt alias word counts as its class ("chiken" is closest
    to the word chicken, so hen comes before chime and chain)."""
    key = text.lower().strip()
    lowered = [n.lower() for n in labels]
    score: dict[int, float] = {}

    def offer(i: int, s: float) -> None:
        score[i] = max(score.get(i, 0.0), s)

    for i, n in enumerate(lowered):
        ratio = difflib.SequenceMatcher(None, key, n).ratio()
        if key and key in n:
            offer(i, 1.0 + ratio)  # a substring hit outranks every fuzzy one
        elif ratio >= FUZZY_CUTOFF:
            offer(i, ratio)
    for word, names in ALIASES.items():
        present = [n.lower() for n in names if n.lower() in lowered]
        ratio = difflib.SequenceMatcher(None, key, word).ratio()
        if present and ratio >= FUZZY_CUTOFF:
            offer(lowered.index(present[0]), ratio)
    return sorted(score, key=lambda i: (-score[i], i))


def suggest(text: str, labels: list[str], limit: int = 5) -> list[str]:
    """Close class names, closest first (ranked), formatted 'name (index)'."""
    return [f"{labels[i]} ({i})" for i in ranked(text, labels)[:limit]]


def picked_line(query: str, labels: list[str]) -> str:
    """What `--target QUERY` picks, for `blocks targets QUERY` to say before its list."""
    try:
        t = resolve_target(query, labels)
    except UserError:
        return f"--target {query} picks no class (no name, index or word matches exactly); the closest:"
    more = f" (alternatives: {', '.join(f'{labels.index(a)} {a}' for a in t.alternatives)})" if t.alternatives else ""
    return f"--target {query} picks {t.index} {t.name}{more}; matching classes:"


def search_targets(query: str, labels: list[str]) -> list[tuple[int, str]]:
    """(index, name) of classes matching a query, for `blocks targets`: the resolved class and its
    alternatives first, then substring and fuzzy hits."""
    out: list[tuple[int, str]] = []
    try:
        t = resolve_target(query, labels)
        out.append((t.index, t.name))
        out += [(labels.index(a), a) for a in t.alternatives]
    except UserError:
        pass
    substring = [i for i in ranked(query, labels) if query.lower() in labels[i].lower()]
    fuzzy = [i for i in ranked(query, labels) if i not in substring][:5]
    out += [(i, labels[i]) for i in substring + fuzzy if (i, labels[i]) not in out]
    return out


# --- the targets of a `blocks generate` run -------------------------------------------------------

def target_list(targets: list[str] | None, targets_file: Path | None) -> list[str]:
    """The targets given, then the targets_file lines (blank lines and # comments skipped)."""
    wanted = list(targets or [])
    if targets_file is not None:
        from common.inputs import read_input_text

        try:
            text = read_input_text(targets_file, "targets_file")
        except UserError as e:
            raise UserError(str(e), param="targets_file") from None
        lines = [line.split("#")[0].strip() for line in text.splitlines()]
        if not any(lines):
            raise UserError(f"targets_file {targets_file} names no targets (one per line)", param="targets_file")
        wanted += [line for line in lines if line]
    return wanted


def goals_of(net, wanted: list[str], away_from: str | None):
    """One Goal per target (or the one away_from goal); each class at most once."""
    if wanted and away_from is not None or not wanted and away_from is None:
        raise UserError("give exactly one of targets CLASS (become it) or away_from CLASS (stop being it)",
                        param=("targets", "away_from"))
    goals = [resolve_target(t, net.labels) for t in wanted] or [resolve_target(away_from, net.labels, targeted=False)]
    seen = set()
    for g in goals:
        if g.index in seen:
            raise UserError(f"target {g.name!r} ({g.index}) is asked for twice")
        seen.add(g.index)
    return goals


def goals_before_loading(specs: list, wanted: list[str], away_from: str | None) -> None:
    """A misspelt target fails in a second, not after the seconds of loading weights: checked
    against the class names where they come without loading anything and cannot disagree with
    the weights (the embedded and bundled models with their own names)."""
    from types import SimpleNamespace

    from blocks.models.labels import DIGITS_LABELS, imagenet_labels
    from blocks.models.spec import LITE

    if len(specs) == 1 and specs[0].labels is None and specs[0].name in (*LITE, "digits"):
        names = DIGITS_LABELS if specs[0].name == "digits" else imagenet_labels()
        goals_of(SimpleNamespace(labels=names), wanted, away_from)


def folder_name(goal) -> str:
    """'8-hen': the index keeps folders apart, the name keeps them readable."""
    return f"{goal.index}-{re.sub(r'[^A-Za-z0-9._-]+', '_', goal.name).strip('_')}".rstrip("-")
