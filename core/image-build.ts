/**
 * The build record of an image known only from a registry: its labels (IMAGE_LABELS, written by
 * the buildspec and `ship build`) say which commit, ref, build project and build number it is, and
 * the tag it was pushed under must be one that build pushes. This is how the in-cluster deployer
 * (and any runtime fed by a registry rather than by CodeBuild) gets the same BuildRecord the
 * Lambda gets from a CodeBuild event, so plan.ts decides the same way. Pure.
 *
 * Refused (ImageLabelError, naming the label, the value and the fix): an image without the
 * revision, build number, build project or git ref labels (not built by our tools), labels that
 * are malformed, a service label of another service, a version label that is not the commit's
 * immutable tag, and a tag the labelled build never pushes (a commit tag of another commit, a
 * branch tag of another build). A release tag on any of our images is allowed: releasing a built
 * commit retags its image without a rebuild, so the labels name the branch build.
 */
import { IMAGE_LABELS, TagInputError, classifyTag, computeTags, sanitizeTag } from './image-tags';
import type { BuildRecord } from './types';

const COMMIT = /^[0-9a-f]{40}$/;
const BUILD_NUMBER = /^[1-9][0-9]{0,15}$/;
const DIGEST = /^sha256:[0-9a-f]{64}$/;
const PROJECT = /^[\x21-\x7e][\x20-\x7e]{0,254}$/;
const PULL_REF = /^refs\/pull\/([1-9][0-9]*)\/head$/;

/** What the registry says of one pushed image. */
export interface PushedImage {
  /** Our service, from the repository name. */
  readonly service: string;
  /** The repository in the registry, e.g. `hasher` or `dockercoins/hasher`. */
  readonly repository: string;
  /** The registry's host as the deployer reads it (BuildRecord.registryId). */
  readonly registryHost: string;
  /** The registry's host as the nodes pull it: the Deployment's image is `<pullHost>/<repository>:…`. */
  readonly pullHost: string;
  /** The tag pushed. */
  readonly tag: string;
  /** The manifest digest the tag names. */
  readonly digest: string;
  /** The image config's labels. */
  readonly labels: Readonly<Record<string, string>>;
  /** When the push was seen (notification or reconcile): the build's `finishedAt`. */
  readonly seenAt: Date;
  readonly releaseTagPattern: string;
}

/** The image's labels are missing, malformed or contradict the tag: never deployed. */
export class ImageLabelError extends Error {
  constructor(
    /** The label (or `tag`, `digest`) at fault. */
    readonly label: string,
    message: string,
  ) {
    super(message);
    this.name = 'ImageLabelError';
  }
}

const FIX =
  'Build and push it with `ship build` (or the CodeBuild buildspec), which write these labels; an image ' +
  'built otherwise is never deployed automatically (deploy it by hand with `ship deploy`).';

