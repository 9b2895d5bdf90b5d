/**
 * The benchmark harness (issue #7): ceilings, the proxy per operation and concurrency, a KMS-shaped
 * fixed-rate run, and 1 vs 2 workers, in one run on one machine with one load generator (autocannon).
 * Writes bench/results/latest.md and latest.json. Not part of the test suite: `npm run bench`.
 *
 * Requests are signed once per scenario (valid for the 5-minute SigV4 window), not per request.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, copyFileSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import autocannon from 'autocannon';
import { Sha256 } from '@aws-crypto/sha256-js';
import { HttpRequest } from '@smithy/protocol-http';
import { SignatureV4 } from '@smithy/signature-v4';
import { stringify as toYaml } from 'yaml';
import { generateCredential, type Sigv4Credential } from '../src/auth/generate-credentials';
import { createSelfSignedCert } from '../src/cli/demo/self-signed-cert';
import { createAesKey, Hsm } from '../src/hsm';
import { ensureSoftHsmToken, SOFTHSM_MODULE_PATH } from '../src/hsm/softhsm';
import { allocatorText, applyAllocator, type Allocator } from './allocator';
import { pacedLoad, type LoadFigures } from './paced-load';
import { formatSummary, summarize } from './profile-summary';
import { handshakeCpu, idleCpuUsPerSecond, withChurn } from './tls-churn';

const ROOT = join(__dirname, '../..');
const MAIN = join(ROOT, 'dist/src/cli/main.js');
// Split at the first "=" only: --node-flags="--max-semi-space-size=8" keeps its value.
const args = new Map(process.argv.slice(2).map((a) => /^--([^=]+)(?:=(.*))?$/s.exec(a)?.slice(1, 3) as [string, string]));
/** Every option this script reads; anything else is refused, so a typo (or --help) does not start a 20-minute run. */
const OPTIONS = [
  'admission-wait', 'after-closed-loop', 'allocator', 'cedar', 'concurrency', 'duration', 'kms-seconds', 'limit', 'max-in-flight', 'mix', 'node-flags',
  'compare', 'compare-allocator', 'floor-parts', 'floor-history', 'history', 'paced-connections', 'paced-warmup', 'pkcs11-threads', 'pool', 'profile', 'rate', 'render', 'rounds', 'scenario', 'server-log', 'sustain-rates', 'sustain-seconds', 'workers',
];
const unknown = process.argv.slice(2).filter((a) => !OPTIONS.includes(/^--([^=]+)/.exec(a)?.[1] ?? ''));
if (unknown.length > 0) {
  process.stderr.write(`bench: unknown argument(s) ${unknown.join(' ')}\nOptions: ${OPTIONS.map((o) => `--${o}`).join(' ')} (docs/performance.md says what each does)\n`);
  process.exit(2);
}
if (args.has('mix') && args.get('scenario') !== 'KMS-shaped') {
  process.stderr.write('bench: --mix only changes a --scenario=KMS-shaped run\n');
  process.exit(2);
}
if (args.has('history') && (!args.has('scenario') || args.get('scenario') === 'floor-sizing')) {
  process.stderr.write('bench: --history only changes a proxy --scenario run (the full run\'s proxy has served every scenario before its pairs)\n');
  process.exit(2);
}
if (args.has('floor-history') && !(args.has('floor-parts') && args.has('history'))) {
  process.stderr.write('bench: --floor-history only changes a --floor-parts run with --history (the floors get the proxy\'s history too)\n');
  process.exit(2);
}
if (args.has('compare-allocator') && !args.has('compare')) {
  process.stderr.write('bench: --compare-allocator only changes a --compare run (--compare=. compares this build with itself)\n');
  process.exit(2);
}
if (args.has('paced-warmup') && !args.has('scenario')) {
  process.stderr.write('bench: --paced-warmup only changes a --scenario run (the full run\'s text says 5 s)\n');
  process.exit(2);
}
const DURATION = Number(args.get('duration') ?? 8);
const KMS_SECONDS = Number(args.get('kms-seconds') ?? 60);
const KMS_RATE = Number(args.get('rate') ?? 1800);
const POOL = Number(args.get('pool') ?? 8);
const CONCURRENCIES = (args.get('concurrency') ?? '1,32,256').split(',').map(Number);
/** Trial rates for the sizing run, lowest first; it stops at the first one over the targets. */
const SUSTAIN_RATES = (args.get('sustain-rates') ?? '200,400,600,800,1000,1200,1500,1800,2000,2200,2500,2800,3000,3300').split(',').map(Number);
const SUSTAIN_SECONDS = Number(args.get('sustain-seconds') ?? 20);
/** Open-loop runs: enough connections that an overloaded proxy, not the generator, decides what waits and what is shed. */
const PACED_CONNECTIONS = Number(args.get('paced-connections') ?? 256);
/** --paced-warmup=<s>: the paced runs' unrecorded start (default 5); 0 records a cold start from its first request. */
const PACED_WARMUP_SECONDS = Number(args.get('paced-warmup') ?? 5);
const PIN_CORES = cpus().length >= 2;
/** --allocator=jemalloc|glibc[:<GLIBC_TUNABLES>]: every process this run starts inherits it (bench/allocator.ts). */
const ALLOCATOR = applyAllocator(args.get('allocator'));

interface Row extends LoadFigures {
  scenario: string;
  concurrency: number | string;
  serverCpuPct?: number;
  /** Server CPU time per answered request: robust to a starved load generator. */
  cpuUsPerReq?: number;
  /** Of that, the main thread's (the event loop); the rest ran on the server's other threads. */
  mainThreadCpuUsPerReq?: number;
  serverRssMb?: number;
  ratio?: number;
  note?: string;
}

// ---- environment -------------------------------------------------------------------------

interface Env {
  dir: string;
  credential: Sigv4Credential;
  certFile: string;
  keyFile: string;
  pin: string;
  tokenLabel: string;
  keyLabel: string;
}

async function prepare(): Promise<Env> {
  const dir = mkdtempSync(join(tmpdir(), 'xks-bench-'));
  scratchDirs.add(dir);
  const pin = randomBytes(8).toString('hex');
  const tokenLabel = 'xks-bench';
  ensureSoftHsmToken(join(dir, 'softhsm'), tokenLabel, randomBytes(8).toString('hex'), pin);
  const hsm = await Hsm.open({ id: 'bench', modulePath: SOFTHSM_MODULE_PATH, tokenLabel, pin, sessionPoolSize: 1, acquireTimeoutMs: 5000, maxWaiters: 4 });
  await createAesKey(hsm, { label: 'bench-key' });
  await createAesKey(hsm, { label: 'bench-health' });
  await hsm.close();
  const pem = await createSelfSignedCert('localhost', ['localhost']);
  const certFile = join(dir, 'server.crt');
  const keyFile = join(dir, 'server.key');
  writeFileSync(certFile, pem.certPem);
  writeFileSync(keyFile, pem.keyPem);
  writeFileSync(join(dir, 'pin'), pin);
  return { dir, credential: generateCredential(), certFile, keyFile, pin, tokenLabel, keyLabel: 'bench-key' };
}

function writeConfig(env: Env, options: { cedar?: boolean } = {}): string {
  const path = join(env.dir, options.cedar ? 'config-cedar.yaml' : 'config.yaml');
  // The Cedar scenario: a permit and a forbid that does not match, so every request is decided and allowed.
  if (options.cedar) writeFileSync(join(env.dir, 'policy.cedar'), readFileSync(join(ROOT, 'config/policies/deny-decrypt-for-principal.cedar')));
  writeFileSync(
    path,
    toYaml({
      server: { host: '127.0.0.1', port: 0, tls: { certFile: env.certFile, keyFile: env.keyFile } },
      admin: { enabled: true, host: '127.0.0.1', port: 0 },
      hsm: { modulePath: SOFTHSM_MODULE_PATH, tokenLabel: env.tokenLabel, pinFile: join(env.dir, 'pin'), sessionPoolSize: POOL, healthCheckKeyLabel: 'bench-health', ...(args.has('pkcs11-threads') ? { pkcs11Threads: Number(args.get('pkcs11-threads')) } : {}) },
      keyStores: [{ name: 'bench', credentials: [{ accessKeyId: env.credential.accessKeyId, secretAccessKey: env.credential.secretAccessKey }], keys: { allTokenKeys: true }, ...(options.cedar ? { authorization: { policyFile: join(env.dir, 'policy.cedar') } } : {}) }],
      logging: { level: 'info' }, // production default: one log line per request is part of the cost
      limits: {
        ...(args.has('max-in-flight') ? { maxInFlightRequests: Number(args.get('max-in-flight')) } : {}),
        ...(args.has('admission-wait') ? { admissionWaitMs: Number(args.get('admission-wait')) } : {}),
      },
    }),
  );
  return path;
}

// ---- processes ---------------------------------------------------------------------------

interface Server {
  child: ChildProcess;
  url: string;
  adminUrl?: string;
  /** The server's stdout (its log lines); removed when it exits. */
  logFile?: string;
}

/**
 * `core` undefined means unpinned: every core. It must be said explicitly, since a child inherits
 * this process's own pinning (the load generator's core), and the 2-worker run, meant to be
 * unpinned, ran its workers on the generator's one core until 2026-12-05.
 */
function pinned(command: string, argv: string[], core: string | undefined): [string, string[]] {
  if (!PIN_CORES) return [command, argv];
  return ['taskset', ['-c', core ?? `0-${String(cpus().length - 1)}`, command, ...argv]];
}

/** Servers this run started and has not stopped: a failed or interrupted run stops them, so none is left on the measured core. */
const running = new Set<ChildProcess>();
/** Temporary folders this run made (the token, PIN and credential; server logs): removed if it fails or is interrupted too. */
const scratchDirs = new Set<string>();

function stopAll(): void {
  for (const child of running) child.kill('SIGTERM');
  for (const dir of scratchDirs) rmSync(dir, { recursive: true, force: true });
}

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    stopAll();
    process.exit(130);
  });
}

/**
 * Starts a server and resolves once `ready` finds its address in the output. The output goes to a
 * file, as a log shipper reads it: through a pipe to this process, which is busy generating load,
 * the server's stdout writes (synchronous for pipes on Linux) stall its event loop whenever this
 * process falls behind reading, and the run measures the reader instead of the server.
 */
function startProcess(command: string, argv: string[], core: string | undefined, ready: (out: string) => Server | undefined, env: NodeJS.ProcessEnv = process.env): Promise<Server> {
  const [cmd, cmdArgs] = pinned(command, argv, core);
  const logFile = join(mkdtempSync(join(tmpdir(), 'xks-bench-out-')), 'stdout.log');
  scratchDirs.add(dirname(logFile));
  const fd = openSync(logFile, 'w', 0o600);
  const child = spawn(cmd, cmdArgs, { env, stdio: ['ignore', fd, 'pipe'] });
  running.add(child);
  child.once('exit', () => running.delete(child));
  closeSync(fd);
  return new Promise((resolve, reject) => {
    let err = '';
    let started = false;
    const poll = setInterval(() => {
      const server = ready(readFileSync(logFile, 'utf8'));
      if (!server) return;
      clearInterval(poll);
      started = true;
      resolve({ ...server, child, logFile });
    }, 20);
    child.stderr?.on('data', (d: Buffer) => (err += d.toString()));
    child.on('exit', (code) => {
      clearInterval(poll);
      const out = started ? '' : readFileSync(logFile, 'utf8');
      if (SERVER_LOG) copyFileSync(logFile, `${SERVER_LOG}.${String(child.pid)}`);
      rmSync(dirname(logFile), { recursive: true, force: true });
      if (!started) reject(new Error(`${command} exited ${String(code)}: ${out.slice(-4000)}\n${err}`));
    });
  });
}

const PROFILE_DIR = args.get('profile');
/** --node-flags="--trace-gc ...": extra V8/Node flags for the proxy process, for investigations. */
const NODE_FLAGS = (args.get('node-flags') ?? '').split(' ').filter(Boolean);
/** --server-log=<path>: keeps each server's stdout as <path>.<pid> (the proxy's log, --trace-gc output). */
const SERVER_LOG = args.get('server-log');

