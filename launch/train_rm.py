"""Train the reward model on the policy's own samples, labelled by the verifier.

    python launch/train_rm.py --config configs/train_rm_tiny.yaml [key.sub=value ...]

1. sample: rollout.n responses per problem with the policy in model_path (vLLM), each checked
   by the verifier, into data.samples_dir (default run.run_dir/samples); samples already
   there are reused, so a resumed run does not sample again;
2. train: the listwise ranking loss on the policy's backbone with a fresh head, on the
   shared training loop (checkpoints and resume in run.run_dir); exports run.run_dir/final.
   With head_warmup.epochs, the head is first fitted alone on the frozen backbone
   (`rewards.head_warmup`). With teacher.coef, the policy's mean token log-prob of each
   training response is a second ranking signal on every pair of a group (`rewards.teacher`),
   and with teacher.unmixed_groups also on the all-correct and all-wrong training groups;
3. evaluate the exported model on the held-out problems: pairwise accuracy, best-of-n
   accuracy against mean single-sample accuracy -> run.run_dir/results.json.
"""

import json
import math
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from mathrl.env import set_local_defaults  # noqa: E402

set_local_defaults()

from mathdata.loading import load_problems  # noqa: E402
from mathrl.config import parse_cli  # noqa: E402
from mathrl.metrics import MetricsLogger  # noqa: E402
from mathrl.runs import save_config  # noqa: E402
from mathrl.stages import TrainRMConfig  # noqa: E402
from policy.loading import check_model_dir, load_tokenizer  # noqa: E402
from policy.learner import latest_checkpoint  # noqa: E402
from policy.train_loop import learner_for_stage, train  # noqa: E402
from rewards.head_warmup import warm_up_head  # noqa: E402
from rewards.ranking import ListwiseRankingLoss, ranking_metrics  # noqa: E402
from rewards.reward_model import RewardModel, RewardScorer, center_scores  # noqa: E402
from rewards.teacher import response_logprobs, within_group_spread  # noqa: E402
from rewards.rm_data import (  # noqa: E402
    EVAL_FILE,
    STATS_FILE,
    TRAIN_FILE,
    UNMIXED_FILE,
    RMBatches,
    build_rm_samples,
    read_groups,
    samples_complete,
    score_groups,
    split_problems,
)
from rewards.verifier import BatchVerifier  # noqa: E402

CENTERING_RESPONSES = 4096  # enough for the mean score to within a few hundredths; scoring them takes seconds


def sample(cfg: TrainRMConfig, samples_dir: Path) -> None:
    from rollout.engine import RolloutEngine

    problems = load_problems(cfg.data.problems).problems
    train_problems, held_out = split_problems(problems, cfg.data.eval_problems, cfg.data.seed)
    print(f"sampling {cfg.rollout.n} responses for {len(train_problems)} training and {len(held_out)} held-out problems")
    engine = RolloutEngine(cfg.model_path, cfg.rollout, cfg.prompt)
    try:
        with BatchVerifier(cfg.verifier) as verifier:
            stats = build_rm_samples(
                train_problems, held_out, engine, verifier, cfg.rollout.n, cfg.data, samples_dir, seed=cfg.rollout.seed
            )
    finally:
        engine.close()
    print(json.dumps(stats, indent=2))


def evaluate(model_dir: Path, cfg: TrainRMConfig, samples_dir: Path) -> dict[str, float]:
    groups = read_groups(samples_dir / EVAL_FILE)
    if not groups:
        return {}
    scorer = RewardScorer(str(model_dir), device=cfg.learner.device, batch_size=cfg.eval_batch_size, prompt=cfg.prompt)
    return ranking_metrics(score_groups(scorer, groups), [g.correct for g in groups])


def main(argv=None) -> dict:
    cfg = parse_cli(TrainRMConfig, argv, default_config="configs/train_rm_tiny.yaml")
    check_model_dir(cfg.model_path)
    run_dir = Path(cfg.run.run_dir)
    save_config(cfg, run_dir)
    samples_dir = Path(cfg.data.samples_dir) if cfg.data.samples_dir else run_dir / "samples"
    if samples_complete(samples_dir):
        print(f"using the samples in {samples_dir}")
    else:
        sample(cfg, samples_dir)

    tokenizer = load_tokenizer(cfg.model_path)
    model = RewardModel.from_policy(cfg.model_path, seed=cfg.head_seed)
    train_groups = read_groups(samples_dir / TRAIN_FILE)
    if cfg.teacher.coef and cfg.teacher.unmixed_groups:
        if (samples_dir / UNMIXED_FILE).is_file():
            train_groups += read_groups(samples_dir / UNMIXED_FILE)
        else:  # samples written before the file existed: they still train, on the mixed groups
            print(f"teacher.unmixed_groups: no {UNMIXED_FILE} in {samples_dir}; the teacher term sees the mixed groups only")
    teacher = None
    if cfg.teacher.coef:
        teacher, _ = response_logprobs(cfg.model_path, train_groups, cfg.teacher.batch_size, cfg.learner.device)
    data = RMBatches(train_groups, model.sequence, tokenizer.pad_token_id, cfg.data, teacher)
    loss = ListwiseRankingLoss()
    if data.teacher is not None:
        loss = ListwiseRankingLoss(cfg.teacher.coef, cfg.teacher.temperature or within_group_spread(data.teacher))
        print(f"teacher: {cfg.model_path}'s mean token log-prob, weight {loss.teacher_coef}, temperature {loss.teacher_temperature:.4f}")
    total_steps = max(1, math.ceil(cfg.epochs * data.steps_per_epoch))
    print(
        f"reward model: {len(data.groups)} training problems ({data.dropped_groups} dropped, "
        f"{data.dropped_responses} responses over max_len), {total_steps} steps"
    )
    if cfg.head_warmup.epochs and not (cfg.run.resume and latest_checkpoint(run_dir / "checkpoints")):
        losses = warm_up_head(model, data.groups, tokenizer.pad_token_id, cfg.head_warmup)
        print(f"head warm-up on the frozen backbone: listwise loss {losses[0]:.4f} -> {losses[-1]:.4f} in {len(losses)} epochs")
    learner = learner_for_stage(cfg.model_path, cfg.learner, total_steps, tokenizer, model=model)
    final = train(learner, data.batch, loss, total_steps, cfg.run)
    learner.close()
    if cfg.center_scores:
        centered = [(g.prompt_ids, ids) for g in train_groups for ids in g.response_ids][:CENTERING_RESPONSES]
        offset = center_scores(final, *zip(*centered), batch_size=cfg.eval_batch_size, device=cfg.learner.device)
        print(f"scores centred: mean {offset:+.3f} on {len(centered)} training responses moved to 0")

    metrics = evaluate(final, cfg, samples_dir)
    if metrics:
        logger = MetricsLogger(run_dir)
        logger.log(total_steps, metrics, prefix="eval/")
        logger.close()
    stats_file = samples_dir / STATS_FILE
    results = {
        "model": str(final),
        "policy": cfg.model_path,
        "steps": total_steps,
        "train_problems": len(data.groups),
        "samples": json.loads(stats_file.read_text()) if stats_file.is_file() else None,
        "eval": metrics,
    }
    (run_dir / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps({"model": str(final), **metrics}, indent=2))
    return results


if __name__ == "__main__":
    main()
