/**
 * The config file schema: the single source of truth for validation, the file's TypeScript type
 * and the generated reference (docs/config-reference.md, `npm run docs:config`).
 */
import { EXTERNAL_KEY_ID_PATTERN } from '../keys/served-key-store';
import { Type, type Static } from '@sinclair/typebox';
import { VENDOR_PROFILE_NAMES, VENDOR_PROFILES } from '../hsm/vendor-profiles';
import {
  AllowedRegionsSchema, AuditSchema, AuthorizationSchema, ClientAuthSchema, CredentialCreatedAtSchema, ReloadSchema, ThrottleSchema,
} from './security-schema';
import { KmsApiSchema } from './kms-api-schema';

/** Spec minimums the proxy MUST support; configured maxima may only raise them. */
export const SPEC_MIN_PLAINTEXT_BYTES = 4300;
export const SPEC_MIN_AAD_BYTES = 8192;
/** The spec's HSM AAD layout stores len(aad) in two bytes. */
export const MAX_ENCODABLE_AAD_BYTES = 65535;

export const ACCESS_KEY_ID_PATTERN = '^[A-Z2-7]{20,30}$';
export const SECRET_ACCESS_KEY_PATTERN = '^[A-Za-z0-9+/=]{43,64}$';
export { EXTERNAL_KEY_ID_PATTERN };
/** Path segments before /kms/xks/v1; the whole XksProxyUriPath must stay within 128 characters. */
export const URI_PREFIX_PATTERN = '^(/[A-Za-z0-9_-]+)*$';
export const MAX_URI_PREFIX_LENGTH = 128 - '/kms/xks/v1'.length;

/** Each profile's keep-alive default, from the profiles themselves (the reference said nss kept 60 s). */
const KEEP_ALIVE_DEFAULTS = Object.values(VENDOR_PROFILES)
  .map((profile) => `${profile.name} ${profile.defaultKeepAliveSeconds}`)
  .join(', ');

const Port = (description: string, def: number) =>
  Type.Optional(Type.Integer({ minimum: 0, maximum: 65535, default: def, description }));

const Credential = Type.Object(
  {
    accessKeyId: Type.String({
      pattern: ACCESS_KEY_ID_PATTERN,
      description: 'SigV4 access key ID: 20-30 characters, A-Z and 2-7 (the spec\'s format).',
    }),
    secretAccessKey: Type.Optional(
      Type.String({
        pattern: SECRET_ACCESS_KEY_PATTERN,
        description: 'The secret inline (43-64 characters of A-Z a-z 0-9 + / =). Prefer secretAccessKeyEnv or secretAccessKeyFile.',
      }),
    ),
    secretAccessKeyEnv: Type.Optional(
      Type.String({ minLength: 1, description: 'Name of an environment variable holding the secret.' }),
    ),
    secretAccessKeyFile: Type.Optional(
      Type.String({ minLength: 1, description: 'Path of a file holding the secret (surrounding whitespace is trimmed).' }),
    ),
    createdAt: CredentialCreatedAtSchema,
  },
  {
    additionalProperties: false,
    description: 'One SigV4 credential pair. Give exactly one of secretAccessKey, secretAccessKeyEnv, secretAccessKeyFile.',
  },
);

const KeyMapping = Type.Object(
  {
    externalKeyId: Type.String({
      pattern: EXTERNAL_KEY_ID_PATTERN,
      description: 'The externalKeyId KMS uses: 1-128 characters of A-Z a-z 0-9 . - _',
    }),
    label: Type.Optional(
      Type.String({ minLength: 1, description: 'CKA_LABEL of the AES-256 key in the HSM. Default: the externalKeyId.' }),
    ),
    enabled: Type.Optional(
      Type.Boolean({
        default: true,
        description: 'false makes GetKeyMetadata report DISABLED and Encrypt/Decrypt answer InvalidStateException.',
      }),
    ),
    rotationPeriodDays: Type.Optional(
      Type.Integer({
        minimum: 0,
        maximum: 36500,
        description: 'Scheduled rotation for this key: a new version once the active one is this many days old. 0 = never; overrides the key store\'s rotationPeriodDays.',
      }),
    ),
  },
  { additionalProperties: false },
);

/** Most HSMs one proxy spreads load over (GetHealthStatus reports at most ten ekmFleetDetails). */
export const MAX_HSMS = 10;

