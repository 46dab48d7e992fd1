import { defaultProvider } from '../../lambda/env-credentials';

// What replaces the SDK's default credential chain in the functions' bundles: the credentials the
// Lambda runtime puts in the environment, and nothing else.

test('Given the variables Lambda sets, then its credentials, session token included', async () => {
  const saved = { ...process.env };
  try {
    process.env.AWS_ACCESS_KEY_ID = 'ASIAEXAMPLE';
    process.env.AWS_SECRET_ACCESS_KEY = 'secret';
    process.env.AWS_SESSION_TOKEN = 'session';
    await expect(defaultProvider()()).resolves.toMatchObject({
      accessKeyId: 'ASIAEXAMPLE',
      secretAccessKey: 'secret',
      sessionToken: 'session',
    });
  } finally {
    process.env = saved;
  }
});

test('Given no credentials in the environment, then a clear failure, not a search elsewhere', async () => {
  const saved = { ...process.env };
  try {
    delete process.env.AWS_ACCESS_KEY_ID;
    delete process.env.AWS_SECRET_ACCESS_KEY;
    delete process.env.AWS_SESSION_TOKEN;
    await expect(defaultProvider()()).rejects.toThrow(/environment/i);
  } finally {
    process.env = saved;
  }
});
