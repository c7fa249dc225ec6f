# Sourced by the bench scripts: `need wrk` installs a missing Debian package (the benches' load
# generator is Debian's wrk), as the Makefile does for the C compiler.
need() {
  command -v "$1" >/dev/null && return 0
  echo "installing Debian package: $1" >&2
  local sudo=; [ "$(id -u)" = 0 ] || sudo=sudo
  $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "$1" >/dev/null
}
