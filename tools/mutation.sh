#!/usr/bin/env bash
# Mutation testing, one module at a time: tools/mutation.sh nascli/ga/selection.py
#
# Copies the checkout (tracked and new files) to a scratch directory, narrows mutmut to MODULE and the
# tests pyproject.toml's [tool.nascli.mutation] lists for it, runs `mutmut run` there, prints the
# killed/total score and the survivors. One worker process by default (MUTMUT_CHILDREN to change):
# the suite shares small machines. MUTATION_KEEP=1 keeps the scratch copy (to `mutmut show` there).
# With NASCLI_TEST_PG_URL set, the module's `postgres` tests run too (each in its own schema).
# With no argument: lists the configured modules.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
if [[ $# -ne 1 ]]; then
  python - "$repo/pyproject.toml" <<'PY'
import sys, tomllib
print("usage: tools/mutation.sh MODULE   (one of:)")
for module in tomllib.load(open(sys.argv[1], "rb"))["tool"]["nascli"]["mutation"]:
    print("  " + module)
PY
  exit 2
fi
module=$1
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
python -m mutmut run --max-children "${MUTMUT_CHILDREN:-1}" > mutmut.log 2>&1 || { tail -20 mutmut.log; exit 1; }
seconds=$(( $(date +%s) - started ))
python -m mutmut export-cicd-stats > /dev/null
python - "$module" "$seconds" <<'PY'
import json, sys
stats = json.load(open("mutants/mutmut-cicd-stats.json"))
killed = stats["killed"] + stats.get("timeout", 0) + stats.get("segfault", 0) + stats.get("caught_by_type_check", 0)
total = stats["total"] - stats.get("skipped", 0)
print(f"{sys.argv[1]}: {killed}/{total} mutants killed ({100 * killed / max(total, 1):.1f} %) in {sys.argv[2]} s; "
      f"survived {stats['survived']}, no tests {stats.get('no_tests', 0)}, suspicious {stats.get('suspicious', 0)}")
PY
echo "survivors and their diffs:"
survivors=$(python -m mutmut results 2>/dev/null | grep -vE ": (killed|timeout)$" | cut -d: -f1 || true)
for name in $survivors; do python -m mutmut show "$name" 2>/dev/null || true; echo; done
