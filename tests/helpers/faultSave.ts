/**
 * Test helper run as a child process by tests/faults.test.ts: saves one model with
 * `fileSystem(dir).save(...)` while every file system call the save makes is counted, and
 * kills itself with SIGKILL just before call number `killAt` (a `writeSync` first writes half
 * of its bytes, as a write cut short would). With `killAt` 0 it saves to the end and prints
 * the calls it made, one JSON object a line: `{ op, args }`.
 *
 * Usage: tsx tests/helpers/faultSave.ts <dir> <killAt> <seed>
 * The model saved is faultArtifacts(seed): two float32 weights whose values all equal seed.
 */
import fs from 'node:fs';
import { syncBuiltinESMExports } from 'node:module';
import { faultArtifacts } from './faultArtifacts.js';

const [dir, killAtText, seedText] = process.argv.slice(2);
const killAt = Number(killAtText);
const seed = Number(seedText);

/** The calls fileSystem's save may make; each one is a point where the process can die. */
const OPS = ['statSync', 'mkdirSync', 'openSync', 'writeSync', 'fsyncSync', 'closeSync', 'renameSync', 'unlinkSync', 'readdirSync'] as const;
const calls: { op: string; args: unknown[] }[] = [];
const fdPaths = new Map<number, string>();
const patched = fs as unknown as Record<string, (...args: unknown[]) => unknown>;
for (const op of OPS) {
  const original = patched[op]!.bind(fs);
  patched[op] = (...args: unknown[]) => {
    if (calls.length + 1 === killAt) {
      if (op === 'writeSync') {
        const [fd, buffer, offset = 0, length = (buffer as Uint8Array).byteLength] = args as [number, Uint8Array, number?, number?];
        original(fd, buffer, offset, Math.floor(length / 2));
      }
      process.kill(process.pid, 'SIGKILL');
    }
    const result = original(...args);
    const shown = args.map((a) => (typeof a === 'number' && fdPaths.has(a) ? `fd:${fdPaths.get(a)}` : a instanceof Uint8Array ? `<${a.byteLength} bytes>` : a));
    if (op === 'openSync') fdPaths.set(result as number, String(args[0]));
    calls.push({ op, args: shown });
    return result;
  };
}
syncBuiltinESMExports();

const { fileSystem } = await import('../../src/node/fileSystem.js');
await fileSystem(dir!).save!(faultArtifacts(seed));
for (const c of calls) console.log(JSON.stringify(c));
