"""Reward-model data: sampling and labelling into groups (fake engine and verifier), the
held-out split, the JSONL files, and the [G, n, T] training batches."""

import json
from dataclasses import dataclass

import pytest
import torch

from mathdata.problems import Problem
from rewards.rm_data import (
    RMBatches,
    RMDataConfig,
    SampledGroup,
    build_rm_samples,
    collate_groups,
    read_groups,
    regroup,
    samples_complete,
    score_groups,
    split_problems,
)
from rewards.reward_model import with_end_token
from rollout.batch import RolloutBatch

EOS = 2


def problems(count):
    return [Problem(id=f"p{i}", problem=f"What is {i} + {i}?", answer=str(2 * i)) for i in range(count)]


class FakeEngine:
    """Response j of problem i answers `2i` when j < i % (n + 1), else something wrong; so
    problem 0 is all wrong and problem n (mod n+1) all correct."""

    def __init__(self):
        self.calls = []
        self.seeds = {}  # problem id -> the sampling seed it was given

    def generate(self, prompts, n=None, seeds=None):
        self.calls.append(len(prompts))
        self.seeds.update(zip((p.id for p in prompts), seeds))
        rows = [(index, j) for index in range(len(prompts)) for j in range(n)]
        texts, ids = [], []
        for index, j in rows:
            i = int(prompts[index].id[1:])
            answer = 2 * i if j < i % (n + 1) else 2 * i + 1
            texts.append(f"The answer is \\boxed{{{answer}}}.")
            ids.append([10 + answer % 50] * (1 + j) + [EOS])
        return RolloutBatch(
            prompt_index=[index for index, _ in rows],
            prompt_ids=[[1, 5, 100 + index] for index, _ in rows],
            response_ids=ids,
            logprobs=[[0.0] * len(t) for t in ids],
            texts=texts,
            finish_reasons=["stop" if j else "length" for _, j in rows],
        )


@dataclass
class Verdict:
    correct: bool


class FakeVerifier:
    def check(self, responses, golds):
        return [Verdict(r == f"The answer is \\boxed{{{g}}}.") for r, g in zip(responses, golds)]


def test_split_is_seeded_disjoint_and_complete():
    ps = problems(50)
    train, held_out = split_problems(ps, 10, seed=3)
    assert len(held_out) == 10 and len(train) == 40
    assert {p.id for p in train} | {p.id for p in held_out} == {p.id for p in ps}
    assert not {p.id for p in train} & {p.id for p in held_out}
    assert split_problems(ps, 10, seed=3) == (train, held_out)
    assert split_problems(ps, 10, seed=4)[1] != held_out
    with pytest.raises(ValueError, match="eval_problems"):
        split_problems(ps, 50, seed=0)


def test_build_writes_mixed_training_groups_and_every_held_out_group(tmp_path):
    n = 4
    engine = FakeEngine()
    cfg = RMDataConfig(chunk_size=7)
    train, held_out = problems(20), problems(25)[20:]
    stats = build_rm_samples(train, held_out, engine, FakeVerifier(), n, cfg, tmp_path, log=lambda _: None)
    assert engine.calls == [7, 7, 6, 5]  # chunks of at most chunk_size problems
    assert samples_complete(tmp_path)

    kept = read_groups(tmp_path / "train.jsonl")
    expected_mixed = [p.id for p in train if 0 < int(p.id[1:]) % (n + 1) < n]
    assert [g.id for g in kept] == expected_mixed
    assert all(g.mixed for g in kept)
    group = kept[0]  # p1: the first response correct, the rest wrong
    assert group.correct == [True, False, False, False]
    assert group.gold == "2" and group.prompt_ids == [1, 5, 101]
    assert group.response_ids[2] == [10 + 3] * 3 + [EOS]
    assert group.finish_reasons == ["length", "stop", "stop", "stop"]

    unmixed = read_groups(tmp_path / "train_unmixed.jsonl")  # the rest of the training groups, for a teacher
    assert sorted(g.id for g in kept + unmixed) == sorted(p.id for p in train)
    assert not any(g.mixed for g in unmixed)

    evaluated = read_groups(tmp_path / "eval.jsonl")
    assert [g.id for g in evaluated] == [p.id for p in held_out]  # all kept, mixed or not
    assert stats["train"]["problems"] == 20 and stats["train"]["kept"] == len(kept)
    assert stats["train"]["all_wrong"] == 4 and stats["train"]["all_correct"] == 4
    assert stats["train"]["truncated"] == pytest.approx(1 / n)
    assert json.loads((tmp_path / "stats.json").read_text()) == stats


