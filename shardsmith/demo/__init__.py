"""The demo's generated data, kept out of the production packages (``pipelines/``, ``builders/``).

``mix_corpus``: the embedded multi-source pretraining corpus, junk included, that ``shardsmith demo`` writes and mixes
with ``recipes/mix/demo.yaml``.  ``sft_sample``: the small SFT and preference sample that ``recipes/blocks/demo.yaml``
and ``recipes/blocks/demo-pref.yaml`` build (``python -m shardsmith.demo.sft_sample DIR``).  Both are pure functions
of their seed; every word in them is written by the project.
"""
