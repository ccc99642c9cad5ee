"""Canonical schema (``schema.py``) and one small adapter module per source dataset.

Adapters (each: an ``Options`` dataclass = ``datasets.sources.<name>.options`` and
``load(root, options, policy, dataset) -> (list[VideoRecord], BadRowReport)``):
``epic_kitchens_100``, ``charades_ego`` (TAL, verb classes, domains); ``hd_epic``, ``youcook2``,
``activitynet_captions``, ``tacos``, ``charades_sta`` (caption VMR); ``qvhighlights`` (MR + HD saliency).
Shared: ``badrows`` (bad-row categories and the clip/drop/fail policy), ``common`` (parsing helpers and the
ActivityNet/TACoS caption layout), ``scenarios`` (source/target selectors of domain-shift scenarios).
The format → module table is ``pipeline.datasets.ingest.ADAPTERS``.
"""
