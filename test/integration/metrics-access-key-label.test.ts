/**
 * admin.accessKeyIdLabel against the real /metrics text: the access key IDs of XKS and KMS API
 * credentials appear as label values (keep), as the first 16 hex digits of their SHA-256 (hash), or
 * not at all (drop), in every metric that carries the label.
 */
import { expect } from 'chai';
import { createHash } from 'node:crypto';
import { GenerateRandomCommand } from '@aws-sdk/client-kms';
import { generateCredential } from '../../src/auth/generate-credentials';
import { metricsText, sample } from '../support/admin-http';
import { sdkError, startKmsHarness, type KmsHarness } from '../support/kms-api';

const hash = (id: string) => createHash('sha256').update(id).digest('hex').slice(0, 16);
const DAY = 86_400_000;

describe('admin.accessKeyIdLabel: the access_key_id label of /metrics (integration)', function () {
  this.timeout(60_000);

  for (const mode of ['keep', 'hash', 'drop'] as const) {
    describe(mode, () => {
      const tenant = generateCredential();
      let h: KmsHarness;
      let text: string;
      let xksIds: string[];

      before(async function () {
        this.timeout(60_000);
        h = await startKmsHarness({
          configure: (doc) => {
            doc.admin = { ...(doc.admin ?? {}), accessKeyIdLabel: mode };
            // Credential ages: 10 and 40 days, so drop's "oldest per key store" is visible.
            doc.keyStores[0].credentials[0].createdAt = new Date(Date.now() - 10 * DAY).toISOString();
            doc.keyStores[0].credentials[1].createdAt = new Date(Date.now() - 40 * DAY).toISOString();
            doc.kmsApi.credentials.push({ ...tenant, actions: ['kms:GenerateRandom'], keys: ['*'], throttle: { requestsPerSecond: 0.01, burst: 1 } });
          },
        });
        xksIds = [h.credentials.first.accessKeyId, h.credentials.second.accessKeyId];
        const kms = h.kms.client(tenant);
        await kms.send(new GenerateRandomCommand({ NumberOfBytes: 8 }));
        expect((await sdkError(kms.send(new GenerateRandomCommand({ NumberOfBytes: 8 })))).name).to.equal('ThrottlingException');
        text = await metricsText(h.proxy.adminUrl as string);
      });
      after(async () => h?.stop());

      const store = () => h.doc.keyStores[0].name as string;
      const ageSeconds = (labels: string) => sample(text, `xks_credential_age_seconds{${labels}}`);

      it('labels xks_kms_api_throttled_requests_total as configured', () => {
        const series = text.split('\n').filter((l) => l.startsWith('xks_kms_api_throttled_requests_total'));
        const expected = { keep: `{access_key_id="${tenant.accessKeyId}"} 1`, hash: `{access_key_id="${hash(tenant.accessKeyId)}"} 1`, drop: ' 1' }[mode];
        expect(series).to.deep.equal([`xks_kms_api_throttled_requests_total${expected}`]);
      });

      it('labels xks_credential_age_seconds as configured', () => {
        const ages = text.split('\n').filter((l) => l.startsWith('xks_credential_age_seconds'));
        if (mode === 'drop') {
          expect(ages).to.have.length(1);
          expect(ageSeconds(`key_store="${store()}"`)).to.be.within(40 * 86_400 - 60, 40 * 86_400 + 60);
        } else {
          const label = mode === 'keep' ? (id: string) => id : hash;
          expect(ageSeconds(`key_store="${store()}",access_key_id="${label(xksIds[0]!)}"`)).to.be.within(10 * 86_400 - 60, 10 * 86_400 + 60);
          expect(ageSeconds(`key_store="${store()}",access_key_id="${label(xksIds[1]!)}"`)).to.be.within(40 * 86_400 - 60, 40 * 86_400 + 60);
        }
      });

      it(mode === 'keep' ? 'shows the access key IDs' : 'shows no access key ID anywhere', () => {
        for (const id of [tenant.accessKeyId, ...xksIds]) {
          if (mode === 'keep') expect(text).to.include(`access_key_id="${id}"`);
          else expect(text).not.to.include(id);
        }
        if (mode === 'drop') expect(text).not.to.match(/^[a-z_]+\{[^}]*access_key_id=/m);
      });
    });
  }
});
