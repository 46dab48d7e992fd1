import { Template } from 'aws-cdk-lib/assertions';
import { resolveConfig } from '../../lib/config';
import { outputIdPart, RegistryStack } from '../../lib/stacks/registry-stack';
import { expectedEcrUri, newApp } from '../support/app';

function registryStack(context: Record<string, unknown> = {}): RegistryStack {
  const { config } = resolveConfig({ sourceOwner: 'acme', ...context });
  return new RegistryStack(newApp(), 'Registry', {
    services: config.services,
    registry: config.registry,
  });
}

/**
 * The stack's own guards, past the configuration (which refuses these first, as one line): a
 * stack built from services the configuration never saw.
 */
function registryStackOf(names: readonly string[]): RegistryStack {
  const { config } = resolveConfig({ sourceOwner: 'acme' });
  return new RegistryStack(newApp(), 'Registry', {
    services: names.map((name) => ({
      name,
      buildContext: name,
      deployment: name,
      container: name,
    })),
    registry: config.registry,
  });
}

describe('RegistryStack', () => {
  test('outputs: $REGISTRY, the redis image and one repository URI per service', () => {
    const template = Template.fromStack(registryStack());

    expect(Object.keys(template.toJSON().Outputs as object).sort()).toEqual([
      'RedisImage',
      'RegistryUri',
      'RepositoryUriHasher',
      'RepositoryUriRng',
      'RepositoryUriWebui',
      'RepositoryUriWorker',
    ]);
    template.hasOutput('RegistryUri', {
      Value: expectedEcrUri('/dockercoins'),
    });
    template.hasOutput('RedisImage', {
      Value: expectedEcrUri('/dockercoins-ecr-public/docker/library/redis:7.4'),
    });
  });

  test("each repository URI output points at that service's repository", () => {
    const stack = registryStack();
    const template = Template.fromStack(stack);
    const repository = stack.imageRegistry.repositoryFor('webui');

    template.hasOutput('RepositoryUriWebui', {
      Value: stack.resolve(repository.repositoryUri) as object,
    });
  });

  test('logical ids of stateful resources are pinned: a change would replace repositories', () => {
    const template = Template.fromStack(registryStack({ encryption: 'KMS' })).toJSON() as {
      Resources: Record<string, { Type: string }>;
    };
    const stateful = Object.entries(template.Resources)
      .filter(([, r]) => ['AWS::ECR::Repository', 'AWS::KMS::Key'].includes(r.Type))
      .map(([id]) => id)
      .sort();

    expect(stateful).toEqual([
      'RegistryKey1053ED4C',
      'Registryhasher2A0CAA02',
      'RegistryrngA4BEDBD0',
      'RegistrywebuiC845503E',
      'Registryworker47CED680',
    ]);
  });

  test('a service added later does not move the existing repositories', () => {
    const before = Template.fromStack(registryStack()).findResources('AWS::ECR::Repository');
    const after = Template.fromStack(
      registryStack({ services: 'hasher,rng,webui,worker,miner' }),
    ).findResources('AWS::ECR::Repository');

    for (const id of Object.keys(before)) expect(after).toHaveProperty([id]);
    expect(Object.keys(after)).toHaveLength(5);
  });

  test('198 services fit; 199 would exceed 200 outputs and fail with the limit named', () => {
    const names = (n: number): string[] =>
      Array.from({ length: n }, (_, i) => `svc-${String(i).padStart(3, '0')}`);

    expect(() => registryStackOf(names(198))).not.toThrow();
    expect(() => registryStackOf(names(199))).toThrow(
      /199 services need 201 outputs .* limit of 200 per stack/,
    );
  });

  test('two services whose output ids collide are refused by name', () => {
    expect(() => registryStackOf(['a-1', 'a1'])).toThrow(
      /Services "a-1" and "a1" would share the stack output RepositoryUriA1/,
    );
  });

  test.each([
    ['worker', 'Worker'],
    ['hash-er', 'HashEr'],
    ['a-b-c', 'ABC'],
    ['svc-007', 'Svc007'],
  ])('output id part of %s is %s', (service, expected) => {
    expect(outputIdPart(service)).toBe(expected);
  });
});
