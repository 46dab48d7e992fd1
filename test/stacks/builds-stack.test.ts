import { resolveConfig } from '../../lib/config';
import { createStacks } from '../../lib/app';
import { MAX_BUILT_SERVICES } from '../../lib/stacks/builds-stack';
import { newApp } from '../support/app';

describe('BuildsStack', () => {
  const services = (n: number): string =>
    Array.from({ length: n }, (_, i) => `svc-${String(i + 1).padStart(3, '0')}`).join(',');

  test('Given the most services one stack holds, When composed, Then one project each', () => {
    const { config } = resolveConfig({
      sourceOwner: 'acme',
      services: services(MAX_BUILT_SERVICES),
    });

    expect(createStacks(newApp(), config).builds.imageBuilds.projects.size).toBe(
      MAX_BUILT_SERVICES,
    );
  });

  test('Given one service more, When configured, Then it is refused naming the limit and the fix', () => {
    expect(() =>
      resolveConfig({ sourceOwner: 'acme', services: services(MAX_BUILT_SERVICES + 1) }),
    ).toThrow(
      /101 services is more than one app holds: at most 100.*1 MB template limit.*Split them/,
    );
  });

  test('Given the default services, When composed, Then each project name is an output', () => {
    const { config } = resolveConfig({ sourceOwner: 'acme' });
    const { builds } = createStacks(newApp(), config);

    const outputs = builds.node.children
      .map((c) => c.node.id)
      .filter((id) => id.startsWith('BuildProject'))
      .sort();
    expect(outputs).toEqual([
      'BuildProjectHasher',
      'BuildProjectRng',
      'BuildProjectWebui',
      'BuildProjectWorker',
    ]);
  });
});
