import { spawnSync } from 'node:child_process';
import * as path from 'node:path';

/** Where a self-signed certificate and its key were written. */
export interface SelfSignedCertificate {
  readonly keyPath: string;
  readonly certPath: string;
}

/**
 * A self-signed certificate (RSA 2048, one day) made by the real openssl, written as
 * `<dir>/<keyFile>` and `<dir>/<certFile>`. `ipAddress` adds it as the subjectAltName, which TLS
 * clients check for a server on 127.0.0.1.
 */
export function selfSignedCertificate(
  dir: string,
  options: { commonName: string; ipAddress?: string; keyFile?: string; certFile?: string },
): SelfSignedCertificate {
  const keyPath = path.join(dir, options.keyFile ?? 'key.pem');
  const certPath = path.join(dir, options.certFile ?? 'cert.pem');
  const made = spawnSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-days',
      '1',
      '-keyout',
      keyPath,
      '-out',
      certPath,
      '-subj',
      `/CN=${options.commonName}`,
      ...(options.ipAddress === undefined
        ? []
        : ['-addext', `subjectAltName=IP:${options.ipAddress}`]),
    ],
    { encoding: 'utf8' },
  );
  if (made.error !== undefined || made.status !== 0) {
    throw new Error(
      `openssl could not make a certificate for ${options.commonName} (apt-get install -y openssl; .ci/run does): ` +
        (made.error?.message ?? made.stderr),
    );
  }
  return { keyPath, certPath };
}
