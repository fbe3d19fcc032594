"""Build the tiny CPU default from nothing: data, corpus, tokenizer, model.

    python launch/prepare.py --config configs/prepare_tiny.yaml [key.sub=value ...]

Writes, under output_dir:
    data/train.jsonl  data/test.jsonl   synthetic problems (disjoint splits)
    data/rl.jsonl                       RL problems, none in train.jsonl or the corpus (when data.rl_size > 0)
    data/corpus.jsonl                   pretraining documents ({"text": ...})
    model/                              tokenizer + initial tiny Qwen2 (Hugging Face format)
    config.yaml                         the resolved config
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from mathrl.env import set_local_defaults  # noqa: E402

set_local_defaults()

from mathdata.corpus import generate_corpus  # noqa: E402
from mathdata.decontaminate import DecontaminationConfig, decontaminate_problems  # noqa: E402
from mathdata.io import write_jsonl, write_problems_jsonl  # noqa: E402
from mathdata.loading import load_problems  # noqa: E402
from mathdata.synthetic import generate_rl_problems, generate_splits  # noqa: E402
from mathrl.config import parse_cli  # noqa: E402
from mathrl.runs import save_config  # noqa: E402
from mathrl.stages import PrepareConfig  # noqa: E402
from policy.tiny_model import build_tiny_model, count_parameters  # noqa: E402
from policy.tokenizer import train_tokenizer  # noqa: E402


def main(argv=None) -> Path:
    cfg = parse_cli(PrepareConfig, argv, default_config="configs/prepare_tiny.yaml")
    out = Path(cfg.output_dir)
    save_config(cfg, out)

    train, test = generate_splits(cfg.data)
    sets = {"train": train, "rl": generate_rl_problems(cfg.data)}
    if cfg.decontaminate_against:
        evaluation = [p for path in cfg.decontaminate_against for p in load_problems(path).problems]
        for name in [name for name, problems in sets.items() if problems]:
            sets[name], removals = decontaminate_problems(sets[name], evaluation, DecontaminationConfig())
            print(f"decontamination: dropped {len(removals)} {name} problems near {len(evaluation)} evaluation problems")
    write_problems_jsonl(sets["train"], out / "data" / "train.jsonl")
    write_problems_jsonl(test, out / "data" / "test.jsonl")
    if sets["rl"]:
        write_problems_jsonl(sets["rl"], out / "data" / "rl.jsonl")
    corpus = generate_corpus(cfg.corpus_docs, cfg.data.seed, cfg.data, cfg.explanation_share, cfg.facts_share)
    write_jsonl(({"text": doc} for doc in corpus), out / "data" / "corpus.jsonl")
    print(f"data: {len(sets['train'])} train / {len(test)} test / {len(sets['rl'])} RL problems, {len(corpus)} corpus documents")

    tokenizer = train_tokenizer(corpus, cfg.tokenizer, out / "model")
    model = build_tiny_model(cfg.model, tokenizer, out / "model")
    print(f"model: {cfg.model.preset}, {count_parameters(model) / 1e6:.1f}M parameters, vocabulary {len(tokenizer)}")
    print(f"wrote {out}")
    return out


if __name__ == "__main__":
    main()
