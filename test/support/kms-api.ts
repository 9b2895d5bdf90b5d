/** A harness with the KMS API switched on, and AWS SDK v3 KMS clients trusting the test CA. */
import { Agent } from 'node:https';
import { KMS, KMSClient, type KMSClientConfig } from '@aws-sdk/client-kms';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { generateCredential, type Sigv4Credential } from '../../src/auth/generate-credentials';
import { startHarness, testKeys, type Harness, type HarnessOptions } from './proxy-harness';
import { XksClient, type SendOptions, type XksResponse } from './xks-client';

export interface KmsHarness extends Harness {
  kms: {
    /** kms:* on every key */
    admin: Sigv4Credential;
    /** kms:Encrypt and kms:DescribeKey on the main key only */
    limited: Sigv4Credential;
    endpoint: string;
    /** A client for this credential (default admin); stop() destroys every client made here. */
    client(credential?: Sigv4Credential, region?: string): KMSClient;
    /** The aggregated client (method per operation), as the Encryption SDK wants it. */
    aggregated(): KMS;
  };
}

export const KMS_REGION = 'us-east-1';
export const KMS_ACCOUNT = '111122223333';

export async function startKmsHarness(options: HarnessOptions = {}): Promise<KmsHarness> {
  const admin = generateCredential();
  const limited = generateCredential();
  const keys = await testKeys();
  const h = await startHarness({
    ...options,
    configure: (doc, dir) => {
      const root = doc.keyStores[0];
      // Two keys under stable IDs: app-key (alias/app) and other-key, for cross-key checks.
      root.keys.map.push({ externalKeyId: 'app-key', label: keys.main }, { externalKeyId: 'other-key', label: keys.known });
      doc.kmsApi = {
        keyStore: root.name,
        region: KMS_REGION,
        accountId: KMS_ACCOUNT,
        aliases: [{ name: 'alias/app', keyId: 'app-key' }],
        credentials: [
          { accessKeyId: admin.accessKeyId, secretAccessKey: admin.secretAccessKey, actions: ['kms:*'], keys: ['*'] },
          { accessKeyId: limited.accessKeyId, secretAccessKey: limited.secretAccessKey, actions: ['kms:Encrypt', 'kms:DescribeKey'], keys: ['alias/app'] },
        ],
      };
      options.configure?.(doc, dir);
    },
  });
  const endpoint = `https://localhost:${h.proxy.port}`;
  const agent = new Agent({ ca: h.ca, keepAlive: true });
  const clientConfig = (credential: Sigv4Credential, region: string): KMSClientConfig => ({
    endpoint,
    region,
    credentials: { accessKeyId: credential.accessKeyId, secretAccessKey: credential.secretAccessKey },
    requestHandler: new NodeHttpHandler({ httpsAgent: agent }),
    maxAttempts: 1,
  });
  const made: KMSClient[] = [];
  return {
    ...h,
    kms: {
      admin,
      limited,
      endpoint,
      client: (credential = admin, region = KMS_REGION) => {
        const client = new KMSClient(clientConfig(credential, region));
        made.push(client);
        return client;
      },
      aggregated: () => new KMS(clientConfig(admin, KMS_REGION)),
    },
    stop: async () => {
      for (const client of made) client.destroy();
      agent.destroy();
      await h.stop();
    },
  };
}

/** Rejects with the SDK's error; fails the test if the call succeeds. */
export async function sdkError(promise: Promise<unknown>): Promise<{ name: string; message: string; $metadata: { httpStatusCode?: number } }> {
  try {
    await promise;
  } catch (err) {
    return err as never;
  }
  throw new Error('expected the call to fail');
}

/**
 * A raw KMS API call signed by @smithy/signature-v4 (service kms), for targets and members the SDK
 * cannot send (unknown operations, hostile KeySpecs).
 */
export function signedKmsCall(h: KmsHarness, credential: Sigv4Credential, target: string, body: object | Buffer, extra: Pick<SendOptions, 'cutBodyAfter' | 'afterSign'> = {}): Promise<XksResponse> {
  return new XksClient(h.kms.endpoint, h.ca, credential).send('/', {
    service: 'kms',
    region: KMS_REGION,
    headers: { 'content-type': 'application/x-amz-json-1.1', 'x-amz-target': target },
    body,
    ...extra,
  });
}