/** `serve --workers N` (default 1 here: serve's own default is one worker per CPU). */
function startProxy(configPath: string, workers = 1, main = MAIN, env: NodeJS.ProcessEnv = process.env): Promise<Server> {
  const argv = [...NODE_FLAGS, ...(PROFILE_DIR ? ['--cpu-prof', `--cpu-prof-dir=${PROFILE_DIR}`] : []), main, 'serve', '--config', configPath, '--workers', String(workers)];
  // With several workers only the primary's line means the whole fleet is up.
  const readyLine = workers > 1 ? 'xks proxy cluster listening' : 'xks proxy listening';
  return startProcess(process.execPath, argv, workers > 1 ? undefined : '0', (out) => {
    for (const line of out.split('\n')) {
      if (!line.includes(`"message":"${readyLine}"`)) continue;
      const parsed = JSON.parse(line) as { url: string; adminUrl?: string };
      return { url: parsed.url.replace('localhost', '127.0.0.1'), ...(parsed.adminUrl ? { adminUrl: parsed.adminUrl } : {}) } as Server;
    }
    return undefined;
  }, env);
}

async function stop(server: Server): Promise<void> {
  const exited = new Promise((done) => server.child.once('exit', done));
  server.child.kill('SIGTERM');
  await exited;
}

/**
 * CPU seconds and RSS of a process and its children (workers), from /proc; and the CPU seconds of
 * the root's main thread alone (the event loop: HTTP, SigV4, the pipeline), apart from its other
 * threads (PKCS#11 worker threads, V8's GC helpers, libuv's pool), which share its one core.
 */
function sampleProcessTree(rootPid: number): { cpuSeconds: number; mainThreadCpuSeconds: number; rssMb: number } {
  const pids = new Set<number>([rootPid]);
  let grew = true;
  const stats = readdirSync('/proc').filter((d) => /^\d+$/.test(d)).map((d) => {
    const stat = readStat(`/proc/${d}/stat`);
    return stat && { pid: Number(d), ...stat };
  }).filter((s): s is { pid: number; ppid: number; ticks: number } => s !== undefined);
  while (grew) {
    grew = false;
    for (const s of stats) if (pids.has(s.ppid) && !pids.has(s.pid)) { pids.add(s.pid); grew = true; }
  }
  let ticks = 0;
  let rssKb = 0;
  for (const s of stats) {
    if (!pids.has(s.pid)) continue;
    ticks += s.ticks;
    const match = /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${s.pid}/status`, 'utf8'));
    // taskset execs node in place, so the root pid is node itself.
    rssKb += Number(match?.[1] ?? 0);
  }
  // With workers (child processes) the root is the primary, whose main thread serves nothing.
  const mainThreadTicks = pids.size === 1 ? readStat(`/proc/${rootPid}/task/${rootPid}/stat`)?.ticks ?? Number.NaN : Number.NaN;
  return { cpuSeconds: ticks / 100, mainThreadCpuSeconds: mainThreadTicks / 100, rssMb: rssKb / 1024 };
}

/** Parent pid and user + system CPU ticks from a /proc stat file (a process's or a thread's); undefined once it is gone. */
function readStat(path: string): { ppid: number; ticks: number } | undefined {
  try {
    const stat = readFileSync(path, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return { ppid: Number(fields[1]), ticks: Number(fields[11]) + Number(fields[12]) };
  } catch {
    return undefined;
  }
}

// ---- load --------------------------------------------------------------------------------

interface SignedRequest {
  method: 'POST';
  path: string;
  headers: Record<string, string>;
  body: string;
  /** The same request signed again now (SigV4 signatures expire after 5 minutes); unsigned ones have none. */
  resign?(): Promise<SignedRequest>;
  /** How long the proxy's answer body to it is: the plain HTTPS control answers as much. */
  answerBytes?: number;
}

async function sign(baseUrl: string, credential: Sigv4Credential, path: string, body: object): Promise<SignedRequest> {
  const url = new URL(baseUrl);
  const payload = JSON.stringify(body);
  const signer = new SignatureV4({ service: 'kms-xks-proxy', region: 'us-east-1', credentials: credential, sha256: Sha256 });
  const signed = await signer.sign(
    new HttpRequest({ method: 'POST', protocol: 'https:', hostname: url.hostname, port: Number(url.port), path, headers: { host: url.host, 'content-type': 'application/json' }, body: payload }),
  );
  return { method: 'POST', path, headers: signed.headers as Record<string, string>, body: payload, resign: () => sign(baseUrl, credential, path, body) };
}

/** What a load run reports, whichever generator made it; total = requests the server answered. */
interface LoadSummary extends LoadFigures {
  total: number;
  /** What the row's note should say about this run (the paced runs: stalls, the generator's lag). */
  note?: string;
}

/** Closed loop: `connections` keep-alive connections, each sending its next request on an answer. */
async function load(url: string, requests: SignedRequest[], connections: number, seconds: number): Promise<LoadSummary> {
  const result = await autocannon({
    url,
    connections,
    duration: seconds,
    requests: requests.map((r) => ({ method: r.method, path: r.path, headers: r.headers, body: r.body })),
    timeout: 10,
  });
  return {
    reqPerSec: Math.round(result.requests.average),
    p50: result.latency.p50,
    p90: result.latency.p90,
    p99: result.latency.p99,
    max: result.latency.max,
    errors: result.errors + result.non2xx + result.timeouts,
    total: result.requests.total,
  };
}

/** Open loop at a fixed, evenly paced rate (see paced-load.ts for why not autocannon's -R). */
async function pacedRun(url: string, requests: SignedRequest[], rate: number, seconds: number, onRecordingStart?: () => void): Promise<LoadSummary> {
  const result = await pacedLoad({
    url, requests, rate, seconds, connections: PACED_CONNECTIONS, warmupSeconds: PACED_WARMUP_SECONDS, resign: () => Promise.all(requests.map((r) => r.resign?.() ?? r)), ...(onRecordingStart ? { onRecordingStart } : {}),
  });
  // CPU per request counts every request the server saw, answered in time or not, warm-up included:
  // measured() takes the CPU of the whole run, warm-up too (counting only the recorded requests
  // charged a 20 s sizing row 25 % too much per request).
  // With --server-log: when the recorded part began, to line slow windows up with the server's traces.
  if (SERVER_LOG) process.stderr.write(`  measured from ${result.measuredFrom}\n`);
  const failed = Object.entries(result.statuses).filter(([status]) => !status.startsWith('2'));
  const errors = failed.length ? `; errors by answer: ${failed.map(([status, n]) => `${status} ${String(n)}`).join(', ')}` : '';
  const note = `generator's own event-loop lag p99 ${String(result.generatorLagP99Ms)} ms, max ${String(result.generatorLagMaxMs)} ms; ${result.slowWindows}${errors}`;
  process.stderr.write(`  ${note}\n`);
  return { ...result, total: result.sentIncludingWarmup, note };
}

/** The KMS-shaped mix, signed now: the 5-minute SigV4 window starts here. */
async function signedKmsMix(env: Env, url: string): Promise<SignedRequest[]> {
  return kmsMix(await scenarioBodies(env, url));
}

/**
 * For a single KMS-shaped run (--scenario, --profile). --after-closed-loop first runs the full run's
 * closed-loop phase (every scenario at each --concurrency), to see whether what it leaves behind
 * changes the open-loop figures; the mix is then signed afresh, as that phase uses up the window.
 */
async function kmsMixForOneRun(env: Env, url: string, bodies: Record<string, SignedRequest>): Promise<SignedRequest[]> {
  if (!args.has('after-closed-loop')) return oneRunMix(bodies);
  for (const request of Object.values(bodies)) for (const c of CONCURRENCIES) await load(url, [request], c, DURATION);
  return oneRunMix(await scenarioBodies(env, url));
}

/** --mix=<scenario>[,<scenario>...]: what a single paced run sends in turn instead of the KMS-shaped mix (e.g. one operation alone). */
function oneRunMix(bodies: Record<string, SignedRequest>): SignedRequest[] {
  const names = args.get('mix')?.split(',');
  if (names === undefined) return kmsMix(bodies);
  return names.map((name) => {
    const request = bodies[name];
    if (!request) throw new Error(`--mix names proxy scenarios (${Object.keys(bodies).join(', ')}), got "${name}"`);
    return request;
  });
}

function toRow(scenario: string, concurrency: number | string, result: LoadSummary, server?: { cpu: number; mainThreadCpu: number; rss: number; seconds: number }): Row {
  return {
    scenario,
    concurrency,
    reqPerSec: result.reqPerSec,
    p50: result.p50,
    p90: result.p90,
    p99: result.p99,
    max: result.max,
    errors: result.errors,
    ...(server
      ? {
          serverCpuPct: Math.round((server.cpu / server.seconds) * 100),
          ...(result.total > 0 ? { cpuUsPerReq: Math.round((server.cpu * 1e6) / result.total) } : {}),
          ...(result.total > 0 && Number.isFinite(server.mainThreadCpu) ? { mainThreadCpuUsPerReq: Math.round((server.mainThreadCpu * 1e6) / result.total) } : {}),
          serverRssMb: Math.round(server.rss),
        }
      : {}),
  };
}

async function measured(server: Server, scenario: string, concurrency: number | string, run: () => Promise<LoadSummary>): Promise<Row> {
  const pid = server.child.pid as number;
  const before = sampleProcessTree(pid);
  const started = Date.now();
  const result = await run();
  const after = sampleProcessTree(pid);
  const row = toRow(scenario, concurrency, result, {
    cpu: after.cpuSeconds - before.cpuSeconds,
    mainThreadCpu: after.mainThreadCpuSeconds - before.mainThreadCpuSeconds,
    rss: after.rssMb,
    seconds: (Date.now() - started) / 1000,
  });
  if (result.note) row.note = result.note;
  process.stderr.write(`${scenario} c=${concurrency}: ${row.reqPerSec} req/s p50 ${row.p50} p90 ${row.p90} p99 ${row.p99} ms errors ${row.errors} CPU ${row.cpuUsPerReq ?? '?'} µs/req (main thread ${row.mainThreadCpuUsPerReq ?? '?'})\n`);
  return row;
}

// ---- scenarios ---------------------------------------------------------------------------

const metadata = (op: string) => ({
  awsPrincipalArn: 'arn:aws:iam::123456789012:user/Alice',
  kmsKeyArn: 'arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab',
  kmsOperation: op,
  kmsRequestId: '4112f4d6-db54-4af4-ae30-c55a22a8dfae',
});

async function scenarioBodies(env: Env, url: string): Promise<Record<string, SignedRequest>> {
  const key = `/kms/xks/v1/keys/${env.keyLabel}`;
  const aad = randomBytes(8192).toString('base64');
  const encrypt = (bytes: number) => ({ requestMetadata: metadata('Encrypt'), plaintext: randomBytes(bytes).toString('base64'), additionalAuthenticatedData: aad, encryptionAlgorithm: 'AES_GCM' });
  const enc4300 = await sign(url, env.credential, `${key}/encrypt`, encrypt(4300));
  // A real ciphertext to decrypt: ask the proxy (again after a 503: the first HSM calls of a fresh
  // process can miss the 200 ms deadline on a loaded machine, which used to abort the whole run).
  let res: Record<string, string> | undefined;
  for (let attempt = 1; res === undefined; attempt++) {
    res = await fetchJson(url, enc4300).catch((err: Error) => {
      if (attempt >= 5 || !err.message.startsWith('503')) throw err;
      return new Promise<undefined>((done) => setTimeout(() => done(undefined), 200));
    });
  }
  const decryptBody = { requestMetadata: metadata('Decrypt'), encryptionAlgorithm: 'AES_GCM', additionalAuthenticatedData: aad, ...res };
  const bodies: Record<string, SignedRequest> = {
    'Encrypt 32 B': await sign(url, env.credential, `${key}/encrypt`, encrypt(32)),
    'Encrypt 4300 B': enc4300,
    'Decrypt 4300 B': await sign(url, env.credential, `${key}/decrypt`, decryptBody),
    GetKeyMetadata: await sign(url, env.credential, `${key}/metadata`, { requestMetadata: { ...metadata('DescribeKey') } }),
    GetHealthStatus: await sign(url, env.credential, '/kms/xks/v1/health', { requestMetadata: { kmsOperation: 'KmsHealthCheck', kmsRequestId: 'bench' } }),
  };
  for (const request of Object.values(bodies)) request.answerBytes = (await fetchText(url, request)).length;
  return bodies;
}

/** The KMS-shaped mix: small encrypts and 4300-byte decrypts, alternating. */
function kmsMix(bodies: Record<string, SignedRequest>): SignedRequest[] {
  return [bodies['Encrypt 32 B'] as SignedRequest, bodies['Decrypt 4300 B'] as SignedRequest];
}

async function fetchJson(baseUrl: string, request: SignedRequest): Promise<Record<string, string>> {
  return JSON.parse((await fetchText(baseUrl, request)).toString()) as Record<string, string>;
}

/** The answer body of a 200 (anything else rejects with its status and body). */
async function fetchText(baseUrl: string, request: SignedRequest): Promise<Buffer> {
  const { request: httpsRequest } = await import('node:https');
  const url = new URL(baseUrl);
  return new Promise((resolve, reject) => {
    const req = httpsRequest({ host: url.hostname, port: url.port, path: request.path, method: 'POST', headers: request.headers, rejectUnauthorized: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (d: Buffer) => chunks.push(d));
      res.on('end', () => {
        const body = Buffer.concat(chunks);
        if (res.statusCode === 200) resolve(body);
        else reject(new Error(`${String(res.statusCode)} ${body.toString()}`));
      });
    });
    req.on('error', reject);
    req.end(request.body);
  });
}

