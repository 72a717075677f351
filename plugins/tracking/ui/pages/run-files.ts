import { html, type TemplateResult } from 'lit';
import type { tracking } from '@wanllmdb/proto/client';
import { when } from './run-format.js';
import { fileHref } from './run-page-data.js';

type Run = tracking.v1.Run;

function formatBytes(n: number): string {
  if (!Number.isFinite(n)) return '—';
  const units = ['B', 'KB', 'MB', 'GB', 'TB'];
  let i = 0;
  let v = n;
  while (v >= 1024 && i < units.length - 1) (v /= 1024), i++;
  return `${i ? v.toFixed(v < 10 ? 1 : 0) : v} ${units[i]}`;
}

/** The run page's files tab: the run's files (undefined while loading), each with a download link that `download` follows. */
export function filesTab(run: Run, files: tracking.v1.RunFile[] | undefined, download: (runId: string, path: string) => void): TemplateResult {
  if (!files) return html`<p class="muted">Loading files…</p>`;
  if (!files.length) return html`<p class="muted">This run has no files.</p>`;
  const total = files.reduce((n, f) => n + Number(f.size), 0);
  return html`<p class="muted">${files.length} files, ${formatBytes(total)}</p>
    <table id="files">
      <tr>
        <th>Path</th>
        <th style="text-align:right">Size</th>
        <th>Uploaded</th>
        <th></th>
      </tr>
      ${[...files]
        .sort((a, b) => a.path.localeCompare(b.path))
        .map(
          (f) => html`<tr data-path=${f.path}>
            <td class="mono">${f.path}</td>
            <td class="num">${formatBytes(Number(f.size))}</td>
            <td>${when(f.createdAt)}</td>
            <td>
              <a
                class="download"
                href=${fileHref(run.id, f.path)}
                download=${f.path.split('/').pop() ?? ''}
                @click=${(e: MouseEvent) => {
                  e.preventDefault();
                  download(run.id, f.path);
                }}
                >Download</a
              >
            </td>
          </tr>`,
        )}
    </table>`;
}
