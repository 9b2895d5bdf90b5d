/**
 * The reloadable part of a running proxy: reload orchestration. Each config generation becomes one
 * immutable pipeline state (pipeline-state.ts) that the handler reads once per request, plus a TLS
 * secure context set with server.setSecureContext(). A reload builds everything first and swaps
 * only if all of it succeeded: an invalid config is logged and the running one stays. Restart-only
 * settings (restart-only-settings.ts) keep their running values. Connections stay open; in-flight
 * requests finish on the generation they started with.
 */
import type { Server as HttpsServer } from 'node:https';
import { AuditLog } from '../audit/audit-log';
import { ConfigError, configFromText, readConfigText } from '../config/load';
import type { RuntimeConfig } from '../config/runtime';
import type { Logger } from '../observability/logger';
import type { XksMetrics } from '../observability/metrics';
import { ClientCertificateGate } from '../security/mtls';
import { SecurityMetrics, type SecuritySnapshot } from '../security/security-metrics';
import { logAuthorizationPolicies } from './authorization-policy-log';
import { logCredentialsWithoutCreatedAt } from './credential-age-log';
import { logRemappedKeys } from './key-remap-log';
import { ConfigWatcher } from './config-watcher';
import { checkedListenerTls, clientAuthIdentity, listenerTlsOptions } from './listener-tls';
import { buildPipelineState } from './pipeline-state';
import { reloadWatchSettings, watchedFiles } from './reload-watch';
import { keepRestartOnlySettings, restartOnlyChanges } from './restart-only-settings';
import { credentialAges, logReadableSecretFiles, readableSecretSettings, readCertificates } from './security-inventory';
import type { XksPipelineState } from './xks-handler';
import type { ConnectionDrain } from './connection-drain';

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
  /** Fingerprint of the files as the config was loaded (loadServedConfig): the watcher's first baseline. */
  watchBaseline?: string;
  env?: NodeJS.ProcessEnv;
  /** A reload from the config file was applied; `source`: the file's text it was built from (cluster workers tell the primary). */
  onConfigAccepted?: (source: string) => void;
}

export class ReloadableRuntime {
  private current: XksPipelineState;
  private running: RuntimeConfig;
  private generationNo = 1;
  private server: HttpsServer | undefined;
  private connections: ConnectionDrain | undefined;
  private certificates: SecuritySnapshot['certificates'] = [];
  private clientAuthKey = '';
  private watcher: ConfigWatcher | undefined;
  private watchBaseline: string | undefined;
  private closed = false;
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
    this.watchBaseline = options.watchBaseline;
    this.securityMetrics = new SecurityMetrics(metrics.registry, () => this.snapshot());
    this.gate = new ClientCertificateGate(logger, (reason) => this.securityMetrics.tlsRejected(reason));
    this.current = buildPipelineState(config, this.securityMetrics, logger);
    this.certificates = readCertificates(config, logger);
    logReadableSecretFiles(config, logger);
    logAuthorizationPolicies(config, logger);
    logCredentialsWithoutCreatedAt(config, logger);
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

  /** Hooks the mTLS gate and the file watcher to the listener; `connections` retires those of an old mTLS policy. */
  attach(server: HttpsServer, connections: ConnectionDrain): void {
    this.server = server;
    this.connections = connections;
    this.gate.attach(server);
    this.clientAuthKey = clientAuthIdentity(this.running);
    this.gate.setPolicy(server, this.running.security?.clientAuth);
    this.rearmWatcher(this.running);
  }

