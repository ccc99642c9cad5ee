"""Building blocks of the synthetic video world (see ``pipeline/synth/generate.py`` for the world and the file layout).

* ``vocab``    — the closed vocabulary: shapes, colours, sizes, grid positions, verbs, counters (domains).
* ``events``   — actors, events and the seeded planner that schedules them on a frame grid.
* ``tracks``   — per-frame actor state (position, size, angle, alpha, colour) computed from the events.
* ``render``   — numpy rasteriser: counter background, shapes, camera shake, lighting, noise, zoom.
* ``captions`` — event → detailed caption, EPIC narration, and the oracle S1/S2/S3 under-specifications.
* ``writers``  — H.264 mp4 encoding and the EPIC-KITCHENS / ActivityNet-Captions / QVHighlights writers.
"""