// ---- the limit L = 1 / (t_https + t_hsm) (issue #16) -------------------------------------

/**
 * The HSM work one request of a scenario needs (bench/raw-hsm-work.ts). GetKeyMetadata reads the key
 * state cache (keys.stateCacheMs), so its HSM lookups are amortised over every request of the period:
 * ~0; GetHealthStatus answers from the health monitor's cached result: 0.
 */
const HSM_WORK: Record<string, { op: 'encrypt' | 'decrypt'; bytes: number } | undefined> = {
  'Encrypt 32 B': { op: 'encrypt', bytes: 32 },
  'Encrypt 4300 B': { op: 'encrypt', bytes: 4300 },
  'Decrypt 4300 B': { op: 'decrypt', bytes: 4300 },
};

interface LimitRow {
  scenario: string;
  proxyReqPerSec: number;
  proxyCpuUs: number;
  /** Of proxyCpuUs, the main thread's; the rest is the PKCS#11 worker threads' (and GC helpers'). */
  proxyMainThreadUs: number;
  /** Plain node:https closed loop, holding CPU so it answers at about the proxy's rate: the t_https in L. */
  tHttpsUs: number;
  /** Plain node:https open loop at the proxy's rate: the client is awake for most answers. */
  tHttpsPacedUs: number;
  /** The rate the held control reached (compare proxyReqPerSec). */
  controlReqPerSec: number;
  /** Every pair (a proxy run, then its control): the row's figures are the pair with the median overhead. */
  pairs: Array<{ proxyCpuUs: number; proxyReqPerSec: number; tHttpsUs: number; controlReqPerSec: number; tHsmUs: number; overheadUs: number; floorCpuUs?: number; floorMainThreadUs?: number; floorReqPerSec?: number; floorPartsCpuUs?: number; floorPartsMainThreadUs?: number; floorPartsReqPerSec?: number }>;
  tHsmUs: number;
  /** The floor (bench/floor-server.ts) in the median pair, at its own rate; not for Cedar rows. */
  floorCpuUs?: number;
  /** Of floorCpuUs, the main thread's: set against proxyMainThreadUs, it tells on which side of the hand-off the proxy pays more. */
  floorMainThreadUs?: number;
  /** floorCpuUs − t_https − t_hsm: the overhead any Node proxy pays here; the proxy's overhead above it is its own. */
  floorOverheadUs?: number;
  /** The floor running the proxy's required parts (REQUIRED_PARTS) in the median pair; runs before the sixteenth round had none. */
  floorPartsCpuUs?: number;
  floorPartsMainThreadUs?: number;
  /** floorPartsCpuUs − t_https − t_hsm: the least overhead a proxy with those behaviours pays here. */
  floorPartsOverheadUs?: number;
  limitReqPerSec: number;
  overheadUs: number;
  ratio: number;
}

/**
 * t_hsm in µs: raw pkcs11js on the servers' core, one 4 s run. Taken anew in each limit pair, right
 * after its control run: a figure from another minute of this drifting VM once read 157 µs for the
 * work that read 89 in the run before, and moved that row's overhead by as much.
 */
function hsmWorkUs(env: Env, scenario: string): number {
  const work = HSM_WORK[scenario.replace(/^Cedar /, '')];
  if (!work) return 0;
  const out = JSON.parse(
    execFileSync(...pinned(process.execPath, [join(ROOT, 'dist/bench/raw-hsm-work.js'), SOFTHSM_MODULE_PATH, env.tokenLabel, env.keyLabel, work.op, String(work.bytes), String(Math.min(DURATION, 4))], '0'), { env: process.env, encoding: 'utf8' }),
  ) as { cpuUsPerOp: number };
  return out.cpuUsPerOp;
}

/** Idle after each job in the paced HSM figures: ~1,800 req/s leaves ~0.55 ms between requests. */
const PACE_GAP_MS = 0.5;

/**
 * What one Encrypt's HSM work costs when it runs alone after an idle gap, as at KMS rates where
 * requests do not queue: raw pkcs11js, and the proxy's HSM layer (one job, a thread hand-off each
 * way). Set against t_hsm and the layer at c=32, it shows what of a paced request's extra cost is
 * the machine (cold caches after idle) and what the layer pays per lone job.
 */
function pacedHsmCosts(env: Env): { rawUs: number; idleUs: number; layerUs: number } {
  const run = (script: string, argv: string[]): { cpuUsPerOp: number; idleUsPerOp?: number } =>
    JSON.parse(
      execFileSync(...pinned(process.execPath, [join(ROOT, 'dist/bench', script), SOFTHSM_MODULE_PATH, env.tokenLabel, env.keyLabel, ...argv], '0'), {
        env: { ...process.env, PACE_GAP_MS: String(PACE_GAP_MS) },
        encoding: 'utf8',
      }),
    ) as { cpuUsPerOp: number; idleUsPerOp?: number };
  const seconds = String(Math.min(DURATION, 4));
  const raw = run('raw-hsm-work.js', ['encrypt', '4300', seconds]);
  return {
    rawUs: Math.round(raw.cpuUsPerOp),
    idleUs: Math.round(raw.idleUsPerOp ?? 0),
    layerUs: Math.round(run('hsm-layer.js', [String(POOL), '1', seconds]).cpuUsPerOp),
  };
}

/**
 * t_https paced, in µs: plain node:https (pinned like the proxy) answering the scenario's own requests,
 * open loop at `rate` over as many keep-alive connections as the proxy row had. Its cost per
 * request falls steeply with the rate (batching per event-loop turn), so it is measured at the
 * proxy's achieved rate, not at its own ceiling. CPU is sampled after the first second, which
 * opens the connections (TLS handshakes) and warms the JIT. The first guess for plainHttpsMatchedUs.
 */
async function plainHttpsUsAt(env: Env, request: SignedRequest, rate: number, connections: number): Promise<number> {
  return (await plainHttpsAt(env, [request], rate, connections)).cpuUs;
}

/** Plain node:https answering `requests` open loop at `rate`: CPU µs per request and the load's latencies. */
async function plainHttpsAt(env: Env, requests: SignedRequest[], rate: number, connections: number): Promise<{ cpuUs: number; figures: LoadFigures }> {
  const plain = await startPlainHttps(env, 0, requests);
  const pid = plain.child.pid as number;
  const warmup = 1;
  let before: ReturnType<typeof sampleProcessTree> | undefined;
  const sampler = setTimeout(() => (before = sampleProcessTree(pid)), warmup * 1000);
  const figures = await pacedLoad({ url: plain.url, requests, rate, seconds: DURATION, connections, warmupSeconds: warmup });
  clearTimeout(sampler);
  const after = sampleProcessTree(pid);
  await stop(plain);
  const cpuUs = before ? ((after.cpuSeconds - before.cpuSeconds) * 1e6) / Math.round(rate * DURATION) : Number.NaN;
  return { cpuUs, figures };
}

/**
 * t_https in µs, in the proxy row's own regime: closed loop at its concurrency, against plain
 * node:https holding `holdUs` of CPU per request, so the client waits as long as on the proxy. At the
 * same rate an open-loop client is still busy when most answers arrive, a closed-loop client waiting
 * on a slow server is asleep, and waking it inside the server's write cost ~20 µs per answer here
 * (bench/plain-https-server.ts). Returns the CPU per request less the held CPU, and the rate reached.
 */
async function plainHttpsHeld(env: Env, request: SignedRequest, connections: number, holdUs: number): Promise<{ cpuUs: number; reqPerSec: number }> {
  const plain = await startPlainHttps(env, holdUs, [request]);
  const row = await measured(plain, `Control: plain node:https holding ${Math.round(holdUs)} µs`, connections, () => load(plain.url, [request], connections, DURATION));
  await stop(plain);
  return { cpuUs: (row.cpuUsPerReq ?? Number.NaN) - holdUs, reqPerSec: row.reqPerSec };
}

/** startProcess's readiness check for the bench's own servers, which print their port on stdout. */
function portOnStdout(out: string): Server | undefined {
  return out.includes('\n') ? ({ url: `https://127.0.0.1:${out.trim()}` } as Server) : undefined;
}

/** Tries a paired run this many times before the bench gives up on it. */
const PAIRED_RUN_ATTEMPTS = 3;

/**
 * A paired proxy run without error answers: a run that had some (a VM stall past the 200 ms
 * deadline answers 503) is run again, up to PAIRED_RUN_ATTEMPTS times, rather than ending a
 * 30-minute benchmark; its CPU per request would not be the operation's.
 */
async function cleanC32(server: Server, scenario: string, request: SignedRequest): Promise<Row> {
  for (let attempt = 1; ; attempt++) {
    const proxy = await runC32(server, `Proxy ${scenario}`, request);
    if (proxy.errors === 0) return proxy;
    if (attempt === PAIRED_RUN_ATTEMPTS) throw new Error(`${scenario}: error answers in ${attempt} paired runs in a row (${proxy.errors} in the last); its CPU per request is not the operation's`);
    process.stderr.write(`${scenario}: ${proxy.errors} error answers in a paired run; running it again\n`);
  }
}

/**
 * The behaviours #16 requires the proxy to keep that the floor leaves out, run by the floor with the
 * proxy's own code for them (bench/floor-server.ts, FLOOR_PARTS): what a proxy that keeps them pays
 * at least, so what the proxy costs above that is its own plumbing (admission, deadlines, key lookup,
 * the HSM layer, spec errors).
 */
const REQUIRED_PARTS = 'validate,log,metrics,headers,sigv4,strict-json';

/** Unmeasured load on each fresh floor before it is measured against a warm proxy. */
const FLOOR_WARMUP_SECONDS = 2;

/**
 * The floor (bench/floor-server.ts) answering `request` closed loop at c=32, at its own rate. Not
 * held to the proxy's rate as the control is: burning CPU on its event loop changes how its jobs
 * batch on the PKCS#11 thread (held, it cost 70-200 µs more per request in a first full run), so
 * unheld it is a lower bound, being faster. A fresh floor each time, warmed up for FLOOR_WARMUP_SECONDS
 * first (until the fourteenth round it was measured cold). Returns its CPU per request and the rate reached.
 * Refuses a run with error answers (a request the floor could not verify or decrypt): its CPU
 * would not be the operation's.
 */
async function floorRun(env: Env, request: SignedRequest, parts = '', bodies?: Record<string, SignedRequest>): Promise<FloorFigures> {
  const floor = await startFloor(env, parts);
  // --floor-history: the floors serve what --history makes the proxy serve, so both sides have it.
  if (bodies && args.has('floor-history')) for (const r of Object.values(bodies)) for (const c of [32, 256]) await load(floor.url, [r], c, DURATION / 2);
  // Unmeasured first, as the proxy it is set against is warm: compiling the floor's code is not a request's cost.
  await load(floor.url, [request], 32, FLOOR_WARMUP_SECONDS);
  const row = await measured(floor, 'Floor', 32, () => load(floor.url, [request], 32, DURATION));
  await stop(floor);
  if (row.errors > 0) throw new Error(`the floor answered ${row.errors} requests with an error`);
  return { cpuUs: row.cpuUsPerReq ?? Number.NaN, reqPerSec: row.reqPerSec, mainThreadUs: row.mainThreadCpuUsPerReq ?? Number.NaN };
}

/** `parts`: the proxy's own code the floor runs too (FLOOR_PARTS in bench/floor-server.ts); none by default. */
function startFloor(env: Env, parts = ''): Promise<Server> {
  const argv = [join(ROOT, 'dist/bench/floor-server.js'), env.certFile, env.keyFile, SOFTHSM_MODULE_PATH, env.tokenLabel, env.keyLabel];
  return startProcess(process.execPath, argv, '0', portOnStdout, {
    ...process.env,
    XKS_HSM_PIN: env.pin,
    FLOOR_SECRET: env.credential.secretAccessKey,
    FLOOR_ACCESS_KEY_ID: env.credential.accessKeyId,
    FLOOR_PARTS: parts,
  });
}