/** The build record of a pushed image, from its labels; throws {@link ImageLabelError}. */
export function buildFromImage(image: PushedImage): BuildRecord {
  const where = `${image.registryHost}/${image.repository}:${image.tag}@${image.digest}`;
  const refuse = (label: string, why: string): never => {
    throw new ImageLabelError(label, `${where}: ${why}. ${FIX}`);
  };
  if (!DIGEST.test(image.digest))
    refuse('digest', `the digest ${JSON.stringify(image.digest)} is not sha256:<64 hex>`);
  const label = (name: string): string => {
    const value = image.labels[name];
    if (value === undefined) return refuse(name, `the image has no label ${name}`);
    return value;
  };

  const commit = label(IMAGE_LABELS.revision);
  if (!COMMIT.test(commit)) {
    refuse(
      IMAGE_LABELS.revision,
      `label ${IMAGE_LABELS.revision} is ${JSON.stringify(commit)}, not a 40-hex commit`,
    );
  }
  const number = label(IMAGE_LABELS.buildNumber);
  if (!BUILD_NUMBER.test(number) || !Number.isSafeInteger(Number(number))) {
    refuse(
      IMAGE_LABELS.buildNumber,
      `label ${IMAGE_LABELS.buildNumber} is ${JSON.stringify(number)}, not a positive integer`,
    );
  }
  const buildNumber = Number(number);
  const project = label(IMAGE_LABELS.buildProject);
  if (!PROJECT.test(project)) {
    refuse(
      IMAGE_LABELS.buildProject,
      `label ${IMAGE_LABELS.buildProject} is ${JSON.stringify(project)}, not a build project name (printable ASCII, 1 to 255)`,
    );
  }
  const labelRef = label(IMAGE_LABELS.gitRef);
  const ref = parseRef(labelRef);
  if (ref === undefined) {
    refuse(
      IMAGE_LABELS.gitRef,
      `label ${IMAGE_LABELS.gitRef} is ${JSON.stringify(labelRef)}, not refs/heads/<branch>, refs/tags/<tag>, ` +
        'refs/pull/<n>/head or "" (no ref)',
    );
  }
  const service = image.labels[IMAGE_LABELS.service];
  if (service !== undefined && service !== image.service) {
    refuse(
      IMAGE_LABELS.service,
      `label ${IMAGE_LABELS.service} says "${service}", but the image is in the repository of "${image.service}"`,
    );
  }

  let expected: { immutableTag: string; tags: string[] };
  try {
    expected = computeTags({
      commit,
      ref: ref!,
      buildNumber,
      releaseTagPattern: image.releaseTagPattern,
    });
  } catch (error) {
    if (error instanceof TagInputError) return refuse(IMAGE_LABELS.gitRef, error.message);
    throw error;
  }
  const version = image.labels[IMAGE_LABELS.version];
  if (version !== undefined && version !== expected.immutableTag) {
    refuse(
      IMAGE_LABELS.version,
      `label ${IMAGE_LABELS.version} is ${JSON.stringify(version)}, but commit ${commit} ` +
        `(${labelRef === '' ? 'no ref' : labelRef}) is tagged "${expected.immutableTag}": the labels contradict each other`,
    );
  }

  const kind = classifyTag(image.tag, image.releaseTagPattern);
  const release = kind === 'release';
  if (!release && !expected.tags.includes(image.tag)) {
    refuse(
      'tag',
      `the tag "${image.tag}" is not one build ${project}#${buildNumber} of commit ${commit} ` +
        `(${labelRef === '' ? 'no ref' : labelRef}) pushes (${expected.tags.join(', ')}): the labels contradict the tag`,
    );
  }

  // A release tag is what is released, whatever branch build made the image.
  const gitRef =
    release && !(labelRef.startsWith('refs/tags/') && sanitizeTag(labelRef.slice(10)) === image.tag)
      ? `refs/tags/${image.tag}`
      : labelRef;
  const imageTags = [...new Set([expected.immutableTag, ...expected.tags, image.tag])];
  return {
    buildArn: undefined,
    buildId: `${project}#${buildNumber}`,
    project,
    service: image.service,
    buildNumber,
    region: undefined,
    account: undefined,
    finishedAt: image.seenAt,
    logsLink: undefined,
    repositoryUri: `${image.pullHost}/${image.repository}`,
    repository: image.repository,
    registryId: image.registryHost,
    imageTag: expected.immutableTag,
    imageTags,
    digest: image.digest,
    commit,
    gitRef,
    built: true,
  };
}

type GitRef =
  | { kind: 'branch'; name: string }
  | { kind: 'tag'; name: string }
  | { kind: 'pull-request'; number: number }
  | { kind: 'none' };

function parseRef(ref: string): GitRef | undefined {
  if (ref === '') return { kind: 'none' };
  if (ref.startsWith('refs/heads/') && ref.length > 11)
    return { kind: 'branch', name: ref.slice(11) };
  if (ref.startsWith('refs/tags/') && ref.length > 10) return { kind: 'tag', name: ref.slice(10) };
  const pull = PULL_REF.exec(ref);
  if (pull !== null) return { kind: 'pull-request', number: Number(pull[1]) };
  return undefined;
}
