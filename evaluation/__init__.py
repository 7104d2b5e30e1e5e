"""Benchmark evaluation of HF-format causal LM folders (``shardsmith eval``); see :func:`evaluate`.

Imports builders/ (the benchmark files are read by its importers), never trainer/: the trainer reaches evaluation
through the CLI or :func:`evaluate` on an exported folder.
"""

from .benchmarks import BENCHMARKS, EvalError, load_items
from .run import evaluate, markdown_table

__all__ = ["BENCHMARKS", "EvalError", "evaluate", "load_items", "markdown_table"]
