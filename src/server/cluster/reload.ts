/** SIGHUP on the primary: every worker re-reads the config file (RunningProxy.reload); a rejected file changes nothing. */
import type { Logger } from '../../observability/logger';
import type { WorkerRequests } from './worker-requests';

export async function reloadWorkers(requests: WorkerRequests, workers: number, logger: Logger): Promise<void> {
  logger.info('reload requested (SIGHUP)', { workers });
  const { replies, expected } = await requests.ask<{ ok: boolean; error?: string; restartRequired?: string[] }>((requestId) => ({ type: 'xks:reload', requestId }));
  const failed = [...replies.entries()].filter(([, r]) => !r.ok);
  const silent = expected.size - replies.size;
  const restartRequired = [...new Set([...replies.values()].flatMap((r) => r.restartRequired ?? []))];
  if (failed.length === 0 && silent === 0) {
    logger.info('reload applied', { workers: replies.size, ...(restartRequired.length ? { restartRequired } : {}) });
  } else {
    logger.warn('reload not applied everywhere', {
      workers: expected.size,
      failed: failed.length,
      noAnswer: silent,
      error: failed[0]?.[1].error,
    });
  }
}
