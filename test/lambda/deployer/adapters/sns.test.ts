import { SNSClient } from '@aws-sdk/client-sns';
import {
  createNotifier,
  newSnsClient,
  snsMessage,
  snsSubject,
} from '../../../../lambda/deployer/adapters/sns';
import { PermanentError, TransientError } from '../../../../core/types';
import { createTopicWithQueue, startMoto, useEnv, type RunningMoto } from '../../../support/moto';
import { startAwsErrorServer } from './aws-error-server';

// The notifier against moto_server's SNS, read back through a subscribed SQS queue.

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

describe('createNotifier (moto SNS → SQS)', () => {
  test('Given a topic with a queue subscribed, when an outcome is published, then the queue receives subject and message as sent', async () => {
    const topic = await createTopicWithQueue(moto, 'deploys');
    const notifier = createNotifier({
      client: () => newSnsClient(moto.region),
      topicArn: topic.topicArn,
    });
    const message = 'hasher → main: deployed 6e0de7938dda (build #42)\nfrom 1a2b3c4d5e6f';
    await notifier.publish('DockerCoins deploy: hasher deployed to main', message);
    expect(await topic.receive()).toEqual([
      {
        subject: 'DockerCoins deploy: hasher deployed to main',
        message,
        topicArn: topic.topicArn,
      },
    ]);
  });

  test('Given a subject SNS would refuse (long, line breaks, not ASCII), then it is published made acceptable', async () => {
    const topic = await createTopicWithQueue(moto, 'deploys-long');
    const notifier = createNotifier({
      client: () => newSnsClient(moto.region),
      topicArn: topic.topicArn,
    });
    await notifier.publish(`Déploiement\nde ${'x'.repeat(200)}`, 'body');
    const [received] = await topic.receive();
    expect(received?.subject).toBe(snsSubject(`Déploiement\nde ${'x'.repeat(200)}`));
    expect(received?.subject).toHaveLength(100);
    expect(received?.subject).toMatch(/^Deploiement de x+\.\.\.$/);
  });

  test('Given a topic that does not exist, then the error names the topic', async () => {
    const notifier = createNotifier({
      client: () => newSnsClient(moto.region),
      topicArn: 'arn:aws:sns:eu-west-1:123456789012:absent',
    });
    await expect(notifier.publish('s', 'm')).rejects.toThrow(
      /SNS Publish to arn:aws:sns:eu-west-1:123456789012:absent failed: NotFound/,
    );
  });
});

describe('createNotifier errors', () => {
  test.each([
    [
      { status: 400, type: 'Throttling', message: 'Rate exceeded', protocol: 'query' as const },
      TransientError,
    ],
    [
      { status: 500, type: 'InternalError', message: 'internal', protocol: 'query' as const },
      TransientError,
    ],
    [
      {
        status: 403,
        type: 'AuthorizationError',
        message: 'not authorized to perform: SNS:Publish',
        protocol: 'query' as const,
      },
      PermanentError,
    ],
  ])('Given SNS answering %j, then the matching error kind', async (answer, kind) => {
    const server = await startAwsErrorServer(answer);
    try {
      const notifier = createNotifier({
        client: () => new SNSClient({ endpoint: server.url, region: 'eu-west-1', maxAttempts: 1 }),
        topicArn: 'arn:aws:sns:eu-west-1:123456789012:deploys',
      });
      const error = await notifier.publish('s', 'm').catch((e: unknown) => e as Error);
      expect(error).toBeInstanceOf(kind);
      expect((error as Error).message).toContain(answer.type);
    } finally {
      await server.stop();
    }
  });
});

describe('snsSubject and snsMessage', () => {
  test.each([
    ['DockerCoins deploy: ok', 'DockerCoins deploy: ok'],
    ['a\r\nb\tc', 'a b c'],
    ['naïve → café', 'naive ? cafe'],
    ['', '(no subject)'],
  ])('Given the subject %j, then %j', (subject, expected) => {
    expect(snsSubject(subject)).toBe(expected);
  });

  test('Given a message over 256 KB, then it is cut to fit and says so; a short one is kept whole', () => {
    const long = 'é'.repeat(200_000);
    const cut = snsMessage(long);
    expect(Buffer.byteLength(cut)).toBeLessThanOrEqual(262144);
    expect(cut).toMatch(/\[cut: the message was 400000 bytes/);
    expect(cut).not.toContain('\uFFFD');
    expect(snsMessage('short')).toBe('short');
  });
});
