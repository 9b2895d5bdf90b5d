import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { auditKeys, rotationLinkProblem, verifyAuditLog, type AuditKeys, type VerifyResult } from '../../audit/verify';
import { fail } from '../process';

interface VerifyOptions {
  hmacKeyFile: string[];
  hmacKeyEnv: string[];
}

/** Repeatable options: after an audit key rotation a log needs the old key and the new one. */
const collect = (value: string, previous: string[]): string[] => [...previous, value];

function hmacKeys(options: VerifyOptions): AuditKeys {
  const keys: Buffer[] = [];
  for (const file of options.hmacKeyFile) keys.push(Buffer.from(readFileSync(file, 'utf8').trim(), 'utf8'));
  for (const name of options.hmacKeyEnv) {
    const value = process.env[name];
    if (!value) throw new Error(`environment variable ${name} is not set`);
    keys.push(Buffer.from(value, 'utf8'));
  }
  return auditKeys(keys);
}

/** "; key id K" or, across a key rotation, "; key ids K1 (from line 1), K2 (from line 9)". */
function describeKeys(result: VerifyResult): string {
  const keys = result.keys ?? [];
  if (keys.length === 0) return '';
  if (keys.length === 1) return `; key id ${keys[0]?.keyId}`;
  return `; key ids ${keys.map((k) => `${k.keyId} (from line ${k.line})`).join(', ')}`;
}

export function registerAudit(program: Command): void {
  const audit = program.command('audit').description('Work with the hash-chained audit log');
  audit
    .command('verify')
    .description('Check every entry\'s hash and chain link; exits 1 and names the first broken line')
    .argument('<files...>', 'audit log files; several: oldest first, each a rotation of the one before (its audit-open "previous" is that file\'s last entry)')
    .option('--hmac-key-file <file>', 'file holding an HMAC key the log was written with; repeat it for each key after a key rotation', collect, [])
    .option('--hmac-key-env <variable>', 'environment variable holding an HMAC key; repeatable', collect, [])
    .addHelpText(
      'after',
      '\nEach segment of the log (from one audit-open entry to the next) is checked with the key it names\n' +
        '(by key id); with keys given, every segment must be HMAC-anchored with one of them.\n' +
        '\nExamples:\n  xks-proxy audit verify /var/log/xks-proxy/audit.log --hmac-key-file /etc/xks-proxy/audit-key\n' +
        '  xks-proxy audit verify audit.log.2 audit.log.1 audit.log --hmac-key-file /etc/xks-proxy/audit-key\n' +
        '  xks-proxy audit verify audit.log --hmac-key-file old-audit-key --hmac-key-file /etc/xks-proxy/audit-key   # across a key rotation\n',
    )
    .action(async (files: string[], options: VerifyOptions) => {
      let keys: AuditKeys;
      try {
        keys = hmacKeys(options);
      } catch (err) {
        fail(err);
      }
      let before: VerifyResult | undefined;
      for (const [i, file] of files.entries()) {
        let result: VerifyResult;
        try {
          result = await verifyAuditLog(file, keys);
        } catch (err) {
          fail(err);
        }
        const head = result.head ? `; last intact entry seq ${result.head.seq} hash ${result.head.hash}` : '';
        if (!result.ok) {
          process.stdout.write(`${file}: BROKEN at line ${result.broken?.line}: ${result.broken?.problem} (${result.entries} entries intact before it${head})\n`);
          process.exitCode = 1;
        } else {
          const link = before?.ok ? rotationLinkProblem(before, result) : undefined;
          if (link) {
            process.stdout.write(`${file}: NOT CHAINED to ${files[i - 1]}: ${link}\n`);
            process.exitCode = 1;
          } else {
            process.stdout.write(`${file}: OK, ${result.entries} entries${head}${describeKeys(result)}${i > 0 && before?.ok ? `; continues ${files[i - 1]}` : ''}\n`);
          }
        }
        before = result;
      }
    });
}
