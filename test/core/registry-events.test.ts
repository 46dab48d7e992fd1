import {
  InvalidEnvelopeError,
  decideEvent,
  parseEnvelope,
  serviceOfRepository,
  type EventFilter,
  type RegistryEvent,
} from '../../core/registry-events';

const DIGEST = `sha256:${'b'.repeat(64)}`;
const OCI = 'application/vnd.oci.image.manifest.v1+json';
const FILTER: EventFilter = {
  repositoryPrefix: '',
  services: ['hasher', 'rng'],
  releaseTagPattern: 'v*',
};

/** An event as registry 2.8 sends it for `PUT /v2/hasher/manifests/<tag>`. */
function push(target: Record<string, unknown> = {}, action = 'push'): Record<string, unknown> {
  return {
    id: 'e1',
    timestamp: '2026-12-06T16:00:00Z',
    action,
    target: {
      mediaType: OCI,
      size: 528,
      digest: DIGEST,
      length: 528,
      repository: 'hasher',
      url: `http://registry/v2/hasher/manifests/${DIGEST}`,
      tag: '6e0de7938dda',
      ...target,
    },
    request: { id: 'r1', addr: '10.0.0.1', host: 'registry', method: 'PUT', useragent: 'buildah' },
    actor: { name: 'ci' },
    source: { addr: 'registry:5000', instanceID: 'i1' },
  };
}

describe('parseEnvelope', () => {
  test('reads every event of the envelope, with the fields the deployer uses', () => {
    const events = parseEnvelope({ events: [push(), push({ tag: undefined }, 'pull')] });
    expect(events).toEqual([
      {
        id: 'e1',
        timestamp: '2026-12-06T16:00:00Z',
        action: 'push',
        target: { mediaType: OCI, digest: DIGEST, repository: 'hasher', tag: '6e0de7938dda' },
        actor: 'ci',
      },
      {
        id: 'e1',
        timestamp: '2026-12-06T16:00:00Z',
        action: 'pull',
        target: { mediaType: OCI, digest: DIGEST, repository: 'hasher', tag: undefined },
        actor: 'ci',
      },
    ]);
  });

  test.each<[string, unknown, string, RegExp]>([
    ['not an object', [], '(body)', /not a notification envelope/],
    ['no events', {}, 'events', /"events" is missing/],
    ['events not a list', { events: {} }, 'events', /expected an array/],
    ['an event not an object', { events: [1] }, 'events[0]', /events\[0\] is number 1/],
    ['no id', { events: [{ ...push(), id: undefined }] }, 'events[0].id', /is missing/],
    [
      'an action not a string',
      { events: [{ ...push(), action: 7 }] },
      'events[0].action',
      /number 7/,
    ],
    ['no target', { events: [{ ...push(), target: undefined }] }, 'events[0].target', /missing/],
    [
      'a digest not sha256',
      { events: [push({ digest: 'md5:x' })] },
      'events[0].target.digest',
      /sha256:<64 hex>/,
    ],
    ['a tag not a string', { events: [push({ tag: 3 })] }, 'events[0].target.tag', /number 3/],
    ['too many events', { events: Array(1001).fill(push()) }, 'events', /1001 entries/],
  ])('refuses %s, naming the field', (_name, body, field, message) => {
    let error: unknown;
    try {
      parseEnvelope(body);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(InvalidEnvelopeError);
    expect((error as InvalidEnvelopeError).field).toBe(field);
    expect((error as InvalidEnvelopeError).message).toMatch(message);
  });
});

describe('decideEvent', () => {
  const decide = (event: Record<string, unknown>, filter = FILTER) =>
    decideEvent(parseEnvelope({ events: [event] })[0] as RegistryEvent, filter);

  test.each<[string, Record<string, unknown>, string]>([
    ['a pull', push({}, 'pull'), 'not-a-push'],
    ['a mount', push({ fromRepository: 'rng' }, 'mount'), 'not-a-push'],
    [
      'a delete',
      { id: 'd', action: 'delete', target: { digest: DIGEST, repository: 'hasher' } },
      'not-a-push',
    ],
    [
      'a blob push',
      push({ mediaType: 'application/octet-stream', tag: undefined }),
      'not-a-manifest',
    ],
    ['a manifest pushed by digest', push({ tag: undefined }), 'no-tag'],
    ['another repository', push({ repository: 'tools/hasher' }), 'repository-not-ours'],
    ['a service not configured', push({ repository: 'webui' }), 'repository-not-ours'],
    ['latest', push({ tag: 'latest' }), 'tag-not-ours'],
    ['a tag of no kind of ours', push({ tag: 'stable' }), 'tag-not-ours'],
    ['a branch tag', push({ tag: 'main-6e0de79-42' }), 'tag-not-deployed'],
    ['a pull-request tag', push({ tag: 'pr-12-6e0de79' }), 'tag-not-deployed'],
  ])('ignores %s (%s)', (_name, event, reason) => {
    const decision = decide(event);
    expect(decision).toMatchObject({ kind: 'ignore', reason });
    expect(decision.kind === 'ignore' && decision.detail).toMatch(/: /);
  });

  test.each<[string, Record<string, unknown>, EventFilter, string]>([
    ['a commit tag', push(), FILTER, 'hasher'],
    ['a release tag', push({ tag: 'v1.2.0' }), FILTER, 'hasher'],
    [
      'an OCI index under a prefix',
      push({ repository: 'dockercoins/rng', mediaType: 'application/vnd.oci.image.index.v1+json' }),
      { ...FILTER, repositoryPrefix: 'dockercoins' },
      'rng',
    ],
    [
      'a Docker schema 2 manifest',
      push({ mediaType: 'application/vnd.docker.distribution.manifest.v2+json' }),
      FILTER,
      'hasher',
    ],
  ])('acts on %s', (_name, event, filter, service) => {
    expect(decide(event, filter)).toMatchObject({ kind: 'push', service, digest: DIGEST });
  });
});

test.each<[string, string, string | undefined]>([
  ['hasher', '', 'hasher'],
  ['dockercoins/hasher', 'dockercoins', 'hasher'],
  ['hasher', 'dockercoins', undefined],
  ['dockercoins/hasher/x', 'dockercoins', undefined],
  ['other/hasher', 'dockercoins', undefined],
])('serviceOfRepository(%s, prefix "%s") = %s', (repository, prefix, service) => {
  expect(serviceOfRepository(repository, { repositoryPrefix: prefix, services: ['hasher'] })).toBe(
    service,
  );
});