/** One HSM (PKCS#11 token). The same shape serves `hsm:` (one HSM) and each `hsms:` entry. */
const HsmMember = Type.Object(
  {
    // No schema default: Ajv would give every hsms entry the same one. load.ts numbers them.
    id: Type.Optional(Type.String({ pattern: '^[A-Za-z0-9_.-]{1,64}$', description: 'Name of this HSM in health reports, logs and metric labels. Default hsm-1 (in hsms: hsm-<position from 1>).' })),
    modulePath: Type.String({ minLength: 1, description: 'Path of the vendor PKCS#11 library, e.g. /usr/lib/softhsm/libsofthsm2.so.' }),
    libraryParameters: Type.Optional(
      Type.String({
        minLength: 1,
        description: 'Passed to C_Initialize as its library parameters; only NSS softokn needs them (profile nss), e.g. "configdir=\'sql:/var/lib/xks-proxy/nssdb\' certPrefix=\'\' keyPrefix=\'\' secmod=\'secmod.db\' flags= dbTokenDescription=\'xks\'". Every HSM using the same library must give the same value.',
      }),
    ),
    tokenLabel: Type.Optional(Type.String({ minLength: 1, description: 'Token to use, by label. Give tokenLabel or tokenSerial.' })),
    tokenSerial: Type.Optional(Type.String({ minLength: 1, description: 'Token to use, by serial number.' })),
    pinEnv: Type.Optional(Type.String({ minLength: 1, description: 'Environment variable holding the user PIN. Default XKS_HSM_PIN when pinFile is not set.' })),
    pinFile: Type.Optional(Type.String({ minLength: 1, description: 'File holding the user PIN. The PIN is never accepted inline in this file.' })),
    profile: Type.Optional(
      Type.Union(
        VENDOR_PROFILE_NAMES.map((name) => Type.Literal(name)),
        {
          default: 'softhsm',
          description: 'Vendor behaviour: AES-GCM IV generation, PIN format (cloudhsm: "<crypto user>:<password>"), the return code of a failed GCM tag, keep-alive default. See README "Vendor profiles".',
        },
      ),
    ),
    sessionPoolSize: Type.Optional(Type.Integer({ minimum: 1, maximum: 1024, default: 8, description: 'PKCS#11 sessions kept open; one operation runs per session at a time.' })),
    pkcs11Threads: Type.Optional(
      Type.Integer({
        minimum: 0,
        maximum: 1024,
        description:
          'Threads that run this HSM\'s PKCS#11 calls (requests\', its sessions\' and key administration\'s) off the event loop, one call sequence at a time each, so a stalled HSM never stalls the proxy. Default: 1 for the software-token profiles (softhsm, nss: their crypto is this host\'s CPU, and more threads only add context switches), else sessionPoolSize (a network HSM waits on the wire, so threads are its concurrency). At most sessionPoolSize are used, since each call holds a session. 0 runs the calls on the main thread.',
      }),
    ),
    acquireTimeoutMs: Type.Optional(Type.Integer({ minimum: 1, maximum: 10000, default: 100, description: 'Longest wait for a free session (also bounded by limits.requestDeadlineMs) before DependencyTimeoutException.' })),
    maxWaiters: Type.Optional(Type.Integer({ minimum: 0, default: 512, description: 'Requests allowed to queue for a session; beyond this they get ThrottlingException.' })),
    keyHandleRecheckMs: Type.Optional(
      Type.Integer({
        minimum: 0,
        maximum: 3600000,
        default: 1000,
        description: 'How long a cached key handle is used before the key\'s label is read through it again (0 = before every use, which costs one C_GetAttributeValue per HSM call). Guards against an HSM that gives a destroyed key\'s handle to a new object.',
      }),
    ),
    keepAliveSeconds: Type.Optional(
      Type.Integer({ minimum: 0, maximum: 3600, description: `Idle sessions older than this are exercised (C_GenerateRandom) so the HSM does not drop them; 0 turns keep-alive off. Default from the profile (${KEEP_ALIVE_DEFAULTS}).` }),
    ),
    decryptAuthFailureCodes: Type.Optional(
      Type.Array(Type.String({ pattern: '^CKR_[A-Z0-9_]+$' }), {
        minItems: 1,
        description: 'Overrides the profile: C_Decrypt return codes that mean "the GCM tag did not verify" (InvalidCiphertextException, after a try on each other HSM of a cluster).',
      }),
    ),
    healthCheckKeyLabel: Type.Optional(Type.String({ minLength: 1, default: 'xks-health-check', description: 'Dedicated AES-256 key used by the deep health check (never a customer key). The same on every HSM.' })),
    ekmVendor: Type.Optional(Type.String({ minLength: 1, description: 'ekmVendor reported by GetHealthStatus. Default: the token manufacturer ID.' })),
  },
  { additionalProperties: false, description: 'The PKCS#11 HSM holding the keys.' },
);