def test_each_problem_is_sampled_with_its_own_seed_whatever_the_chunking(tmp_path):
    """vLLM draws an unseeded request from the engine's running random stream, so the same
    problem would get other samples in a run chunked differently or resumed; a seed per
    problem from (sampling seed, id) gives it the same samples every time."""
    chunked_7, chunked_3, other_seed = FakeEngine(), FakeEngine(), FakeEngine()
    for engine, chunk, seed, out in ((chunked_7, 7, 0, "a"), (chunked_3, 3, 0, "b"), (other_seed, 7, 1, "c")):
        build_rm_samples(problems(20), problems(25)[20:], engine, FakeVerifier(), 4, RMDataConfig(chunk_size=chunk),
                         tmp_path / out, log=lambda _: None, seed=seed)
    assert chunked_7.seeds == chunked_3.seeds and len(chunked_7.seeds) == 25
    assert len(set(chunked_7.seeds.values())) == 25  # a stream per problem
    assert all(other_seed.seeds[i] != chunked_7.seeds[i] for i in chunked_7.seeds)


def test_read_groups_names_the_bad_line(tmp_path):
    path = tmp_path / "bad.jsonl"
    good = SampledGroup("a", "q", "1", [1], ["x"], [[3]], [True], ["stop"]).to_dict()
    path.write_text(json.dumps(good) + "\n" + json.dumps({**good, "correct": [True, False]}) + "\n")
    with pytest.raises(ValueError, match="line 2"):
        read_groups(path)


def sequence(prompt_ids, response_ids):
    return list(prompt_ids) + with_end_token(response_ids, (EOS,), EOS)


def test_collate_pads_groups_and_sequences():
    batch = collate_groups([([[1, 2, 3], [4]], [True, False]), ([[5, 6], [7], [8, 9, 9, 9]], [False, True, True])], pad_id=0)
    assert batch["input_ids"].shape == (2, 3, 4)
    assert batch["response_mask"].tolist() == [[True, True, False], [True, True, True]]
    assert batch["correct"].tolist() == [[True, False, False], [False, True, True]]
    assert batch["attention_mask"][0].tolist() == [[1, 1, 1, 0], [1, 0, 0, 0], [0, 0, 0, 0]]
    assert batch["input_ids"][1, 2].tolist() == [8, 9, 9, 9]


def test_batches_are_a_function_of_the_step_and_cover_every_group_per_epoch(tmp_path):
    n = 4
    build_rm_samples(problems(40), [], FakeEngine(), FakeVerifier(), n, RMDataConfig(), tmp_path, log=lambda _: None)
    groups = read_groups(tmp_path / "train.jsonl")
    data = RMBatches(groups, sequence, pad_id=0, cfg=RMDataConfig(batch_size=5, seed=1))
    assert data.steps_per_epoch == len(groups) // 5
    first = data.batch(0)
    assert first["input_ids"].shape[:2] == (5, n)
    for key, value in data.batch(0).items():
        assert torch.equal(value, first[key])
    prompts = [int(data.batch(s)["input_ids"][g, 0, 2]) for s in range(data.steps_per_epoch) for g in range(5)]
    assert len(set(prompts)) == 5 * data.steps_per_epoch  # no group twice in an epoch
    again = RMBatches(groups, sequence, pad_id=0, cfg=RMDataConfig(batch_size=5, seed=1))
    assert torch.equal(again.batch(data.steps_per_epoch + 1)["input_ids"], data.batch(data.steps_per_epoch + 1)["input_ids"])
    # the sequences are prompt + response, closed by EOS exactly once
    g = first["attention_mask"][0, 0].sum()
    assert int(first["input_ids"][0, 0, g - 1]) == EOS and int(first["input_ids"][0, 0, g - 2]) != EOS


