"""Rollout: vLLM engines that sample n responses per prompt with logprobs, and their Ray actors.

`rollout.config` and `rollout.batch` import nothing heavy; the engine imports vLLM only when
an engine is built, so a Ray driver can import these modules without loading vLLM."""