/**
 * --floor-parts=<validate,log,metrics,headers,sigv4,strict-json> with --scenario=<name>: what the
 * proxy's own code for those parts costs on top of the floor, and what the rest of the proxy costs
 * on top of that. Per
 * round, at c=32, each on a fresh server after a warm-up, in rotating order: the floor, the floor
 * running those parts, the proxy. If the proxy costs little more than the floor with its required
 * parts, those parts are what stands between it and the floor.
 */
async function floorParts(env: Env, configPath: string): Promise<void> {
  const name = args.get('scenario') as string;
  const parts = args.get('floor-parts') as string;
  const rounds = Number(args.get('rounds') ?? 6);
  const kinds = ['floor', 'floor with parts', 'proxy'] as const;
  const cpu: Record<(typeof kinds)[number], number[]> = { floor: [], 'floor with parts': [], proxy: [] };
  for (let r = 0; r < rounds; r++) {
    // Signed again each round (SigV4's 5-minute window); Decrypt's ciphertext comes from a proxy.
    const signer = await startProxy(configPath);
    const bodies = await scenarioBodies(env, signer.url);
    const request = bodies[name];
    await stop(signer);
    if (!request) throw new Error(`--floor-parts needs --scenario set to one of the proxy scenarios, got "${name}"`);
    for (const kind of [...kinds.slice(r % 3), ...kinds.slice(0, r % 3)]) {
      if (kind !== 'proxy') {
        cpu[kind].push((await floorRun(env, request, kind === 'floor' ? '' : parts, bodies)).cpuUs);
        continue;
      }
      const proxy = await startProxy(configPath);
      await serveHistory(proxy, bodies);
      await warmUp(proxy, request);
      cpu.proxy.push((await cleanC32(proxy, name, request)).cpuUsPerReq ?? Number.NaN);
      await stop(proxy);
    }
    process.stderr.write(`round ${String(r + 1)}: ${kinds.map((kind) => `${kind} ${String(cpu[kind][r])}`).join(', ')} µs/req\n`);
  }
  const differences = (of: number[], from: number[]): string => {
    const diffs = of.map((v, i) => round(v - (from[i] as number))).sort((x, y) => x - y);
    return `median ${String(middle(diffs))} µs (${diffs.join(', ')})`;
  };
  process.stderr.write(
    `\n${name}, c=32, ${String(rounds)} rounds of ${String(DURATION)} s; parts: ${parts}\n` +
      `medians: ${kinds.map((kind) => `${kind} ${String(middle(cpu[kind]))}`).join(', ')} µs/req\n` +
      `the parts on the floor: ${differences(cpu['floor with parts'], cpu.floor)}\n` +
      `the proxy above the floor with the parts: ${differences(cpu.proxy, cpu['floor with parts'])}\n`,
  );
}

/** A floor run at c=32: its CPU per request, of which its main thread's (the rest is its PKCS#11 thread's and GC's), and its rate. */
interface FloorFigures {
  cpuUs: number;
  mainThreadUs: number;
  reqPerSec: number;
}

/** One trial rate of the floor's sizing: whether it held the targets there, and its figures. */
interface FloorTrial {
  rate: number;
  p99: number;
  errors: number;
  cpuUsPerReq: number | null;
  held: boolean;
}

/** The floor's sizing trials and the highest rate it held (summary.floorSizing). */
interface FloorSizing {
  trials: FloorTrial[];
  sustained: number | null;
}

/**
 * The floor (bench/floor-server.ts) under the proxy's sizing trials: the KMS-shaped mix, open loop,
 * evenly paced, SUSTAIN_SECONDS per rate, from `fromRate` up the trial rates until one misses p99 <= 20 ms
 * or has errors (the floor has no event-loop metric; its lag shows in p99). What it holds is about
 * the most any Node proxy with its PKCS#11 work off the event loop holds on this core, so a sizing
 * target above it is out of reach for the proxy too.
 */
async function floorSizing(env: Env, rows: Row[], fromRate: number): Promise<FloorSizing> {
  const floor = await startFloor(env);
  const trials: FloorTrial[] = [];
  try {
    for (const rate of SUSTAIN_RATES.filter((r) => r >= fromRate)) {
      const requests = await signedKmsMix(env, floor.url);
      const row = await measured(floor, `Floor, KMS-shaped sizing: ${rate} req/s offered, evenly paced, ${SUSTAIN_SECONDS} s`, `open loop, <= ${PACED_CONNECTIONS} conns`, () => pacedRun(floor.url, requests, rate, SUSTAIN_SECONDS));
      const held = row.p99 <= 20 && row.errors === 0;
      trials.push({ rate, p99: row.p99, errors: row.errors, cpuUsPerReq: row.cpuUsPerReq ?? null, held });
      if (!held) row.note = `${row.note ?? ''}; over the targets: stopped here`;
      rows.push(row);
      if (!held) break;
    }
  } finally {
    await stop(floor);
  }
  const sustained = trials.filter((t) => t.held).pop()?.rate ?? null;
  process.stderr.write(`floor sizing: ${trials.map((t) => `${t.rate} req/s p99 ${t.p99} ms, ${t.errors} errors`).join('; ')}; holds ${String(sustained)}\n`);
  return { trials, sustained };
}

/**
 * Plain node:https as the control for `requests`: it answers each with a body as long as the proxy's
 * answer to it (told apart by the request body's length), since writing that answer through TLS is
 * HTTPS work any proxy does (an 11-byte answer left 0-7 µs of a 5.8 KB answer's cost, 3 pairs, in the
 * proxy's overhead).
 */
function startPlainHttps(env: Env, holdUs: number, requests: SignedRequest[]): Promise<Server> {
  const answers = Object.fromEntries(requests.filter((r) => r.answerBytes !== undefined).map((r) => [Buffer.byteLength(r.body), r.answerBytes]));
  return startProcess(process.execPath, [join(ROOT, 'dist/bench/plain-https-server.js'), env.certFile, env.keyFile, String(Math.round(holdUs)), JSON.stringify(answers)], '0', portOnStdout);
}

/**
 * The proxy against L in pairs, on the same core: STEADY_RUNS times, a c=32 run of the proxy and
 * right after it the control (plain node:https holding what that run cost beyond the last t_https, so
 * it answers at about the proxy's rate), then t_hsm (raw pkcs11js). Each pair's runs see the same machine; runs minutes apart
 * on this VM differed by up to ~90 µs per request, more than the overhead targets leave. The row is
 * the pair with the median overhead (so its columns add up); every pair's figures are in latest.json.
 * First a paced run (t_https paced, the first guess) and a calibration run of the control, since the
 * hold that matches the proxy's rate depends on t_https itself. Returns the pairs' proxy runs too, and the median pair's.
 */
async function pairedLimit(env: Env, server: Server, name: string, scenario: string, first: Row): Promise<{ limit: LimitRow; proxyRuns: Row[]; medianRun: Row }> {
  const cpu = (row: Row): number => row.cpuUsPerReq ?? Number.NaN;
  // Signed now: the pairs come minutes after the scenario's own runs, and SigV4 allows 5.
  const request = (await scenarioBodies(env, server.url))[name] as SignedRequest;
  const tHttpsPaced = await plainHttpsUsAt(env, request, first.reqPerSec, 32);
  let tHttpsEstimate = (await plainHttpsHeld(env, request, 32, Math.max(0, cpu(first) - tHttpsPaced))).cpuUs;
  // The floor is the plain proxy's: with Cedar it would need a policy engine of its own.
  const withFloor = name === scenario;
  const pairs: Array<{ proxy: Row; control: { cpuUs: number; reqPerSec: number }; tHsm: number; overheadUs: number; floor?: FloorFigures; floorParts?: FloorFigures }> = [];
  for (let i = 0; i < STEADY_RUNS; i++) {
    const proxy = await cleanC32(server, scenario, request);
    const control = await plainHttpsHeld(env, request, 32, Math.max(0, cpu(proxy) - tHttpsEstimate));
    tHttpsEstimate = control.cpuUs;
    const floor = withFloor ? await floorRun(env, request) : undefined;
    const floorParts = withFloor ? await floorRun(env, request, REQUIRED_PARTS) : undefined;
    const tHsm = hsmWorkUs(env, scenario);
    pairs.push({ proxy, control, tHsm, overheadUs: cpu(proxy) - control.cpuUs - tHsm, ...(floor ? { floor } : {}), ...(floorParts ? { floorParts } : {}) });
  }
  const median = [...pairs].sort((x, y) => x.overheadUs - y.overheadUs)[Math.floor((pairs.length - 1) / 2)] as (typeof pairs)[number];
  const tHttps = median.control.cpuUs;
  const tHsm = median.tHsm;
  const limit = 1e6 / (tHttps + tHsm);
  const row: LimitRow = {
    scenario,
    proxyReqPerSec: median.proxy.reqPerSec,
    proxyCpuUs: cpu(median.proxy),
    proxyMainThreadUs: median.proxy.mainThreadCpuUsPerReq ?? Number.NaN,
    tHttpsUs: Math.round(tHttps),
    tHttpsPacedUs: Math.round(tHttpsPaced),
    controlReqPerSec: median.control.reqPerSec,
    pairs: pairs.map((p) => ({
      proxyCpuUs: cpu(p.proxy),
      proxyReqPerSec: p.proxy.reqPerSec,
      tHttpsUs: Math.round(p.control.cpuUs),
      controlReqPerSec: p.control.reqPerSec,
      tHsmUs: Math.round(p.tHsm),
      overheadUs: Math.round(p.overheadUs),
      ...(p.floor ? { floorCpuUs: Math.round(p.floor.cpuUs), floorMainThreadUs: p.floor.mainThreadUs, floorReqPerSec: p.floor.reqPerSec } : {}),
      ...(p.floorParts ? { floorPartsCpuUs: Math.round(p.floorParts.cpuUs), floorPartsMainThreadUs: p.floorParts.mainThreadUs, floorPartsReqPerSec: p.floorParts.reqPerSec } : {}),
    })),
    tHsmUs: Math.round(tHsm),
    ...(median.floor ? { floorCpuUs: Math.round(median.floor.cpuUs), floorMainThreadUs: median.floor.mainThreadUs, floorOverheadUs: Math.round(median.floor.cpuUs - tHttps - tHsm) } : {}),
    ...(median.floorParts ? { floorPartsCpuUs: Math.round(median.floorParts.cpuUs), floorPartsMainThreadUs: median.floorParts.mainThreadUs, floorPartsOverheadUs: Math.round(median.floorParts.cpuUs - tHttps - tHsm) } : {}),
    limitReqPerSec: Math.round(limit),
    overheadUs: Math.round(median.overheadUs),
    ratio: round(median.proxy.reqPerSec / limit),
  };
  const pairText = row.pairs
    .map((p) => {
      const floors = `${p.floorCpuUs === undefined ? '' : `; floor ${p.floorCpuUs} µs (main thread ${String(p.floorMainThreadUs)}) at ${String(p.floorReqPerSec)} req/s`}${p.floorPartsCpuUs === undefined ? '' : `, with the required parts ${p.floorPartsCpuUs} µs (main thread ${String(p.floorPartsMainThreadUs)}) at ${String(p.floorPartsReqPerSec)} req/s`}`;
      return `${p.proxyCpuUs} − ${p.tHttpsUs} − ${p.tHsmUs} (${p.proxyReqPerSec} / ${p.controlReqPerSec} req/s${floors})`;
    })
    .join(', ');
  const floorText =
    (row.floorOverheadUs === undefined ? '' : `, floor ${String(row.floorCpuUs)} µs/req (overhead ${row.floorOverheadUs} µs)`) +
    (row.floorPartsOverheadUs === undefined ? '' : `, with the required parts ${String(row.floorPartsCpuUs)} µs/req (overhead ${row.floorPartsOverheadUs} µs)`);
  process.stderr.write(`limit ${scenario}: proxy ${row.proxyCpuUs} µs/req (main thread ${row.proxyMainThreadUs}) at ${row.proxyReqPerSec} req/s, t_https ${row.tHttpsUs} µs (control at ${row.controlReqPerSec} req/s; paced ${row.tHttpsPacedUs} µs), t_hsm ${row.tHsmUs} µs, overhead ${row.overheadUs} µs (median of pairs, proxy − t_https − t_hsm: ${pairText})${floorText}, L ${row.limitReqPerSec} req/s, ratio ${row.ratio}\n`);
  return { limit: row, proxyRuns: pairs.map((p) => p.proxy), medianRun: median.proxy };
}

