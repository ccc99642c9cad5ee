"""The shared core every area builds on: params loading and validation (``params``), atomic file writing and
JSON/JSONL helpers (``io``), and the one training loop with its checkpoints (``training``)."""
