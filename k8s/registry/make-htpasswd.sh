#!/usr/bin/env bash
# Prints the Secret "registry-htpasswd" (namespace "registry") that the registry's htpasswd auth
# reads: one bcrypt line for <user>, made by `htpasswd -B`, wrapped by
# `kubectl create secret generic --dry-run=client -o yaml`. Nothing is sent to a cluster.
#
#   k8s/registry/make-htpasswd.sh <user> | kubectl apply -f -
#
# The password is read from standard input: typed twice at a terminal, or the first line of a
# pipe (`printf '%s\n' "$PASSWORD" | k8s/registry/make-htpasswd.sh ship`). It never appears in
# a command line, where other users of the machine could read it in the process list.
set -euo pipefail

secret_name=registry-htpasswd
secret_key=htpasswd
namespace=registry

usage() {
  echo "usage: $0 <user>   (the password comes from standard input)" >&2
  exit 2
}

[ "$#" -eq 1 ] || usage
user=$1
if [ -z "$user" ]; then
  echo "$0: the user name is empty: give one, e.g. $0 ship" >&2
  exit 2
fi
# htpasswd lines are "<user>:<hash>", and the registry's parser splits on the first ":".
if [[ "$user" == *:* || "$user" =~ [[:space:]] ]]; then
  echo "$0: the user name \"$user\" contains \":\" or white space, which htpasswd files cannot hold: choose another" >&2
  exit 2
fi

for tool in htpasswd kubectl; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "$0: $tool is not on PATH (htpasswd: apt-get install apache2-utils)" >&2
    exit 1
  fi
done

password=
if [ -t 0 ]; then
  read -r -s -p "Password for $user: " password
  echo >&2
  read -r -s -p "Same password again: " again
  echo >&2
  if [ "$password" != "$again" ]; then
    echo "$0: the two passwords differ: nothing was made" >&2
    exit 1
  fi
else
  IFS= read -r password || true
fi
if [ -z "$password" ]; then
  echo "$0: the password is empty: the registry would accept anyone who knows the user name. Nothing was made." >&2
  exit 1
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# -i reads the password from stdin (never argv); -B is bcrypt, the only hash the registry accepts.
# htpasswd's default bcrypt cost (5) is kept: the registry pays it on every request (about 7 ms;
# 60 ms at cost 10), and a random password (README.md) is what stops guessing.
printf '%s' "$password" | htpasswd -niB "$user" >"$work/$secret_key"

kubectl create secret generic "$secret_name" \
  --namespace "$namespace" \
  --from-file="$secret_key=$work/$secret_key" \
  --dry-run=client -o yaml
