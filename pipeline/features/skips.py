"""How many videos a split may lose at extraction (``features.decode.max_skipped_share``).

Under ``features.decode.on_error: skip`` a bad video is listed and extraction goes on. A split that loses every
video, or more than the configured share of them, is not a usable feature set (a wrong data root, a broken
download): the extract stage (as soon as it knows) and the merge stage (over all shards) stop with one error
listing the skipped videos, instead of handing an empty or thinned split to the trainers.
"""
from __future__ import annotations

from typing import Mapping, Sequence

from pipeline.core.io import InputError

SHOWN = 20  # skipped videos named in the error line; the rest are counted


def check_split_losses(
    dataset: str,
    totals: Mapping[str, int],
    lost: Mapping[str, Sequence[tuple[str, str]]],
    max_share: float,
    where: str = "",
) -> None:
    """Raise ``InputError`` for the first split (sorted) that lost all of its ``totals[split]`` videos or more
    than ``max_share`` of them; ``lost[split]`` lists its skipped ``(video_id, reason)`` pairs.

    ``where`` (e.g. ``shard 0/2``) says what part of the dataset the counts come from.
    """
    for split in sorted(lost):
        items = sorted(lost[split])
        total = int(totals.get(split, len(items)))
        n = len(items)
        if n == 0 or total <= 0:
            continue
        if n >= total:
            why = "every one of them: a split without features cannot be trained or evaluated"
            hint = "Fix these videos (or the data root) or drop the split"
        elif n > max_share * total:
            why = f"{100 * n / total:.1f}% > features.decode.max_skipped_share = {100 * max_share:g}%"
            hint = "Fix or remove these videos, or raise features.decode.max_skipped_share"
        else:
            continue
        listed = "; ".join(f"{vid} ({reason})" for vid, reason in items[:SHOWN])
        more = f"; ... and {n - SHOWN} more" if n > SHOWN else ""
        at = f" ({where})" if where else ""
        raise InputError(
            f"{dataset}: split {split!r} lost {n} of its {total} videos at extraction{at}, {why}. "
            f"Skipped: {listed}{more}. {hint}"
        )
