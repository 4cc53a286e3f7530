"""Runs the README's quick tour against a running `make run` and compares each answer
with what the README shows (`make tour-check`; scripts/fresh-check.sh runs it on a
fresh machine).

The tour is the first ```sh block after the "## Quick tour" heading. A line
`# → TEXT` states what the commands above it (since the previous such line) print:
TEXT's pieces, split at `…`, must appear in that output in that order. White space
is ignored on both sides, so a JSON answer may be shown compact or spaced. The
commands run top to bottom in one bash, as someone pasting them would.
"""
import pathlib
import re
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
MARK = "@@tour-step@@"


def tour_lines(readme):
    match = re.search(r"^## Quick tour\n(.*?)^```sh\n(.*?)^```", readme, re.S | re.M)
    if not match:
        sys.exit("tour-check: README.md has no ```sh block under '## Quick tour'")
    return match.group(2).splitlines()


def steps(lines):
    """[(commands, [expectation, ...])], expectations possibly empty for the last."""
    out, commands, expected = [], [], []
    for line in lines:
        if line.startswith("# → "):
            expected.append(line[len("# → "):])
            continue
        if expected:
            out.append((commands, expected))
            commands, expected = [], []
        commands.append(line)
    out.append((commands, expected))
    return out


def squash(text):
    return re.sub(r"\s+", "", text)


def found_in_order(pieces, output):
    at = 0
    for piece in pieces:
        at = output.find(piece, at)
        if at < 0:
            return piece
        at += len(piece)
    return None


def main():
    tour = steps(tour_lines((ROOT / "README.md").read_text()))
    script = []
    for number, (commands, _) in enumerate(tour):
        script.append(f"echo {MARK}{number}")
        script.extend(commands)
    result = subprocess.run(["bash", "-c", "\n".join(script)], cwd=ROOT, capture_output=True, text=True, timeout=300)
    outputs = result.stdout.split(MARK)[1:]
    if len(outputs) != len(tour):
        print(result.stdout[-2000:], result.stderr[-2000:], sep="\n", file=sys.stderr)
        sys.exit(f"tour-check: the tour stopped after step {len(outputs)} of {len(tour)}")
    failures = 0
    for (commands, expected), output in zip(tour, outputs):
        output = output.split("\n", 1)[1] if "\n" in output else ""
        first = next((c for c in commands if c and not c.startswith("#")), "")
        for line in expected:
            pieces = [squash(p) for p in line.split("…") if squash(p)]
            missing = found_in_order(pieces, squash(output))
            if missing is None:
                print(f"ok    {first[:90]}")
            else:
                failures += 1
                print(f"FAIL  {first[:90]}\n      expected: {line}\n      missing:  {missing}\n      got:      {output.strip()[:600]}")
    if result.stderr.strip():
        print(f"stderr of the tour:\n{result.stderr.strip()[:2000]}")
    if failures:
        sys.exit(f"tour-check: {failures} answer(s) differ from the README")
    print(f"tour-check: all {sum(len(e) for _, e in tour)} answers as the README shows")


if __name__ == "__main__":
    main()
