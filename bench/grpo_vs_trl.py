"""One GRPO step, ours against TRL's `GRPOTrainer`: the same model, prompts and settings, side by side.

    python bench/grpo_vs_trl.py [--preset tiny-25m] [--prompts 8] [--tokens 128] [--warmup 1] [--steps 8]
                                [--samples 512] [--dtype float32] [--threads N] [--json FILE]

The default (tiny-25m, 8 prompts x n=8 x 128 tokens, 1 warm-up + 8 timed steps per side: 512
completions each) is estimated at 5-8 minutes on an idle 2-core machine, mostly start-up and
TRL's steps (ENVIRONMENT.md measured TRL at ~10.5 s per step on this workload); the smallest run,
`--preset tiny-3m --steps 1 --tokens 16 --prompts 2`, checks the script end to end in ~3 minutes.

Built here, locally: synthetic problems (`mathdata.synthetic`), a BPE tokenizer trained on them
(2048 tokens, as `launch/prepare.py` builds it) and a freshly initialised model of the preset.

What runs:

    ours   The job's real parts, wired as in `launch/grpo.py` but in this process: Ray started
           here on 127.0.0.1, `RolloutWorkers` (2 vLLM engines, 1 core each), a `LearnerGroup` of
           one DeepSpeed process, a `BatchVerifier`, all driven by `GRPOController.train_step`:
           rollout -> verify -> filter -> advantages -> learner update -> weight push.
    TRL    `GRPOTrainer` with `use_vllm=False` (its default): generation with Hugging Face
           `generate` on the training model, in the trainer's process. TRL's vLLM server mode
           (a separately started `trl vllm-serve`) is not available here, and its colocate mode
           was not tried on this CPU build of vLLM. TRL runs in its own process, started with
           the spawn method: it must not share a process with our learner, which sets
           LOCAL_RANK (accelerate would then take the process for a distributed launch).

The same work on both sides, every step:
- prompts: `--prompts` synthetic problems as chats (the job's `PromptConfig`), drawn in the
  order our controller's `ProblemSampler` draws them; TRL gets them in that order with
  `shuffle_dataset=False`, and the script checks that both sides fed the model the same
  prompt token ids;
- n = 8 samples per prompt, temperature 1, top-p 1, no top-k;
- every completion exactly `--tokens` tokens long, checked on both sides. Ours: the
  controller's rollout is `RolloutWorkers` behind a thin adapter that passes `ignore_eos=True`
  (vLLM keeps going past an end-of-turn token, as `bench/rollout_throughput.py` measures it) with
  `max_tokens=--tokens`. TRL: `max_completion_length=--tokens` plus
  `generation_kwargs={"min_new_tokens": --tokens}`. TRL 1.16 stops generation at, and masks
  the loss after, the first token of `eos_token_ids` (the tokenizer's EOS plus the model's
  generation-config EOS ids); `min_new_tokens` makes HF's sampler give those ids zero
  probability until the length is reached, so no completion ends early and none is masked.
  The one difference: TRL can never sample an EOS token, ours can (and continues after it);
  with a random 2k-vocabulary model that touches ~1/2000 of the tokens and no timing;
- the same reward function, `length_parity` below (1 if the response text has an even number
  of characters): a random model cannot do math, and a verifier that calls about half of the
  responses right gives both sides non-zero advantages. Ours runs it through the
  `BatchVerifier` worker pool (a spec naming this file), TRL calls it in its process;
- group-normalised advantages (mean and std over the 8 samples), clipped policy-gradient loss
  with epsilon 0.2 on both sides, token-mean over the batch (TRL `loss_type="dapo"`), beta=0
  (no reference model), one optimizer step on the whole batch in one micro-batch
  (our filter keeps every group: low=0, high=8), AdamW lr 1e-5, betas (0.9, 0.95), eps 1e-8,
  no weight decay, gradient clipping at 1.0, constant learning rate;
- precision `--dtype`: float32 (default) is float32 everywhere on both sides. With bfloat16,
  our engines sample in bf16 and our learner runs DeepSpeed's bf16 mode (bf16 weights, fp32
  master copy), while TRL loads the model in bf16 (bf16 weights, gradients and AdamW state,
  no fp32 master: less work per step than ours) and samples in bf16;
- the machine: `--threads` torch threads (default: all cores) for our learner and for TRL's
  whole process; our two engines take one core each. The phases of either side run one
  after another, so each phase has the machine to itself.

Timing. The two sides take turns step by step (alternating who goes first), so load that
comes and goes on a shared machine hits both. Ours: wall time around `train_step`, and its
per-phase times (the step's `time/<phase>` metrics). TRL: from `on_step_begin` to `on_step_end`
of its Trainer (generation, rewards, forward/backward, optimizer step), split into
generation (`_generate_single_turn`), scoring (the rest of `_generate_and_score_completions`:
tokenization, decoding, rewards, advantages) and learning (the rest of the step). Warm-up steps
are left out on both sides; so is start-up, printed separately (Ray, engines and learner
start-up for ours; imports, model and trainer for TRL). "Time to N completions" sums the timed
steps that produce N completions (extrapolated from the mean, and marked, when fewer ran).

Departures of TRL's step from ours that stay (they are how TRL does it): it computes logits
only for completion positions (ours for the whole sequence, as its loss code does); its loss
also computes entropies; it generates with the training model (no weight push), padding each
batch of 64 rows to its longest prompt and running each prompt's prefill 8 times (vLLM shares
the prefill of a prompt's samples through prefix caching).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import statistics
import sys
import tempfile
import time
import traceback
from dataclasses import asdict, dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mathrl.env import set_local_defaults  # noqa: E402

ROLLOUT_WORKERS = 2  # vLLM engines, one core each
CLIP_EPSILON = 0.2
LR = 1e-5
TOKENIZER_PROBLEMS = 2000
LAUNCHER_VARS = ("RANK", "LOCAL_RANK", "WORLD_SIZE", "LOCAL_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")
VERIFIER_SPEC = f"{Path(__file__).resolve()}:length_parity"


def length_parity(response: str, gold: str) -> bool:
    """The reward on both sides: right when the response has an even number of characters.
    About half of a random model's responses, so groups have mixed rewards."""
    return len(response) % 2 == 0


