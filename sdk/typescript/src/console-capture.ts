/**
 * Captures what the process writes to stdout and stderr as the run's console
 * log: `write` is wrapped (everything still reaches the terminal), text is
 * split into lines stamped with the time their newline was written, and a
 * carriage return keeps only what follows it (progress bars redraw a line).
 */
export interface CapturedLine {
  time: number;
  stream: 'stdout' | 'stderr';
  line: string;
}

/** Longest line kept (longer ones are cut and marked). */
export const MAX_LINE_CHARS = 16_384;

type Write = typeof process.stdout.write;

/** The process's own writers, as they were before any capture (for output that must not be captured). */
export const rawWrite = {
  stdout: process.stdout.write.bind(process.stdout) as (chunk: Uint8Array | string) => boolean,
  stderr: process.stderr.write.bind(process.stderr) as (chunk: Uint8Array | string) => boolean,
};

export class LineSplitter {
  private partial = '';

  constructor(
    private readonly stream: 'stdout' | 'stderr',
    private readonly emit: (line: CapturedLine) => void,
    private readonly now: () => number = Date.now,
  ) {}

  push(text: string): void {
    let start = 0;
    for (;;) {
      const nl = text.indexOf('\n', start);
      if (nl < 0) break;
      this.line(this.partial + text.slice(start, nl));
      this.partial = '';
      start = nl + 1;
    }
    if (start < text.length) {
      this.partial += text.slice(start);
      if (this.partial.length > MAX_LINE_CHARS * 4) this.end();
    }
  }

  /** Emits what is left after the last newline. */
  end(): void {
    if (this.partial) this.line(this.partial);
    this.partial = '';
  }

  private line(raw: string): void {
    let line = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
    const cr = line.lastIndexOf('\r');
    if (cr >= 0) line = line.slice(cr + 1);
    if (line.length > MAX_LINE_CHARS) line = `${line.slice(0, MAX_LINE_CHARS)}… [cut: ${line.length} characters]`;
    this.emit({ time: this.now(), stream: this.stream, line });
  }
}

/** Wraps process.stdout/stderr.write; returns a function that restores them. */
export function captureConsole(onLine: (line: CapturedLine) => void): { end(): void; restore(): void } {
  const splitters = {
    stdout: new LineSplitter('stdout', onLine),
    stderr: new LineSplitter('stderr', onLine),
  };
  const originals: Partial<Record<'stdout' | 'stderr', Write>> = {};
  for (const name of ['stdout', 'stderr'] as const) {
    const stream = process[name];
    const original = stream.write;
    originals[name] = original;
    const splitter = splitters[name];
    stream.write = function (this: NodeJS.WriteStream, chunk: unknown, ...rest: unknown[]) {
      try {
        if (typeof chunk === 'string') splitter.push(chunk);
        else if (chunk instanceof Uint8Array) splitter.push(Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength).toString('utf8'));
      } catch {
        /* capturing must never break the program's output */
      }
      return (original as (...a: unknown[]) => boolean).call(this, chunk, ...rest);
    } as Write;
  }
  return {
    end() {
      splitters.stdout.end();
      splitters.stderr.end();
    },
    restore() {
      for (const name of ['stdout', 'stderr'] as const) if (originals[name]) process[name].write = originals[name]!;
    },
  };
}
