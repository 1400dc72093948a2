from tests.fuzz.harness import CASES, KNOWN_HITS, OUTCOMES


def pytest_terminal_summary(terminalreporter):
    if CASES:
        parts = ", ".join(f"{suite} {n}" for suite, n in sorted(CASES.items()))
        terminalreporter.write_line(f"fuzz cases: {sum(CASES.values())} ({parts})")
        outcomes = ", ".join(f"{suite} {what} {n}" for (suite, what), n in sorted(OUTCOMES.items()) if suite != "-")
        terminalreporter.write_line(f"fuzz outcomes: {outcomes}")
    for bug, n in sorted(KNOWN_HITS.items()):
        terminalreporter.write_line(f"fuzz: {n} cases hit known bug {bug!r} (see tests/fuzz/harness.py KNOWN_BUGS)")
