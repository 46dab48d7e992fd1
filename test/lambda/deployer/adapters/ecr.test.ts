import { ECRClient } from '@aws-sdk/client-ecr';
import { createImageVerifier, newEcrClient } from '../../../../lambda/deployer/adapters/ecr';
import { PermanentError, TransientError } from '../../../../core/types';
import { putEcrImage, startMoto, useEnv, type RunningMoto } from '../../../support/moto';
import { startAwsErrorServer } from './aws-error-server';

// The verifier against moto_server's ECR, found through AWS_ENDPOINT_URL as in production.

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

/** A verifier on the production client, counting the SDK calls it makes. */
function verifier() {
  const calls: string[] = [];
  const images = createImageVerifier(() => {
    const client = newEcrClient(moto.region);
    client.middlewareStack.add(
      (next, context) => (args) => {
        calls.push(context.commandName ?? '?');
        return next(args);
      },
      { step: 'initialize' },
    );
    return client;
  });
  return { images, calls };
}

describe('createImageVerifier (moto ECR)', () => {
  test('Given an image under two tags, when both are asked, then both give the digest moto reports, in one DescribeImages', async () => {
    const pushed = await putEcrImage(moto, {
      repository: 'dockercoins/hasher',
      tags: ['6e0de7938dda', 'v1.2.0'],
    });
    expect(pushed.digest).toMatch(/^sha256:[0-9a-f]{64}$/);
    const { images, calls } = verifier();
    const digests = await images.digestsOf(
      { registryId: pushed.registryId, repository: 'dockercoins/hasher' },
      ['v1.2.0', '6e0de7938dda'],
    );
    expect(digests).toEqual([pushed.digest, pushed.digest]);
    expect(calls).toEqual(['DescribeImagesCommand']);
  });

  test('Given tags on different images, then each tag gives its own digest, in the order asked', async () => {
    const one = await putEcrImage(moto, { repository: 'dockercoins/rng', tags: ['aaaaaaaaaaaa'] });
    const two = await putEcrImage(moto, { repository: 'dockercoins/rng', tags: ['bbbbbbbbbbbb'] });
    expect(one.digest).not.toBe(two.digest);
    const { images } = verifier();
    expect(
      await images.digestsOf({ registryId: one.registryId, repository: 'dockercoins/rng' }, [
        'bbbbbbbbbbbb',
        'aaaaaaaaaaaa',
      ]),
    ).toEqual([two.digest, one.digest]);
  });

  test('Given one tag that exists and one that does not, then the missing one is undefined (ECR fails the whole call; each tag is then asked alone)', async () => {
    const pushed = await putEcrImage(moto, {
      repository: 'dockercoins/webui',
      tags: ['cccccccccccc'],
    });
    const { images, calls } = verifier();
    expect(
      await images.digestsOf({ registryId: pushed.registryId, repository: 'dockercoins/webui' }, [
        'cccccccccccc',
        'dddddddddddd',
      ]),
    ).toEqual([pushed.digest, undefined]);
    expect(calls).toHaveLength(3);
  });

  test('Given a single missing tag, then [undefined] after one call', async () => {
    const pushed = await putEcrImage(moto, {
      repository: 'dockercoins/worker',
      tags: ['eeeeeeeeeeee'],
    });
    const { images, calls } = verifier();
    expect(
      await images.digestsOf({ registryId: pushed.registryId, repository: 'dockercoins/worker' }, [
        'ffffffffffff',
      ]),
    ).toEqual([undefined]);
    expect(calls).toHaveLength(1);
  });

  test('Given a repository that does not exist, or another registry, then every tag is undefined', async () => {
    const pushed = await putEcrImage(moto, {
      repository: 'dockercoins/present',
      tags: ['abcabcabcabc'],
    });
    const { images } = verifier();
    expect(
      await images.digestsOf({ registryId: pushed.registryId, repository: 'dockercoins/absent' }, [
        'a',
        'b',
      ]),
    ).toEqual([undefined, undefined]);
    expect(
      await images.digestsOf({ registryId: '210987654321', repository: 'dockercoins/present' }, [
        'abcabcabcabc',
      ]),
    ).toEqual([undefined]);
  });

  test('Given no tags, then no call and no digests', async () => {
    const { images, calls } = verifier();
    expect(await images.digestsOf({ registryId: '123456789012', repository: 'x' }, [])).toEqual([]);
    expect(calls).toEqual([]);
  });
});

describe('createImageVerifier errors', () => {
  const image = { registryId: '123456789012', repository: 'dockercoins/hasher' };
  const clientFor = (endpoint: string) => () =>
    new ECRClient({ endpoint, region: 'eu-west-1', maxAttempts: 1 });

  test.each([
    [
      { status: 400, type: 'ThrottlingException', message: 'Rate exceeded' },
      TransientError,
      /ThrottlingException.*Rate exceeded/,
    ],
    [
      { status: 500, type: 'ServerException', message: 'internal' },
      TransientError,
      /ServerException/,
    ],
    [
      {
        status: 400,
        type: 'AccessDeniedException',
        message: 'not authorized to perform: ecr:DescribeImages',
      },
      PermanentError,
      /not authorized.*needs ecr:DescribeImages on arn:aws:ecr:<region>:123456789012:repository\/dockercoins\/hasher/,
    ],
  ])('Given ECR answering %j, then the matching error kind', async (answer, kind, message) => {
    const server = await startAwsErrorServer(answer);
    try {
      const error = await createImageVerifier(clientFor(server.url))
        .digestsOf(image, ['a'])
        .catch((e: unknown) => e as Error);
      expect(error).toBeInstanceOf(kind);
      expect((error as Error).message).toMatch(message);
      if (error instanceof PermanentError) expect(error.reason).toBe('forbidden');
      expect(server.count()).toBe(1);
    } finally {
      await server.stop();
    }
  });

  test('Given nothing listening, then TransientError (connection refused)', async () => {
    const error = await createImageVerifier(clientFor('http://127.0.0.1:9'))
      .digestsOf(image, ['a'])
      .catch((e: unknown) => e as Error);
    expect(error).toBeInstanceOf(TransientError);
    expect((error as Error).message).toMatch(/ECONNREFUSED/);
  });
});