@dataclass(frozen=True)
class Workload:
    preset: str
    dtype: str
    prompts: int  # per step
    n: int
    tokens: int  # per completion
    warmup: int
    steps: int  # timed
    threads: int
    seed: int = 0

    @property
    def completions(self) -> int:  # per step
        return self.prompts * self.n

    @property
    def total_steps(self) -> int:
        return self.warmup + self.steps


@dataclass
class Step:
    """One step of one side; `phases` in seconds, keyed by the shared phase names below."""

    seconds: float
    phases: dict[str, float]
    reward_mean: float
    prompt_ids: list[list[int]] = field(repr=False)  # [P*n] rows, prompt-major
    completion_lengths: list[int] = field(repr=False)  # [P*n]


PHASES = ("generate", "score", "learner", "weight_push", "other")


# --- the model and the prompts ------------------------------------------------------------


def build_model(preset: str, work: Path):
    """Synthetic problems, a tokenizer trained on them and a fresh model. -> (dir, params, problems)"""
    from mathdata.synthetic import SyntheticDataConfig, generate_splits
    from policy.tiny_model import TinyModelConfig, build_tiny_model, count_parameters
    from policy.tokenizer import TokenizerConfig, train_tokenizer

    problems, _ = generate_splits(SyntheticDataConfig(seed=0, train_size=TOKENIZER_PROBLEMS, test_size=0))
    texts = [f"{p.problem}\n{p.solution}" for p in problems]
    tokenizer = train_tokenizer(texts, TokenizerConfig(vocab_size=2048), work / "tokenizer")
    model_dir = work / preset
    params = count_parameters(build_tiny_model(TinyModelConfig(preset=preset, seed=0), tokenizer, model_dir))
    return model_dir, params, problems


