# shellcheck shell=bash
# Sourced by tests/tools/*: where the tool venv and the throw-away collection copies live.
# Callers set PREFIX (used by say/die) before sourcing, and run with `set -euo pipefail`.

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
# Same cache as tests/testbed/fleet, so one variable moves everything.
CACHE=${KERNEL_DAMON_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/kernel-damon}
VENV=$CACHE/venv
# ansible-test wants a real .../ansible_collections/kernel/damon; each tool gets its own
# copy so that `make -j` cannot have two tools share one tests/output; KERNEL_DAMON_WORK
# moves them, so that two checkouts can run their unit tests side by side.
WORK=${KERNEL_DAMON_WORK:-$CACHE/work}
# The built tarball is installed here for ansible-doc and ansible-playbook runs.
COLLECTIONS=$CACHE/collections
PREFIX=${PREFIX:-tools}
# dir=$(copy_collection ...) and friends: let set -e stop inside command substitutions too.
shopt -s inherit_errexit

say() { printf '%s: %s\n' "$PREFIX" "$*" >&2; }
die() { say "error: $*"; exit 1; }

# Use the venv's tools without activating it (activate is not set -u safe).
use_venv() {
  [[ -x $VENV/bin/ansible-test ]] || die "no tool venv at $VENV: run tests/tools/bootstrap (or make bootstrap)"
  export PATH="$VENV/bin:$PATH"
  export VIRTUAL_ENV=$VENV
  export ANSIBLE_NOCOLOR=1
}

# copy_collection NAME: copy the repo's tracked and untracked-not-ignored files to
# $WORK/NAME/ansible_collections/kernel/damon (replacing an older copy) and print that path.
copy_collection() {
  local dest=$WORK/$1/ansible_collections/kernel/damon
  rm -rf "$dest"
  mkdir -p "$dest"
  # --deduplicate drops the second listing of files that are both in the index and modified;
  # files deleted from the work tree but still in the index are filtered out by the test.
  (
    cd "$REPO" || exit
    git ls-files -z --cached --others --exclude-standard --deduplicate \
      | while IFS= read -r -d '' f; do
          if [[ -f $f || -L $f ]]; then printf '%s\0' "$f"; fi
        done \
      | tar --null -T - -cf -
  ) | tar -C "$dest" -xf -
  printf '%s\n' "$dest"
}

# build_and_install: build the collection tarball from a fresh copy and install it into
# $COLLECTIONS; prints the tarball's path.
build_and_install() {
  local src out tarball
  src=$(copy_collection build)
  out=$WORK/build/dist
  rm -rf "$out"
  mkdir -p "$out" "$COLLECTIONS"
  ansible-galaxy collection build --force --output-path "$out" "$src" >&2
  tarball=$(ls "$out"/kernel-damon-*.tar.gz)
  ANSIBLE_COLLECTIONS_PATH=$COLLECTIONS \
    ansible-galaxy collection install --offline --force -p "$COLLECTIONS" "$tarball" >&2
  printf '%s\n' "$tarball"
}
