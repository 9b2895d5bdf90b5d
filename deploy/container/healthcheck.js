// Container HEALTHCHECK: GET $XKS_HEALTHCHECK_URL (the admin listener's /ping), exit 0 on 200.
'use strict';
const url = process.env.XKS_HEALTHCHECK_URL || 'http://127.0.0.1:9090/ping';
fetch(url, { signal: AbortSignal.timeout(2500) })
  .then((res) => process.exit(res.status === 200 ? 0 : 1))
  .catch(() => process.exit(1));
