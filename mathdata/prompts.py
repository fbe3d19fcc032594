"""How a problem becomes a chat prompt. One definition for SFT, rollout and evaluation, so a
model is always asked the way it was trained."""

from __future__ import annotations

from dataclasses import dataclass

from mathrl.config import require

# Named templates, usable as `prompt.template=qwen-math-cot` on the command line.
TEMPLATES = {
    "plain": "{problem}",  # the tiny models are trained on the bare problem
    # The Qwen2.5-Math chain-of-thought instruction, for real models.
    "qwen-math-cot": "{problem}\nPlease reason step by step, and put your final answer within \\boxed{{}}.",
}


@dataclass(frozen=True)
class PromptConfig:
    template: str = "plain"  # a name from TEMPLATES, or a format string with {problem}
    system: str | None = None

    @property
    def format_string(self) -> str:
        return TEMPLATES.get(self.template, self.template)

    def __post_init__(self) -> None:
        require(
            "{problem}" in self.format_string,
            "template",
            f"must be one of {', '.join(TEMPLATES)} or contain '{{problem}}', got {self.template!r}",
        )
        try:
            self.format_string.format(problem="")
        except (KeyError, IndexError, ValueError) as err:
            raise ValueError(f"template: has a placeholder other than {{problem}} ({err}); write literal braces as {{{{ }}}}") from None


def chat_messages(problem: str, cfg: PromptConfig, response: str | None = None) -> list[dict[str, str]]:
    """The conversation for `problem`; with `response`, the assistant's turn is included."""
    messages = [{"role": "system", "content": cfg.system}] if cfg.system else []
    messages.append({"role": "user", "content": cfg.format_string.format(problem=problem)})
    if response is not None:
        messages.append({"role": "assistant", "content": response})
    return messages