const KeyStore = Type.Object(
  {
    name: Type.String({
      pattern: '^[A-Za-z0-9_.-]{1,64}$',
      description: 'Operator-chosen name, used in logs and as the key_store metric label.',
    }),
    uriPrefix: Type.Optional(
      Type.String({
        pattern: URI_PREFIX_PATTERN,
        maxLength: MAX_URI_PREFIX_LENGTH,
        default: '',
        description: 'Path before /kms/xks/v1, e.g. "/keystores/prod" (may be empty). Unique per proxy.',
      }),
    ),
    credentials: Type.Array(Credential, {
      minItems: 1,
      description: 'SigV4 credentials accepted for this key store. List two during a rotation; all listed pairs are live.',
    }),
    keys: Type.Object(
      {
        allTokenKeys: Type.Optional(
          Type.Boolean({
            default: false,
            description: 'Serve every AES-256 key on the token, the externalKeyId being its CKA_LABEL (the health-check key excepted).',
          }),
        ),
        map: Type.Optional(
          Type.Array(KeyMapping, {
            default: [],
            description: 'Explicit externalKeyId -> HSM label mappings. An entry here overrides allTokenKeys for that ID.',
          }),
        ),
        rotationPeriodDays: Type.Optional(
          Type.Integer({
            minimum: 1,
            maximum: 36500,
            description: 'Scheduled rotation for every key this store serves: a new version once the active one is this many days old. Unset = no scheduled rotation.',
          }),
        ),
      },
      { additionalProperties: false, description: 'Which HSM keys this key store serves.' },
    ),
    allowedRegions: AllowedRegionsSchema,
    throttle: ThrottleSchema,
    authorization: AuthorizationSchema,
  },
  { additionalProperties: false },
);

