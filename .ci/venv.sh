# Sourced by the CI scripts: makes target/ci-venv (a Python virtualenv for
# the tools CI takes from PyPI), installing python3-venv first where the
# machine lacks it and apt-get is at hand.
ci_venv() {
  venv="$PWD/target/ci-venv"
  if [ ! -x "$venv/bin/pip" ]; then
    rm -rf "$venv"
    if ! python3 -m venv "$venv" >/dev/null 2>&1; then
      if command -v apt-get >/dev/null 2>&1; then
        export DEBIAN_FRONTEND=noninteractive
        apt-get install -y -qq python3-venv python3-pip >/dev/null 2>&1 \
          || { apt-get update -qq && apt-get install -y -qq python3-venv python3-pip >/dev/null; }
      fi
      rm -rf "$venv"
      python3 -m venv "$venv"
    fi
  fi
}
