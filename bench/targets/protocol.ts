/**
 * The tiny IPC protocol between bench/turns.ts and the processes it forks. A child calls
 * `serveTarget` once it listens; the parent then asks for CPU and memory around each round, may
 * start and stop V8's CPU profiler (the one `node --cpu-prof` uses, but only around the measured
 * rounds, so start-up and tsx's compiling stay out of the profile), and finally says stop. Every
 * child is treated the same way, so the protocol costs each target alike.
 */
import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector';

export type Command = 'usage' | 'profile-start' | 'profile-stop' | 'stop';
export interface ToChild {
  seq: number;
  command: Command;
  /** For profile-stop: where to write the .cpuprofile. */
  file?: string;
}
export interface Usage {
  cpuMicros: number;
  rssBytes: number;
  heapUsedBytes: number;
  extra?: Record<string, number>;
}
export type FromChild = { type: 'ready'; port: number } | { type: 'reply'; seq: number; usage?: Usage; error?: string };

export function serveTarget(port: number, stop: () => Promise<void>, extra?: () => Record<string, number>): void {
  if (!process.send) throw new Error('this file is started by bench/turns.ts (it needs an IPC channel)');
  let session: Session | undefined;
  const post = (method: string, params?: object) =>
    new Promise<any>((resolve, reject) => session!.post(method, params ?? {}, (error, result) => (error ? reject(error) : resolve(result))));

  const handle = async (message: ToChild): Promise<Usage | undefined> => {
    switch (message.command) {
      case 'usage': {
        const cpu = process.cpuUsage();
        const memory = process.memoryUsage();
        return { cpuMicros: cpu.user + cpu.system, rssBytes: memory.rss, heapUsedBytes: memory.heapUsed, extra: extra?.() };
      }
      case 'profile-start':
        session = new Session();
        session.connect();
        await post('Profiler.enable');
        await post('Profiler.setSamplingInterval', { interval: 500 });
        await post('Profiler.start');
        return undefined;
      case 'profile-stop': {
        const { profile } = await post('Profiler.stop');
        writeFileSync(message.file!, JSON.stringify(profile));
        session!.disconnect();
        session = undefined;
        return undefined;
      }
      case 'stop':
        await stop();
        return undefined;
    }
  };

  process.on('message', (message: ToChild) => {
    handle(message).then(
      (usage) => {
        process.send!({ type: 'reply', seq: message.seq, usage } satisfies FromChild, () => {
          if (message.command === 'stop') {
            process.disconnect();
            setTimeout(() => process.exit(0), 50).unref();
          }
        });
      },
      (error: Error) => process.send!({ type: 'reply', seq: message.seq, error: String(error?.stack ?? error) } satisfies FromChild),
    );
  });
  // If the parent dies, do not linger.
  process.on('disconnect', () => setTimeout(() => process.exit(0), 1000).unref());
  process.send({ type: 'ready', port } satisfies FromChild);
}