export const ConfigSchema = Type.Object(
  {
    server: Type.Object(
      {
        host: Type.Optional(Type.String({ default: '0.0.0.0', description: 'Address the HTTPS listener binds to.' })),
        port: Port('HTTPS port KMS connects to. 0 picks a free port (tests).', 8443),
        tls: Type.Object(
          {
            certFile: Type.String({ minLength: 1, description: 'PEM server certificate chain (leaf first).' }),
            keyFile: Type.String({ minLength: 1, description: 'PEM private key of the server certificate.' }),
            clientAuth: ClientAuthSchema,
            ticketKeyRotationSeconds: Type.Optional(
              Type.Integer({
                minimum: 60,
                maximum: 86400,
                default: 3600,
                description: 'TLS session tickets let a reconnecting client (KMS) resume its session on any worker without the server certificate\'s signature and chain; TLS 1.3 resumption still does an ECDHE key exchange, so it saves the client a verification more than it saves the proxy CPU (measured: nearly a full handshake\'s). The ticket key is replaced this often (under serve --workers N the primary makes it and shares it with every worker); a ticket from before a rotation costs that client one full handshake.',
              }),
            ),
          },
          { additionalProperties: false },
        ),
        requestTimeoutMs: Type.Optional(
          Type.Integer({ minimum: 100, default: 10000, description: 'Whole-request receive timeout (slow clients are cut off). Must be at least server.headersTimeoutMs (default 5000), or the config is rejected.' }),
        ),
        headersTimeoutMs: Type.Optional(
          Type.Integer({ minimum: 100, default: 5000, description: 'Time allowed to receive the request headers. Must not exceed server.requestTimeoutMs (default 10000), or the config is rejected.' }),
        ),
        keepAliveTimeoutMs: Type.Optional(
          Type.Integer({
            minimum: 0,
            default: 360000,
            description: 'How long an idle keep-alive connection stays open after a response. KMS keeps its connections open and reuses them; keep this above the idle timeout of any load balancer in front (AWS NLB 350 s, ALB 60 s by default), so the balancer, not the proxy, closes idle connections and no request races a close.',
          }),
        ),
        handshakeTimeoutMs: Type.Optional(
          Type.Integer({
            minimum: 100,
            maximum: 120000,
            default: 5000,
            description: 'Time a new connection gets to complete its TLS handshake before it is closed (node\'s own default is 120 s). KMS completes it in milliseconds; this bounds how long a connection that never speaks TLS holds a descriptor.',
          }),
        ),
        maxConnections: Type.Optional(
          Type.Integer({
            minimum: 16,
            maximum: 1000000,
            description: 'Connections one process holds at once (each worker of serve --workers N has its own); further connections are closed on accept and counted in xks_connections_refused_total. Must leave server.reservedDescriptors of the open-file limit (ulimit -n) free, or the proxy refuses to start. Default: 4096, or the open-file limit minus the reserve if that is lower.',
          }),
        ),
        reservedDescriptors: Type.Optional(
          Type.Integer({
            minimum: 32,
            maximum: 100000,
            default: 256,
            description: 'File descriptors of the open-file limit kept free of connections, for the PKCS#11 library (SoftHSM opens its token files), logs, the audit file and config reloads.',
          }),
        ),
        shutdownTimeoutMs: Type.Optional(
          Type.Integer({
            minimum: 0,
            maximum: 600000,
            default: 20000,
            description: 'On SIGTERM/SIGINT, time in-flight requests get to finish before their connections are cut. Keep it below the orchestrator\'s grace period (Kubernetes: 30 s).',
          }),
        ),
      },
      { additionalProperties: false, description: 'The HTTPS listener KMS calls.' },
    ),
    admin: Type.Optional(
      Type.Object(
        {
          enabled: Type.Optional(Type.Boolean({ default: true, description: 'Serve /metrics, /ping and /ready on a separate plain-HTTP listener.' })),
          host: Type.Optional(Type.String({ default: '127.0.0.1', description: 'Admin listener address. Keep it off public interfaces.' })),
          port: Port('Admin listener port (0 picks a free port).', 9090),
          accessKeyIdLabel: Type.Optional(
            Type.Union([Type.Literal('keep'), Type.Literal('hash'), Type.Literal('drop')], {
              default: 'keep',
              description:
                'The access_key_id label of /metrics (xks_kms_api_throttled_requests_total, xks_credential_age_seconds): keep the access key ID, hash it (the first 16 hex digits of its SHA-256, stable across restarts and workers), or drop the label (credential age is then the oldest credential\'s per key store). Restart to change.',
            }),
          ),
        },
        { additionalProperties: false, default: {}, description: 'The admin listener (Prometheus metrics, probes).' },
      ),
    ),
    hsm: Type.Optional({ ...HsmMember, description: 'One HSM (the one-member form of hsms). Give hsm or hsms.' }),
    hsms: Type.Optional(
      Type.Array(HsmMember, {
        minItems: 1,
        maxItems: MAX_HSMS,
        description: 'A cluster of HSMs holding the same key material (e.g. a replicated HSM cluster). Requests go to healthy members; a device failure is retried once on another. Give hsm or hsms.',
      }),
    ),
    cluster: Type.Optional(
      Type.Object(
        {
          balance: Type.Optional(
            Type.Union([Type.Literal('least-busy'), Type.Literal('round-robin')], {
              default: 'least-busy',
              description: 'How requests are spread over healthy HSMs.',
            }),
          ),
          attemptTimeoutMs: Type.Optional(
            Type.Integer({ minimum: 1, maximum: 10000, default: 100, description: 'Longest a first attempt may take while another HSM could still take the retry within the request deadline. A timed-out attempt counts against the HSM\'s health (its error rate) only if it had at least half of this.' }),
          ),
          reconnectInitialBackoffMs: Type.Optional(
            Type.Integer({ minimum: 1, maximum: 60000, default: 250, description: 'First delay before reconnecting a failed HSM; doubles on each failure.' }),
          ),
          reconnectMaxBackoffMs: Type.Optional(
            Type.Integer({ minimum: 1, maximum: 600000, default: 30000, description: 'Longest delay between reconnect attempts (and between PKCS#11 library re-initialisations).' }),
          ),
          reinitAfterFailures: Type.Optional(
            Type.Integer({ minimum: 1, maximum: 100, default: 3, description: 'Consecutive device-class reconnect failures after which the PKCS#11 library is re-initialised (C_Finalize + C_Initialize).' }),
          ),
          startupWaitMs: Type.Optional(
            Type.Integer({
              minimum: 100,
              maximum: 600000,
              default: 15000,
              description:
                'How long startup waits for each HSM\'s first connection. An HSM whose PKCS#11 library has not finished connecting by then (a network HSM\'s client hung on an unreachable appliance) keeps connecting in the background and is reported UNAVAILABLE; the proxy serves with the HSMs that connected and adds it when it connects. If none connected, the proxy exits with an error: raise it for an HSM whose first connect is slower than this when healthy. CLI commands that open an HSM give up after the same time; shutdown waits at most 2 s for a connect, an HSM call or the library\'s last C_Finalize still running.',
            }),
          ),
          hungCallMs: Type.Optional(
            Type.Integer({
              minimum: 1000,
              maximum: 86400000,
              default: 60000,
              description:
                'A PKCS#11 call still running after this long is taken as hung: one that never returns (a network HSM\'s client waiting on a dead connection) holds its PKCS#11 thread for good, since node cannot stop a thread inside a library call. It is logged once ("pkcs11 call hung", at error level), xks_hsm_longest_running_call_seconds shows it, and restartOnHungCall says whether the proxy restarts for it. Timed per hand-off to a PKCS#11 thread (up to 16 requests\' calls, or one job such as listing every key of the token for the KMS API\'s ListKeys or a rotation check with allTokenKeys): raise it if such a listing takes longer on a very large token. With pkcs11Threads 0 only the encrypt and decrypt calls are timed (the others block the event loop).',
            }),
          ),
          restartOnHungCall: Type.Optional(
            Type.Union([Type.Literal('when-unserved'), Type.Literal('always'), Type.Literal('never')], {
              default: 'when-unserved',
              description:
                'What the proxy does about a hung call (hungCallMs), since only a new process frees its thread: when-unserved drains and exits while no HSM can serve (a single HSM hung), leaving the restart to its supervisor (systemd, Kubernetes, the cluster primary for a serve --workers N worker); always does so for any hung call, also while other HSMs serve (each restart waits up to startupWaitMs for an HSM whose connects still hang); never only reports it. The exit is by SIGKILL, status 137, after the drain: a normal exit would wait for the hung thread.',
            }),
          ),
        },
        { additionalProperties: false, default: {}, description: 'How the HSMs share load and recover.' },
      ),
    ),
    keyStores: Type.Array(KeyStore, { minItems: 1, description: 'Logical key stores, each a URI prefix with its own credentials and keys.' }),
    limits: Type.Optional(
      Type.Object(
        {
          maxPlaintextBytes: Type.Optional(
            Type.Integer({
              minimum: SPEC_MIN_PLAINTEXT_BYTES,
              maximum: 1048576,
              default: 8192,
              description: 'Largest plaintext/ciphertext accepted; larger gets UnsupportedOperationException. At least the spec\'s 4300.',
            }),
          ),
          maxAadBytes: Type.Optional(
            Type.Integer({
              minimum: SPEC_MIN_AAD_BYTES,
              maximum: MAX_ENCODABLE_AAD_BYTES,
              default: 8192,
              description: 'Largest additionalAuthenticatedData accepted; larger gets UnsupportedOperationException. 8192-65535.',
            }),
          ),
          clockSkewSeconds: Type.Optional(
            Type.Integer({ minimum: 1, maximum: 900, default: 300, description: 'Allowed distance between x-amz-date and the proxy clock (spec: 5 minutes).' }),
          ),
          requestDeadlineMs: Type.Optional(
            Type.Integer({
              minimum: 10,
              maximum: 10000,
              default: 200,
              description: 'Budget of each request, from arrival to answer, for session waits and HSM calls; when it runs out the answer is DependencyTimeoutException. Keep it under KMS\'s 250 ms minus the network round trip. Also the KMS API\'s budget unless kmsApi.requestDeadlineMs is set.',
            }),
          ),
          maxInFlightRequests: Type.Optional(
            Type.Integer({
              minimum: 1,
              maximum: 100000,
              default: 32,
              description: 'XKS and KMS API requests (except GetHealthStatus) one process works on at once, counted together: both use the same event loop and HSM sessions. A request counts from when its whole body has arrived until it is answered (a client still sending, or stalling mid-request, holds no slot). Beyond it a request is answered ThrottlingException (XKS: 429, which KMS retries; KMS API: 400, which the AWS SDKs retry) before its signature is checked or the HSM is asked, so an overloaded proxy spends its CPU on requests it can still answer in time instead of on ones that will time out. Size it to rate x latency per process with headroom (1,000 req/s at 10 ms is 10); too high and an overloaded process admits more than it answers in time.',
            }),
          ),
          admissionWaitMs: Type.Optional(
            Type.Integer({
              minimum: 0,
              maximum: 1000,
              default: 50,
              description: 'How long a request that finds maxInFlightRequests reached may wait for a slot before it is answered ThrottlingException; first come, first served, at most 4 waiting per slot (the rest are refused at once). A short pause of the process (a full garbage collection) makes requests arrive in a burst whose slots free again within milliseconds: without the wait that burst was refused. The wait counts against requestDeadlineMs. 0: refuse at once.',
            }),
          ),
        },
        { additionalProperties: false, default: {}, description: 'Request limits.' },
      ),
    ),
    health: Type.Optional(
      Type.Object(
        {
          intervalSeconds: Type.Optional(Type.Integer({ minimum: 1, maximum: 55, default: 10, description: 'Deep health check period. The cached result KMS sees is never older than 60 s.' })),
          degradedLatencyMs: Type.Optional(Type.Integer({ minimum: 1, default: 100, description: 'A passing check slower than this reports DEGRADED.' })),
          hysteresisChecks: Type.Optional(
            Type.Integer({ minimum: 1, maximum: 10, default: 2, description: 'Consecutive checks that must agree before an HSM\'s reported status changes (1: no hysteresis).' }),
          ),
          degradedErrorRate: Type.Optional(
            Type.Number({ minimum: 0.001, maximum: 1, default: 0.05, description: 'Share of recent requests failing on an HSM (device errors, timeouts) that reports it DEGRADED.' }),
          ),
          errorWindowSeconds: Type.Optional(
            Type.Integer({ minimum: 1, maximum: 600, default: 30, description: 'Window over which that share is measured.' }),
          ),
          fleetSize: Type.Optional(Type.Integer({ minimum: 1, default: 1, description: 'xksProxyFleetSize reported to KMS: proxies behind the endpoint.' })),
          proxyVendor: Type.Optional(Type.String({ minLength: 1, default: 'xks-proxy project', description: 'xksProxyVendor reported to KMS.' })),
        },
        { additionalProperties: false, default: {}, description: 'The deep health check behind GetHealthStatus.' },
      ),
    ),
    keyLifecycle: Type.Optional(
      Type.Object(
        {
          stateCacheSeconds: Type.Optional(
            Type.Integer({
              minimum: 0,
              maximum: 60,
              default: 5,
              description: 'How long a proxy reuses what it read about a key\'s versions and enabled state. A rotation or disable made anywhere takes effect within this time; 0 reads the HSM on every request.',
            }),
          ),
          rotationCheckSeconds: Type.Optional(
            Type.Integer({
              minimum: 60,
              maximum: 86400,
              default: 3600,
              description: 'Mean interval between scheduled-rotation checks (each proxy jitters it by +-25 %). Only used when some key has a rotationPeriodDays.',
            }),
          ),
        },
        { additionalProperties: false, default: {}, description: 'Key versions, enabled state and scheduled rotation (state lives in the HSM).' },
      ),
    ),
    logging: Type.Optional(
      Type.Object(
        {
          level: Type.Optional(
            Type.Union([Type.Literal('error'), Type.Literal('warn'), Type.Literal('info'), Type.Literal('debug')], {
              default: 'info',
              description: 'Log level. Logs are one JSON object per line on stdout.',
            }),
          ),
        },
        { additionalProperties: false, default: {} },
      ),
    ),
    audit: AuditSchema,
    reload: ReloadSchema,
    kmsApi: KmsApiSchema,
  },
  { additionalProperties: false },
);

export type ConfigFile = Static<typeof ConfigSchema>;
