#!/usr/bin/env bash
# Mutation testing, one module at a time: tools/mutation.sh nascli/ga/selection.py [MUTANT_PATTERN...]
#
# Copies the checkout (tracked and new files) to a scratch directory, narrows mutmut to MODULE and the
# tests pyproject.toml's [tool.nascli.mutation] lists for it, runs `mutmut run` there, prints the
# killed/total score and the survivors. One worker process by default (MUTMUT_CHILDREN to change):
# the suite shares small machines. MUTATION_KEEP=1 keeps the scratch copy (to `mutmut show` there).
# With NASCLI_TEST_PG_URL set, the module's `postgres` tests run too (each in its own schema).
# MUTANT_PATTERN (fnmatch, e.g. 'nascli.report.gather.x_top_rows*') runs only those mutants: the score
# then counts them alone. With no argument: lists the configured modules.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
if [[ $# -lt 1 ]]; then
  python - "$repo/pyproject.toml" <<'PY'
import sys, tomllib
print("usage: tools/mutation.sh MODULE   (one of:)")
for module in tomllib.load(open(sys.argv[1], "rb"))["tool"]["nascli"]["mutation"]:
    print("  " + module)
PY
  exit 2
fi
module=$1
shift
scratch=$(mktemp -d "${TMPDIR:-/tmp}/nascli-mutation.XXXXXX")
if [[ "${MUTATION_KEEP:-0}" == 1 ]]; then echo "scratch copy: $scratch"; else trap 'rm -rf "$scratch"' EXIT; fi
(cd "$repo" && git ls-files -z --cached --others --exclude-standard | xargs -0 cp --parents -t "$scratch" 2>/dev/null || true)
python - "$scratch/pyproject.toml" "$module" <<'PY'
import os, re, sys, tomllib
path, module = sys.argv[1], sys.argv[2]
text = open(path).read()
tests = tomllib.loads(text)["tool"]["nascli"]["mutation"].get(module)
if tests is None:
    sys.exit(f"error: {module} is not in [tool.nascli.mutation] of pyproject.toml -- add it with its tests")
narrowed = (f"only_mutate = [{module!r}]\n".replace("'", '"')
            + "pytest_add_cli_args_test_selection = [" + ", ".join(f'"{t}"' for t in tests) + "]\n")
text = re.sub(r"^pytest_add_cli_args_test_selection = .*\n", narrowed, text, flags=re.M)
if os.environ.get("NASCLI_TEST_PG_URL"):
    text = text.replace('"not postgres and not slow"', '"not slow"')
open(path, "w").write(text)
PY
cd "$scratch"
started=$(date +%s)
python -m mutmut run --max-children "${MUTMUT_CHILDREN:-1}" "$@" > mutmut.log 2>&1 || { tail -20 mutmut.log; exit 1; }
seconds=$(( $(date +%s) - started ))
python -m mutmut results --all true 2>/dev/null > results.txt || true
python - "$module" "$seconds" "$@" <<'PY'
import fnmatch, sys
module, seconds, patterns = sys.argv[1], sys.argv[2], sys.argv[3:]
status = dict(line.strip().rsplit(": ", 1) for line in open("results.txt") if ": " in line)
if patterns:
    status = {name: s for name, s in status.items() if any(fnmatch.fnmatch(name, p) for p in patterns)}
counts = {s: list(status.values()).count(s) for s in set(status.values())}
killed = sum(counts.get(s, 0) for s in ("killed", "timeout", "segfault", "caught by type check"))
total = len(status) - counts.get("skipped", 0)
print(f"{module}{' ' + ' '.join(patterns) if patterns else ''}: {killed}/{total} mutants killed "
      f"({100 * killed / max(total, 1):.1f} %) in {seconds} s; survived {counts.get('survived', 0)}, "
      f"no tests {counts.get('no tests', 0)}, not run {counts.get('not checked', 0)}")
PY
echo "survivors and their diffs:"
survivors=$(grep -E ": (survived|no tests)$" results.txt | cut -d: -f1 | tr -d ' ' || true)
for name in $survivors; do python -m mutmut show "$name" 2>/dev/null || true; echo; done
