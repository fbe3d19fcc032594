"""Build a fresh tiny model of another size for a prepared pipeline's tokenizer.

    python launch/build_model.py tokenizer_path=artifacts/tiny/model output_dir=artifacts/tiny25/model model.preset=tiny-25m

`launch/prepare.py` builds data, corpus, tokenizer and model together; this builds only the
model, so that a larger backbone trains on exactly the same data and vocabulary (pretrain it
with `launch/pretrain.py ... model_path=<output_dir>`).
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from mathrl.env import set_local_defaults  # noqa: E402

set_local_defaults()

from mathrl.config import parse_cli  # noqa: E402
from mathrl.stages import BuildModelConfig  # noqa: E402
from policy.loading import load_tokenizer  # noqa: E402
from policy.tiny_model import build_tiny_model, count_parameters  # noqa: E402


def main(argv=None) -> Path:
    cfg = parse_cli(BuildModelConfig, argv)
    tokenizer = load_tokenizer(cfg.tokenizer_path)
    model = build_tiny_model(cfg.model, tokenizer, cfg.output_dir)
    print(f"model: {cfg.model.preset}, {count_parameters(model) / 1e6:.1f}M parameters, vocabulary {len(tokenizer)}")
    print(f"wrote {cfg.output_dir}")
    return Path(cfg.output_dir)


if __name__ == "__main__":
    main()
