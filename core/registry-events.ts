/**
 * The distribution registry's notifications (its `notifications.endpoints`): the envelope
 * `{"events": [...]}` validated, and each event sorted into the one kind the deployer acts on, a
 * manifest pushed under a tag in one of our repositories, or ignored with its reason. Pure.
 *
 * Facts the shape follows (distribution 2.8 `notifications/event.go`): an event has `id`,
 * `timestamp`, `action` (`push`, `pull`, `mount`, `delete`) and `target` { mediaType, digest,
 * repository, tag, … }; a manifest push by tag carries `tag`; blob uploads are `push` events of
 * `application/octet-stream`; GET and HEAD of a manifest are `pull` events. Delivery is at least
 * once while the registry runs, in no guaranteed order, and lost when it restarts.
 */
import { classifyTag } from './image-tags';

/** What registry 2.8 sends; 3.x sends `…events.v2+json` with the same envelope. */
export const REGISTRY_EVENTS_MEDIA_TYPES: readonly string[] = [
  'application/vnd.docker.distribution.events.v1+json',
  'application/vnd.docker.distribution.events.v2+json',
  'application/json',
];

/** Manifest and index media types: a push of one of these under a tag is an image pushed. */
export const MANIFEST_MEDIA_TYPES: readonly string[] = [
  'application/vnd.oci.image.manifest.v1+json',
  'application/vnd.oci.image.index.v1+json',
  'application/vnd.docker.distribution.manifest.v2+json',
  'application/vnd.docker.distribution.manifest.list.v2+json',
];

const DIGEST = /^sha256:[0-9a-f]{64}$/;
const MAX_EVENTS = 1000;

/** One event as the registry sends it, the fields we read checked. */
export interface RegistryEvent {
  readonly id: string;
  readonly timestamp: string | undefined;
  readonly action: string;
  readonly target: {
    readonly mediaType: string | undefined;
    readonly digest: string | undefined;
    readonly repository: string | undefined;
    readonly tag: string | undefined;
  };
  /** Who pushed (`actor.name`), when the registry authenticated them. */
  readonly actor: string | undefined;
}

/** The envelope is not one the registry sends: the field at fault and what was expected. */
export class InvalidEnvelopeError extends Error {
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(message);
    this.name = 'InvalidEnvelopeError';
  }
}

/** Why an event is left alone. */
export type IgnoreReason =
  /** pull, mount, delete: nothing was pushed. */
  | 'not-a-push'
  /** A blob, or anything that is not a manifest or index. */
  | 'not-a-manifest'
  /** A manifest pushed by digest (the platform manifests of an index come so). */
  | 'no-tag'
  /** Not `<repositoryPrefix>/<service>` of a configured service. */
  | 'repository-not-ours'
  /** `latest` or any tag our builds never push. */
  | 'tag-not-ours'
  /** A branch or pull-request tag of our builds: the commit tag's own push is what deploys. */
  | 'tag-not-deployed';

/** What one event means to the deployer. */
export type EventDecision =
  | {
      readonly kind: 'push';
      readonly id: string;
      readonly service: string;
      readonly repository: string;
      readonly tag: string;
      readonly digest: string;
      readonly mediaType: string;
      readonly actor: string | undefined;
    }
  | {
      readonly kind: 'ignore';
      readonly id: string;
      readonly action: string;
      readonly repository: string | undefined;
      readonly tag: string | undefined;
      readonly digest: string | undefined;
      readonly actor: string | undefined;
      readonly reason: IgnoreReason;
      /** A sentence for the log: what the event was and why it is left alone. */
      readonly detail: string;
    };

/** Which repositories are ours and what a release tag looks like. */
export interface EventFilter {
  /** Repositories are `<prefix>/<service>`, or `<service>` when the prefix is empty. */
  readonly repositoryPrefix: string;
  readonly services: readonly string[];
  readonly releaseTagPattern: string;
}

const isObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

/**
 * The events of an envelope (JSON already parsed). Throws {@link InvalidEnvelopeError} naming
 * the field when the body is not `{"events": [ {id, action, target{…}}, … ]}`.
 */
export function parseEnvelope(body: unknown): RegistryEvent[] {
  if (!isObject(body)) {
    throw new InvalidEnvelopeError(
      '(body)',
      `the body is ${describe(body)}, not a notification envelope: expected {"events": [ … ]}, as the registry sends`,
    );
  }
  const events = body.events;
  if (!Array.isArray(events)) {
    throw new InvalidEnvelopeError(
      'events',
      `"events" is ${describe(events)}: expected an array of events, as the registry sends ({"events": [ … ]})`,
    );
  }
  if (events.length > MAX_EVENTS) {
    throw new InvalidEnvelopeError(
      'events',
      `"events" has ${events.length} entries, more than ${MAX_EVENTS}: the registry sends one batch at a time; refusing it`,
    );
  }
  return events.map((event: unknown, index) => parseEvent(event, `events[${index}]`));
}