def our_config(w: Workload, model_dir: Path, run_dir: Path):
    from policy.learner import LearnerConfig, OptimizerConfig
    from policy.schedules import ScheduleConfig
    from rewards.verifier import VerifierConfig
    from rl.algorithms import PolicyLossConfig
    from rl.config import GroupFilterConfig, GRPOConfig, GRPOLossConfig, GRPORunConfig, LearnerGroupConfig, StepBatchConfig
    from rollout.config import EngineConfig, RolloutConfig

    return GRPOConfig(
        policy_path=str(model_dir),
        rollout=RolloutConfig(
            n=w.n,
            temperature=1.0,
            top_p=1.0,
            max_tokens=w.tokens,
            seed=w.seed,
            num_workers=ROLLOUT_WORKERS,
            cpus_per_worker=1.0,
            engine=EngineConfig(dtype=w.dtype, max_model_len=1024),
        ),
        verifier=VerifierConfig(verifier=VERIFIER_SPEC, num_workers=1, timeout_s=5.0),
        filter=GroupFilterConfig(low=0, high=w.n),  # keep every group: both sides train on all samples
        batch=StepBatchConfig(groups_per_step=w.prompts, problems_per_draw=w.prompts, max_draws=1, updates_per_step=1),
        loss=GRPOLossConfig(
            policy=PolicyLossConfig(clip_low=CLIP_EPSILON, clip_high=CLIP_EPSILON, kl_coef=0.0, aggregation="token-mean"),
            normalize_std=True,
        ),
        learner=LearnerConfig(
            zero_stage=0,
            dtype=w.dtype,
            micro_batch_size=w.completions,  # one micro-batch, as TRL's per_device_train_batch_size below
            optimizer=OptimizerConfig(lr=LR, weight_decay=0.0),
            schedule=ScheduleConfig(kind="constant", warmup_steps=0),
        ),
        learner_group=LearnerGroupConfig(num_processes=1, cpus_per_process=1.0, torch_threads=w.threads),
        run=GRPORunConfig(run_dir=str(run_dir), steps=w.total_steps, save_every=0, resume=False, seed=w.seed),
        log_samples=0,
    )


def step_problems(problems, w: Workload, seed: int):
    """The problems our controller draws at each step (its sampler, replayed), for TRL's dataset."""
    from rl.sampler import ProblemSampler

    sampler = ProblemSampler(problems, seed=seed)
    return [sampler.draw(w.prompts) for _ in range(w.total_steps)]


# --- ours -------------------------------------------------------------------------------------


class FixedLengthRollout:
    """`RolloutWorkers` behind the controller's rollout interface, sampling every response to
    `max_tokens` (EOS ignored), and keeping the last batch for the checks."""

    def __init__(self, workers):
        self.workers = workers
        self.last = None

    def generate(self, problems, **options):  # whatever the controller passes (n, seeds, ...) goes on
        self.last = self.workers.generate(problems, ignore_eos=True, **options)
        return self.last

    def load_weights(self, state_dict):
        return self.workers.load_weights(state_dict)


@contextlib.contextmanager
def our_job(cfg, problems, num_cpus: int):
    """The controller on real Ray actors; yields (controller, rollout adapter)."""
    import ray

    from rewards.verifier import BatchVerifier
    from rl.controller import GRPOController
    from rl.trainer import LearnerGroup
    from rollout.worker import RolloutWorkers

    ray.init(
        address="local",
        num_cpus=num_cpus,
        include_dashboard=False,
        _node_ip_address="127.0.0.1",
        object_store_memory=cfg.ray.object_store_mb * 2**20,
        log_to_driver=False,
    )
    try:
        with contextlib.ExitStack() as stack:
            learner = LearnerGroup(cfg.policy_path, cfg.learner, cfg.policy_loss, cfg.learner_group)
            stack.callback(learner.shutdown)
            workers = RolloutWorkers(cfg.policy_path, cfg.rollout, cfg.prompt)
            stack.callback(workers.shutdown)
            verifier = stack.enter_context(BatchVerifier(cfg.verifier))
            rollout = FixedLengthRollout(workers)
            yield GRPOController(cfg, problems, rollout, verifier, learner), rollout
    finally:
        ray.shutdown()


