"""Math problem data: the typed `Problem` record, the synthetic task generator and
pretraining corpus, loading problem sets from JSONL/Parquet, and decontamination.

Imports nothing heavier than `datasets` (no ray, vllm or deepspeed)."""
