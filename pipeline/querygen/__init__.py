"""Search-query generation (thesis §3.3.2, §3.5.2; DESIGN §7): caption → under-specified search queries.

Pieces, each in its own module:

* ``llm`` — the LLM interface (greedy batched generation with stop strings), the on-disk LLM cache and the
  ``transformers`` backend (embedded Gemma 3 270M, left-padded batches sharing one few-shot prefix);
  ``vllm_backend`` — the GPU backend (imported lazily); ``embedded`` — the GGUF → plain-checkpoint cache.
* ``prompts`` — few-shot prompt files (``prompts/<set>/{rewrite,validate,aggregate}.yaml``, ``hypernyms.yaml``).
* ``grounding`` — the deterministic grounding check (content words + hypernyms, sentence cosine).
* ``agents`` — rewriter, validator and aggregator built on the two above; ``review`` — review files and the
  ``fallback | drop | fail`` policy.
* ``encoder`` — sentence embeddings (MiniLM by default); ``grouping`` — cosine graph + DFS components;
  ``aggregation`` — one representative query per group, checked against every member.
* ``benchmark`` — search/caption benchmark sets, single/multi splits and Table 3.1 statistics;
  ``windows`` — HD-EPIC 500-frame windows; ``oracle`` — scores against the synthetic world's oracle.

Stages (``python -m pipeline.querygen.<module>``, one ``main()`` skeleton in ``common.run_stage``):
``generate`` (``querygen_generate``: prepare + LLM rewrite + validation, the expensive part), ``build``
(``querygen_build``: grouping + aggregation + the benchmark files and Table 3.1 metrics) and ``oracle_score``
(``querygen_oracle``, synthetic world only).
"""
