"""The judge/child test harness judges honest code as an in-process harness would: values of every
plain type, exceptions, printed output, the candidate's own objects, and the prompt's helpers."""

from __future__ import annotations

from operators.code_tests import run_tests


def asserts(*lines: str) -> list[dict]:
    return [{"kind": "assert", "code": line} for line in lines]


async def verdict(program: str, tests: list[dict], **kw) -> tuple[int, str, list]:
    res = await run_tests(program, tests, timeout=8, **kw)
    return res["passed"], res["status"], res


async def test_plain_values_cross_exactly():
    program = """
def f(kind):
    return {"int": 10**30, "float": 0.1 + 0.2, "nan": float("nan"), "inf": -float("inf"), "neg0": -0.0,
            "tuple": (1, (2, 3)), "list": [1, [2]], "set": {1, 2}, "frozen": frozenset({3}),
            "dict": {(1, 2): [3], "k": None}, "bytes": b"\\x00\\xff", "complex": 1 - 2j, "bool": True, "str": "é\\n"}[kind]
"""
    tests = asserts("assert f('int') == 10**30", "assert f('float') == 0.1 + 0.2", "assert f('nan') != f('nan')",
                    "assert f('inf') == -float('inf')", "assert str(f('neg0')) == '-0.0'", "assert f('tuple') == (1, (2, 3))",
                    "assert f('tuple') != [1, [2, 3]]", "assert f('list') == [1, [2]]", "assert f('set') == {1, 2}",
                    "assert f('frozen') == frozenset({3})", "assert f('dict') == {(1, 2): [3], 'k': None}",
                    "assert f('bytes') == b'\\x00\\xff'", "assert f('complex') == 1 - 2j", "assert f('bool') is True",
                    "assert f('str') == 'é\\n'")
    passed, status, res = await verdict(program, tests, entry_point="f")
    assert (passed, status) == (len(tests), "passed"), res


async def test_exceptions_keep_their_builtin_type():
    program = "def root(x):\n    if x < 0:\n        raise ValueError('negative')\n    return x ** 0.5\n"
    tests = asserts("try:\n    root(-1)\nexcept ValueError as e:\n    assert 'negative' in str(e)\nelse:\n    assert False",
                    "assert root(4) == 2.0")
    assert (await verdict(program, tests, entry_point="root"))[:2] == (2, "passed")


async def test_the_candidates_own_objects_are_remote_values():
    program = """
class Stack:
    def __init__(self):
        self.items = []
    def push(self, x):
        self.items.append(x)
    def pop(self):
        return self.items.pop()
    def __len__(self):
        return len(self.items)
    def __repr__(self):
        return f"Stack({self.items})"
def squares(n):
    return (i * i for i in range(n))
"""
    tests = asserts("s = Stack()\ns.push(1)\ns.push(2)\nassert s.pop() == 2\nassert len(s) == 1\nassert s.items == [1]",
                    "assert list(squares(4)) == [0, 1, 4, 9]", "assert Stack() != Stack()", "assert not Stack()")
    doctest = [{"kind": "doctest", "source": "s = Stack(); s.push(3); s", "want": "Stack([3])"}]
    passed, status, res = await verdict(program, tests + doctest)
    assert (passed, status) == (5, "passed"), res


async def test_doctests_see_what_the_candidate_prints():
    program = "def greet(name):\n    print('hello', name)\n"
    tests = [{"kind": "doctest", "source": "greet('ada')", "want": "hello ada"}]
    assert (await verdict(program, tests, entry_point="greet"))[:2] == (1, "passed")


async def test_the_prompts_helpers_are_the_judges_not_the_candidates():
    # HumanEval/32's shape: the check calls poly() from the prompt on the candidate's answer.
    prompt = "def poly(xs, x):\n    return sum(c * x ** i for i, c in enumerate(xs))\n\ndef find_zero(xs):\n    \"\"\"A zero of poly.\"\"\"\n"
    check = "def check(candidate):\n    assert abs(poly([-6, 1], candidate([-6, 1]))) < 1e-6\n"
    honest = prompt + "    return 6.0\n"
    cheat = prompt + "    return 0.0\n\ndef poly(xs, x):\n    return 0\n"  # redefines the helper the check uses
    tests = [{"kind": "check", "code": check, "entry_point": "find_zero"}]
    assert (await verdict(honest, tests, prompt=prompt, entry_point="find_zero"))[:2] == (1, "passed")
    assert (await verdict(cheat, tests, prompt=prompt, entry_point="find_zero"))[:2] == (0, "failed")


async def test_a_test_that_outlives_its_time_fails_alone():
    program = "import time\ndef f(x):\n    if x == 0:\n        time.sleep(60)\n    return x\n"
    passed, status, res = await verdict(program, asserts("assert f(0) == 0", "assert f(1) == 1"), entry_point="f")
    assert (passed, status) == (1, "failed"), res


async def test_outputs_for_voting():
    res = await run_tests("def f(x):\n    return [x] * 2\n", [], entry_point="f", exprs=["f(1)", "f('a')", "g(1)"])
    assert res["outputs"] == ["[1, 1]", "['a', 'a']", "<NameError>"]
