/** Config schema of the KMS-compatible endpoint (issue #8), kept apart so schema.ts only gains one member. */
import { Type } from '@sinclair/typebox';
import { KMS_API_ACTIONS } from '../authz/kms-actions';

const KmsCredential = Type.Object(
  {
    accessKeyId: Type.String({ pattern: '^[A-Z0-9]{16,128}$', description: 'SigV4 access key ID KMS clients sign with (A-Z 0-9, 16-128 characters).' }),
    secretAccessKey: Type.Optional(Type.String({ pattern: '^[A-Za-z0-9+/=]{40,64}$', description: 'The secret inline. Prefer secretAccessKeyEnv or secretAccessKeyFile.' })),
    secretAccessKeyEnv: Type.Optional(Type.String({ minLength: 1, description: 'Name of an environment variable holding the secret.' })),
    secretAccessKeyFile: Type.Optional(Type.String({ minLength: 1, description: 'Path of a file holding the secret (surrounding whitespace is trimmed).' })),
    actions: Type.Array(
      Type.Union([...KMS_API_ACTIONS.map((a) => Type.Literal(a)), Type.Literal('kms:*')]),
      { minItems: 1, description: 'KMS actions this credential may call ("kms:*" = all). Anything else answers AccessDeniedException.' },
    ),
    keys: Type.Array(Type.String({ minLength: 1 }), {
      minItems: 1,
      description: 'Key IDs (or alias/... names) the actions apply to; "*" = every key the endpoint serves. GenerateRandom, ListKeys and ListAliases need no key.',
    }),
    throttle: Type.Optional(
      Type.Object(
        {
          requestsPerSecond: Type.Number({ exclusiveMinimum: 0, maximum: 1000000, description: 'Sustained request rate allowed for this credential (token bucket refill rate).' }),
          burst: Type.Optional(Type.Integer({ minimum: 1, maximum: 10000000, description: 'Bucket size: requests allowed at once after a quiet period. Default: requestsPerSecond rounded up.' })),
        },
        {
          additionalProperties: false,
          description: 'Request quota of this credential, checked after its signature; above it: ThrottlingException (400, which the AWS SDKs retry with backoff). Counted per process; a reload that keeps the numbers keeps the bucket.',
        },
      ),
    ),
  },
  { additionalProperties: false, description: 'One KMS API credential and what it may do. Give exactly one of secretAccessKey, secretAccessKeyEnv, secretAccessKeyFile.' },
);

export const KmsApiSchema = Type.Optional(
  Type.Object(
    {
      enabled: Type.Optional(Type.Boolean({ default: true, description: 'Serve the AWS KMS JSON API (TrentService) on the HTTPS listener.' })),
      path: Type.Optional(Type.String({ pattern: '^/([A-Za-z0-9_-]+(/[A-Za-z0-9_-]+)*)?$', default: '/', description: 'Request path of the KMS API: POST <path> with X-Amz-Target: TrentService.<Operation>. Not under /kms/xks/v1/ (the XKS routes are matched first).' })),
      keyStore: Type.String({ minLength: 1, description: 'Name of the key store whose keys (IDs, HSM labels, enabled state, versions) the KMS API serves.' }),
      region: Type.Optional(Type.String({ pattern: '^[a-z0-9-]{1,32}$', default: 'us-east-1', description: 'Region in key ARNs, and the only SigV4 scope region accepted.' })),
      accountId: Type.Optional(Type.String({ pattern: '^[0-9]{12}$', default: '111122223333', description: 'Account ID in key and alias ARNs.' })),
      aliases: Type.Optional(
        Type.Array(
          Type.Object(
            {
              name: Type.String({ pattern: '^alias/[A-Za-z0-9/_-]{1,250}$', description: 'alias/<name>' }),
              keyId: Type.String({ pattern: '^[A-Za-z0-9._-]{1,128}$', description: 'The key ID (externalKeyId) the alias names.' }),
            },
            { additionalProperties: false },
          ),
          { default: [], description: 'Aliases: alias/... names for key IDs.' },
        ),
      ),
      requestDeadlineMs: Type.Optional(
        Type.Integer({
          minimum: 10,
          maximum: 10000,
          description: 'Budget of each KMS API request, from arrival to answer, for session waits and HSM calls; when it runs out the answer is DependencyTimeoutException (503, which SDKs retry). Default: limits.requestDeadlineMs. KMS API clients are not bound by AWS KMS\'s 250 ms, so a longer budget may suit them.',
        }),
      ),
      authorization: Type.Optional(
        Type.Object(
          {
            policyFile: Type.String({ minLength: 1, description: 'Cedar policy file in the Kms namespace (README "Use your HSM keys through the KMS API", Authorization), validated at load and reload. Checked after each credential\'s allow-list: both must allow.' }),
          },
          { additionalProperties: false, description: 'Cedar policies for the KMS API.' },
        ),
      ),
      credentials: Type.Array(KmsCredential, { minItems: 1, description: 'SigV4 credentials (service "kms") of the KMS API, separate from XKS key-store credentials.' }),
    },
    { additionalProperties: false, description: 'The KMS-compatible endpoint (TrentService JSON API) on the same HSM keys.' },
  ),
);