def our_step(controller, rollout: FixedLengthRollout) -> Step:
    start = time.perf_counter()
    m = controller.train_step()
    seconds = time.perf_counter() - start
    if m.get("step/skipped") or m.get("step/skipped_nonfinite"):
        raise RuntimeError(f"our step {controller.step} trained on nothing: {m}")
    t = {k.removeprefix("time/"): v for k, v in m.items() if k.startswith("time/") and k != "time/step"}
    phases = {
        "generate": t.pop("rollout", 0.0),
        "learner": t.pop("learner", 0.0),
        "weight_push": t.pop("weight_push", 0.0),
        "score": sum(t.values()),  # sample, verify, filter, reward_model, advantages
    }
    phases["other"] = seconds - sum(phases.values())  # metrics, the controller's bookkeeping
    batch = rollout.last
    return Step(seconds, phases, m["reward/mean"], batch.prompt_ids, batch.response_lengths)


# --- TRL, in its own process -------------------------------------------------------------------


def trl_process_main(conn, model_dir: str, prompts: list, answers: list[str], w: Workload, out_dir: str) -> None:
    """Build `GRPOTrainer`, report ready, then run one step per "go" received and send its times."""
    try:
        for name in LAUNCHER_VARS:  # this process is not part of anyone's launch
            os.environ.pop(name, None)
        set_local_defaults()
        import torch

        torch.set_num_threads(w.threads)
        import datasets
        import transformers
        import trl
        from transformers import PrinterCallback, TrainerCallback

        from policy.loading import load_causal_lm, load_tokenizer

        datasets.disable_progress_bars()
        transformers.utils.logging.disable_progress_bar()
        transformers.utils.logging.set_verbosity_error()

        probe: dict = {}
        rewards: list[float] = []

        def length_parity_reward(completions, answer, **_):
            scores = [float(length_parity(c[0]["content"], gold)) for c, gold in zip(completions, answer)]
            rewards.extend(scores)
            return scores

        class TakeTurns(TrainerCallback):
            def on_step_begin(self, args, state, control, **kwargs):
                if conn.recv() != "go":
                    raise RuntimeError("the driver stopped the run")
                probe.clear()
                rewards.clear()
                self.start = time.perf_counter()

            def on_step_end(self, args, state, control, **kwargs):
                seconds = time.perf_counter() - self.start
                gen_and_score = probe["generate_and_score"]
                phases = {
                    "generate": probe["generate"],
                    "score": gen_and_score - probe["generate"],
                    "learner": seconds - gen_and_score,
                    "weight_push": 0.0,
                    "other": 0.0,
                }
                step = Step(seconds, phases, statistics.mean(rewards), probe["prompt_ids"], probe["completion_lengths"])
                conn.send(("step", asdict(step)))  # a dict: this module is __mp_main__ here, __main__ there

        config = trl.GRPOConfig(
            output_dir=out_dir,
            use_cpu=True,
            bf16=w.dtype == "bfloat16",  # GRPOConfig's default is True
            use_vllm=False,
            per_device_train_batch_size=w.completions,
            gradient_accumulation_steps=1,  # one optimizer step per generation batch
            num_generations=w.n,
            num_iterations=1,
            max_completion_length=w.tokens,
            generation_kwargs={"min_new_tokens": w.tokens},  # see the module docstring
            temperature=1.0,
            top_p=1.0,
            top_k=0,
            beta=0.0,
            epsilon=CLIP_EPSILON,
            loss_type="dapo",  # token-mean over the batch, as ours
            scale_rewards="group",
            learning_rate=LR,
            optim="adamw_torch",
            adam_beta1=0.9,
            adam_beta2=0.95,
            adam_epsilon=1e-8,
            weight_decay=0.0,
            max_grad_norm=1.0,
            lr_scheduler_type="constant",
            warmup_steps=0,
            max_steps=w.total_steps,
            shuffle_dataset=False,  # the dataset is already in our sampler's order
            gradient_checkpointing=False,  # the config's default is True; ours does not checkpoint
            logging_strategy="no",
            save_strategy="no",
            eval_strategy="no",
            report_to=[],
            disable_tqdm=True,
            dataloader_pin_memory=False,
            seed=w.seed,
        )
        dataset = datasets.Dataset.from_dict({"prompt": prompts, "answer": answers})
        trainer = trl.GRPOTrainer(
            model=load_causal_lm(model_dir, dtype=w.dtype),
            reward_funcs=[length_parity_reward],
            args=config,
            train_dataset=dataset,
            processing_class=load_tokenizer(model_dir),
            callbacks=[TakeTurns()],
        )
        trainer.remove_callback(PrinterCallback)
        if trainer.accelerator.distributed_type != "NO":
            raise RuntimeError(f"TRL runs as {trainer.accelerator.distributed_type}, expected a single process")

        generate, generate_and_score = trainer._generate_single_turn, trainer._generate_and_score_completions

        def timed_generate(prompt_ids, *args, **kwargs):
            start = time.perf_counter()
            completion_ids, logprobs = generate(prompt_ids, *args, **kwargs)
            probe["generate"] = time.perf_counter() - start
            probe["prompt_ids"] = [list(ids) for ids in prompt_ids]
            probe["completion_lengths"] = [len(ids) for ids in completion_ids]
            return completion_ids, logprobs

        def timed_generate_and_score(*args, **kwargs):
            start = time.perf_counter()
            out = generate_and_score(*args, **kwargs)
            probe["generate_and_score"] = time.perf_counter() - start
            return out

        trainer._generate_single_turn = timed_generate
        trainer._generate_and_score_completions = timed_generate_and_score
        conn.send(("ready", {"trl": trl.__version__, "threads": torch.get_num_threads()}))
        trainer.train()
        conn.send(("done", None))
    except BaseException:
        with contextlib.suppress(Exception):
            conn.send(("error", traceback.format_exc()))
        sys.exit(1)


