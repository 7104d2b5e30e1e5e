"""shardsmith: corpora -> token shards -> trained small LLMs."""
__version__ = "0.1.0"