/**
 * Each operation's limit row, in pairs (pairedLimit), on `server` while it is up. Its c=32 row in
 * `rows` becomes the median pair's proxy run, its note naming every run behind the figure.
 */
async function limitRows(env: Env, server: Server, rows: Row[], bodies: Record<string, SignedRequest>, prefix = '', ceilingC32?: number): Promise<LimitRow[]> {
  const out: LimitRow[] = [];
  for (const name of Object.keys(bodies)) {
    const index = rows.findIndex((r) => r.scenario === `Proxy ${prefix}${name}` && r.concurrency === 32);
    if (index < 0) continue;
    const first = rows[index] as Row;
    const { limit, proxyRuns, medianRun: median } = await pairedLimit(env, server, name, `${prefix}${name}`, first);
    const figures = proxyRuns.map((r) => String(r.cpuUsPerReq)).join(', ');
    const before = first.note ?? `${String(first.cpuUsPerReq)} µs/req`;
    rows[index] = { ...median, ...(ceilingC32 ? { ratio: round(median.reqPerSec / ceilingC32) } : {}), note: `the median of the limit table's ${proxyRuns.length} pairs (this proxy's runs in them: ${figures} µs/req); before the pairs: ${before}` };
    out.push(limit);
  }
  return out;
}

/** Runs per operation behind each c=32 figure of the limit table, and pairs behind Cedar's cost. */
const STEADY_RUNS = 3;

interface CedarCost {
  /** Median over the pairs of (with Cedar − without) CPU µs per request. */
  medianUs: number;
  pairsUs: number[];
}

const runC32 = (server: Server, scenario: string, request: SignedRequest): Promise<Row> => measured(server, scenario, 32, () => load(server.url, [request], 32, DURATION));

/**
 * Cedar's cost (secondary authorization: a permit and a forbid, every request decided), measured
 * in pairs: the median difference of STEADY_RUNS pairs run back to back, in alternating order, on
 * two proxies started together and warmed up alike, one with the policy and one without (not
 * against the main proxy: its c=256 overloads leave it a larger heap, which read as Cedar costing
 * ~20 µs less). Each proxy idles (~1 % of the core) while the other is measured. Adds each
 * operation's median Cedar run to rows, then measures the Cedar proxy against L (limitRows).
 */
async function cedarCostInPairs(env: Env, rows: Row[]): Promise<{ cedarCosts: Record<string, CedarCost>; cedarLimits: LimitRow[] }> {
  const cpu = (row: Row): number => row.cpuUsPerReq ?? Number.NaN;
  const [without, withCedar] = await Promise.all([startProxy(writeConfig(env)), startProxy(writeConfig(env, { cedar: true }))]);
  const [plainAll, cedarAll] = await Promise.all([scenarioBodies(env, without.url), scenarioBodies(env, withCedar.url)]);
  const decided = (name: string): boolean => name !== 'GetHealthStatus' && name !== 'Encrypt 32 B';
  const cedarBodies = Object.fromEntries(Object.entries(cedarAll).filter(([name]) => decided(name)));
  for (const [name, request] of Object.entries(cedarBodies)) {
    await load(without.url, [plainAll[name] as SignedRequest], 32, DURATION);
    await load(withCedar.url, [request], 32, DURATION);
  }
  const cedarCosts: Record<string, CedarCost> = {};
  for (const [name, request] of Object.entries(cedarBodies)) {
    const plainRuns: Row[] = [];
    const cedarRuns: Row[] = [];
    for (let pair = 0; pair < STEADY_RUNS; pair++) {
      if (pair % 2 === 1) cedarRuns.push(await runC32(withCedar, `Proxy Cedar ${name}`, request));
      plainRuns.push(await runC32(without, `Paired: Proxy ${name}`, plainAll[name] as SignedRequest));
      if (pair % 2 === 0) cedarRuns.push(await runC32(withCedar, `Proxy Cedar ${name}`, request));
    }
    const pairsUs = cedarRuns.map((row, i) => Math.round(cpu(row) - cpu(plainRuns[i] as Row)));
    cedarCosts[name] = { medianUs: middle(pairsUs), pairsUs };
    process.stderr.write(`Cedar ${name}: added ${String(middle(pairsUs))} µs/req (median of pairs ${pairsUs.join(', ')})\n`);
    rows.push(medianRow(cedarRuns));
  }
  const cedarLimits = await limitRows(env, withCedar, rows, cedarBodies, 'Cedar ');
  await Promise.all([stop(without), stop(withCedar)]);
  return { cedarCosts, cedarLimits };
}

/** The run with the median CPU per request, its note naming every run's figure. */
function medianRow(runs: Row[]): Row {
  const sorted = [...runs].sort((a, b) => (a.cpuUsPerReq ?? 0) - (b.cpuUsPerReq ?? 0));
  const median = sorted[Math.floor((sorted.length - 1) / 2)] as Row;
  const figures = runs.map((r) => String(r.cpuUsPerReq)).join(', ');
  return { ...median, note: [`median of ${runs.length} runs by CPU per request (${figures} µs/req)`, median.note].filter(Boolean).join('; ') };
}

/** What the floor with each required part runs (FLOOR_PARTS in bench/floor-server.ts). */
const PART_TEXT: Record<string, string> = {
  validate: 'the compiled Ajv validators, which decode the Base64 the floor decodes',
  log: 'the request log line through the proxy\'s logger',
  metrics: 'the request and HSM-call metrics',
  headers: 'the helmet security headers',
  sigv4: 'the proxy\'s SigV4 verifier in place of the floor\'s, with its clock-skew, scope and signed-header checks and the access key\'s secret looked up',
  'strict-json': 'the strict JSON parse that refuses a repeated member name',
};

/** `parts`: the run's REQUIRED_PARTS (summary.floorParts); runs before the seventeenth round had the first four. */
const floorText = (parts: string): string =>
  `The floor is the least a Node XKS proxy must do per request here, and nothing else (bench/floor-server.ts): read the body, verify SigV4 (the body's SHA-256, the canonical request, one HMAC), JSON.parse, decode the Base64 fields, hand the HSM work to one PKCS#11 thread (a batch per event-loop turn in one transferred ArrayBuffer, with the proxy's own codec, as the proxy does) and answer the JSON; no validation, log line, metrics, admission, deadlines, key lookup or spec errors. It is measured in each pair after the control, at its own rate (closed loop, c=32), after an unmeasured ${String(FLOOR_WARMUP_SECONDS)} s warm-up; unlike the control it is not held to the proxy's rate, since burning CPU on its event loop changes how its jobs batch on the PKCS#11 thread, so it runs faster than the proxy and is a lower bound. Its overhead is floor − t_https − t_hsm of that pair: about what any proxy pays on this machine, so the proxy's overhead less the floor's is about what its own pipeline adds. Right after it, each pair runs the floor once more with the proxy's own code for the behaviours the targets' issue (#16) says to keep and the floor leaves out (${parts}: ${parts.split(',').map((part) => PART_TEXT[part] ?? part).join('; ')}), the same way: the least overhead a proxy that keeps those pays here, so the proxy's overhead above that is its own plumbing (admission, deadlines, key lookup, the HSM layer, spec errors).`;

function renderLimitTable(rows: LimitRow[], parts: string): string[] {
  if (rows.length === 0) return [];
  return [
    '## Overhead against the limit',
    '',
    'Per operation at c=32, one pinned worker. L = 1 / (t_https + t_hsm): t_https is plain node:https (bench/plain-https-server.ts, the proxy\'s TLS settings) answering the same requests on the same core with answers as long as the proxy\'s (JSON of the same byte count), closed loop at c=32 like the proxy, holding CPU per request so that it answers at the proxy\'s rate ("control req/s"), measured in pairs: ' + String(STEADY_RUNS) + ' times a proxy run and right after it a control run and then t_hsm, so all three see the same machine; each row is the pair with the median overhead (every pair is in latest.json): a loopback client that waits on a slow server sleeps, and the kernel charges the server ~20 µs per answer for waking it, so the control must make the client wait as the proxy does. "t_https paced" is the same plain server open loop at the proxy\'s rate, where the client is mostly awake: the figure earlier runs used; t_hsm is the HSM work the operation needs done with raw pkcs11js, sync, no proxy code (bench/raw-hsm-work.ts: Encrypt = RNG for the IV + encrypt + verify-decrypt, Decrypt = decrypt; GetKeyMetadata reads the key state cache and GetHealthStatus the cached health result, so 0). Overhead = proxy CPU − t_https − t_hsm. "Cedar" rows run with a secondary-authorization policy on the key store.',
    '',
    'Where the proxy\'s CPU runs, from /proc per thread: "main thread" is the event loop (TLS, HTTP, SigV4, validation, the pipeline, answers), "other threads" the PKCS#11 worker threads with V8\'s GC helpers and libuv\'s pool, all on the same core. Plain node:https does nearly all its work on its main thread, and the raw HSM work runs on one thread, so main thread − t_https is what the pipeline adds and other threads − t_hsm what the HSM layer adds (thread hand-off, job code, GC). A CPU profile (--profile) does not show this split: V8 samples by wall clock, so time the PKCS#11 thread runs on the shared core shows up in whatever main-thread frame it preempted (typically postMessage).',
    '',
    floorText(parts),
    '',
    '| Operation | proxy req/s | proxy CPU µs/req | main thread / other threads µs | t_https µs (control req/s) | t_https paced µs | t_hsm µs | L req/s | overhead µs | main thread − t_https / other threads − t_hsm | floor µs/req (its overhead; main thread / other threads) | floor with the required parts µs/req (its overhead; main thread / other threads) | proxy req/s ÷ L |',
    '|---|---|---|---|---|---|---|---|---|---|---|---|---|',
    ...rows.map((r) => {
      const other = r.proxyCpuUs - r.proxyMainThreadUs;
      const split = (cpu: number, main: number | undefined): string => (main === undefined || Number.isNaN(main) ? '' : `; ${main} / ${cpu - main}`);
      const floor = r.floorCpuUs === undefined ? '' : `${r.floorCpuUs} (${String(r.floorOverheadUs)}${split(r.floorCpuUs, r.floorMainThreadUs)})`;
      const floorParts = r.floorPartsCpuUs === undefined ? '' : `${r.floorPartsCpuUs} (${String(r.floorPartsOverheadUs)}${split(r.floorPartsCpuUs, r.floorPartsMainThreadUs)})`;
      return `| ${r.scenario} | ${r.proxyReqPerSec} | ${r.proxyCpuUs} | ${r.proxyMainThreadUs} / ${other} | ${r.tHttpsUs} (${r.controlReqPerSec}) | ${r.tHttpsPacedUs} | ${r.tHsmUs} | ${r.limitReqPerSec} | ${r.overheadUs} | ${r.proxyMainThreadUs - r.tHttpsUs} / ${other - r.tHsmUs} | ${floor} | ${floorParts} | ${r.ratio} |`;
    }),
    '',
  ];
}

/** XKS error answers so far, by errorName, from xks_requests_total. */
async function errorsByName(adminUrl: string): Promise<Record<string, number>> {
  const text = await (await fetch(`${adminUrl}/metrics`)).text();
  const counts: Record<string, number> = {};
  for (const match of text.matchAll(/^xks_requests_total\{[^}]*error_name="([^"]+)"[^}]*\} ([0-9.e+-]+)$/gm)) {
    counts[match[1] as string] = (counts[match[1] as string] ?? 0) + Number(match[2]);
  }
  return counts;
}

function errorDelta(before: Record<string, number>, after: Record<string, number>): string {
  const parts = Object.entries(after)
    .map(([name, n]) => [name, n - (before[name] ?? 0)] as const)
    .filter(([, n]) => n > 0)
    .map(([name, n]) => `${name} ${n}`);
  return parts.length > 0 ? parts.join(', ') : 'none';
}

/**
 * prom-client's default eventLoopMonitoringPrecision. Node's monitorEventLoopDelay records whole
 * timer intervals, so an idle process reads ~10.1 ms: the lag is what exceeds the interval.
 */
const EVENT_LOOP_SAMPLING_MS = 10;