class TRLProcess:
    """The driver's handle on the TRL process: start it, step it, stop it."""

    def __init__(self, model_dir: Path, problems_by_step, w: Workload, out_dir: Path):
        import multiprocessing

        from mathdata.prompts import PromptConfig, chat_messages

        ctx = multiprocessing.get_context("spawn")  # a fresh interpreter: nothing of this process's state
        self.conn, child = ctx.Pipe()
        flat = [p for step in problems_by_step for p in step]
        prompts = [chat_messages(p.problem, PromptConfig()) for p in flat]  # as our engines render them
        self.process = ctx.Process(
            target=trl_process_main,
            args=(child, str(model_dir), prompts, [p.answer for p in flat], w, str(out_dir)),
            name="trl-grpo",
        )
        self.process.start()
        child.close()  # so that a dead child shows up as EOF here

    def receive(self, expected: str):
        while not self.conn.poll(1.0):
            if not self.process.is_alive():
                raise RuntimeError(f"the TRL process exited (code {self.process.exitcode}) without a word")
        try:
            kind, payload = self.conn.recv()
        except EOFError:
            raise RuntimeError(f"the TRL process exited (code {self.process.exitcode})") from None
        if kind == "error":
            raise RuntimeError(f"the TRL process failed:\n{payload}")
        if kind != expected:
            raise RuntimeError(f"the TRL process sent {kind!r}, expected {expected!r}")
        return payload

    def step(self) -> Step:
        self.conn.send("go")
        return Step(**self.receive("step"))

    def close(self) -> None:
        self.conn.close()
        self.process.join(timeout=30)
        if self.process.is_alive():
            self.process.terminate()
            self.process.join()


# --- the run --------------------------------------------------------------------------------------


@dataclass
class Side:
    name: str
    setup_s: float
    steps: list[Step] = field(default_factory=list)  # warm-up included


def run(w: Workload, work: Path) -> tuple[dict[str, Side], int]:
    model_dir, params, problems = build_model(w.preset, work)
    cfg = our_config(w, model_dir, work / "ours")
    by_step = step_problems(problems, w, cfg.run.seed)

    start = time.perf_counter()
    trl_proc = TRLProcess(model_dir, by_step, w, work / "trl")
    try:
        info = trl_proc.receive("ready")
        trl_side = Side(f"TRL {info['trl']}", time.perf_counter() - start)
        print(f"TRL {info['trl']} ready ({trl_side.setup_s:.0f} s, {info['threads']} threads)", file=sys.stderr, flush=True)
        start = time.perf_counter()
        # Ray's CPUs are slots: one per engine, one for the learner. The phases take turns, so
        # the slots do not oversubscribe the cores.
        with our_job(cfg, problems, num_cpus=ROLLOUT_WORKERS + 1) as (controller, rollout):
            ours = Side("ours", time.perf_counter() - start)
            print(f"ours ready ({ours.setup_s:.0f} s)", file=sys.stderr, flush=True)
            for k in range(w.total_steps):
                turns = [(ours, lambda: our_step(controller, rollout)), (trl_side, trl_proc.step)]
                for side, step in turns if k % 2 == 0 else turns[::-1]:  # alternate who goes first
                    side.steps.append(step())
                kind = "warm-up" if k < w.warmup else "timed"
                print(
                    f"step {k + 1}/{w.total_steps} ({kind}): ours {ours.steps[-1].seconds:.2f} s, "
                    f"TRL {trl_side.steps[-1].seconds:.2f} s",
                    file=sys.stderr,
                    flush=True,
                )
        trl_proc.receive("done")
    finally:
        trl_proc.close()
    return {"ours": ours, "trl": trl_side}, params