def test_long_responses_are_left_out_and_groups_without_pairs_dropped():
    short, long = [3], [3] * 20
    groups = [
        SampledGroup("a", "", "1", [1], ["", "", ""], [short, short, long], [True, False, False], ["stop"] * 3),
        SampledGroup("b", "", "1", [1], ["", ""], [long, short], [True, False], ["stop"] * 2),  # loses its only correct one
    ]
    data = RMBatches(groups, sequence, pad_id=0, cfg=RMDataConfig(max_len=16, batch_size=2))
    assert len(data.groups) == 1 and data.dropped_groups == 1 and data.dropped_responses == 2
    assert data.batch(0)["input_ids"].shape == (1, 2, 3)
    with pytest.raises(ValueError, match="no training group"):
        RMBatches(groups[1:], sequence, pad_id=0, cfg=RMDataConfig(max_len=16))


def test_teacher_values_follow_their_responses_through_the_filter_and_the_shuffle():
    short, long = [3], [3] * 20
    groups = [
        SampledGroup(f"g{i}", "", "1", [1, 100 + i], ["", "", ""], [short, [4, 4], long], [True, False, False], ["stop"] * 3)
        for i in range(6)
    ]
    teacher = [[float(10 * i), float(10 * i + 1), float(10 * i + 2)] for i in range(6)]  # the long one is left out
    data = RMBatches(groups, sequence, pad_id=0, cfg=RMDataConfig(max_len=16, batch_size=4), teacher=teacher)
    batch = data.batch(1)
    for g in range(batch["input_ids"].shape[0]):
        i = int(batch["input_ids"][g, 0, 1]) - 100  # the group's prompt names it
        assert batch["teacher"][g].tolist() == [10 * i, 10 * i + 1]
    assert "teacher" not in RMBatches(groups, sequence, pad_id=0, cfg=RMDataConfig(max_len=16)).batch(0)
    # a group without a (correct, wrong) pair trains the teacher term only: kept with a teacher
    unmixed = SampledGroup("u", "", "1", [1, 99], ["", ""], [short, [4, 4]], [True, True], ["stop"] * 2)
    assert len(RMBatches(groups + [unmixed], sequence, 0, RMDataConfig(max_len=16), teacher + [[0.0, 1.0]]).groups) == 7
    assert len(RMBatches(groups + [unmixed], sequence, 0, RMDataConfig(max_len=16)).groups) == 6
    with pytest.raises(ValueError, match="one value per sampled response"):
        RMBatches(groups, sequence, pad_id=0, cfg=RMDataConfig(max_len=16), teacher=teacher[1:])


def test_score_groups_returns_each_response_its_own_score_in_its_group():
    class LengthScorer:  # score = prompt id + response length, so a misplaced score shows
        def score_tokens(self, prompt_ids, response_ids):
            return [float(p[-1] * 100 + len(r)) for p, r in zip(prompt_ids, response_ids)]

    groups = [
        SampledGroup(id=f"p{k}", problem="", gold="", prompt_ids=[1, k], responses=[""] * size,
                     response_ids=[[7] * (j + 1) for j in range(size)], correct=[True] * size, finish_reasons=["stop"] * size)
        for k, size in enumerate([3, 1, 2])
    ]
    assert score_groups(LengthScorer(), groups) == [[1.0, 2.0, 3.0], [101.0], [201.0, 202.0]]
    assert regroup([1, 2, 3], [0, 3, 0]) == [[], [1, 2, 3], []]