  /**
   * Re-reads the config file (or takes `next`), builds the new generation and swaps it in.
   * Synchronous: two reloads never interleave.
   */
  reload(trigger: string | RuntimeConfig = 'request'): ReloadResult {
    const reason = typeof trigger === 'string' ? trigger : 'request';
    // logrotate's postrotate SIGHUP: takes the new audit file at once, whether or not the config is valid.
    this.audit?.reopenIfRotated();
    let next: RuntimeConfig;
    let state: XksPipelineState;
    let tls: ReturnType<typeof listenerTlsOptions>;
    let source: string | undefined;
    try {
      if (typeof trigger !== 'string') next = trigger;
      else if (this.options.configPath) {
        source = readConfigText(this.options.configPath);
        next = configFromText(this.options.configPath, source, { env: this.options.env ?? process.env });
      } else throw new ConfigError(['no config file to reload from']);
      tls = checkedListenerTls(next); // throws on an unreadable or mismatched certificate/key before anything is swapped
      state = buildPipelineState(next, this.securityMetrics, this.logger, this.current);
    } catch (err) {
      const errors = err instanceof ConfigError ? err.problems : [(err as Error).message];
      this.securityMetrics.reload('failure');
      this.logger.error('config reload rejected; the running config stays', { trigger: reason, generation: this.generationNo, reloadErrors: errors.join(' | ') });
      this.rearmWatcher(this.running);
      return { ok: false, generation: this.generationNo, errors };
    }

    const restartRequired = restartOnlyChanges(this.running, next);
    const applied = keepRestartOnlySettings(this.running, next);
    const before = this.running;
    this.current = state;
    this.running = applied;
    this.generationNo++;
    this.certificates = readCertificates(applied, this.logger);
    logReadableSecretFiles(applied, this.logger);
    if (this.server) this.applyToListener(this.server, applied, tls);
    this.securityMetrics.reload('success');
    logAuthorizationPolicies(applied, this.logger);
    logCredentialsWithoutCreatedAt(applied, this.logger, before);
    logRemappedKeys(before, applied, this.logger);
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
    if (source !== undefined) this.options.onConfigAccepted?.(source);
    return { ok: true, generation: this.generationNo, ...(restartRequired.length ? { restartRequired } : {}) };
  }

  async close(): Promise<void> {
    this.closed = true; // a reload after this must not start a new watcher
    this.watcher?.close();
    await this.audit?.close();
  }

  /** New certificate, timeouts and, when it changed, the mTLS policy. */
  private applyToListener(server: HttpsServer, applied: RuntimeConfig, tls: ReturnType<typeof listenerTlsOptions>): void {
    server.setSecureContext(tls);
    server.requestTimeout = applied.server.requestTimeoutMs;
    server.headersTimeout = applied.server.headersTimeoutMs;
    server.keepAliveTimeout = applied.server.keepAliveTimeoutMs;
    const key = clientAuthIdentity(applied);
    if (key !== this.clientAuthKey) {
      this.clientAuthKey = key;
      this.gate.setPolicy(server, applied.security?.clientAuth);
      // Connections made under the old mTLS policy: idle ones close now, busy ones after their request.
      if (this.connections) this.gate.retireConnections(this.connections);
    }
  }

  /** Follows reload.watch: a reload can turn the watcher on or off, not only retune it. */
  private rearmWatcher(config: RuntimeConfig): void {
    const settings = reloadWatchSettings(config);
    if (!this.server || !this.options.configPath || this.closed) return;
    if (!settings.watch) {
      if (!this.watcher) return;
      this.watcher.close();
      this.watcher = undefined;
      this.logger.info('config file watching stopped (reload.watch: false); SIGHUP still reloads');
      return;
    }
    if (!this.watcher) {
      this.watcher = new ConfigWatcher(settings, () => this.reload('file change'), this.logger);
      if (this.generationNo > 1) this.logger.info('config file watching started by a reload (reload.watch: true)');
    }
    this.watcher.reset(watchedFiles(this.options.configPath, config), settings, this.watchBaseline);
    this.watchBaseline = undefined; // only the first arming compares with the startup load
  }

  private snapshot(): SecuritySnapshot {
    const running = this.running;
    return {
      credentials: credentialAges(this.running),
      accessKeyIdLabel: this.running.admin.accessKeyIdLabel,
      certificates: this.certificates,
      tokens: this.current.guards?.tokens() ?? [],
      // At each scrape, only by the gauge that reads it: a chmod shows without a reload, for a few stat calls.
      get readableSecretFiles() {
        return readableSecretSettings(running);
      },
    };
  }
}