# --- the report ---------------------------------------------------------------------------------


def time_to(samples: int, seconds: list[float], per_step: int) -> tuple[float, bool]:
    """Seconds to produce `samples` completions: the first steps that make them, or (marked
    True) the mean step time times the steps needed when fewer were timed."""
    need = math.ceil(samples / per_step)
    if len(seconds) >= need:
        return sum(seconds[:need]), False
    return need * statistics.mean(seconds), True


def checks(sides: dict[str, Side], w: Workload) -> list[str]:
    ours, trl = sides["ours"].steps, sides["trl"].steps
    same_prompts = sum(a.prompt_ids == b.prompt_ids for a, b in zip(ours, trl))
    lengths = {n for s in ours + trl for n in s.completion_lengths}
    counts = {len(s.completion_lengths) for s in ours + trl}
    if lengths != {w.tokens} or counts != {w.completions}:
        raise RuntimeError(
            f"the sides did not generate {w.completions} completions of {w.tokens} tokens every step: "
            f"lengths seen {sorted(lengths)}, completions per step {sorted(counts)}"
        )
    lines = [f"every step, both sides: {w.completions} completions of exactly {w.tokens} tokens"]
    if same_prompts == len(ours):
        lines.append(f"prompt token ids identical on both sides in all {len(ours)} steps")
    else:
        lines.append(f"WARNING: prompt token ids differ between the sides in {len(ours) - same_prompts} of {len(ours)} steps")
    return lines


