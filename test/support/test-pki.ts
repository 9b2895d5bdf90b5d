/** A throwaway CA and certificates for mTLS tests, made with @peculiar/x509 (ECDSA P-256). */
import 'reflect-metadata'; // @peculiar/x509's DI container (tsyringe) needs it loaded first
import { randomBytes, webcrypto } from 'node:crypto';
import * as x509 from '@peculiar/x509';

x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);
const ALG = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' };
type Keys = Parameters<typeof x509.X509CertificateGenerator.createSelfSigned>[0]['keys'];

export interface IssuedCert {
  certPem: string;
  keyPem: string;
  der: Buffer;
}

export interface TestCa {
  certPem: string;
  issue(options: { commonName: string; dnsNames?: string[]; notBefore?: Date; notAfter?: Date }): Promise<IssuedCert>;
  /** An intermediate CA signed by this one (its certPem is the intermediate alone). */
  intermediate(name: string): Promise<TestCa>;
}

async function keyPair(): Promise<webcrypto.CryptoKeyPair> {
  return (await webcrypto.subtle.generateKey(ALG, true, ['sign', 'verify'])) as webcrypto.CryptoKeyPair;
}

async function pkcs8Pem(key: webcrypto.CryptoKey): Promise<string> {
  return x509.PemConverter.encode(await webcrypto.subtle.exportKey('pkcs8', key), 'PRIVATE KEY');
}

export async function createTestCa(name: string): Promise<TestCa> {
  return makeCa(name);
}

/** A root CA, or with `parent` an intermediate it signs. */
async function makeCa(name: string, parent?: { cert: x509.X509Certificate; keys: webcrypto.CryptoKeyPair }): Promise<TestCa> {
  const caKeys = await keyPair();
  const now = Date.now();
  const common = {
    serialNumber: randomBytes(8).toString('hex'),
    signingAlgorithm: ALG,
    notBefore: new Date(now - 3600_000),
    notAfter: new Date(now + 365 * 86400_000),
    extensions: [
      new x509.BasicConstraintsExtension(true, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
    ],
  };
  const caCert = parent
    ? await x509.X509CertificateGenerator.create({
        ...common,
        subject: `CN=${name}`,
        issuer: parent.cert.subject,
        publicKey: caKeys.publicKey as unknown as x509.PublicKeyType,
        signingKey: parent.keys.privateKey as unknown as webcrypto.CryptoKey,
      })
    : await x509.X509CertificateGenerator.createSelfSigned({ ...common, name: `CN=${name}`, keys: caKeys as unknown as Keys });
  return {
    intermediate: (childName) => makeCa(childName, { cert: caCert, keys: caKeys }),
    certPem: caCert.toString('pem'),
    async issue({ commonName, dnsNames = [], notBefore, notAfter }) {
      const keys = await keyPair();
      const cert = await x509.X509CertificateGenerator.create({
        serialNumber: randomBytes(8).toString('hex'),
        subject: `CN=${commonName}`,
        issuer: caCert.subject,
        publicKey: keys.publicKey as unknown as x509.PublicKeyType,
        signingKey: caKeys.privateKey as unknown as webcrypto.CryptoKey,
        signingAlgorithm: ALG,
        notBefore: notBefore ?? new Date(Date.now() - 3600_000),
        notAfter: notAfter ?? new Date(Date.now() + 30 * 86400_000),
        extensions: [
          new x509.BasicConstraintsExtension(false, undefined, true),
          new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
          new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.clientAuth, x509.ExtendedKeyUsage.serverAuth]),
          ...(dnsNames.length ? [new x509.SubjectAlternativeNameExtension(dnsNames.map((value) => ({ type: 'dns' as const, value })))] : []),
        ],
      });
      return { certPem: cert.toString('pem'), keyPem: await pkcs8Pem(keys.privateKey), der: Buffer.from(cert.rawData) };
    },
  };
}
