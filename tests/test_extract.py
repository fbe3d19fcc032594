"""Final-answer extraction: boxes, answer phrases, think blocks, fallbacks, and linear time."""

import time

import pytest

from rewards.extract import extract_answer


@pytest.mark.parametrize(
    "text, expected",
    [
        # boxes: the last one, braces matched by hand, any nesting
        (r"so $x = \boxed{\frac{1}{2}}$.", r"\frac{1}{2}"),
        (r"first \boxed{1}, later \boxed{\{1, 2\}}", r"\{1, 2\}"),
        (r"\boxed{\left( 3, \frac{\pi}{2} \right)}.", r"\left( 3, \frac{\pi}{2} \right)"),
        (r"\boxed{\sqrt{\frac{1+\sqrt{5}}{2}}}", r"\sqrt{\frac{1+\sqrt{5}}{2}}"),
        (r"\fbox{7} is it", "7"),
        (r"hence $\boxed 5$.", "5"),
        (r"\boxed {12}", "12"),
        # several boxes side by side form one list answer; "or" offers alternatives
        (r"the roots are \boxed{2} and \boxed{-3}.", "2, -3"),
        (r"$\boxed{1}, \boxed{2}, \boxed{3}$", "1, 2, 3"),
        (r"$\boxed{15\frac{39}{40}},$ or $\boxed{\frac{639}{40}}$ inches.", r"\frac{639}{40}"),
        (r"\boxed{1} is wrong; after more work we find that the value is \boxed{2}", "2"),
        # a truncated last box falls back to an earlier closed one
        (r"\boxed{4} ... so the answer is \boxed{\frac{1}{2", "4"),
        # answer phrases, case-insensitive, the last one
        (r"The final answer is $\frac{3}{4}$. I hope it is correct.", r"\frac{3}{4}"),
        ("Answer: 42\nSome more text.", "42"),
        ("the answer is 7. wait, no. The ANSWER IS 8.", "8"),
        ("The answer is 3.5.", "3.5"),
        (r"the answer is: \(x^2\)", "x^2"),
        (r"Answer: \[ 9 \]", "9"),
        (r"The answer is $\$5.00$.", r"\$5.00"),
        ("**Answer:** **17**", "17"),
        ("Janet sells 9 eggs.\n#### 18", "18"),
        # "The final answer is" after the boxes is the final word, unless it is not an answer
        (r"so $\boxed{255}$ and $10,200 + 255 = 10,455$. Final Answer: The final answer is $10,455$. "
         "I hope it is correct.", "10,455"),
        (r"\boxed{5}. The answer is therefore correct.", "5"),
        ("Final Answer: The largest $n$ is 34.", "34"),
        (r"boxes $$\boxed{(2, 2)} \quad \text{and} \quad \boxed{(6, 2)}$$", "(2, 2), (6, 2)"),
        (r"\(\boxed{1}\) and \(\boxed{-2}\).", "1, -2"),
        (r"\( y_1 = \boxed{x+1} \) and \( y_2 = \boxed{x-1} \)", "x+1, x-1"),
        # no box, no phrase: the last stated result (a math span, or a number after it)
        (r"Of the 36 outcomes, 6 have a sum of 7, so the probability is $\frac{1}{6}$.", r"\frac{1}{6}"),
        (r"Therefore $x \geq 5$ is the solution.", r"x \geq 5"),
        (r"The identity matrix is $ \begin{pmatrix}1 & 0 \\ 0 & 1\end{pmatrix} $.",
         r"\begin{pmatrix}1 & 0 \\ 0 & 1\end{pmatrix}"),
        (r"so $$\frac{a}{b} \geq 2.$$ The error increases by 100%.", "100%"),
        # last number
        ("we get 3 apples and 5 pears", "5"),
        ("value -3 then", "-3"),
        ("ratio 3/4 overall", "3/4"),
        ("total 1,234 people", "1,234"),
    ],
)
def test_extract(text, expected):
    assert extract_answer(text) == expected


@pytest.mark.parametrize(
    "text, expected",
    [
        (r"<think>maybe \boxed{3}</think> The answer is \boxed{4}.", "4"),
        (r"<think>I get \boxed{3}</think>", "3"),  # nothing after the block: look inside it
        ("<think>so 12, then 13</think>\n\nThe answer is 14.", "14"),
        ("<think>long thoughts, 12 then 15", "15"),  # unclosed block: the whole text
        (r"<think>\boxed{3}</think> Hence the answer is 5", "5"),
    ],
)
def test_think_blocks(text, expected):
    assert extract_answer(text) == expected


@pytest.mark.parametrize(
    "text", ["", "no numbers here", r"\boxed{\frac{1}{2", r"\boxed{", "The answer is $$", "AZYUK2A", "x2 and v3",
             r"we get 5, so $\boxed{}$", r"\boxed{ }"]
)
def test_no_answer(text):
    assert extract_answer(text) is None


@pytest.mark.parametrize(
    "text, expected",
    [
        ("**Answer:** $\\frac{1}{2}$", r"\frac{1}{2}"),
        (r"\boxed{$5$}", "5"),
        (r"\boxed{\(x+1\)}", "x+1"),
        (r"\boxed{__7__}", "7"),
        (r"\boxed{5.}", "5"),
    ],
)
def test_strips_emphasis_and_delimiters(text, expected):
    assert extract_answer(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "\\boxed{" * 7000,
        "{" * 50_000,
        "1" * 50_000,
        "<think>" * 7000,
        "answer is " * 5000,
        "\\boxed{1} and " * 3500,
        "answer is $" * 4500,
        " " * 50_000 + "5",
        "$" * 50_000,
        "\\boxed{1} a" + " " * 50_000 + "\\boxed{2}",
        "\\boxed{1}" + " y =" * 12_000 + "\\boxed{2}",
    ],
    ids=["open-boxes", "braces", "digits", "think-tags", "phrases", "joined-boxes", "dollars",
         "spaces", "only-dollars", "spaces-between-boxes", "names-between-boxes"],
)
def test_linear_time_on_50k_inputs(text):
    start = time.perf_counter()
    extract_answer(text)
    assert time.perf_counter() - start < 1.0