def report(sides: dict[str, Side], params: int, w: Workload, samples: int) -> dict:
    timed = {key: side.steps[w.warmup :] for key, side in sides.items()}
    ours_s = [s.seconds for s in timed["ours"]]
    trl_s = [s.seconds for s in timed["trl"]]

    print(
        f"\nGRPO step, ours vs TRL GRPOTrainer: {w.preset} ({params / 1e6:.1f}M params), {w.dtype}, "
        f"{w.threads} torch thread{'s' * (w.threads > 1)}"
    )
    print(
        f"per step: {w.prompts} prompts x n={w.n} = {w.completions} completions x {w.tokens} tokens, T=1, "
        f"beta=0, 1 optimizer step (lr {LR:g}); {w.warmup} warm-up + {w.steps} timed steps per side, taking turns"
    )
    print("ours: Ray, vLLM 2 engines x 1 core, DeepSpeed learner (1 process), BatchVerifier; TRL: HF generate (use_vllm=False)")
    for line in checks(sides, w):
        print(f"check: {line}")
    load = os.getloadavg()
    print(f"load average (1/5/15 min) at the end: {load[0]:.1f} {load[1]:.1f} {load[2]:.1f} on {os.cpu_count()} CPUs")

    header = (
        f"{'system':<10} {'setup s':>7} {'warm-up s':>9} {'median step s':>13} {'mean step s':>11} "
        f"{'completions/s':>13} {'tokens/s':>8} {f'time to {samples} completions s':>28}"
    )
    print("\n" + header)
    print("-" * len(header))
    to_n = {}
    for key, side in sides.items():
        seconds = [s.seconds for s in timed[key]]
        to_n[key] = time_to(samples, seconds, w.completions)
        warm = statistics.mean(s.seconds for s in side.steps[: w.warmup]) if w.warmup else float("nan")
        per_s = w.completions * len(seconds) / sum(seconds)
        mark = " (extrapolated)" if to_n[key][1] else ""
        print(
            f"{side.name:<10} {side.setup_s:>7.1f} {warm:>9.2f} {statistics.median(seconds):>13.2f} "
            f"{statistics.mean(seconds):>11.2f} {per_s:>13.2f} {per_s * w.tokens:>8.0f} {to_n[key][0]:>28.1f}{mark}"
        )
    paired = statistics.median(t / o for o, t in zip(ours_s, trl_s))
    print(
        f"\nours faster by {paired:.2f}x per step (median of per-step TRL/ours ratios), "
        f"{to_n['trl'][0] / to_n['ours'][0]:.2f}x in time to {samples} completions"
        + (" (below 1: ours is slower)" if min(paired, to_n["trl"][0] / to_n["ours"][0]) < 1 else "")
    )

    print("\nphases, mean seconds per timed step (share of the step):")
    names = {
        "generate": "generate",
        "score": "score",  # ours: sample + verify + filter + advantages; TRL: tokenize, decode, rewards, advantages
        "learner": "learner",
        "weight_push": "weight push",
        "other": "other",
    }
    print(f"{'system':<10} " + " ".join(f"{names[p]:>15}" for p in PHASES) + f" {'reward mean':>11}")
    for key, side in sides.items():
        total = statistics.mean(s.seconds for s in timed[key])
        cells = []
        for phase in PHASES:
            mean = statistics.mean(s.phases[phase] for s in timed[key])
            cells.append(f"{mean:>7.2f} ({100 * mean / total:>3.0f}%)")
        reward = statistics.mean(s.reward_mean for s in timed[key])
        print(f"{side.name:<10} " + " ".join(f"{c:>15}" for c in cells) + f" {reward:>11.3f}")
    print(
        "  ours: generate = RolloutWorkers.generate; score = sample + verify (BatchVerifier) + filter + advantages;\n"
        "        learner = batch building + DeepSpeed update in the Ray actor; weight push = learner -> engines;\n"
        "        other = the rest of train_step. TRL: generate = HF generate; score = the rest of\n"
        "        _generate_and_score_completions; learner = forward, backward and optimizer step."
    )
    print(f"per-step seconds (timed): ours {' '.join(f'{x:.2f}' for x in ours_s)} | TRL {' '.join(f'{x:.2f}' for x in trl_s)}")
    return {
        "workload": asdict(w),
        "params": params,
        "samples": samples,
        "speedup_per_step": paired,
        "speedup_time_to_samples": to_n["trl"][0] / to_n["ours"][0],
        "sides": {
            key: {
                "name": side.name,
                "setup_s": side.setup_s,
                "steps": [{"seconds": s.seconds, "phases": s.phases, "reward_mean": s.reward_mean} for s in side.steps],
            }
            for key, side in sides.items()
        },
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="tiny-25m", help="policy.tiny_model preset")
    parser.add_argument("--prompts", type=int, default=8, help="prompts per step")
    parser.add_argument("--n", type=int, default=8, help="samples per prompt")
    parser.add_argument("--tokens", type=int, default=128, help="tokens per completion (all completions this long)")
    parser.add_argument("--warmup", type=int, default=1, help="steps per side left out of the timings")
    parser.add_argument("--steps", type=int, default=8, help="timed steps per side")
    parser.add_argument("--samples", type=int, default=512, help="report the time to this many completions")
    parser.add_argument("--dtype", choices=("float32", "bfloat16"), default="float32")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="torch threads: our learner, TRL's process")
    parser.add_argument("--json", type=Path, help="also write every step's times here")
    args = parser.parse_args(argv)
    if args.steps < 1 or args.warmup < 0 or args.prompts < 1 or args.n < 2 or args.tokens < 1 or args.threads < 1:
        parser.error("need --steps >= 1, --warmup >= 0, --prompts >= 1, --n >= 2, --tokens >= 1, --threads >= 1")
    set_local_defaults()

    w = Workload(args.preset, args.dtype, args.prompts, args.n, args.tokens, args.warmup, args.steps, args.threads)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench-grpo-vs-trl-") as tmp:
        sides, params = run(w, Path(tmp))
    result = report(sides, params, w, args.samples)
    print(f"\ntotal wall time {time.perf_counter() - start:.0f} s")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
