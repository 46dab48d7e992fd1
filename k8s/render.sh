#!/usr/bin/env bash
# Renders a DockerCoins overlay with the images $REGISTRY/<service>:$TAG (the seed's convention),
# to stdout, without editing any committed file:
#
#   REGISTRY=<registry> TAG=<tag> [REDIS_IMAGE=<image>] k8s/render.sh <overlay> [<component>...] \
#     | kubectl apply -f -
#
#   <overlay>     dockerhub, ecr or in-cluster (a folder of k8s/overlays), or the path of any
#                 kustomization built on k8s/base
#   <component>   a folder of k8s/components, e.g. webui-loadbalancer
#   REGISTRY      the image prefix, registry host included: docker.io/dockercoins, 127.0.0.1:30500,
#                 <account>.dkr.ecr.<region>.amazonaws.com/dockercoins (RegistryUri)
#   TAG           the commit or release tag of hasher, rng, webui and worker; never empty or latest
#   REDIS_IMAGE   optional: the redis image, tag included (RedisImage for the ecr overlay)
#
# It wraps the overlay in a temporary kustomization whose `images:` replace the overlay's images,
# so the result is exactly what kustomize makes of that overlay. Needs kubectl (kustomize built in).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)"
readonly here
readonly built_services=(hasher rng webui worker)
# The account of the committed ecr overlay's example images: rendering it would deploy images
# that do not exist.
readonly example_account=123456789012
readonly tag_pattern='^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$'
readonly host_pattern='^([A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*(:[0-9]+)?$'
readonly path_component_pattern='^[a-z0-9]+(([._]|__|-+)[a-z0-9]+)*$'

lowercase() { printf '%s' "$1" | tr '[:upper:]' '[:lower:]'; }

die() {
  printf 'render.sh: %s\n' "$*" >&2
  exit 2
}

usage() {
  sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//' >&2
  exit 2
}

