"""Rollout: vLLM engines that sample n responses per prompt with logprobs, and their Ray actors.

`rollout.config` imports nothing heavy; the engine modules import vLLM."""
