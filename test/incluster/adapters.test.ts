import { cachingLabels, type RegistryReader } from '../../incluster/adapters';

/** A reader that counts label reads and can be told to fail (a unit test of one function). */
function countingReader(): RegistryReader & { reads: string[]; failNext: boolean } {
  const reader = {
    reads: [] as string[],
    failNext: false,
    labels: (repository: string, digest: string): Promise<Record<string, string>> => {
      reader.reads.push(`${repository}@${digest}`);
      if (reader.failNext) {
        reader.failNext = false;
        return Promise.reject(new Error('registry down'));
      }
      return Promise.resolve({ 'io.dockercoins.ship.service': repository, digest });
    },
    tags: () => Promise.resolve([]),
    digest: () => Promise.resolve(undefined),
    digestsOf: () => Promise.resolve([]),
  };
  return reader;
}

const DIGEST_A = `sha256:${'a'.repeat(64)}`;
const DIGEST_B = `sha256:${'b'.repeat(64)}`;

describe('cachingLabels', () => {
  test('Given one image read twice, then the registry is asked once and both answers are equal', async () => {
    const inner = countingReader();
    const reader = cachingLabels(inner);

    const first = await reader.labels('hasher', DIGEST_A);
    const second = await reader.labels('hasher', DIGEST_A);

    expect(second).toEqual(first);
    expect(inner.reads).toEqual([`hasher@${DIGEST_A}`]);
  });

  test('Given another digest or another repository, then each is read', async () => {
    const inner = countingReader();
    const reader = cachingLabels(inner);

    await reader.labels('hasher', DIGEST_A);
    await reader.labels('hasher', DIGEST_B);
    await reader.labels('rng', DIGEST_A);

    expect(inner.reads).toEqual([`hasher@${DIGEST_A}`, `hasher@${DIGEST_B}`, `rng@${DIGEST_A}`]);
  });

  test('Given a failed read, then nothing is kept and the next read asks again', async () => {
    const inner = countingReader();
    const reader = cachingLabels(inner);
    inner.failNext = true;

    await expect(reader.labels('hasher', DIGEST_A)).rejects.toThrow('registry down');
    await reader.labels('hasher', DIGEST_A);

    expect(inner.reads).toHaveLength(2);
  });

  test('Given more images than entries, then the oldest is read again and the newest is not', async () => {
    const inner = countingReader();
    const reader = cachingLabels(inner, 1);

    await reader.labels('hasher', DIGEST_A);
    await reader.labels('hasher', DIGEST_B);
    await reader.labels('hasher', DIGEST_B);
    await reader.labels('hasher', DIGEST_A);

    expect(inner.reads).toEqual([`hasher@${DIGEST_A}`, `hasher@${DIGEST_B}`, `hasher@${DIGEST_A}`]);
  });

  test('Given a caller that changes the answer, then the cached labels stay as read', async () => {
    const inner = countingReader();
    const reader = cachingLabels(inner);

    const first = await reader.labels('hasher', DIGEST_A);
    first['io.dockercoins.ship.service'] = 'changed';

    expect((await reader.labels('hasher', DIGEST_A))['io.dockercoins.ship.service']).toBe('hasher');
  });

  test('Given the other reads, then they pass through uncached', async () => {
    const inner = countingReader();
    const tags = jest.spyOn(inner, 'tags');
    const reader = cachingLabels(inner);

    await reader.tags('hasher');
    await reader.tags('hasher');

    expect(tags).toHaveBeenCalledTimes(2);
  });
});
