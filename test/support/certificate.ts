import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import * as path from 'node:path';

/** Where a certificate and its key were written (PEM). */
export interface CertificateFiles {
  readonly keyPath: string;
  readonly certPath: string;
}

/** A certificate that is its own issuer: a CA for the certificates it signs. */
export type SelfSignedCertificate = CertificateFiles;

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
  openssl(options.commonName, [
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
  ]);
  return { keyPath, certPath };
}

/**
 * A client certificate (RSA 2048, one day, extendedKeyUsage clientAuth) for `commonName`, signed
 * by `ca` (e.g. one made by {@link selfSignedCertificate}) with the real openssl: what a
 * kubeconfig's client-certificate holds. Written as `<dir>/<keyFile>` and `<dir>/<certFile>`.
 */
export function clientCertificate(
  dir: string,
  options: { ca: SelfSignedCertificate; commonName: string; keyFile?: string; certFile?: string },
): CertificateFiles {
  const base = options.certFile ?? `${options.commonName}-cert.pem`;
  const keyPath = path.join(dir, options.keyFile ?? `${options.commonName}-key.pem`);
  const certPath = path.join(dir, base);
  const csrPath = path.join(dir, `${base}.csr`);
  const extPath = path.join(dir, `${base}.ext`);
  writeFileSync(extPath, 'basicConstraints=critical,CA:FALSE\nextendedKeyUsage=clientAuth\n');
  openssl(options.commonName, [
    'req',
    '-new',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-keyout',
    keyPath,
    '-out',
    csrPath,
    '-subj',
    `/CN=${options.commonName}`,
  ]);
  openssl(options.commonName, [
    'x509',
    '-req',
    '-in',
    csrPath,
    '-CA',
    options.ca.certPath,
    '-CAkey',
    options.ca.keyPath,
    // A random serial: two certificates of one CA must not share one.
    '-set_serial',
    `0x${randomBytes(16).toString('hex')}`,
    '-days',
    '1',
    '-extfile',
    extPath,
    '-out',
    certPath,
  ]);
  return { keyPath, certPath };
}

function openssl(commonName: string, args: string[]): void {
  const made = spawnSync('openssl', args, { encoding: 'utf8' });
  if (made.error !== undefined || made.status !== 0) {
    throw new Error(
      `openssl could not make a certificate for ${commonName} (apt-get install -y openssl; npm test does, through scripts/ensure-test-tools.sh): ` +
        (made.error?.message ?? made.stderr),
    );
  }
}