/** Event-loop lag p99 in ms since the last scrape (which resets prom-client's histogram). */
async function eventLoopLagP99Ms(adminUrl: string | undefined): Promise<number | undefined> {
  if (!adminUrl) return undefined;
  const seconds = await scrapeMetric(adminUrl, 'xks_nodejs_eventloop_lag_p99_seconds');
  return seconds === undefined ? undefined : round(Math.max(0, seconds * 1000 - EVENT_LOOP_SAMPLING_MS));
}

async function scrapeMetric(adminUrl: string, name: string): Promise<number | undefined> {
  const res = await fetch(`${adminUrl}/metrics`);
  const match = new RegExp(`^${name}(?:\\{[^}]*\\})? ([0-9.e+-]+)$`, 'm').exec(await res.text());
  return match ? Number(match[1]) : undefined;
}

/** --profile=<dir>: one scenario (--scenario, default Encrypt 4300 B) at c=32 against a server run with --cpu-prof. */
async function profile(env: Env, configPath: string): Promise<void> {
  const proxy = await startProxy(configPath);
  const name = args.get('scenario') ?? 'Encrypt 4300 B';
  const bodies = await scenarioBodies(env, proxy.url);
  const request = bodies[name];
  let row: Row;
  if (name === 'KMS-shaped') {
    const mixed = await kmsMixForOneRun(env, proxy.url, bodies);
    row = await measured(proxy, `Profile: KMS-shaped ${KMS_RATE} req/s`, 'open loop', () => pacedRun(proxy.url, mixed, KMS_RATE, KMS_SECONDS));
  } else if (request) {
    row = await measured(proxy, `Profile: ${name}`, 32, () => load(proxy.url, [request], 32, DURATION));
  } else {
    throw new Error(`--scenario must be KMS-shaped or one of the proxy scenarios, got "${name}"`);
  }
  await stop(proxy);
  // One profile per thread (the main thread and each PKCS#11 worker); start-up is in them too, so profile long runs.
  const requests = Math.round(row.reqPerSec * (name === 'KMS-shaped' ? KMS_SECONDS : DURATION));
  for (const file of readdirSync(PROFILE_DIR as string).filter((f) => f.endsWith('.cpuprofile'))) {
    const summary = summarize(JSON.parse(readFileSync(join(PROFILE_DIR as string, file), 'utf8')) as Parameters<typeof summarize>[0]);
    process.stderr.write(`\n## ${file}\n${formatSummary(summary, 15, requests)}\n`);
  }
  process.stderr.write(`CPU profile written to ${String(PROFILE_DIR)}\n`);
}

/**
 * One unrecorded closed-loop run on a fresh proxy: the JIT, the connections, the session pool and the
 * key handles warm up. Measured cold, an 8 s Encrypt 4300 B run cost ~45 µs more per request
 * (363-365 against 313-322 µs on the same proxy right after, two runs each).
 */
async function warmUp(server: Server, request: SignedRequest, concurrency = 32): Promise<void> {
  await load(server.url, [request], concurrency, DURATION);
}

/**
 * --history (with --scenario, --compare or --floor-parts): before its warm-up each proxy first serves
 * every scenario at c=32 and 256 (half --duration each), as the full run's proxy has by the time its
 * pairs are measured.
 * A proxy with that history cost 13-20 µs more per request than a fresh one in rotations
 * (docs/performance.md, "The allocator"), so a rotation without it measures a proxy KMS rarely meets.
 */
async function serveHistory(server: Server, bodies: Record<string, SignedRequest>): Promise<void> {
  if (!args.has('history')) return;
  for (const request of Object.values(bodies)) for (const c of [32, 256]) await load(server.url, [request], c, DURATION / 2);
}

/** --scenario=<name> without --profile: that proxy scenario alone, at each --concurrency, after a warm-up; prints, writes nothing. */
async function quick(env: Env, configPath: string): Promise<void> {
  // --workers=N: serve --workers N, unpinned (as the scaling rows).
  const proxy = await startProxy(configPath, Number(args.get('workers') ?? 1));
  const name = args.get('scenario') as string;
  const bodies = await scenarioBodies(env, proxy.url);
  const request = bodies[name];
  if (!request && name !== 'KMS-shaped') throw new Error(`--scenario must be KMS-shaped or one of the proxy scenarios, got "${name}"`);
  await serveHistory(proxy, bodies);
  if (name === 'KMS-shaped') {
    const mixed = await kmsMixForOneRun(env, proxy.url, bodies);
    if (proxy.adminUrl) await scrapeMetric(proxy.adminUrl, 'xks_nodejs_eventloop_lag_p99_seconds');
    const errorsBefore = proxy.adminUrl ? await errorsByName(proxy.adminUrl) : {};
    await withChurn(proxy.adminUrl, () => measured(proxy, `KMS-shaped ${KMS_RATE} req/s`, 'open loop', () => pacedRun(proxy.url, mixed, KMS_RATE, KMS_SECONDS)));
    await reportConnectionCosts(proxy);
    if (proxy.adminUrl) {
      process.stderr.write(`event-loop lag p99 ${String(await eventLoopLagP99Ms(proxy.adminUrl))} ms; errors recorded: ${errorDelta(errorsBefore, await errorsByName(proxy.adminUrl))}\n`);
    }
  }
  const rows: Row[] = [];
  if (request) await warmUp(proxy, request);
  if (request) for (const c of CONCURRENCIES) rows.push(await measured(proxy, `Proxy ${name}`, c, () => load(proxy.url, [request], c, DURATION)));
  // --limit=off skips it: the overhead against L, in pairs of the proxy and the control.
  const c32 = rows.find((r) => r.concurrency === 32);
  if (request && c32 && args.get('limit') !== 'off') await pairedLimit(env, proxy, name, `${args.has('cedar') ? 'Cedar ' : ''}${name}`, c32);
  await stop(proxy);
}

/**
 * --compare=<root of another build> with --scenario: this build (B) against that one (A), pinned to
 * the same core, in --rounds (default 10) pairs of closed-loop runs in ABBA order, each run on a
 * fresh proxy after a warm-up (never both up at once: two proxies on one token and one core
 * disturbed each other, an A/A comparison then read -9 %). This VM's speed drifts by 15-25 % over
 * minutes, more than most changes to the request path; runs next to each other drift together, so
 * the per-pair difference shows a change that separate runs cannot. Run A/A first (--compare=.) to
 * see the noise floor.
 */
async function compare(env: Env, configPath: string): Promise<void> {
  const name = args.get('scenario') as string;
  const rounds = Number(args.get('rounds') ?? 10);
  const concurrency = args.has('concurrency') ? (CONCURRENCIES[0] as number) : 32;
  // --compare-allocator=<jemalloc|glibc[:tunables]>: A's proxy runs that malloc, B's --allocator's (--compare=. for the same build).
  const allocatorA = { ...process.env };
  const allocatorTextA = args.has('compare-allocator') ? `, A's malloc ${allocatorText(applyAllocator(args.get('compare-allocator'), allocatorA))}` : '';
  const builds = [
    { label: 'A', main: join(resolve(args.get('compare') as string), 'dist/src/cli/main.js'), env: allocatorA, cpu: [] as number[], mainThread: [] as number[] },
    { label: 'B', main: MAIN, env: process.env, cpu: [] as number[], mainThread: [] as number[] },
  ];
  for (let round = 0; round < rounds; round++) {
    for (const build of round % 2 === 0 ? builds : [...builds].reverse()) {
      const server = await startProxy(configPath, 1, build.main, build.env);
      const bodies = await scenarioBodies(env, server.url);
      const request = bodies[name];
      if (!request) throw new Error(`--compare needs --scenario set to one of the proxy scenarios, got "${name}"`);
      await serveHistory(server, bodies);
      await warmUp(server, request, concurrency);
      const row = await measured(server, `${build.label} ${name}`, concurrency, () => load(server.url, [request], concurrency, DURATION));
      await stop(server);
      build.cpu.push(row.cpuUsPerReq ?? Number.NaN);
      build.mainThread.push(row.mainThreadCpuUsPerReq ?? Number.NaN);
    }
  }
  const [a, b] = builds as [(typeof builds)[number], (typeof builds)[number]];
  const line = (what: string, av: number[], bv: number[]): string => {
    const diffs = bv.map((v, i) => v - (av[i] as number)).sort((x, y) => x - y);
    const cheaper = diffs.filter((d) => d < 0).length;
    return `${what}: A median ${middle(av)} µs/req, B median ${middle(bv)}; B − A per pair: median ${middle(diffs)} µs (${round((middle(diffs) / middle(av)) * 100)} %), range ${diffs[0]} .. ${diffs[diffs.length - 1]}; B cheaper in ${cheaper} of ${diffs.length} pairs`;
  };
  process.stderr.write(`\n${name}, c=${concurrency}, ${rounds} pairs of ${DURATION} s (A = ${String(args.get('compare'))}, B = this build, B's malloc ${allocatorText(ALLOCATOR)}${allocatorTextA}${args.has('history') ? ', each proxy with history' : ''})\n`);
  process.stderr.write(`${line('CPU', a.cpu, b.cpu)}\n${line('main thread', a.mainThread, b.mainThread)}\n`);
}

function middle(values: number[]): number {
  const sorted = [...values].sort((x, y) => x - y);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? (sorted[mid] as number) : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}

