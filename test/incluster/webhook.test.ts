import { createServer, type Server } from 'node:http';
import { createWebhookSender } from '../../incluster/adapters';

/** A real HTTP receiver on 127.0.0.1 that answers `status` and keeps what it got. */
let server: Server;
let url: string;
let status = 204;
const received: { contentType: string | undefined; body: unknown }[] = [];

beforeAll(async () => {
  server = createServer((req, res) => {
    let body = '';
    req.on('data', (chunk: Buffer) => (body += chunk.toString()));
    req.on('end', () => {
      received.push({ contentType: req.headers['content-type'], body: JSON.parse(body) });
      res.writeHead(status).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const address = server.address();
  url = `http://127.0.0.1:${typeof address === 'object' && address !== null ? address.port : 0}/hook`;
});

afterAll(() => new Promise((resolve) => server.close(resolve)));

beforeEach(() => {
  received.length = 0;
  status = 204;
});

const REPORT = {
  subject: 'DockerCoins deploy: hasher 6e0de7938dda to staging: verified Ready',
  message: 'hasher 6e0de7938dda: 1 deployed, 0 skipped, 0 failed.\n',
  fields: { service: 'hasher', verifications: ['verified'] },
};

test.each<[string, 'json' | 'slack', unknown]>([
  [
    'json: the subject, the message and the fields',
    'json',
    { subject: REPORT.subject, message: REPORT.message, ...REPORT.fields },
  ],
  [
    'slack: one text, the subject in bold then the message',
    'slack',
    { text: `*${REPORT.subject}*\n${REPORT.message}` },
  ],
])('%s', async (_name, format, body) => {
  expect(await createWebhookSender(url, format)(REPORT)).toBeUndefined();
  expect(received).toEqual([{ contentType: 'application/json', body }]);
});

test('an error answer is returned, not thrown', async () => {
  status = 500;
  expect(await createWebhookSender(url, 'json')(REPORT)).toBe(
    'the webhook answered 500 Internal Server Error',
  );
});

test('an unreachable webhook is returned, not thrown', async () => {
  const closed = createServer();
  await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', () => resolve()));
  const address = closed.address();
  await new Promise((resolve) => closed.close(resolve));
  const port = typeof address === 'object' && address !== null ? address.port : 0;
  expect(await createWebhookSender(`http://127.0.0.1:${port}/`, 'slack')(REPORT)).toMatch(
    /^the webhook could not be reached: /,
  );
});
