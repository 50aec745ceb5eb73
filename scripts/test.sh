#!/usr/bin/env bash
# The README's test command: every test of every crate (`cargo test` at the root), with the
# backends named in S2S_TEST_FEATURES compiled in beside the default ndarray, in one build.
#
#   scripts/test.sh                                   # = cargo test (ndarray only)
#   S2S_TEST_FEATURES=flex scripts/test.sh            # + flex (nothing to install)
#   eval "$(scripts/setup-lavapipe.sh)"; scripts/setup-tch.sh
#   S2S_TEST_FEATURES=flex,wgpu,tch scripts/test.sh   # what .ci/run does
#   scripts/test.sh --test backend_parity -- --nocapture   # extra arguments go to cargo test
#
# With tch it sources the environment scripts/setup-tch.sh wrote (libtorch on LD_LIBRARY_PATH).
# Tests that need a backend's device skip it with a message unless S2S_REQUIRE_BACKENDS names it;
# those that need the prepared corpus or BERT likewise with S2S_REQUIRE_CORPUS / S2S_REQUIRE_BERT.
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
exec cargo test --workspace "${args[@]}" "$@"