# The image's name without its tag or digest, split the way kustomize splits it (the first ":"
# or "@" after the first "/").
image_name() {
  local image="$1" head="" rest="$1"
  if [[ "$image" == */* ]]; then
    head="${image%%/*}/"
    rest="${image#*/}"
  fi
  rest="${rest%%@*}"
  rest="${rest%%:*}"
  printf '%s%s' "$head" "$rest"
}

# Why a repository name (registry host included) is not acceptable; nothing when it is.
name_problem() {
  local name="$1" host rest component
  if [[ "$name" != */* ]]; then
    printf 'names no registry host, so the cluster would pick one (Docker Hub)'
    return
  fi
  host="${name%%/*}"
  rest="${name#*/}"
  if [[ ! "$host" =~ $host_pattern ]] || [[ "$host" != *.* && "$host" != *:* && "$host" != localhost ]]; then
    printf 'does not start with a registry host such as docker.io, 127.0.0.1:30500 or <account>.dkr.ecr.<region>.amazonaws.com'
    return
  fi
  local components=()
  IFS=/ read -ra components <<<"$rest"
  for component in "${components[@]}"; do
    if [[ ! "$component" =~ $path_component_pattern ]]; then
      printf 'has the path component "%s": lowercase letters and digits, separated by ".", "_" or "-"' "$component"
      return
    fi
  done
}

check_tag() {
  local tag="${TAG-}"
  if [[ -z "$tag" ]]; then
    die 'TAG is empty or not set. Set it to the commit or release tag to deploy, e.g. TAG=6e0de7938dda or TAG=v1.2.0.'
  fi
  if [[ "$(lowercase "$tag")" == latest ]]; then
    die "TAG \"$tag\" is refused: nobody knows what latest points to. Set TAG to a commit or release tag, e.g. TAG=6e0de7938dda."
  fi
  if [[ ! "$tag" =~ $tag_pattern ]]; then
    die "TAG \"$tag\" is not an image tag: 1 to 128 letters, digits, \"_\", \".\" or \"-\", not starting with \".\" or \"-\". Set it to a commit or release tag, e.g. TAG=6e0de7938dda."
  fi
}

check_registry() {
  local registry="${REGISTRY-}" fixed problem
  if [[ -z "$registry" ]]; then
    die 'REGISTRY is empty or not set. Set it to the prefix of the images, registry host included, e.g. REGISTRY=docker.io/dockercoins, REGISTRY=127.0.0.1:30500 or the RegistryUri output of the DockerCoins-Registry stack.'
  fi
  if [[ "$registry" =~ ^[A-Za-z][A-Za-z0-9+.-]*:// ]]; then
    fixed="${registry#*://}"
    die "REGISTRY \"$registry\" starts with a scheme (\"${registry%%://*}://\"); image names have none. Set REGISTRY=${fixed%/}."
  fi
  if [[ "$registry" == */ ]]; then
    fixed="$registry"
    while [[ "$fixed" == */ ]]; do fixed="${fixed%/}"; done
    die "REGISTRY \"$registry\" ends with \"/\"; images are \$REGISTRY/<service>:\$TAG. Set REGISTRY=$fixed."
  fi
  # Checked as the prefix of an image name: a registry host, then optional path components.
  problem="$(name_problem "$registry/hasher")"
  if [[ -n "$problem" ]]; then
    die "REGISTRY \"$registry\" $problem. Set REGISTRY to a registry host and an optional path, e.g. REGISTRY=docker.io/dockercoins (the seed's REGISTRY=dockercoins), REGISTRY=127.0.0.1:30500."
  fi
}

# Sets redis_name, redis_tag and redis_digest from REDIS_IMAGE, or refuses it.
check_redis_image() {
  local image="$REDIS_IMAGE" remainder problem
  redis_name="$(image_name "$image")"
  remainder="${image#"$redis_name"}"
  redis_tag=""
  redis_digest=""
  if [[ "$remainder" == *@* ]]; then
    redis_digest="${remainder#*@}"
    remainder="${remainder%%@*}"
  fi
  redis_tag="${remainder#:}"
  problem="$(name_problem "$redis_name")"
  if [[ -n "$problem" ]]; then
    die "REDIS_IMAGE \"$image\" $problem. Set it to a full image reference, e.g. REDIS_IMAGE=docker.io/library/redis:7.4."
  fi
  if [[ -z "$redis_tag" && -z "$redis_digest" ]]; then
    die "REDIS_IMAGE \"$image\" has no tag or digest, which means latest. Add one, e.g. REDIS_IMAGE=$redis_name:7.4."
  fi
  if [[ -n "$redis_tag" && "$(lowercase "$redis_tag")" == latest ]]; then
    die "REDIS_IMAGE \"$image\" is refused: nobody knows what latest points to. Pin a version, e.g. REDIS_IMAGE=$redis_name:7.4."
  fi
  if [[ -n "$redis_tag" && ! "$redis_tag" =~ $tag_pattern ]]; then
    die "REDIS_IMAGE \"$image\" has the invalid tag \"$redis_tag\". Pin a version, e.g. REDIS_IMAGE=$redis_name:7.4."
  fi
  if [[ -n "$redis_digest" && ! "$redis_digest" =~ ^sha256:[0-9a-f]{64}$ ]]; then
    die "REDIS_IMAGE \"$image\" has the invalid digest \"$redis_digest\": expected sha256: and 64 hex digits."
  fi
}

# "<container>=<image>" for every container of every object in a rendered file.
container_images() {
  kubectl label --local -f "$1" render.sh/inspect=yes -o \
    jsonpath='{range .spec.template.spec.initContainers[*]}{.name}={.image}{"\n"}{end}{range .spec.template.spec.containers[*]}{.name}={.image}{"\n"}{end}'
}

image_of() {
  local container="$1" file="$2" line
  while IFS= read -r line; do
    if [[ "${line%%=*}" == "$container" ]]; then
      printf '%s' "${line#*=}"
      return
    fi
  done <"$file"
}

# The names of the folders in $1, separated by spaces.
folders_of() {
  local dir names=()
  for dir in "$1"/*/; do
    dir="${dir%/}"
    names+=("${dir##*/}")
  done
  printf '%s' "${names[*]}"
}

# The path from directory $1 to directory $2, both physical: kustomize refuses absolute paths.
relative_path() {
  local from="$1" to="$2" up=""
  while [[ "$to" != "$from" && "$to" != "$from"/* ]]; do
    from="${from%/*}"
    up="../$up"
  done
  if [[ "$to" == "$from" ]]; then
    printf '%s' "${up:-.}"
  else
    printf '%s%s' "$up" "${to#"$from"/}"
  fi
}

main() {
  [[ $# -ge 1 ]] || usage
  case "$1" in -h | --help) usage ;; esac
  command -v kubectl >/dev/null 2>&1 || die 'kubectl is not on PATH: install it (it carries kustomize).'

  local overlay
  if [[ -f "$1/kustomization.yaml" || -f "$1/kustomization.yml" ]]; then
    overlay="$(cd "$1" && pwd -P)"
  elif [[ "$1" != */* && -d "$here/overlays/$1" ]]; then
    overlay="$here/overlays/$1"
  else
    die "overlay \"$1\" is neither a folder of k8s/overlays ($(folders_of "$here/overlays")) nor a folder with a kustomization.yaml."
  fi
  shift
  local components=() component
  for component in "$@"; do
    if [[ "$component" == */* || ! -f "$here/components/$component/kustomization.yaml" ]]; then
      die "component \"$component\" is not a folder of k8s/components ($(folders_of "$here/components"))."
    fi
    components+=("$here/components/$component")
  done

  check_tag
  check_registry
  local redis_name="" redis_tag="" redis_digest=""
  if [[ -n "${REDIS_IMAGE-}" ]]; then check_redis_image; fi

  local work
  work="$(mktemp -d)"
  # shellcheck disable=SC2064 # expand now: $work is local
  trap "rm -rf '$work'" EXIT
  work="$(cd "$work" && pwd -P)"
  mkdir "$work/wrapper"

  kubectl kustomize "$overlay" >"$work/overlay.yaml"
  container_images "$work/overlay.yaml" >"$work/overlay-images"

  local service image wrapper="$work/wrapper/kustomization.yaml"
  {
    printf 'apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n'
    printf 'resources:\n  - "%s"\n' "$(relative_path "$work/wrapper" "$overlay")"
    if [[ ${#components[@]} -gt 0 ]]; then
      printf 'components:\n'
      for component in "${components[@]}"; do
        printf '  - "%s"\n' "$(relative_path "$work/wrapper" "$component")"
      done
    fi
    printf 'images:\n'
    for service in "${built_services[@]}"; do
      image="$(image_of "$service" "$work/overlay-images")"
      [[ -n "$image" ]] || die "overlay \"$overlay\" has no container named $service: render.sh sets the images of containers hasher, rng, webui and worker."
      printf '  - name: "%s"\n    newName: "%s"\n    newTag: "%s"\n' \
        "$(image_name "$image")" "$REGISTRY/$service" "$TAG"
    done
    if [[ -n "$redis_name" ]]; then
      image="$(image_of redis "$work/overlay-images")"
      [[ -n "$image" ]] || die "overlay \"$overlay\" has no container named redis to set REDIS_IMAGE on."
      printf '  - name: "%s"\n    newName: "%s"\n' "$(image_name "$image")" "$redis_name"
      [[ -z "$redis_tag" ]] || printf '    newTag: "%s"\n' "$redis_tag"
      [[ -z "$redis_digest" ]] || printf '    digest: "%s"\n' "$redis_digest"
    fi
  } >"$wrapper"

  kubectl kustomize "$work/wrapper" >"$work/rendered.yaml"

  # What goes out must be what was asked for: every image qualified and pinned, ours exactly.
  container_images "$work/rendered.yaml" >"$work/rendered-images"
  local line container problem name remainder
  while IFS= read -r line; do
    container="${line%%=*}"
    image="${line#*=}"
    if [[ "$image" == "$example_account".* ]]; then
      die "container $container would run $image, an EXAMPLE image of the committed overlay. Set REDIS_IMAGE (for the ecr overlay: the RedisImage output of the DockerCoins-Registry stack)."
    fi
    name="$(image_name "$image")"
    problem="$(name_problem "$name")"
    [[ -z "$problem" ]] || die "container $container would run \"$image\", which $problem. Set REDIS_IMAGE, or fix the overlay's images."
    remainder="${image#"$name"}"
    if [[ "$remainder" != *@* && ( -z "$remainder" || "$(lowercase "$remainder")" == :latest ) ]]; then
      die "container $container would run \"$image\", which is not pinned (no tag, or latest). Set REDIS_IMAGE, or fix the overlay's images."
    fi
  done <"$work/rendered-images"
  for service in "${built_services[@]}"; do
    image="$(image_of "$service" "$work/rendered-images")"
    [[ "$image" == "$REGISTRY/$service:$TAG" ]] ||
      die "container $service would run \"$image\", not $REGISTRY/$service:$TAG: the overlay gives two services the same image name. Give each its own."
  done

  cat "$work/rendered.yaml"
}

main "$@"
