import { Buildah, fixtureContext } from './buildah';
import { startRegistry } from './registry';

describe('test support: the real registry and buildah', () => {
  test('an image built FROM scratch is pushed and listed; auth refuses anonymous pushes', async () => {
    const registry = await startRegistry({ users: [{ username: 'ship', password: 's3cret' }] });
    try {
      const buildah = new Buildah();
      const base = buildah.baseImage();
      buildah.bud(fixtureContext(base, 'hello'), `${registry.host}/demo/app:one`);
      expect(() => buildah.push(`${registry.host}/demo/app:one`)).toThrow(
        /unauthorized|authentication required/i,
      );
      buildah.push(`${registry.host}/demo/app:one`, undefined, 'ship:s3cret');
      const auth = `Basic ${Buffer.from('ship:s3cret').toString('base64')}`;
      const tags = (await (
        await fetch(`${registry.url}/v2/demo/app/tags/list`, { headers: { authorization: auth } })
      ).json()) as { tags: string[] };
      expect(tags.tags).toEqual(['one']);
    } finally {
      await registry.stop();
    }
  });
});
