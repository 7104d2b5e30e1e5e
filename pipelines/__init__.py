"""datatrove pipelines: sources, filters, the weighted mix and the shard writer."""

from shardsmith.pipelines.logs import apply_from_env as _apply_log_settings

_apply_log_settings()
