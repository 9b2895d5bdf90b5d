/** Plain-HTTP reads of the admin listener (/metrics, /ping, /ready), shared by the integration tests. */
import { get as httpGet } from 'node:http';

export function adminGet(url: string): Promise<{ status: number; text: string; json: unknown }> {
  return new Promise((resolve, reject) => {
    httpGet(url, (res) => {
      let text = '';
      res.on('data', (d: Buffer) => (text += d.toString()));
      res.on('end', () => {
        let json: unknown;
        try {
          json = JSON.parse(text);
        } catch {
          json = undefined;
        }
        resolve({ status: res.statusCode ?? 0, text, json });
      });
    }).on('error', reject);
  });
}

/** The Prometheus text of an admin listener's /metrics. */
export async function metricsText(adminUrl: string): Promise<string> {
  return (await adminGet(`${adminUrl}/metrics`)).text;
}

/** The value of one series (`name` or `name{labels}` exactly as exposed), if present. */
export function sample(metricsText: string, nameWithLabels: string): number | undefined {
  for (const line of metricsText.split('\n')) {
    if (line.startsWith(`${nameWithLabels} `)) return Number(line.slice(nameWithLabels.length + 1));
  }
  return undefined;
}
