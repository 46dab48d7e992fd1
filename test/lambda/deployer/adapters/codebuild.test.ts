import { CodeBuildClient } from '@aws-sdk/client-codebuild';
import {
  createBuildLookup,
  newCodeBuildClient,
} from '../../../../lambda/deployer/adapters/codebuild';
import { PermanentError, TransientError } from '../../../../core/types';
import {
  createCodeBuildProject,
  getCodeBuild,
  startCodeBuild,
  startMoto,
  useEnv,
  type RunningMoto,
} from '../../../support/moto';
import { startAwsErrorServer } from './aws-error-server';

// The BatchGetBuilds fallback against moto_server's CodeBuild, found through AWS_ENDPOINT_URL.

let moto: RunningMoto;
let restoreEnv: () => void;

beforeAll(async () => {
  moto = await startMoto();
  restoreEnv = useEnv(moto.env);
});

afterAll(async () => {
  restoreEnv();
  await moto.stop();
});

describe('createBuildLookup (moto CodeBuild)', () => {
  test("Given a build moto ran, when looked up by <project>:<uuid>, then CodeBuild's record: project, status, number, and no exported variables", async () => {
    await createCodeBuildProject(moto, 'DockerCoins-hasher');
    const build = await startCodeBuild(moto, 'DockerCoins-hasher', 'refs/heads/main');
    expect(build.id).toMatch(/^DockerCoins-hasher:[0-9a-f-]{36}$/);
    const recorded = await getCodeBuild(moto, build.id);
    // moto records no exported variables for its builds.
    expect(recorded?.exportedEnvironmentVariables).toBeUndefined();
    const lookup = createBuildLookup(() => newCodeBuildClient(moto.region));
    expect(await lookup.describeBuild(build.id)).toEqual({
      id: build.id,
      arn: build.arn,
      project: 'DockerCoins-hasher',
      status: recorded?.buildStatus,
      buildNumber: recorded?.buildNumber,
      exportedVariables: undefined,
    });
  });

  test('Given a build id CodeBuild does not know, then undefined', async () => {
    await createCodeBuildProject(moto, 'DockerCoins-rng');
    const lookup = createBuildLookup(() => newCodeBuildClient(moto.region));
    expect(
      await lookup.describeBuild('DockerCoins-rng:00000000-0000-4000-8000-000000000000'),
    ).toBeUndefined();
  });

  test('Given an id that is not <project>:<uuid>, then the error names the call and the id', async () => {
    const lookup = createBuildLookup(() => newCodeBuildClient(moto.region));
    await expect(lookup.describeBuild('no-colon')).rejects.toThrow(
      /CodeBuild BatchGetBuilds of no-colon failed: InvalidInputException/,
    );
  });
});

describe('createBuildLookup: exported variables from an answer that has them', () => {
  // moto's builds carry none, so this answer is served as CodeBuild's JSON would be.
  test('Given exportedEnvironmentVariables, then a record of name → value; a variable listed without a value was exported empty', async () => {
    const { createServer } = await import('node:http');
    const server = createServer((req, res) => {
      req.resume();
      req.on('end', () => {
        res.writeHead(200, { 'content-type': 'application/x-amz-json-1.1' });
        res.end(
          JSON.stringify({
            builds: [
              {
                id: 'DockerCoins-hasher:1b2c',
                arn: 'arn:aws:codebuild:eu-west-1:123456789012:build/DockerCoins-hasher:1b2c',
                exportedEnvironmentVariables: [
                  { name: 'IMAGE_TAG', value: '6e0de7938dda' },
                  { name: 'GIT_REF', value: 'refs/heads/main' },
                  { name: 'EMPTY' },
                ],
              },
            ],
            buildsNotFound: [],
          }),
        );
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as { port: number };
    try {
      const lookup = createBuildLookup(
        () =>
          new CodeBuildClient({
            endpoint: `http://127.0.0.1:${port}`,
            region: 'eu-west-1',
            maxAttempts: 1,
          }),
      );
      const variables = { IMAGE_TAG: '6e0de7938dda', GIT_REF: 'refs/heads/main', EMPTY: '' };
      expect((await lookup.describeBuild('DockerCoins-hasher:1b2c'))?.exportedVariables).toEqual(
        variables,
      );
      expect(
        (
          await lookup.describeBuild(
            'arn:aws:codebuild:eu-west-1:123456789012:build/DockerCoins-hasher:1b2c',
          )
        )?.exportedVariables,
      ).toEqual(variables);
    } finally {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
  });

  test.each([
    [{ status: 400, type: 'ThrottlingException', message: 'Rate exceeded' }, TransientError],
    [{ status: 400, type: 'AccessDeniedException', message: 'not authorized' }, PermanentError],
  ])('Given CodeBuild answering %j, then the matching error kind', async (answer, kind) => {
    const server = await startAwsErrorServer(answer);
    try {
      const lookup = createBuildLookup(
        () => new CodeBuildClient({ endpoint: server.url, region: 'eu-west-1', maxAttempts: 1 }),
      );
      await expect(lookup.describeBuild('DockerCoins-hasher:1b2c')).rejects.toBeInstanceOf(kind);
    } finally {
      await server.stop();
    }
  });
});
