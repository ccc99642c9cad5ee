"""The shared core every area builds on: params loading and validation (``params``), atomic file writing and
JSON/JSONL helpers (``io``), the one CLI convention of every stage (``cli``: bad input or params → one
``error: …`` line, exit code 2), runtime setup (``runtime``: torch threads, precision), the one training loop
(``training``) and its self-describing checkpoints (``checkpoints``), and the stages' computed code deps
(``code_deps``)."""
