/**
 * A client that swaps its access key ID and secret access key (AWS_ACCESS_KEY_ID and
 * AWS_SECRET_ACCESS_KEY the wrong way round, or two positional arguments in the wrong order) signs
 * with `Credential=<secret>/...`. The proxy refuses it as an unknown access key; the secret it was
 * handed must reach neither the log line, nor the audit log, nor /metrics. A real (configured or
 * unknown but access-key-shaped) ID is still logged as it is: operators need it after a rotation.
 */
import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { hashedAccessKeyId } from '../../src/observability/access-key-label';
import { metricsText } from '../support/admin-http';
import { signedKmsCall, startKmsHarness, type KmsHarness } from '../support/kms-api';
import { requestMetadata } from '../support/xks-client';

/** Secrets that pass the access key ID syntax check (no "/"), as about half of all generated ones do. */
const XKS_SECRET = 'wJalrXUtnFEMIK7MDENGbPxRfiCYSWAPPEDxks+abcdEF=';
const KMS_SECRET = 'kJalrXUtnFEMIK7MDENGbPxRfiCYSWAPPEDkmsAbcdEF';
const XKS_ID = 'AKIASWAPPEDXKSCRED2345';
const KMS_ID = 'AKIASWAPPEDKMSCRED2345';
const UNKNOWN_ID = 'AKIAUNKNOWNBUTSHAPED23';

describe('a swapped access key ID and secret is never logged (integration)', function () {
  this.timeout(60_000);
  let h: KmsHarness;

  before(async function () {
    this.timeout(60_000);
    h = await startKmsHarness({
      configure: (doc) => {
        doc.keyStores[0].credentials.push({ accessKeyId: XKS_ID, secretAccessKey: XKS_SECRET });
        doc.kmsApi.credentials.push({ accessKeyId: KMS_ID, secretAccessKey: KMS_SECRET, actions: ['kms:*'], keys: ['*'] });
        doc.audit = { file: 'audit.log' };
      },
    });
    const health = { body: { requestMetadata: requestMetadata('KmsHealthCheck') } };
    const answers = [
      // The swap, on both APIs; and for contrast, an unknown ID that looks like one.
      await h.client.send('/kms/xks/v1/health', { ...health, credential: { accessKeyId: XKS_SECRET, secretAccessKey: XKS_ID } }),
      await h.client.send('/kms/xks/v1/health', { ...health, credential: { accessKeyId: UNKNOWN_ID, secretAccessKey: XKS_SECRET } }),
      await signedKmsCall(h, { accessKeyId: KMS_SECRET, secretAccessKey: KMS_ID }, 'TrentService.ListKeys', {}),
      // A swap that fails an earlier check (a skewed clock) than the access key lookup.
      await h.client.send('/kms/xks/v1/health', { ...health, credential: { accessKeyId: XKS_SECRET, secretAccessKey: XKS_ID }, signingDate: new Date(Date.now() - 3_600_000) }),
    ];
    expect(answers.map((a) => a.status)).to.deep.equal([401, 401, 400, 401]);
  });
  after(async () => h?.stop());

  const requestLines = () =>
    h.logs.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l.message === 'xks request' || l.message === 'kms api request');

  it('keeps the secret out of the operational log, the audit log and /metrics', async () => {
    const everything = `${h.logs.join('\n')}\n${readFileSync(join(h.dir, 'audit.log'), 'utf8')}\n${await metricsText(h.proxy.adminUrl as string)}`;
    for (const secret of [XKS_SECRET, KMS_SECRET]) {
      expect(everything).not.to.include(secret);
      expect(everything).not.to.include(secret.slice(0, 20));
    }
  });

  it('logs a fingerprint of what was presented instead, which matches the hashed metrics label', () => {
    const swapped = requestLines().filter((l) => l.accessKeyIdSha256 !== undefined);
    expect(swapped.map((l) => l.accessKeyIdSha256)).to.include.members([hashedAccessKeyId(XKS_SECRET), hashedAccessKeyId(KMS_SECRET)]);
    for (const line of swapped) expect(line).not.to.have.property('accessKeyId');
    expect(swapped.map((l) => l.authFailure)).to.include.members(['UnknownAccessKey', 'RequestExpired']);
    const audited = readFileSync(join(h.dir, 'audit.log'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(audited.find((e) => e.accessKeyIdSha256 === hashedAccessKeyId(XKS_SECRET))).to.include({ authFailure: 'UnknownAccessKey' });
  });

  it('still logs an unknown access-key-shaped ID as it is', () => {
    expect(requestLines().find((l) => l.accessKeyId === UNKNOWN_ID)).to.include({ authFailure: 'UnknownAccessKey', status: 401 });
  });
});
