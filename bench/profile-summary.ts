/**
 * Where a CPU profile's time goes, as two tables: by the component that spent it (the sampled
 * frame, or for a native frame its nearest caller with a source), and by the proxy module that
 * caused it (the nearest frame in our own code). Idle samples are left out, so shares are of CPU.
 * Usage: node dist/bench/profile-summary.js <file.cpuprofile> [rows]
 */
import { readFileSync } from 'node:fs';

interface CallFrame { functionName: string; url: string }
interface ProfileNode { id: number; callFrame: CallFrame; children?: number[] }
interface CpuProfile { nodes: ProfileNode[]; samples: number[]; timeDeltas: number[] }

const PACKAGE_GROUPS: Record<string, string> = {
  express: 'express', router: 'express', 'body-parser': 'express', finalhandler: 'express', 'path-to-regexp': 'express',
  winston: 'winston', logform: 'winston', 'triple-beam': 'winston', 'readable-stream': 'winston', 'winston-transport': 'winston',
  'safe-stable-stringify': 'winston', 'prom-client': 'prom-client', aws4: 'aws4', ajv: 'ajv', helmet: 'helmet',
  '@cedar-policy': 'cedar', pkcs11js: 'pkcs11js',
};

/** The component a frame's source belongs to, or undefined for a native frame without one. */
export function componentOf(frame: CallFrame): string | undefined {
  const { url, functionName } = frame;
  if (url === '') {
    if (functionName === '(garbage collector)') return 'GC';
    if (functionName === '(program)') return 'native, unattributed';
    return undefined;
  }
  const pkg = /\/node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(url)?.[1];
  if (pkg !== undefined) return PACKAGE_GROUPS[pkg] ?? PACKAGE_GROUPS[pkg.split('/')[0] ?? ''] ?? `npm ${pkg}`;
  const own = /\/dist\/(src|bench)\/(.+?)(?:\/[^/]+)?\.js$/.exec(url);
  if (own) return `proxy ${own[1] === 'src' ? ownFolder(url) : 'bench'}`;
  if (/^node:(_http|http)/.test(url)) return 'node http';
  if (/^node:(_tls|tls|net|_stream|stream|internal\/(stream|tls|net))/.test(url)) return 'node tls/net/streams';
  if (/^node:internal\/(worker|per_context\/messageport|event_target)/.test(url)) return 'node worker messaging';
  if (/^node:internal\/crypto/.test(url)) return 'node crypto';
  if (/^node:/.test(url)) return 'node other';
  return 'other';
}

function ownFolder(url: string): string {
  const rest = url.slice(url.lastIndexOf('/dist/src/') + '/dist/src/'.length);
  const parts = rest.split('/');
  return parts.length > 2 ? `${parts[0]}/${parts[1]}` : (parts[0] ?? rest);
}

/** Our own module (dist/src/<path>) nearest the sample, or what ran without one on the stack. */
function ownerOf(frames: CallFrame[]): string {
  for (const frame of frames) {
    const at = frame.url.lastIndexOf('/dist/src/');
    if (at >= 0) return frame.url.slice(at + '/dist/'.length).replace(/\.js$/, '');
  }
  return 'no proxy frame on the stack';
}

export interface Summary { cpuMs: number; byComponent: [string, number][]; byOwner: [string, number][] }

export function summarize(profile: CpuProfile): Summary {
  const nodes = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const child of n.children ?? []) parent.set(child, n.id);
  const byComponent = new Map<string, number>();
  const byOwner = new Map<string, number>();
  let cpuUs = 0;
  // A delta far above the sampling interval is a gap in sampling (the sampler was not scheduled), not CPU.
  const interval = median(profile.timeDeltas);
  profile.samples.forEach((id, i) => {
    const us = Math.min(profile.timeDeltas[i] ?? 0, interval * 10);
    const leaf = nodes.get(id);
    if (leaf === undefined || leaf.callFrame.functionName === '(idle)') return;
    const stack: CallFrame[] = [];
    for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) stack.push((nodes.get(at) as ProfileNode).callFrame);
    const component = stack.map(componentOf).find((c) => c !== undefined) ?? 'native, unattributed';
    byComponent.set(component, (byComponent.get(component) ?? 0) + us);
    const owner = ownerOf(stack);
    byOwner.set(owner, (byOwner.get(owner) ?? 0) + us);
    cpuUs += us;
  });
  const sorted = (m: Map<string, number>): [string, number][] => [...m].sort((a, b) => b[1] - a[1]);
  return { cpuMs: cpuUs / 1000, byComponent: sorted(byComponent), byOwner: sorted(byOwner) };
}

function median(values: number[]): number {
  const sorted = values.filter((v) => v > 0).sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? 0;
}

/** Markdown: both tables, shares of CPU, and µs per request when the request count is known. */
export function formatSummary(summary: Summary, rows = 15, requests?: number): string {
  const total = summary.cpuMs * 1000;
  const cell = (us: number): string => `${((us / total) * 100).toFixed(1)} %${requests ? ` | ${(us / requests).toFixed(1)}` : ''}`;
  const head = (title: string): string[] => [`| ${title} | share of CPU${requests ? ' | µs/request' : ''} |`, `|---|---|${requests ? '---|' : ''}`];
  return [
    `CPU sampled: ${summary.cpuMs.toFixed(0)} ms${requests ? ` over ${requests} requests` : ''}`,
    '',
    ...head('spent in'),
    ...summary.byComponent.slice(0, rows).map(([k, us]) => `| ${k} | ${cell(us)} |`),
    '',
    ...head('caused by (nearest proxy module)'),
    ...summary.byOwner.slice(0, rows).map(([k, us]) => `| ${k} | ${cell(us)} |`),
  ].join('\n');
}

if (require.main === module) {
  const [file, rows] = process.argv.slice(2);
  if (file === undefined) throw new Error('usage: profile-summary <file.cpuprofile> [rows]');
  process.stdout.write(`${formatSummary(summarize(JSON.parse(readFileSync(file, 'utf8')) as CpuProfile), Number(rows ?? 15))}\n`);
}
