/**
 * The reloadable part of a running proxy. Each config generation becomes one immutable pipeline
 * state (router, SigV4 verifier, validators, guards) that the handler reads once per request, plus a
 * TLS secure context set with server.setSecureContext(). A reload builds everything first and swaps
 * only if all of it succeeded: an invalid config is logged and the running one stays. Connections
 * stay open; in-flight requests finish on the generation they started with.
 */
import type { Server as HttpsServer } from 'node:https';
import { createSecureContext } from 'node:tls';
import { readFileSync } from 'node:fs';
import { base64Length } from '../api/base64';
import { compileRequestValidators } from '../api/schemas';
import { AuditLog } from '../audit/audit-log';
import { SigV4Verifier } from '../auth/sigv4';
import { ConfigError, loadConfigFile } from '../config/load';
import type { RuntimeConfig } from '../config/runtime';
import type { Logger } from '../observability/logger';
import type { XksMetrics } from '../observability/metrics';
import { ClientCertificateGate } from '../security/mtls';
import { RequestGuards } from '../security/request-guards';
import { describeCertificates, SecurityMetrics, type SecuritySnapshot } from '../security/security-metrics';
import { ConfigWatcher } from './config-watcher';
import { XksRouter } from './routes';
import { serverTlsOptions } from './tls';
import type { XksPipelineState } from './xks-handler';
import { buildKmsApiState } from '../kms-api/state';

/** Room in a body for requestMetadata (two 2048-character ARNs) and fields KMS may add later. */
export const BODY_OVERHEAD_BYTES = 64 * 1024;

export interface ReloadResult {
  ok: boolean;
  generation: number;
  /** Why the new config was rejected (the running one stays). */
  errors?: string[];
  /** Changed settings that only a restart applies; their running values were kept. */
  restartRequired?: string[];
}

export interface RuntimeOptions {
  /** The config file: reload() re-reads it, and the watcher watches it. */
  configPath?: string;
  env?: NodeJS.ProcessEnv;
}

const RELOAD_WATCH_DEFAULTS = { watch: true, debounceMs: 250, pollIntervalSeconds: 0 };

export function buildPipelineState(config: RuntimeConfig, metrics: SecurityMetrics, logger: Logger, previous?: XksPipelineState): XksPipelineState {
  return {
    router: new XksRouter(config.keyStores),
    verifier: new SigV4Verifier({ service: 'kms-xks-proxy', maxClockSkewMs: config.limits.clockSkewSeconds * 1000 }),
    validators: compileRequestValidators(config.limits),
    maxBodyBytes: base64Length(config.limits.maxPlaintextBytes) + base64Length(config.limits.maxAadBytes) + BODY_OVERHEAD_BYTES,
    guards: new RequestGuards(config.keyStores, metrics, logger, previous?.guards),
    requestDeadlineMs: config.limits.requestDeadlineMs,
    maxInFlightRequests: config.limits.maxInFlightRequests,
    kmsApi: buildKmsApiState(config, previous?.kmsApi),
  };
}

/** node:https options for the KMS-facing listener: certificate, suites, and the client CA when mTLS is on. */
export function listenerTlsOptions(config: RuntimeConfig) {
  const clientAuth = config.security?.clientAuth;
  return {
    ...serverTlsOptions(config.server.certFile, config.server.keyFile),
    ...(clientAuth ? { ca: readFileSync(clientAuth.caFile) } : {}),
  };
}

/** Sections a reload cannot change (HSM sessions, sockets, listeners, logger, audit file). */
function restartOnlyChanges(running: RuntimeConfig, next: RuntimeConfig): string[] {
  const pick = (c: RuntimeConfig) => ({
    hsm: c.hsm,
    hsms: c.hsms,
    cluster: c.cluster,
    'server.host': c.server.host,
    'server.port': c.server.port,
    // Set on the listener and its ticket-key timer when it starts.
    'server.handshakeTimeoutMs': c.server.handshakeTimeoutMs,
    'server.maxConnections': c.server.maxConnections,
    'server.reservedDescriptors': c.server.reservedDescriptors,
    'server.tls.ticketKeyRotationSeconds': c.server.ticketKeyRotationMs / 1000,
    admin: c.admin,
    health: c.health,
    logging: c.logging,
    audit: c.security?.audit ? { ...c.security.audit, hmacKey: c.security.audit.hmacKey?.toString('base64') } : undefined,
  });
  const a = pick(running) as Record<string, unknown>;
  const b = pick(next) as Record<string, unknown>;
  return Object.keys(a).filter((k) => JSON.stringify(a[k]) !== JSON.stringify(b[k]));
}

