/**
 * System metrics, sampled on a timer and logged as their own keys under
 * `system/…` with the sample's wall time (charts use the `_time` or
 * `_relative` x axis for them; their step is the seconds since the run
 * started). CPU and memory come from `os` everywhere; disk and network I/O
 * from /proc on Linux; GPUs from `nvidia-smi` when it exists (absent → the
 * GPU keys are skipped, silently).
 */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { cpus, freemem, totalmem } from 'node:os';

export type Sample = [key: string, value: number][];

interface CpuTimes {
  idle: number;
  total: number;
}

function cpuTimes(): CpuTimes {
  let idle = 0;
  let total = 0;
  for (const c of cpus()) {
    const t = c.times;
    idle += t.idle;
    total += t.user + t.nice + t.sys + t.idle + t.irq;
  }
  return { idle, total };
}

/** Sectors read/written by whole disks (not partitions) from /proc/diskstats. */
function diskSectors(): { read: number; written: number } | undefined {
  try {
    let read = 0;
    let written = 0;
    for (const line of readFileSync('/proc/diskstats', 'utf8').split('\n')) {
      const f = line.trim().split(/\s+/);
      const name = f[2];
      if (!name || f.length < 10) continue;
      // Whole devices only: sda, vda, xvda, nvme0n1, mmcblk0 (their partitions would count twice); no loop/ram devices.
      if (!/^(?:[shv]d[a-z]+|xvd[a-z]+|nvme\d+n\d+|mmcblk\d+)$/.test(name)) continue;
      read += Number(f[5]);
      written += Number(f[9]);
    }
    return { read, written };
  } catch {
    return undefined;
  }
}

/** Bytes received/sent on every interface but loopback, from /proc/net/dev. */
function netBytes(): { recv: number; sent: number } | undefined {
  try {
    let recv = 0;
    let sent = 0;
    for (const line of readFileSync('/proc/net/dev', 'utf8').split('\n').slice(2)) {
      const [iface, rest] = line.split(':');
      if (!rest || iface!.trim() === 'lo') continue;
      const f = rest.trim().split(/\s+/);
      recv += Number(f[0]);
      sent += Number(f[8]);
    }
    return { recv, sent };
  } catch {
    return undefined;
  }
}

const GPU_FIELDS = ['index', 'utilization.gpu', 'memory.used', 'memory.total', 'temperature.gpu', 'power.draw'] as const;

/** Parses `nvidia-smi --query-gpu=… --format=csv,noheader,nounits` output into system/gpu.N.* values. */
export function parseNvidiaSmi(text: string): Sample {
  const out: Sample = [];
  for (const line of text.split('\n')) {
    if (!line.trim()) continue;
    const f = line.split(',').map((s) => s.trim());
    const num = (i: number) => {
      const v = Number(f[i]);
      return f[i] !== undefined && f[i] !== '' && Number.isFinite(v) ? v : undefined;
    };
    const index = num(0);
    if (index === undefined) continue;
    const p = `system/gpu.${index}`;
    const util = num(1);
    const used = num(2);
    const total = num(3);
    const temp = num(4);
    const power = num(5);
    if (util !== undefined) out.push([`${p}.utilization_percent`, util]);
    if (used !== undefined) out.push([`${p}.memory_used_mb`, used]);
    if (used !== undefined && total) out.push([`${p}.memory_percent`, (100 * used) / total]);
    if (temp !== undefined) out.push([`${p}.temperature_c`, temp]);
    if (power !== undefined) out.push([`${p}.power_w`, power]);
  }
  return out;
}

export class SystemSampler {
  private cpu = cpuTimes();
  private disk = diskSectors();
  private net = netBytes();
  private procCpu = process.cpuUsage();
  private at = performance.now();
  private gpu = true;

  constructor(private readonly nvidiaSmi = 'nvidia-smi') {}

  /** One sample of everything available (rates since the previous sample). */
  async sample(): Promise<Sample> {
    const now = performance.now();
    const seconds = Math.max(1e-3, (now - this.at) / 1000);
    this.at = now;
    const out: Sample = [];

    const cpu = cpuTimes();
    const total = cpu.total - this.cpu.total;
    if (total > 0) out.push(['system/cpu.percent', (100 * (total - (cpu.idle - this.cpu.idle))) / total]);
    this.cpu = cpu;
    const procCpu = process.cpuUsage();
    out.push(['system/proc.cpu.percent', ((procCpu.user - this.procCpu.user + procCpu.system - this.procCpu.system) / 1e6 / seconds) * 100]);
    this.procCpu = procCpu;

    const mem = totalmem();
    const used = mem - freemem();
    out.push(['system/memory.percent', (100 * used) / mem], ['system/memory.used_mb', used / 2 ** 20], ['system/proc.memory.rss_mb', process.memoryUsage.rss() / 2 ** 20]);

    const disk = diskSectors();
    if (disk && this.disk) {
      out.push(['system/disk.read_mb_s', ((disk.read - this.disk.read) * 512) / 2 ** 20 / seconds], ['system/disk.write_mb_s', ((disk.written - this.disk.written) * 512) / 2 ** 20 / seconds]);
    }
    this.disk = disk;
    const net = netBytes();
    if (net && this.net) {
      out.push(['system/network.recv_mb_s', (net.recv - this.net.recv) / 2 ** 20 / seconds], ['system/network.sent_mb_s', (net.sent - this.net.sent) / 2 ** 20 / seconds]);
    }
    this.net = net;

    if (this.gpu) out.push(...(await this.gpus()));
    return out;
  }

  private gpus(): Promise<Sample> {
    return new Promise((resolve) => {
      try {
        execFile(this.nvidiaSmi, [`--query-gpu=${GPU_FIELDS.join(',')}`, '--format=csv,noheader,nounits'], { timeout: 5_000, windowsHide: true }, (err, stdout) => {
          if (err) {
            // No nvidia-smi (or no driver): stop asking.
            if ((err as NodeJS.ErrnoException).code === 'ENOENT' || typeof (err as { code?: unknown }).code === 'number') this.gpu = false;
            return resolve([]);
          }
          resolve(parseNvidiaSmi(stdout));
        });
      } catch {
        this.gpu = false;
        resolve([]);
      }
    });
  }
}
