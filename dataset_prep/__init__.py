"""Raw data -> RecBole atomic files, and LLM item embeddings (thin CLIs)."""
