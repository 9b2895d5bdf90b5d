/** Runs a compiled test-support script in a fresh Node process with one JSON argument; resolves what it printed, parsed as JSON. */
import { spawn } from 'node:child_process';

export function runJsonChild<T>(script: string, args: object): Promise<T> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [script, JSON.stringify(args)], { env: process.env });
    let out = '';
    let err = '';
    child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (err += chunk.toString()));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve(JSON.parse(out) as T) : reject(new Error(`${script} exited ${String(code)}: ${err}`))));
  });
}