async function main(): Promise<void> {
  if (args.has('render')) {
    // --render: latest.md again from latest.json with this build's text (after a fix to the text, not the figures).
    const { summary, rows } = JSON.parse(readFileSync(join(ROOT, 'bench/results/latest.json'), 'utf8')) as { summary: Record<string, unknown>; rows: Row[] };
    writeFileSync(join(ROOT, 'bench/results/latest.md'), renderMarkdown(summary, rows));
    process.stderr.write('wrote bench/results/latest.md from latest.json\n');
    return;
  }
  if (PIN_CORES) execFileSync('taskset', ['-p', '-c', '1', String(process.pid)], { stdio: 'ignore' });
  const env = await prepare();
  process.env.XKS_HSM_PIN = env.pin;
  const configPath = writeConfig(env, { cedar: args.has('cedar') });
  if (PROFILE_DIR || args.has('scenario')) {
    // --scenario=floor-sizing: the floor's sizing trials alone, from --rate (default 1800) up.
    if (args.get('scenario') === 'floor-sizing') await floorSizing(env, [], KMS_RATE);
    else if (args.has('floor-parts')) await floorParts(env, configPath);
    else await (PROFILE_DIR ? profile(env, configPath) : args.has('compare') ? compare(env, configPath) : quick(env, configPath));
    rmSync(env.dir, { recursive: true, force: true });
    return;
  }
  const rows: Row[] = [];
  const summary: Record<string, unknown> = {};

  // 1. Ceilings
  const plain = await startProcess(process.execPath, [join(ROOT, 'dist/bench/plain-https-server.js'), env.certFile, env.keyFile], '0', portOnStdout);
  const sixKb = { method: 'POST' as const, path: '/', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ data: randomBytes(4400).toString('base64') }) };
  const ceilingByConcurrency = new Map<number, number>();
  for (const c of CONCURRENCIES) {
    const row = await measured(plain, 'Ceiling: plain node:https, 6 KB POST', c, () => load(plain.url, [sixKb], c, DURATION));
    ceilingByConcurrency.set(c, row.reqPerSec);
    rows.push(row);
  }
  await stop(plain);
  const raw = JSON.parse(
    execFileSync(...pinned(process.execPath, [join(ROOT, 'dist/bench/raw-pkcs11.js'), SOFTHSM_MODULE_PATH, env.tokenLabel, env.keyLabel, String(POOL), String(DURATION)], '0'), {
      env: process.env,
      encoding: 'utf8',
    }),
  ) as { opsPerSec: number; p50: number; p90: number; p99: number; max: number };
  rows.push({ scenario: `Ceiling: raw pkcs11js async GCM encrypt 4300 B + 8 KB AAD, ${POOL} sessions`, concurrency: POOL, reqPerSec: Math.round(raw.opsPerSec), p50: round(raw.p50), p90: round(raw.p90), p99: round(raw.p99), max: round(raw.max), errors: 0 });
  // What Encrypt costs in the HSM alone: the proxy's HSM layer doing encrypt + verify-decrypt, no HTTP.
  const layer = JSON.parse(
    execFileSync(...pinned(process.execPath, [join(ROOT, 'dist/bench/hsm-layer.js'), SOFTHSM_MODULE_PATH, env.tokenLabel, env.keyLabel, String(POOL), '32', String(DURATION)], '0'), {
      env: { ...process.env, UV_THREADPOOL_SIZE: String(4 + POOL) },
      encoding: 'utf8',
    }),
  ) as { perSec: number; cpuUsPerOp: number };
  rows.push({ scenario: `Ceiling: the proxy's HSM layer alone, encrypt + verify-decrypt 4300 B + 8 KB AAD, ${POOL} sessions`, concurrency: 32, reqPerSec: layer.perSec, p50: 0, p90: 0, p99: 0, max: 0, errors: 0, cpuUsPerReq: layer.cpuUsPerOp, note: 'no HTTP; latencies not measured' });
  Object.assign(summary, { hsmLayerEncryptPerSec: layer.perSec, hsmLayerCpuUsPerEncrypt: layer.cpuUsPerOp });
  const paced = pacedHsmCosts(env);
  // Back to back in the same minute as the paced figures (the limit rows take their own t_hsm in each pair).
  Object.assign(summary, { hsmPaced: { gapMs: PACE_GAP_MS, ...paced, rawBackToBackUs: Math.round(hsmWorkUs(env, 'Encrypt 4300 B')) } });

  // 2. The proxy, one worker
  const proxy = await startProxy(configPath);
  const bodies = await scenarioBodies(env, proxy.url);
  for (const [name, request] of Object.entries(bodies)) {
    for (const c of CONCURRENCIES) {
      const errorsBefore = proxy.adminUrl ? await errorsByName(proxy.adminUrl) : {};
      const row = await measured(proxy, `Proxy ${name}`, c, () => load(proxy.url, [request], c, DURATION));
      if (row.errors > 0 && proxy.adminUrl) row.note = `req/s counts every answer; errors recorded: ${errorDelta(errorsBefore, await errorsByName(proxy.adminUrl))}`;
      const ceiling = ceilingByConcurrency.get(c);
      if (ceiling) row.ratio = round(row.reqPerSec / ceiling);
      rows.push(row);
    }
  }

  const proxyLimits = await limitRows(env, proxy, rows, bodies, '', ceilingByConcurrency.get(32));
  const { cedarCosts, cedarLimits } = await cedarCostInPairs(env, rows);
  const limits = [...proxyLimits, ...cedarLimits];
  Object.assign(summary, { cedarCosts });

  // 3. KMS-shaped: fixed offered rate of mixed encrypt/decrypt
  // Signed afresh for each open-loop run: the closed-loop runs above use up most of the 5-minute window.
  const mixed = await signedKmsMix(env, proxy.url);
  const serverRss = (): number => sampleProcessTree(proxy.child.pid as number).rssMb;
  const rssBeforeWarmup = serverRss();
  if (proxy.adminUrl) await scrapeMetric(proxy.adminUrl, 'xks_nodejs_eventloop_lag_p99_seconds'); // resets the lag histogram
  const errorsBefore = proxy.adminUrl ? await errorsByName(proxy.adminUrl) : {};
  // RSS every 5 s over the recorded part (after the warm-up, which opens every connection and grows
  // the heap from its idle size, as it is left out of the latencies): a leak keeps growing, while a
  // heap filling up to V8's next full GC levels off.
  const rssSeries: number[] = [];
  let rssSampler: NodeJS.Timeout | undefined;
  const startRssSeries = (): void => {
    rssSeries.push(serverRss());
    rssSampler = setInterval(() => rssSeries.push(serverRss()), 5000);
  };
  const kmsRow = await withChurn(proxy.adminUrl, () => measured(proxy, `KMS-shaped: ${KMS_RATE} req/s offered, evenly paced, mixed encrypt/decrypt, ${KMS_SECONDS} s`, `open loop, <= ${PACED_CONNECTIONS} conns`, () => pacedRun(proxy.url, mixed, KMS_RATE, KMS_SECONDS, startRssSeries)));
  clearInterval(rssSampler);
  const rssEnd = serverRss();
  rssSeries.push(rssEnd);
  const rssStart = rssSeries[0] as number;
  // Growth over the second half of the run, from the highest RSS the first half reached.
  const half = Math.floor(rssSeries.length / 2);
  const rssFirstHalfMax = Math.max(...rssSeries.slice(0, half + 1));
  const rssSecondHalfGrowthPct = round(((Math.max(...rssSeries.slice(half)) - rssFirstHalfMax) / rssFirstHalfMax) * 100);
  const rssGrowthPct = round(((rssEnd - rssStart) / rssStart) * 100);
  const rssGrowthWithWarmupPct = round(((rssEnd - rssBeforeWarmup) / rssBeforeWarmup) * 100);
  const lagP99 = await eventLoopLagP99Ms(proxy.adminUrl);
  const kmsErrors = proxy.adminUrl ? errorDelta(errorsBefore, await errorsByName(proxy.adminUrl)) : 'n/a';
  kmsRow.note = `RSS over the recorded ${KMS_SECONDS} s ${Math.round(rssStart)} -> ${Math.round(rssEnd)} MB (${String(rssGrowthPct)} %), every 5 s: ${rssSeries.map((r) => Math.round(r)).join(', ')} MB (second half over the first half's highest: ${String(rssSecondHalfGrowthPct)} %); before the 5 s warm-up ${Math.round(rssBeforeWarmup)} MB (${String(rssGrowthWithWarmupPct)} % to the end); event-loop lag p99 ${lagP99 === undefined ? 'n/a' : lagP99} ms; errors recorded (xks_requests_total, the 5 s warm-up included): ${kmsErrors}; ${kmsRow.note ?? ''}`;
  rows.push(kmsRow);
  Object.assign(summary, { kms: { rate: KMS_RATE, seconds: KMS_SECONDS, rssBeforeWarmupMb: rssBeforeWarmup, rssStartMb: rssStart, rssEndMb: rssEnd, rssSeriesMb: rssSeries.map((r) => Math.round(r)), rssSecondHalfGrowthPct, eventLoopLagP99Ms: lagP99 ?? null } });

  // 3b. Sizing: the highest of the trial rates one worker serves within the targets (p99 <= 20 ms, no errors, lag p99 < 10 ms).
  let sustained: Row | undefined;
  for (const rate of SUSTAIN_RATES) {
    const requests = await signedKmsMix(env, proxy.url);
    await eventLoopLagP99Ms(proxy.adminUrl); // resets the histogram
    const row = await withChurn(proxy.adminUrl, () => measured(proxy, `KMS-shaped sizing: ${rate} req/s offered, evenly paced, ${SUSTAIN_SECONDS} s`, `open loop, <= ${PACED_CONNECTIONS} conns`, () => pacedRun(proxy.url, requests, rate, SUSTAIN_SECONDS)));
    const lag = await eventLoopLagP99Ms(proxy.adminUrl);
    // The control: plain node:https at the same paced rate, same core, same generator. What it
    // shows too (per-request CPU rising at low rates, latency spikes) is the machine's, not the proxy's.
    const plain = await plainHttpsAt(env, requests, rate, PACED_CONNECTIONS);
    row.note = `event-loop lag p99 ${lag ?? 'n/a'} ms; plain node:https at this rate: ${Math.round(plain.cpuUs)} µs/req, p99 ${plain.figures.p99} ms; ${row.note ?? ''}`;
    if (row.p99 > 20 || row.errors > 0 || (lag ?? 0) >= 10) {
      row.note += '; over the targets: stopped here';
      rows.push(row);
      break;
    }
    sustained = row;
    rows.push(row);
  }
  Object.assign(summary, { connectionCosts: await reportConnectionCosts(proxy) });
  const sustainedRate = sustained ? Number(/(\d+) req\/s offered/.exec(sustained.scenario)?.[1]) : null;
  Object.assign(summary, { sustainedRatePerWorker: sustainedRate });
  await stop(proxy);

  // 3c. The floor's sizing, from the first rate the proxy missed: whether any Node proxy holds what the proxy did not.
  const proxyMissedAt = SUSTAIN_RATES.find((rate) => sustainedRate === null || rate > sustainedRate) ?? KMS_RATE;
  Object.assign(summary, { floorSizing: await floorSizing(env, rows, proxyMissedAt) });

  // 4. Scaling: 1 vs 2 workers
  {
    for (const workers of [1, 2]) {
      const server = await startProxy(configPath, workers);
      const request = (await scenarioBodies(env, server.url))['Encrypt 4300 B'] as SignedRequest;
      await warmUp(server, request);
      // The generator (this process, autocannon in-process) competes for the same 2 cores: count its CPU.
      const generatorBefore = process.cpuUsage();
      const row = await measured(server, `Scaling: Encrypt 4300 B, ${workers} worker(s)${workers > 1 ? ' (server unpinned)' : ''}`, 32, () => load(server.url, [request], 32, DURATION));
      const generator = process.cpuUsage(generatorBefore);
      const generatorCores = (generator.user + generator.system) / 1e6 / DURATION;
      const serverCores = (row.serverCpuPct ?? 0) / 100;
      row.note = `server used ${serverCores.toFixed(2)} cores, the load generator ${generatorCores.toFixed(2)}; ${serverCores > 0 ? Math.round(row.reqPerSec / serverCores) : 'n/a'} req/s per server core`;
      rows.push(row);
      await stop(server);
    }
  }

  Object.assign(summary, { limit: limits });

  const target = rows.find((r) => r.scenario === 'Proxy Encrypt 4300 B' && r.concurrency === 32);
  const ceilingC32 = ceilingByConcurrency.get(32);
  Object.assign(summary, {
    date: new Date().toISOString(),
    machine: `${cpus().length} x ${cpus()[0]?.model ?? 'cpu'}, node ${process.version}`,
    pinning: PIN_CORES ? 'servers on core 0 (taskset -c 0), load generator on core 1; the 2-worker run is unpinned' : 'none (fewer than 2 cores)',
    signing: 'each scenario signs its requests once (and again before its limit pairs) and replays them within the 5-minute SigV4 window',
    durationSeconds: DURATION,
    sessionPool: POOL,
    floorParts: REQUIRED_PARTS,
    allocator: ALLOCATOR,
    targets: {
      encrypt4300c32RatioToCeiling: target?.ratio ?? null,
      encrypt4300c32ReqPerSec: target?.reqPerSec ?? null,
      kmsP99Ms: kmsRow.p99,
      kmsErrors: kmsRow.errors,
      rssGrowthPct,
      rssGrowthWithWarmupPct,
      rssSecondHalfGrowthPct,
      eventLoopLagP99Ms: lagP99 ?? null,
    },
    // What one pinned core allows per request at each target rate, against what the work costs.
    cpuBudget: PIN_CORES
      ? {
          ceilingC32ReqPerSec: ceilingC32 ?? null,
          usPerRequestAt40PctOfCeiling: ceilingC32 ? Math.round(1e6 / (0.4 * ceilingC32)) : null,
          usPerRequestAtKmsRate: Math.round(1e6 / KMS_RATE),
          // The mix's own requests at c=32, where a request costs least (kmsRow's figure is lowered by cheap shed requests).
          kmsMixCpuUsPerRequest: mixCostUs(rows),
        }
      : null,
  });
  mkdirSync(join(ROOT, 'bench/results'), { recursive: true });
  writeFileSync(join(ROOT, 'bench/results/latest.json'), `${JSON.stringify({ summary, rows }, null, 2)}\n`);
  writeFileSync(join(ROOT, 'bench/results/latest.md'), renderMarkdown(summary, rows));
  process.stderr.write(`wrote bench/results/latest.md\n`);
  rmSync(env.dir, { recursive: true, force: true }); // the token, PIN and credential of this run
}

/** What a new connection and an idle second cost the server (tls-churn.ts): the fixed costs a low rate shares among few requests. */
async function reportConnectionCosts(server: Server): Promise<{ idleCpuUsPerSecond: number; fullHandshakeCpuUs: number; resumedHandshakeCpuUs: number }> {
  const cpu = () => sampleProcessTree(server.child.pid as number).cpuSeconds;
  const idle = await idleCpuUsPerSecond(cpu);
  const { fullUs, resumedUs } = await handshakeCpu(server.url, cpu);
  process.stderr.write(`idle server CPU ${idle} µs/s; TLS handshake CPU: full ${fullUs} µs, resumed ${resumedUs} µs\n`);
  return { idleCpuUsPerSecond: idle, fullHandshakeCpuUs: fullUs, resumedHandshakeCpuUs: resumedUs };
}

function round(n: number): number {
  return Math.round(n * 100) / 100;
}