function parseEvent(event: unknown, at: string): RegistryEvent {
  if (!isObject(event)) {
    throw new InvalidEnvelopeError(
      at,
      `${at} is ${describe(event)}: expected an event object with "id", "action" and "target"`,
    );
  }
  const text = (value: unknown, field: string, required: boolean): string | undefined => {
    if (value === undefined || (value === '' && !required)) {
      if (required) {
        throw new InvalidEnvelopeError(field, `${field} is missing: every registry event has it`);
      }
      return undefined;
    }
    if (typeof value !== 'string' || value === '') {
      throw new InvalidEnvelopeError(
        field,
        `${field} is ${describe(value)}: expected a non-empty string`,
      );
    }
    return value;
  };
  const id = text(event.id, `${at}.id`, true)!;
  const action = text(event.action, `${at}.action`, true)!;
  const target = event.target;
  if (!isObject(target)) {
    throw new InvalidEnvelopeError(
      `${at}.target`,
      `${at}.target is ${describe(target)}: expected an object with "repository" (and for a push "mediaType", "digest", "tag")`,
    );
  }
  const digest = text(target.digest, `${at}.target.digest`, false);
  if (digest !== undefined && !DIGEST.test(digest)) {
    throw new InvalidEnvelopeError(
      `${at}.target.digest`,
      `${at}.target.digest is ${JSON.stringify(digest)}: expected sha256:<64 hex>`,
    );
  }
  const actor = isObject(event.actor)
    ? text(event.actor.name, `${at}.actor.name`, false)
    : undefined;
  return {
    id,
    timestamp: text(event.timestamp, `${at}.timestamp`, false),
    action,
    target: {
      mediaType: text(target.mediaType, `${at}.target.mediaType`, false),
      digest,
      repository: text(target.repository, `${at}.target.repository`, false),
      tag: text(target.tag, `${at}.target.tag`, false),
    },
    actor,
  };
}

/** The service a repository is of, or undefined when it is not `<prefix>/<service>` of ours. */
export function serviceOfRepository(
  repository: string,
  filter: Pick<EventFilter, 'repositoryPrefix' | 'services'>,
): string | undefined {
  const prefix = filter.repositoryPrefix === '' ? '' : `${filter.repositoryPrefix}/`;
  if (!repository.startsWith(prefix)) return undefined;
  const service = repository.slice(prefix.length);
  return filter.services.includes(service) ? service : undefined;
}

/** The repository of a service: `<prefix>/<service>`, or `<service>` without a prefix. */
export function repositoryOf(service: string, repositoryPrefix: string): string {
  return repositoryPrefix === '' ? service : `${repositoryPrefix}/${service}`;
}

/** What the deployer does with one event: act on a tagged manifest push of ours, or ignore it. */
export function decideEvent(event: RegistryEvent, filter: EventFilter): EventDecision {
  const { id, action, target } = event;
  const what = `${action} ${target.repository ?? '(no repository)'}${target.tag === undefined ? '' : `:${target.tag}`}${
    target.digest === undefined ? '' : `@${target.digest}`
  }`;
  const ignore = (reason: IgnoreReason, why: string): EventDecision => ({
    kind: 'ignore',
    id,
    action,
    repository: target.repository,
    tag: target.tag,
    digest: target.digest,
    actor: event.actor,
    reason,
    detail: `${what}: ${why}`,
  });
  if (action !== 'push') return ignore('not-a-push', `a ${action} event; only pushes deploy`);
  if (target.mediaType === undefined || !MANIFEST_MEDIA_TYPES.includes(target.mediaType)) {
    return ignore(
      'not-a-manifest',
      `media type ${target.mediaType ?? '(none)'} is not an image manifest or index (a blob upload); ` +
        'the registry can leave these out with ignoredmediatypes: [application/octet-stream]',
    );
  }
  if (target.tag === undefined) {
    return ignore('no-tag', 'a manifest pushed by digest, without a tag; the tagged push deploys');
  }
  if (target.repository === undefined || target.digest === undefined) {
    return ignore('no-tag', 'a manifest push without repository or digest');
  }
  const service = serviceOfRepository(target.repository, filter);
  if (service === undefined) {
    const expected = filter.services
      .map((s) => repositoryOf(s, filter.repositoryPrefix))
      .join(', ');
    return ignore(
      'repository-not-ours',
      `repository ${target.repository} is not one the deployer deploys (${expected}); config repositoryPrefix and services`,
    );
  }
  const kind = classifyTag(target.tag, filter.releaseTagPattern);
  if (kind === 'other') {
    return ignore(
      'tag-not-ours',
      `tag "${target.tag}" is not a tag our builds push (a 12-hex commit tag, a release tag matching ` +
        `"${filter.releaseTagPattern}", a branch or pull-request tag); never "latest"`,
    );
  }
  if (kind === 'branch' || kind === 'pull-request') {
    return ignore(
      'tag-not-deployed',
      `a ${kind} tag; only commit and release tags deploy (the build's commit tag push deploys it)`,
    );
  }
  return {
    kind: 'push',
    id,
    service,
    repository: target.repository,
    tag: target.tag,
    digest: target.digest,
    mediaType: target.mediaType,
    actor: event.actor,
  };
}

function describe(value: unknown): string {
  if (value === undefined) return 'missing';
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'object') return 'an object';
  const text = JSON.stringify(value);
  return `${typeof value} ${text.length > 60 ? `${text.slice(0, 57)}...` : text}`;
}
