"""Keep datatrove's per-task INFO logs in their task log files instead of the user's terminal.

datatrove (0.10.1) has no switch for this: every task removes all loguru handlers and adds stderr at INFO, and
after the task re-adds stderr at DEBUG. shardsmith shows its own progress bars, so unless SHARDSMITH_VERBOSE=1 it
wraps those two functions to keep the per-task file handler untouched and raise the terminal's level to WARNING.
Applied on import of ``shardsmith.pipelines`` so that worker processes (which import it to unpickle steps) get it.
"""

from __future__ import annotations

import logging
import os
import sys

_QUIET_LEVEL = "WARNING"


def quiet_datatrove() -> None:
    """No-op without datatrove: the trainer and the shard-format helpers of ``shardsmith.pipelines`` run on
    machines that have only the trainer's packages (a GPU box), and there is nothing to quieten there."""
    try:
        import datatrove.executor.base as executor_base
        import datatrove.utils.logging as dt_logging
        from loguru import logger
    except ImportError:
        return

    if getattr(dt_logging, "_shardsmith_quiet", False):
        return
    fmt = "{time:YYYY-MM-DD HH:mm:ss.SSS} | {level: <8} | {name}:{function}:{line} - {message}"

    def add_task_logger(logging_dir, rank, local_rank=0, node_rank=-1):
        # same files as datatrove's own (logs/task_NNNNN.log at DEBUG); only the terminal's level differs
        logger.remove()
        logfile = logging_dir.open(f"logs/task_{rank:05d}.log", "w")
        logger.add(logfile, colorize=False, level="DEBUG", format=fmt)
        logger.add(sys.stderr, level=_QUIET_LEVEL)
        logger.info(f"Launching pipeline for {rank=}")
        return logfile

    def setup_default_logger():
        logger.remove()
        logger.add(sys.stderr, level=_QUIET_LEVEL)

    dt_logging.add_task_logger = add_task_logger
    dt_logging.setup_default_logger = setup_default_logger
    for module in (executor_base,):
        if hasattr(module, "add_task_logger"):
            module.add_task_logger = add_task_logger
    dt_logging._shardsmith_quiet = True
    try:  # jieba announces its dictionary on every first use, through its own DEBUG logger
        import jieba

        jieba.setLogLevel(logging.WARNING)
    except ImportError:
        pass


def apply_from_env() -> None:
    if os.environ.get("SHARDSMITH_VERBOSE", "") not in ("1", "true"):
        quiet_datatrove()