function mixCostUs(rows: Row[]): number | null {
  const cost = (name: string) => rows.find((r) => r.scenario === `Proxy ${name}` && r.concurrency === 32)?.cpuUsPerReq;
  const [encrypt, decrypt] = [cost('Encrypt 32 B'), cost('Decrypt 4300 B')];
  return encrypt === undefined || decrypt === undefined ? null : Math.round((encrypt + decrypt) / 2);
}

/** Why a target is out of reach, in the run's own figures: one core's CPU per request at the target rate against what the work costs. */
function cpuBudgetLines(summary: Record<string, unknown>): string[] {
  const b = summary.cpuBudget as Record<string, number | null> | null;
  const hsmUs = summary.hsmLayerCpuUsPerEncrypt as number | undefined;
  if (!b || b.usPerRequestAt40PctOfCeiling === null || hsmUs === undefined) return [];
  const lines = [
    '## CPU budget',
    '',
    `The server has one core. At 40 % of the plain ceiling (${Math.round(0.4 * (b.ceilingC32ReqPerSec as number))} req/s) an Encrypt may cost at most ${String(b.usPerRequestAt40PctOfCeiling)} µs of that core's CPU, all included; the HSM layer alone costs ${String(hsmUs)} µs per Encrypt, because SoftHSM does its AES-GCM on the same core. ${(hsmUs >= (b.usPerRequestAt40PctOfCeiling as number)) ? 'So no proxy reaches that target here with SoftHSM, whatever its own overhead; an HSM that does the crypto elsewhere leaves the whole budget to the proxy.' : `That leaves ${String((b.usPerRequestAt40PctOfCeiling as number) - hsmUs)} µs for everything else.`}`,
  ];
  if (b.kmsMixCpuUsPerRequest !== null) {
    lines.push(
      `At ${KMS_RATE} req/s a request may cost at most ${String(b.usPerRequestAtKmsRate)} µs at 100 % CPU, and p99 <= 20 ms needs headroom below that; the KMS-shaped mix (Encrypt 32 B and Decrypt 4300 B in turn) costs ${String(b.kmsMixCpuUsPerRequest)} µs per request (mean of the two at c=32, where a request costs least; more at lower load).`,
    );
  }
  const paced = summary.hsmPaced as { gapMs: number; rawUs: number; idleUs: number; layerUs: number; rawBackToBackUs: number } | undefined;
  if (paced) {
    lines.push(
      '',
      `Why requests that do not queue cost more: one Encrypt 4300 B's raw HSM work costs ${String(paced.rawUs)} µs when it runs alone after ${String(paced.gapMs)} ms idle, against ${String(paced.rawBackToBackUs)} back to back${
        paced.rawUs > paced.rawBackToBackUs
          ? `: the machine's share (of it, ${String(paced.idleUs)} µs is the sleep and wake-up alone; the rest is running after the core idled)`
          : ` (${String(paced.idleUs)} µs of it the sleep and wake-up alone): in this run no dearer than back to back, i.e. within the two measurements' spread`
      }; the proxy's HSM layer costs ${String(paced.layerUs)} µs per job in the same pattern, against ${String(hsmUs)} at c=32, because at c=32 a thread hand-off carries a batch of jobs and at KMS rates it carries one.`,
    );
  }
  return [...lines, ''];
}

/** Issue #16's per-operation targets, from the overhead-against-L rows of this run. */
function targetRows(summary: Record<string, unknown>): string[] {
  const limits = (summary.limit ?? []) as LimitRow[];
  const find = (name: string): LimitRow | undefined => limits.find((l) => l.scenario === name);
  const out: string[] = [];
  const encrypt = find('Encrypt 4300 B');
  if (encrypt) out.push(`| Encrypt 4300 B, c=32, one pinned worker: proxy req/s ÷ L | >= 0.6 | ${String(encrypt.ratio)} |`);
  for (const name of ['Encrypt 4300 B', 'Decrypt 4300 B', 'GetKeyMetadata']) {
    const row = find(name);
    if (row) out.push(`| ${name}: overhead (CPU − t_https − t_hsm) | <= 100 µs | ${String(row.overheadUs)} µs${floorsCell(row, `${String(row.floorOverheadUs)} µs`, `${String(row.floorPartsOverheadUs)} µs`)} |`);
  }
  const health = find('GetHealthStatus');
  if (health) out.push(`| GetHealthStatus: CPU per request | <= 1.5 × t_https = ${String(Math.round(1.5 * health.tHttpsUs))} µs | ${String(Math.round(health.proxyCpuUs))} µs${floorsCell(health, `${String(health.floorCpuUs)} µs`, `${String(health.floorPartsCpuUs)} µs`)} |`);
  const cedarCosts = (summary.cedarCosts ?? {}) as Record<string, CedarCost>;
  for (const name of ['Encrypt 4300 B', 'Decrypt 4300 B', 'GetKeyMetadata']) {
    const cost = cedarCosts[name];
    if (cost) out.push(`| ${name} with Cedar: CPU added | <= 20 µs | ${String(cost.medianUs)} µs (median of ${cost.pairsUs.length} back-to-back pairs: ${cost.pairsUs.join(', ')}) |`);
  }
  return out;
}

/** The same pair's floor and floor with the required parts, after a target's figure (runs before the sixteenth round had no second). */
function floorsCell(row: LimitRow, floor: string, withParts: string): string {
  return row.floorPartsCpuUs === undefined ? '' : `; the floor ${floor}, with the required parts ${withParts}`;
}

/** The floor's sizing in the targets table's sizing cell (runs before it had none). */
function floorSizingCell(summary: Record<string, unknown>): string {
  const floor = summary.floorSizing as FloorSizing | undefined;
  if (!floor) return '';
  const from = floor.trials[0]?.rate;
  return `; the floor: ${floor.sustained === null ? `none from ${String(from)} up` : `${String(floor.sustained)} req/s`}`;
}

function floorSizingLines(summary: Record<string, unknown>): string[] {
  const floor = summary.floorSizing as FloorSizing | undefined;
  if (!floor) return [];
  const trials = floor.trials.map((t) => `${t.rate} req/s: p99 ${t.p99} ms, ${t.errors} errors, ${String(t.cpuUsPerReq)} µs/req${t.held ? '' : ' (over)'}`).join('; ');
  return [
    '',
    `The floor (bench/floor-server.ts, see the limit table) under the same trials, from the first rate the proxy missed, alone on the same core: ${trials}. ${floor.sustained === null ? 'It held none of them' : `It holds ${String(floor.sustained)} req/s`}: about the most any Node proxy with its PKCS#11 work off the event loop holds here, so a sizing above it is out of this machine's reach, not only the proxy's. The floor has no event-loop metric; its lag shows in its p99.`,
  ];
}

function renderMarkdown(summary: Record<string, unknown>, rows: Row[]): string {
  const t = summary.targets as Record<string, number | null>;
  const lines = [
    '# Benchmark results',
    '',
    `Run ${String(summary.date)} on ${String(summary.machine)}. Pinning: ${String(summary.pinning)}. Allocator: ${allocatorText(summary.allocator as Allocator | undefined)}.`,
    `Each closed-loop scenario runs ${String(summary.durationSeconds)} s with autocannon over HTTPS keep-alive connections; ${String(summary.signing)}. Each operation's c=32 row is the proxy run of the limit table's median pair (${String(STEADY_RUNS)} pairs of a proxy run and its control run back to back), its note naming every run: one run on this VM can be off by ~90 µs per request, and the machine drifts over minutes. What Cedar adds is the median of ${String(STEADY_RUNS)} back-to-back pairs (alternating order) on two proxies started together and warmed up alike, one with the policy and one without.`,
    `Event-loop lag p99: the proxy's xks_nodejs_eventloop_lag_p99_seconds (perf_hooks.monitorEventLoopDelay via prom-client) over the run, minus its ${EVENT_LOOP_SAMPLING_MS} ms sampling interval, which Node's histogram includes (an idle process reads 10.1 ms).`,
    `The KMS-shaped runs use an open-loop generator (bench/paced-load.ts; autocannon's -R sends each second's quota in one burst) that sends at an even pace over at most ${PACED_CONNECTIONS} keep-alive connections of its own lean HTTPS client (bench/lean-https-client.ts: little allocation, so few stalls of its own), after an unrecorded 5 s warm-up. A row's note names the generator's own stalls (over 10 ms) where slow requests fell. Latency runs from each request's scheduled send time; as with KMS, a request not answered within 250 ms counts as an error, and req/s counts only 2xx answers within 250 ms. Each sizing row's note has a control: plain node:https answering the same requests at the same paced rate on the same core (its CPU per request and p99).`,
    `Session pool: ${String(summary.sessionPool)}. Latencies in ms. Ratio = proxy req/s / plain node:https req/s at the same concurrency.`,
    '',
    '## Targets',
    '',
    '| Target | Goal | Measured |',
    '|---|---|---|',
    ...targetRows(summary),
    `| p99 at ${KMS_RATE} req/s offered, 60 s | <= 20 ms | ${String(t.kmsP99Ms)} ms |`,
    `| errors at ${KMS_RATE} req/s (after the 5 s warm-up) | 0 | ${String(t.kmsErrors)} |`,
    `| event-loop lag p99 during that run | < 10 ms | ${t.eventLoopLagP99Ms === null ? 'n/a' : `${String(t.eventLoopLagP99Ms)} ms`} |`,
    `| RSS growth over that run | <= 10 % | ${String(t.rssGrowthPct)} % over the recorded ${String(KMS_SECONDS)} s; ${String(t.rssSecondHalfGrowthPct)} % over its second half; ${String(t.rssGrowthWithWarmupPct)} % counted from before the warm-up (the series is in the row's note) |`,
    `| sizing: highest trial rate within the targets | >= 2500 req/s | ${summary.sustainedRatePerWorker === null ? 'none' : `${String(summary.sustainedRatePerWorker)} req/s`}${floorSizingCell(summary)} |`,
    '',
    `Sizing: one worker on this machine serves ${summary.sustainedRatePerWorker === null ? 'none of the trial rates' : `${String(summary.sustainedRatePerWorker)} req/s`} of the KMS-shaped mix within the targets (p99 <= 20 ms, no errors, event-loop lag p99 < 10 ms; open-loop, evenly paced; rates tried: ${SUSTAIN_RATES.join(', ')}).`,
    ...floorSizingLines(summary),
    '',
    ...(summary.hsmLayerEncryptPerSec
      ? [`Context: the proxy's HSM layer alone (encrypt + verify-decrypt, no HTTP, same core) does ${String(summary.hsmLayerEncryptPerSec)} Encrypt/s; the proxy reaches ${String(t.encrypt4300c32ReqPerSec)} req/s (${Math.round(((t.encrypt4300c32ReqPerSec as number) / (summary.hsmLayerEncryptPerSec as number)) * 100)} % of that).`, '']
      : []),
    ...renderLimitTable((summary.limit as LimitRow[] | undefined) ?? [], (summary.floorParts as string | undefined) ?? 'validate,log,metrics,headers'),
    ...cpuBudgetLines(summary),
    '## All figures',
    '',
    '| Scenario | Conc. | req/s | p50 | p90 | p99 | max | errors | server CPU % | CPU µs/req | of which main thread | server RSS MB | ratio | note |',
    '|---|---|---|---|---|---|---|---|---|---|---|---|---|---|',
    ...rows.map((r) => `| ${r.scenario} | ${r.concurrency} | ${r.reqPerSec} | ${r.p50} | ${r.p90} | ${r.p99} | ${r.max} | ${r.errors} | ${r.serverCpuPct ?? ''} | ${r.cpuUsPerReq ?? ''} | ${r.mainThreadCpuUsPerReq ?? ''} | ${r.serverRssMb ?? ''} | ${r.ratio ?? ''} | ${r.note ?? ''} |`),
    '',
    'Reproduce: `npm run bench` (options: `--duration=8 --kms-seconds=60 --rate=1800 --pool=8 --concurrency=1,32,256 --sustain-rates=200,400,600,800,1000,1200,1500,1800,2000,2200,2500,2800,3000,3300 --sustain-seconds=20`; `--scenario=<name>` runs one proxy scenario, `KMS-shaped`, or `floor-sizing` (the floor\'s sizing trials from `--rate` up) and writes nothing, with the overhead against L for the c=32 row unless `--limit=off`; `--cedar` runs it with secondary authorization on; `--profile=<dir>` writes a CPU profile of Encrypt 4300 B, or of `--scenario`, instead).',
    '',
  ];
  return lines.join('\n');
}

main().catch((err) => {
  process.stderr.write(`${(err as Error).stack}\n`);
  stopAll();
  process.exit(1);
});