export class ReloadableRuntime {
  private current: XksPipelineState;
  private running: RuntimeConfig;
  private generationNo = 1;
  private server: HttpsServer | undefined;
  private certificates: SecuritySnapshot['certificates'] = [];
  private clientAuthKey = '';
  private watcher: ConfigWatcher | undefined;
  readonly securityMetrics: SecurityMetrics;
  readonly gate: ClientCertificateGate;
  readonly audit: AuditLog | undefined;

  constructor(
    config: RuntimeConfig,
    private readonly logger: Logger,
    metrics: XksMetrics,
    private readonly options: RuntimeOptions = {},
  ) {
    this.running = config;
    this.securityMetrics = new SecurityMetrics(metrics.registry, () => this.snapshot());
    this.gate = new ClientCertificateGate(logger, (reason) => this.securityMetrics.tlsRejected(reason));
    this.current = buildPipelineState(config, this.securityMetrics, logger);
    this.certificates = this.readCertificates(config);
    this.logPolicyWarnings(config);
    const audit = config.security?.audit;
    if (audit) {
      this.audit = new AuditLog(
        {
          ...audit,
          onWrite: () => this.securityMetrics.auditEntries.inc(),
          onError: () => this.securityMetrics.auditErrors.inc(),
        },
        logger,
      );
    }
  }

  state(): XksPipelineState {
    return this.current;
  }

  generation(): number {
    return this.generationNo;
  }

  config(): RuntimeConfig {
    return this.running;
  }

  /** Initial options for createServer (mTLS fields are then managed by the gate). */
  tlsOptions() {
    return listenerTlsOptions(this.running);
  }

  /** Hooks the mTLS gate and the file watcher to the listener. */
  attach(server: HttpsServer): void {
    this.server = server;
    this.gate.attach(server);
    this.clientAuthKey = this.clientAuthIdentity(this.running);
    this.gate.setPolicy(server, this.running.security?.clientAuth);
    const reload = this.running.security?.reload ?? RELOAD_WATCH_DEFAULTS;
    if (this.options.configPath && reload.watch) {
      this.watcher = new ConfigWatcher(reload, () => this.reload('file change'), this.logger);
      this.watcher.reset(this.watchedFiles(this.running), reload);
    }
  }

