"""Data: corpus, tokenizers, stream batching and the DataModule."""
