import { createServer } from 'node:http';
import { AddressInfo } from 'node:net';

// An endpoint that answers every AWS call with one error, in the shape of the service's protocol
// (JSON: `__type` and `x-amzn-errortype`; query, as SNS: an XML ErrorResponse), for error kinds
// moto cannot be made to return (AccessDenied without IAM, throttling). The SDK parses it as it
// would AWS's.

export interface AwsErrorServer {
  readonly url: string;
  /** How many requests arrived. */
  readonly count: () => number;
  stop(): Promise<void>;
}

export async function startAwsErrorServer(error: {
  status: number;
  type: string;
  message: string;
  /** @default 'json' */
  protocol?: 'json' | 'query';
}): Promise<AwsErrorServer> {
  let count = 0;
  const server = createServer((req, res) => {
    count += 1;
    req.resume();
    req.on('end', () => {
      if (error.protocol === 'query') {
        res.writeHead(error.status, { 'content-type': 'text/xml' });
        res.end(
          `<ErrorResponse xmlns="http://sns.amazonaws.com/doc/2010-03-31/"><Error><Type>Sender</Type>` +
            `<Code>${error.type}</Code><Message>${error.message}</Message></Error>` +
            '<RequestId>8f1c6e4e-0000-4000-8000-000000000000</RequestId></ErrorResponse>',
        );
        return;
      }
      res.writeHead(error.status, {
        'content-type': 'application/x-amz-json-1.1',
        'x-amzn-errortype': error.type,
      });
      res.end(JSON.stringify({ __type: error.type, message: error.message }));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    count: () => count,
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