  /**
   * Re-reads the config file (or takes `next`), builds the new generation and swaps it in.
   * Synchronous: two reloads never interleave.
   */
  reload(trigger: string | RuntimeConfig = 'request'): ReloadResult {
    const reason = typeof trigger === 'string' ? trigger : 'request';
    let next: RuntimeConfig;
    let state: XksPipelineState;
    let tls: ReturnType<typeof listenerTlsOptions>;
    try {
      if (typeof trigger !== 'string') next = trigger;
      else if (this.options.configPath) next = loadConfigFile(this.options.configPath, { env: this.options.env ?? process.env });
      else throw new ConfigError(['no config file to reload from']);
      tls = listenerTlsOptions(next);
      createSecureContext(tls); // throws on an unreadable or mismatched certificate/key before anything is swapped
      state = buildPipelineState(next, this.securityMetrics, this.logger, this.current);
    } catch (err) {
      const errors = err instanceof ConfigError ? err.problems : [(err as Error).message];
      this.securityMetrics.reload('failure');
      this.logger.error('config reload rejected; the running config stays', { trigger: reason, generation: this.generationNo, reloadErrors: errors.join(' | ') });
      this.rearmWatcher(this.running);
      return { ok: false, generation: this.generationNo, errors };
    }

    const restartRequired = restartOnlyChanges(this.running, next);
    const kept = this.running;
    const applied: RuntimeConfig = {
      ...next,
      server: {
        ...next.server,
        host: kept.server.host,
        port: kept.server.port,
        handshakeTimeoutMs: kept.server.handshakeTimeoutMs,
        ...(kept.server.maxConnections !== undefined ? { maxConnections: kept.server.maxConnections } : {}),
        reservedDescriptors: kept.server.reservedDescriptors,
        ticketKeyRotationMs: kept.server.ticketKeyRotationMs,
      },
      hsm: kept.hsm,
      hsms: kept.hsms,
      cluster: kept.cluster,
      admin: kept.admin,
      health: kept.health,
      logging: kept.logging,
      security: next.security ? { ...next.security, ...(kept.security?.audit ? { audit: kept.security.audit } : {}) } : next.security,
    };
    if (!kept.security?.audit && applied.security) delete applied.security.audit;

    this.current = state;
    this.running = applied;
    this.generationNo++;
    this.certificates = this.readCertificates(applied);
    if (this.server) {
      this.server.setSecureContext(tls);
      this.server.requestTimeout = applied.server.requestTimeoutMs;
      this.server.headersTimeout = applied.server.headersTimeoutMs;
      this.server.keepAliveTimeout = applied.server.keepAliveTimeoutMs;
      const key = this.clientAuthIdentity(applied);
      if (key !== this.clientAuthKey) {
        this.clientAuthKey = key;
        this.gate.setPolicy(this.server, applied.security?.clientAuth);
        // Connections made under the old mTLS policy: idle ones close now, busy ones after their request.
        this.gate.retireConnections(this.server);
      }
    }
    this.securityMetrics.reload('success');
    this.logPolicyWarnings(applied);
    this.logger.info('config reloaded', {
      trigger: reason,
      generation: this.generationNo,
      keyStores: applied.keyStores.map((s) => s.name).join(','),
      ...(restartRequired.length ? { restartRequired: restartRequired.join(',') } : {}),
    });
    if (restartRequired.length) {
      this.logger.warn('config changes that need a restart were not applied', { restartRequired: restartRequired.join(',') });
    }
    this.rearmWatcher(applied);
    return { ok: true, generation: this.generationNo, ...(restartRequired.length ? { restartRequired } : {}) };
  }

  async close(): Promise<void> {
    this.watcher?.close();
    await this.audit?.close();
  }

  private rearmWatcher(config: RuntimeConfig): void {
    if (!this.watcher) return;
    this.watcher.reset(this.watchedFiles(config), config.security?.reload ?? RELOAD_WATCH_DEFAULTS);
  }

  private watchedFiles(config: RuntimeConfig): string[] {
    return [...(this.options.configPath ? [this.options.configPath] : []), config.server.certFile, config.server.keyFile, ...(config.security?.referencedFiles ?? [])];
  }

  private clientAuthIdentity(config: RuntimeConfig): string {
    const clientAuth = config.security?.clientAuth;
    if (!clientAuth) return '';
    return JSON.stringify([clientAuth.allowedSubjectNames, readFileSync(clientAuth.caFile, 'utf8')]);
  }

  private readCertificates(config: RuntimeConfig): SecuritySnapshot['certificates'] {
    try {
      const out = describeCertificates(readFileSync(config.server.certFile), 'server', true);
      if (config.security?.clientAuth) out.push(...describeCertificates(readFileSync(config.security.clientAuth.caFile), 'client_ca', false));
      return out;
    } catch (err) {
      this.logger.warn('cannot read certificate expiry', { reason: (err as Error).message });
      return [];
    }
  }

  private logPolicyWarnings(config: RuntimeConfig): void {
    for (const store of config.keyStores) {
      const authz = store.security?.authorization;
      if (!authz) continue;
      this.logger.info('authorization policies loaded', {
        keyStore: store.name,
        policyFile: authz.policyFile,
        authzMode: authz.mode,
        policies: authz.policies.policyIds.join(','),
      });
      for (const warning of authz.policies.warnings) this.logger.warn('authorization policy warning', { keyStore: store.name, policyWarning: warning });
    }
  }

  private snapshot(): SecuritySnapshot {
    const credentials: SecuritySnapshot['credentials'] = [];
    for (const store of this.running.keyStores) {
      for (const accessKeyId of store.credentials.keys()) {
        const createdAt = store.security?.credentialCreatedAt.get(accessKeyId);
        if (createdAt !== undefined) credentials.push({ keyStore: store.name, accessKeyId, createdAt });
      }
    }
    return { credentials, accessKeyIdLabel: this.running.admin.accessKeyIdLabel, certificates: this.certificates, tokens: this.current.guards?.tokens() ?? [] };
  }
}
