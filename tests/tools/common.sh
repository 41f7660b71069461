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
# The built tarball is installed here for ansible-doc and ansible-playbook runs; below
# KERNEL_DAMON_WORK when that is set, so that a checkout's docs stage cannot swap the
# collection under another checkout's integration run.
COLLECTIONS=${KERNEL_DAMON_WORK:+$WORK/collections}
COLLECTIONS=${COLLECTIONS:-$CACHE/collections}
PREFIX=${PREFIX:-tools}
# Older ansible-core releases tested besides the newest (tests/requirements.txt), as
# release:python: the floor (meta/runtime.yml's requires_ansible) and one in between.
# shellcheck disable=SC2034  # read by the tools that source this file (cores, integration)
CORE_FLOOR=2.16.19:3.12 CORE_MIDDLE=2.18.19:3.11
# dir=$(copy_collection ...) and friends: let set -e stop inside command substitutions too.
shopt -s inherit_errexit

say() { printf '%s: %s\n' "$PREFIX" "$*" >&2; }
die() { say "error: $*"; exit 1; }

# Use the venv's tools without activating it (activate is not set -u safe).
# The directory of promtool (Debian's prometheus, unpacked by tests/tools/bootstrap): the
# unit tests check the metrics textfile with it, under every ansible-core.
promtool_dir() {
  local dir=$CACHE/prometheus/usr/bin
  [[ -x $dir/promtool ]] || die "$dir/promtool is missing: run tests/tools/bootstrap"
  printf '%s\n' "$dir"
}

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

# get_pip_shim VENV: ansible-test downloads get-pip.py into every venv it makes; put our
# offline shim where it looks first, named after the pip version that VENV's ansible-test pins.
get_pip_shim() {
  local ver dest
  ver=$("$1/bin/python" - <<'PY'
import re, ansible_test, os
path = os.path.join(os.path.dirname(ansible_test.__file__), '_internal', 'python_requirements.py')
m = re.search(r"default_packages = dict\(\s*pip='([0-9.]+)'", open(path).read())
if not m:
    raise SystemExit('cannot find the pinned pip version in ' + path)
print(m.group(1))
PY
)
  dest=$HOME/.ansible/test/cache/get_pip_${ver//./_}.py
  if cmp -s "$REPO/tests/tools/get_pip.py" "$dest"; then
    say "get-pip shim in place: $dest"
    return
  fi
  say "install get-pip shim for pip $ver: $dest"
  mkdir -p "$(dirname "$dest")"
  # Two tools may run side by side (tests/tools/all): never let one read a half-written copy.
  cp "$REPO/tests/tools/get_pip.py" "$dest.$$"
  mv -f "$dest.$$" "$dest"
}

# find_python X.Y: the newest pyenv Python X.Y (pyenv's shims do not survive ansible-test),
# else pythonX.Y on PATH.
find_python() {
  local p
  p=$(printf '%s\n' "$HOME"/.pyenv/versions/"$1".*/bin/python3 | sort -V | tail -n 1)
  if [[ -x $p ]]; then printf '%s\n' "$p"; return; fi
  p=$(command -v "python$1" || true)
  [[ -n $p ]] || die "no Python $1: neither ~/.pyenv/versions/$1.*/bin/python3 nor python$1 on PATH"
  printf '%s\n' "$p"
}

# core_venv RELEASE PYTHON: print the path of a cached venv with ansible-core RELEASE on
# PYTHON (made if missing), with ansible-test's get-pip shim in place for it.
core_venv() {
  local venv=$CACHE/venv-core-$1
  if [[ $("$venv/bin/ansible" --version 2>/dev/null | head -n 1) != *"core $1]"* ]]; then
    say "venv: ansible-core $1 on $2 in $venv"
    rm -rf "$venv"
    "$2" -m venv "$venv"
    "$venv/bin/python" -m pip install -q "ansible-core==$1" >&2
  fi
  get_pip_shim "$venv" >&2
  printf '%s\n' "$venv"
}
