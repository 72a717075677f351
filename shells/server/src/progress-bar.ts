/**
 * Progress on stderr for long CLI work: a bar redrawn in place on a
 * terminal, plain lines at most every `everyMs` otherwise (so CI logs stay
 * short; WANLLMDB_PROGRESS_MS sets the interval). `update` takes the label, the percentage and the rest of the line;
 * `force` draws now (a new phase, the last step).
 */
export function progressBar(stream: NodeJS.WriteStream = process.stderr, everyMs = Number(process.env.WANLLMDB_PROGRESS_MS) || 2_000) {
  const tty = !!stream.isTTY;
  let lastDraw = 0;
  let drawn = false;
  return {
    update(label: string, pct: number, tail: string, force = false) {
      const now = Date.now();
      if (tty) {
        if (now - lastDraw < 100 && !force) return;
        const width = 30;
        const filled = Math.round((width * Math.max(0, Math.min(100, pct))) / 100);
        stream.write(`\r\x1b[2K${label} [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${pct}% · ${tail}`);
        drawn = true;
      } else {
        if (now - lastDraw < everyMs && !force) return;
        stream.write(`${label}: ${pct}% · ${tail}\n`);
      }
      lastDraw = now;
    },
    done() {
      if (tty && drawn) stream.write('\n');
      drawn = false;
    },
  };
}

export const mb = (n: number) => (n / 2 ** 20).toFixed(1);
