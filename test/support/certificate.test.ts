import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { clientCertificate, selfSignedCertificate } from './certificate';

let dir: string;

beforeAll(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'ship-certificate-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const x509 = (file: string): X509Certificate => new X509Certificate(readFileSync(file));

describe('clientCertificate', () => {
  test('Given a CA, when a client certificate is issued, then it chains to that CA only, names the CN, is for client auth and is no CA itself', () => {
    const caFiles = selfSignedCertificate(dir, { commonName: 'kube-ca' });
    const ca = x509(caFiles.certPath);
    const other = x509(
      selfSignedCertificate(dir, {
        commonName: 'other-ca',
        keyFile: 'other-key.pem',
        certFile: 'other-cert.pem',
      }).certPath,
    );
    const issued = clientCertificate(dir, { ca: caFiles, commonName: 'alice' });
    const cert = x509(issued.certPath);

    expect(cert.subject).toBe('CN=alice');
    expect(cert.checkIssued(ca)).toBe(true);
    expect(cert.verify(ca.publicKey)).toBe(true);
    expect(cert.verify(other.publicKey)).toBe(false);
    expect(cert.keyUsage).toEqual(['1.3.6.1.5.5.7.3.2']);
    expect(cert.ca).toBe(false);
    expect(readFileSync(issued.keyPath, 'utf8')).toMatch(/-----BEGIN PRIVATE KEY-----/);
  });

  test('Given two certificates from one CA, then their serial numbers differ', () => {
    const ca = selfSignedCertificate(dir, {
      commonName: 'serial-ca',
      keyFile: 'serial-ca-key.pem',
      certFile: 'serial-ca-cert.pem',
    });
    const serials = ['bob', 'carol'].map(
      (commonName) => x509(clientCertificate(dir, { ca, commonName }).certPath).serialNumber,
    );
    expect(serials[0]).not.toBe(serials[1]);
  });
});
