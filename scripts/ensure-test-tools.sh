#!/usr/bin/env bash
# `npm test` runs this first (package.json "pretest"). The tests run real tools that Debian
# packages and Node does not bring: when one is missing, this installs its package with apt-get
# (as root, or through sudo when it needs no password), saying what and why; when it cannot, it
# stops at once with the one command that fixes it. With every tool present it does nothing.
set -euo pipefail

# command|Debian package|what the tests use it for
tools=(
  'docker-registry|docker-registry|the real registry (CNCF distribution) the registry, buildspec and ship tests push to'
  'buildah|buildah|builds and pushes images without a daemon (buildspec and ship tests)'
  'skopeo|skopeo|copies and inspects images in the registry (buildspec and ship tests)'
  'htpasswd|apache2-utils|htpasswd -B writes the bcrypt password file the registry reads'
  'openssl|openssl|makes the TLS certificate of the test registry'
  'shellcheck|shellcheck|lints the shell scripts we ship (k8s/render.sh, this script)'
  'docker-compose|docker-compose|checks compose/dockercoins.yml with docker-compose config (no daemon)'
)
# docker-compose without its recommends: they would pull in docker.io and containerd.
no_recommends=(docker-compose)

packages=()
plain=()
bare=()
for entry in "${tools[@]}"; do
  IFS='|' read -r tool package why <<<"$entry"
  if ! command -v "$tool" >/dev/null 2>&1; then
    printf 'test tools: %s is missing (%s): Debian package %s\n' "$tool" "$why" "$package" >&2
    packages+=("$package")
    if [[ " ${no_recommends[*]} " == *" $package "* ]]; then bare+=("$package"); else plain+=("$package"); fi
  fi
done
[ "${#packages[@]}" -eq 0 ] && exit 0

# The one command that installs them, as root.
fix="apt-get update"
[ "${#plain[@]}" -eq 0 ] || fix+=" && apt-get install -y ${plain[*]}"
[ "${#bare[@]}" -eq 0 ] || fix+=" && apt-get install -y --no-install-recommends ${bare[*]}"

stop() {
  printf 'test tools: %s. Install them with:\n\n  %s\n\nthen run npm test again.\n' "$1" "$2" >&2
  exit 1
}

if ! command -v apt-get >/dev/null 2>&1; then
  stop "no apt-get on this machine to install ${packages[*]}" \
    "your package manager's equivalent of: $fix"
fi
as_root=()
if [ "$(id -u)" -ne 0 ]; then
  if ! command -v sudo >/dev/null 2>&1; then
    stop "not root and no sudo, so ${packages[*]} cannot be installed from here" "su -c '$fix'"
  fi
  if ! sudo -n true >/dev/null 2>&1; then
    stop "sudo needs a password, so ${packages[*]} are not installed from here" \
      "sudo sh -c '$fix'"
  fi
  as_root=(sudo -n)
  fix="sudo sh -c '$fix'"
fi

printf 'test tools: installing %s with apt-get%s\n' "${packages[*]}" \
  "$([ "${#as_root[@]}" -eq 0 ] || printf ' (through sudo)')" >&2
apt() { "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get "$@"; }
apt update -q >&2 || stop "apt-get update failed" "$fix"
if [ "${#plain[@]}" -gt 0 ]; then
  apt install -y -q "${plain[@]}" >&2 || stop "apt-get install ${plain[*]} failed" "$fix"
fi
if [ "${#bare[@]}" -gt 0 ]; then
  apt install -y -q --no-install-recommends "${bare[@]}" >&2 ||
    stop "apt-get install ${bare[*]} failed" "$fix"
fi

for entry in "${tools[@]}"; do
  IFS='|' read -r tool package _ <<<"$entry"
  command -v "$tool" >/dev/null 2>&1 || stop "$tool is still missing after installing $package" "$fix"
done
printf 'test tools: installed %s\n' "${packages[*]}" >&2
